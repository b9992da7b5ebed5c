"""PAD / PADV2 / ONNX Pad -> ``pad_nd_int8`` (any axes, constant value); a spatial zero-point pad
is folded into a following conv."""
from __future__ import annotations

from ...errors import UnsupportedModelError
from ...schedules.fixed_point import round_half_away
from ...schedules.layout import PadNdParams, pad_nd_int8
from .core import Match, QTensor, prim_value
from .layout import int8_out, qdq_in, requantize_to, stored_axes
from .registry import register_rule


def _pad(ctx, m: Match, data: QTensor, quantized_value: bool) -> QTensor:
    """The pad kernel at x's quantization. ``quantized_value``: the pad value is already int8
    (TFLite: the zero point, or PADV2's int8 constant); else a real value quantized like x."""
    attrs = m.call.attrs
    if str(getattr(attrs, "pad_mode", "constant")) != "constant":
        raise UnsupportedModelError(f"{m.layer}: pad mode '{attrs.pad_mode}' is not supported (only constant)")
    rank = len(data.shape)
    widths = [int(v) for v in attrs.pad_width]
    src_pairs = [(widths[2 * i], widths[2 * i + 1]) for i in range(rank)]
    pairs = tuple(src_pairs[i] for i in stored_axes(data.src_layout, rank))
    value = prim_value(m.call.args[1]) if len(m.call.args) > 1 else float(getattr(attrs, "pad_value", 0.0))
    q = round(value) if quantized_value else data.zero_point + int(round_half_away(value / data.scale))
    if not -128 <= q <= 127:
        raise UnsupportedModelError(f"{m.layer}: pad value {value} is outside the int8 range")
    p = PadNdParams(data.shape, pairs, int(q))
    tensor = ctx.emit("pad", pad_nd_int8(p), [data.var], p.out_shape, data.scale, data.zero_point,
                      data.src_layout, p, macs=0)
    if rank == 4 and q == data.zero_point and pairs[0] == (0, 0) and pairs[3] == (0, 0):
        (top, bottom), (left, right) = pairs[1], pairs[2]
        tensor.padded_from = (data, (top, left, bottom, right))  # a following conv reads x directly
    return tensor


@register_rule(
    "relax.nn.pad", domain="int8",
    tflite={"PAD": "any axes, with the zero point", "PADV2": "any axes, with a constant int8 value"},
)
def pad_int8_rule(ctx, m: Match) -> QTensor | None:
    """TFLite PAD / PADV2 on the int8 tensor (``reference_ops::Pad``)::

        y[i] = x[i - before] inside, pad_value (int8; the zero point for PAD) outside

    A spatial pad with the zero point remembers its source (``QTensor.padded_from``): a conv
    reading it adds the pads to its own padding and the pad kernel becomes dead code.

    Before::

        y = R.nn.pad(x, pad_width=[0, 0, 1, 1, 1, 1, 0, 0], pad_value=-3)     # x: int8, zero point -3

    After::

        y = R.call_tir(pad, (x,), R.Tensor((1, H + 2, W + 2, C), "int8"))
    """
    data, _ = int8_out(ctx, m)
    return None if data is None else _pad(ctx, m, data, quantized_value=True)


@register_rule("relax.nn.pad", onnx={"Pad": "constant mode, any axes; requantized after if the output differs"})
def pad(ctx, m: Match) -> QTensor:
    """``quantize(pad(dequantize(x), v))`` -> int8 pad with ``q = x_zp + round_half_away(v / x_scale)``
    outside, then a requantize if the output quantization differs.

    Before::

        y = R.quantize(R.nn.pad(R.dequantize(x, s, z), pad_width=[0, 0, 0, 0, 1, 1, 1, 1]), s, z)

    After::

        y = R.call_tir(pad, (x,), R.Tensor((1, H + 2, W + 2, C), "int8"))
    """
    tensor = _pad(ctx, m, qdq_in(ctx, m), quantized_value=False)
    out = requantize_to(ctx, tensor, m.out)
    return out
