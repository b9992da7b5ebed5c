"""ONNX (QDQ int8, as onnxruntime's quantize_static writes it) -> Relax."""
from __future__ import annotations

import os

import onnx

from ..errors import ModelLoadError, UnsupportedModelError



def read_onnx(model) -> onnx.ModelProto:
    """Load and validate; a broken file gives ModelLoadError, not a protobuf traceback."""
    if isinstance(model, onnx.ModelProto):
        proto = model
    else:
        path = os.fspath(model)
        try:
            proto = onnx.load(path)
        except Exception as exc:  # protobuf raises DecodeError, sometimes others
            raise ModelLoadError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc}); "
                                 "is the file complete?") from None
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise ModelLoadError(f"invalid ONNX model: {exc}") from None
    return proto


def check_onnx(proto: onnx.ModelProto) -> None:
    """Reject float-only models and unsupported ops before TVM's importer sees them."""
    ops = [(n.op_type, n.name or n.output[0]) for n in proto.graph.node]
    types = {op for op, _ in ops}
    if not {"QuantizeLinear", "DequantizeLinear"} & types:
        raise UnsupportedModelError(
            "this ONNX model is float-only (no QuantizeLinear/DequantizeLinear); tvm-fused compiles int8 "
            "models. Quantize it first, e.g. onnxruntime.quantization.quantize_static(..., "
            "quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8, "
            "weight_type=QuantType.QInt8)")
    from .ops import check_model_ops  # lazy: `python -m tvm_fused.frontend.ops` runs that module

    check_model_ops("onnx", ops, "this ONNX model")
    for init in proto.graph.initializer:
        if init.data_type == onnx.TensorProto.UINT8 and init.name.endswith("zero_point"):
            raise UnsupportedModelError(
                f"'{init.name}' is uint8: tvm-fused expects int8 (QuantType.QInt8) activations and weights")


def import_onnx(proto: onnx.ModelProto):
    from tvm.relax.frontend.onnx import from_onnx

    import json

    try:
        mod = from_onnx(proto, keep_params_in_input=False)
    except Exception as exc:
        raise UnsupportedModelError(f"TVM's ONNX importer rejected the model: {exc}".splitlines()[0]) from None
    names = [o.name for o in proto.graph.output]
    mod["main"] = mod["main"].with_attr("tvm_fused.output_names", json.dumps(names))
    return mod
