#!/usr/bin/env python3
"""Arena vs. layer-wise lower bound, in-place savings, flash estimate and compile time per zoo model.

    python benchmarks/memory.py [--models mbv2-0.35-96,...] [--quick] [--json benchmarks/results/memory.json]

Prints a table and writes JSON. Compile seconds include import, legalization,
memory planning and C generation (the model file itself is cached by the zoo).
``no_inplace``: the same plan without in-place reuse; the layer-wise lower bound
assumes an op's inputs and output apart, so in-place reuse may go below it.
``largest``: the largest single tensor, a floor for any unfused plan.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUICK = ["mbv2-0.35-96-tiny", "mbv2-0.35-96"]


def main(argv=None) -> int:
    import tvm_fused
    from tvm_fused import models

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=None, help="comma-separated zoo names (default: the whole zoo)")
    ap.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "memory.json"))
    args = ap.parse_args(argv)
    names = QUICK if args.quick else (args.models.split(",") if args.models else models.zoo_names())

    rows = []
    header = f"{'model':<20} {'arena_bytes':>12} {'no_inplace':>12} {'lower_bound':>12} {'ratio':>6} " \
             f"{'no_input':>10} {'largest':>10} {'flash_est':>10} {'MMACs':>8} {'compile_s':>9}"
    print(header)
    print("-" * len(header))
    for name in names:
        path = models.path(name)  # build + quantize once (cached), not part of compile time
        t0 = time.perf_counter()
        cm = tvm_fused.compile(str(path), name=name, progress=False)
        seconds = time.perf_counter() - t0
        r = cm.report
        row = {"model": name, "arena_bytes": r["arena_bytes"], "layerwise_lower_bound": r["layerwise_lower_bound"],
               "ratio": r["arena_over_lower_bound"], "arena_bytes_without_input": r["arena_bytes_without_input"],
               "arena_bytes_without_inplace": r["inplace"]["arena_bytes_without_inplace"],
               "arena_bytes_without_input_without_inplace": r["inplace"]["arena_bytes_without_input_without_inplace"],
               "inplace_aliases": len(r["inplace"]["aliases"]),
               "largest_tensor_bytes": max(b.size for b in cm.plan.buffers.values()),
               "flash_bytes_estimate": r["flash_bytes_estimate"], "macs": r["macs"],
               "compile_seconds": round(seconds, 2)}
        rows.append(row)
        print(f"{name:<20} {row['arena_bytes']:>12,} {row['arena_bytes_without_inplace']:>12,} "
              f"{row['layerwise_lower_bound']:>12,} {row['ratio']:>6.3f} "
              f"{row['arena_bytes_without_input']:>10,} {row['largest_tensor_bytes']:>10,} "
              f"{row['flash_bytes_estimate']:>10,} "
              f"{row['macs'] / 1e6:>8.1f} {row['compile_seconds']:>9.1f}", flush=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    worst = max(r["ratio"] for r in rows)
    print(f"worst arena/lower_bound: {worst:.3f} (target <= 1.05)")
    return 0 if worst <= 1.05 else 1


if __name__ == "__main__":
    sys.exit(main())
