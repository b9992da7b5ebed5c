"""The TFLite activation / arithmetic ops, bit-exact to TFLite's reference kernels (BUILTIN_REF).

Two levels, both against ``ai_edge_litert``'s interpreter with ``OpResolverType.BUILTIN_REF``
on single-op models written by ``tflite_builder`` (no TensorFlow needed):

- the compile-time arithmetic (the 256-entry tables, the softmax exp table and its numpy
  golden, the broadcast binary golden) over many random quantization parameters and shapes;
- the whole compiler (``tvm_fused.compile`` -> legalized module -> TVM host build) on fewer
  random cases, and the generated C on a small chain of these ops.

0 differing outputs everywhere.
"""
from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tflite_builder import ModelBuilder, run_reference, single_op_model

from tvm_fused.schedules import lut
from tvm_fused.schedules.binary import BinaryParams, binary_reference
from tvm_fused.schedules.softmax import SoftmaxParams, softmax_reference

FAST = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
COMPILE = settings(max_examples=5, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

scales = st.floats(-3.0, 0.3).map(lambda e: float(np.float32(10.0 ** e)))
zero_points = st.integers(-128, 127)
ALL_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)


def _q(shape, scale, zp, **kw):
    return dict(shape=list(shape), dtype="int8", scale=scale, zero_point=zp, **kw)


# ---------------------------------------------------------------- LUT ops: every int8 input

LUT_OPS = {
    # op: (options table, fixed output quantization or None, table builder)
    "LOGISTIC": (None, (1 / 256, None), lambda si, zi, so, zo, f: lut.logistic_table(si, zi, so, zo)),
    "TANH": (None, None, lambda si, zi, so, zo, f: lut.tanh_table(si, zi, so, zo)),
    "HARD_SWISH": (None, None, lambda si, zi, so, zo, f: lut.hard_swish_table(si, zi, so, zo)),
    "LEAKY_RELU": ("LeakyReluOptions", None, lambda si, zi, so, zo, f: lut.leaky_relu_table(si, zi, so, zo,
                                                                                            f["alpha"])),
    "RELU": (None, None, lambda si, zi, so, zo, f: lut.relu_table(si, zi, so, zo)),
    "RELU6": (None, None, lambda si, zi, so, zo, f: lut.relu_table(si, zi, so, zo, 0.0, 6.0)),
    "RELU_N1_TO_1": (None, None, lambda si, zi, so, zo, f: lut.relu_table(si, zi, so, zo, -1.0, 1.0)),
    "QUANTIZE": (None, None, lambda si, zi, so, zo, f: lut.requantize_table(si, zi, so, zo)),
}


@FAST
@given(op=st.sampled_from(sorted(LUT_OPS)), s_in=scales, z_in=zero_points, s_out=scales, z_out=zero_points,
       alpha=st.floats(-1.0, 1.0).map(lambda a: float(np.float32(a))))
def test_lut_table_equals_reference_kernel_on_all_256_inputs(op, s_in, z_in, s_out, z_out, alpha):
    options, fixed_out, build = LUT_OPS[op]
    if fixed_out is not None:
        s_out, z_out = fixed_out[0], z_out if fixed_out[1] is None else fixed_out[1]
    if op == "HARD_SWISH" and s_out < s_in / 128:
        s_out = s_in / 64  # TFLite rejects smaller output scales
    fields = {"alpha": alpha} if op == "LEAKY_RELU" else {}
    model = single_op_model(op, [_q([1, 256], s_in, z_in)], [_q([1, 256], s_out, z_out)], options, **fields)
    (want,) = run_reference(model, [ALL_INT8])
    np.testing.assert_array_equal(lut.apply_table(ALL_INT8, build(s_in, z_in, s_out, z_out, fields)), want)


def test_hard_swish_large_output_scale_uses_int16_rounding():
    """Output scale >> input scale: the int16 RoundingDivideByPOT exponent reaches 16, where
    gemmlowp's int16 mask wraps; TFLite then rounds every negative value down by one."""
    s_in, z_in, s_out, z_out = 0.0011224538, -79, 0.82185507, -2
    model = single_op_model("HARD_SWISH", [_q([1, 256], s_in, z_in)], [_q([1, 256], s_out, z_out)])
    (want,) = run_reference(model, [ALL_INT8])
    assert (want == z_out - 1).any()  # the wrap is visible in TFLite's output
    np.testing.assert_array_equal(lut.apply_table(ALL_INT8, lut.hard_swish_table(s_in, z_in, s_out, z_out)), want)


