"""Full-int8 TFLite -> Relax (through TVM's own TFLite frontend)."""
from __future__ import annotations

import os

from ..errors import ModelLoadError, UnsupportedModelError

SUPPORTED_TFLITE_OPS = {
    "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "AVERAGE_POOL_2D", "MEAN", "FULLY_CONNECTED", "RESHAPE",
    "PAD", "QUANTIZE", "DEQUANTIZE", "RELU", "RELU6",
}


def read_tflite(model):
    """Parse a .tflite flatbuffer (path or bytes) into a ``tflite.Model``."""
    import tflite

    if isinstance(model, (bytes, bytearray)):
        buf, where = bytes(model), "<bytes>"
    else:
        where = os.fspath(model)
        try:
            with open(where, "rb") as f:
                buf = f.read()
        except OSError as exc:
            raise ModelLoadError(f"{where}: {exc.strerror}") from exc
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelLoadError(f"{where}: not a TFLite flatbuffer (missing 'TFL3' identifier); is the file complete?")
    from .tflite_verify import verify_tflite

    try:
        m = tflite.Model.GetRootAsModel(buf, 0)
    except Exception as exc:
        raise ModelLoadError(f"{where}: corrupt TFLite flatbuffer ({exc})") from exc
    verify_tflite(m, where)
    return m


def _op_names(model):
    import tflite

    names = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}
    graph = model.Subgraphs(0)
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        out = graph.Tensors(op.Outputs(0))
        yield names.get(builtin, f"op#{builtin}"), out.Name().decode(), out


def check_tflite(model) -> None:
    import tflite

    ops = list(_op_names(model))
    float_outputs = [name for op, name, t in ops
                     if t.Type() == tflite.TensorType.FLOAT32 and op not in ("DEQUANTIZE",)]
    if ops and len(float_outputs) == len(ops):
        raise UnsupportedModelError(
            "this TFLite model is float-only; tvm-fused compiles full-int8 models. Convert with "
            "converter.optimizations = [tf.lite.Optimize.DEFAULT], a representative_dataset and "
            "converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]")
    bad = [(op, name) for op, name, _ in ops if op not in SUPPORTED_TFLITE_OPS]
    if bad:
        listing = ", ".join(f"{op} (output '{name}')" for op, name in bad[:10])
        raise UnsupportedModelError(
            f"unsupported TFLite operators: {listing}. Supported: {', '.join(sorted(SUPPORTED_TFLITE_OPS))}")


def import_tflite(model):
    from .layer_names import import_tflite_named

    try:
        result = import_tflite_named(model)
    except Exception as exc:
        raise UnsupportedModelError(f"TVM's TFLite importer rejected the model: {exc}".splitlines()[0]) from exc
    return result[0] if isinstance(result, tuple) else result
