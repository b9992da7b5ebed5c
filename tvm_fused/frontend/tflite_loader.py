"""Full-int8 TFLite -> Relax (through TVM's own TFLite frontend)."""
from __future__ import annotations

import os

from ..errors import ModelLoadError, UnsupportedModelError



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
    from .ops import check_model_ops  # lazy: `python -m tvm_fused.frontend.ops` runs that module

    check_model_ops("tflite", [(op, name) for op, name, _ in ops], "this TFLite model")
    _check_softmax_beta(model)


def _check_softmax_beta(model) -> None:
    """TVM's TFLite importer drops SOFTMAX's ``beta``; refuse the model rather than compute beta = 1."""
    import tflite

    graph = model.Subgraphs(0)
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) != tflite.BuiltinOperator.SOFTMAX:
            continue
        table = op.BuiltinOptions()
        if table is None:
            continue
        options = tflite.SoftmaxOptions()
        options.Init(table.Bytes, table.Pos)
        if options.Beta() != 1.0:
            name = graph.Tensors(op.Outputs(0)).Name().decode()
            raise UnsupportedModelError(
                f"SOFTMAX (output '{name}') has beta = {options.Beta()}; TVM's TFLite importer ignores beta, "
                "so tvm-fused supports beta = 1 only. Scale the softmax input instead (beta * logits) and "
                "convert again.")


def import_tflite(model):
    from .layer_names import import_tflite_named

    from .tflite_converter import TvmFusedTfliteConverter

    try:
        result = import_tflite_named(model, TvmFusedTfliteConverter)
    except Exception as exc:
        raise UnsupportedModelError(f"TVM's TFLite importer rejected the model: {exc}".splitlines()[0]) from exc
    mod = result[0] if isinstance(result, tuple) else result
    return _with_input_quantization(mod, model)


def _with_input_quantization(mod, model):
    """Record each int8 graph input's (scale, zero point) on ``main``: an input that only
    data-movement ops read (max pool, pad, ...) has no dequantize to carry them."""
    from ..attrs import INPUT_QUANT_ATTR, OUTPUT_NAMES_ATTR

    graph = model.Subgraphs(0)
    quant = {}
    for i in range(graph.InputsLength()):
        t = graph.Tensors(graph.Inputs(i))
        q = t.Quantization()
        if q is not None and q.ScaleLength() == 1:
            quant[t.Name().decode()] = [float(q.Scale(0)), int(q.ZeroPoint(0))]
    outputs = [graph.Tensors(graph.Outputs(i)).Name().decode() for i in range(graph.OutputsLength())]
    main = mod["main"].with_attr(INPUT_QUANT_ATTR, quant)
    mod["main"] = main.with_attr(OUTPUT_NAMES_ATTR, outputs)
    return mod