# ---------------------------------------------------------------- softmax

@FAST
@given(rows=st.integers(1, 4), depth=st.integers(1, 300), s_in=st.floats(-2.5, 0.5).map(lambda e: float(
    np.float32(10.0 ** e))), z_in=zero_points, beta=st.sampled_from([1.0, 0.5, 2.0, 0.3]),
       seed=st.integers(0, 2**16), narrow=st.booleans())
def test_softmax_golden_equals_reference_kernel(rows, depth, s_in, z_in, beta, seed, narrow):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (rows, depth), dtype=np.int8)
    if narrow:  # many ties and near-maximum values
        x = (x // 32).astype(np.int8)
    model = single_op_model("SOFTMAX", [_q([rows, depth], s_in, z_in)], [_q([rows, depth], 1 / 256, -128)],
                            "SoftmaxOptions", beta=beta)
    (want,) = run_reference(model, [x])
    np.testing.assert_array_equal(softmax_reference(x, SoftmaxParams((rows, depth), s_in, z_in, 1 / 256, -128,
                                                                      beta)), want)


# ---------------------------------------------------------------- broadcast binary ops

@st.composite
def broadcast_shapes(draw, same_rank_a=False):
    out = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))

    def operand():
        rank = draw(st.integers(1, len(out)))
        return tuple(d if draw(st.booleans()) else 1 for d in out[len(out) - rank:])

    a = out if same_rank_a or draw(st.booleans()) else operand()
    b = operand()
    return (a, b) if same_rank_a or draw(st.booleans()) else (b, a)


ACTIVATIONS = {"NONE": (-math.inf, math.inf), "RELU": (0.0, math.inf), "RELU6": (0.0, 6.0)}


def _act_range(act, scale, zp):
    """TFLite's CalculateActivationRangeQuantized (float32 division, round half away)."""
    lo, hi = ACTIVATIONS[act]
    q = lambda v: zp + int(lut._round_half_away_f32(np.float32(v) / np.float32(scale)))  # noqa: E731
    return (max(-128, q(lo)) if lo > -math.inf else -128), (min(127, q(hi)) if hi < math.inf else 127)


def _binary_model(op, a_shape, b_shape, sa, za, sb, zb, so, zo, act="NONE", b_const=None):
    b = ModelBuilder()
    ta = b.tensor(a_shape, "int8", sa, za)
    tb = b.tensor(b_shape, "int8", sb, zb, data=b_const)
    out_shape = tuple(int(d) for d in np.broadcast_shapes(a_shape, b_shape))
    to = b.tensor(out_shape, "int8", so, zo)
    options = {"add": "AddOptions", "sub": "SubOptions", "mul": "MulOptions"}.get(op)
    fields = {"fused_activation_function": act} if options else {}
    b.op(op.upper(), [ta, tb], [to], options, **fields)
    return b.build([ta] if b_const is not None else [ta, tb], [to])


@FAST
@given(op=st.sampled_from(["add", "sub", "mul", "prelu"]), data=st.data(), sa=scales, za=zero_points,
       sb=scales, zb=zero_points, so=scales, zo=zero_points, act=st.sampled_from(sorted(ACTIVATIONS)),
       seed=st.integers(0, 2**16))
def test_binary_golden_equals_reference_kernel(op, data, sa, za, sb, zb, so, zo, act, seed):
    a_shape, b_shape = data.draw(broadcast_shapes(same_rank_a=op == "prelu"))
    if op == "prelu":
        act = "NONE"
    rng = np.random.default_rng(seed)
    xa = rng.integers(-128, 128, a_shape, dtype=np.int8)
    xb = rng.integers(-128, 128, b_shape, dtype=np.int8)
    (want,) = run_reference(_binary_model(op, a_shape, b_shape, sa, za, sb, zb, so, zo, act), [xa, xb])
    lo, hi = _act_range(act, so, zo)
    p = BinaryParams(op, a_shape, b_shape, sa, za, sb, zb, so, zo, lo, hi)
    np.testing.assert_array_equal(binary_reference(xa, xb, p), want)


