"""Pool DSP kernels (schedules/pool.py, pool_max.py): generated C (gcc, ASan+UBSan, portable
intrinsics) == TVM LLVM host build (intrinsics as plain TIR) == the previous TE kernels
(LLVM) == numpy models of TFLite's reference kernels, over random shapes (channels 1..11,
1-row inputs, odd widths, padding, strides, activation clamps) and global means longer
than the 255 taps an int16 lane holds."""
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import example, given, strategies as st

from test_dsp_kernels import GCC, SETTINGS, run_c, run_llvm
from tvm_fused.schedules import dsp
from tvm_fused.schedules.fixed_point import multiply_by_quantized_multiplier, quantize_multiplier
from tvm_fused.schedules.pool import (PoolParams, avg_pool_int8, avg_pool_int8_te, mean_params,
                                      tflite_mean_multiplier)
from tvm_fused.schedules.pool_max import MaxPoolParams, max_pool_int8, max_pool_int8_te


def _windows(p):
    """(valid mask, window values) per output pixel: arrays (N, OH, OW, KH*KW[, C])."""
    n, h, w, c = p.in_shape
    _, oh, ow, _ = p.out_shape
    kh, kw = p.kernel
    sh, sw = p.strides
    pt, pl = p.padding[:2]
    iy = np.arange(oh)[:, None] * sh - pt + np.arange(kh)[None, :]  # (OH, KH)
    ix = np.arange(ow)[:, None] * sw - pl + np.arange(kw)[None, :]  # (OW, KW)
    ok = ((iy >= 0) & (iy < h))[:, None, :, None] & ((ix >= 0) & (ix < w))[None, :, None, :]
    return ok.reshape(oh, ow, kh * kw), np.clip(iy, 0, h - 1), np.clip(ix, 0, w - 1)


def _gather(p, x):
    ok, iy, ix = _windows(p)
    oh, ow = ok.shape[:2]
    kh, kw = p.kernel
    vals = x[:, iy[:, None, :, None], ix[None, :, None, :], :]  # (N, OH, OW, KH, KW, C)
    return ok, vals.reshape(x.shape[0], oh, ow, kh * kw, x.shape[3]).astype(np.int64)


def max_pool_reference(p, x):
    """TFLite reference_integer_ops::MaxPool: max over the taps inside, clamp."""
    ok, vals = _gather(p, x)
    vals = np.where(ok[None, :, :, :, None], vals, -(1 << 20))
    return np.clip(vals.max(axis=3), p.act_min, p.act_max).astype(np.int8)


def _round_half_away(a, cnt):
    return np.where(a > 0, (a + cnt // 2) // cnt, -((-a + cnt // 2) // cnt))


def avg_pool_reference(p, x):
    """TFLite reference_integer_ops::AveragePool (same quantization), else MBQM then divide;
    TFLite MEAN (tflite_mean): MBQM with 1/count folded into the multiplier."""
    ok, vals = _gather(p, x)
    cnt = ok.sum(axis=2)[None, :, :, None].astype(np.int64)
    centre = 0 if p.same_quantization and not p.tflite_mean else p.in_zp
    total = np.where(ok[None, :, :, :, None], vals - centre, 0).sum(axis=3)
    if p.tflite_mean:
        m, s = tflite_mean_multiplier(p.in_scale, p.out_scale, p.kernel[0] * p.kernel[1])
        y = multiply_by_quantized_multiplier(total, m, s) + p.out_zp
    elif p.same_quantization:
        y = _round_half_away(total, cnt)
    else:
        m, s = quantize_multiplier(p.in_scale / p.out_scale)
        y = _round_half_away(multiply_by_quantized_multiplier(total, m, s), cnt) + p.out_zp
    return np.clip(y, p.act_min, p.act_max).astype(np.int8)


@st.composite
def _window(draw):
    c = draw(st.integers(1, 11))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padded = draw(st.booleans())
    pads = tuple(draw(st.integers(0, k - 1)) for k in (kh, kw, kh, kw)) if padded else (0, 0, 0, 0)
    h = max(draw(st.integers(1, 7)), kh - pads[0] - pads[2])
    w = max(draw(st.integers(1, 9)), kw - pads[1] - pads[3])
    batch = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**16))
    act = draw(st.sampled_from([(-128, 127), (0, 127), (-100, 90), (5, 6)]))
    return (batch, h, w, c), (kh, kw), (sh, sw), (pads[0], pads[1], pads[2], pads[3]), act, seed


