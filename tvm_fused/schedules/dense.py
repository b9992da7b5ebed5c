"""int8 fully connected kernel (TFLite ``reference_integer_ops::FullyConnected``) on the GEMM micro-kernel.

acc = sum_k (x[k] - z_in) * w[k, o] + bias[o]; then requantize, output zero point,
clamp, cast. Per-tensor quantization is passed as per-channel tables of equal
entries, so one kernel serves both.
"""
from __future__ import annotations

from dataclasses import dataclass

from tvm.script.ir_builder import IRBuilder
from tvm.tirx.script.builder import ir as T

from .common import MAX_REDUCTION, hand_written
from .config import GemmConfig, chosen
from .gemm import GemmTask, Operand
from .weight_layout import pack_dense


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


def dense_int8(p: DenseParams, weight, bias, mult, shift, config=None, name: str = "dense"):
    """Fast kernel + constants: ``(PrimFunc(x, w8, table, out), [w8, table])``;
    ``weight`` is (in, out) int8, laid out (out, in) for the GEMM micro-kernel."""
    consts = pack_dense(p, weight, bias, mult, shift)
    return dense_kernel(p, config, name), consts


def dense_kernel(p: DenseParams, config=None, name: str = "dense"):
    """PrimFunc(x, w8, table, out): one GEMM task, pixels = batch rows."""
    if p.in_features > MAX_REDUCTION:
        raise ValueError(f"{p.in_features} inputs could overflow the int32 accumulator")
    config = config or chosen(p) or GemmConfig()
    k, m = p.in_features, p.out_features
    with IRBuilder() as ib:
        with T.prim_func():
            T.func_name(name)
            x = T.arg("x", T.buffer((p.batch, k), "int8"))
            w8 = T.arg("w8", T.buffer((k * m,), "int8"))
            table = T.arg("table", T.buffer((3 * m,), "int32"))
            out = T.arg("out", T.buffer((p.batch, m), "int8"))
            acc = T.alloc_buffer((max(1, config.pixel_block * config.channel_block),), "int32")
            x_flat = T.decl_buffer((p.batch * k,), "int8", data=x.data)
            y_flat = T.decl_buffer((p.batch * m,), "int8", data=out.data)
            task = GemmTask(Operand(x_flat), Operand(w8), Operand(table), Operand(y_flat), m, 1, k, p.out_zp,
                            p.act_min, p.act_max, acc, config)
            task.pixels(lambda i, s: i * k, lambda i: i * m, p.batch)
    return hand_written(ib.get())
