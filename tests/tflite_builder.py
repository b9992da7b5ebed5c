"""Write small TFLite flatbuffers for tests, without TensorFlow.

A test describes a model as tensors (shape, type, quantization, optional constant data)
and builtin operators (op code, input/output tensor indices, options table), and gets
the ``.tflite`` bytes. The flatbuffer is written with the ``tflite`` package's generated
builders (schema v3), so the TFLite interpreter and TVM's Relax TFLite frontend read it
like a converter-made model.

    b = ModelBuilder()
    x = b.tensor([1, 8, 8, 4], "int8", scale=0.05, zero_point=-3)
    y = b.tensor([1, 8, 8, 4], "int8", scale=1 / 256, zero_point=-128)
    b.op("SOFTMAX", [x], [y], "SoftmaxOptions", beta=1.0)
    buf = b.build(inputs=[x], outputs=[y])
    (out,) = run_reference(buf, [np.zeros((1, 8, 8, 4), np.int8)])

Options are the schema's fields in snake_case (``fused_activation_function``,
``stride_w``, ``new_shape`` ...); list values become int32 vectors. An activation may be
given by name (``fused_activation_function="RELU6"``). Constant tensors take ``data``
(numpy, stored little-endian); per-channel quantization takes a list of scales and zero
points and ``quantized_dimension``. An optional input (TFLite's -1) is written as ``-1``.
"""
from __future__ import annotations

import importlib

import flatbuffers
import numpy as np

_TYPES = {"float32": 0, "int32": 2, "uint8": 3, "int64": 4, "bool": 6, "int16": 7, "int8": 9}
_PLACEHOLDER_FOR_GREATER_OP_CODES = 127


def _schema(name: str):
    """The generated module ``tflite.<name>`` (the package re-exports the class under that name)."""
    return importlib.import_module(f"tflite.{name}")