def _input(shape, seed):
    rng = np.random.default_rng(seed)
    kind = seed % 4  # extremes exercise the int16 lanes and the clamps
    if kind == 0:
        return np.full(shape, -128, np.int8)
    if kind == 1:
        return np.full(shape, 127, np.int8)
    return rng.integers(-128, 128, shape, dtype=np.int8)


def _check(kernel, te_kernel, x, out_shape, expected, tmp_path):
    np.testing.assert_array_equal(run_llvm(te_kernel, [x], out_shape), expected.reshape(out_shape))
    np.testing.assert_array_equal(run_llvm(kernel, [x], out_shape), expected.reshape(out_shape))
    if GCC:
        np.testing.assert_array_equal(run_c(kernel, [x], out_shape, tmp_path), expected.reshape(out_shape))


@SETTINGS
@given(case=_window())
@example(case=((1, 1, 7, 5), (1, 3), (1, 2), (0, 1, 0, 2), (-128, 127), 7))  # 1 row, padding, odd C
@example(case=((1, 5, 5, 8), (3, 3), (2, 2), (1, 1, 1, 1), (0, 127), 2))  # SAME 3x3/2, 2 groups
@example(case=((1, 4, 5, 4), (4, 4), (1, 1), (0, 0, 0, 0), (5, 6), 2))  # 16 unrolled taps, both clamps
def test_max_pool_kernel(case, tmp_path_factory):
    shape, kernel, strides, pads, act, seed = case
    p = MaxPoolParams(shape, kernel, strides, pads, *act)
    x = _input(shape, seed)
    _check(max_pool_int8(p), max_pool_int8_te(p), x, p.out_shape, max_pool_reference(p, x),
           tmp_path_factory.mktemp("maxpool"))


@SETTINGS
@given(case=_window(), quant=st.sampled_from(["same", "requant"]), zps=st.tuples(st.integers(-128, 127),
                                                                                 st.integers(-20, 20)))
@example(case=((1, 4, 5, 3), (3, 3), (1, 1), (1, 1, 1, 1), (-128, 127), 3), quant="requant", zps=(-7, 3))
def test_avg_pool_kernel(case, quant, zps, tmp_path_factory):
    shape, kernel, strides, pads, act, seed = case
    in_zp, out_zp = zps
    if quant == "same":
        p = PoolParams(shape, kernel, strides, pads, 0.05, in_zp, 0.05, in_zp, *act)
    else:
        p = PoolParams(shape, kernel, strides, pads, 0.05, in_zp, 0.05 * (0.4 + seed % 7 / 3), out_zp, *act)
    x = _input(shape, seed)
    _check(avg_pool_int8(p), avg_pool_int8_te(p), x, p.out_shape, avg_pool_reference(p, x),
           tmp_path_factory.mktemp("avgpool"))


@SETTINGS
@given(h=st.integers(1, 20), w=st.integers(1, 20), c=st.integers(1, 11), tflite=st.booleans(),
       flatten=st.booleans(), zps=st.tuples(st.integers(-128, 127), st.integers(-20, 20)),
       ratio=st.floats(0.2, 3.0), seed=st.integers(0, 2**16))
@example(h=16, w=17, c=7, tflite=True, flatten=True, zps=(-128, 0), ratio=1.0, seed=0)  # 272 taps, all -128
@example(h=16, w=17, c=8, tflite=False, flatten=False, zps=(127, 0), ratio=0.7, seed=1)  # 272 taps, all 127
@example(h=1, w=300, c=5, tflite=True, flatten=True, zps=(3, -3), ratio=1.3, seed=0)  # a row wider than 255
def test_mean_kernel(h, w, c, tflite, flatten, zps, ratio, seed, tmp_path_factory):
    """Spatial mean (TFLite MEAN / ONNX GlobalAveragePool) as a global pool."""
    in_zp, out_zp = zps
    p = replace(mean_params((1, h, w, c), 0.05, in_zp, 0.05 * ratio, out_zp), tflite_mean=tflite)
    x = _input(p.in_shape, seed)
    out_shape = (1, c) if flatten else p.out_shape
    _check(avg_pool_int8(p, flatten=flatten), avg_pool_int8_te(p, flatten=flatten), x, out_shape,
           avg_pool_reference(p, x), tmp_path_factory.mktemp("mean"))


