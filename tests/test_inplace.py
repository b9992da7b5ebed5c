"""In-place reuse: every alias the planner uses is proven safe, and the generated C agrees."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain_builder import build_chain_module, same_padding
from tvm_fused.passes import plan_memory
from tvm_fused.passes.inplace import best_delta, check_alias, elementwise_access, window_access


@settings(max_examples=200, deadline=None, derandomize=True)
@given(h=st.integers(1, 40), w=st.integers(1, 9), ci=st.integers(1, 24), co=st.integers(1, 24),
       k=st.sampled_from([1, 3, 5]), s=st.sampled_from([1, 2]), same=st.booleans(), slack=st.integers(0, 2))
def test_best_delta_is_proven(h, w, ci, co, k, s, same, slack):
    """Whatever best_delta claims passes the brute-force proof."""
    pt, pb = same_padding(h, k, s) if same or h < k else (0, 0)
    ho = (h + pt + pb - k) // s + 1
    acc = window_access((1, h, w, ci), (1, ho, w, co), k, s, pt, slack)
    found = best_delta(acc)
    if found is None:
        return
    delta, saved = found
    assert saved > 0 and delta % 16 == 0
    check_alias(acc, delta)


def test_proof_rejects_an_unsafe_placement():
    acc = window_access((1, 8, 4, 4), (1, 8, 4, 4), 3, 1, 1, slack=0)  # 3x3 same, equal sizes
    with pytest.raises(AssertionError, match="clobbers input row"):
        check_alias(acc, 0)  # output row 0 over input row 0, which row 1 still reads
    delta, _ = best_delta(acc)
    check_alias(acc, delta)
    assert delta < 0  # the output starts before the input: a row lag
    with pytest.raises(AssertionError, match="delta 0"):
        check_alias(elementwise_access((1, 4, 4, 4)), 16)


def test_planner_keeps_only_proven_aliases_and_reports_the_saving(cache):
    cm = cache.compile("mbv2-0.35-96")
    plan = cm.plan
    assert plan.aliases, "expected in-place reuse at the expand/depthwise peak"
    plan.check()  # re-proves every alias and that nothing else overlaps
    r = cm.report["inplace"]
    assert r["saved_bytes"] == r["arena_bytes_without_inplace"] - cm.report["arena_bytes"] > 0
    assert sum(a["saved_bytes"] for a in r["aliases"]) >= r["saved_bytes"]
    # tamper with one alias distance: the plan's own check must refuse it
    a = plan.aliases[0]
    plan.buffers[a.out].offset += 16
    with pytest.raises(AssertionError):
        plan.check()
    plan.buffers[a.out].offset -= 16


@pytest.mark.parametrize("seed", range(4))
def test_random_unfused_chains_with_inplace_c_equals_reference(seed, tmp_path):
    """Generated C (ASan) of random conv/depthwise/add sequences planned with in-place reuse
    gives TVM's host build bits."""
    import json

    from tvm_fused.backend import HostExecutable, HostReference, generate_c

    rng = np.random.default_rng(seed)
    h = int(rng.integers(6, 20))
    layers = [{"op": "conv", "k": 3, "stride": 1, "pad": "same", "out": 8, "depthwise": False},
              {"op": "conv", "k": 1, "stride": 1, "pad": "same", "out": 24, "depthwise": False},
              {"op": "conv", "k": int(rng.choice([3, 5])), "stride": int(rng.integers(1, 3)), "pad": "same",
               "out": 24, "depthwise": True},
              {"op": "conv", "k": 1, "stride": 1, "pad": "same", "out": 8, "depthwise": False},
              {"op": "add"}]
    mod, _ = build_chain_module((1, h, h, 3), layers, seed)
    plan = plan_memory(mod)
    assert plan.aliases, "this shape has an expand/depthwise peak in-place reuse can lower"
    io = json.loads(mod["main"].attrs["tvm_fused.io"])
    lib = generate_c(mod, plan, io)
    for rel, text in lib.files.items():
        path = tmp_path / "model" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    exe = HostExecutable(tmp_path / "model", io["outputs"][0]["shape"])
    try:
        x = rng.integers(-128, 128, size=(1, h, h, 3), dtype=np.int8)
        np.testing.assert_array_equal(exe(x), HostReference(mod)(x))
    finally:
        exe.close()


