"""The LegalizeQDQ module pass: dequantize -> float op -> quantize into int8 kernels."""
from __future__ import annotations

import tvm

from ..attrs import IO_ATTR, MACS_ATTR, OP_ATTR, PARAMS_ATTR, SOURCE_LAYOUT_ATTR  # noqa: F401  (read by later passes)
from .boundary import guarded
from .legalize import Legalizer


@tvm.transform.module_pass(opt_level=0, name="tvm_fused.LegalizeQDQ")
class LegalizeQDQ:
    """Rewrite an imported QDQ int8 model into integer kernels.

    Precondition: the module comes straight from ``relax.frontend.onnx`` or
    ``relax.frontend.tflite``: ``main`` is one dataflow block of dequantize ->
    float op -> quantize. Afterwards ``main`` takes and returns int8 tensors
    (NHWC for images) and every op is a ``call_tir`` of a kernel from
    ``tvm_fused.schedules``; kernels carry ``tvm_fused.op``/``params``/``macs``
    attributes that the fusion pass and the backend read. Runs before fusion
    and memory planning. Each op is lowered by the rule registered for it
    (``tvm_fused.passes.legalize``, docs/adding_an_op.md).

    ``layout_hint``: layout of 4-D tensors in the source model ("NCHW" for ONNX, "NHWC" for
    TFLite); by default the module attribute ``tvm_fused.source_layout`` set by the frontend.
    """

    def __init__(self, layout_hint: str | None = None):
        self.layout_hint = layout_hint

    @guarded("legalize")
    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        layout = self.layout_hint
        if layout is None and mod.attrs is not None and SOURCE_LAYOUT_ATTR in mod.attrs:
            layout = str(mod.attrs[SOURCE_LAYOUT_ATTR])
        return Legalizer(mod, layout).run()
