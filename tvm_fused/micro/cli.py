"""`tvm-fused run`: compile (or take an export dir), build the firmware, run it on
QEMU or a board, and print (and optionally write) report.json with the device
measurements added.

Everything is checked before work starts (options, output paths, the project
folder, the ARM toolchain and QEMU, the --input array's dtype); the input's shape
right after compiling, before the firmware is built. The firmware project lives in
a temporary folder that is removed at the end, success or not, unless --keep or
--project-dir is given."""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from .. import validate
from ..errors import BuildError, InvalidInputError, ModelDoesNotFitError, UsageError


def add_commands(add_parser, add_model_args, resolve_model) -> None:
    """Register `run` (add_parser(name, **kwargs) -> an argparse subparser)."""
    p = add_parser("run", help="build the firmware and run the model on QEMU or a board")
    add_model_args(p)
    p.add_argument("--port", default=None, help="serial port of a flashed board (default: QEMU)")

    def repeat(text):
        try:
            return validate.repeat(int(text), "--repeat")
        except (ValueError, UsageError) as e:
            raise argparse.ArgumentTypeError(str(e) if isinstance(e, UsageError) else
                                             f"'{text}' is not a whole number of runs") from e

    p.add_argument("--repeat", type=repeat, default=3, help="runs to measure (>= 1)")
    p.add_argument("--project-dir", default=None,
                   help="build the firmware project here and keep it (new, empty, or an earlier project)")
    p.add_argument("--keep", action="store_true", help="keep the temporary firmware project and say where")
    p.add_argument("--force", action="store_true",
                   help="use --project-dir even if it holds files tvm-fused did not write")
    p.add_argument("--input", default=None,
                   help="input tensor (.npy): int8 of the model's input shape (NHWC), or float of that shape, "
                        "quantized with the input's scale/zero point (default: seeded random); several inputs: "
                        "a .npz with one array per input (by name, or arr_0, arr_1, ... in order)")
    p.add_argument("--output", default=None,
                   help="save the device's outputs (int8): OUT.npz holds every output by name; OUT.npy the one "
                        "output, or one OUT_<name>.npy per output")
    p.add_argument("-o", "--json", default=None, help="write report.json (with device figures) here")
    p.set_defaults(func=lambda args: cmd_run(args, resolve_model))


def _check_args(args) -> tuple[str, np.ndarray | None]:
    """Every check that needs no compile: board, tools, paths, the --input file."""
    from ..boards import device_board
    from .project import check_project_dir
    from .tools import require_device_tools

    board = args.board or "qemu-mps2-an500"
    if device_board(board).qemu_machine is None and args.port is None:
        raise UsageError(f"--board {board} is a real board: flash it and give its serial port, e.g. "
                         "--port /dev/ttyACM0 (or use --board qemu-mps2-an500)")
    if args.port is not None and "://" not in args.port and not Path(args.port).exists():
        raise UsageError(f"--port {args.port}: no such device; is the board plugged in? (ls /dev/ttyACM* /dev/ttyUSB*)")
    if args.output is not None:
        validate.output_file(args.output, "--output", suffix=".npz" if str(args.output).endswith(".npz") else ".npy")
    if args.json is not None:
        validate.output_file(args.json, "--json")
    if args.project_dir is not None:
        check_project_dir(args.project_dir, args.force)
    require_device_tools(board, args.port)
    x = _read_input(args.input) if args.input is not None else None
    return board, x


