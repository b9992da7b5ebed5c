"""DSP micro-kernels, one at a time: generated C (gcc, ASan+UBSan, portable intrinsics)
== TVM LLVM host build (intrinsics lowered to plain TIR) == numpy model of TFLite's
reference kernels, over random shapes (odd channels, 1-row inputs, odd widths, padding,
strides) and random schedule configs. The Cortex-M7 instruction path of the same header
runs in the QEMU tests (tests/micro)."""
import shutil
import subprocess

import numpy as np
import pytest
import tvm
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from tvm_fused.backend.plain_c import HOST_PIPELINE_NAME, lower_to_c
from tvm_fused.schedules import (Conv2DParams, DenseParams, DepthwiseConfig, GemmConfig, conv2d_int8, dense_int8,
                                 quantize_multipliers)
from tvm_fused.schedules import dsp
from tvm_fused.schedules.dense_double_requant import (dense_double_requant_int8, dense_double_requant_reference,
                                                      effective_scales, scaled_fits_int32)
from tvm_fused.schedules.fixed_point import multiply_by_quantized_multiplier

GCC = shutil.which("gcc")
# few examples, no shrinking: each one builds with LLVM and gcc (about 2 s); CI runs vary the seed
SETTINGS = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck),
                    phases=[Phase.explicit, Phase.generate])


def conv_reference(p, x, w, b, m, s):
    """TFLite reference_integer_ops::ConvPerChannel / DepthwiseConvPerChannel in numpy."""
    n, h, wd, c = p.in_shape
    _, oh, ow, oc = p.out_shape
    kh, kw = p.kernel
    sh, sw = p.strides
    pt, pl, _, _ = p.padding
    xp = np.full((n, h + kh + sh * oh, wd + kw + sw * ow, c), p.in_zp, np.int64)
    xp[:, pt:pt + h, pl:pl + wd] = x
    acc = np.zeros((n, oh, ow, oc), np.int64)
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, ky:ky + sh * oh:sh, kx:kx + sw * ow:sw, :] - p.in_zp
            if p.depthwise:
                acc += patch * w[ky, kx].astype(np.int64)
            else:
                acc += np.einsum("nhwc,co->nhwo", patch, w[ky, kx].astype(np.int64))
    y = multiply_by_quantized_multiplier(acc + b, m, s) + p.out_zp
    return np.clip(y, p.act_min, p.act_max).astype(np.int8)


def _c_literal(a):
    a = np.asarray(a).reshape(-1)
    if a.dtype.kind == "f":  # hexadecimal floating literals are exact (C99)
        return "{" + ", ".join(float(v).hex() for v in a) + "}"
    return "{" + ", ".join(str(int(v)) for v in a) + "}"