def test_mul_multiplier_is_float32_product():
    """MUL's multiplier is float32(s_a * s_b) / s_o in float32; these scales make the double
    derivation give another quantized multiplier, and the reference kernel follows float32."""
    from tvm_fused.schedules.fixed_point import quantize_multiplier

    sa, sb, so = (float(np.float32(v)) for v in (0.0123457, 0.0398107, 0.0071))
    p = BinaryParams("mul", (1, 64), (1, 64), sa, 3, sb, -7, so, 1)
    assert p.multipliers()[0] != quantize_multiplier(sa * sb / so)
    xa = np.arange(-128, 128, 4, dtype=np.int8).reshape(1, 64)
    xb = np.arange(127, -129, -4, dtype=np.int8).reshape(1, 64)
    (want,) = run_reference(_binary_model("mul", (1, 64), (1, 64), sa, 3, sb, -7, so, 1), [xa, xb])
    np.testing.assert_array_equal(binary_reference(xa, xb, p), want)


# ---------------------------------------------------------------- through the compiler

def _compile(tmp_path, model: bytes, name: str, **kwargs):
    import tvm_fused

    path = tmp_path / f"{name}.tflite"
    path.write_bytes(model)
    return tvm_fused.compile(str(path), name=name, progress=False, **{"codegen": False, **kwargs})


def _run(cm, inputs):
    if len(inputs) == 1:
        return cm.reference(inputs[0])
    from tvm_fused.backend import HostReference

    return HostReference(cm.mod)(*inputs)


def _assert_compiled_equals_reference(cm, model, inputs_list):
    for inputs in inputs_list:
        (want,) = run_reference(model, inputs)
        np.testing.assert_array_equal(_run(cm, inputs), want)


image_shapes = st.tuples(st.just(1), st.integers(1, 6), st.integers(1, 6), st.integers(1, 8))


@COMPILE
@given(op=st.sampled_from(["LOGISTIC", "TANH", "HARD_SWISH", "LEAKY_RELU", "RELU", "RELU6", "RELU_N1_TO_1",
                          "QUANTIZE"]),
       shape=image_shapes, s_in=scales, z_in=zero_points, s_out=scales, z_out=zero_points)
def test_compiled_lut_op_equals_reference_kernel(tmp_path, op, shape, s_in, z_in, s_out, z_out):
    options, fixed_out, _ = LUT_OPS[op]
    if fixed_out is not None:
        s_out, z_out = fixed_out[0], z_out if fixed_out[1] is None else fixed_out[1]
    if op == "HARD_SWISH":
        s_out = max(s_out, s_in / 64)
    fields = {"alpha": 0.1} if op == "LEAKY_RELU" else {}
    model = single_op_model(op, [_q(shape, s_in, z_in)], [_q(shape, s_out, z_out)], options, **fields)
    cm = _compile(tmp_path, model, op.lower())
    rng = np.random.default_rng(0)
    _assert_compiled_equals_reference(cm, model, [[rng.integers(-128, 128, shape, dtype=np.int8)]
                                                  for _ in range(2)])


@COMPILE
@given(shape=st.sampled_from([(1, 10), (2, 37), (1, 3, 4, 12), (1, 1, 1, 1000)]), s_in=st.floats(-2, 0.3).map(
    lambda e: float(np.float32(10.0 ** e))), z_in=zero_points)
def test_compiled_softmax_equals_reference_kernel(tmp_path, shape, s_in, z_in):
    model = single_op_model("SOFTMAX", [_q(shape, s_in, z_in)], [_q(shape, 1 / 256, -128)], "SoftmaxOptions",
                            beta=1.0)
    cm = _compile(tmp_path, model, "softmax")
    rng = np.random.default_rng(1)
    _assert_compiled_equals_reference(cm, model, [[rng.integers(-128, 128, shape, dtype=np.int8)]
                                                  for _ in range(3)])


