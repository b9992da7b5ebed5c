"""Typed attributes our passes attach to kernels, ``main`` and the module (FFI objects, not JSON).

They are ``tvm_ffi`` Python-defined classes (``py_class``): structural equality and hashing
work (``tvm.ir.assert_structural_equal`` compares them field by field), they print in
TVMScript metadata and serialize with ``tvm.ir.save_json``.

| attribute | on | type |
|---|---|---|
| ``tvm_fused.op`` | kernel PrimFunc | str: kernel kind (``conv2d``, ``add``, ``fused_chain``, ...) |
| ``tvm_fused.macs`` | kernel PrimFunc | int |
| ``tvm_fused.params`` | kernel PrimFunc | ``KernelParams``: the kernel's parameter dataclass |
| ``tvm_fused.io`` | ``main`` | ``ModelIO``: quantization, shape and layout of inputs and outputs |
| ``tvm_fused.source_layout`` | module (imported) | str: "NCHW" (ONNX) or "NHWC" (TFLite) |
| ``tvm_fused.output_names`` | imported ``main`` | list of str: the model's output names |
| ``tvm_fused.input_quantization`` | imported ``main`` | map: int8 input name -> [scale, zero point] (TFLite) |
| ``tvm_fused.fusion`` | module | ``FusionDecision``: what ``FuseConvChains`` chose and why |
| ``tvm_fused.memory_plan`` | module | ``MemoryPlanAttrs``: arena size and every buffer's offset and lifetime |
"""
from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tvm_ffi
from tvm_ffi.dataclasses import py_class

OP_ATTR = "tvm_fused.op"
MACS_ATTR = "tvm_fused.macs"
PARAMS_ATTR = "tvm_fused.params"
IO_ATTR = "tvm_fused.io"
SOURCE_LAYOUT_ATTR = "tvm_fused.source_layout"
INPUT_QUANT_ATTR = "tvm_fused.input_quantization"  # imported main: {input name: [scale, zero point]} (TFLite)
OUTPUT_NAMES_ATTR = "tvm_fused.output_names"  # imported main: the model's output names, in order
FUSION_ATTR = "tvm_fused.fusion"
MEMORY_PLAN_ATTR = "tvm_fused.memory_plan"


def to_ffi_value(value):
    """numpy scalars and nested tuples/lists/dicts -> plain Python values FFI converts exactly."""
    if isinstance(value, dict):
        return {str(k): to_ffi_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_ffi_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_ffi_value(v) for v in value.tolist()]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def from_ffi_value(value, sequence=tuple):
    """FFI containers -> Python: Array/List -> ``sequence`` (tuple by default), Map/Dict -> dict."""
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, Mapping):  # dict, tvm_ffi Map / Dict
        return {str(k): from_ffi_value(v, sequence) for k, v in value.items()}
    if isinstance(value, Sequence):  # list, tuple, tvm_ffi Array / List
        return sequence(from_ffi_value(v, sequence) for v in value)
    return value


@py_class("tvm_fused.KernelParams")
class KernelParams(tvm_ffi.Object):
    """A kernel's parameters: its dataclass (``params_type``, "module:QualName") and field values."""

    kind: str
    params_type: str
    fields: dict[str, Any]

    @staticmethod
    def of(kind: str, params) -> "KernelParams":
        """From a parameter dataclass (``Conv2DParams``, ...) or a plain dict."""
        if dataclasses.is_dataclass(params):
            cls = type(params)
            return KernelParams(kind=kind, params_type=f"{cls.__module__}:{cls.__qualname__}",
                                fields=to_ffi_value(dataclasses.asdict(params)))
        return KernelParams(kind=kind, params_type="", fields=to_ffi_value(dict(params)))

    def __str__(self) -> str:
        # JSON of the fields: code that reads ``str(attrs["tvm_fused.params"])`` as JSON keeps working
        return json.dumps(from_ffi_value(self.fields, list))

    def to_python(self):
        """The parameter dataclass again (or a dict if it was one), with tuples for sequences."""
        values = from_ffi_value(self.fields)
        if not self.params_type:
            return from_ffi_value(self.fields, list)
        module, qualname = self.params_type.split(":")
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        return cls(**values)


