"""RESHAPE / ONNX Reshape, Flatten, Squeeze, Unsqueeze -> a copy (or requantize)."""
from __future__ import annotations

from .core import Match, QTensor
from .registry import register_rule
from .requantize import emit_requantize


@register_rule(
    "relax.reshape", "relax.flatten", "relax.squeeze", "relax.expand_dims",
    tflite={"RESHAPE": "of a tensor with H*W = 1 or C = 1, or of a 2-D tensor"},
    onnx={"Reshape": "constant shape; of an NCHW tensor only when H*W = 1 or C = 1",
          "Flatten": "of an NCHW tensor only when H*W = 1 or C = 1",
          "Squeeze": "as Reshape", "Unsqueeze": "as Reshape"},
)
def reshape(ctx, m: Match) -> QTensor:
    """``quantize(reshape(dequantize(x)))`` -> row-major copy into the new shape, requantized if
    the quantization changes (see ``requantize.emit_requantize``)::

        y.flat[i] = x.flat[i]                     (same quantization)
        y.flat[i] = clamp(MBQM(x.flat[i] - x_zp, M, s) + y_zp)   otherwise

    An NCHW source tensor is NHWC after legalization, so only reshapes that do not mix
    channels with space (H*W = 1 or C = 1) keep their meaning.

    Before::

        y = R.quantize(R.reshape(R.dequantize(x, s, z), R.shape([1, 64])), s, z)    # x: (1, 64, 1, 1)

    After::

        y = R.call_tir(reshape, (x,), R.Tensor((1, 64), "int8"))
    """
    return emit_requantize(ctx, ctx.input(m.call.args[0], m.op.split(".")[-1]), m.out)
