#!/usr/bin/env python3
"""Per-task effect of single schedule knobs against the defaults, on the QEMU Cortex-M7.

    python benchmarks/knobs.py [MODEL] [--parallel 2] [--max-tasks N]

For every depthwise task of the model (default: the fixture): DepthwiseConfig
(unroll_groups, pixel_block) in {1, 2}^2; for its first six GEMM tasks: the default
GemmConfig and the same with ``channels_outer=True``. Each config is measured as the
tuner does (tune/runner.py: a one-kernel model, QEMU -icount instructions, not cycles,
output checked against the host reference). Prints one row per task and writes
benchmarks/results/knobs.json. docs/tuning.md quotes it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from tvm_fused.schedules.config import DepthwiseConfig, GemmConfig
    from tvm_fused.tune.runner import measure_batch
    from tvm_fused.tune.tasks import model_tasks

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default=str(ROOT / "tests" / "fixtures" / "mbv2_035_96.tflite"))
    ap.add_argument("--board", default="qemu-mps2-an500")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "knobs.json")
    ap.add_argument("--max-tasks", type=int, default=None,
                    help="measure at most this many depthwise and GEMM tasks each (a quick check)")
    args = ap.parse_args(argv)
    tasks = model_tasks(args.model)
    dw = [t for t in tasks if t.kind == "depthwise_conv2d"][:args.max_tasks]
    gemm = [t for t in tasks if t.kind != "depthwise_conv2d"][:min(6, args.max_tasks or 6)]
    configs = {t.key: [DepthwiseConfig(u, p) for u in (1, 2) for p in (1, 2)] for t in dw}
    configs.update({t.key: [GemmConfig(), GemmConfig(channels_outer=True)] for t in gemm})
    pairs = [(t, c) for t in dw + gemm for c in configs[t.key]]
    records = measure_batch(pairs, args.board, parallel=args.parallel, check=True)
    rows = []
    for (task, config), rec in zip(pairs, records):
        if rec.error:
            print(f"{task.describe()}: {rec.error}", file=sys.stderr)
            return 1
        rows.append({"task": task.describe(), "config": dataclasses.asdict(config), "instructions": rec.cost})
    for task in dw + gemm:
        mine = [r for r in rows if r["task"] == task.describe()]
        base = mine[0]["instructions"]
        varied = [k for k in mine[0]["config"] if len({r["config"][k] for r in mine}) > 1]
        cells = "  ".join(",".join(f"{k}={r['config'][k]}" for k in varied)
                          + f" {r['instructions']:,} ({r['instructions'] / base:.3f})" for r in mine)
        print(f"{task.describe():40s} {cells}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model": Path(args.model).name, "board": args.board, "metric": "instructions",
                                     "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
