"""`tvm-fused run`: compile (or take an export dir), build the firmware, run it on
QEMU or a board, and write report.json with the device measurements added.
Also registers `tvm-fused demo` (tvm_fused/demo.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import TvmFusedError


def add_commands(sub, add_model_args, resolve_model) -> None:
    p = sub.add_parser("run", help="build the firmware and run the model on QEMU or a board")
    add_model_args(p)
    p.add_argument("--port", default=None, help="serial port of a flashed board (default: QEMU)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--project-dir", default=None, help="keep the firmware project here")
    p.add_argument("--input", default=None,
                   help="input tensor (.npy): int8 of the model's input shape (NHWC), or float32 of "
                        "that shape, quantized with the input's scale/zero point (default: seeded random)")
    p.add_argument("--output", default=None, help="save the device's output tensor (.npy, int8)")
    p.add_argument("--json", default=None, help="write report.json (with device figures) here")
    p.set_defaults(func=lambda args: cmd_run(args, resolve_model))

    from ..demo import add_parser as add_demo_parser

    add_demo_parser(sub, resolve_model)


def cmd_run(args, resolve_model) -> int:
    from . import Session, build_project, generate_project

    board = args.board or "qemu-mps2-an500"
    if board == "host":
        raise TvmFusedError("tvm-fused run needs a device board (qemu-mps2-an500, nucleo-f767zi, nucleo-h743zi)")
    path = Path(args.model)
    compiled = None
    if path.is_dir() and (path / "model" / "include" / "tvmgen_default.h").is_file():
        source = path  # an export dir: no reference to compare against
    else:
        from .. import compile as compile_model

        model, name = resolve_model(args.model)
        compiled = compile_model(model, board=board, fuse=args.fuse, ram_budget=args.ram_budget, name=name,
                                 progress=not args.quiet, latency_budget=args.latency_budget,
                                 fuse_objective=args.fuse_objective)
        source = compiled
    project = generate_project(source, board=board, project_dir=args.project_dir,
                               ram_budget=_budget(args.ram_budget))
    build_project(project)
    report = json.loads((project / "report.json").read_text()) if (project / "report.json").is_file() else {}
    with Session(project, board=board, port=args.port) as s:
        info = s.info()
        x = _load_input(args.input, info["input_shape"], report.get("io")) if args.input else \
            np.random.default_rng(0).integers(-128, 128, size=info["input_shape"], dtype=np.int8)
        s.set_input(x, progress=None if args.quiet else _progress)
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
        np.save(args.output, y.reshape(report.get("io", {}).get("outputs", [{}])[0].get("shape", y.shape)))
        print(f"wrote {args.output}")
    out = Path(args.json) if args.json else project / "report.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if report["output_matches_reference"] in (True, None) else 1


def _load_input(path, shape, io):
    """An int8 tensor of ``shape``, from an int8 .npy or a float .npy quantized like the model input."""
    try:
        x = np.load(path)
    except (OSError, ValueError) as exc:
        raise TvmFusedError(f"--input {path}: cannot read a .npy array ({exc})") from None
    if int(np.prod(x.shape)) != int(np.prod(shape)):
        raise TvmFusedError(f"--input {path}: shape {list(x.shape)} does not match the model input {list(shape)} "
                            "(int8 NHWC, or float32 NHWC to be quantized)")
    if x.dtype == np.int8:
        return x.reshape(shape)
    if x.dtype.kind != "f" or not io:
        raise TvmFusedError(f"--input {path}: dtype {x.dtype}; give int8, or float32 with a compiled model")
    q = io["inputs"][0]
    real = np.asarray(x, np.float64) / q["scale"]
    rounded = np.sign(real) * np.floor(np.abs(real) + 0.5) + q["zero_point"]
    return np.clip(rounded, -128, 127).astype(np.int8).reshape(shape)


def _budget(text):
    if text is None:
        return None
    from ..boards import parse_bytes

    return parse_bytes(text)


def _progress(done, total):
    end = "\n" if done >= total else "\r"
    print(f"  uploading input {done}/{total} bytes", end=end, flush=True)