@COMPILE
@given(op=st.sampled_from(["add", "sub", "mul", "prelu"]), data=st.data(), sa=scales, za=zero_points, sb=scales,
       zb=zero_points, so=scales, zo=zero_points, act=st.sampled_from(sorted(ACTIVATIONS)),
       constant=st.booleans())
def test_compiled_broadcast_binary_equals_reference_kernel(tmp_path, op, data, sa, za, sb, zb, so, zo, act,
                                                           constant):
    a_shape = data.draw(image_shapes)
    b_shape = data.draw(st.sampled_from([a_shape, (1, 1, 1, a_shape[3]), (a_shape[3],), (1, a_shape[1], 1, 1),
                                         (1,)]))
    rng = np.random.default_rng(2)
    b_const = rng.integers(-128, 128, b_shape, dtype=np.int8) if constant else None
    model = _binary_model(op, a_shape, b_shape, sa, za, sb, zb, so, zo, act, b_const=b_const)
    cm = _compile(tmp_path, model, op)
    cases = []
    for _ in range(2):
        xa = rng.integers(-128, 128, a_shape, dtype=np.int8)
        cases.append([xa] if constant else [xa, rng.integers(-128, 128, b_shape, dtype=np.int8)])
    _assert_compiled_equals_reference(cm, model, cases)


# ---------------------------------------------------------------- FULLY_CONNECTED multiplier

def _fc_model(rng, batch, k, n, si, sw, so):
    b = ModelBuilder()
    x = b.tensor([batch, k], "int8", si, -5)
    w = b.tensor([n, k], "int8", sw, 0, data=rng.integers(-127, 128, (n, k)))
    bias_scale = float(np.float32(si) * np.float32(sw))
    bias = b.tensor([n], "int32", bias_scale, 0, data=rng.integers(-3000, 3000, n))
    y = b.tensor([batch, n], "int8", so, 3)
    b.op("FULLY_CONNECTED", [x, w, bias], [y], "FullyConnectedOptions", fused_activation_function="NONE")
    return b.build([x], [y])


def test_fully_connected_requantizes_like_the_reference_kernel(tmp_path):
    """BUILTIN_REF's int8 FULLY_CONNECTED requantizes in double:
    ``round(double(acc) * (double(s_x) * double(s_w) / double(s_y)))``
    (``reference_integer_ops::FullyConnected`` with float scales), not with the fixed-point
    MultiplyByQuantizedMultiplier. Neither fixed-point derivation of the multiplier (all in
    double, or ``float32(s_x * s_w)`` first as TFLite's optimized kernels do) reproduces it on
    this model: the test shows both differ, then requires the compiled model to equal it."""
    from tvm_fused.schedules.fixed_point import multiply_by_quantized_multiplier, quantize_multiplier

    # found by search: a few of these 2048 outputs sit near a rounding boundary
    si, sw, so = (float(np.float32(v)) for v in (0.007981293834745884, 0.006391946226358414, 0.13024009764194489))
    m32 = quantize_multiplier(float(np.float32(si) * np.float32(sw)) / so)
    m64 = quantize_multiplier(si * sw / so)
    assert m32 != m64
    rng = np.random.default_rng(7)
    batch, k, n = 64, 48, 32
    model = _fc_model(rng, batch, k, n, si, sw, so)
    x = rng.integers(-128, 128, (batch, k), dtype=np.int8)
    (want,) = run_reference(model, [x])
    # the accumulators (same seeded weights and bias as the model)
    rng2 = np.random.default_rng(7)
    w = rng2.integers(-127, 128, (n, k))
    bias = rng2.integers(-3000, 3000, n)
    acc = (x.astype(np.int64) + 5) @ w.T + bias
    for mult in (m32, m64):
        fixed_point = np.clip(multiply_by_quantized_multiplier(acc, *mult) + 3, -128, 127)
        assert (fixed_point != want).any(), "pick scales/inputs where fixed-point requantization differs"
    cm = _compile(tmp_path, model, "fc")
    np.testing.assert_array_equal(cm.reference(x), want)


@COMPILE
@given(batch=st.integers(1, 8), k=st.integers(1, 64), n=st.integers(1, 24), per_channel=st.booleans(),
       si=scales, so=scales, seed=st.integers(0, 2**16))
