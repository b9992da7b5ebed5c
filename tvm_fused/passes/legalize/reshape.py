"""RESHAPE / ONNX Reshape, Flatten, Squeeze, Unsqueeze -> a copy (or requantize)."""
from __future__ import annotations

from .core import Match, OutputQuant, QTensor, shape_of
from .registry import register_rule
from .requantize import emit_requantize


@register_rule(
    "relax.reshape", "relax.flatten", "relax.squeeze", "relax.expand_dims", domain="int8",
    tflite={"RESHAPE": "constant (or folded) shape", "SQUEEZE": "-", "EXPAND_DIMS": "constant axis"},
)
def reshape_int8(ctx, m: Match) -> QTensor | None:
    """TFLite RESHAPE / SQUEEZE / EXPAND_DIMS on the int8 tensor: a row-major copy (same quantization)::

        y.flat[i] = clamp(x.flat[i], act_min, act_max)     (row-major; -128, 127 unless a clip is folded)

    (``requantize.emit_requantize`` with x's scale and zero point: a plain copy, kind ``reshape``, unless a folded clip narrows the range).

    Before::

        y = R.reshape(x, R.shape([1, 12, 2]))     # x: int8 (1, 4, 3, 2)

    After::

        y = R.call_tir(reshape, (x,), R.Tensor((1, 12, 2), "int8"))
    """
    from .layout import int8_out

    data, act = int8_out(ctx, m)
    if data is None:
        return None  # float reshape (QDQ form, or of constant weights): lowered elsewhere
    lo, hi = act
    out = OutputQuant(data.scale, data.zero_point, lo, hi, shape_of(m.var))
    return emit_requantize(ctx, data, out)


@register_rule(
    "relax.reshape", "relax.flatten", "relax.squeeze", "relax.expand_dims",
    onnx={"Reshape": "constant shape (an NCHW tensor with spatial extent is transposed to NCHW order first)",
          "Flatten": "as Reshape", "Squeeze": "as Reshape", "Unsqueeze": "as Reshape"},
)
def reshape(ctx, m: Match) -> QTensor:
    """``quantize(reshape(dequantize(x)))`` -> row-major copy into the new shape, requantized if
    the quantization changes (see ``requantize.emit_requantize``)::

        y.flat[i] = x.flat[i]                     (same quantization)
        y.flat[i] = clamp(MBQM(x.flat[i] - x_zp, M, s) + y_zp)   otherwise

    An NCHW source tensor is NHWC after legalization: a reshape that mixes channels with space
    first transposes it back to the model's NCHW order (``layout.to_source_order``).

    Before::

        y = R.quantize(R.reshape(R.dequantize(x, s, z), R.shape([1, 64])), s, z)    # x: (1, 64, 1, 1)

    After::

        y = R.call_tir(reshape, (x,), R.Tensor((1, 64), "int8"))
    """
    return emit_requantize(ctx, ctx.input(m.call.args[0], m.op.split(".")[-1]), m.out)
