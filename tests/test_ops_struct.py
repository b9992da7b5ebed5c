"""Data-movement ops, bit for bit against TFLite's reference kernels (BUILTIN_REF).

Each property builds a one-op (or few-op) int8 TFLite model with random shapes and
quantization (tests/tflite_builder.py, no TensorFlow), compiles it with
``tvm_fused.compile`` and compares TVM's host build of our kernels with the interpreter:
0 differing outputs. Hypothesis runs derandomized (fixed seed) with a few examples per op.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tvm_fused
from tflite_builder import ModelBuilder, run_reference

SETTINGS = settings(max_examples=6, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scales = st.floats(0.005, 0.5).map(lambda s: float(np.float32(s)))
zero_points = st.integers(-128, 127)
activations = st.sampled_from(["NONE", "RELU", "RELU6"])


def _inputs(buf, seed):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=buf)
    rng = np.random.default_rng(seed)
    out = []
    for d in it.get_input_details():
        if d["dtype"] == np.float32:
            out.append(rng.normal(0, 2, d["shape"]).astype(np.float32))
        else:
            out.append(rng.integers(-128, 128, d["shape"], dtype=np.int8))
    return out


def assert_bit_exact(buf, seed=0, compiled_buf=None):
    """Our host build of ``compiled_buf`` (default ``buf``) == BUILTIN_REF on ``buf``, every output."""
    xs = _inputs(buf, seed)
    ref = run_reference(buf, xs)
    cm = tvm_fused.compile(bytes(compiled_buf or buf), progress=False, codegen=False)
    got = cm.reference(*xs)
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert g.shape == tuple(r.shape) or g.size == r.size
        assert int(np.sum(g.reshape(-1) != r.reshape(-1))) == 0
    return cm


def _pool(kind, data):
    n_h, n_w = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12))
    kh, kw = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    sh, sw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    same = data.draw(st.booleans())
    if not same:
        kh, kw = min(kh, n_h), min(kw, n_w)
    c = data.draw(st.integers(1, 6))
    s, z = data.draw(scales), data.draw(zero_points)
    oh = -(-n_h // sh) if same else (n_h - kh) // sh + 1
    ow = -(-n_w // sw) if same else (n_w - kw) // sw + 1
    b = ModelBuilder()
    x = b.tensor([1, n_h, n_w, c], scale=s, zero_point=z)
    y = b.tensor([1, oh, ow, c], scale=s, zero_point=z)
    b.op(kind, [x], [y], "Pool2DOptions", padding=0 if same else 1, stride_h=sh, stride_w=sw,
         filter_height=kh, filter_width=kw, fused_activation_function=data.draw(activations))
    return b.build([x], [y])


@SETTINGS
@given(st.data())
def test_max_pool(data):
    assert_bit_exact(_pool("MAX_POOL_2D", data), data.draw(st.integers(0, 99)))


@SETTINGS
@given(st.data())
def test_average_pool(data):
    assert_bit_exact(_pool("AVERAGE_POOL_2D", data), data.draw(st.integers(0, 99)))


@SETTINGS
@given(st.data())
def test_concatenation_with_per_input_requantization(data):
    """TFLite requires equal scales at an int8 CONCATENATION; its converter puts a QUANTIZE in
    front of each input that differs. Both forms compile to the same bits as that reference."""
    k = data.draw(st.integers(2, 3))
    axis = data.draw(st.integers(0, 3))
    base = [1, data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))]
    out_s, out_z = data.draw(scales), data.draw(zero_points)
    shapes, quant = [], []
    for _ in range(k):
        shape = list(base)
        shape[axis] = data.draw(st.integers(1, 4))
        shapes.append(shape)
        quant.append((out_s, out_z) if data.draw(st.booleans()) else (data.draw(scales), data.draw(zero_points)))
    out_shape = list(base)
    out_shape[axis] = sum(s[axis] for s in shapes)

    def build(converter_form):
        b = ModelBuilder()
        xs = [b.tensor(s, scale=q[0], zero_point=q[1]) for s, q in zip(shapes, quant)]
        parts = []
        for x, s, q in zip(xs, shapes, quant):
            if converter_form and q != (out_s, out_z):
                xq = b.tensor(s, scale=out_s, zero_point=out_z)
                b.op("QUANTIZE", [x], [xq])
                x = xq
            parts.append(x)
        y = b.tensor(out_shape, scale=out_s, zero_point=out_z)
        b.op("CONCATENATION", parts, [y], "ConcatenationOptions", axis=axis)  # int8: no fused activation
        return b.build(xs, [y])

    seed = data.draw(st.integers(0, 99))
    assert_bit_exact(build(True), seed)
    assert_bit_exact(build(True), seed, compiled_buf=build(False))


@SETTINGS
@given(st.data())
def test_resize_nearest_neighbor(data):
    h, w = data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7))
    oh, ow = data.draw(st.integers(1, 16)), data.draw(st.integers(1, 16))
    align, half = data.draw(st.sampled_from([(False, False), (True, False), (False, True)]))
    c = data.draw(st.integers(1, 4))
    s, z = data.draw(scales), data.draw(zero_points)
    b = ModelBuilder()
    x = b.tensor([1, h, w, c], scale=s, zero_point=z)
    size = b.tensor([2], "int32", data=np.array([oh, ow]))
    y = b.tensor([1, oh, ow, c], scale=s, zero_point=z)
    b.op("RESIZE_NEAREST_NEIGHBOR", [x, size], [y], "ResizeNearestNeighborOptions", align_corners=align,
         half_pixel_centers=half)
    assert_bit_exact(b.build([x], [y]), data.draw(st.integers(0, 99)))


@SETTINGS
@given(st.data())
def test_pad_any_axes(data):
    shape = [data.draw(st.integers(1, 2))] + [data.draw(st.integers(1, 5)) for _ in range(3)]
    pads = [[data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))] for _ in range(4)]
    s, z = data.draw(scales), data.draw(zero_points)
    b = ModelBuilder()
    x = b.tensor(shape, scale=s, zero_point=z)
    p = b.tensor([4, 2], "int32", data=np.array(pads))
    y = b.tensor([d + a + c for d, (a, c) in zip(shape, pads)], scale=s, zero_point=z)
    b.op("PAD", [x, p], [y], "PadOptions")
    assert_bit_exact(b.build([x], [y]), data.draw(st.integers(0, 99)))


@SETTINGS
@given(st.data())
def test_transpose(data):
    rank = data.draw(st.integers(2, 4))
    shape = [data.draw(st.integers(1, 5)) for _ in range(rank)]
    perm = data.draw(st.permutations(list(range(rank))))
    s, z = data.draw(scales), data.draw(zero_points)
    b = ModelBuilder()
    x = b.tensor(shape, scale=s, zero_point=z)
    p = b.tensor([rank], "int32", data=np.array(perm))
    y = b.tensor([shape[i] for i in perm], scale=s, zero_point=z)
    b.op("TRANSPOSE", [x, p], [y], "TransposeOptions")
    assert_bit_exact(b.build([x], [y]), data.draw(st.integers(0, 99)))


@SETTINGS
@given(st.data())
def test_split_gives_several_outputs(data):
    n = data.draw(st.integers(2, 3))
    axis = data.draw(st.integers(1, 3))
    shape = [1, data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))]
    shape[axis] *= n
    s, z = data.draw(scales), data.draw(zero_points)
    b = ModelBuilder()
    x = b.tensor(shape, scale=s, zero_point=z)
    a = b.tensor([], "int32", data=np.array(axis))
    part = list(shape)
    part[axis] //= n
    ys = [b.tensor(part, scale=s, zero_point=z) for _ in range(n)]
    b.op("SPLIT", [a, x], ys, "SplitOptions", num_splits=n)
    cm = assert_bit_exact(b.build([x], ys), data.draw(st.integers(0, 99)))
    assert len(cm.io["outputs"]) == n


@SETTINGS
@given(st.data())
def test_strided_slice(data):
    shape = [1] + [data.draw(st.integers(1, 7)) for _ in range(3)]
    begin, end, strides = [], [], []
    begin_mask = end_mask = shrink = 0
    out = []
    for axis, d in enumerate(shape):
        stride = data.draw(st.sampled_from([1, 1, 2, 3, -1, -2]))
        b0, e0 = data.draw(st.integers(-d, d - 1)), data.draw(st.integers(-d - 1, d))
        if data.draw(st.booleans()):
            begin_mask |= 1 << axis
        if data.draw(st.booleans()):
            end_mask |= 1 << axis
        sl = slice(None if begin_mask >> axis & 1 else b0, None if end_mask >> axis & 1 else e0, stride)
        length = len(range(d)[sl])
        if axis > 0 and length >= 1 and data.draw(st.integers(0, 5)) == 0:
            shrink |= 1 << axis  # keep element begin only
            begin_mask &= ~(1 << axis)
            b0 = data.draw(st.integers(-d, d - 1))
            length = 0
        elif length == 0:
            b0, e0, stride = 0, d, 1
            begin_mask &= ~(1 << axis)
            end_mask &= ~(1 << axis)
            length = d
        begin.append(b0)
        end.append(e0 if not shrink >> axis & 1 else b0 + 1)
        strides.append(stride if not shrink >> axis & 1 else 1)
        if not shrink >> axis & 1:
            out.append(length)
    s, z = data.draw(scales), data.draw(zero_points)
    b = ModelBuilder()
    x = b.tensor(shape, scale=s, zero_point=z)
    consts = [b.tensor([4], "int32", data=np.array(v)) for v in (begin, end, strides)]
    y = b.tensor(out, scale=s, zero_point=z)
    b.op("STRIDED_SLICE", [x, *consts], [y], "StridedSliceOptions", begin_mask=begin_mask, end_mask=end_mask,
         shrink_axis_mask=shrink)
    assert_bit_exact(b.build([x], [y]), data.draw(st.integers(0, 99)))


def test_reshape_squeeze_expand_dims():
    b = ModelBuilder()
    x = b.tensor([1, 4, 3, 2], scale=0.05, zero_point=-3)
    shape = b.tensor([3], "int32", data=np.array([1, 12, 2]))
    r = b.tensor([1, 12, 2], scale=0.05, zero_point=-3)
    b.op("RESHAPE", [x, shape], [r], "ReshapeOptions", new_shape=[1, 12, 2])
    ax = b.tensor([], "int32", data=np.array(2))
    e = b.tensor([1, 12, 1, 2], scale=0.05, zero_point=-3)
    b.op("EXPAND_DIMS", [r, ax], [e])
    q = b.tensor([12, 2], scale=0.05, zero_point=-3)
    b.op("SQUEEZE", [e], [q], "SqueezeOptions", squeeze_dims=[0, 2])
    assert_bit_exact(b.build([x], [q]))


def shape_subgraph_model() -> bytes:
    """What the TFLite converter emits for ``tf.reshape(x, [tf.shape(x)[0], -1, 8])``: SHAPE ->
    STRIDED_SLICE (shrink) -> PACK feeding RESHAPE's shape input."""
    b = ModelBuilder()
    x = b.tensor([1, 4, 4, 4], scale=0.1, zero_point=3)
    shape = b.tensor([4], "int32")
    b.op("SHAPE", [x], [shape], "ShapeOptions", out_type=2)
    consts = [b.tensor([1], "int32", data=np.array([v])) for v in (0, 1, 1)]
    batch = b.tensor([], "int32")
    b.op("STRIDED_SLICE", [shape, *consts], [batch], "StridedSliceOptions", shrink_axis_mask=1)
    minus1, eight = b.tensor([], "int32", data=np.array(-1)), b.tensor([], "int32", data=np.array(8))
    target = b.tensor([3], "int32")
    b.op("PACK", [batch, minus1, eight], [target], "PackOptions", values_count=3, axis=0)
    y = b.tensor([1, 8, 8], scale=0.1, zero_point=3)
    b.op("RESHAPE", [x, target], [y])
    return b.build([x], [y])


