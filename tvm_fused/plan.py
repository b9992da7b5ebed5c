"""`tvm-fused plan`: per-op memory tables, live-bytes plots, and the largest resolution that fits.

Planning runs import, legalization, fusion and the arena planner but no C
generation, so a what-if sweep over resolutions takes seconds per point.
"""
from __future__ import annotations

import json

from .boards import parse_bytes

# What the firmware needs besides the arena: the stack it reserves (firmware template STACK_SIZE)
# and its own .data/.bss (RPC buffers, canaries, C runtime: 2,308 B measured from the
# F767 link map; rounded up). benchmarks/max_resolution.py confirms the answer by linking.
FIRMWARE_STACK_BYTES = 16384
FIRMWARE_RUNTIME_BYTES = 4096


def memory_table(cm) -> str:
    """The report's per-op table: what runs, its output, the bytes alive while it runs."""
    r = cm.report
    lines = [f"{r['model']} (fuse={r['fuse']['mode']}): arena {r['arena_bytes']:,} B, "
             f"layer-wise lower bound {r['layerwise_lower_bound']:,} B, "
             f"without the input {r['arena_bytes_without_input']:,} B",
             f"{'#':>3} {'op':<18} {'output':<20} {'live_bytes':>11} {'scratch':>9} {'MACs':>11}"]
    peak = max(o["live_bytes"] for o in r["ops"])
    for o in r["ops"]:
        mark = "  <- peak" if o["live_bytes"] == peak else ""
        lines.append(f"{o['index']:>3} {o['name']:<18} {str(o['output']):<20} {o['live_bytes']:>11,} "
                     f"{o['scratch_bytes']:>9,} {o['macs']:>11,}{mark}")
    for c in r["fuse"].get("chains", []):
        lines.append(f"fused chain: {len(c['layers'])} layers {c['input_shape']} -> {c['output_shape']}, "
                     f"ring buffers {c['scratch_bytes']:,} B instead of {c['unfused_intermediate_bytes']:,} B "
                     f"(rows kept per tensor: {c['ring_rows']})")
    if r["fuse"].get("explanation"):
        lines.append(r["fuse"]["explanation"])
    return "\n".join(lines)


def live_bytes_by_unfused_step(unfused, fused) -> list[int]:
    """Fused live bytes laid out on the unfused op order (a fused chain spans the ops it replaced)."""
    fused_ops = list(zip(fused.plan.ops, fused.plan.live_bytes))
    chain_live = [live for op, live in fused_ops if op.op == "fused_chain"]
    by_output = {op.output: live for op, live in fused_ops}
    chain_of = {}
    for k, chain in enumerate(fused.report["fuse"].get("chains", [])):
        for name in chain["replaced"]:
            chain_of[name] = k
    return [chain_live[chain_of[op.output]] if op.output in chain_of else by_output.get(op.output, 0)
            for op in unfused.plan.ops]


def plot(unfused, fused, path, streamed=None) -> None:
    """Live bytes over the execution order, unfused vs fused (vs fused + streamed input), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = list(range(len(unfused.plan.ops)))
    fig, ax = plt.subplots(figsize=(9, 4.2))
    ax.step(steps, [b / 1024 for b in unfused.plan.live_bytes], where="mid",
            label=f"unfused (arena {unfused.report['arena_bytes'] / 1024:.0f} KiB)")
    ax.step(steps, [b / 1024 for b in live_bytes_by_unfused_step(unfused, fused)], where="mid",
            label=f"fused, {fused.report['fuse']['mode']} (arena {fused.report['arena_bytes'] / 1024:.0f} KiB)")
    if streamed is not None:
        ax.step(steps, [b / 1024 for b in live_bytes_by_unfused_step(unfused, streamed)], where="mid",
                label=f"fused + streamed input (arena {streamed.report['arena_bytes'] / 1024:.0f} KiB)")
        ax.axhline(streamed.report["arena_bytes"] / 1024, color="C2", lw=0.6, ls=":")
    ax.axhline(unfused.report["arena_bytes"] / 1024, color="C0", lw=0.6, ls=":")
    ax.axhline(fused.report["arena_bytes"] / 1024, color="C1", lw=0.6, ls=":")
    ax.set_xlabel("op (unfused execution order)")
    ax.set_ylabel("live activation bytes (KiB)")
    ax.set_title(f"{unfused.report['model']}: bytes alive per op")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fits(cm, budget: int, stack=FIRMWARE_STACK_BYTES, runtime=FIRMWARE_RUNTIME_BYTES) -> bool:
    return cm.report["arena_bytes"] + stack + runtime <= budget


def max_resolution(model_kwargs: dict, budget, fuse, step: int = 32, start: int = 96, stop: int = 1024,
                   progress=print, stream_input: bool = False, latency_budget: float | None = None) -> dict:
    """Largest square resolution (multiple of ``step``) whose arena + stack + runtime fits ``budget``."""
    from . import compile as compile_model
    from .models import mobilenet_v2

    budget = parse_bytes(budget)
    best, tried = None, []
    resolution = start
    while resolution <= stop:
        kwargs = {**model_kwargs, "resolution": resolution}
        cm = compile_model(mobilenet_v2(**kwargs), fuse=fuse, codegen=False, progress=False,
                           name=f"mbv2-{kwargs.get('width', 0.35)}-{resolution}", stream_input=stream_input,
                           latency_budget=latency_budget)
        need = cm.report["arena_bytes"] + FIRMWARE_STACK_BYTES + FIRMWARE_RUNTIME_BYTES
        ok = need <= budget
        tried.append({"resolution": resolution, "arena_bytes": cm.report["arena_bytes"], "ram_needed": need,
                      "fits": ok})
        if progress:
            progress(f"  fuse={fuse!s:<5} {resolution:>4} px: arena {cm.report['arena_bytes']:>9,} B "
                     f"+ stack/runtime {FIRMWARE_STACK_BYTES + FIRMWARE_RUNTIME_BYTES:,} B = {need:>9,} B "
                     f"{'fits' if ok else 'does not fit'}")
        if not ok:
            break
        best = resolution
        resolution += step
    return {"fuse": str(fuse), "stream_input": stream_input, "budget": budget, "max_resolution": best,
            "tried": tried}


def dump(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
