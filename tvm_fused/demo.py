"""`tvm-fused demo`: a bundled MobileNetV2-like int8 model, unfused vs fused, on a
Cortex-M7 (QEMU mps2-an500).

Compiles the zoo model twice (fuse="none" and fuse="auto"), builds both firmwares,
runs both on QEMU over the RPC with the same seeded input, checks both outputs
against the host reference (TVM's LLVM build of the unfused module) bit for bit,
and prints arena, stack, peak RAM, flash and instruction counts side by side.
Exit status 1 when an output differs from the reference.

    tvm-fused demo                          # mbv2-0.35-224, fuse=auto (~30 s)
    tvm-fused demo --model mbv2-0.35-144 --fuse 3 --json out.json
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import validate
from .boards import BOARDS
from .errors import UsageError

# MobileNetV2-0.35 at its usual 224 px: 58 M MACs, ~0.5 MB of weights. Unfused its arena
# (735 KiB) does not fit a 512 KiB Cortex-M7 such as the F767; fused (213 KiB) it does.
# The whole demo takes ~30 s on 2 cores (mbv2-0.35-144: ~25 s, fits both ways).
DEFAULT_MODEL = "mbv2-0.35-224"
BOARD = "qemu-mps2-an500"
F767_SRAM_BYTES = BOARDS["nucleo-f767zi"].sram_bytes  # a real chip to compare peak RAM with
DEFAULT_JSON = "demo_result.json"

# (key, label); the ratio column is fused/unfused
ROWS = [("arena_bytes", "arena_bytes"), ("arena_bytes_without_input", "arena_bytes_without_input"),
        ("stack_bytes", "stack_bytes"), ("runtime_ram_bytes", "runtime_ram_bytes"),
        ("peak_ram_bytes", "peak_ram_bytes"), ("flash_bytes", "flash_bytes"),
        ("instructions", "instructions")]


def _fuse_arg(text: str):
    import argparse

    try:
        fuse = validate.fuse_setting(text)
        _check_fused(fuse)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from e
    return fuse


def _check_fused(fuse) -> None:
    if fuse in ("none", 0):
        raise UsageError("the demo compares unfused with fused: use --fuse auto or --fuse N (N >= 1)")


def add_parser(add_parser_fn, resolve_model) -> None:
    """Register `demo` (add_parser_fn(name, **kwargs) -> an argparse subparser)."""
    import argparse

    p = add_parser_fn("demo", help="MobileNetV2-like model unfused vs fused on QEMU Cortex-M7 (the main demo)",
                      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"zoo name or .onnx/.tflite path (default {DEFAULT_MODEL})")
    p.add_argument("--fuse", type=_fuse_arg, default="auto", help="fused variant: auto (default) or N blocks")
    p.add_argument("--json", default=None,
                   help=f"write the result here (default ./{DEFAULT_JSON}, or a temp dir if . is not writable)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random int8 input")
    p.add_argument("--project-dir", default=None,
                   help="keep the two firmware projects here (default: a temp dir, removed afterwards)")
    p.add_argument("--force", action="store_true",
                   help="use --project-dir even if it holds files tvm-fused did not write")
    p.add_argument("-q", "--quiet", action="store_true", help="only the table")
    p.set_defaults(func=lambda args: cmd_demo(args, resolve_model))


class _Steps:
    def __init__(self, total: int, quiet: bool):
        self.total, self.n, self.quiet = total, 0, quiet
        self.seconds = {}

    def __call__(self, key: str, label: str, fn, *args, **kwargs):
        self.n += 1
        if not self.quiet:
            print(f"[{self.n}/{self.total}] {label} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        result = fn(*args, **kwargs)
        dt = time.perf_counter() - t
        self.seconds[key] = round(dt, 2)
        if not self.quiet:
            print(f"      done in {dt:.1f} s", file=sys.stderr, flush=True)
        return result


def _upload_progress(quiet: bool):
    """A live byte counter on a terminal (carriage returns only there); one summary line in logs."""
    if quiet:
        return None
    tty = sys.stderr.isatty()
    state = {"last": -1, "t0": None}

    def progress(done, total):
        if state["t0"] is None:
            state["t0"] = time.perf_counter()
        pct = 100 * done // total
        if done >= total:
            dt = max(time.perf_counter() - state["t0"], 1e-6)
            print(f"      uploaded the input over the UART: {total:,} bytes, {total / 1024 / dt:.0f} KiB/s"
                  + " " * 10, file=sys.stderr, flush=True)
        elif tty and pct != state["last"]:
            state["last"] = pct
            print(f"      uploading the input over the UART: {done:,}/{total:,} bytes ({pct}%)", end="\r",
                  file=sys.stderr, flush=True)

    return progress


def _default_json() -> Path:
    cwd = Path.cwd()
    if os.access(cwd, os.W_OK):
        return cwd / DEFAULT_JSON
    return Path(tempfile.gettempdir()) / DEFAULT_JSON


def _metrics(report: dict, m: dict, y, ref) -> dict:
    match = bool(np.asarray(y).size == np.asarray(ref).size
                 and np.array_equal(np.asarray(y).reshape(-1), np.asarray(ref).reshape(-1)))
    out = {"arena_bytes": m["arena_bytes"], "arena_bytes_without_input": report["arena_bytes_without_input"],
           "stack_bytes": m["stack_bytes"], "runtime_ram_bytes": m["runtime_ram_bytes"],
           "peak_ram_bytes": m["peak_ram_bytes"], "flash_bytes": m["flash_bytes"],
           "instructions": m["instructions"],
           "instructions_per_mac": round(m["instructions"] / report["macs"], 3) if report["macs"] else None,
           "output_matches_reference": match, "canaries_ok": m["canaries_ok"],
           "planned_arena_bytes": report["arena_bytes"], "weights_bytes": report.get("weights_bytes"),
           "fits_512KiB_sram": m["peak_ram_bytes"] <= F767_SRAM_BYTES}
    if not match:
        a = np.asarray(y).reshape(-1).astype(np.int16)
        b = np.asarray(ref).reshape(-1).astype(np.int16)
        if a.size == b.size:
            out["mismatched_elements"] = int(np.count_nonzero(a != b))
            out["max_abs_difference"] = int(np.max(np.abs(a - b)))
    return out


def format_table(result: dict) -> str:
    u, f = result["unfused"], result["fused"]
    fl = f"fused ({result['fuse_mode']})"
    lines = [f"{result['model']} on {result['board']} (Cortex-M7, QEMU), input {result['input_shape']} int8, "
             f"{result['macs'] / 1e6:.1f} M MACs",
             "",
             f"  {'':<26} {'unfused':>14} {fl:>14} {'fused/unfused':>14}"]
    for key, label in ROWS:
        ratio = result["ratios"].get(key)
        lines.append(f"  {label:<26} {u[key]:>14,} {f[key]:>14,} {ratio:>14.3f}")
    lines.append(f"  {'instructions_per_mac':<26} {u['instructions_per_mac']:>14} {f['instructions_per_mac']:>14}")
    yes = {True: "yes", False: "NO"}
    lines.append(f"  {'output_matches_reference':<26} {yes[u['output_matches_reference']]:>14} "
                 f"{yes[f['output_matches_reference']]:>14}")
    lines.append(f"  {'fits 512 KiB SRAM (F767)':<26} {yes[u['fits_512KiB_sram']]:>14} "
                 f"{yes[f['fits_512KiB_sram']]:>14}")
    lines.append("")
    lines.append("  peak_ram_bytes = arena + stack high-water (device) + runtime .data/.bss (ELF);")
    lines.append("  instructions: exact QEMU -icount counts per inference (not Cortex-M7 cycles).")
    fuse = result["fuse"]
    if fuse.get("explanation"):
        lines.append("")
        lines.append(f"fusion: {fuse['explanation']}")
    for k, c in enumerate(fuse.get("chains", [])):
        lines.append(f"  chain {k}: {len(c['layers'])} layers {c['input_shape']} -> {c['output_shape']}, "
                     f"ring buffers {c['scratch_bytes']:,} B instead of {c['unfused_intermediate_bytes']:,} B "
                     f"of intermediate tensors (rows kept per tensor: {c['ring_rows']})")
    est = fuse.get("estimated_latency_ratio")
    if est is not None:
        lines.append(f"  latency: estimated {est:.4f}x, measured {result['ratios']['instructions']:.4f}x "
                     "(instructions fused/unfused)")
    return "\n".join(lines)


def run_demo(model=DEFAULT_MODEL, fuse="auto", seed: int = 0, project_dir=None, quiet: bool = False,
             resolve_model=None, force: bool = False) -> dict:
    """The demo as a function: returns the result dict (what --json writes).

    Checks everything first (fuse, the project folder, the ARM toolchain and QEMU, the model)."""
    from . import compile as compile_model
    from .micro import build_firmware, run_firmware
    from .micro.project import check_project_dir, project_lock
    from .micro.tools import require_device_tools
    from .output import mark

    fuse = validate.fuse_setting(fuse)
    _check_fused(fuse)
    if project_dir is not None:
        check_project_dir(project_dir, force)
    require_device_tools(BOARD)
    source, name = (resolve_model or validate.model_source)(model)
    steps = _Steps(7, quiet)
    t0 = time.perf_counter()
    unfused = steps("compile_unfused", f"compiling {name or model} unfused", compile_model, source,
                    board=BOARD, fuse="none", name=name, progress=not quiet)
    fused = steps("compile_fused", f"compiling {unfused.name} with fuse={fuse}", compile_model, source,
                  board=BOARD, fuse=fuse, name=name, progress=not quiet)
    if not fused.report["fuse"].get("chains"):
        print(f"note: fuse={fuse} fused nothing for {unfused.name}: "
              f"{fused.report['fuse'].get('explanation', '')}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="tvmf-demo-") as tmp, \
            project_lock(Path(project_dir) if project_dir else Path(tmp)):
        root = Path(project_dir) if project_dir else Path(tmp)
        mark(root, "demo firmware projects")
        proj_u, _, _ = steps("build_unfused", f"building the unfused firmware for {BOARD}", build_firmware,
                             unfused, BOARD, root / "unfused")
        proj_f, _, _ = steps("build_fused", f"building the fused firmware for {BOARD}", build_firmware,
                             fused, BOARD, root / "fused")
        x = unfused.random_input(seed)
        ref = steps("host_reference", "host reference (TVM's LLVM build of the unfused model)",
                    unfused.reference, x)
        y_u, m_u, s_u = steps("qemu_unfused", "running the unfused firmware on QEMU", run_firmware, proj_u, x,
                              board=BOARD, upload_progress=_upload_progress(quiet))
        y_f, m_f, s_f = steps("qemu_fused", "running the fused firmware on QEMU", run_firmware, proj_f, x,
                              board=BOARD, upload_progress=_upload_progress(quiet))
        result = {"model": unfused.name, "board": BOARD, "fuse_mode": str(fuse), "seed": seed,
                  "input_shape": unfused.io["inputs"][0]["shape"], "macs": unfused.report["macs"],
                  "unfused": _metrics(unfused.report, m_u, y_u, ref),
                  "fused": _metrics(fused.report, m_f, y_f, ref)}
    result["ratios"] = {key: round(result["fused"][key] / result["unfused"][key], 4)
                        for key, _ in ROWS if result["unfused"][key]}
    result["outputs_match_reference"] = (result["unfused"]["output_matches_reference"]
                                         and result["fused"]["output_matches_reference"])
    result["fuse"] = dict(fused.report["fuse"])
    result["device_seconds"] = {"unfused": s_u, "fused": s_f}
    result["seconds"] = dict(steps.seconds, total=round(time.perf_counter() - t0, 2))
    result["project_dir"] = str(project_dir) if project_dir else None
    return result


def cmd_demo(args, resolve_model) -> int:
    from .output import write_json

    out = validate.output_file(Path(args.json) if args.json else _default_json(), "--json")
    result = run_demo(args.model, args.fuse, seed=args.seed, project_dir=args.project_dir, quiet=args.quiet,
                      resolve_model=resolve_model, force=getattr(args, "force", False))
    print(format_table(result))
    write_json(out, result, "--json")
    print(f"\nwrote {out} (total {result['seconds']['total']:.0f} s)")
    if not result["outputs_match_reference"]:
        bad = [k for k in ("unfused", "fused") if not result[k]["output_matches_reference"]]
        print(f"FAILED: the {' and '.join(bad)} output on {BOARD} differs from the host reference", file=sys.stderr)
        return 1
    print(f"OK: both outputs on {BOARD} equal the host reference bit for bit")
    return 0
