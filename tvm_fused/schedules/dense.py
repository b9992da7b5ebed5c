"""int8 fully connected kernel (TFLite ``reference_integer_ops::FullyConnected``).

acc = sum_k (x[k] - z_in) * w[k, o] + bias[o]; then requantize, output zero point,
clamp, cast. Per-tensor quantization is passed as per-channel tables of equal
entries, so one kernel serves both.
"""
from __future__ import annotations

from dataclasses import dataclass

from tvm import te

from .common import finish_prim_func, MAX_REDUCTION
from .conv2d import requantize_output


@dataclass(frozen=True)
class DenseParams:
    """x: (N, K) int8, weight: (K, M) int8."""

    batch: int
    in_features: int
    out_features: int
    in_zp: int
    out_zp: int
    act_min: int = -128
    act_max: int = 127

    @property
    def macs(self) -> int:
        return self.batch * self.in_features * self.out_features


def dense_int8(p: DenseParams, name: str = "dense"):
    """PrimFunc(x, weight, bias, multiplier, shift, out)."""
    if p.in_features > MAX_REDUCTION:
        raise ValueError(f"{p.in_features} inputs could overflow the int32 accumulator")
    x = te.placeholder((p.batch, p.in_features), "int8", name="x")
    weight = te.placeholder((p.in_features, p.out_features), "int8", name="weight")
    bias = te.placeholder((p.out_features,), "int32", name="bias")
    mult = te.placeholder((p.out_features,), "int32", name="multiplier")
    shift = te.placeholder((p.out_features,), "int32", name="shift")
    k = te.reduce_axis((0, p.in_features), name="k")
    acc = te.compute(
        (p.batch, p.out_features),
        lambda b, o: te.sum((x[b, k].astype("int32") - p.in_zp) * weight[k, o].astype("int32"), axis=k),
        name="acc",
    )
    out = te.compute(
        (p.batch, p.out_features),
        lambda b, o: requantize_output(acc[b, o] + bias[o], mult[o], shift[o], p.out_zp, p.act_min, p.act_max),
        name="out",
    )
    return finish_prim_func(te.create_prim_func([x, weight, bias, mult, shift, out]), name, accumulate_into="out")
