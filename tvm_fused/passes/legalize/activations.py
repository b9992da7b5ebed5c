"""LOGISTIC, TANH, LEAKY_RELU, HARD_SWISH (and ONNX Sigmoid, Tanh, LeakyRelu, HardSwish)
-> one 256-entry int8 table lookup (``schedules/lut.py``).

Each op maps one int8 input element to one int8 output element, so the rule evaluates the
source framework's arithmetic for all 256 inputs at compile time (Prepare) and the kernel
is ``out[i] = table[x[i] + 128]`` (Eval). TFLite models get TFLite's reference arithmetic
(bit-exact to BUILTIN_REF); ONNX models get QDQ float semantics (dequantize, float op,
quantize with round-half-even), which onnxruntime computes with its own float functions:
within one int8 unit of it.
"""
from __future__ import annotations

import math

import numpy as np
from tvm import relax

from ...errors import UnsupportedModelError
from ...schedules import lut
from ..quant_graph import const_value, op_name
from .core import Match, QTensor, prim_value
from .registry import register_rule


def emit_table(ctx, m: Match, data: QTensor, table: np.ndarray, op: str) -> QTensor:
    """Emit the lookup kernel for ``data`` with ``table`` (clamped by the folded activations)."""
    out = m.out
    table = lut.clamp_table(table, out.act_min, out.act_max)
    p = lut.LutParams(data.shape, op)
    return ctx.emit(op, lut.lut_int8(p), [data.var, relax.const(table)], data.shape, out.scale,
                    out.zero_point, data.src_layout, p, macs=0)


def emit_source_table(ctx, m: Match, data: QTensor, op: str, tflite_table, float_fn) -> QTensor:
    """The lookup kernel with TFLite's table ``tflite_table(s_in, z_in, s_out, z_out)`` for a
    TFLite model, else the QDQ float table of ``float_fn`` (ONNX)."""
    out = m.out
    q = (data.scale, data.zero_point, out.scale, out.zero_point)
    table = tflite_table(*q) if ctx.source_format == "tflite" else lut.qdq_float_table(float_fn, *q)
    return emit_table(ctx, m, data, table, op)


def _check_tflite_output_scale(m: Match, op: str, scale: float):
    """TFLite's Prepare refuses other output scales (``TF_LITE_ENSURE(scale == 1. / 256)``)."""
    if not math.isclose(m.out.scale, scale, rel_tol=1e-6):
        raise UnsupportedModelError(
            f"{m.layer}: TFLite's int8 {op} requires output scale {scale}, the model has {m.out.scale}; "
            "re-convert it with the TFLite converter")


@register_rule(
    "relax.sigmoid",
    tflite={"LOGISTIC": "int8; output scale 1/256 (TFLite requires it)"},
    onnx={"Sigmoid": "int8 in and out"},
)
def sigmoid(ctx, m: Match) -> QTensor:
    """``quantize(sigmoid(dequantize(x)))`` -> table lookup.

    TFLite (``LUTPopulate<int8_t>``, float32)::

        table[v] = clamp(round(1.0f / (1.0f + expf(-(s_in * (v - z_in)))) * (1 / s_out)) + z_out)

    Before::

        y = R.quantize(R.sigmoid(R.dequantize(x, s_in, z_in)), 1/256, -128)

    After::

        y = R.call_tir(logistic, (x, table), R.Tensor(x.shape, "int8"))
    """
    data = ctx.input(m.call.args[0], "sigmoid")
    if ctx.source_format == "tflite":
        _check_tflite_output_scale(m, "LOGISTIC", 1 / 256)
    return emit_source_table(ctx, m, data, "logistic", lut.logistic_table,
                             lambda x: np.float32(1) / (np.float32(1) + np.exp(-x)))


@register_rule(
    "relax.tanh",
    tflite={"TANH": "int8 in and out"},
    onnx={"Tanh": "int8 in and out (quantize_static leaves Tanh in float between its neighbours' QDQ)"},
)
def tanh(ctx, m: Match) -> QTensor:
    """``quantize(tanh(dequantize(x)))`` -> table lookup.

    TFLite (``LUTPopulate<int8_t>``, float32)::

        table[v] = clamp(round(tanhf(s_in * (v - z_in)) * (1 / s_out)) + z_out)

    Before::

        y = R.quantize(R.tanh(R.dequantize(x, s_in, z_in)), s_out, z_out)

    After::

        y = R.call_tir(tanh, (x, table), R.Tensor(x.shape, "int8"))
    """
    data = ctx.input(m.call.args[0], "tanh")
    return emit_source_table(ctx, m, data, "tanh", lut.tanh_table, np.tanh)


