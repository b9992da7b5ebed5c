"""Session: talk to a firmware built by build_project, on QEMU or a real board.

    with Session(project_dir) as s:          # QEMU, launched and stopped here
        s.set_input(x); s.run(); y = s.get_output(); m = s.measure(repeat=5)
    with Session(project_dir, port="/dev/ttyACM0") as s: ...   # a flashed Nucleo

On QEMU, runs are reported in `instructions` (exact, from -icount virtual time);
on real boards in `cycles` (DWT CYCCNT)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import protocol as P
from .elfsize import elf_memory
from ..errors import InvalidInputError
from .errors import DeviceError, MicroError, RpcError
from .launcher import DEFAULT_ICOUNT_SHIFT, QEMU_MACHINES, QemuLauncher
from .project import build_project, elf_path, project_board
from .rpc import RpcClient
from .transport import SerialTransport, TcpTransport


class Session:
    def __init__(self, project, board: str | None = None, port: str | None = None, baudrate: int = 115200,
                 icount_shift: int = DEFAULT_ICOUNT_SHIFT, timeout: float = 2.0, retries: int = 3,
                 run_timeout: float = 300.0, build: bool = True, progress=None):
        """project: a project dir (from generate_project) or a firmware ELF.
        port: serial device of a real board; None runs the ELF in QEMU.
        progress(done_bytes, total_bytes): called while uploading the input."""
        project = Path(project)
        if project.is_dir():
            self.project_dir = project
            self.board = board or project_board(project)
            self.elf = elf_path(project, self.board)
            if not self.elf.is_file():
                if not build:
                    raise FileNotFoundError(f"{self.elf} not built (call build_project)")
                self.elf = build_project(project, board=self.board)
        else:
            self.project_dir, self.elf = None, project
            self.board = board or "qemu-mps2-an500"
        self.port, self.baudrate, self.icount_shift = port, baudrate, icount_shift
        self.timeout, self.retries, self.run_timeout = timeout, retries, run_timeout
        self.progress = progress
        self.launcher = None
        self.transport = None
        self.client = None
        self._info = None
        self._last_input = None
        self._input_dirty = False

    # ---- lifecycle --------------------------------------------------------
    def open(self) -> "Session":
        try:
            if self.port:
                self.transport = SerialTransport(self.port, self.baudrate)
            else:
                if self.board not in QEMU_MACHINES:
                    raise MicroError(f"board {self.board} cannot run in QEMU: pass port='/dev/ttyACM0' "
                                     "for a flashed board")
                self.launcher = QemuLauncher(self.elf, self.board, self.icount_shift).start()
                self.transport = TcpTransport("127.0.0.1", self.launcher.port, alive=self.launcher.alive)
            self.client = RpcClient(self.transport, self.board, self.timeout, self.retries)
            if self.launcher:
                self.client.wait_boot(5.0)
            self.ping()
            self._info = self.info()
            self.client.decoder.max_payload = max(self._info["max_payload"], 64)
            if self._info["board"] != self.board:
                raise DeviceError(f"firmware on {self.transport.url} was built for {self._info['board']}, "
                                  f"not {self.board}")
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self.launcher is not None:
            self.launcher.stop()
            self.launcher = None

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    # ---- commands ----------------------------------------------------------
    def ping(self, payload: bytes = b"ping") -> bytes:
        reply = self.client.call(P.CMD_PING, payload)
        if reply != payload:
            raise DeviceError(f"{self.board}: ping echoed {reply!r}, expected {payload!r}")
        return reply

    def info(self) -> dict:
        return P.unpack_info(self.client.call(P.CMD_INFO))

    @property
    def max_chunk(self) -> int:
        return self._info["max_payload"] - 8

    @property
    def io(self) -> dict:
        """io.json of the project (names, shapes, quantization of every input and output), if any."""
        p = self.project_dir / "io.json" if self.project_dir else None
        return json.loads(p.read_text()) if p and p.is_file() else {}

    def _input_bytes(self, x) -> bytes:
        """One array, a list of arrays (one per input, in order) or a dict by input name -> the
        inputs' bytes concatenated, as the device addresses them."""
        if isinstance(x, (bytes, bytearray)):
            return bytes(x)
        sizes = self._info["input_sizes"]
        if isinstance(x, dict):
            names = [e["name"] for e in self.io.get("inputs", [])]
            if set(names) != set(x):
                raise ValueError(f"inputs by name need exactly {names or 'the names in io.json'}, got {sorted(x)}")
            x = [x[n] for n in names]
        arrays = [np.asarray(a) for a in (x if isinstance(x, (list, tuple)) else [x])]
        for a in arrays:
            if a.dtype != np.int8:  # never reinterpret: a float or wider int needs quantizing first
                raise InvalidInputError(f"input dtype {a.dtype}: the device takes int8; quantize it first "
                                        "(tvm_fused.validate.input_array)")
        if len(arrays) != len(sizes) and not (len(arrays) == 1 and np.asarray(arrays[0]).size == sum(sizes)):
            raise ValueError(f"the model has {len(sizes)} inputs, got {len(arrays)} arrays")
        shapes = [e["shape"] for e in self.io.get("inputs", [])] or [self._info["input_shape"]]
        for i, (a, size) in enumerate(zip(arrays, sizes)):
            if len(arrays) == len(sizes) and a.size != size:
                raise ValueError(f"input {i} has {a.size} values, the model takes {size}")
            if a.ndim > 1 and len(arrays) == len(shapes) and list(a.shape) != list(shapes[i]):  # 1-D: raw bytes
                raise InvalidInputError(f"input {i} has shape {list(a.shape)}, not the model's {list(shapes[i])} "
                                        "(NHWC); reshape or transpose it yourself, or pass it flattened")
        return b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)

    def set_input(self, x, progress=None) -> None:
        """Upload the int8 input(s) (chunked), then check the device's CRC of them.
        ``x``: an array, a list of arrays (one per model input) or a dict by input name."""
        data = self._input_bytes(x)
        total = self._info["input_bytes"]
        if len(data) != total:
            raise ValueError(f"input has {len(data)} bytes, the model takes {total} "
                             f"(shape {self._info['input_shape']})")
        progress = progress or self.progress
        for off in range(0, total, self.max_chunk):
            self.client.call(P.CMD_SET_INPUT, P.pack_set_input(off, data[off:off + self.max_chunk]))
            if progress:
                progress(min(off + self.max_chunk, total), total)
        dev_crc = int.from_bytes(self.client.call(P.CMD_CRC32, b"\x01"), "little")
        if dev_crc != P.crc32_fast(data):
            raise DeviceError(f"{self.board}: input CRC mismatch after upload")
        self._last_input, self._input_dirty = data, False

    def _count(self, ticks: int) -> int:
        """Device counter -> instructions (QEMU) or cycles (real boards)."""
        if self._info["counter_kind"] == "cycles":
            return int(ticks)
        tick_ns = 1e9 / self._info["counter_hz"]
        return int(round(ticks * tick_ns / (1 << self.icount_shift)))

    @property
    def count_name(self) -> str:
        return "cycles" if self._info["counter_kind"] == "cycles" else "instructions"

    def run(self, repeat: int = 1) -> dict:
        """Run the model `repeat` times; returns per-run min/max/mean of
        instructions (QEMU) or cycles. If a run overwrote its input in the arena,
        the input is uploaded again before the next run."""
        if self._input_dirty and self._last_input is not None:
            self.set_input(self._last_input)
        done, total, lo, hi, overhead = 0, 0, None, None, 0
        while done < repeat:
            try:
                r = P.unpack_run(self.client.call(P.CMD_RUN, P.pack_run(repeat - done),
                                                  timeout=self.run_timeout, retries=1))
            except RpcError as e:
                if e.payload and len(e.payload) >= 44:
                    e.run = P.unpack_run(e.payload)
                raise
            done += r["runs_done"]
            total += r["total"]
            lo = r["min"] if lo is None else min(lo, r["min"])
            hi = r["max"] if hi is None else max(hi, r["max"])
            overhead = r["overhead"]
            self._input_dirty = not r["input_intact"]
            if done < repeat and self._input_dirty:
                if self._last_input is None:
                    raise DeviceError("the model overwrites its input and the input was not set via set_input")
                self.set_input(self._last_input)
        name = self.count_name
        return {name: self._count(lo - overhead), f"{name}_max": self._count(hi - overhead),
                f"{name}_mean": self._count(total / done - overhead), "repeat": done,
                "deterministic": lo == hi, "input_intact": not self._input_dirty,
                "canaries_ok": r["canaries_ok"], "raw_min": lo, "raw_overhead": overhead}

    def get_outputs(self) -> list[np.ndarray]:
        """Every output tensor, in order, shaped as io.json (or the device's INFO) says."""
        n = self._info["output_bytes"]
        chunks = []
        for off in range(0, n, self.max_chunk):
            chunks.append(self.client.call(P.CMD_GET_OUTPUT, P.pack_get_output(off, min(self.max_chunk, n - off))))
        flat = np.frombuffer(b"".join(chunks), dtype=np.int8).copy()
        sizes = self._info["output_sizes"]
        shapes = [e["shape"] for e in self.io.get("outputs", [])]
        if len(shapes) != len(sizes) or [int(np.prod(s)) for s in shapes] != sizes:
            shapes = [self._info["output_shape"] if int(np.prod(self._info["output_shape"])) == sizes[0] else [sizes[0]]]
            shapes += [[s] for s in sizes[1:]]
        parts = np.split(flat, np.cumsum(sizes)[:-1]) if len(sizes) > 1 else [flat]
        return [p.reshape(s) for p, s in zip(parts, shapes)]

    def get_output(self):
        """The output tensor; a list of them for a model with several outputs."""
        outs = self.get_outputs()
        return outs[0] if len(outs) == 1 else outs

    def stats(self) -> dict:
        return P.unpack_stats(self.client.call(P.CMD_STATS))

    def memory(self) -> dict:
        return elf_memory(self.elf)

    def measure(self, repeat: int = 5) -> dict:
        """Run `repeat` times and collect what a benchmark reports: instructions or
        cycles per run, stack high-water, arena, canaries, flash and RAM from the ELF."""
        r = self.run(repeat)
        st = self.stats()
        mem = self.memory()
        name = self.count_name
        out = {name: r[name], f"{name}_max": r[f"{name}_max"], "repeat": r["repeat"],
               "deterministic": r["deterministic"], "stack_bytes": st["stack_bytes"],
               "arena_bytes": st["arena_bytes"], "canaries_ok": st["canaries_ok"] and r["canaries_ok"],
               "stack_overflow": st["stack_overflow"], "flash_bytes": mem["flash_bytes"],
               "runtime_ram_bytes": mem["runtime_ram_bytes"],
               "peak_ram_bytes": st["arena_bytes"] + st["stack_bytes"] + mem["runtime_ram_bytes"],
               "board": self.board}
        if name == "instructions":
            out["icount_shift"] = self.icount_shift
        return out

    def __call__(self, x) -> np.ndarray:
        self.set_input(x)
        self.run()
        return self.get_output()

    @property
    def report(self) -> dict:
        """report.json of the project, if any (macs etc.)."""
        p = self.project_dir / "report.json" if self.project_dir else None
        return json.loads(p.read_text()) if p and p.is_file() else {}