def plain(value, default=None):
    """An attribute value as plain Python (lists, dicts), or ``default`` if absent (None); a JSON
    string (from code that still writes JSON) is decoded."""
    if value is None:
        return default
    if isinstance(value, str):
        return json.loads(value)
    return from_ffi_value(value, list)


def kernel_params(value, cls=None):
    """The parameters stored in a kernel's ``tvm_fused.params``: a ``KernelParams`` object, or
    (hand-built modules, older code) a JSON string decoded into ``cls``."""
    if isinstance(value, KernelParams):
        return value.to_python()
    d = json.loads(str(value))
    d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    return cls(**d) if cls is not None else d


@py_class("tvm_fused.IOTensor")
class IOTensor(tvm_ffi.Object):
    """One model input or output as the generated C interface sees it."""

    name: str
    shape: list[int]
    dtype: str
    scale: float
    zero_point: int
    layout: str
    model_dtype: str  # what the source model exchanges: "int8", or "float32" (QUANTIZE/DEQUANTIZE at the edge)

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": [int(d) for d in self.shape], "dtype": self.dtype,
                "scale": float(self.scale), "zero_point": int(self.zero_point), "layout": self.layout,
                "model_dtype": self.model_dtype}


@py_class("tvm_fused.ModelIO")
class ModelIO(tvm_ffi.Object):
    """``main``'s inputs and outputs (attribute ``tvm_fused.io``)."""

    inputs: list[IOTensor]
    outputs: list[IOTensor]

    @staticmethod
    def of(io: dict) -> "ModelIO":
        return ModelIO(inputs=[IOTensor(**e) for e in io["inputs"]], outputs=[IOTensor(**e) for e in io["outputs"]])

    def to_dict(self) -> dict:
        return {"inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs]}

    def __str__(self) -> str:
        return json.dumps(self.to_dict())  # as KernelParams.__str__


def model_io(func) -> dict:
    """``main``'s io entries as a dict (typed ``ModelIO``, or a JSON string from hand-built modules)."""
    value = func.attrs[IO_ATTR]
    return value.to_dict() if isinstance(value, ModelIO) else json.loads(str(value))


@py_class("tvm_fused.FusionDecision")
class FusionDecision(tvm_ffi.Object):
    """What ``FuseConvChains`` chose (module attribute ``tvm_fused.fusion``).

    ``replaced[i]``: the kernel calls the i-th fused chain replaced; ``report``: the
    report's ``fuse`` entry (mode, explanation, arenas before and after, chains, ...).
    """

    mode: str
    blocks_fused: int
    replaced: list[list[str]]
    report: dict[str, Any]

    def to_dict(self) -> dict:
        return from_ffi_value(self.report, list)


@py_class("tvm_fused.ArenaBuffer")
class ArenaBuffer(tvm_ffi.Object):
    """One tensor of the arena: bytes, offset and lifetime (op indices, inclusive)."""

    name: str
    size: int
    offset: int
    first_use: int
    last_use: int


@py_class("tvm_fused.MemoryPlanAttrs")
class MemoryPlanAttrs(tvm_ffi.Object):
    """The memory planner's result (module attribute ``tvm_fused.memory_plan``)."""

    arena_bytes: int
    lower_bound: int
    arena_bytes_without_input: int
    buffers: list[ArenaBuffer]

    @staticmethod
    def of(plan) -> "MemoryPlanAttrs":
        buffers = [ArenaBuffer(name=b.name, size=int(b.size), offset=int(b.offset), first_use=int(b.first_use),
                               last_use=int(b.last_use)) for b in plan.buffers.values()]
        return MemoryPlanAttrs(arena_bytes=int(plan.arena_bytes), lower_bound=int(plan.lower_bound),
                               arena_bytes_without_input=int(plan.arena_bytes_without_input), buffers=buffers)
