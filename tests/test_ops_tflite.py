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

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tflite_builder import ModelBuilder, run_reference, single_op_model

from tvm_fused.schedules import lut
from tvm_fused.schedules.binary import BinaryParams, binary_reference
from tvm_fused.schedules.softmax import SoftmaxParams, softmax_reference

FAST = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
COMPILE = settings(max_examples=4, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

scales = st.floats(-3.0, 0.3).map(lambda e: float(np.float32(10.0 ** e)))
zero_points = st.integers(-128, 127)
ALL_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)


def _q(shape, scale, zp, **kw):
    return dict(shape=list(shape), dtype="int8", scale=scale, zero_point=zp, **kw)


# ---------------------------------------------------------------- LUT ops: every int8 input

LUT_OPS = {
    # op: (options table, fixed output quantization or None, table builder)
    "LOGISTIC": (None, (1 / 256, -128), lambda si, zi, so, zo, f: lut.logistic_table(si, zi, so, zo)),
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
        s_out, z_out = fixed_out
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
