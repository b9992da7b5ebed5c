"""The tvm_fused pipeline: TVM module passes under the caller's PassContext, registered, typed attrs,
and our exceptions surviving TVM's pass boundary."""
import dataclasses

import pytest
import tvm
from tvm import relax

import tvm_fused
import tvm_fused.pipeline  # registers relax.get_pipeline("tvm_fused")
from fixture_paths import FIXTURES
from tvm_fused import frontend
from tvm_fused.attrs import FusionDecision, KernelParams, MemoryPlanAttrs, ModelIO
from tvm_fused.errors import UnsupportedModelError, UsageError
from tvm_fused.passes.legalize import registry

MODEL = str(FIXTURES / "conv_chain.tflite")  # small: conv chain with residual adds, fusable


@tvm.instrument.pass_instrument
class _Recorder:
    """Records the name of every pass run."""

    def __init__(self):
        self.names = []

    def run_before_pass(self, _mod, info):
        self.names.append(info.name)


def test_user_instruments_see_our_passes_by_name():
    recorder = _Recorder()
    with tvm.transform.PassContext(instruments=[recorder]):
        tvm_fused.compile(MODEL, fuse="auto", progress=False, codegen=False)
    ours = [n for n in recorder.names if n.startswith("tvm_fused.")]
    assert ours == ["tvm_fused.LegalizeQDQ", "tvm_fused.FuseConvChains", "tvm_fused.PlanMemory"]
    assert "tvm_fused" in recorder.names  # the Sequential itself


def test_registered_pipeline_builds_the_same_module_as_compile():
    cm = tvm_fused.compile(MODEL, fuse="auto", progress=False, codegen=False)
    imported = frontend.load(MODEL)
    mod = relax.get_pipeline("tvm_fused", fuse="auto")(imported.mod)
    tvm.ir.assert_structural_equal(mod, cm.mod)


def test_results_travel_as_typed_attributes():
    cm = tvm_fused.compile(MODEL, fuse="auto", progress=False, codegen=False)
    plan = cm.mod.attrs["tvm_fused.memory_plan"]
    assert isinstance(plan, MemoryPlanAttrs)
    assert plan.arena_bytes == cm.report["arena_bytes"] == cm.plan.arena_bytes
    assert {b.name: b.offset for b in plan.buffers} == {n: b.offset for n, b in cm.plan.buffers.items()}
    fusion = cm.mod.attrs["tvm_fused.fusion"]
    assert isinstance(fusion, FusionDecision) and fusion.mode == "auto"
    assert fusion.blocks_fused == cm.report["fuse"]["blocks_fused"] > 0
    assert fusion.to_dict() == cm.report["fuse"]
    assert isinstance(cm.mod["main"].attrs["tvm_fused.io"], ModelIO)
    kinds = {}
    for _, func in cm.mod.functions.items():
        if isinstance(func, tvm.tirx.PrimFunc):
            params = func.attrs["tvm_fused.params"]
            assert isinstance(params, KernelParams), func.attrs["tvm_fused.op"]
            kinds[params.kind] = params.to_python()
    assert kinds["fused_chain"]["replaced"] in [list(r) for r in fusion.replaced]  # the chain summary
    unfused = tvm_fused.compile(MODEL, progress=False, codegen=False)
    conv = next(f for _, f in unfused.mod.functions.items()
                if isinstance(f, tvm.tirx.PrimFunc) and str(f.attrs["tvm_fused.op"]) == "conv2d")
    params = conv.attrs["tvm_fused.params"].to_python()
    assert type(params).__name__ == "Conv2DParams" and isinstance(params.in_shape, tuple)


def test_bad_fuse_option_is_refused_before_any_work():
    with pytest.raises(UsageError, match="fuse='many'"):
        tvm_fused.compile("/nonexistent.tflite", fuse="many", progress=False)


def _patch_conv_rule(monkeypatch, lower):
    key = ("relax.nn.conv2d", "quantize")
    monkeypatch.setitem(registry._RULES, key, dataclasses.replace(registry._RULES[key], lower=lower))


def test_our_errors_keep_type_message_and_cause_across_the_pass_boundary(monkeypatch):
    def failing_rule(ctx, m):
        try:
            raise ValueError("TVM said no")
        except ValueError as cause:
            raise UnsupportedModelError(f"{m.layer}: cannot lower this conv") from cause

    _patch_conv_rule(monkeypatch, failing_rule)
    with pytest.raises(UnsupportedModelError, match="cannot lower this conv") as err:
        tvm_fused.compile(MODEL, progress=False, codegen=False)
    assert isinstance(err.value.__cause__, ValueError) and str(err.value.__cause__) == "TVM said no"
    assert "RuntimeError" not in str(err.value)


def test_keyboard_interrupt_survives_the_pass_boundary(monkeypatch):
    def interrupted(ctx, m):
        raise KeyboardInterrupt

    _patch_conv_rule(monkeypatch, interrupted)
    with pytest.raises(KeyboardInterrupt):
        tvm_fused.compile(MODEL, progress=False, codegen=False)


def test_a_pass_run_outside_our_pipeline_still_names_the_error(monkeypatch):
    def failing_rule(ctx, m):
        raise UnsupportedModelError("no kernel for this")

    _patch_conv_rule(monkeypatch, failing_rule)
    seq = tvm.transform.Sequential([tvm_fused.passes.LegalizeQDQ()])
    with pytest.raises(Exception, match="UnsupportedModelError: no kernel for this"):
        seq(frontend.load(MODEL).mod)


def test_disabling_one_of_our_passes_is_a_clear_error():
    with tvm.transform.PassContext(disabled_pass=["tvm_fused.PlanMemory"]):
        with pytest.raises(tvm_fused.TvmFusedError, match="tvm_fused.PlanMemory did not run"):
            tvm_fused.compile(MODEL, progress=False, codegen=False)