def test_memory_banks_spread_the_arena_and_c_agrees(cache, tmp_path):
    """place_in_banks: every bank within its capacity, no overlap inside a bank, in-place
    groups kept together; the generated C with two arena arrays gives the reference's bits."""
    from tvm_fused.backend import generate_c
    from tvm_fused.passes.memory_plan import place_in_banks

    cm = cache.compile("mbv2-0.35-96-tiny")
    one = cm.plan.arena_bytes
    plan = place_in_banks(cm.plan, [("main", one * 3 // 4, ".bss.tvm_arena"), ("second", one, ".tvm_arena_second")])
    assert {b.bank for b in plan.buffers.values()} == {"", "second"}
    for info in plan.banks.values():
        assert info["arena_bytes"] <= info["capacity"]
    for a in plan.aliases:
        assert plan.buffers[a.out].bank == plan.buffers[a.over].bank
    plan.check()
    with pytest.raises(Exception, match="memory banks"):
        place_in_banks(cm.plan, [("main", one // 4, ".bss.tvm_arena"), ("second", one // 4, ".x")])
    lib = generate_c(cm.mod, plan, cm.io)
    assert "tvmgen_default_arena_second" in lib.files["src/arena.c"]
    _assert_c_equals_reference(lib, cm, tmp_path, seeds=[3])


def test_hot_bank_takes_the_fused_rings_and_c_agrees(cache, tmp_path):
    """A hot bank (the H743's DTCM) gets the fused chains' scratch (ring) buffers first, the
    default arena shrinks by what moved, and the generated C with the rings in their own array
    gives the reference's bits. A hot bank too small for any ring gets nothing."""
    from tvm_fused.backend import generate_c
    from tvm_fused.passes.memory_plan import place_in_banks, scratch_buffers

    cm = cache.compile("mbv2-0.35-96-tiny", "auto")
    rings = scratch_buffers(cm.plan)
    assert rings, "the fused model has no chain scratch"
    one = cm.plan.arena_bytes
    plan = place_in_banks(cm.plan, [("main", one, ".bss.tvm_arena"), ("dtcm", 64 * 1024, ".tvm_arena_dtcm", True)])
    assert {n for n, b in plan.buffers.items() if b.bank == "dtcm"} == rings
    assert plan.banks["dtcm"]["hot"] and 0 < plan.banks["dtcm"]["arena_bytes"] <= 64 * 1024
    assert plan.arena_bytes <= one
    plan.check()
    small = place_in_banks(cm.plan, [("main", one, ".bss.tvm_arena"), ("dtcm", 16, ".tvm_arena_dtcm", True)])
    assert all(b.bank == "" for b in small.buffers.values()) and small.arena_bytes == one
    lib = generate_c(cm.mod, plan, cm.io)
    assert '__attribute__((section(".tvm_arena_dtcm")' in lib.files["src/arena.c"]
    _assert_c_equals_reference(lib, cm, tmp_path, seeds=[0, 1])


def _assert_c_equals_reference(lib, cm, tmp_path, seeds):
    """Write the C library, build it for this machine (ASan + UBSan), compare with the reference."""
    from tvm_fused.backend import HostExecutable

    for rel, text in lib.files.items():
        path = tmp_path / "model" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    exe = HostExecutable(tmp_path / "model", cm.io["outputs"][0]["shape"])
    try:
        for seed in seeds:
            x = cm.random_input(seed)
            np.testing.assert_array_equal(exe(x), cm.reference(x))
    finally:
        exe.close()
