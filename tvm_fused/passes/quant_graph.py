"""Read an imported (dequantize -> float op -> quantize) Relax function as a graph.

The frontends give a flat dataflow block. The legalization pass needs to ask,
for the float value feeding a ``quantize``: which op made it, from which
dequantized tensors or constants. ``QuantGraph`` answers that without emitting
anything, so a pattern that does not match leaves no half-built IR behind.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax

from ..errors import UnsupportedModelError


@dataclass
class DequantConst:
    """A dequantized constant: integer values, per-axis (or scalar) scale and zero point."""

    values: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int  # axis the scale runs along (ignored when the scale is a scalar)

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    def scale_along(self, axis: int, size: int) -> np.ndarray:
        """The scale as a vector over ``axis`` of length ``size`` (broadcast if per-tensor)."""
        if not self.per_channel:
            return np.full(size, float(self.scale.reshape(-1)[0]), dtype=np.float64)
        if self.axis != axis:
            raise UnsupportedModelError(
                f"weight quantized along axis {self.axis}, expected the output-channel axis {axis}")
        return self.scale.astype(np.float64).reshape(-1)

    def float_values(self) -> np.ndarray:
        shape = [1] * self.values.ndim
        if self.per_channel:
            shape[self.axis] = -1
        return (self.values.astype(np.float64) - self.zero_point.reshape(shape)) * self.scale.reshape(shape)


def const_value(expr) -> np.ndarray | None:
    """numpy value of a Relax constant, else None."""
    if isinstance(expr, tvm.ir.Constant):
        value = expr.value
        return value.numpy() if hasattr(value, "numpy") else None
    return None


def scalar(expr, what: str) -> float:
    value = const_value(expr)
    if value is None or value.size != 1:
        raise UnsupportedModelError(f"{what} must be a scalar constant (per-tensor quantization)")
    return value.reshape(-1)[0].item()


class QuantGraph:
    """Bindings of the main function, looked up by variable."""

    def __init__(self, func: relax.Function):
        self.func = func
        self.bindings: list[tuple[relax.Var, relax.Expr]] = []
        self.definition: dict[relax.Var, relax.Expr] = {}
        body = func.body
        for block in body.blocks:
            for binding in block.bindings:
                if not isinstance(binding, relax.VarBinding):
                    raise UnsupportedModelError(f"unexpected binding {type(binding).__name__} in the model")
                self.bindings.append((binding.var, binding.value))
                self.definition[binding.var] = binding.value
        self.result = body.body

    def producer(self, expr):
        """The Call or Constant behind ``expr`` (looking through variables)."""
        while isinstance(expr, relax.Var) and expr in self.definition:
            expr = self.definition[expr]
        return expr


def op_name(expr) -> str | None:
    """'relax.nn.conv2d' for a call of that op, else None."""
    if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
        return expr.op.name
    return None