@register_rule(
    "relax.nn.leakyrelu",
    tflite={"LEAKY_RELU": "int8 in and out; any alpha"},
    onnx={"LeakyRelu": "int8 in and out"},
)
def leaky_relu(ctx, m: Match) -> QTensor:
    """``quantize(leakyrelu(dequantize(x), alpha))`` -> table lookup.

    TFLite (``reference_ops::QuantizeLeakyRelu``; multipliers from float32 ratios)::

        v = x - z_in
        y = clamp(z_out + (v >= 0 ? MBQM(v, M_id, s_id) : MBQM(v, M_a, s_a)))
        M_id * 2^s_id = s_in / s_out,  M_a * 2^s_a = s_in * alpha / s_out

    Before::

        y = R.quantize(R.nn.leakyrelu(R.dequantize(x, s_in, z_in), alpha), s_out, z_out)

    After::

        y = R.call_tir(leaky_relu, (x, table), R.Tensor(x.shape, "int8"))
    """
    data = ctx.input(m.call.args[0], "leaky_relu")
    alpha = float(m.call.attrs.alpha)
    a = np.float32(alpha)
    return emit_source_table(ctx, m, data, "leaky_relu", lambda *q: lut.leaky_relu_table(*q, alpha),
                             lambda x: np.where(x >= 0, x, a * x))


# ---- HARD_SWISH: the frontends decompose it into float ops; we recognise the pattern

def _scalar_const(expr) -> float | None:
    value = const_value(expr)
    if value is None or value.size != 1:
        return None
    return float(value.reshape(-1)[0])


def _relu6_of_x_plus_3(ctx, expr):
    """``clip(add(x, 3), 0, 6)`` -> x (the float expr), or None."""
    clip = ctx.producer(expr)
    if op_name(clip) != "relax.clip" or prim_value(clip.args[1]) != 0.0 or prim_value(clip.args[2]) != 6.0:
        return None
    add = ctx.producer(clip.args[0])
    if op_name(add) != "relax.add":
        return None
    for x, three in (add.args, reversed(add.args)):
        if _scalar_const(three) == 3.0:
            return x
    return None


def hard_swish_input(ctx, call) -> relax.Expr | None:
    """If ``call`` is the hard-swish decomposition of a frontend, the float input ``x``:

    TFLite: ``divide(multiply(x, clip(add(x, 3), 0, 6)), 6)``;
    ONNX:   ``multiply(x, divide(clip(add(x, 3), 0, 6), 6))``.
    """
    kind = op_name(call)
    if kind == "relax.divide" and _scalar_const(call.args[1]) == 6.0:
        mul = ctx.producer(call.args[0])
        if op_name(mul) == "relax.multiply":
            for x, gate in (mul.args, reversed(mul.args)):
                if _relu6_of_x_plus_3(ctx, gate) is not None and _relu6_of_x_plus_3(ctx, gate).same_as(x):
                    return x
    if kind == "relax.multiply":
        for x, gate in (call.args, reversed(call.args)):
            div = ctx.producer(gate)
            if op_name(div) == "relax.divide" and _scalar_const(div.args[1]) == 6.0:
                inner = _relu6_of_x_plus_3(ctx, div.args[0])
                if inner is not None and inner.same_as(x):
                    return x
    return None


def lower_hard_swish(ctx, m: Match, x) -> QTensor:
    """``quantize(x * relu6(x + 3) / 6)`` -> table lookup.

    TFLite (``reference_ops::HardSwish``, int16 fixed point, multipliers from float32 ratios
    reduced to int16): see ``schedules/lut.py:hard_swish_table``. ONNX: float formula.

    Before::

        y = R.quantize(R.divide(R.multiply(x, R.clip(R.add(x, 3), 0, 6)), 6), s_out, z_out)

    After::

        y = R.call_tir(hard_swish, (x_q, table), R.Tensor(x.shape, "int8"))
    """
    data = ctx.input(x, "hard_swish")
    out = m.out
    if ctx.source_format == "tflite":
        try:
            table = lut.hard_swish_table(data.scale, data.zero_point, out.scale, out.zero_point)
        except ValueError as err:
            raise UnsupportedModelError(f"{m.layer}: {err}") from None
    else:
        six, three, zero = np.float32(6), np.float32(3), np.float32(0)
        table = lut.qdq_float_table(lambda v: v * (np.clip(v + three, zero, six) / six), data.scale,
                                    data.zero_point, out.scale, out.zero_point)
    return emit_table(ctx, m, data, table, "hard_swish")


