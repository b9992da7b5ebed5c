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
