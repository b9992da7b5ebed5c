"""TFLite operators that TVM's Relax importer refuses when quantized, imported in QDQ form.

TVM's TFLite frontend applies some ops to int8 tensors directly or not at all; for those
we import ``dequantize -> float op -> quantize`` like every other op, so the legalizer's
rule sees the usual pattern:

- PRELU: ``quantize(where(x >= 0, x, x * alpha))`` with ``x`` and ``alpha`` dequantized
  (``alpha`` broadcasts against ``x`` with numpy rules, as TFLite's BroadcastPrelu4DSlow).
"""
from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.tflite import tflite_frontend


class QdqOperatorConverter(tflite_frontend.OperatorConverter):
    """TVM's converter plus the quantized ops listed in the module docstring."""

    _SUPPORTED_QUANTIZED_OPS = tflite_frontend.OperatorConverter._SUPPORTED_QUANTIZED_OPS | {"PRELU"}

    def convert_prelu(self, op):
        data, alpha = self.get_input_tensors(op)
        if data.qnn_params is None:
            return super().convert_prelu(op)
        out = self.get_output_tensors(op)[0]
        x = self.dequantize(self.get_tensor_expr(data), data)
        a = self.dequantize(self.get_tensor_expr(alpha), alpha)
        y = relax.op.where(relax.op.greater_equal(x, relax.const(0.0, "float32")), x, relax.op.multiply(x, a))
        return self.quantize(y, out)
