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
    p.add_argument("-o", "--output", default=None, help="write report.json here")
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
                                 progress=not args.quiet)
        source = compiled
    project = generate_project(source, board=board, project_dir=args.project_dir,
                               ram_budget=_budget(args.ram_budget))
    build_project(project)
    report = json.loads((project / "report.json").read_text()) if (project / "report.json").is_file() else {}
    with Session(project, board=board, port=args.port) as s:
        info = s.info()
        x = np.random.default_rng(0).integers(-128, 128, size=info["input_shape"], dtype=np.int8)
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
    out = Path(args.output) if args.output else project / "report.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if report["output_matches_reference"] in (True, None) else 1


def _budget(text):
    if text is None:
        return None
    from ..boards import parse_bytes

    return parse_bytes(text)


def _progress(done, total):
    end = "\n" if done >= total else "\r"
    print(f"  uploading input {done}/{total} bytes", end=end, flush=True)
