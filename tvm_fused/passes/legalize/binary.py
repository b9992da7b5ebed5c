"""MUL, SUB, ADD with broadcasting, PRELU (and ONNX Mul, Sub) -> ``binary_int8``.

The integer formulas and how each multiplier is derived are in ``schedules/binary.py``
(TFLite's Prepare: MUL and PRELU multiply/divide the float32 scale fields, ADD/SUB divide
in double). Either operand may be a quantized constant (an int8 initializer / buffer).
ONNX operands in NCHW are NHWC after legalization; a lower-rank operand broadcast against
a 4-D one is accepted when its elements keep their order in NHWC (``[C, 1, 1]``, a scalar).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import relax

from ...errors import UnsupportedModelError
from ...schedules.binary import BinaryParams, binary_int8, broadcast_shape
from .activations import hard_sigmoid_input, hard_swish_input, lower_hard_sigmoid, lower_hard_swish
from .core import Match, QTensor
from .registry import register_rule


@dataclass
class Operand:
    """One int8 input of a binary kernel."""

    arg: relax.Expr           # the int8 var or a relax.const
    shape: tuple              # shape the kernel indexes (NHWC-aligned for 4-D outputs)
    scale: float
    zero_point: int


def _to_kernel_shape(shape: tuple, src_layout: str, out_rank: int, what: str) -> tuple:
    """A source-layout shape broadcast against an NCHW-sourced 4-D output, in NHWC order."""
    if src_layout != "NCHW" or out_rank != 4 or len(shape) == 4:
        return tuple(shape)
    padded = (1,) * (4 - len(shape)) + tuple(shape)
    n, c, h, w = padded
    nhwc = (n, h, w, c)
    if [d for d in padded if d != 1] != [d for d in nhwc if d != 1]:
        raise UnsupportedModelError(
            f"{what}: broadcasting a {shape} operand against an NCHW tensor would need a transpose; "
            "only operands like [C, 1, 1] or scalars are supported")
    return nhwc


def operand(ctx, expr, out_rank: int, layout: str, what: str) -> Operand:
    """An int8 operand of a binary op: a dequantized tensor or a quantized constant."""
    tensor = ctx.dequantized(expr)
    if tensor is not None:  # 4-D tensors are NHWC already
        return Operand(tensor.var, _to_kernel_shape(tensor.shape, layout, out_rank, what), tensor.scale,
                       tensor.zero_point)
    const = ctx.const(expr)
    if const is None or const.values.dtype != np.int8 or const.per_channel:
        raise UnsupportedModelError(
            f"{what}: each operand must be an int8 tensor or a per-tensor quantized int8 constant")
    values = const.values
    if layout == "NCHW" and values.ndim == 4:
        values = values.transpose(0, 2, 3, 1)
        shape = values.shape
    else:
        shape = _to_kernel_shape(values.shape, layout, out_rank, what)
    return Operand(relax.const(np.ascontiguousarray(values).reshape(shape)), tuple(shape),
                   float(const.scale.reshape(-1)[0]), int(np.asarray(const.zero_point).reshape(-1)[0]))


def lower_binary(ctx, m: Match, op: str, a_expr, b_expr) -> QTensor:
    """Emit ``binary_int8`` for ``op`` on two operands (shared by ADD with broadcasting)."""
    if op == "add":
        hard_sigmoid = hard_sigmoid_input(ctx, m.call)
        if hard_sigmoid is not None:
            return lower_hard_sigmoid(ctx, m, *hard_sigmoid)
    out = m.out
    rank = len(out.src_shape)
    layout = "NCHW" if ctx.source_format == "onnx" and rank == 4 else ("NHWC" if rank == 4 else "")
    a = operand(ctx, a_expr, rank, layout, op)
    b = operand(ctx, b_expr, rank, layout, op)
    try:
        out_shape = broadcast_shape(a.shape, b.shape)
    except ValueError as err:
        raise UnsupportedModelError(f"{m.layer}: {op}: {err}") from None
    p = BinaryParams(op, a.shape, b.shape, a.scale, a.zero_point, b.scale, b.zero_point, out.scale,
                     out.zero_point, out.act_min, out.act_max)
    kind = "broadcast_add" if op == "add" else op  # "add" kernels are fusion-chain members (AddParams)
    return ctx.emit(kind, binary_int8(p, kind), [a.arg, b.arg], out_shape, out.scale, out.zero_point,
                    layout if len(out_shape) == 4 else "", p, macs=int(np.prod(out_shape)) if op == "mul" else 0)


@register_rule(
    "relax.multiply",
    tflite={"MUL": "int8; numpy broadcasting; fused RELU/RELU6"},
    onnx={"Mul": "int8 tensors or int8 constants; numpy broadcasting",
          "HardSwish": "int8 in and out (within one unit of onnxruntime)"},
)
def multiply(ctx, m: Match) -> QTensor:
    """``quantize(dequantize(a) * dequantize(b))`` -> int8 broadcast multiply
    (or ONNX HardSwish's decomposition, see ``activations.lower_hard_swish``).

    TFLite ``reference_integer_ops::BroadcastMul6DSlow``::

        y = clamp(MBQM((a - z_a) * (b - z_b), M, s) + z_o, act_min, act_max)
        M * 2^s = float32(float32(s_a * s_b) / s_o)

    Before::

        y = R.quantize(R.multiply(R.dequantize(a, sa, za), R.dequantize(b, sb, zb)), so, zo)

    After::

        y = R.call_tir(mul, (a, b), R.Tensor(broadcast(a.shape, b.shape), "int8"))
    """
    x = hard_swish_input(ctx, m.call)
    if x is not None:
        return lower_hard_swish(ctx, m, x)
    return lower_binary(ctx, m, "mul", *m.call.args)


@register_rule(
    "relax.subtract",
    tflite={"SUB": "int8; numpy broadcasting; fused RELU/RELU6"},
    onnx={"Sub": "int8 tensors or int8 constants; numpy broadcasting"},
)
def subtract(ctx, m: Match) -> QTensor:
    """``quantize(dequantize(a) - dequantize(b))`` -> int8 broadcast subtract.

    TFLite ``reference_ops::BroadcastSubSlow`` (int8), multipliers in double as for ADD::

        a' = MBQM((a - z_a) << 20, M_a, s_a);  b' = MBQM((b - z_b) << 20, M_b, s_b)
        y  = clamp(MBQM(a' - b', M_o, s_o) + z_o, act_min, act_max)

    Before::

        y = R.quantize(R.subtract(R.dequantize(a, sa, za), R.dequantize(b, sb, zb)), so, zo)

    After::

        y = R.call_tir(sub, (a, b), R.Tensor(broadcast(a.shape, b.shape), "int8"))
    """
    return lower_binary(ctx, m, "sub", *m.call.args)


@register_rule(
    "relax.where",
    tflite={"PRELU": "int8; alpha an int8 tensor or constant broadcasting against the input"},
)
def prelu(ctx, m: Match) -> QTensor:
    """``quantize(where(x >= 0, x, x * alpha))`` (TFLite PRELU as ``frontend/tflite_converter.py``
    imports it) -> int8 PRELU, TFLite's ``reference_ops::BroadcastPrelu4DSlow``::

        v = x - z_x
        y = clamp(z_o + (v >= 0 ? MBQM(v, M_1, s_1) : MBQM(v * (alpha - z_alpha), M_2, s_2)))
        M_1 = float32(s_x / s_o),  M_2 = float32(float32(s_x * s_alpha) / s_o)

    Before::

        y = R.quantize(R.where(R.greater_equal(xf, 0), xf, R.multiply(xf, af)), so, zo)

    After::

        y = R.call_tir(prelu, (x, alpha), R.Tensor(x.shape, "int8"))
    """
    from ..quant_graph import const_value, op_name

    cond, x, negative = m.call.args
    test, product = ctx.producer(cond), ctx.producer(negative)
    zero = const_value(test.args[1]) if op_name(test) == "relax.greater_equal" else None
    if (zero is None or zero.size != 1 or float(zero.reshape(-1)[0]) != 0.0 or not test.args[0].same_as(x)
            or op_name(product) != "relax.multiply"):
        raise UnsupportedModelError(f"{m.layer}: 'where' is only supported as PRELU (x >= 0 ? x : x * alpha)")
    a, b = product.args
    alpha = b if a.same_as(x) else a if b.same_as(x) else None
    if alpha is None:
        raise UnsupportedModelError(f"{m.layer}: 'where' is only supported as PRELU (x >= 0 ? x : x * alpha)")
    return lower_binary(ctx, m, "prelu", x, alpha)


def _declare_pattern_ops():
    """Relax ops and source operators that only occur inside patterns other rules consume whole."""
    from ...frontend import ops as op_registry

    op_registry.declare(provider=f"{__name__}.prelu", relax_ops=("relax.greater_equal",))
    # ONNX HardSigmoid arrives as clip(add(multiply(alpha, x), beta), 0, 1): the add rule lowers it
    op_registry.declare(provider="tvm_fused.passes.legalize.add.add",
                        onnx={"HardSigmoid": "int8 in and out (table lookup, within one unit of onnxruntime)"})


_declare_pattern_ops()