def _read_input(path):
    """The --input array (.npy), or a dict of arrays (.npz, for several inputs)."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"--input {path}: no such file (give a .npy written by numpy.save, or a .npz)")
    try:
        x = np.load(p, allow_pickle=False)
        arrays = {k: x[k] for k in x.files} if not isinstance(x, np.ndarray) else {"": x}
    except (OSError, ValueError, EOFError) as e:
        raise InvalidInputError(f"--input {path}: not a readable .npy/.npz ({e}); write it with numpy.save") from e
    for key, a in arrays.items():
        if a.dtype != np.int8 and a.dtype.kind != "f":
            raise InvalidInputError(f"--input {path}{f'[{key}]' if key else ''}: dtype {a.dtype}; give int8 "
                                    "(quantized) or float32 (quantized with the model's input scale and zero point)")
    return arrays[""] if set(arrays) == {""} else arrays


def _inputs(x, specs, where):
    """--input (an array, or a dict from a .npz) -> one int8 array per model input, in order."""
    from ..backend.aot import c_member_names

    if isinstance(x, dict):
        arrays = []
        for i, (spec, member) in enumerate(zip(specs, c_member_names(s["name"] for s in specs))):
            key = next((k for k in (spec["name"], member, f"arr_{i}") if k in x), None)
            if key is None:
                raise InvalidInputError(f"--input {where}: no array for input '{spec['name']}' (keys {sorted(x)}; "
                                        f"name it after the input, or arr_{i})")
            arrays.append((x[key], spec, f"--input {where}[{key}]"))
    elif len(specs) != 1:
        raise InvalidInputError(f"--input {where}: the model has {len(specs)} inputs "
                                f"({', '.join(s['name'] for s in specs)}); give a .npz with one array per input")
    else:
        arrays = [(x, specs[0], f"--input {where}")]
    return [validate.input_array(a, spec, what) if "scale" in spec else a for a, spec, what in arrays]


def save_outputs(path, outputs, specs=None) -> list[Path]:
    """``--output``: ``x.npz`` holds every output by name; ``x.npy`` the one output, or for a model
    with several outputs one file per output, ``x_<name>.npy`` (names as the C struct members)."""
    from ..backend.aot import c_member_names
    from ..output import atomic_file, save_npy

    path = Path(path)
    specs = specs if specs and len(specs) == len(outputs) else \
        [{"name": f"output_{i}", "shape": list(y.shape)} for i, y in enumerate(outputs)]
    arrays = [np.asarray(y).reshape(spec["shape"]) for y, spec in zip(outputs, specs)]
    names = c_member_names(spec["name"] for spec in specs)
    if path.suffix == ".npz":
        with atomic_file(path, "--output") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **dict(zip(names, arrays)))
        return [path]
    if len(arrays) == 1:
        return [save_npy(path, arrays[0], "--output")]
    return [save_npy(path.with_name(f"{path.stem}_{name}.npy"), a, "--output") for name, a in zip(names, arrays)]


def cmd_run(args, resolve_model) -> int:
    board, x = _check_args(args)
    with ExitStack() as stack:
        if args.project_dir is not None:
            from .project import project_lock

            project_dir = Path(args.project_dir)
            stack.enter_context(project_lock(project_dir))
        else:
            tmp = Path(tempfile.mkdtemp(prefix="tvmf-run-"))
            project_dir = tmp / "project"
            stack.callback(_clean_up, tmp, project_dir, args.keep)
        try:
            return _run(args, resolve_model, board, x, project_dir)
        except (BuildError, ModelDoesNotFitError) as e:
            if args.project_dir is None and not args.keep and str(project_dir) in str(e):  # paths about to vanish
                e.args = (f"{e} [the temporary project is removed; --keep or --project-dir DIR keeps it]",)
            raise


def _clean_up(tmp: Path, project_dir: Path, keep: bool) -> None:
    """Remove the temporary project folder, or with --keep say where it is (if it got that far)."""
    if keep and project_dir.is_dir():
        print(f"kept the firmware project in {project_dir}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args, resolve_model, board, x, project_dir) -> int:
    import json

    from ..output import write_json
    from . import Session, build_project, generate_project

    path = Path(args.model)
    compiled = None
    if path.is_dir() and (path / "model" / "include" / "tvmgen_default.h").is_file():
        source = path  # an export dir: no reference to compare against
        io_file = path / "io.json"
        io = json.loads(io_file.read_text()) if io_file.is_file() else None
    else:
        from .. import compile as compile_model

        model, name = resolve_model(args.model)
        compiled = compile_model(model, board=board, fuse=args.fuse, ram_budget=args.ram_budget, name=name,
                                 progress=not args.quiet, latency_budget=args.latency_budget,
                                 fuse_objective=args.fuse_objective,
                                 stream_input=getattr(args, "stream_input", False),
                                 tuning_log=getattr(args, "tuning_log", None))
        source, io = compiled, compiled.io
    xs = None
    if x is not None:
        if io is None:
            if any(a.dtype != np.int8 for a in (x.values() if isinstance(x, dict) else [x])):
                raise InvalidInputError(f"--input {args.input}: float, but {path} has no io.json with the "
                                        "input's scale and zero point; give int8")
        else:
            xs = _inputs(x, io["inputs"], args.input)
    project = generate_project(source, board=board, project_dir=project_dir, ram_budget=args.ram_budget,
                               force=args.force)
    build_project(project)
    report = json.loads((project / "report.json").read_text()) if (project / "report.json").is_file() else {}
    with Session(project, board=board, port=args.port) as s:
        info = s.info()
        specs = (io or {}).get("inputs") or [{"name": "input", "shape": info["input_shape"]}]
        if xs is None and x is not None:  # an export without io.json: int8 as given
            xs = _inputs(x, specs, args.input)
        if xs is None:
            xs = [np.random.default_rng(i).integers(-128, 128, size=spec["shape"], dtype=np.int8)
                  for i, spec in enumerate(specs)]
        if sum(a.size for a in xs) != info["input_bytes"]:
            raise InvalidInputError(f"--input {args.input}: {sum(a.size for a in xs)} values, the firmware's "
                                    f"inputs take {info['input_bytes']} (shape {list(info['input_shape'])})")
        s.set_input(xs, progress=None if args.quiet else _progress())
        m = s.measure(repeat=args.repeat)
        ys = s.get_outputs()
    report.update({k: m[k] for k in ("stack_bytes", "peak_ram_bytes", "flash_bytes") if k in m})
    report[s.count_name] = m[s.count_name]
    if compiled:
        ref = compiled.reference(*xs)
        ref = ref if isinstance(ref, list) else [ref]
        report["output_matches_reference"] = len(ref) == len(ys) and all(
            np.array_equal(np.asarray(r).reshape(-1), y.reshape(-1)) for r, y in zip(ref, ys))
    else:
        report["output_matches_reference"] = None
    report["canaries_ok"] = m["canaries_ok"]
    for k in ("arena_bytes", "stack_bytes", "peak_ram_bytes", "flash_bytes", s.count_name):
        print(f"  {k:<24} {report.get(k, m.get(k)):>12,}")
    print(f"  output_matches_reference {report['output_matches_reference']}")
    if args.output:
        for written in save_outputs(args.output, ys, (report.get("io") or {}).get("outputs")):
            print(f"wrote {written}")
    write_json(project / "report.json", report)
    if args.json:
        print(f"wrote {write_json(args.json, report, '--json')}")
    if args.project_dir is not None:
        print(f"firmware project: {project} (report.json, build/{board}/firmware.elf)")
    return 0 if report["output_matches_reference"] in (True, None) else 1


def _progress():
    """A live byte counter on a terminal; nothing in logs (no carriage returns in files)."""
    if not sys.stdout.isatty():
        return None

    def progress(done, total):
        end = "\n" if done >= total else "\r"
        print(f"  uploading input {done}/{total} bytes", end=end, flush=True)

    return progress
