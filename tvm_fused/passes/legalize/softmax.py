"""SOFTMAX / ONNX Softmax -> ``softmax_int8`` (TFLite's fixed-point softmax, exp table in flash)."""
from __future__ import annotations

from tvm import relax

from ...errors import UnsupportedModelError
from ...schedules.softmax import SoftmaxParams, softmax_int8
from .core import Match, QTensor
from .registry import register_rule


@register_rule(
    "relax.nn.softmax",
    tflite={"SOFTMAX": "int8; beta = 1 (TVM's TFLite frontend drops beta); output scale 1/256, zero point -128"},
    onnx={"Softmax": "int8 in and out; over the channel axis (last axis of the NHWC tensor)"},
)
def softmax(ctx, m: Match) -> QTensor:
    """``quantize(softmax(dequantize(x)))`` -> int8 softmax over the last (NHWC) axis.

    TFLite's ``reference_ops::Softmax`` (kReference; gemmlowp fixed point): the exp of each
    difference to the row maximum comes from a compile-time table ``e[k] = exp(-k * s_in)``
    in Q0.31, the row sum is Q12.19, its reciprocal is computed in integers (Newton-Raphson),
    and ``y = RoundingDivideByPOT(SRDHM(1/sum, e), n) - 128`` (details in
    ``schedules/softmax.py``). Other output quantizations (ONNX) take a 16-bit probability
    and requantize it: ``y = MBQM(p16, M, s) + z_out``, ``M * 2^s = 2^-16 / s_out``.

    Before::

        y = R.quantize(R.nn.softmax(R.dequantize(x, s_in, z_in), axis=-1), 1/256, -128)

    After::

        y = R.call_tir(softmax, (x, exp_table), R.Tensor(x.shape, "int8"))
    """
    data = ctx.input(m.call.args[0], "softmax")
    rank = len(data.shape)
    axis = int(m.call.attrs.axis) % rank
    last_in_source = rank - 1 if data.src_layout != "NCHW" else 1  # NCHW channel axis is last in NHWC
    if axis != last_in_source:
        raise UnsupportedModelError(
            f"{m.layer}: softmax over axis {axis} of a {rank}-D tensor; only the channel (last NHWC) axis "
            "is supported")
    out = m.out
    if out.act_min != -128 or out.act_max != 127:
        raise UnsupportedModelError(f"{m.layer}: a clamp after softmax is not supported")
    p = SoftmaxParams(data.shape, data.scale, data.zero_point, out.scale, out.zero_point)
    if ctx.source_format == "tflite" and not p.tflite_output:
        raise UnsupportedModelError(
            f"{m.layer}: TFLite's int8 SOFTMAX requires output scale 1/256 and zero point -128, "
            f"the model has {out.scale} and {out.zero_point}")
    try:
        table = p.exp_table()
        func = softmax_int8(p)
    except ValueError as err:
        raise UnsupportedModelError(f"{m.layer}: {err}") from None
    return ctx.emit("softmax", func, [data.var, relax.const(table)], data.shape, out.scale, out.zero_point,
                    data.src_layout, p, macs=0)