def _camel(snake: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_"))


def builtin_code(op: str | int) -> int:
    """``"SOFTMAX"`` -> 25 (tflite.BuiltinOperator)."""
    if isinstance(op, int):
        return op
    return getattr(_schema("BuiltinOperator").BuiltinOperator, op)


def activation_code(act: str | int) -> int:
    if isinstance(act, int):
        return act
    return getattr(_schema("ActivationFunctionType").ActivationFunctionType, act)


class ModelBuilder:
    """Collects tensors and operators of one subgraph; ``build`` writes the model."""

    def __init__(self, description: str = "tvm-fused test model"):
        self.description = description
        self.tensors: list[dict] = []
        self.ops: list[dict] = []
        self.buffers: list[bytes] = [b""]  # buffer 0: the empty sentinel TFLite expects

    def tensor(self, shape, dtype: str = "int8", scale=None, zero_point=None, data=None,
               name: str | None = None, quantized_dimension: int = 0) -> int:
        """Add a tensor; returns its index. ``scale``/``zero_point``: scalars (per-tensor)
        or sequences (per-channel along ``quantized_dimension``); ``data``: constant contents."""
        buffer = 0
        if data is not None:
            arr = np.ascontiguousarray(np.asarray(data, dtype=dtype).reshape(shape))
            self.buffers.append(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
            buffer = len(self.buffers) - 1
        quant = None
        if scale is not None:
            scales = np.atleast_1d(np.asarray(scale, np.float32))
            zps = np.atleast_1d(np.asarray(0 if zero_point is None else zero_point, np.int64))
            if zps.size == 1 and scales.size > 1:
                zps = np.repeat(zps, scales.size)
            quant = (scales, zps, quantized_dimension)
        self.tensors.append(dict(shape=[int(d) for d in shape], type=_TYPES[str(np.dtype(dtype))],
                                 buffer=buffer, quant=quant,
                                 name=name or f"t{len(self.tensors)}"))
        return len(self.tensors) - 1

    def op(self, opcode: str | int, inputs, outputs, options: str | None = None, version: int = 1,
           **fields) -> None:
        """Add a builtin operator. ``options``: the options table name (``"AddOptions"``),
        ``fields``: its fields in snake_case."""
        if "fused_activation_function" in fields:
            fields["fused_activation_function"] = activation_code(fields["fused_activation_function"])
        self.ops.append(dict(code=builtin_code(opcode), inputs=list(inputs), outputs=list(outputs),
                             options=options, fields=fields, version=version))

    # -- writing -------------------------------------------------------------------------

    @staticmethod
    def _int_vector(b, values, elem: str = "Int32"):
        size = {"Int32": 4, "Int64": 8}[elem]
        b.StartVector(size, len(values), size)
        for v in reversed(list(values)):
            getattr(b, f"Prepend{elem}")(int(v))
        return b.EndVector()

    @staticmethod
    def _float_vector(b, values):
        b.StartVector(4, len(values), 4)
        for v in reversed(list(values)):
            b.PrependFloat32(float(v))
        return b.EndVector()

    def _options(self, b, name: str, fields: dict):
        mod = _schema(name)
        # vectors and strings must be written before the table starts
        pre = {}
        for key, value in fields.items():
            if isinstance(value, (list, tuple, np.ndarray)):
                pre[key] = self._int_vector(b, value)
            elif isinstance(value, str):
                pre[key] = b.CreateString(value)
        getattr(mod, f"{name}Start")(b)
        for key, value in fields.items():
            adder = getattr(mod, f"{name}Add{_camel(key)}")
            adder(b, pre.get(key, value))
        return getattr(mod, f"{name}End")(b)

    def build(self, inputs, outputs) -> bytes:
        """The model's flatbuffer bytes; ``inputs``/``outputs``: subgraph I/O tensor indices."""
        b = flatbuffers.Builder(1024)
        M, SG, T, Q, Op, OC, Buf = (_schema(n) for n in (
            "Model", "SubGraph", "Tensor", "QuantizationParameters", "Operator", "OperatorCode", "Buffer"))
        BO = _schema("BuiltinOptions").BuiltinOptions

        buffers = []
        for data in self.buffers:
            vec = None
            if data:
                b.StartVector(1, len(data), 16)
                b.head = b.head - len(data)
                b.Bytes[b.head:b.head + len(data)] = data
                vec = b.EndVector()
            Buf.BufferStart(b)
            if vec is not None:
                Buf.BufferAddData(b, vec)
            buffers.append(Buf.BufferEnd(b))

        tensors = []
        for t in self.tensors:
            name = b.CreateString(t["name"])
            shape = self._int_vector(b, t["shape"])
            quant = None
            if t["quant"] is not None:
                scales, zps, qdim = t["quant"]
                sv, zv = self._float_vector(b, scales), self._int_vector(b, zps, "Int64")
                Q.QuantizationParametersStart(b)
                Q.QuantizationParametersAddScale(b, sv)
                Q.QuantizationParametersAddZeroPoint(b, zv)
                Q.QuantizationParametersAddQuantizedDimension(b, qdim)
                quant = Q.QuantizationParametersEnd(b)
            T.TensorStart(b)
            T.TensorAddShape(b, shape)
            T.TensorAddType(b, t["type"])
            T.TensorAddBuffer(b, t["buffer"])
            T.TensorAddName(b, name)
            if quant is not None:
                T.TensorAddQuantization(b, quant)
            tensors.append(T.TensorEnd(b))

        codes: list[tuple[int, int]] = []
        for op in self.ops:
            if (op["code"], op["version"]) not in codes:
                codes.append((op["code"], op["version"]))
        code_tables = []
        for code, version in codes:
            OC.OperatorCodeStart(b)
            OC.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, _PLACEHOLDER_FOR_GREATER_OP_CODES))
            OC.OperatorCodeAddBuiltinCode(b, code)
            OC.OperatorCodeAddVersion(b, version)
            code_tables.append(OC.OperatorCodeEnd(b))

        operators = []
        for op in self.ops:
            ins, outs = self._int_vector(b, op["inputs"]), self._int_vector(b, op["outputs"])
            opts = self._options(b, op["options"], op["fields"]) if op["options"] else None
            Op.OperatorStart(b)
            Op.OperatorAddOpcodeIndex(b, codes.index((op["code"], op["version"])))
            Op.OperatorAddInputs(b, ins)
            Op.OperatorAddOutputs(b, outs)
            if opts is not None:
                Op.OperatorAddBuiltinOptionsType(b, getattr(BO, op["options"]))
                Op.OperatorAddBuiltinOptions(b, opts)
            operators.append(Op.OperatorEnd(b))

        def table_vector(items):
            b.StartVector(4, len(items), 4)
            for item in reversed(items):
                b.PrependUOffsetTRelative(item)
            return b.EndVector()

        t_vec, o_vec = table_vector(tensors), table_vector(operators)
        in_vec, out_vec = self._int_vector(b, inputs), self._int_vector(b, outputs)
        sg_name = b.CreateString("main")
        SG.SubGraphStart(b)
        SG.SubGraphAddTensors(b, t_vec)
        SG.SubGraphAddInputs(b, in_vec)
        SG.SubGraphAddOutputs(b, out_vec)
        SG.SubGraphAddOperators(b, o_vec)
        SG.SubGraphAddName(b, sg_name)
        subgraph = SG.SubGraphEnd(b)

        codes_vec, sg_vec, buf_vec = table_vector(code_tables), table_vector([subgraph]), table_vector(buffers)
        desc = b.CreateString(self.description)
        M.ModelStart(b)
        M.ModelAddVersion(b, 3)
        M.ModelAddOperatorCodes(b, codes_vec)
        M.ModelAddSubgraphs(b, sg_vec)
        M.ModelAddDescription(b, desc)
        M.ModelAddBuffers(b, buf_vec)
        b.Finish(M.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def single_op_model(opcode, inputs: list[dict], outputs: list[dict], options: str | None = None,
                    version: int = 1, **fields) -> bytes:
    """One operator; each of ``inputs``/``outputs`` is a ``ModelBuilder.tensor`` kwargs dict.
    Inputs with ``data`` are constants; the others become the model's inputs, in order."""
    b = ModelBuilder()
    ins = [b.tensor(**spec) for spec in inputs]
    outs = [b.tensor(**spec) for spec in outputs]
    b.op(opcode, ins, outs, options, version, **fields)
    graph_inputs = [i for i, spec in zip(ins, inputs) if spec.get("data") is None]
    return b.build(graph_inputs, outs)


def run_reference(model: bytes, inputs) -> list[np.ndarray]:
    """Run ``model`` in the TFLite interpreter with the reference kernels (BUILTIN_REF)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    for detail, x in zip(it.get_input_details(), inputs):
        it.set_tensor(detail["index"], np.asarray(x, detail["dtype"]).reshape(detail["shape"]))
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]
