"""ADD / ONNX Add -> ``add_int8`` (same shapes), or a bias add folded into conv / fully connected."""
from __future__ import annotations

from dataclasses import replace

from ...schedules import AddParams, add_int8
from ..quant_graph import op_name
from .core import Match, QTensor
from .registry import get_rule, register_rule


@register_rule(
    "relax.add",
    tflite={"ADD": "int8; numpy broadcasting (kernel broadcast_add) or same shapes; fused RELU/RELU6"},
    onnx={"Add": "int8 tensors or int8 constants, numpy broadcasting; or the bias of a Conv/Gemm/MatMul"},
)
def add(ctx, m: Match) -> QTensor:
    """``quantize(dequantize(a) + dequantize(b))`` -> int8 elementwise add, TFLite's arithmetic.

    TFLite's ``reference_integer_ops::Add`` (Prepare in ``add.cc``), with
    ``twice_max = 2 * max(a_scale, b_scale)`` and each ``(M, shift)`` quantized from a
    double-precision ratio (``MBQM`` = MultiplyByQuantizedMultiplier)::

        a' = MBQM((a - a_zp) << 20, M_a, s_a)      M_a * 2^s_a = a_scale / twice_max
        b' = MBQM((b - b_zp) << 20, M_b, s_b)      M_b * 2^s_b = b_scale / twice_max
        y  = clamp(MBQM(a' + b', M_o, s_o) + y_zp, act_min, act_max)
                                                   M_o * 2^s_o = twice_max / (2^20 * y_scale)

    If one operand is a constant and the other a conv2d / matmul (a bias add), the rule of that
    op is called instead with ``match.bias`` set.

    Before::

        y = R.quantize(R.add(R.dequantize(a, sa, za), R.dequantize(b, sb, zb)), sy, zy)

    After::

        y = R.call_tir(add, (a, b), R.Tensor(a.shape, "int8"))
    """
    a, b = m.call.args
    for main, other in ((a, b), (b, a)):
        bias = ctx.const(other)
        inner = ctx.producer(main)
        rule = get_rule(op_name(inner)) if op_name(inner) else None
        if bias is not None and rule is not None and rule.bias:
            return ctx.lower(replace(m, call=inner, bias=bias))
    ta, tb = ctx.dequantized(a), ctx.dequantized(b)
    if ta is None or tb is None or ta.shape != tb.shape:
        # broadcasting or a quantized constant operand: the broadcast kernel (same arithmetic)
        from .binary import lower_binary

        return lower_binary(ctx, m, "add", a, b)
    out = m.out
    p = AddParams(ta.shape, ta.scale, ta.zero_point, tb.scale, tb.zero_point, out.scale, out.zero_point,
                  out.act_min, out.act_max)
    return ctx.emit("add", add_int8(p), [ta.var, tb.var], ta.shape, out.scale, out.zero_point, ta.src_layout,
                    p, macs=0)