def test_compiled_fully_connected_equals_reference_kernel(tmp_path, batch, k, n, per_channel, si, so, seed):
    rng = np.random.default_rng(seed)
    sw = [float(np.float32(10 ** rng.uniform(-3, -1.5))) for _ in range(n if per_channel else 1)]
    b = ModelBuilder()
    x = b.tensor([batch, k], "int8", si, int(rng.integers(-128, 128)))
    w = b.tensor([n, k], "int8", sw if per_channel else sw[0], 0, data=rng.integers(-127, 128, (n, k)))
    bias_scale = [float(np.float32(si) * np.float32(s)) for s in sw]
    bias = b.tensor([n], "int32", bias_scale if per_channel else bias_scale[0], 0,
                    data=rng.integers(-3000, 3000, n))
    y = b.tensor([batch, n], "int8", so, int(rng.integers(-128, 128)))
    b.op("FULLY_CONNECTED", [x, w, bias], [y], "FullyConnectedOptions", fused_activation_function="NONE")
    model = b.build([x], [y])
    cm = _compile(tmp_path, model, "fc")
    _assert_compiled_equals_reference(cm, model, [[rng.integers(-128, 128, (batch, k), dtype=np.int8)]
                                                  for _ in range(2)])


# ---------------------------------------------------------------- a chain: generated C and fusion

def _conv(b, x, in_c, out_c, k, rng, s_in, s_out, depthwise=False, act="RELU6"):
    """CONV_2D / DEPTHWISE_CONV_2D with per-channel int8 weights, SAME padding, stride 1."""
    w_scales = [float(np.float32(v)) for v in rng.uniform(0.002, 0.02, out_c)]
    w_shape = (1, k, k, out_c) if depthwise else (out_c, k, k, in_c)
    w = b.tensor(w_shape, "int8", w_scales, 0, data=rng.integers(-127, 128, w_shape),
                 quantized_dimension=3 if depthwise else 0)
    bias = b.tensor([out_c], "int32", [float(np.float32(s_in) * np.float32(s)) for s in w_scales], 0,
                    data=rng.integers(-500, 500, out_c))
    n, h, wd = b.tensors[x]["shape"][:3]
    y = b.tensor([n, h, wd, out_c], "int8", s_out, -10)
    if depthwise:
        b.op("DEPTHWISE_CONV_2D", [x, w, bias], [y], "DepthwiseConv2DOptions", version=3, padding=0, stride_w=1,
             stride_h=1, depth_multiplier=1, fused_activation_function=act)
    else:
        b.op("CONV_2D", [x, w, bias], [y], "Conv2DOptions", version=3, padding=0, stride_w=1, stride_h=1,
             fused_activation_function=act)
    return y


def _ops_chain_model(rng, shape=(4, 12)):
    """Every op of this module once: HARD_SWISH, MUL and ADD with broadcast constants, LEAKY_RELU,
    TANH, SUB of two tensors, LOGISTIC, QUANTIZE, RELU6, SOFTMAX, then FULLY_CONNECTED on its rows."""
    b = ModelBuilder()
    c = shape[-1]
    x = b.tensor(shape, "int8", 0.05, 3)

    def t(scale, zp, s=shape):
        return b.tensor(s, "int8", scale, zp)

    hs = t(0.04, -20)
    b.op("HARD_SWISH", [x], [hs])
    k = b.tensor([c], "int8", 0.01, 4, data=rng.integers(-128, 128, c))
    mul = t(0.03, 5)
    b.op("MUL", [hs, k], [mul], "MulOptions", fused_activation_function="NONE")
    k2 = b.tensor([1, c], "int8", 0.02, -7, data=rng.integers(-128, 128, c))
    add = t(0.05, 0)
    b.op("ADD", [mul, k2], [add], "AddOptions", fused_activation_function="RELU")
    lr = t(0.04, -30)
    b.op("LEAKY_RELU", [add], [lr], "LeakyReluOptions", alpha=0.2)
    th = t(1 / 128, 0)
    b.op("TANH", [lr], [th])
    sub = t(0.06, 2)
    b.op("SUB", [th, lr], [sub], "SubOptions", fused_activation_function="NONE")
    lg = t(1 / 256, -128)
    b.op("LOGISTIC", [sub], [lg])
    rq = t(0.005, -100)
    b.op("QUANTIZE", [lg], [rq])
    r6 = t(0.004, -128)
    b.op("RELU6", [rq], [r6])
    sm = t(1 / 256, -128)
    b.op("SOFTMAX", [r6], [sm], "SoftmaxOptions", beta=1.0)
    w = b.tensor([10, c], "int8", 0.01, 0, data=rng.integers(-127, 128, (10, c)))
    bias = b.tensor([10], "int32", float(np.float32(1 / 256) * np.float32(0.01)), 0, data=rng.integers(-99, 99, 10))
    y = b.tensor([shape[0], 10], "int8", 0.02, 1)
    b.op("FULLY_CONNECTED", [sm, w, bias], [y], "FullyConnectedOptions", fused_activation_function="NONE")
    return b.build([x], [y])


