"""Kernel speed on the QEMU Cortex-M7: instructions per model and per MAC, unfused and fused.

    python benchmarks/kernels.py                                   # the fixture, --fuse none and auto
    python benchmarks/kernels.py tests/fixtures/mbv2_035_96.tflite --zoo mbv2-1.0-96 --fuse none
    python benchmarks/kernels.py --gemm 2x4x4 --depthwise 1x2      # another default schedule
    python benchmarks/kernels.py --fuse none --tuning-log t.json     # after `tvm-fused tune ... -o t.json`

Prints one row per (model, fuse) and writes benchmarks/results/kernels.json. QEMU
(mps2-an500, -icount) counts executed instructions exactly; these are not cycles.
``--gemm PBxCBxUW`` / ``--depthwise UG[xPB]`` override the untuned defaults of
tvm_fused/schedules/config.py for a whole run (what a tuner would search per layer).
Each run's output is checked bit-exact against TVM's host (LLVM) build.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIXTURE = ROOT / "tests" / "fixtures" / "mbv2_035_96.tflite"
# TFLite Micro + CMSIS-NN on the same QEMU, same model and input (/work/shared/PEERS.md, peers/tflm_qemu)
TFLM_CMSIS_NN = {"mbv2_035_96": 46_389_789}


def _override_defaults(gemm: str | None, depthwise: str | None):
    from tvm_fused.schedules import config

    if gemm:
        pb, cb, uw = (int(v) for v in gemm.split("x"))
        config.GemmConfig.__init__.__defaults__ = (pb, cb, uw, False)
    if depthwise:
        ug, pb = (int(v) for v in (depthwise + "x1").split("x")[:2])
        config.DepthwiseConfig.__init__.__defaults__ = (ug, pb)
    return dataclasses.asdict(config.GemmConfig()), dataclasses.asdict(config.DepthwiseConfig())


def _run(cm, x, board, attempts=3):
    from tvm_fused.micro import run_on_device

    for attempt in range(attempts):
        try:
            return run_on_device(cm, x, board=board)
        except Exception as e:  # a loaded host can starve QEMU's serial link: retry the whole run
            if attempt == attempts - 1:
                raise
            print(f"  retrying after: {e}", file=sys.stderr, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="model files (default: the mbv2_035_96 fixture)")
    ap.add_argument("--zoo", nargs="*", default=[], help="zoo model names (tvm_fused.models)")
    ap.add_argument("--fuse", nargs="*", default=["none", "auto"])
    ap.add_argument("--board", default="qemu-mps2-an500")
    ap.add_argument("--gemm", help="GemmConfig default as PBxCBxUW, e.g. 2x4x4")
    ap.add_argument("--depthwise", help="DepthwiseConfig default as UG[xPB] (unroll_groups, pixel_block)")
    ap.add_argument("--tuning-log", default=None, help="a `tvm-fused tune` log to apply (rows marked tuned)")
    ap.add_argument("-o", "--output", default=str(ROOT / "benchmarks" / "results" / "kernels.json"))
    args = ap.parse_args(argv)

    import tvm_fused
    from tvm_fused import models

    gemm_cfg, dw_cfg = _override_defaults(args.gemm, args.depthwise)
    paths = [Path(m) for m in args.models] or ([] if args.zoo else [FIXTURE])
    paths += [models.path(z) for z in args.zoo]
    rows = []
    for path in paths:
        for fuse in args.fuse:
            t0 = time.time()
            cm = tvm_fused.compile(str(path), board=args.board, fuse=int(fuse) if fuse.isdigit() else fuse,
                                   progress=False, tuning_log=args.tuning_log)
            x = cm.random_input(0)
            run = _run(cm, x, args.board)
            insns = int(run.measurement["instructions"])
            macs = int(cm.report["macs"])
            name = path.stem
            row = {"model": name, "fuse": fuse, "tuning_log": args.tuning_log, "instructions": insns, "macs": macs,
                   "instructions_per_mac": round(insns / macs, 3), "arena_bytes": cm.report["arena_bytes"],
                   "matches_reference": bool(np.array_equal(np.asarray(run.output).reshape(-1),
                                                            cm.reference(x).reshape(-1))),
                   "vs_tflm_cmsis_nn": round(insns / TFLM_CMSIS_NN[name], 4) if name in TFLM_CMSIS_NN else None,
                   "seconds": round(time.time() - t0, 1)}
            rows.append(row)
            print(f"{name:24s} fuse={fuse:5s} {insns:>13,} instr  {row['instructions_per_mac']:6.3f}/MAC  "
                  f"arena {row['arena_bytes']:>8,}  vs TFLM+CMSIS-NN {row['vs_tflm_cmsis_nn']}  "
                  f"match={row['matches_reference']}", flush=True)
    by_model = {}
    for r in rows:
        by_model.setdefault(r["model"], {})[r["fuse"]] = r["instructions"]
    for model, d in by_model.items():
        if "none" in d and "auto" in d:
            print(f"{model}: fused auto / unfused = {d['auto'] / d['none']:.4f}")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"board": args.board, "counts": "QEMU -icount instructions (not cycles)",
                               "gemm_config": gemm_cfg, "depthwise_config": dw_cfg, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0 if all(r["matches_reference"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
