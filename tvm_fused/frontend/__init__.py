"""Model import: ONNX (QDQ int8) and full-int8 TFLite, through TVM's Relax frontends."""
from __future__ import annotations

import os
from dataclasses import dataclass

import tvm

from ..errors import ModelLoadError
from .onnx_loader import check_onnx, import_onnx, read_onnx
from .tflite_loader import check_tflite, import_tflite, read_tflite


@dataclass
class ImportedModel:
    """The imported Relax module and what the later stages need to know about its source.

    ``mod`` carries the source layout as the module attribute ``tvm_fused.source_layout``,
    so the pipeline needs nothing else: ``relax.get_pipeline("tvm_fused")(imported.mod)``.
    """

    mod: tvm.IRModule
    name: str
    format: str  # "onnx" | "tflite"
    layout: str  # data layout of 4-D tensors in the source: "NCHW" (ONNX) or "NHWC" (TFLite)

    def __post_init__(self):
        from ..attrs import SOURCE_LAYOUT_ATTR

        self.mod = self.mod.with_attr(SOURCE_LAYOUT_ATTR, self.layout)


def load(model, name: str | None = None) -> ImportedModel:
    """Import a model from a path (.onnx/.tflite), an ``onnx.ModelProto`` or TFLite bytes."""
    import onnx

    if isinstance(model, onnx.ModelProto):
        proto = read_onnx(model)
        check_onnx(proto)
        return ImportedModel(import_onnx(proto), name or proto.graph.name or "model", "onnx", "NCHW")
    if isinstance(model, (bytes, bytearray)):
        tfl = read_tflite(model)
        check_tflite(tfl)
        return ImportedModel(import_tflite(tfl), name or "model", "tflite", "NHWC")
    path = os.fspath(model)
    if not os.path.exists(path):
        raise ModelLoadError(f"{path}: no such file")
    stem = name or os.path.splitext(os.path.basename(path))[0]
    with open(path, "rb") as f:
        head = f.read(8)
    if path.endswith(".tflite") or head[4:8] == b"TFL3":
        tfl = read_tflite(path)
        check_tflite(tfl)
        return ImportedModel(import_tflite(tfl), stem, "tflite", "NHWC")
    if path.endswith(".onnx"):
        proto = read_onnx(path)
        check_onnx(proto)
        return ImportedModel(import_onnx(proto), stem, "onnx", "NCHW")
    raise ModelLoadError(f"{path}: unknown model format; expected .onnx (QDQ int8) or .tflite (int8)")