@register_rule(
    "relax.divide",
    tflite={"HARD_SWISH": "int8 in and out; output scale >= input scale / 128 (as TFLite requires)"},
)
def divide(ctx, m: Match) -> QTensor:
    """``quantize(divide(...))``: only TFLite's HARD_SWISH decomposition -> table lookup.

    TFLite ``reference_ops::HardSwish`` in int16 fixed point (``schedules/lut.py:hard_swish_table``),
    with ``M_out * 2^e_out = float32(s_in / 128 / s_out)`` and
    ``M_relu * 2^e_relu = float32(s_in / 128 / (3 / 32768))`` reduced to int16 multipliers.

    Before::

        y = R.quantize(R.divide(R.multiply(x, R.clip(R.add(x, 3), 0, 6)), 6), s_out, z_out)

    After::

        y = R.call_tir(hard_swish, (x_q, table), R.Tensor(x.shape, "int8"))
    """
    x = hard_swish_input(ctx, m.call)
    if x is None:
        raise UnsupportedModelError(f"{m.layer}: division is only supported inside HARD_SWISH")
    return lower_hard_swish(ctx, m, x)


@register_rule(
    "relax.nn.prelu",
    onnx={"PRelu": "int8 input; float (or int8) slope, one value or one per channel; one table per channel"},
)
def prelu_onnx(ctx, m: Match) -> QTensor:
    """``quantize(prelu(dequantize(x), slope, axis))`` (ONNX PRelu; quantize_static leaves its
    slope in float) -> one 256-entry table per channel, QDQ float semantics::

        table[c][v] = saturate(round_half_even(f(s_in * (v - z_in)) / s_out) + z_out),
        f(x) = x >= 0 ? x : slope[c] * x   (float32)

    Before::

        y = R.quantize(R.nn.prelu(R.dequantize(x, s_in, z_in), slope, axis=1), s_out, z_out)

    After::

        y = R.call_tir(prelu, (x, tables), R.Tensor(x.shape, "int8"))    # tables: int8[C, 256]
    """
    data = ctx.input(m.call.args[0], "prelu")
    slope = ctx.const(m.call.args[1])
    if slope is None:
        raise UnsupportedModelError(f"{m.layer}: PRelu needs a constant slope")
    values = np.asarray(slope.float_values(), np.float32).reshape(-1)
    rank = len(data.shape)
    axis = int(m.call.attrs.axis) % rank
    channel_axis = 1 if data.src_layout == "NCHW" else rank - 1
    out = m.out

    def table_for(a):
        a = np.float32(a)
        return lut.clamp_table(lut.qdq_float_table(lambda v: np.where(v >= 0, v, v * a), data.scale,
                                                   data.zero_point, out.scale, out.zero_point),
                               out.act_min, out.act_max)

    if values.size == 1:
        return emit_table(ctx, m, data, table_for(values[0]), "prelu")
    if axis != channel_axis or values.size != data.shape[-1]:
        raise UnsupportedModelError(f"{m.layer}: PRelu slope must be one value or one per channel")
    tables = np.stack([table_for(a) for a in values])
    p = lut.LutParams(data.shape, "prelu")
    return ctx.emit("prelu", lut.lut_per_channel_int8(p), [data.var, relax.const(tables)], data.shape, out.scale,
                    out.zero_point, data.src_layout, p, macs=0)


# ---- ONNX HardSigmoid: TVM imports clip(add(multiply(alpha, x), beta), 0, 1); the core folds the clip

def hard_sigmoid_input(ctx, call):
    """``(x, alpha, beta)`` if ``call`` is ``add(multiply(alpha, x), beta)`` on a dequantized ``x``
    with scalar constants (ONNX HardSigmoid before its folded ``clip(0, 1)``), else None."""
    if op_name(call) != "relax.add":
        return None
    for mul_expr, beta_expr in (call.args, tuple(reversed(call.args))):
        beta, mul = _scalar_const(beta_expr), ctx.producer(mul_expr)
        if beta is None or op_name(mul) != "relax.multiply":
            continue
        for alpha_expr, x in (mul.args, tuple(reversed(mul.args))):
            alpha = _scalar_const(alpha_expr)
            if alpha is not None and ctx.dequantized(x) is not None:
                return x, alpha, beta
    return None


def lower_hard_sigmoid(ctx, m: Match, x, alpha: float, beta: float) -> QTensor:
    """``quantize(clip(alpha * dequantize(x) + beta, 0, 1))`` (ONNX HardSigmoid, the squeeze-excite
    gate of MobileNetV3) -> table lookup with QDQ float semantics::

        table[v] = saturate(round_half_even(clip(alpha * s_in * (v - z_in) + beta, 0, 1) / s_out) + z_out)
    """
    data = ctx.input(x, "hard_sigmoid")
    out = m.out
    a, b = np.float32(alpha), np.float32(beta)
    table = lut.qdq_float_table(lambda v: np.clip(a * v + b, np.float32(0), np.float32(1)), data.scale,
                                data.zero_point, out.scale, out.zero_point)
    return emit_table(ctx, m, data, table, "hard_sigmoid")
