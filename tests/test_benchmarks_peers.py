"""benchmarks/peers.py in its fast modes: our side on the host only, the TFLM side absent (it must
say how to set it up and still measure ours), argument handling and the output comparison."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fixture_paths import FIXTURES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = FIXTURES / "dw5_stride2.tflite"


@pytest.fixture(scope="module")
def peers():
    spec = importlib.util.spec_from_file_location("bench_peers", ROOT / "benchmarks" / "peers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ours_only_on_host_without_harness(peers, tmp_path, capsys):
    out = tmp_path / "peers.json"
    rc = peers.main(["--only", "--models", str(MODEL), "--no-device", "--no-host-arena",
                     "--tflm-harness", str(tmp_path / "no-harness"), "--json", str(out)])
    err = capsys.readouterr().err
    # The TFLM side is absent: the set-up commands are printed, and the rows say it was skipped.
    assert "TFLM side skipped" in err and "git clone --mirror" in err and "setup_sources.sh" in err
    assert "make lib FLAVOUR=$f" in err
    rows = json.loads(out.read_text())["rows"]
    assert [r["system"] for r in rows] == ["tvm-fused --fuse none", "tvm-fused --fuse auto",
                                           "TFLM, reference kernels", "TFLM + CMSIS-NN"]
    ours, tflm = rows[:2], rows[2:]
    assert all("run.py not found" in r["skipped"] for r in tflm)
    for r in ours:
        assert "error" not in r, r
        assert r["n_diff"] == 0 and r["max_abs_diff"] == 0  # TVM host build == TFLite BUILTIN_REF
        assert r["arena_bytes"] > 0
    assert ours[1]["arena_bytes"] <= ours[0]["arena_bytes"]  # fusing never grows the arena
    assert rc == 0


def test_argument_errors(peers, tmp_path, capsys):
    with pytest.raises(SystemExit):
        peers.parse_args(["--models", str(tmp_path / "missing.tflite")])
    assert "missing.tflite not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        peers.parse_args(["--tuning-log", str(tmp_path / "tuning.json")])
    assert "tvm-fused tune" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        peers.parse_args(["--only"])
    args = peers.parse_args(["--models", str(MODEL), str(peers.DEFAULT_MODELS[0])])
    assert args.models == [peers.DEFAULT_MODELS[0], MODEL]  # the default fixture once, first


def test_missing_pieces_are_named(peers, tmp_path):
    harness = tmp_path / "h"
    harness.mkdir()
    (harness / "run.py").write_text("")
    h = peers.Harness(harness, tmp_path / "src", tmp_path / "build")
    assert "TFLM sources not found" in h.missing("ref")
    (tmp_path / "src" / "tensorflow" / "lite" / "micro").mkdir(parents=True)
    assert "make lib FLAVOUR=cmsis_nn" in h.missing("cmsis_nn")
    (tmp_path / "build" / "ref").mkdir(parents=True)
    (tmp_path / "build" / "ref" / "libtflm.a").write_text("")
    assert "make plugin" in h.missing("ref")
    (tmp_path / "build" / "insn_marks.so").write_text("")
    assert h.missing("ref") is None
    assert peers.Harness(None, tmp_path, tmp_path).missing("ref").startswith("no harness given")


def test_compare_counts_every_output(peers):
    a = [np.array([1, 2, 3], np.int8), np.array([[0, 5]], np.int8)]
    b = [np.array([1, 2, 4], np.int8), np.array([0, 2], np.int8)]
    c = peers.compare(a, b)
    assert (c["max_abs_diff"], c["n_diff"], c["output_elems"]) == (3, 2, 5)
    assert peers.compare(a[0], [a[0]])["n_diff"] == 0
    assert peers.compare(a, b[:1])["max_abs_diff"] is None  # output count mismatch is reported, not hidden


def test_tflm_host_arena_from_package(peers):
    pytest.importorskip("tflite_micro", reason="optional: pip install tflite-micro")
    a = peers.tflm_host_arena(MODEL)
    assert "error" not in a, a
    assert a["total"] == a["head"] + a["tail"] and a["head"] > 0