def test_generated_c_of_an_ops_chain_equals_reference_kernels(tmp_path):
    """The generated C (gcc, ASan + UBSan) of a model using every op here == BUILTIN_REF."""
    from tvm_fused.backend import HostExecutable

    rng = np.random.default_rng(11)
    model = _ops_chain_model(rng)
    cm = _compile(tmp_path, model, "ops_chain", codegen=True)
    exe = HostExecutable(cm.export(tmp_path / "out") / "model", cm.io["outputs"][0]["shape"])
    try:
        for seed in range(3):
            x = cm.random_input(seed)
            (want,) = run_reference(model, [x])
            np.testing.assert_array_equal(cm.reference(x), want)
            np.testing.assert_array_equal(exe(x), want)
    finally:
        exe.close()
    if shutil.which("arm-none-eabi-gcc"):  # and warning-free for Cortex-M7 (double FPU for the FC scales)
        model_dir = tmp_path / "out" / "model"
        for src in sorted((model_dir / "src").glob("*.c")):
            proc = subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard",
                                   "-mfpu=fpv5-d16", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I",
                                   str(model_dir / "include"), "-c", str(src), "-o", str(tmp_path / f"{src.stem}.o")],
                                  capture_output=True, text=True)
            assert proc.returncode == 0, f"{src.name}:\n{proc.stderr}"


def test_fusion_keeps_chains_around_the_new_ops(tmp_path):
    """conv -> dw conv -> 1x1 conv, HARD_SWISH, conv -> dw conv -> 1x1 conv, MUL: the new ops
    split the conv chains but fuse="auto" still fuses what it can, and the output stays
    bit-exact to BUILTIN_REF."""
    rng = np.random.default_rng(12)
    b = ModelBuilder()
    x = b.tensor([1, 24, 24, 4], "int8", 0.05, 0)
    h = _conv(b, x, 4, 16, 3, rng, 0.05, 0.03)
    h = _conv(b, h, 16, 16, 3, rng, 0.03, 0.03, depthwise=True)
    h = _conv(b, h, 16, 8, 1, rng, 0.03, 0.04, act="NONE")
    hs = b.tensor([1, 24, 24, 8], "int8", 0.03, -40)
    b.op("HARD_SWISH", [h], [hs])
    h = _conv(b, hs, 8, 32, 1, rng, 0.03, 0.03)
    h = _conv(b, h, 32, 32, 3, rng, 0.03, 0.03, depthwise=True)
    h = _conv(b, h, 32, 8, 1, rng, 0.03, 0.05, act="NONE")
    k = b.tensor([8], "int8", 0.01, 0, data=rng.integers(-128, 128, 8))
    y = b.tensor([1, 24, 24, 8], "int8", 0.06, 3)
    b.op("MUL", [h, k], [y], "MulOptions", fused_activation_function="NONE")
    model = b.build([x], [y])
    cm = _compile(tmp_path, model, "fused", fuse="auto")
    kinds = [op["op"] for op in cm.report["ops"]]
    assert kinds == ["fused_chain", "hard_swish", "fused_chain", "mul"], kinds
    for seed in range(2):
        x_in = cm.random_input(seed)
        (want,) = run_reference(model, [x_in])
        np.testing.assert_array_equal(cm.reference(x_in), want)


