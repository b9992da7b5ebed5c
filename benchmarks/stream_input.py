#!/usr/bin/env python3
"""Streamed input at a resolution whose frame alone would not fit: MobileNetV2-0.35 (full
backbone) at 480x480 with --stream-input --fuse auto --ram-budget 512K.

    python benchmarks/stream_input.py [--width 0.35] [--resolution 480] [--ram-budget 512K]

1. compile with stream_input=True, fuse="auto" (latency budget 1.05), ram_budget;
2. run on QEMU mps2-an500 with the same RAM budget in its linker script; the test frame is
   uploaded over RPC into mps.ram outside that budget (standing in for a camera) and served
   row by row through tvmgen_default_read_input_rows(); output vs the host reference;
3. link the NUCLEO-F767ZI project (512 KB SRAM) through tvm_fused.compile(board="nucleo-f767zi",
   ...), generate_project, build_project (there the frame is a const in flash).
Writes benchmarks/results/stream_input.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    import tvm_fused
    from tvm_fused import models
    from tvm_fused.boards import parse_bytes
    from tvm_fused.micro import build_project, generate_project
    from tvm_fused.micro.runner import outputs_equal, run_on_device

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=float, default=0.35)
    ap.add_argument("--resolution", type=int, default=480)
    ap.add_argument("--ram-budget", default="512K")
    ap.add_argument("--latency-budget", type=float, default=1.05)
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "stream_input.json"))
    args = ap.parse_args(argv)
    budget = parse_bytes(args.ram_budget)
    name = f"mbv2-{args.width}-{args.resolution}"
    model = models.mobilenet_v2(width=args.width, resolution=args.resolution)
    work = Path(tempfile.mkdtemp(prefix="tvmf-stream-"))
    row = {"model": name, "ram_budget": budget, "latency_budget": args.latency_budget}

    t = time.perf_counter()
    cm = tvm_fused.compile(model, board="qemu-mps2-an500", fuse="auto", stream_input=True, ram_budget=budget,
                           latency_budget=args.latency_budget, name=name, progress=False)
    r = cm.report
    row.update({"arena_bytes": r["arena_bytes"], "stream_input": r["stream_input"],
                "frame_bytes": r["stream_input"]["frame_bytes"], "explanation": r["fuse"]["explanation"],
                "estimated_latency_ratio": r["fuse"]["estimated_latency_ratio"],
                "compile_seconds": round(time.perf_counter() - t, 1)})
    print(f"{name}: arena {r['arena_bytes']:,} B (frame {row['frame_bytes']:,} B not in RAM; row buffer "
          f"{r['stream_input']['row_buffer_bytes']:,} B); {r['fuse']['explanation']}", flush=True)

    x = cm.random_input(0)
    t = time.perf_counter()
    ref = cm.reference(x)
    row["reference_seconds"] = round(time.perf_counter() - t, 1)
    run = run_on_device(cm, x, board="qemu-mps2-an500", project_dir=work / "qemu", ram_budget=budget)
    m = run.measurement
    row["qemu"] = {k: m[k] for k in ("stack_bytes", "runtime_ram_bytes", "peak_ram_bytes", "flash_bytes",
                                     "instructions", "canaries_ok")}
    row["qemu"]["output_matches_reference"] = outputs_equal(run.output, ref)
    row["qemu"]["frame_source"] = "uploaded over RPC into mps.ram (0x60000000), outside the RAM budget"
    print(f"QEMU (RAM_BUDGET={budget}): peak RAM {m['peak_ram_bytes']:,} B, {m['instructions']:,} instructions, "
          f"output matches reference: {row['qemu']['output_matches_reference']}", flush=True)

    f767 = tvm_fused.compile(model, board="nucleo-f767zi", fuse="auto", stream_input=True, ram_budget="512K",
                             latency_budget=args.latency_budget, name=name, progress=False)
    project = generate_project(f767, board="nucleo-f767zi", project_dir=work / "f767")
    elf = build_project(project)
    from tvm_fused.micro.elfsize import elf_memory

    mem = elf_memory(elf)
    row["nucleo_f767zi"] = {"linked": True, "static_ram_bytes": mem["static_ram_bytes"],
                            "flash_bytes": mem["flash_bytes"],
                            "frame_source": "const all-zero frame in flash (a camera would supply rows)"}
    print(f"nucleo-f767zi: linked, static RAM {mem['static_ram_bytes']:,} B, flash {mem['flash_bytes']:,} B")
    ok = row["qemu"]["output_matches_reference"] and m["peak_ram_bytes"] <= budget
    row["ok"] = bool(ok)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(row, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
