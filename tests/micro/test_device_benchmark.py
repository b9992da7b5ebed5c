"""benchmarks/device.py and benchmarks/fusion.py run end to end (stub, tiny zoo model, memory-only sweep)."""
import json
import subprocess
import sys
from pathlib import Path

from conftest import needs_qemu

ROOT = Path(__file__).resolve().parents[2]


@needs_qemu
def test_device_benchmark_on_stub(stub_export, tmp_path):
    out = tmp_path / "device.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "device.py"), str(stub_export),
                          "--ram-budget", "524288", "--repeat", "2", "--json", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "instructions_per_mac" in res.stdout
    (row,) = json.loads(out.read_text())["results"]
    assert row["model"] == "stub" and row["deterministic"] and row["canaries_ok"]
    assert row["peak_ram_bytes"] == row["arena_bytes"] + row["stack_bytes"] + row["runtime_ram_bytes"]
    assert row["instructions"] > 0 and row["instructions_per_mac"] == round(row["instructions"] / row["macs"], 3)
    assert row["flash_bytes"] > 1000


def _fusion(args, tmp_path, timeout=80):
    out = tmp_path / "fusion.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fusion.py"), *args, "--json", str(out)],
                         capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-3000:]
    return res, json.loads(out.read_text())


def test_fusion_benchmark_quick_memory_only(tmp_path):
    """--quick --no-device: the memory columns of the sweep, no firmware."""
    res, data = _fusion(["--quick", "--no-device"], tmp_path)
    assert not data["meta"]["device"] and "arena KiB" in res.stdout
    assert [r["model"] for r in data["rows"]] == ["mbv2-0.35-128", "mbv2-0.35-144"]
    for r in data["rows"]:
        none, auto = r["none"], r["auto"]
        assert auto["arena_bytes"] < none["arena_bytes"] and auto["blocks_fused"] > 0
        # the input is excluded by re-planning, not by subtracting its size
        assert auto["arena_bytes_without_input"] <= auto["arena_bytes"]
        # the objective that leaves the input out finds a plan at least as small without it
        assert r["auto-no-input"]["arena_bytes_without_input"] <= auto["arena_bytes_without_input"]
        assert r["ratios"]["arena_bytes"] == round(auto["arena_bytes"] / none["arena_bytes"], 4)
        assert "instructions" not in auto and r["outputs_match_reference"] is None
    assert data["rows"][1]["width"] == 0.35 and data["rows"][1]["resolution"] == 144  # the zoo entry


@needs_qemu
def test_fusion_benchmark_on_qemu_with_tiny_model(tmp_path):
    res, data = _fusion(["--models", "mbv2-0.35-96-tiny"], tmp_path)
    (r,) = data["rows"]
    for mode in ("none", "auto"):
        m = r[mode]
        assert m["output_matches_reference"] and m["canaries_ok"]
        assert m["peak_ram_bytes"] == m["device_arena_bytes"] + m["stack_bytes"] + m["runtime_ram_bytes"]
        assert m["device_arena_bytes"] == m["arena_bytes"] and m["instructions"] > r["macs"]
    assert r["ratios"]["peak_ram_bytes"] < 1 and r["outputs_match_reference"] is True
    assert "yes" in res.stdout.splitlines()[-2]  # the table row says bit-exact


@needs_qemu
def test_device_benchmark_on_zoo_model_checks_reference(tmp_path):
    out = tmp_path / "device.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "device.py"), "--zoo", "mbv2-0.35-96-tiny",
                          "--fuse", "auto", "--repeat", "1", "--json", str(out)],
                         capture_output=True, text=True, timeout=80)
    assert res.returncode == 0, res.stderr[-3000:]
    (row,) = json.loads(out.read_text())["results"]
    assert row["fuse"] == "auto" and row["output_matches_reference"] is True and row["canaries_ok"]


@needs_qemu
def test_knobs_benchmark_one_task_each(tmp_path):
    """benchmarks/knobs.py: every depthwise knob pair and both GEMM loop orders measured
    (one-kernel firmware on QEMU, output checked against the host reference by the runner)."""
    from tvm_fused import models

    out = tmp_path / "knobs.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "knobs.py"), str(models.path("mbv2-0.35-96-tiny")),
                          "--max-tasks", "1", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    dw = [r for r in rows if "unroll_groups" in r["config"]]
    gemm = [r for r in rows if "channels_outer" in r["config"]]
    assert sorted((r["config"]["unroll_groups"], r["config"]["pixel_block"]) for r in dw) == [(1, 1), (1, 2), (2, 1),
                                                                                              (2, 2)]
    assert sorted(r["config"]["channels_outer"] for r in gemm) == [False, True]
    assert len({r["task"] for r in dw}) == 1 and len({r["task"] for r in gemm}) == 1
    assert all(r["instructions"] > 0 for r in rows)
    assert "wrote" in res.stdout
