#!/usr/bin/env python3
"""Lower bounds on the arena, computed from the model graph, next to what the planner reaches.

    python benchmarks/memory_floor.py                   # mbv2-0.35-320 and mbv2-0.35-144 (~10 s)
    python benchmarks/memory_floor.py --models mbv2-0.35-96

No device: this compiles each model (fuse "none" and "auto", codegen off) and reads shapes
and the memory plan. Two bounds (tvm_fused/passes/memory_floor.py), both on live bytes (any
layout, any bank):

  largest_tensor_bytes   the largest tensor an unfused graph computes (model input left out).
                         An unfused plan holds every op's output whole at once, so no unfused
                         arena without the input can be smaller, with any in-place reuse.
  row_stream_floor_bytes the model input held whole, kernels that compute whole output rows
                         (ours): before the second conv emits its first row it needs
                         ``kh - pad_top`` rows of the first conv's output, and the last of
                         these rows reads input rows from ``r * stride - pad_top`` on. So at
                         that instant the input rows not yet consumed plus those output rows
                         are live: no fused arena of row kernels can be smaller.
                         (Smaller needs 2D tiling, i.e. rows computed in column pieces.)

Compared with: `target_quarter_bytes` = 0.25 x the unfused arena (issue 10's target for
0.35-320 with the input held whole), msf-CNN's published unfused 194,400 B (0.35 at 144 px,
input excluded). Writes benchmarks/results/memory_floor.json (or --json).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

MSF_CNN_UNFUSED_BYTES = 194_400  # msf-CNN (NeurIPS 2025), MobileNetV2-0.35 at 144 px, input excluded
DEFAULT = ["mbv2-0.35-320", "mbv2-0.35-144"]


def bounds(mod) -> dict:
    """The two graph bounds of the legalized module ``mod`` (tvm_fused/passes/memory_floor.py)."""
    from tvm_fused.passes.memory_floor import largest_tensor_bytes, row_stream_floor

    floor = row_stream_floor(mod)
    if floor is None:
        raise SystemExit("memory_floor.py: the model does not start with two chained convs")
    return {"largest_tensor_bytes": largest_tensor_bytes(mod), "row_stream_floor_bytes": floor["bytes"],
            "row_stream_floor_terms": floor["terms"]}


def measure(name: str) -> dict:
    import tvm_fused
    from fusion import LATENCY_BUDGET, model_source

    source, _, _ = model_source(name)
    t = time.perf_counter()
    none = tvm_fused.compile(source, name=name, fuse="none", codegen=False, progress=False)
    auto = tvm_fused.compile(source, name=name, fuse="auto", latency_budget=LATENCY_BUDGET, codegen=False,
                             progress=False)
    row = {"model": name, **bounds(none.mod),
           "unfused_arena_bytes": none.report["arena_bytes"],
           "unfused_arena_bytes_without_input": none.report["arena_bytes_without_input"],
           "fused_arena_bytes": auto.report["arena_bytes"],
           "input_bytes": none.report["input_bytes"]}
    row["target_quarter_bytes"] = row["unfused_arena_bytes"] // 4
    row["fused_ratio"] = round(row["fused_arena_bytes"] / row["unfused_arena_bytes"], 4)
    row["row_stream_floor_ratio"] = round(row["row_stream_floor_bytes"] / row["unfused_arena_bytes"], 4)
    row["seconds"] = round(time.perf_counter() - t, 1)
    return row


def format_table(rows) -> str:
    lines = ["| model | unfused arena | fused `auto` arena (x) | row-stream floor (x) | 0.25x target "
             "| unfused w/o input | largest tensor | msf-CNN unfused |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['unfused_arena_bytes']:,} | {r['fused_arena_bytes']:,} "
                     f"({r['fused_ratio']:.4f}) | {r['row_stream_floor_bytes']:,} ({r['row_stream_floor_ratio']:.4f}) "
                     f"| {r['target_quarter_bytes']:,} | {r['unfused_arena_bytes_without_input']:,} "
                     f"| {r['largest_tensor_bytes']:,} | {MSF_CNN_UNFUSED_BYTES:,} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(DEFAULT), help="comma-separated zoo or mbv2-WIDTH-RESOLUTION names")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "memory_floor.json"))
    args = ap.parse_args(argv)
    rows = []
    for i, name in enumerate(args.models.split(",")):
        print(f"[{i + 1}] {name}: compiling unfused and fused", file=sys.stderr, flush=True)
        rows.append(measure(name))
    print(format_table(rows))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"msf_cnn_unfused_bytes": MSF_CNN_UNFUSED_BYTES, "rows": rows}, indent=2) + "\n")
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