def run_c(func, args, out_shape, tmp_path):
    """Compile one kernel + a main holding its arguments, run it, return the int8 output."""
    preamble, functions = lower_to_c({"k": func})
    src = "\n".join(["#include <stdint.h>", *preamble, functions["k"]])
    if dsp.uses_header(src):
        (tmp_path / dsp.HEADER_NAME).write_text(dsp.HEADER)
    ctype = {"int8": "int8_t", "int32": "int32_t", "float64": "double"}
    decls, names = [], []
    for i, a in enumerate(args):
        decls.append(f"static {ctype[str(a.dtype)]} a{i}[{max(a.size, 1)}] = {_c_literal(a)};")
        names.append(f"a{i}")
    size = int(np.prod(out_shape))
    main = "\n".join([src, "#include <stdio.h>", *decls, f"static int8_t out[{size}];",
                      "int main(void) {", f"  k({', '.join(names)}, out);",
                      f'  for (int i = 0; i < {size}; ++i) printf("%d\\n", out[i]);', "  return 0;", "}"])
    (tmp_path / "k.c").write_text(main)
    exe = tmp_path / "k"
    subprocess.run([GCC, "-O1", "-std=c99", "-Wall", "-Werror", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", "-I", str(tmp_path), str(tmp_path / "k.c"), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    proc = subprocess.run([str(exe)], check=True, capture_output=True, text=True)
    return np.array([int(v) for v in proc.stdout.split()], np.int8).reshape(out_shape)


def run_llvm(func, args, out_shape):
    mod = tvm.compile(tvm.IRModule({"k": func.with_attr("global_symbol", "k")}), target="llvm",
                      tir_pipeline=HOST_PIPELINE_NAME)
    out = tvm.runtime.tensor(np.zeros(out_shape, np.int8))
    mod["k"](*[tvm.runtime.tensor(a) for a in args], out)
    return out.numpy()


def _random_conv(draw, depthwise: bool):
    c = draw(st.integers(1, 11))
    oc = c if depthwise else draw(st.integers(1, 10))
    k = draw(st.sampled_from([1, 3, 5] if depthwise else [1, 2, 3]))
    s = draw(st.sampled_from([1, 2]))
    h = draw(st.integers(1, 7))
    w = draw(st.integers(1, 7))
    pads = tuple(draw(st.integers(0, k - 1)) for _ in range(4)) if k > 1 else (0, 0, 0, 0)
    h, w = max(h, k - pads[0] - pads[2]), max(w, k - pads[1] - pads[3])
    in_zp = draw(st.integers(-128, 127))
    out_zp = draw(st.integers(-20, 20))
    act = draw(st.sampled_from([(-128, 127), (out_zp, 127), (-100, 90)]))
    p = Conv2DParams((1, h, w, c), oc, (k, k), (s, s), pads, depthwise, in_zp, out_zp, *act)
    seed = draw(st.integers(0, 2**16))
    return p, seed


def _conv_case(p, seed, config, tmp_path):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, p.in_shape, dtype=np.int8)
    w = rng.integers(-127, 128, p.weight_shape, dtype=np.int8)
    b = rng.integers(-20000, 20000, p.out_channels).astype(np.int32)
    taps = p.kernel[0] * p.kernel[1] * (1 if p.depthwise else p.in_shape[3])
    m, s = quantize_multipliers(rng.uniform(0.3, 3.0, p.out_channels) / (127 * np.sqrt(taps) * 3))
    func, consts = conv2d_int8(p, w, b, m, s, config)
    expected = conv_reference(p, x, w, b, m, s)
    np.testing.assert_array_equal(run_llvm(func, [x, *consts], p.out_shape), expected)
    if GCC:
        np.testing.assert_array_equal(run_c(func, [x, *consts], p.out_shape, tmp_path), expected)


@st.composite
def gemm_cases(draw):
    p, seed = _random_conv(draw, depthwise=False)
    space = GemmConfig.space()
    cfg = GemmConfig(draw(st.sampled_from(space["pixel_block"])), draw(st.sampled_from(space["channel_block"])),
                     draw(st.sampled_from(space["unroll_words"])), draw(st.sampled_from(space["channels_outer"])))
    return p, seed, cfg


@st.composite
def depthwise_cases(draw):
    p, seed = _random_conv(draw, depthwise=True)
    space = DepthwiseConfig.space()
    return p, seed, DepthwiseConfig(draw(st.sampled_from(space["unroll_groups"])),
                                    draw(st.sampled_from(space["pixel_block"])))


@SETTINGS
@given(case=gemm_cases())
def test_gemm_conv_kernel(case, tmp_path_factory):
    p, seed, cfg = case
    _conv_case(p, seed, cfg, tmp_path_factory.mktemp("gemm"))


@SETTINGS
@given(case=depthwise_cases())
def test_depthwise_kernel(case, tmp_path_factory):
    p, seed, cfg = case
    _conv_case(p, seed, cfg, tmp_path_factory.mktemp("dw"))


@SETTINGS
@given(k=st.integers(1, 37), m=st.integers(1, 9), batch=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_dense_kernel(k, m, batch, seed, tmp_path_factory):
    rng = np.random.default_rng(seed)
    p = DenseParams(batch, k, m, int(rng.integers(-128, 128)), int(rng.integers(-10, 10)))
    x = rng.integers(-128, 128, (batch, k), dtype=np.int8)
    w = rng.integers(-127, 128, (k, m), dtype=np.int8)
    b = rng.integers(-5000, 5000, m).astype(np.int32)
    mult, shift = quantize_multipliers(rng.uniform(0.3, 3.0, m) / (127 * np.sqrt(k) * 3))
    func, consts = dense_int8(p, w, b, mult, shift)
    acc = (x.astype(np.int64) - p.in_zp) @ w.astype(np.int64) + b
    expected = np.clip(multiply_by_quantized_multiplier(acc, mult, shift) + p.out_zp, -128, 127).astype(np.int8)
    np.testing.assert_array_equal(run_llvm(func, [x, *consts], (batch, m)), expected)
    if GCC:
        np.testing.assert_array_equal(run_c(func, [x, *consts], (batch, m), tmp_path_factory.mktemp("fc")), expected)


@SETTINGS
@given(k=st.integers(1, 37), m=st.integers(1, 9), batch=st.integers(1, 3), seed=st.integers(0, 2**16),
       large=st.booleans(), cfg=st.builds(GemmConfig, st.sampled_from([1, 2, 4]), st.sampled_from([1, 2, 4]),
                                          st.sampled_from([0, 2, 4, 8])))
def test_dense_double_requant_kernel(k, m, batch, seed, large, cfg, tmp_path_factory):
    """TFLite's FULLY_CONNECTED (BUILTIN_REF: requantization in double) on the GEMM micro-kernel;
    ``large`` scales make ``|acc * eff|`` possibly exceed int32, so the rounding goes through int64."""
    rng = np.random.default_rng(seed)
    p = DenseParams(batch, k, m, int(rng.integers(-128, 128)), int(rng.integers(-10, 10)))
    x = rng.integers(-128, 128, (batch, k), dtype=np.int8)
    w = rng.integers(-127, 128, (k, m), dtype=np.int8)
    b = rng.integers(-5000, 5000, m).astype(np.int32)
    eff = effective_scales(0.02, rng.uniform(0.001, 0.01, m), 0.02 * 0.005 * np.sqrt(k) * 3 / (1e5 if large else 1))
    func, consts = dense_double_requant_int8(p, w, b, eff, cfg)
    assert ("int64" in func.script()) == (not scaled_fits_int32(p, b, eff))
    expected = dense_double_requant_reference(x, w, b, eff, p)
    np.testing.assert_array_equal(run_llvm(func, [x, *consts], (batch, m)), expected)
    if GCC:
        got = run_c(func, [x, *consts], (batch, m), tmp_path_factory.mktemp("fcd"))
        np.testing.assert_array_equal(got, expected)


@pytest.mark.skipif(GCC is None, reason="needs gcc")
def test_requantize_header_matches_fixed_point(tmp_path):
    """tvmf_requantize (one SMULL + shifts) == fixed_point.multiply_by_quantized_multiplier,
    on edge values and random ones, for every shift TFLite can produce."""
    rng = np.random.default_rng(0)
    edges = np.array([0, 1, -1, 2, -2, 3, -3, 2**30, -2**30, 2**31 - 1, -2**31, 12345, -12345,
                      (1 << 15) + 1, -(1 << 15) - 1], np.int64)
    accs = np.concatenate([edges, rng.integers(-2**31, 2**31, 300), rng.integers(-70000, 70000, 300)])
    rows = []
    for shift in range(-31, 8):
        for mult in [0, 1 << 30, (1 << 31) - 1, 1518500250, int(rng.integers(1 << 30, 1 << 31))]:
            if shift > 0:  # a left shift times a large accumulator overflows int64 in every implementation
                a = accs[np.abs(accs) < (1 << (31 - shift))]
            else:
                a = accs
            rows += [(int(v), mult, shift) for v in a]
    data = np.array(rows, np.int64)
    (tmp_path / dsp.HEADER_NAME).write_text(dsp.HEADER)
    (tmp_path / "rq.c").write_text(f"""#include <stdio.h>
#include "{dsp.HEADER_NAME}"
int main(void) {{
  long long a, m, s;
  while (scanf("%lld %lld %lld", &a, &m, &s) == 3) printf("%d\\n", tvmf_requantize((int32_t)a, (int32_t)m, (int32_t)s));
  return 0;
}}
""")
    subprocess.run([GCC, "-O2", "-std=c99", "-Wall", "-Werror", "-fsanitize=undefined", "-fno-sanitize-recover=all",
                    "-I", str(tmp_path), str(tmp_path / "rq.c"), "-o", str(tmp_path / "rq")], check=True)
    stdin = "\n".join(f"{a} {m} {s}" for a, m, s in data)
    out = subprocess.run([str(tmp_path / "rq")], input=stdin, capture_output=True, text=True, check=True).stdout
    got = np.array([int(v) for v in out.split()], np.int64)
    expected = multiply_by_quantized_multiplier(data[:, 0], data[:, 1], data[:, 2]).astype(np.int32)
    np.testing.assert_array_equal(got, expected.astype(np.int64))
