"""PAD / PADV2 -> ``pad_nd_int8`` (any axes, constant value); a spatial zero-point pad is folded
into a following conv.

ONNX Pad is not supported: TVM's ONNX importer lowers it to a ``call_tir`` of TOPI's pad (not
``relax.nn.pad``), which carries no pad widths the legalizer could read; the frontend rejects it.
"""
from __future__ import annotations

from ...errors import UnsupportedModelError
from ...schedules.layout import PadNdParams, pad_nd_int8
from .core import Match, QTensor, prim_value
from .layout import clamped, int8_out, stored_axes
from .registry import register_rule


def _pad(ctx, m: Match, data: QTensor) -> QTensor:
    """The pad kernel at x's quantization; the pad value is already int8 (TFLite: the zero point,
    or PADV2's int8 constant)."""
    attrs = m.call.attrs
    if str(getattr(attrs, "pad_mode", "constant")) != "constant":
        raise UnsupportedModelError(f"{m.layer}: pad mode '{attrs.pad_mode}' is not supported (only constant)")
    rank = len(data.shape)
    widths = [int(v) for v in attrs.pad_width]
    src_pairs = [(widths[2 * i], widths[2 * i + 1]) for i in range(rank)]
    pairs = tuple(src_pairs[i] for i in stored_axes(data.src_layout, rank))
    value = prim_value(m.call.args[1]) if len(m.call.args) > 1 else float(getattr(attrs, "pad_value", 0.0))
    q = int(round(value))
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

        y[i_0, ..., i_n] = x[i_0 - b_0, ..., i_n - b_n]   if 0 <= i_k - b_k < d_k for every k
                         = q                              otherwise,   q = round(pad_value) in [-128, 127]

    (``b_k`` the pad before axis k, ``d_k`` x's extent; q = x_zp for PAD, PADV2's int8 constant
    otherwise; same quantization in and out).

    A spatial pad with the zero point remembers its source (``QTensor.padded_from``): a conv
    reading it adds the pads to its own padding and the pad kernel becomes dead code.

    Before::

        y = R.nn.pad(x, pad_width=[0, 0, 1, 1, 1, 1, 0, 0], pad_value=-3)     # x: int8, zero point -3

    After::

        y = R.call_tir(pad, (x,), R.Tensor((1, H + 2, W + 2, C), "int8"))
    """
    data, act = int8_out(ctx, m)
    return None if data is None else clamped(ctx, _pad(ctx, m, data), act)
