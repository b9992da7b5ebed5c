"""ONNX (QDQ int8, as onnxruntime's quantize_static writes it) -> Relax."""
from __future__ import annotations

import os

import onnx

from ..errors import ModelLoadError, UnsupportedModelError



def read_onnx(model) -> onnx.ModelProto:
    """Load and validate; a broken file gives ModelLoadError, not a protobuf traceback."""
    if isinstance(model, onnx.ModelProto):
        proto, path = model, "the ONNX model"
    else:
        path = os.fspath(model)
        try:
            proto = onnx.load(path)
        except Exception as exc:  # protobuf raises DecodeError, sometimes others
            raise ModelLoadError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc}); "
                                 "is the file complete?") from exc
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise ModelLoadError(f"{path}: invalid ONNX model: {str(exc).strip()}") from exc
    _check_shapes(proto, path)
    return proto


def _check_shapes(proto: onnx.ModelProto, path: str) -> None:
    """Fixed, positive input dims, and shapes/attributes consistent under ONNX's strict shape inference
    (a damaged or hand-edited file fails here with ONNX's own message, not deep inside TVM)."""
    initializers = {t.name for t in proto.graph.initializer}
    for vi in proto.graph.input:
        if vi.name in initializers:
            continue
        dims = vi.type.tensor_type.shape.dim
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
        if any(not isinstance(d, int) or d <= 0 for d in shape):
            raise UnsupportedModelError(
                f"{path}: input '{vi.name}' has shape {shape}; tvm-fused compiles fixed shapes with positive "
                "dims: export the model with a fixed input shape (batch 1), e.g. torch.onnx.export without "
                "dynamic_axes, or onnxruntime.tools.make_dynamic_shape_fixed")
    try:
        onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except Exception as exc:  # onnx raises InferenceError, sometimes others
        first = str(exc).strip().splitlines()
        raise ModelLoadError(f"{path}: inconsistent ONNX model ({first[0] if first else type(exc).__name__}); "
                             "is the file complete and unmodified?") from exc


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
    zero_points = {n.input[2] for n in proto.graph.node
                   if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2}
    for init in proto.graph.initializer:
        if init.data_type == onnx.TensorProto.UINT8 and (init.name in zero_points or init.name.endswith("zero_point")):
            raise UnsupportedModelError(
                f"'{init.name}' is uint8: tvm-fused expects int8 (QuantType.QInt8) activations and weights")


def import_onnx(proto: onnx.ModelProto):
    from ..attrs import OUTPUT_NAMES_ATTR
    from .layer_names import import_onnx_named

    try:
        mod = import_onnx_named(proto)
    except Exception as exc:
        raise UnsupportedModelError(f"TVM's ONNX importer rejected the model: {exc}".splitlines()[0]) from exc
    names = [o.name for o in proto.graph.output]  # io.json and the C struct members use them
    mod["main"] = mod["main"].with_attr(OUTPUT_NAMES_ATTR, names)
    return mod
