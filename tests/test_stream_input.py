"""Streamed input: the first fused chain pulls rows through a callback; the frame never
enters the arena; the generated C gives the unfused reference's bits."""
import numpy as np
import pytest

import tvm_fused
from tvm_fused import models
from tvm_fused.errors import FusionError, ModelDoesNotFitError


@pytest.fixture(scope="module")
def streamed():
    return tvm_fused.compile(str(models.path("mbv2-0.35-96-tiny")), fuse="auto", stream_input=True, progress=False)


def test_streamed_c_equals_unfused_reference(streamed, cache, tmp_path):
    from tvm_fused.backend import HostExecutable

    base = cache.compile("mbv2-0.35-96-tiny")
    header = streamed.library.files["include/tvmgen_default.h"]
    assert "int32_t tvmgen_default_read_input_rows(int8_t* rows, int32_t first_row, int32_t n_rows);" in header
    exe = HostExecutable(streamed.export(tmp_path) / "model", streamed.io["outputs"][0]["shape"])
    try:  # the harness's callback exits non-zero unless rows are pulled in order, each once
        for seed in range(2):
            x = base.random_input(seed)
            np.testing.assert_array_equal(exe(x), base.reference(x))
    finally:
        exe.close()


def test_report_counts_only_the_row_buffer(streamed, cache):
    r = streamed.report
    s = r["stream_input"]
    frame = int(np.prod(streamed.io["inputs"][0]["shape"]))
    assert s["frame_bytes"] == frame and s["row_buffer_bytes"] == s["rows"] * frame // 96
    assert r["input_bytes"] == 0 and streamed.plan.streamed_input
    held = tvm_fused.compile(str(models.path("mbv2-0.35-96-tiny")), fuse="auto", codegen=False, progress=False)
    assert r["arena_bytes"] <= held.report["arena_bytes_without_input"] + s["row_buffer_bytes"]
    assert r["fuse"]["chains"][0]["stream_input"]["callback"] == "tvmgen_default_read_input_rows"


def test_stream_input_needs_a_fused_chain():
    with pytest.raises(FusionError, match="--fuse auto"):
        tvm_fused.compile(str(models.path("mbv2-0.35-96-tiny")), stream_input=True, codegen=False, progress=False)


def test_budget_failure_says_streaming_would_fit():
    path = str(models.path("mbv2-0.35-144"))
    streamed = tvm_fused.compile(path, fuse="auto", stream_input=True, codegen=False, progress=False)
    held = tvm_fused.compile(path, fuse="auto", codegen=False, progress=False)
    budget = (streamed.report["arena_bytes"] + held.report["arena_bytes"]) // 2
    with pytest.raises(ModelDoesNotFitError, match="--stream-input") as e:
        tvm_fused.compile(path, fuse="auto", ram_budget=budget, codegen=False, progress=False)
    assert "meets the budget" in str(e.value)


def test_budget_below_the_row_stream_floor_says_so():
    """Under the floor with the input held whole (tvm_fused/passes/memory_floor.py), the error
    says no latency budget helps; between the floor and what auto reaches, it does not."""
    from tvm_fused.passes.memory_floor import row_stream_floor

    path = str(models.path("mbv2-0.35-96"))
    base = tvm_fused.compile(path, codegen=False, progress=False)
    floor = row_stream_floor(base.mod)["bytes"]
    assert floor == 95 * 288 + 2 * 768  # 96x96x3 input, stem 48x48x16, then a 3x3 depthwise
    with pytest.raises(ModelDoesNotFitError, match=f"no plan of row kernels fits in less than {floor} bytes") as e:
        tvm_fused.compile(path, fuse="auto", ram_budget=floor - 1, codegen=False, progress=False)
    assert "95 input rows are still unread" in str(e.value) and "meets the budget" in str(e.value)
    held = tvm_fused.compile(path, fuse="auto", codegen=False, progress=False).report["arena_bytes"]
    assert floor < held
    with pytest.raises(ModelDoesNotFitError) as e:
        tvm_fused.compile(path, fuse="auto", ram_budget=(floor + held) // 2, codegen=False, progress=False)
    assert "no plan of row kernels" not in str(e.value)