def test_shape_only_subgraph_is_folded_at_compile_time():
    cm = assert_bit_exact(shape_subgraph_model())
    kernels = [op["op"] for op in cm.report["ops"]]
    assert kernels == ["reshape"], kernels  # no SHAPE/STRIDED_SLICE/PACK kernel survives


def test_float_input_and_output():
    """QUANTIZE at the entry, DEQUANTIZE at the exit: the generated C takes and returns the int8
    tensors (io.json says ``model_dtype: float32`` and the scale/zero point);
    ``quantize_input``/``dequantize_output`` reproduce TFLite's float boundary exactly."""
    b = ModelBuilder()
    xf = b.tensor([1, 6, 6, 3], "float32", name="x")
    xq = b.tensor([1, 6, 6, 3], scale=0.031, zero_point=-5)
    b.op("QUANTIZE", [xf], [xq])
    yq = b.tensor([1, 3, 3, 3], scale=0.031, zero_point=-5)
    b.op("MAX_POOL_2D", [xq], [yq], "Pool2DOptions", padding=1, stride_h=2, stride_w=2, filter_height=2,
         filter_width=2)
    yf = b.tensor([1, 3, 3, 3], "float32", name="y")
    b.op("DEQUANTIZE", [yq], [yf])
    buf = b.build([xf], [yf])
    x = np.random.default_rng(3).normal(0, 2, (1, 6, 6, 3)).astype(np.float32)
    (ref,) = run_reference(buf, [x])
    cm = tvm_fused.compile(buf, progress=False, codegen=False)
    assert cm.io["inputs"][0]["model_dtype"] == "float32" and cm.io["outputs"][0]["model_dtype"] == "float32"
    y = cm.dequantize_output(cm.reference(cm.quantize_input(x)))
    np.testing.assert_array_equal(y, ref)


