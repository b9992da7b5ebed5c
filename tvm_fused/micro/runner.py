"""One call from a compiled model to device numbers: generate + build the firmware,
upload one input, run, read the output back, measure.

    r = run_on_device(compiled, x, project_dir="out/fw")     # QEMU mps2-an500
    r.output, r.measurement["instructions"], r.measurement["peak_ram_bytes"]

Used by `tvm-fused demo`, benchmarks/fusion.py, benchmarks/device.py and the
device tests, so they all measure the same way."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .project import build_project, generate_project
from .session import Session


@dataclass
class DeviceRun:
    output: np.ndarray  # the device's output tensor of the last run
    measurement: dict  # Session.measure(): instructions/cycles, stack_bytes, arena_bytes, flash_bytes, ...
    project: Path
    elf: Path
    seconds: dict = field(default_factory=dict)  # generate, build, upload, run (wall clock)

    @property
    def count_name(self) -> str:
        return "cycles" if "cycles" in self.measurement else "instructions"


def build_firmware(source, board: str = "qemu-mps2-an500", project_dir=None, ram_budget: int | None = None,
                   stack_size: int | None = None) -> tuple[Path, Path, dict]:
    """generate_project + build_project; returns (project dir, ELF, seconds)."""
    t0 = time.perf_counter()
    project = generate_project(source, board=board, project_dir=project_dir, ram_budget=ram_budget,
                               stack_size=stack_size)
    t1 = time.perf_counter()
    elf = build_project(project, board=board)
    return project, elf, {"generate": round(t1 - t0, 3), "build": round(time.perf_counter() - t1, 3)}


def run_firmware(project, x, board: str | None = None, port: str | None = None, repeat: int = 1,
                 upload_progress=None) -> tuple[np.ndarray, dict, dict]:
    """Upload x, run `repeat` times (Session.measure), read the output; returns
    (output, measurement, seconds). With repeat > 1 a model that overwrites its
    input in the arena gets it uploaded again before each further run, so the
    output always belongs to x."""
    seconds = {}
    with Session(project, board=board, port=port, progress=upload_progress) as s:
        t0 = time.perf_counter()
        s.set_input(x)
        t1 = time.perf_counter()
        m = s.measure(repeat=repeat)
        t2 = time.perf_counter()
        y = s.get_output()
        seconds["upload"] = round(t1 - t0, 3)
        seconds["run"] = round(t2 - t1, 3)  # includes re-uploads when repeat > 1
    return y, m, seconds


def run_on_device(source, x, board: str = "qemu-mps2-an500", project_dir=None, ram_budget: int | None = None,
                  repeat: int = 1, port: str | None = None, upload_progress=None,
                  stack_size: int | None = None) -> DeviceRun:
    """source: a CompiledModel or an export dir. x: the int8 input (any shape with the
    right number of elements), or a list of them for a model with several inputs (the
    output is then a list too when the model has several outputs). project_dir None: a new temp dir
    (kept; the caller owns it)."""
    if hasattr(source, "io"):  # a CompiledModel: the documented conversion (float quantized, exact shape)
        x = source.input_arrays(x)
        x = x[0] if len(x) == 1 else x
    project, elf, seconds = build_firmware(source, board, project_dir, ram_budget, stack_size)
    y, m, run_seconds = run_firmware(project, x, board=board, port=port,
                                     repeat=repeat, upload_progress=upload_progress)
    seconds.update(run_seconds)
    return DeviceRun(y, m, project, elf, seconds)


def outputs_equal(a, b) -> bool:
    """Bit-exact comparison of two int8 tensors (or two lists of them, for several outputs),
    ignoring shape differences of size-1 dims."""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        a = a if isinstance(a, (list, tuple)) else [a]
        b = b if isinstance(b, (list, tuple)) else [b]
        return len(a) == len(b) and all(outputs_equal(x, y) for x, y in zip(a, b))
    a, b = np.asarray(a), np.asarray(b)
    return a.size == b.size and bool(np.array_equal(a.reshape(-1), b.reshape(-1)))
