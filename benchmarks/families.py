"""Issue 8's model families (tests/fixtures/families): which compile, arena against TFLite Micro's,
and (on QEMU) instructions against TFLM + CMSIS-NN.

    python benchmarks/families.py                         # host: compile, bit-exactness, arenas
    python benchmarks/families.py --device                # + our firmware on QEMU mps2-an500
    python benchmarks/families.py --device --tflm-harness ~/peers_tflm   # + TFLM + CMSIS-NN on QEMU

Per family (fuse auto): compiles? (else the compiler's error, which names the missing ops), the
number of outputs differing from TFLite's BUILTIN_REF on a seeded input (TVM host build; with
--device the QEMU output), our arena (plan; with --device the firmware's), TFLM's arena from the
`tflite-micro` package on this host (issue 8: ours must be <= it; its 64-bit persistent part is
larger than on the device, the TFLM device figure is in the CMSIS-NN column's JSON), and the
instructions of one inference on QEMU (exact counts, not cycles) against TFLM + CMSIS-NN.
The TFLM harness set-up is printed by benchmarks/peers.py when it is missing.
Results: benchmarks/results/families.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

import peers  # noqa: E402  (benchmarks/peers.py: inputs, BUILTIN_REF, TFLM harness and arena)

FAMILIES = ROOT / "tests" / "fixtures" / "families"
COLUMNS = [("family", "family"), ("compiles", "compiles"), ("vs_ref", "vs BUILTIN_REF"),
           ("arena_bytes", "arena B"), ("tflm_arena_bytes", "TFLM arena B (host pkg)"), ("arena_ok", "<= TFLM"),
           ("instructions", "instructions"), ("tflm_cmsis_nn_instructions", "TFLM+CMSIS-NN"),
           ("x_cmsis_nn", "x CMSIS-NN")]


def family_row(model: Path, args, harness: peers.Harness, workdir: Path) -> dict:
    row = {"family": model.name}
    x, _ = peers.model_input(model)
    np.save(workdir / f"{model.stem}.input.npy", x)
    refs = peers.builtin_ref(model, x)
    arena = peers.tflm_host_arena(model)
    row["tflm_arena_bytes"] = arena.get("total")
    if "error" in arena:
        row["tflm_arena_error"] = arena["error"]
    t0 = time.perf_counter()
    try:
        cm = peers._compile(model, "auto", args)
        row["compiles"] = True
    except Exception as e:  # noqa: BLE001 (the row records why)
        row.update(compiles=False, error=f"{type(e).__name__}: {e}"[:600])
        cm = None
    row["compile_seconds"] = round(time.perf_counter() - t0, 1)
    if cm is not None:
        row["arena_bytes"] = int(cm.report["arena_bytes"])
        row.update(peers.compare(peers.from_device(cm, cm.reference(peers.to_device(cm, x))), refs))
        if args.device:
            from tvm_fused.micro import run_on_device

            try:
                run = run_on_device(cm, peers.to_device(cm, x), board=args.board, project_dir=workdir / model.stem)
                m = run.measurement
                row.update({"instructions": m.get("instructions"), "arena_bytes": m["arena_bytes"],
                            "flash_bytes": m["flash_bytes"], "peak_ram_bytes": m["peak_ram_bytes"],
                            "arena_source": "firmware"})
                row.update(peers.compare(peers.from_device(cm, run.output), refs))
            except Exception as e:  # noqa: BLE001
                row["device_error"] = f"{type(e).__name__}: {e}"[:600]
    if row.get("arena_bytes") is not None and row.get("tflm_arena_bytes"):
        row["arena_ok"] = row["arena_bytes"] <= row["tflm_arena_bytes"]
    if args.device and not harness.missing("cmsis_nn"):
        t = peers.tflm_row(model, "cmsis_nn", harness, workdir / f"{model.stem}.input.npy", args)
        row["tflm_cmsis_nn"] = t
        row["tflm_cmsis_nn_instructions"] = t.get("instructions")
        if row.get("instructions") and t.get("instructions"):
            row["x_cmsis_nn"] = round(row["instructions"] / t["instructions"], 3)
    return row


def _cell(row: dict, key: str) -> str:
    v = row.get(key)
    if key == "compiles":
        return "yes" if v else "NO"
    if key == "vs_ref":
        if row.get("n_diff") is None:
            return "-"
        return "identical" if row["n_diff"] == 0 else f"{row['n_diff']}/{row['output_elems']} differ"
    if key == "arena_ok":
        return {True: "yes", False: "NO", None: "-"}[v]
    if key == "x_cmsis_nn" and v is not None:
        return f"{v:.3f}x"
    return "" if v is None else (f"{v:,}" if isinstance(v, int) else str(v))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("families", nargs="*", help="family .tflite names (default: all in tests/fixtures/families)")
    ap.add_argument("--device", action="store_true", help="run our firmware (and TFLM's, with a harness) on QEMU")
    ap.add_argument("--board", default="qemu-mps2-an500")
    ap.add_argument("--tflm-harness", default=os.environ.get(peers.HARNESS_ENV))
    ap.add_argument("--tflm-src", default=os.environ.get("TFLM_SRC", "/tmp/tflm_src/tflite-micro"))
    ap.add_argument("--tflm-build", default=os.environ.get("TFLM_BUILD", "/tmp/tflm_build"))
    ap.add_argument("--timeout", type=int, default=3000)
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "families.json")
    args = ap.parse_args(argv)
    models = [FAMILIES / (n if n.endswith(".tflite") else n + ".tflite") for n in args.families] or \
        sorted(FAMILIES.glob("*.tflite"))
    for m in models:
        if not m.is_file():
            ap.error(f"{m} not found (families: {', '.join(p.stem for p in sorted(FAMILIES.glob('*.tflite')))})")
    harness = peers.Harness(args.tflm_harness, args.tflm_src, args.tflm_build)
    if args.device and harness.missing("cmsis_nn"):
        print(f"TFLM side skipped: {harness.missing('cmsis_nn')} (python benchmarks/peers.py prints the set-up)",
              file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="tvmf-families-") as tmp:
        rows = []
        for m in models:
            print(f"{m.name}", file=sys.stderr, flush=True)
            rows.append(family_row(m, args, harness, Path(tmp)))
    cells = [[t for _, t in COLUMNS]] + [[_cell(r, k) for k, _ in COLUMNS] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    for n, line in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for r in rows:
        for k in ("error", "device_error"):
            if k in r:
                print(f"  {r['family']}: {r[k][:400]}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"board": args.board, "device": args.device, "rows": rows}, indent=2,
                                    default=str) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