def test_structural_ops_through_generated_c(tmp_path):
    """A chain of the new kernels, as plain C with ASan/UBSan == TVM's host build == BUILTIN_REF."""
    from tvm_fused.backend import HostExecutable

    b = ModelBuilder()
    x = b.tensor([1, 5, 6, 3], scale=0.07, zero_point=4, name="x")
    size = b.tensor([2], "int32", data=np.array([10, 12]))
    up = b.tensor([1, 10, 12, 3], scale=0.07, zero_point=4)
    b.op("RESIZE_NEAREST_NEIGHBOR", [x, size], [up], "ResizeNearestNeighborOptions")
    mp = b.tensor([1, 5, 6, 3], scale=0.07, zero_point=4)
    b.op("MAX_POOL_2D", [up], [mp], "Pool2DOptions", padding=0, stride_h=2, stride_w=2, filter_height=3,
         filter_width=3)
    cat = b.tensor([1, 5, 6, 6], scale=0.07, zero_point=4)
    b.op("CONCATENATION", [mp, x], [cat], "ConcatenationOptions", axis=3)
    perm = b.tensor([4], "int32", data=np.array([0, 3, 1, 2]))
    tr = b.tensor([1, 6, 5, 6], scale=0.07, zero_point=4)
    b.op("TRANSPOSE", [cat, perm], [tr], "TransposeOptions")
    pads = b.tensor([4, 2], "int32", data=np.array([[0, 0], [1, 0], [0, 2], [0, 1]]))
    y = b.tensor([1, 7, 7, 7], scale=0.07, zero_point=4, name="y")
    b.op("PAD", [tr, pads], [y], "PadOptions")
    buf = b.build([x], [y])
    xs = _inputs(buf, 5)
    (ref,) = run_reference(buf, xs)
    cm = tvm_fused.compile(buf, progress=False)
    np.testing.assert_array_equal(cm.reference(*xs), ref)
    exe = HostExecutable(cm.export(tmp_path) / "model", cm.io["outputs"][0]["shape"])
    try:
        np.testing.assert_array_equal(exe(*xs), ref)
    finally:
        exe.close()


