"""A structural check of a TFLite flatbuffer before anything reads it lazily.

The ``tflite`` package decodes fields on access, so a damaged file (truncated, bit
flips) fails deep inside TVM's importer with struct.error, UnicodeDecodeError or
TypeError. ``verify_tflite`` touches every field the importer uses once, up front, and
checks the references between tables:

- every operator's opcode index < number of operator codes; every tensor index in
  an operator's inputs/outputs and the subgraph's inputs/outputs is -1 (absent) or
  < number of tensors; every tensor's buffer index < number of buffers
- shapes: dims >= 0 (-1 only where shape_signature marks a dynamic dim), at most
  2^31 elements per tensor (a flipped bit must not make the compiler allocate
  terabytes)
- a constant tensor's buffer holds exactly prod(shape) * itemsize bytes
- every tensor has a name that decodes as UTF-8; quantization scales are finite and >= 0
"""
from __future__ import annotations

import math

from ..errors import ModelLoadError

_ITEMSIZE = {"INT8": 1, "UINT8": 1, "BOOL": 1, "INT16": 2, "FLOAT16": 2, "INT32": 4, "FLOAT32": 4, "INT64": 8,
             "FLOAT64": 8, "UINT32": 4, "UINT16": 2, "UINT64": 8}
MAX_ELEMENTS = 2**31


def _vector(x):
    """tflite's *AsNumpy returns 0 for an absent vector."""
    return [] if isinstance(x, int) else [int(v) for v in x]


def verify_tflite(model, where: str) -> None:
    """Raise ModelLoadError naming ``where`` and the broken table if ``model`` is not well formed."""
    try:
        _verify(model)
    except ModelLoadError as e:
        raise ModelLoadError(f"{where}: damaged TFLite flatbuffer: {e}; is the file complete and unmodified?") from e
    except Exception as e:  # noqa: BLE001: any decoding failure of the lazy accessors means a damaged file
        raise ModelLoadError(f"{where}: damaged TFLite flatbuffer ({type(e).__name__}: {e}); "
                             "is the file complete and unmodified?") from e


def _verify(model) -> None:
    import tflite

    type_names = {v: k for k, v in tflite.TensorType.__dict__.items() if not k.startswith("_")}
    n_codes, n_buffers = model.OperatorCodesLength(), model.BuffersLength()
    for i in range(n_codes):
        code = model.OperatorCodes(i)
        code.BuiltinCode(), code.DeprecatedBuiltinCode(), code.CustomCode()
    if model.SubgraphsLength() < 1:
        raise ModelLoadError("no subgraph")
    buffer_sizes = [model.Buffers(b).DataLength() for b in range(n_buffers)]
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        n_tensors = graph.TensorsLength()

        def tensor_refs(indices, what, optional=True):
            for t in indices:
                if not ((optional and t == -1) or 0 <= t < n_tensors):
                    raise ModelLoadError(f"subgraph {s}: {what} refers to tensor {t} of {n_tensors}")

        tensor_refs(_vector(graph.InputsAsNumpy()), "an input", optional=False)
        tensor_refs(_vector(graph.OutputsAsNumpy()), "an output", optional=False)
        for t in range(n_tensors):
            _verify_tensor(graph.Tensors(t), t, type_names, buffer_sizes)
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            if not 0 <= op.OpcodeIndex() < n_codes:
                raise ModelLoadError(f"operator {o} has opcode index {op.OpcodeIndex()} of {n_codes}")
            tensor_refs(_vector(op.InputsAsNumpy()), f"operator {o}'s input")
            tensor_refs(_vector(op.OutputsAsNumpy()), f"operator {o}'s output", optional=False)
            if op.OutputsLength() < 1:
                raise ModelLoadError(f"operator {o} has no output")
            op.BuiltinOptionsType()
            code = model.OperatorCodes(op.OpcodeIndex())
            _verify_options(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), op, o)


def _verify_options(builtin: int, op, o: int) -> None:
    """Window and stride options of the convolution and pooling ops: a stride of -1 or 0 would
    reach TVM's scheduler as an empty loop domain."""
    import tflite

    B = tflite.BuiltinOperator
    kinds = {B.CONV_2D: (tflite.Conv2DOptions, ("StrideW", "StrideH", "DilationWFactor", "DilationHFactor")),
             B.DEPTHWISE_CONV_2D: (tflite.DepthwiseConv2DOptions,
                                   ("StrideW", "StrideH", "DilationWFactor", "DilationHFactor")),
             B.AVERAGE_POOL_2D: (tflite.Pool2DOptions, ("StrideW", "StrideH", "FilterWidth", "FilterHeight")),
             B.MAX_POOL_2D: (tflite.Pool2DOptions, ("StrideW", "StrideH", "FilterWidth", "FilterHeight"))}
    if builtin not in kinds:
        return
    table = op.BuiltinOptions()
    if table is None:
        raise ModelLoadError(f"operator {o} has no options table")
    cls, fields = kinds[builtin]
    options = cls()
    options.Init(table.Bytes, table.Pos)
    for field in fields:
        value = getattr(options, field)()
        if not 1 <= value <= 4096:
            raise ModelLoadError(f"operator {o} has {field} = {value} (must be 1 or more)")
    if options.Padding() not in (tflite.Padding.SAME, tflite.Padding.VALID):
        raise ModelLoadError(f"operator {o} has an unknown padding code {options.Padding()}")


def _verify_tensor(tensor, t: int, type_names: dict, buffer_sizes: list) -> None:
    name = tensor.Name()
    if name is None:  # every converter names its tensors; TVM's importer and our checks rely on it
        raise ModelLoadError(f"tensor {t} has no name")
    name = name.decode("utf-8")
    shape = _vector(tensor.ShapeAsNumpy())
    signature = _vector(tensor.ShapeSignatureAsNumpy())
    for k, d in enumerate(shape):
        dynamic = d == -1 and (len(signature) == len(shape) and signature[k] == -1)
        if d < 0 and not dynamic:
            raise ModelLoadError(f"tensor '{name}' has dimension {d} in shape {shape}")
    elements = math.prod(max(d, 1) for d in shape)
    if elements > MAX_ELEMENTS:
        raise ModelLoadError(f"tensor '{name}' has shape {shape} ({elements:,} elements)")
    kind = type_names.get(tensor.Type())
    if kind is None:
        raise ModelLoadError(f"tensor '{name}' has an unknown type code {tensor.Type()}")
    b = tensor.Buffer()
    if not 0 <= b < len(buffer_sizes):
        raise ModelLoadError(f"tensor '{name}' refers to buffer {b} of {len(buffer_sizes)}")
    if buffer_sizes[b] and kind in _ITEMSIZE and -1 not in shape and buffer_sizes[b] != elements * _ITEMSIZE[kind]:
        raise ModelLoadError(f"constant tensor '{name}' of shape {shape} {kind} needs "
                             f"{elements * _ITEMSIZE[kind]} bytes, its buffer has {buffer_sizes[b]}")
    q = tensor.Quantization()
    if q is not None:
        scales = q.ScaleAsNumpy()
        zero_points = q.ZeroPointAsNumpy()
        scales = [] if isinstance(scales, int) else [float(v) for v in scales]
        _vector(zero_points)
        if any(not (math.isfinite(v) and v >= 0) for v in scales):
            raise ModelLoadError(f"tensor '{name}' has a quantization scale that is negative or not finite")
        q.QuantizedDimension()
