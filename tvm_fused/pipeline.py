"""The tvm-fused pipeline: one ``Sequential`` of module passes, registered as ``relax.get_pipeline("tvm_fused")``.

    imported Relax module (frontend: dequantize -> float op -> quantize)
      -> Phase 1, legalize     LegalizeQDQ          per-op rules -> int8 call_tir kernels
      -> Phase 2, fuse         FuseConvChains       conv chains -> line-buffered kernels
      -> Phase 3, memory plan  PlanMemory           lifetimes -> arena offsets
    legalized module with ``tvm_fused.fusion`` and ``tvm_fused.memory_plan`` attributes

It runs under the caller's ``PassContext``: instruments see every pass by name (e.g.
``tvm.ir.instrument.PrintAfterAll()`` or ``PassTimingInstrument()`` to dump or time phases)::

    with tvm.transform.PassContext(instruments=[tvm.ir.instrument.PassTimingInstrument()]):
        cm = tvm_fused.compile("model.tflite", fuse="auto")

Options are pass constructor arguments: TVM 0.27 validates ``PassContext(config=...)`` keys
against options registered in C++ (``TVM_REGISTER_PASS_CONFIG_OPTION``) and exposes no FFI
function to register one from Python, so ``tvm_fused.fuse`` cannot be a config key.
"""
from __future__ import annotations

import tvm
from tvm import relax

from .passes.boundary import reraise_stashed
from .passes.fuse_pass import FuseConvChainsPass
from .passes.legalize_qdq import LegalizeQDQ
from .passes.memory_plan_pass import PlanMemory

PIPELINE_NAME = "tvm_fused"


class Pipeline(tvm.transform.Sequential):
    """A ``Sequential`` whose call re-raises our exceptions (and KeyboardInterrupt) with their
    own type, message and cause instead of TVM's ``RuntimeError`` (see ``passes.boundary``).
    ``phases`` holds the pass objects by phase name, to read their results (``plan``, ``report_entry``)."""

    def __init__(self, phases: dict, name: str = PIPELINE_NAME):
        super().__init__(list(phases.values()), opt_level=0, name=name)
        self.phases = dict(phases)

    def __call__(self, mod: tvm.IRModule) -> tvm.IRModule:
        try:
            return super().__call__(mod)
        except Exception as error:  # TVM's FFI error: ours may be inside
            reraise_stashed(error)
            raise


def tvm_fused_pipeline(fuse="none", ram_budget=None, latency_budget=None, fuse_objective: str = "arena",
                       layout_hint: str | None = None, stream_input: bool = False) -> Pipeline:
    """The pipeline for an imported int8 model (options as for ``tvm_fused.compile``)."""
    return Pipeline({
        # Phase 1, legalize: every dequantize -> float op -> quantize pattern becomes a call_tir of
        # an int8 kernel (TFLite reference arithmetic), one registered rule per op.
        "legalize": LegalizeQDQ(layout_hint),
        # Phase 2, fuse: the chosen conv chains become one line-buffered kernel each; the decision
        # is the module attribute tvm_fused.fusion.
        "fuse": FuseConvChainsPass(fuse, ram_budget, latency_budget, fuse_objective, stream_input),
        # Phase 3, memory plan: tensor lifetimes -> offsets in one arena (tvm_fused.memory_plan).
        "memory plan": PlanMemory(streamed_input=stream_input),
    })


if PIPELINE_NAME not in relax.pipeline.PIPELINE_MAP:  # re-importing must not register twice
    relax.register_pipeline(PIPELINE_NAME)(tvm_fused_pipeline)
