"""The arena planner: no overlaps, near the layer-wise lower bound on every zoo model."""
import numpy as np
import pytest

from tvm_fused.passes import GreedyMemoryPlanner, LegalizeQDQ, plan_memory


def test_small_plan_reuses_dead_buffers():
    p = GreedyMemoryPlanner(alignment=1)
    p.add_buffer("input", 100, 0, 0)
    p.add_buffer("a", 200, 0, 1)
    p.add_buffer("b", 100, 1, 2)
    p.add_buffer("out", 50, 2, 2)
    assert p.plan() == 300  # input's bytes are reused by b; a and b sit side by side
    assert p.lower_bound() == 300
    p.check()


def test_check_catches_overlap():
    p = GreedyMemoryPlanner(alignment=1)
    p.add_buffer("a", 10, 0, 1)
    p.add_buffer("b", 10, 1, 2)
    p.plan()
    p.buffers[1].offset = p.buffers[0].offset
    with pytest.raises(AssertionError, match="overlap"):
        p.check()


def test_random_lifetimes_never_overlap(rng):
    for _ in range(20):
        p = GreedyMemoryPlanner()
        for i in range(30):
            first = int(rng.integers(0, 20))
            p.add_buffer(f"t{i}", int(rng.integers(1, 5000)), first, first + int(rng.integers(0, 5)))
        p.plan()  # plan() calls check()
        assert p.peak() >= p.lower_bound()


def _zoo_names():
    from tvm_fused.models import zoo_names

    return zoo_names()


@pytest.mark.parametrize("name", _zoo_names())
def test_zoo_arena_within_5_percent_of_lower_bound(name):
    from tvm_fused import frontend, models

    imported = frontend.load(str(models.path(name)))
    plan = plan_memory(LegalizeQDQ(imported.layout)(imported.mod))
    assert plan.arena_bytes <= 1.05 * plan.lower_bound, (plan.arena_bytes, plan.lower_bound)
    # every tensor has a slot, and the output never shares bytes with a live tensor
    assert plan.buffers[plan.output_name].offset >= 0
    assert max(plan.live_bytes) <= plan.arena_bytes
    assert np.argmax(plan.live_bytes) >= 0
