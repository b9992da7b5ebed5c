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
from ..errors import InvalidInputError, UsageError


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
                        "quantized with the input's scale/zero point (default: seeded random)")
    p.add_argument("--output", default=None, help="save the device's output tensor here (.npy, int8)")
    p.add_argument("-o", "--json", default=None, help="write report.json (with device figures) here")
    p.set_defaults(func=lambda args: cmd_run(args, resolve_model))


def _check_args(args) -> tuple[str, np.ndarray | None]:
    """Every check that needs no compile: board, tools, paths, the --input file."""
    from ..boards import device_board
    from .project import check_project_dir
    from .tools import require_device_tools

    board = args.board or "qemu-mps2-an500"
    device_board(board)
    if args.output is not None:
        validate.output_file(args.output, "--output", suffix=".npy")
    if args.json is not None:
        validate.output_file(args.json, "--json")
    if args.project_dir is not None:
        check_project_dir(args.project_dir, args.force)
    require_device_tools(board, args.port)
    x = _read_input(args.input) if args.input is not None else None
    return board, x


def _read_input(path) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"--input {path}: no such file (give a .npy written by numpy.save)")
    try:
        x = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise InvalidInputError(f"--input {path}: not a readable .npy array ({e}); write it with numpy.save") from e
    if not isinstance(x, np.ndarray):
        raise InvalidInputError(f"--input {path}: holds several arrays (.npz); give one array in a .npy")
    if x.dtype != np.int8 and x.dtype.kind != "f":
        raise InvalidInputError(f"--input {path}: dtype {x.dtype}; give int8 (quantized) or float32 (quantized "
                                "with the model's input scale and zero point)")
    return x


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
            if args.keep:
                stack.callback(lambda: print(f"kept the firmware project in {project_dir}", file=sys.stderr))
            else:
                stack.callback(shutil.rmtree, tmp, True)
        return _run(args, resolve_model, board, x, project_dir)


def _run(args, resolve_model, board, x, project_dir) -> int:
    import json

    from ..output import save_npy, write_json
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
                                 stream_input=getattr(args, "stream_input", False))
        source, io = compiled, compiled.io
    if x is not None:
        if io is None:
            if x.dtype != np.int8:
                raise InvalidInputError(f"--input {args.input}: dtype {x.dtype}, but {path} has no io.json with the "
                                        "input's scale and zero point; give int8")
        else:
            x = validate.input_array(x, io["inputs"][0], f"--input {args.input}")
    project = generate_project(source, board=board, project_dir=project_dir, ram_budget=args.ram_budget,
                               force=args.force)
    build_project(project)
    report = json.loads((project / "report.json").read_text()) if (project / "report.json").is_file() else {}
    with Session(project, board=board, port=args.port) as s:
        info = s.info()
        if x is None:
            x = np.random.default_rng(0).integers(-128, 128, size=info["input_shape"], dtype=np.int8)
        elif list(x.shape) != list(info["input_shape"]):
            raise InvalidInputError(f"--input {args.input}: shape {list(x.shape)} does not match the firmware's "
                                    f"input {list(info['input_shape'])}")
        s.set_input(x, progress=None if args.quiet else _progress())
        m = s.measure(repeat=args.repeat)
        y = s.get_output()
    report.update({k: m[k] for k in ("stack_bytes", "peak_ram_bytes", "flash_bytes") if k in m})
    report[s.count_name] = m[s.count_name]
    report["output_matches_reference"] = (
        bool(np.array_equal(np.asarray(compiled.reference(x)).reshape(-1), y.reshape(-1))) if compiled else None)
    report["canaries_ok"] = m["canaries_ok"]
    for k in ("arena_bytes", "stack_bytes", "peak_ram_bytes", "flash_bytes", s.count_name):
        print(f"  {k:<24} {report.get(k, m.get(k)):>12,}")
    print(f"  output_matches_reference {report['output_matches_reference']}")
    if args.output:
        out_shape = ((report.get("io") or {}).get("outputs") or [{}])[0].get("shape", y.shape)
        print(f"wrote {save_npy(args.output, y.reshape(out_shape), '--output')}")
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
