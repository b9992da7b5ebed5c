"""The PlanMemory module pass: tensor lifetimes -> offsets in one static arena."""
from __future__ import annotations

import tvm

from ..attrs import MEMORY_PLAN_ATTR, MemoryPlanAttrs
from .boundary import guarded


@tvm.transform.module_pass(opt_level=0, name="tvm_fused.PlanMemory")
class PlanMemory:
    """Plan the activation arena of a legalized (possibly fused) module.

    Precondition: ``main`` is a sequence of ``call_tir`` kernel calls (after ``LegalizeQDQ``
    and ``FuseConvChains``). Wraps ``passes.memory_plan.plan_memory``; the result is attached
    as the typed module attribute ``tvm_fused.memory_plan`` (``MemoryPlanAttrs``: arena size,
    lower bound, every buffer's offset and lifetime) and kept as ``self.plan`` (the full
    ``MemoryPlan`` the C backend reads). The last pass of the pipeline; the module is unchanged
    otherwise.
    """

    def __init__(self, streamed_input: bool = False):
        self.plan = None
        self.streamed_input = streamed_input  # the model input stays out of the arena

    @guarded("plan memory")
    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        from .memory_plan import plan_memory

        self.plan = plan_memory(mod, streamed_input=self.streamed_input)
        return mod.with_attr(MEMORY_PLAN_ATTR, MemoryPlanAttrs.of(self.plan))
