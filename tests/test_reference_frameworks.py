"""Agreement with the source frameworks.

TFLite: our kernels follow TFLite's fixed-point arithmetic, so the output equals the
interpreter's reference kernels (BUILTIN_REF) bit for bit.

ONNX: a QDQ graph means "dequantize, compute in float, quantize"; onnxruntime with
graph optimizations off runs exactly that. Integer kernels with fixed-point
requantization round differently from float math on ties and near-ties, so a single
layer may differ by 1 int8 unit; we check each layer in isolation (fed onnxruntime's
own input) for at most 1 unit, and the whole network for the same top-1 class.
Differences of a unit at one layer can grow through later layers, so the end-to-end
difference is reported, not bounded by 1.
"""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tvm
from onnx import helper

from fixture_paths import FIXTURES, TFLITE_FIXTURES


@pytest.mark.parametrize("name", TFLITE_FIXTURES)
def test_tflite_bit_exact_with_reference_kernels(cache, name):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    cm = cache.compile(name)
    it = Interpreter(model_path=str(FIXTURES / name),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    for seed in range(5):
        x = cm.random_input(seed)
        it.set_tensor(inp["index"], x)
        it.invoke()
        np.testing.assert_array_equal(cm.reference(x), it.get_tensor(out["index"]))


def _ort_session(model: onnx.ModelProto):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _nhwc(a):
    return a.transpose(0, 2, 3, 1) if a.ndim == 4 else a


@pytest.mark.parametrize("name", ["mbv2-0.35-96", "mbv2-0.35-96-dw5"])
def test_onnx_each_layer_within_one_unit_of_onnxruntime(cache, name):
    from tvm_fused import models
    from tvm_fused.backend.plain_c import HOST_PIPELINE_NAME

    cm = cache.compile(name)
    proto = onnx.load(str(models.path(name)))
    q_nodes = [n.output[0] for n in proto.graph.node if n.op_type == "QuantizeLinear"]
    for o in q_nodes:
        proto.graph.output.append(helper.make_tensor_value_info(o, onnx.TensorProto.INT8, None))
    x = np.random.default_rng(0).normal(0, 1, size=(1, 3, *cm.io["inputs"][0]["shape"][1:3])).astype(np.float32)
    outs = _ort_session(proto).run(None, {"input": x})[1:]
    ort_q = dict(zip(q_nodes, outs))
    # our kernels in execution order <-> QuantizeLinear nodes in graph order (first is the input)
    main = cm.mod["main"]
    bindings = [b for blk in main.body.blocks for b in blk.bindings if hasattr(b.value, "args")]
    produced = {main.params[0].name: _nhwc(ort_q[q_nodes[0]])}
    worst = 0
    for binding, q_name in zip(bindings, q_nodes[1:]):
        call = binding.value
        func = cm.mod[call.args[0]]
        args = []
        for a in call.args[1].fields:
            args.append(produced[a.name] if hasattr(a, "name") and a.name in produced else a.value.numpy())
        want = _nhwc(ort_q[q_name])
        lib = tvm.tirx.build(func.with_attr("global_symbol", "kernel"), target="llvm",
                             pipeline=HOST_PIPELINE_NAME)
        dev = tvm.cpu()
        out = tvm.runtime.tensor(np.zeros(want.shape, np.int8), dev)
        lib(*[tvm.runtime.tensor(np.ascontiguousarray(a), dev) for a in args], out)
        got = out.numpy()
        worst = max(worst, int(np.abs(got.astype(int) - want.astype(int)).max()))
        produced[binding.var.name] = want  # feed onnxruntime's tensor to the next layer
    assert worst <= 1, f"a layer differs from onnxruntime by {worst} int8 units"


@pytest.mark.parametrize("name", ["mbv2-0.35-96", "mbv2-1.0-96"])
def test_onnx_end_to_end_same_class_as_onnxruntime(cache, name):
    from tvm_fused import models

    cm = cache.compile(name)
    i, o = cm.io["inputs"][0], cm.io["outputs"][0]
    sess = _ort_session(onnx.load(str(models.path(name))))
    rng = np.random.default_rng(7)
    agree, diffs = 0, []
    for _ in range(6):
        xf = rng.normal(0, 1, size=(1, 3, i["shape"][1], i["shape"][2])).astype(np.float32)
        q = np.clip(np.round(xf / i["scale"]) + i["zero_point"], -128, 127).astype(np.int8)
        xq = (q.astype(np.float32) - i["zero_point"]) * np.float32(i["scale"])
        y_ort = np.clip(np.round(sess.run(None, {"input": xq})[0] / o["scale"]) + o["zero_point"], -128, 127)
        y = cm.reference(q.transpose(0, 2, 3, 1)).astype(int)
        agree += int(y_ort.argmax() == y.argmax())
        diffs.append(int(np.abs(y_ort - y).max()))
    assert agree >= 5, f"top-1 agreed on {agree}/6 inputs; max diffs {diffs}"