def test_softmax_beta_other_than_one_is_refused(tmp_path):
    """TVM's TFLite importer drops beta; compiling it as beta = 1 would be silently wrong."""
    from tvm_fused.errors import UnsupportedModelError

    model = single_op_model("SOFTMAX", [_q([1, 10], 0.1, 0)], [_q([1, 10], 1 / 256, -128)], "SoftmaxOptions",
                            beta=0.5)
    with pytest.raises(UnsupportedModelError, match="beta = 0.5"):
        _compile(tmp_path, model, "softmax_beta")


@pytest.mark.parametrize("a_shape, b_shape, constant", [((1, 4, 5, 6), (1, 1, 6), True),
                                                        ((1, 4, 5, 6), (1, 4, 5, 6), False),
                                                        ((2, 7), (7,), True)])
def test_compiled_prelu_equals_reference_kernel(tmp_path, a_shape, b_shape, constant):
    """PRELU (TVM's importer refuses it quantized; frontend/tflite_converter.py imports it in QDQ form)."""
    rng = np.random.default_rng(3)
    b_const = rng.integers(-128, 128, b_shape, dtype=np.int8) if constant else None
    model = _binary_model("prelu", a_shape, b_shape, 0.05, 3, 0.01, -4, 0.03, -2, b_const=b_const)
    cm = _compile(tmp_path, model, "prelu")
    assert [op["op"] for op in cm.report["ops"]] == ["prelu"]
    xa = rng.integers(-128, 128, a_shape, dtype=np.int8)
    _assert_compiled_equals_reference(cm, model, [[xa] if constant else
                                                  [xa, rng.integers(-128, 128, b_shape, dtype=np.int8)]])


def test_standalone_relu_multiplier_is_a_float32_ratio(tmp_path):
    """Standalone RELU takes its multiplier from ``s_in / s_out`` divided in float32, QUANTIZE
    in double. With these scales (found by search) the two differ on input -22: the compiled
    model must follow RELU's float32 arithmetic."""
    s_in, z_in, s_out, z_out = 0.0032724246848374605, -125, 0.006300182081758976, -71
    as_quantize = np.maximum(lut.requantize_table(s_in, z_in, s_out, z_out), z_out)
    model = single_op_model("RELU", [_q([1, 256], s_in, z_in)], [_q([1, 256], s_out, z_out)])
    (want,) = run_reference(model, [ALL_INT8])
    assert (lut.apply_table(ALL_INT8, as_quantize) != want).any()
    cm = _compile(tmp_path, model, "relu")
    np.testing.assert_array_equal(cm.reference(ALL_INT8), want)


@pytest.mark.parametrize("x_shape", [(1, 1, 1, 32), (1, 2, 3, 16)])
def test_compiled_fully_connected_flattens_nd_input(tmp_path, x_shape):
    """TFLite's FULLY_CONNECTED flattens an N-D input to (rows, K) (a DS-CNN's pooled [1,1,1,C])."""
    rng = np.random.default_rng(5)
    k, n = x_shape[-1], 12
    rows = int(np.prod(x_shape[:-1]))
    b = ModelBuilder()
    x = b.tensor(x_shape, "int8", 0.03, -128)
    w = b.tensor([n, k], "int8", 0.004, 0, data=rng.integers(-127, 128, (n, k)))
    bias = b.tensor([n], "int32", float(np.float32(0.03) * np.float32(0.004)), 0, data=rng.integers(-900, 900, n))
    y = b.tensor([rows, n], "int8", 0.01, 18)
    b.op("FULLY_CONNECTED", [x, w, bias], [y], "FullyConnectedOptions", fused_activation_function="NONE")
    model = b.build([x], [y])
    cm = _compile(tmp_path, model, "fc_nd")
    for _ in range(2):
        xin = rng.integers(-128, 128, x_shape, dtype=np.int8)
        (want,) = run_reference(model, [xin])
        # TVM's importer ignores FC's input flattening (keep_num_dims = false) and keeps the
        # leading dims, (1, 1, 1, 12) for (1, 12): same elements in the same order
        got = cm.reference(xin)
        assert got.shape[-1] == n and got.size == want.size
        np.testing.assert_array_equal(got.reshape(want.shape), want)
