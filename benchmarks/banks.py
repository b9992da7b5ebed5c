#!/usr/bin/env python3
"""Memory banks: a model whose arena does not fit the NUCLEO-H743ZI's 512 KiB AXI SRAM alone
but fits spread over AXI SRAM + SRAM1-3 (288 KiB), linked.

    python benchmarks/banks.py [--width 0.75] [--resolution 352]

Compiles fuse="auto" (latency budget 1.05) for nucleo-h743zi: the planner's one-arena plan
exceeds the first bank, so ``place_in_banks`` moves whole buffers (in-place groups whole)
to SRAM1-3 until every bank fits; then generate_project + build_project link it (the
linker script maps the second arena's section to SRAM1-3). Also links the same model for
nucleo-f767zi to show it does not fit there. Writes benchmarks/results/banks.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    import tvm_fused
    from tvm_fused import models
    from tvm_fused.micro import ModelDoesNotFitError, build_project, generate_project
    from tvm_fused.micro.elfsize import elf_memory

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=float, default=0.75)
    ap.add_argument("--resolution", type=int, default=352)
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "banks.json"))
    args = ap.parse_args(argv)
    name = f"mbv2-{args.width}-{args.resolution}"
    model = models.mobilenet_v2(width=args.width, resolution=args.resolution)
    work = Path(tempfile.mkdtemp(prefix="tvmf-banks-"))
    cm = tvm_fused.compile(model, board="nucleo-h743zi", fuse="auto", latency_budget=1.05, name=name, progress=False)
    one_arena = tvm_fused.compile(model, fuse="auto", latency_budget=1.05, name=name, progress=False,
                                  codegen=False).report["arena_bytes"]
    row = {"model": name, "one_arena_bytes": one_arena, "banks": cm.report["banks"],
           "explanation": cm.report["fuse"]["explanation"]}
    print(f"{name}: one arena {one_arena:,} B; banks: " + ", ".join(
        f"{b} {i['arena_bytes']:,}/{i['capacity']:,} B" for b, i in cm.report["banks"].items()), flush=True)
    elf = build_project(generate_project(cm, board="nucleo-h743zi", project_dir=work / "h743"))
    mem = elf_memory(elf)
    row["h743"] = {"linked": True, "sections": {k: v for k, v in mem["sections"].items() if "arena" in k},
                   "flash_bytes": mem["flash_bytes"]}
    print(f"nucleo-h743zi: linked; arena sections {row['h743']['sections']}", flush=True)
    f767 = tvm_fused.compile(model, board="nucleo-f767zi", fuse="auto", latency_budget=1.05, name=name,
                             progress=False)
    try:
        build_project(generate_project(f767, board="nucleo-f767zi", project_dir=work / "f767"))
        row["f767"] = {"linked": True}
    except ModelDoesNotFitError as e:
        row["f767"] = {"linked": False, "message": str(e).splitlines()[0]}
    print(f"nucleo-f767zi (one 512 KiB SRAM): {row['f767']}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(row, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if one_arena > 512 * 1024 and row["h743"]["linked"] else 1


if __name__ == "__main__":
    sys.exit(main())