def test_split_v_slice_padv2():
    """The variants: SPLIT_V (uneven parts), SLICE (begin + size, -1 = to the end), PADV2 (a given value)."""
    b = ModelBuilder()
    x = b.tensor([1, 6, 5, 4], scale=0.1, zero_point=3)
    sizes, axis = b.tensor([3], "int32", data=np.array([1, 3, 2])), b.tensor([], "int32", data=np.array(1))
    parts = [b.tensor([1, k, 5, 4], scale=0.1, zero_point=3) for k in (1, 3, 2)]
    b.op("SPLIT_V", [x, sizes, axis], parts, "SplitVOptions", num_splits=3)
    assert_bit_exact(b.build([x], parts))

    b = ModelBuilder()
    x = b.tensor([1, 6, 5, 4], scale=0.1, zero_point=3)
    begin, size = (b.tensor([4], "int32", data=np.array(v)) for v in ([0, 1, 2, 1], [1, 3, -1, 2]))
    y = b.tensor([1, 3, 3, 2], scale=0.1, zero_point=3)
    b.op("SLICE", [x, begin, size], [y], "SliceOptions")
    assert_bit_exact(b.build([x], [y]))

    b = ModelBuilder()
    x = b.tensor([1, 3, 3, 2], scale=0.1, zero_point=3)
    pads = b.tensor([4, 2], "int32", data=np.array([[0, 0], [1, 1], [2, 0], [0, 1]]))
    value = b.tensor([], "int8", data=np.array(-20), scale=0.1, zero_point=3)
    y = b.tensor([1, 5, 5, 3], scale=0.1, zero_point=3)
    b.op("PADV2", [x, pads, value], [y], "PadV2Options")
    assert_bit_exact(b.build([x], [y]))