@pytest.mark.skipif(GCC is None, reason="needs gcc")
def test_byte_intrinsics_header_matches_llvm_rules(tmp_path):
    """max_s8x4 / min_s8x4 / sxtab16(_ror8) / lo16 / hi16: the header's portable C == the LLVM
    rules (plain TIR, evaluated by the host build) on edge and random words."""
    import tvm
    from tvm.tirx.script.builder import ir as T
    from tvm.script.ir_builder import IRBuilder
    from tvm import tirx

    rng = np.random.default_rng(1)
    edges = [0, -1, 1, 0x7F7F7F7F, -0x7F7F7F80, 0x80808080 - (1 << 32), 0x7F80017F, -0x10000, 0x7FFF7FFF,
             -0x7FFF8000, 0x00017FFF]
    a = np.array(edges + list(rng.integers(-2**31, 2**31, 200)), np.int32)
    b = np.array(list(reversed(edges)) + list(rng.integers(-2**31, 2**31, 200)), np.int32)
    ops = [lambda u, v: dsp.max_s8x4(u, v), lambda u, v: dsp.min_s8x4(u, v), lambda u, v: dsp.sxtab16(u, v),
           lambda u, v: dsp.sxtab16_ror8(u, v), lambda u, v: dsp.lo16(u), lambda u, v: dsp.hi16(v)]
    with IRBuilder() as ib:
        with T.prim_func():
            T.func_name("k")
            xa = T.arg("a", T.buffer((a.size,), "int32"))
            xb = T.arg("b", T.buffer((a.size,), "int32"))
            out = T.arg("out", T.buffer((len(ops), a.size), "int32"))
            with T.serial(0, a.size) as i:
                for j, op in enumerate(ops):
                    T.buffer_store(out, op(xa[i], xb[i]), [j, i])
    func = ib.get()
    from tvm_fused.backend.plain_c import HOST_PIPELINE_NAME
    mod = tvm.compile(tvm.IRModule({"k": func.with_attr("global_symbol", "k")}), target="llvm",
                      tir_pipeline=HOST_PIPELINE_NAME)
    got = tvm.runtime.tensor(np.zeros((len(ops), a.size), np.int32))
    mod["k"](tvm.runtime.tensor(a), tvm.runtime.tensor(b), got)
    llvm = got.numpy()

    def sb(v, k):
        return ((v.astype(np.int64) >> (8 * k)) & 0xFF).astype(np.uint8).view(np.int8).astype(np.int64)

    def pack8(vals):
        return sum((v & 0xFF) << (8 * k) for k, v in enumerate(vals)).astype(np.uint32).view(np.int32)

    def lanes(v):
        return (v.astype(np.int64) & 0xFFFF).astype(np.uint16).view(np.int16).astype(np.int64), v.astype(np.int64) >> 16

    def pack16(lo, hi):
        return ((lo & 0xFFFF) | ((hi & 0xFFFF) << 16)).astype(np.uint32).view(np.int32)

    lo_a, hi_a = lanes(a)
    numpy_model = np.stack([
        pack8([np.maximum(sb(a, k), sb(b, k)) for k in range(4)]),
        pack8([np.minimum(sb(a, k), sb(b, k)) for k in range(4)]),
        pack16(lo_a + sb(b, 0), hi_a + sb(b, 2)),
        pack16(lo_a + sb(b, 1), hi_a + sb(b, 3)),
        lo_a.astype(np.int32),
        lanes(b)[1].astype(np.int32)])
    np.testing.assert_array_equal(llvm, numpy_model)
    (tmp_path / dsp.HEADER_NAME).write_text(dsp.HEADER)
    names = ["tvmf_max_s8x4(x, y)", "tvmf_min_s8x4(x, y)", "tvmf_sxtab16(x, y)", "tvmf_sxtab16_ror8(x, y)",
             "tvmf_lo16(x)", "tvmf_hi16(y)"]
    prints = "".join(f'  printf("%d\\n", (int){n});\n' for n in names)
    (tmp_path / "b.c").write_text(f"""#include <stdio.h>
#include "{dsp.HEADER_NAME}"
int main(void) {{
  long long u, v;
  while (scanf("%lld %lld", &u, &v) == 2) {{
    int32_t x = (int32_t)u, y = (int32_t)v;
{prints}  }}
  return 0;
}}
""")
    import subprocess
    subprocess.run([GCC, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined",
                    "-fno-sanitize-recover=all", "-I", str(tmp_path), str(tmp_path / "b.c"), "-o", str(tmp_path / "b")],
                   check=True)
    stdin = "\n".join(f"{u} {v}" for u, v in zip(a.tolist(), b.tolist()))
    out = subprocess.run([str(tmp_path / "b")], input=stdin, capture_output=True, text=True, check=True).stdout
    c_vals = np.array([int(v) for v in out.split()], np.int64).reshape(a.size, len(ops)).T
    np.testing.assert_array_equal(c_vals, numpy_model.astype(np.int64))
