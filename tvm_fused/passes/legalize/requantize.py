"""QUANTIZE (int8 -> int8) and quantize(dequantize(x)) -> ``requantize_int8`` (or a copy)."""
from __future__ import annotations

import math

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
    if shape == src.shape:  # same elements in the same order: requantize (or copy) in place of a reshape
        return _emit(ctx, src, shape, layout, out)
    # A reshape: row-major over the model's element order. A 4-D NCHW tensor with spatial extent
    # and channels is stored NHWC, so it goes back to model order first, and a 4-D NCHW result
    # with spatial extent and channels returns to NHWC (the stored order of every 4-D tensor) after.
    from .layout import to_source_order, to_stored_order

    if len(src.shape) == 4 and _reordered(src.src_layout, _model_shape(src)):
        src = to_source_order(ctx, src)
    if _reordered(layout, out.src_shape):
        return to_stored_order(ctx, _emit(ctx, src, tuple(out.src_shape), "", out), layout)
    return _emit(ctx, src, shape, layout, out)


def _model_shape(t: QTensor) -> tuple:
    n, h, w, c = t.shape  # stored NHWC
    return (n, c, h, w)


def _reordered(layout: str, model_shape) -> bool:
    """Whether a 4-D tensor of this source layout and model shape is stored in another element order."""
    return layout == "NCHW" and len(model_shape) == 4 and model_shape[1] != 1 and model_shape[2] * model_shape[3] != 1


def _emit(ctx, src: QTensor, shape, layout: str, out: OutputQuant) -> QTensor:
    p = RequantizeParams(src.shape, shape, src.scale, src.zero_point, out.scale, out.zero_point,
                         out.act_min, out.act_max)
    kind = "reshape" if p.is_copy else "requantize"
    return ctx.emit(kind, requantize_int8(p), [src.var], shape, out.scale, out.zero_point, layout, p, macs=0)


@register_rule(
    "relax.dequantize",
    tflite={"QUANTIZE": "int8 -> int8 (requantize)", "RELU": "int8 (table lookup, TFLite's float32 multiplier)",
            "RELU6": "int8 (table lookup)", "RELU_N1_TO_1": "int8 (table lookup)"},
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
    src = ctx.input(m.value, "quantize")
    if ctx.source_format == "tflite" and not m.quantize.args[0].same_as(m.value):
        return _tflite_relu(ctx, m, src)
    return emit_requantize(ctx, src, m.out)


def _tflite_relu(ctx, m: Match, src: QTensor) -> QTensor:
    """TFLite's standalone RELU / RELU6 / RELU_N1_TO_1 (``QuantizedReluX``) differ from QUANTIZE:
    the multiplier comes from ``s_in / s_out`` divided in float32 and the bounds from
    ``z_out + roundf(bound / s_out)`` in float32. The op is a table lookup
    (``schedules/lut.py:relu_table``)::

        y = clamp(z_out + MBQM(x - z_in, M, s), z_out + roundf(lo / s_out), z_out + roundf(hi / s_out))
    """
    from tvm import relax

    from ...schedules import lut
    from ..quant_graph import op_name
    from .core import prim_value

    lo, hi = -math.inf, math.inf
    node = m.quantize.args[0]
    while not node.same_as(m.value):
        act = ctx.producer(node)
        if op_name(act) == "relax.clip":
            lo, hi = max(lo, prim_value(act.args[1])), min(hi, prim_value(act.args[2]))
        elif op_name(act) == "relax.nn.relu":
            lo = max(lo, 0.0)
        elif op_name(act) == "relax.nn.relu6":
            lo, hi = max(lo, 0.0), min(hi, 6.0)
        node = act.args[0]
    out = m.out
    table = lut.relu_table(src.scale, src.zero_point, out.scale, out.zero_point, lo, hi)
    p = lut.LutParams(src.shape, "relu")
    return ctx.emit("relu", lut.lut_int8(p), [src.var, relax.const(table)], src.shape, out.scale,
                    out.zero_point, src.src_layout, p, macs=0)