def _conv(b, x, shape_in, cout, k, stride, rng, depthwise=False, out_scale=0.05, out_zp=-10):
    """A quantized CONV_2D / DEPTHWISE_CONV_2D (SAME, RELU6) from ``x`` (scale 0.05, zp -10)."""
    n, h, w, cin = shape_in
    oh, ow = -(-h // stride), -(-w // stride)
    cout = cin if depthwise else cout
    wshape = [1, k, k, cout] if depthwise else [cout, k, k, cin]
    w_scales = rng.uniform(0.005, 0.02, cout).astype(np.float32)
    weights = b.tensor(wshape, "int8", scale=w_scales, zero_point=[0] * cout,
                       data=rng.integers(-127, 128, wshape), quantized_dimension=3 if depthwise else 0)
    bias = b.tensor([cout], "int32", scale=w_scales * np.float32(0.05), zero_point=[0] * cout,
                    data=rng.integers(-500, 500, cout))
    y = b.tensor([n, oh, ow, cout], scale=out_scale, zero_point=out_zp)
    if depthwise:
        b.op("DEPTHWISE_CONV_2D", [x, weights, bias], [y], "DepthwiseConv2DOptions", padding=0, stride_w=stride,
             stride_h=stride, depth_multiplier=1, fused_activation_function="RELU6")
    else:
        b.op("CONV_2D", [x, weights, bias], [y], "Conv2DOptions", padding=0, stride_w=stride, stride_h=stride,
             fused_activation_function="RELU6")
    return y, [n, oh, ow, cout]


def test_chains_broken_by_a_max_pool_still_fuse():
    """conv -> dw -> MAX_POOL -> conv -> dw: the pool is never inside a fused chain; the chains on
    either side fuse, and every fuse setting gives BUILTIN_REF's bits."""
    rng = np.random.default_rng(11)
    b = ModelBuilder()
    x = b.tensor([1, 24, 24, 3], scale=0.05, zero_point=-10, name="x")
    t, shape = _conv(b, x, [1, 24, 24, 3], 8, 3, 1, rng)
    t, shape = _conv(b, t, shape, 8, 3, 1, rng, depthwise=True)
    pooled = b.tensor([1, 12, 12, 8], scale=0.05, zero_point=-10)
    b.op("MAX_POOL_2D", [t], [pooled], "Pool2DOptions", padding=1, stride_h=2, stride_w=2, filter_height=2,
         filter_width=2)
    t, shape = _conv(b, pooled, [1, 12, 12, 8], 16, 1, 1, rng)
    t, shape = _conv(b, t, shape, 16, 3, 1, rng, depthwise=True)
    buf = b.build([x], [t])
    xs = _inputs(buf, 2)
    (ref,) = run_reference(buf, xs)
    kinds = {}
    for fuse in ("none", "auto", "all"):
        if fuse == "all":
            fuse = cm.report["fuse"]["fusable_blocks"]
        cm = tvm_fused.compile(buf, fuse=fuse, progress=False, codegen=False)
        np.testing.assert_array_equal(cm.reference(*xs), ref, err_msg=f"fuse={fuse}")
        kinds[fuse] = [op["op"] for op in cm.report["ops"]]
    assert kinds["none"].count("max_pool2d") == 1 and "fused_chain" not in kinds["none"]
    assert kinds[fuse] == ["fused_chain", "max_pool2d", "fused_chain"], kinds[fuse]


def test_two_inputs_two_outputs_through_generated_c(tmp_path):
    """The generated C with two inputs and two outputs (one struct member each), built with
    ASan/UBSan by the host harness: == BUILTIN_REF for both outputs."""
    from tvm_fused.backend import HostExecutable

    b = ModelBuilder()
    a = b.tensor([1, 4, 5, 3], scale=0.06, zero_point=2, name="serving_default_a:0")
    c = b.tensor([1, 4, 5, 2], scale=0.06, zero_point=2, name="serving_default_b:0")
    cat = b.tensor([1, 4, 5, 5], scale=0.06, zero_point=2, name="joined")
    b.op("CONCATENATION", [a, c], [cat], "ConcatenationOptions", axis=3)
    perm = b.tensor([4], "int32", data=np.array([0, 2, 1, 3]))
    tr = b.tensor([1, 5, 4, 3], scale=0.06, zero_point=2, name="turned")
    b.op("TRANSPOSE", [a, perm], [tr], "TransposeOptions")
    buf = b.build([a, c], [cat, tr])
    xs = _inputs(buf, 9)
    ref = run_reference(buf, xs)
    cm = tvm_fused.compile(buf, progress=False)
    header = cm.library.files["include/tvmgen_default.h"]
    assert "struct tvmgen_default_inputs { void* serving_default_a_0; void* serving_default_b_0; };" in header
    assert "struct tvmgen_default_outputs { void* joined; void* turned; };" in header
    exe = HostExecutable(cm.export(tmp_path / "export") / "model", [o["shape"] for o in cm.io["outputs"]])
    try:
        got = exe(*xs)
    finally:
        exe.close()
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g, r)
