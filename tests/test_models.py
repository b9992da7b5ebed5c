"""The model zoo and the TFLite fixtures: deterministic, well-formed, runnable by reference runtimes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tvm_fused import models
from tvm_fused.models import ZOO, make_divisible, mobilenet_v2, mobilenet_v2_float, testing

ort = pytest.importorskip("onnxruntime")

FIXTURES = Path(__file__).parent / "fixtures"
TINY = ZOO["mbv2-0.35-96-tiny"]


def _run_ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def _inits(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


@pytest.fixture(scope="module")
def tiny_qdq() -> onnx.ModelProto:
    return mobilenet_v2(**TINY)


class TestBuilder:
    def test_make_divisible_matches_paper(self):
        assert make_divisible(32 * 0.35) == 16     # rounding down to 8 would lose >10%
        assert make_divisible(24 * 0.35) == 8
        assert make_divisible(320 * 0.35) == 112
        assert make_divisible(96 * 0.75) == 72

    def test_zoo_has_required_names(self):
        required = {"mbv2-0.35-96", "mbv2-0.35-224", "mbv2-1.0-96", "mbv2-1.0-224", "mbv2-0.5-128",
                    "mbv2-0.35-144", "mbv2-0.35-320", "mbv2-0.35-96-dw5", "mbv2-0.5-96-t4",
                    "mbv2-0.35-96-tiny"}
        assert required <= set(models.zoo_names())

    @pytest.mark.parametrize("kwargs", [
        dict(width=0.35, resolution=96),
        dict(width=0.5, resolution=144, num_classes=5),
        dict(width=0.75, resolution=128, dw_kernel=5, num_blocks=6),
        dict(width=1.0, resolution=96, expand_ratio=4, num_blocks=4),
    ])
    def test_float_shapes_and_structure(self, kwargs):
        model = mobilenet_v2_float(**kwargs)
        res, ncls = kwargs["resolution"], kwargs.get("num_classes", 10)
        x = np.random.default_rng(0).uniform(-1, 1, (1, 3, res, res)).astype(np.float32)
        assert _run_ort(model, x).shape == (1, ncls)
        convs = [n for n in model.graph.node if n.op_type == "Conv"]
        k = kwargs.get("dw_kernel", 3)
        for node in convs:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            assert attrs["pads"] == [attrs["kernel_shape"][0] // 2] * 4
            assert attrs["strides"][0] in (1, 2)
            assert len(node.input) == 3, "every conv has a (folded BN) bias"
            if attrs["group"] > 1:
                assert attrs["kernel_shape"] == [k, k]

    def test_residual_adds_where_expected(self):
        # mbv2 has 10 residual blocks: 1 + 2 + 3 + 2 + 2 (repeats minus the first of each stage)
        ops = [n.op_type for n in mobilenet_v2_float().graph.node]
        assert ops.count("Add") == 10
        assert ops.count("Clip") == 35  # stem + (expand + dw) per block - first block's expand + head

    def test_rejects_bad_params(self):
        with pytest.raises(ValueError):
            mobilenet_v2_float(width=0.4)
        with pytest.raises(ValueError):
            mobilenet_v2_float(resolution=100)

    def test_float_activations_have_sane_range(self):
        """Seeded weights must neither blow up nor vanish through the stack."""
        model = mobilenet_v2_float(width=0.35, resolution=96)
        names = [n.output[0] for n in model.graph.node if n.op_type in ("Clip", "Add")]
        for name in names:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        x = np.random.default_rng(1).uniform(-1, 1, (1, 3, 96, 96)).astype(np.float32)
        for out in sess.run(None, {"input": x})[1:]:
            assert 0.1 < out.std() < 3.0
            assert np.mean(out >= 6.0) < 0.05


class TestQuantized:
    def test_deterministic_bytes(self, tiny_qdq):
        assert mobilenet_v2(**TINY).SerializeToString() == tiny_qdq.SerializeToString()
        assert mobilenet_v2(**TINY, seed=1).SerializeToString() != tiny_qdq.SerializeToString()

    def test_io_names_and_shapes(self, tiny_qdq):
        (inp,), (out,) = tiny_qdq.graph.input, tiny_qdq.graph.output
        assert inp.name == "input" and [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, 3, 96, 96]
        assert out.name == "output" and [d.dim_value for d in out.type.tensor_type.shape.dim] == [1, 10]

    def test_onnxruntime_runs_and_output_varies(self, tiny_qdq):
        rng = np.random.default_rng(0)
        ys = [_run_ort(tiny_qdq, rng.uniform(-1, 1, (1, 3, 96, 96)).astype(np.float32)) for _ in range(3)]
        assert all(y.shape == (1, 10) and np.isfinite(y).all() for y in ys)
        assert np.std(ys) > 0 and not np.array_equal(ys[0], ys[1])

    def test_int8_qdq_with_per_channel_weights(self, tiny_qdq):
        inits = _inits(tiny_qdq)
        producers = {n.output[0]: n for n in tiny_qdq.graph.node}
        for node in tiny_qdq.graph.node:
            if node.op_type not in ("Conv", "Gemm"):
                continue
            w_dq = producers[node.input[1]]
            assert w_dq.op_type == "DequantizeLinear"
            w, scale, zp = (inits[i] for i in w_dq.input)
            assert w.dtype == np.int8 and zp.dtype == np.int8 and not zp.any()
            assert scale.shape == (w.shape[0],), "per-channel weight scales along the output channels"
            b_dq = producers[node.input[2]]
            assert inits[b_dq.input[0]].dtype == np.int32
        zero_points = [inits[n.input[2]] for n in tiny_qdq.graph.node if n.op_type == "QuantizeLinear"]
        assert zero_points and all(z.dtype == np.int8 for z in zero_points)

    def test_cache_reuses_file(self, tmp_path, monkeypatch):
        first = models.get("mbv2-0.35-96-tiny", cache_dir=tmp_path)
        files = list(tmp_path.glob("*.onnx"))
        assert len(files) == 1 and "mbv2-0.35-96-tiny" in files[0].name

        def fail(**_):
            raise AssertionError("requantized although cached")
        monkeypatch.setattr("tvm_fused.models.zoo.mobilenet_v2", fail)
        again = models.get("mbv2-0.35-96-tiny", cache_dir=tmp_path)
        assert again.SerializeToString() == first.SerializeToString()
        with pytest.raises(KeyError):
            models.get("no-such-model", cache_dir=tmp_path)


class TestErrorModels:
    def test_float_only(self):
        ops = {n.op_type for n in testing.float_only_model().graph.node}
        assert "Conv" in ops and not ops & {"QuantizeLinear", "DequantizeLinear"}

    @pytest.mark.parametrize("op_type", ["LpNormalization", "Hardmax"])
    def test_unsupported_op_sits_between_dq_and_q(self, op_type):
        model = testing.unsupported_op_model(op_type)
        producers = {o: n for n in model.graph.node for o in n.output}
        (odd,) = [n for n in model.graph.node if n.op_type == op_type]
        assert producers[odd.input[0]].op_type == "DequantizeLinear"
        consumers = [n for n in model.graph.node if odd.output[0] in n.input]
        assert [c.op_type for c in consumers] == ["QuantizeLinear"]

    def test_no_chain(self):
        ops = [n.op_type for n in testing.no_chain_model().graph.node]
        assert ops.count("Conv") == 1 and "Gemm" in ops and "GlobalAveragePool" in ops
        assert "QuantizeLinear" in ops


# --- TFLite fixtures (made by tools/make_tflite_fixtures.py) -------------------------------------

TFLITE_OPS = {
    "mbv2_035_96": {"CONV_2D": 35, "DEPTHWISE_CONV_2D": 17, "ADD": 10, "MEAN": 1,
                    "FULLY_CONNECTED": 1},
    "conv_chain": {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 1, "ADD": 1, "AVERAGE_POOL_2D": 1, "MEAN": 1,
                   "FULLY_CONNECTED": 1},
    "dw5_stride2": {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 1, "MEAN": 1, "FULLY_CONNECTED": 1},
}


def _tflite_ops(buf: bytes) -> dict[str, int]:
    tflite = pytest.importorskip("tflite")
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    model = tflite.Model.GetRootAsModel(buf, 0)
    graph = model.Subgraphs(0)
    ops: dict[str, int] = {}
    for i in range(graph.OperatorsLength()):
        code = model.OperatorCodes(graph.Operators(i).OpcodeIndex())
        name = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ops[name] = ops.get(name, 0) + 1
    return ops


@pytest.mark.parametrize("name", sorted(TFLITE_OPS))
def test_tflite_fixture_runs_int8(name):
    interpreter_mod = pytest.importorskip("ai_edge_litert.interpreter")
    buf = (FIXTURES / f"{name}.tflite").read_bytes()
    assert _tflite_ops(buf) == TFLITE_OPS[name]
    interp = interpreter_mod.Interpreter(model_content=buf)
    interp.allocate_tensors()
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    assert inp["shape"][0] == 1 and inp["shape"][-1] == 3, "NHWC image input"
    rng = np.random.default_rng(0)
    ys = []
    for _ in range(2):
        interp.set_tensor(inp["index"], rng.integers(-128, 128, inp["shape"], dtype=np.int8))
        interp.invoke()
        ys.append(interp.get_tensor(out["index"]).copy())
    assert ys[0].shape == (1, 10) and not np.array_equal(ys[0], ys[1])
