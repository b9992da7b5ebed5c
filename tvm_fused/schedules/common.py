"""Helpers shared by the kernel builders: scheduling reductions into their consumer."""
from __future__ import annotations

import tvm
from tvm import s_tir

# Largest reduction length whose int32 accumulator cannot overflow (255 * 127 per tap).
MAX_REDUCTION = (2**31 - 1) // (255 * 127)

# Set on kernels written directly in TIR (IRBuilder): they allocate exactly the scratch
# they use, so the lowering skips s_tir.CompactBufferAllocation for them, whose region
# analysis grows super-linearly with their unrolled bodies (a 7x7 depthwise: 89 s -> 0.8 s).
EXACT_BUFFERS_ATTR = "tvm_fused.exact_buffers"


def hand_written(func):
    """Mark an IRBuilder-made kernel (see EXACT_BUFFERS_ATTR)."""
    return func.with_attr(EXACT_BUFFERS_ATTR, True)


def finish_prim_func(func, name: str, accumulate_into: str | None = None):
    """Name the kernel and, for reductions, compute the accumulator inside the
    consumer's innermost loop so it is one local int32, not a full-size tensor."""
    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    if accumulate_into is not None:
        consumer = sch.get_sblock(accumulate_into)
        for block in sch.get_producers(consumer):
            loops = sch.get_loops(consumer)
            sch.compute_at(block, loops[-1])
            # initialise the accumulator before its reduction loops, not inside them
            # (gcc cannot prove the in-loop init runs first and warns)
            block_loops = sch.get_loops(block)
            if len(block_loops) > len(loops):  # all-trivial reductions have no loop left
                sch.decompose_reduction(block, block_loops[len(loops)])
    out = sch.mod["main"].with_attr("global_symbol", name)
    return out
