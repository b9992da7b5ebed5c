#!/usr/bin/env python3
"""Largest input that fits a chip's SRAM, unfused vs fused, found and then confirmed.

    python benchmarks/max_resolution.py [--models mbv2-0.35-96,mbv2-1.0-96] [--modes none,auto,stream]
                                        [--ram-budget 512K] [--no-run]

Modes: none (unfused, in-place reuse), auto (fuse="auto" within an estimated 1.05x
instructions, input held whole), stream (auto + stream_input=True: the frame never
sits in RAM; on QEMU it is uploaded outside the RAM budget and served row by row).
The model builder stops at 480 px; a mode that still fits there reports 480 with
"max_plus_32" not tried.

1. `tvm-fused plan --max-resolution` logic: the largest square resolution (multiple of
   32) whose planned arena + firmware stack + runtime data fits the budget.
2. Confirmation by linking the NUCLEO-F767ZI project (512 KB SRAM): the found resolution
   must link, the next one (+32 px) must fail with a region overflow.
3. Confirmation by running the found resolution on QEMU mps2-an500 with the same RAM
   budget in its linker script: the output must equal the host reference bit for bit;
   the measured stack and peak RAM are reported.
Prints a table and writes JSON (benchmarks/results/max_resolution.json).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _save(path, budget, results) -> None:
    """Written after every step, so a long sweep leaves its results so far."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"budget": budget, "results": results}, indent=2) + "\n")


def main(argv=None) -> int:
    import tvm_fused
    from tvm_fused import models, plan
    from tvm_fused.boards import parse_bytes
    from tvm_fused.micro import ModelDoesNotFitError, Session, build_project, generate_project

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="mbv2-0.35-96,mbv2-1.0-96", help="zoo models whose resolution is varied")
    ap.add_argument("--modes", default="none,auto,stream")
    ap.add_argument("--ram-budget", default="512K")
    ap.add_argument("--no-run", action="store_true", help="link only, do not run on QEMU")
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "max_resolution.json"))
    args = ap.parse_args(argv)
    budget = parse_bytes(args.ram_budget)
    work = Path(tempfile.mkdtemp(prefix="tvmf-maxres-"))
    results = []
    for model_name in args.models.split(","):
        kwargs = dict(models.ZOO[model_name])
        kwargs.pop("resolution", None)
        for mode in args.modes.split(","):
            fuse, stream = ("none", False) if mode == "none" else ("auto", mode == "stream")
            latency = None if fuse == "none" else 1.05
            print(f"== {model_name} {mode}: searching", flush=True)
            found = plan.max_resolution(kwargs, budget, fuse, stream_input=stream, latency_budget=latency,
                                        stop=480)
            res = found["max_resolution"]
            row = {"model": model_name, "width": kwargs.get("width"), "mode": mode, "max_resolution": res,
                   "planned_ram": next((t["ram_needed"] for t in found["tried"] if t["resolution"] == res), None)}
            results.append(row)
            _save(args.json, budget, results)
            if res is None:
                continue
            for r, expect in ((res, True), (res + 32, False)):
                if r > 480:
                    row["f767_links_at_max_plus_32"] = None
                    row["f767_message_max_plus_32"] = "not tried: the model builder stops at 480 px"
                    continue
                compile_kw = dict(fuse=fuse, progress=False, stream_input=stream, latency_budget=latency,
                                  name=f"{model_name}@{r}")
                cm = tvm_fused.compile(models.mobilenet_v2(**kwargs, resolution=r), board="nucleo-f767zi",
                                       **compile_kw)
                project = generate_project(cm, board="nucleo-f767zi", project_dir=work / f"f767-{mode}-{r}")
                try:
                    build_project(project)
                    linked, message = True, "linked"
                except ModelDoesNotFitError as exc:
                    linked, message = False, str(exc).splitlines()[0]
                print(f"   {r} px on nucleo-f767zi: {message}", flush=True)
                row[f"f767_links_at_{'max' if expect else 'max_plus_32'}"] = linked
                row[f"f767_message_{'max' if expect else 'max_plus_32'}"] = message
                if expect and not args.no_run:
                    cm = tvm_fused.compile(models.mobilenet_v2(**kwargs, resolution=r), board="qemu-mps2-an500",
                                           **compile_kw)
                    qemu = generate_project(cm, board="qemu-mps2-an500", project_dir=work / f"qemu-{mode}-{r}",
                                            ram_budget=budget)
                    build_project(qemu)
                    t0 = time.perf_counter()
                    with Session(qemu) as s:
                        x = cm.random_input(0)
                        s.set_input(x)
                        m = s.measure(repeat=1)
                        y = s.get_output()
                    row.update({"qemu_output_matches_reference": bool(np.array_equal(
                                    y.reshape(-1), cm.reference(x).reshape(-1))),
                                "arena_bytes": cm.report["arena_bytes"], "stack_bytes": m["stack_bytes"],
                                "peak_ram_bytes": m["peak_ram_bytes"], "instructions": m.get("instructions"),
                                "qemu_seconds": round(time.perf_counter() - t0, 1)})
                    print(f"   {r} px on QEMU with RAM_BUDGET={budget}: output matches reference: "
                          f"{row['qemu_output_matches_reference']}, peak RAM {m['peak_ram_bytes']:,} B", flush=True)
            _save(args.json, budget, results)
    print()
    print(f"{'model':<14} {'mode':<7} {'max px':>7} {'links':>6} {'+32 fails':>10} {'qemu ok':>8} {'peak_ram':>10}")
    for r in results:
        plus = r.get("f767_links_at_max_plus_32")
        print(f"{r['model']:<14} {r['mode']:<7} {str(r['max_resolution']):>7} {str(r.get('f767_links_at_max')):>6} "
              f"{'-' if plus is None else str(not plus):>10} {str(r.get('qemu_output_matches_reference', '-')):>8} "
              f"{r.get('peak_ram_bytes', 0):>10,}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"budget": budget, "results": results}, indent=2) + "\n")
    print(f"wrote {out}")
    ok = all(r.get("f767_links_at_max", False) and r.get("f767_links_at_max_plus_32") is not True
             and r.get("qemu_output_matches_reference", True) for r in results if r["max_resolution"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
