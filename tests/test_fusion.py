"""The line-buffered fusion: fused and unfused outputs are bit-identical."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain_builder import build_chain_module
from tvm_fused.backend import HostReference
from tvm_fused.errors import FusionError
from tvm_fused.passes import FuseConvChains, find_chains, plan_memory

conv_layer = st.fixed_dictionaries({
    "op": st.just("conv"),
    "k": st.sampled_from([1, 3, 5, 7]),
    "stride": st.sampled_from([1, 2]),
    "pad": st.sampled_from(["same", "valid"]),
    "out": st.integers(1, 48),
    "depthwise": st.booleans(),
})
layer = st.one_of(conv_layer, st.just({"op": "add"}))
FUSED_EXAMPLES: list = []  # chain length per example (0: nothing fused), checked below
SPLIT_EXAMPLES: list = []  # examples also fused as two adjacent chains


def test_random_chains_fused_equal_unfused():
    """Property-based (hypothesis, fixed budget): fused == unfused on random chains; also
    guards against a generator that silently stops exercising the fusion."""
    FUSED_EXAMPLES.clear()
    SPLIT_EXAMPLES.clear()
    check_random_chain_fused_equals_unfused()
    fused = [n for n in FUSED_EXAMPLES if n]
    assert len(fused) >= 15 and max(fused) >= 5, FUSED_EXAMPLES
    assert len(SPLIT_EXAMPLES) >= 3, SPLIT_EXAMPLES


# 30 examples: each builds three or four host modules with the DSP micro-kernels (1-3 s each)
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(h=st.integers(1, 24), w=st.integers(1, 24), c=st.integers(1, 48), first=conv_layer,
       layers=st.lists(layer, min_size=1, max_size=5), seed=st.integers(0, 2**16))
def check_random_chain_fused_equals_unfused(h, w, c, first, layers, seed):
    """Kernels 1/3/5/7, stride 1/2, same/valid, 1..48 channels, H/W down to 1, 2..6 layers, adds.
    (Layers that cannot apply, e.g. a valid 7x7 on a 3x3 input, are dropped by the builder.)"""
    FUSED_EXAMPLES.append(0)
    mod, names = build_chain_module((1, h, w, c), [first, *layers], seed)
    if not names or not any(n.startswith(("conv", "depthwise")) for n in names[:1]):
        return  # everything skipped (e.g. valid padding on a tiny input) or the chain starts with add
    chains = find_chains(mod)
    if len(names) == 1:
        assert chains == []  # a lone conv has nothing to stream
        return
    assert len(chains) == 1 and [x.name for x in chains[0].calls] == names
    fused = FuseConvChains([names])(mod)
    FUSED_EXAMPLES[-1] = len(names)
    x = np.random.default_rng(seed).integers(-128, 128, size=(1, h, w, c), dtype=np.int8)
    want = HostReference(mod)(x)
    np.testing.assert_array_equal(HostReference(fused)(x), want)
    plan = plan_memory(fused)  # plan_memory proves every in-place alias it keeps
    plan_memory(mod)
    assert plan.ops[0].op == "fused_chain"
    split = _split_point(chains[0].calls, seed)
    if split:  # the same calls as two adjacent chains (the second reads the first's output)
        SPLIT_EXAMPLES.append(split)
        two = FuseConvChains([names[:split], names[split:]])(mod)
        np.testing.assert_array_equal(HostReference(two)(x), want)
        assert [op.op for op in plan_memory(two).ops[:2]] == ["fused_chain", "fused_chain"]


def _split_point(calls, seed):
    """A cut k with both halves fusable on their own (>= 2 calls, a conv first, no add in
    the second half reading a tensor of the first), or None."""
    for k in sorted(range(2, len(calls) - 1), key=lambda k: (k * 7 + seed) % len(calls)):
        first, second = calls[:k], calls[k:]
        if second[0].kind == "add" or not any(c.kind != "add" for c in second):
            continue
        inner = {c.name for c in second} | {first[-1].name}
        if all(a in inner for c in second if c.kind == "add" for a in c.arg_names):
            return k
    return None


class TestChainDiscovery:
    def test_mobilenet_chain_and_blocks(self, cache):
        cm = cache.compile("mbv2-0.35-96")
        chains = find_chains(cm.mod)
        assert len(chains) == 1
        kinds = [c.kind for c in chains[0].calls]
        assert kinds[0] == "conv2d" and "add" in kinds and "depthwise_conv2d" in kinds
        # stem + 17 inverted residual blocks + the final 1x1 conv
        assert len(chains[0].blocks) == 19

    def test_model_without_chain_is_left_alone(self):
        import tvm_fused
        from tvm_fused.models.testing import no_chain_model

        cm = tvm_fused.compile(no_chain_model(), fuse="auto", progress=False)
        assert cm.report["fuse"]["chains"] == []
        assert "nothing to fuse" in cm.report["fuse"]["explanation"]

    def test_impossible_fuse_n_is_a_clear_error(self):
        import tvm_fused
        from tvm_fused import models

        with pytest.raises(FusionError, match="only 19 fusable blocks"):
            tvm_fused.compile(str(models.path("mbv2-0.35-96")), fuse=40, progress=False)


@pytest.mark.parametrize("name,fuse", [("mbv2-0.35-96", "auto"), ("mbv2-0.35-96", 3), ("mbv2-0.35-96", 19),
                                       ("mbv2-0.35-96-dw5", "auto"), ("mbv2-0.5-96-t4", "auto"),
                                       ("mbv2-1.0-96", "auto"), ("conv_chain.tflite", "auto"),
                                       ("dw5_stride2.tflite", "auto"), ("mbv2_035_96.tflite", "auto")])
def test_zoo_fused_c_equals_unfused(cache, name, fuse):
    """The fused model's generated C (ASan/UBSan) gives the unfused reference's bits."""
    base = cache.compile(name)
    fused = cache.compile(name, fuse)
    assert fused.report["fuse"]["chains"], "expected something to be fused"
    exe = cache.host_executable(name, fuse)
    for seed in range(2):
        x = base.random_input(seed)
        np.testing.assert_array_equal(exe(x), base.reference(x))


def test_fused_tvm_host_build_equals_unfused(cache):
    base = cache.compile("mbv2-0.35-96")
    fused = cache.compile("mbv2-0.35-96", "auto")
    x = base.random_input(5)
    np.testing.assert_array_equal(fused.reference(x), base.reference(x))


def test_auto_fusion_lowers_the_arena_and_explains(cache):
    base = cache.compile("mbv2-0.35-96")
    fused = cache.compile("mbv2-0.35-96", "auto")
    f = fused.report["fuse"]
    assert fused.report["arena_bytes"] < 0.6 * base.report["arena_bytes"]
    assert f["arena_bytes_unfused"] == base.report["arena_bytes"]
    assert f["arena_bytes_fused"] == fused.report["arena_bytes"]
    assert "peak is now at" in f["explanation"]
    chain = f["chains"][0]
    assert chain["scratch_bytes"] < chain["unfused_intermediate_bytes"]
    assert all(r >= 1 for r in chain["ring_rows"])


def test_auto_search_fuses_several_chains_anywhere():
    """Like-for-like with msf-CNN (0.35 at 144 px, arena without the input): the search
    reaches <= 41,500 B within an estimated 1.05x by fusing several runs, not a prefix."""
    import tvm_fused
    from tvm_fused import models

    cm = tvm_fused.compile(str(models.path("mbv2-0.35-144")), fuse="auto", fuse_objective="arena_without_input",
                           latency_budget=1.05, codegen=False, progress=False)
    f = cm.report["fuse"]
    assert cm.report["arena_bytes_without_input"] <= 41_500, f["explanation"]
    assert f["estimated_latency_ratio"] <= 1.05
    assert len(f["chains"]) >= 2 and len(f["runs"]) == len(f["chains"])
    assert all(c["ring_rows"] for c in f["chains"])


def test_latency_budget_limits_auto():
    import tvm_fused
    from tvm_fused import models

    path = str(models.path("mbv2-0.35-96"))
    tight = tvm_fused.compile(path, fuse="auto", latency_budget=1.0001, codegen=False, progress=False)
    assert tight.report["fuse"]["chains"] == [] and "latency budget" in tight.report["fuse"]["explanation"]
    loose = tvm_fused.compile(path, fuse="auto", latency_budget=1.05, codegen=False, progress=False)
    assert loose.report["fuse"]["chains"] and loose.report["fuse"]["estimated_latency_ratio"] <= 1.05


def _zoo():
    from tvm_fused.models import zoo_names

    return zoo_names()


@pytest.mark.parametrize("name", _zoo())
def test_every_zoo_model_every_fuse_setting_kind(name):
    """TVM host builds, fused vs unfused, bit for bit: auto, half the blocks, every block
    (the whole conv trunk as one kernel). (Smaller N: test_zoo_fused_c_equals_unfused.)"""
    import tvm_fused
    from tvm_fused import models
    from tvm_fused.passes import fusable_blocks

    path = str(models.path(name))
    base = tvm_fused.compile(path, name=name, codegen=False, progress=False)
    n = len(fusable_blocks(base.mod))
    x = base.random_input(11)
    want = base.reference(x)
    for fuse in sorted({"auto", n // 2, n}, key=str):
        fused = tvm_fused.compile(path, name=name, fuse=fuse, codegen=False, progress=False)
        np.testing.assert_array_equal(fused.reference(x), want, err_msg=f"{name} fuse={fuse}")
