"""On-device benchmark: for each model, build the firmware, run it on QEMU and
report memory and instruction counts.

    python benchmarks/device.py EXPORT_DIR [EXPORT_DIR ...]      # exported models
    python benchmarks/device.py --zoo mbv2-0.35-96 --fuse auto    # compiled here
    python benchmarks/device.py --zoo mbv2-0.35-96 mbv2-0.35-144 --fuse none auto
    python benchmarks/device.py --stub                           # self-test model

peak_ram_bytes = arena + measured stack high-water + runtime .data/.bss (ELF);
instructions are exact QEMU -icount counts per inference (not cycles).
For --zoo models the device output is also checked against the host reference
(output_matches_reference; --no-check skips it). Unfused vs fused sweeps with
ratios: benchmarks/fusion.py."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tvm_fused.micro import outputs_equal, run_on_device  # noqa: E402

COLUMNS = ["model", "fuse", "arena_bytes", "stack_bytes", "peak_ram_bytes", "flash_bytes", "instructions", "macs",
           "instructions_per_mac", "matches"]


def _sources(args, workdir: Path):
    """Yield (name, export dir or CompiledModel)."""
    for d in args.export_dirs:
        d = Path(d)
        report = d / "report.json"
        yield (json.loads(report.read_text()).get("model", d.name) if report.is_file() else d.name), d
    if args.stub:
        sys.path.insert(0, str(ROOT / "tests" / "micro"))
        from stub_model import write_stub_export

        yield "stub", write_stub_export(workdir / "stub", input_shape=(1, 32, 32, 3), output_shape=(1, 100),
                                        macs=3072 * 100)
    for name in args.zoo:
        import tvm_fused
        from tvm_fused import models

        if name not in models.ZOO:
            raise SystemExit(f"device.py: unknown zoo model '{name}' (zoo: {', '.join(models.zoo_names())})")
        for fuse in args.fuse:
            print(f"compiling {name} fuse={fuse}", file=sys.stderr, flush=True)
            yield name, tvm_fused.compile(str(models.path(name)), board=args.board,
                                          fuse=int(fuse) if str(fuse).isdigit() else fuse,
                                          ram_budget=args.ram_budget, name=name, progress=False)


def _input(shape, seed=0):
    return np.random.default_rng(seed).integers(-128, 128, size=shape, dtype=np.int8)


def bench_one(index, name, source, args, workdir: Path) -> dict:
    t0 = time.perf_counter()
    if hasattr(source, "export"):  # a CompiledModel: the same input as its host reference
        shape = source.io["inputs"][0]["shape"]
    else:
        io = json.loads((Path(source) / "io.json").read_text()) if (Path(source) / "io.json").is_file() else None
        shape = io["inputs"][0]["shape"] if io else None
    if shape is None:  # an export dir without io.json: ask the firmware
        from tvm_fused.micro import Session, build_firmware

        project, _, _ = build_firmware(source, args.board, workdir / f"proj-{index}-{name}", args.ram_budget)
        with Session(project) as s:
            shape = s.info()["input_shape"]
    x = _input(shape)
    print(f"running {name} on {args.board}", file=sys.stderr, flush=True)
    run = run_on_device(source, x, board=args.board, project_dir=workdir / f"proj-{index}-{name}",
                        ram_budget=args.ram_budget, repeat=args.repeat)
    m = run.measurement
    report = json.loads((run.project / "report.json").read_text()) if (run.project / "report.json").is_file() else {}
    matches = None
    if hasattr(source, "reference") and not args.no_check:
        matches = outputs_equal(run.output, source.reference(x))
    macs = int(report.get("macs") or 0)
    row = {"model": name, "board": args.board, "fuse": report.get("fuse", {}).get("mode"),
           "arena_bytes": m["arena_bytes"], "stack_bytes": m["stack_bytes"],
           "runtime_ram_bytes": m["runtime_ram_bytes"], "peak_ram_bytes": m["peak_ram_bytes"],
           "flash_bytes": m["flash_bytes"], "instructions": m["instructions"],
           "deterministic": m["deterministic"], "canaries_ok": m["canaries_ok"], "macs": macs,
           "instructions_per_mac": round(m["instructions"] / macs, 3) if macs else None,
           "ram_budget": args.ram_budget, "icount_shift": m.get("icount_shift"),
           "output_matches_reference": matches, "matches": {True: "yes", False: "NO", None: "-"}[matches],
           "seconds": round(time.perf_counter() - t0, 2)}
    return row


def print_table(rows) -> None:
    widths = {c: max(len(c), *(len(f"{r.get(c)}") for r in rows)) for c in COLUMNS}
    print("  ".join(c.rjust(widths[c]) for c in COLUMNS))
    for r in rows:
        print("  ".join(f"{r.get(c)}".rjust(widths[c]) for c in COLUMNS))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export_dirs", nargs="*", help="exported model dirs (docs/interfaces.md)")
    ap.add_argument("--zoo", nargs="*", default=[], help="zoo model names to compile with tvm_fused.compile")
    ap.add_argument("--stub", action="store_true", help="include the stub model of tests/micro")
    ap.add_argument("--fuse", nargs="+", default=["none"], help="fuse settings for --zoo models (none, auto, N)")
    ap.add_argument("--no-check", action="store_true", help="do not compare with the host reference")
    ap.add_argument("--board", default="qemu-mps2-an500")
    ap.add_argument("--ram-budget", type=int, default=None, help="emulate a chip with this many bytes of SRAM")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "device.json"))
    ap.add_argument("--workdir", default=None, help="keep the firmware projects here")
    args = ap.parse_args(argv)
    if not (args.export_dirs or args.zoo or args.stub):
        ap.error("give export dirs, --zoo names or --stub")

    with tempfile.TemporaryDirectory(prefix="tvmf-bench-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        rows = [bench_one(i, name, src, args, workdir) for i, (name, src) in enumerate(_sources(args, workdir))]
    print_table(rows)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"board": args.board, "results": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 1 if any(r["output_matches_reference"] is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
