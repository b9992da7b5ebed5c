"""Lower bounds on the activation arena, read off the legalized graph (live bytes: any layout, any bank).

``largest_tensor_bytes``: an unfused plan holds every op's output whole, so no unfused arena
(in-place reuse or not) is below the largest tensor the graph computes.

``row_stream_floor``: with the model input held whole and kernels that compute whole output
rows (ours, fused or not), the second conv's first row needs ``kh - pad_top`` rows of the
first conv's output, and the last of these reads input rows from ``r * stride - pad_top``
on. At that instant those output rows and every input row not yet read are live, so no
such plan is below their sum. Going under it needs rows computed in column pieces (2D
tiling) or the input out of RAM (``stream_input=True``).
"""
from __future__ import annotations

import tvm

from .conv_chains import CONV_KINDS, kernel_calls
from .memory_plan import _bytes_of


def largest_tensor_bytes(mod: tvm.IRModule) -> int:
    """The largest output of any kernel call in the legalized (unfused) module."""
    return max((_bytes_of(c.var.ty) for c in kernel_calls(mod)), default=0)


def row_stream_floor(mod: tvm.IRModule) -> dict | None:
    """The row-streaming floor of the legalized (unfused) module as a dict (``bytes`` and its
    terms), or None when the model does not start with two chained convs."""
    convs = [c for c in kernel_calls(mod) if c.kind in CONV_KINDS]
    if len(convs) < 2:
        return None
    first, second = convs[0], convs[1]
    if first.arg_names[0] != mod["main"].params[0].name or second.arg_names[0] != first.name:
        return None
    _, h, w, c = first.params.in_shape
    _, _, ow, oc = first.params.out_shape
    rows_needed = max(1, second.params.kernel[0] - second.params.padding[0])
    first_live_row = max(0, (rows_needed - 1) * first.params.strides[0] - first.params.padding[0])
    terms = {"input_rows_live": h - first_live_row, "input_row_bytes": w * c,
             "first_conv_rows": rows_needed, "first_conv_row_bytes": ow * oc}
    return {"bytes": terms["input_rows_live"] * terms["input_row_bytes"]
            + terms["first_conv_rows"] * terms["first_conv_row_bytes"], "terms": terms}
