"""The FuseConvChains module pass: choose conv chains and replace each by one line-buffered kernel."""
from __future__ import annotations

import json

import tvm

from ..attrs import FUSION_ATTR, OP_ATTR, PARAMS_ATTR, FusionDecision, KernelParams, to_ffi_value
from .. import validate
from .boundary import guarded

_CHAINS_JSON_ATTR = "tvm_fused.fused_chains"  # written by fuse_conv_chains; carried by FusionDecision instead


@tvm.transform.module_pass(opt_level=0, name="tvm_fused.FuseConvChains")
class FuseConvChainsPass:
    """Fuse chains of conv2d / depthwise / 1x1 / residual-add kernels into line-buffered kernels.

    Precondition: a legalized module (``LegalizeQDQ``). ``fuse``: "none", "auto" (the first N
    blocks minimizing the arena, within ``latency_budget`` if given; ``objective`` "arena" or
    "arena_without_input") or N (the first N fusable blocks). Wraps
    ``passes.fuse_conv_chains.fuse_conv_chains``; records the decision as the typed module
    attribute ``tvm_fused.fusion`` (``FusionDecision``) and types the fused kernels'
    ``tvm_fused.params``. Runs after legalization, before memory planning.
    """

    def __init__(self, fuse="none", ram_budget=None, latency_budget=None, objective: str = "arena",
                 stream_input: bool = False):
        self.stream_input = stream_input  # the first chain pulls input rows through a callback
        self.fuse = validate.fuse_setting(fuse)
        self.ram_budget = validate.ram_budget(ram_budget)
        self.latency_budget = validate.latency_budget(latency_budget)
        self.objective = validate.fuse_objective(objective)
        self.report_entry: dict | None = None  # the report's "fuse" entry

    @guarded("fuse")
    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        from .fuse_conv_chains import fuse_conv_chains

        if self.fuse == "none":
            new, info = mod, {"mode": "none", "chains": []}
        else:
            new, info = fuse_conv_chains(mod, self.fuse, self.ram_budget, latency_budget=self.latency_budget,
                                         objective=self.objective, stream_input=self.stream_input)
        new = _typed_chain_attrs(new)
        for key, value in (mod.attrs or {}).items():  # the rewrite builds a new module
            if new.attrs is None or key not in new.attrs:
                new = new.with_attr(key, value)
        self.report_entry = info
        decision = FusionDecision(mode=str(self.fuse), blocks_fused=int(info.get("blocks_fused", 0)),
                                  replaced=[list(c["replaced"]) for c in info.get("chains", [])],
                                  report=to_ffi_value(info))
        return new.with_attr(FUSION_ATTR, decision)


def _typed_chain_attrs(mod: tvm.IRModule) -> tvm.IRModule:
    """JSON attributes left by the fusion rewrite -> typed ones."""
    for gv, func in list(mod.functions.items()):
        attrs = func.attrs
        if attrs is None or PARAMS_ATTR not in attrs or not isinstance(attrs[PARAMS_ATTR], str):
            continue
        kind = str(attrs[OP_ATTR]) if OP_ATTR in attrs else gv.name_hint
        mod[gv] = func.with_attr(PARAMS_ATTR, KernelParams.of(kind, json.loads(str(attrs[PARAMS_ATTR]))))
    main = mod["main"]
    if main.attrs is not None and _CHAINS_JSON_ATTR in main.attrs:
        mod["main"] = main.without_attr(_CHAINS_JSON_ATTR)
    return mod
