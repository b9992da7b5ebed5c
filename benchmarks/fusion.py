#!/usr/bin/env python3
"""Fusion on the device: MobileNetV2-like models unfused vs fuse="auto" on QEMU mps2-an500 (Cortex-M7).

    python benchmarks/fusion.py                    # full sweep (~6.5 min on 2 cores)
    python benchmarks/fusion.py --quick            # mbv2-0.35-128 + mbv2-0.35-144 (~1 min)
    python benchmarks/fusion.py --no-device        # memory plan only, no firmware (~1 min)
    python benchmarks/fusion.py --models mbv2-0.5-224,mbv2-0.35-96-tiny

Models: widths 0.35 / 0.5 / 1.0 at 128, 224 and 320 px, plus MobileNetV2-0.35 at 144 px.
A name `mbv2-W-R` that is not in the zoo is built with
`tvm_fused.models.mobilenet_v2(width=W, resolution=R)` (same seed and recipe as the zoo).

Per model and fuse mode:
  arena_bytes                the static arena (input, output, ring buffers included)
  arena_bytes_without_input  the planner's arena for the same module with the model input
                             tensor left out of the plan (report["arena_bytes_without_input"],
                             tvm_fused.passes.memory_plan re-plans without it): the scope
                             MCUNetV2 / msf-CNN report. Not arena_bytes - input_bytes.
  stack_bytes                stack high-water of one inference, painted stack on the device
  peak_ram_bytes             arena + stack_bytes + runtime .data/.bss (from the ELF)
  flash_bytes                .text + .rodata + .data load image of the firmware ELF
  instructions               exact QEMU -icount instructions per inference (not cycles)
  output_matches_reference   device output == host reference of the UNFUSED model, bit for bit
Modes: none, auto (smallest arena within an estimated 1.05x instructions) and auto-no-input
(fuse_objective="arena_without_input": the chains chosen for the scope without the model
input, also run on the device). `ratios` compare auto with none; the `*_vs_unfused_without_inplace`
ratios use the unfused arena the planner gave before in-place reuse.

Time on QEMU is dominated by uploading the input over the emulated UART (~30 KiB/s:
10 s per 320x320x3 input) and by 1.0-320 (611 M MACs, ~8 G instructions, ~15 s per run).
Default JSON: benchmarks/results/fusion.json for the full device sweep, fusion-quick.json /
fusion-memory.json / fusion-custom.json otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BOARD = "qemu-mps2-an500"
FULL = ["mbv2-0.35-128", "mbv2-0.35-144", "mbv2-0.35-224", "mbv2-0.35-320",
        "mbv2-0.5-128", "mbv2-0.5-224", "mbv2-0.5-320",
        "mbv2-1.0-128", "mbv2-1.0-224", "mbv2-1.0-320"]
QUICK = ["mbv2-0.35-128", "mbv2-0.35-144"]
MODES = ["none", "auto", "auto-no-input"]
LATENCY_BUDGET = 1.05  # fuse="auto" picks the smallest arena within this estimated instruction ratio
RATIO_KEYS = ["arena_bytes", "arena_bytes_without_input", "stack_bytes", "peak_ram_bytes", "flash_bytes",
              "instructions"]
_NAME = re.compile(r"^mbv2-(\d+(?:\.\d+)?)-(\d+)$")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def model_source(name: str):
    """(model for tvm_fused.compile, width, resolution)."""
    from tvm_fused import models

    if name in models.ZOO:
        kw = models.ZOO[name]
        return str(models.path(name)), kw.get("width"), kw.get("resolution")
    m = _NAME.match(name)
    if not m:
        raise SystemExit(f"fusion.py: '{name}' is neither a zoo model ({', '.join(models.zoo_names())}) "
                         "nor of the form mbv2-WIDTH-RESOLUTION")
    width, resolution = float(m.group(1)), int(m.group(2))
    return models.mobilenet_v2(width=width, resolution=resolution), width, resolution


def bench_model(name: str, args, workdir: Path) -> dict:
    import tvm_fused
    from tvm_fused.micro import outputs_equal, run_on_device

    t_model = time.perf_counter()
    source, width, resolution = model_source(name)
    row = {"model": name, "width": width, "resolution": resolution}
    compiled = {}
    for mode in MODES:
        t = time.perf_counter()
        fuse, objective = ("auto", "arena_without_input") if mode == "auto-no-input" else (mode, "arena")
        cm = tvm_fused.compile(source, board=BOARD, fuse=fuse, name=name, progress=False,
                               codegen=not args.no_device, fuse_objective=objective,
                               latency_budget=None if fuse == "none" else LATENCY_BUDGET)
        r = cm.report
        compiled[mode] = cm
        row[mode] = {"arena_bytes": r["arena_bytes"], "arena_bytes_without_input": r["arena_bytes_without_input"],
                     "layerwise_lower_bound": r["layerwise_lower_bound"], "input_bytes": r["input_bytes"],
                     "weights_bytes": r["weights_bytes"], "blocks_fused": r["fuse"].get("blocks_fused", 0),
                     "fusable_blocks": r["fuse"].get("fusable_blocks"),
                     "explanation": r["fuse"].get("explanation"),
                     "estimated_latency_ratio": r["fuse"].get("estimated_latency_ratio"),
                     "arena_bytes_without_inplace": r["inplace"]["arena_bytes_without_inplace"],
                     "arena_bytes_without_input_without_inplace":
                         r["inplace"]["arena_bytes_without_input_without_inplace"],
                     "runs": r["fuse"].get("runs"),
                     "compile_seconds": round(time.perf_counter() - t, 2)}
        row["macs"], row["input_bytes"] = r["macs"], r["input_bytes"]
    log(f"      planned: arena {row['none']['arena_bytes']:,} -> {row['auto']['arena_bytes']:,} B "
        f"({time.perf_counter() - t_model:.1f} s)")

    if not args.no_device:
        x = compiled["none"].random_input(args.seed)
        ref = None
        if not args.no_check:
            t = time.perf_counter()
            ref = compiled["none"].reference(x)
            log(f"      host reference: {time.perf_counter() - t:.1f} s")
        for mode in MODES:
            t = time.perf_counter()
            run = run_on_device(compiled[mode], x, board=BOARD, project_dir=workdir / f"{name}-{mode}",
                                repeat=args.repeat)
            m = run.measurement
            row[mode].update({k: m[k] for k in ("stack_bytes", "runtime_ram_bytes", "peak_ram_bytes",
                                                 "flash_bytes", "instructions", "deterministic", "canaries_ok")})
            row[mode]["device_arena_bytes"] = m["arena_bytes"]
            row[mode]["output_matches_reference"] = outputs_equal(run.output, ref) if ref is not None else None
            row[mode]["device_seconds"] = {k: v for k, v in run.seconds.items()}
            log(f"      {mode:>4}: {m['instructions']:,} instructions, peak RAM {m['peak_ram_bytes']:,} B, "
                f"match={row[mode]['output_matches_reference']} "
                f"(build {run.seconds['build']:.1f} s, upload {run.seconds['upload']:.1f} s, "
                f"run {run.seconds['run']:.1f} s)")
    none, auto = row["none"], row["auto"]
    row["ratios"] = {k: round(auto[k] / none[k], 4) for k in RATIO_KEYS if none.get(k) and auto.get(k) is not None}
    alt = row["auto-no-input"]
    row["ratios_no_input_objective"] = {k: round(alt[k] / none[k], 4) for k in RATIO_KEYS
                                        if none.get(k) and alt.get(k) is not None}
    # against the unfused plan without in-place reuse (the baseline before in-place existed)
    if none.get("peak_ram_bytes") and auto.get("peak_ram_bytes"):
        extra = none["peak_ram_bytes"] - none["arena_bytes"]
        row["ratios"]["peak_ram_bytes_vs_unfused_without_inplace"] = round(
            auto["peak_ram_bytes"] / (none["arena_bytes_without_inplace"] + extra), 4)
    row["ratios"]["arena_bytes_vs_unfused_without_inplace"] = round(
        auto["arena_bytes"] / none["arena_bytes_without_inplace"], 4)
    matches = [row[m].get("output_matches_reference") for m in MODES]
    row["outputs_match_reference"] = None if None in matches else all(matches)
    row["seconds"] = round(time.perf_counter() - t_model, 1)
    return row


def _kib(v) -> str:
    return "-" if v is None else f"{v / 1024:.1f}"


def _mi(v) -> str:
    return "-" if v is None else f"{v / 1e6:.1f}"


def _pair(a, b, fmt) -> str:
    return "-" if a is None and b is None else f"{fmt(a)}->{fmt(b)}"


def _ratio(row, key) -> str:
    v = row["ratios"].get(key)
    return "-" if v is None else f"{v:.3f}"


def format_table(rows) -> str:
    cols = [("model", max([13] + [len(r["model"]) for r in rows])), ("MMACs", 6),
            ("arena KiB", 15), ("x", 5), ("no-input KiB", 15), ("x", 5),
            ("peak RAM KiB", 15), ("x", 5), ("stack B", 9), ("M instr", 15), ("x", 5),
            ("no-input obj KiB", 16), ("x instr", 7), ("bit-exact", 9)]
    head = "  ".join(f"{c:>{w}}" if i else f"{c:<{w}}" for i, (c, w) in enumerate(cols))
    lines = ["unfused -> fuse=auto on " + BOARD + "; x = fused/unfused", head, "-" * len(head)]
    for r in rows:
        n, a = r["none"], r["auto"]
        ok = r["outputs_match_reference"]
        cells = [r["model"], f"{r['macs'] / 1e6:.1f}",
                 f"{_kib(n['arena_bytes'])}->{_kib(a['arena_bytes'])}", _ratio(r, "arena_bytes"),
                 f"{_kib(n['arena_bytes_without_input'])}->{_kib(a['arena_bytes_without_input'])}",
                 _ratio(r, "arena_bytes_without_input"),
                 _pair(n.get("peak_ram_bytes"), a.get("peak_ram_bytes"), _kib), _ratio(r, "peak_ram_bytes"),
                 _pair(n.get("stack_bytes"), a.get("stack_bytes"), lambda v: "-" if v is None else str(v)),
                 _pair(n.get("instructions"), a.get("instructions"), _mi), _ratio(r, "instructions"),
                 _kib(r["auto-no-input"]["arena_bytes_without_input"]),
                 "-" if r["ratios_no_input_objective"].get("instructions") is None
                 else f"{r['ratios_no_input_objective']['instructions']:.3f}",
                 "-" if ok is None else ("yes" if ok else "NO")]
        lines.append("  ".join(f"{c:>{w}}" if i else f"{c:<{w}}" for i, (c, (_, w)) in enumerate(zip(cells, cols))))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=None, help="comma-separated names (zoo or mbv2-WIDTH-RESOLUTION)")
    ap.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    ap.add_argument("--no-device", action="store_true", help="memory plan only: no firmware, no QEMU")
    ap.add_argument("--no-check", action="store_true", help="skip the host reference (bit-exactness check)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per firmware (counts are deterministic)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random int8 input")
    ap.add_argument("--json", default=None, help="output JSON (default: see above)")
    ap.add_argument("--workdir", default=None, help="keep the firmware projects here")
    args = ap.parse_args(argv)
    names = args.models.split(",") if args.models else (QUICK if args.quick else FULL)
    if args.json is None:
        suffix = ("-custom" if args.models else "-quick" if args.quick else "") + ("-memory" if args.no_device else "")
        args.json = str(ROOT / "benchmarks" / "results" / f"fusion{suffix}.json")

    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tvmf-fusion-") as tmp:
        workdir = Path(args.workdir or tmp)
        for i, name in enumerate(names):
            log(f"[{i + 1}/{len(names)}] {name}" + ("" if args.no_device else " (compile, build, run on QEMU)"))
            rows.append(bench_model(name, args, workdir))
    print(format_table(rows))
    meta = {"board": BOARD, "device": not args.no_device, "machine": platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "seed": args.seed, "repeat": args.repeat,
            "seconds": round(time.perf_counter() - t0, 1),
            "definitions": {
                "peak_ram_bytes": "arena_bytes + stack high-water (device) + runtime .data/.bss (ELF)",
                "arena_bytes_without_input": "planner's arena with the model input tensor left out of the plan",
                "instructions": "QEMU -icount instructions per inference (not Cortex-M7 cycles)",
                "output_matches_reference": "device output == host reference of the unfused model"}}
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out} ({meta['seconds']:.0f} s)")
    bad = [r["model"] for r in rows if r["outputs_match_reference"] is False]
    if bad:
        print(f"output differs from the host reference: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
