"""QUANTIZE (int8 -> int8) and quantize(dequantize(x)) -> ``requantize_int8`` (or a copy)."""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedModelError
from ...schedules import RequantizeParams, requantize_int8
from .core import Match, OutputQuant, QTensor, nhwc
from .registry import register_rule


def emit_requantize(ctx, src: QTensor, out: OutputQuant) -> QTensor:
    """``src`` with ``out``'s quantization and shape (a row-major reshape of the same elements)::

        y = clamp(MBQM(x - x_zp, M, s) + y_zp, act_min, act_max)    M * 2^s = x_scale / y_scale

    or a plain copy (kind ``reshape``) when the quantization and range are unchanged.
    """
    layout = src.src_layout if len(out.src_shape) == 4 else ""
    shape = nhwc(out.src_shape, layout)
    if int(np.prod(shape)) != int(np.prod(src.shape)):
        raise UnsupportedModelError(f"reshape {src.shape} -> {shape} changes the element count")
    if src.src_layout == "NCHW" and len(src.shape) == 4 and shape != src.shape:
        n, h, w, c = src.shape
        if h * w != 1 and c != 1:  # stored NHWC: back to the model's NCHW element order first
            from .layout import to_source_order

            src = to_source_order(ctx, src)
    p = RequantizeParams(src.shape, shape, src.scale, src.zero_point, out.scale, out.zero_point,
                         out.act_min, out.act_max)
    kind = "reshape" if p.is_copy else "requantize"
    return ctx.emit(kind, requantize_int8(p), [src.var], shape, out.scale, out.zero_point, layout, p, macs=0)


@register_rule(
    "relax.dequantize",
    tflite={"QUANTIZE": "int8 -> int8 (requantize)", "RELU": "folded as a clamp", "RELU6": "folded as a clamp"},
    onnx={"Relu": "folded as a clamp", "Clip": "constant bounds; folded as a clamp"},
)
def requantize(ctx, m: Match) -> QTensor:
    """``quantize(act(dequantize(x)))`` -> int8 requantize (new scale / zero point / clamp).

    Reached for a quantize whose input is directly a dequantized tensor (after the folded
    activations ``relu``/``relu6``/``clip``)::

        y = clamp(MBQM(x - x_zp, M, s) + y_zp, act_min, act_max)    M * 2^s = x_scale / y_scale

    Before::

        y = R.quantize(R.nn.relu(R.dequantize(x, sx, zx)), sy, zy)

    After::

        y = R.call_tir(requantize, (x,), R.Tensor(x.shape, "int8"))
    """
    return emit_requantize(ctx, ctx.input(m.value, "quantize"), m.out)
