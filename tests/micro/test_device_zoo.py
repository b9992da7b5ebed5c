"""Real models on QEMU mps2-an500 (Cortex-M7): the firmware's output equals the host
reference bit for bit, unfused and fused; measurements come from the device and the ELF.

Every model is compiled once (the suite-wide `cache`), every firmware is built once
and every input runs once (`device_zoo`, tests/micro/conftest.py). About a minute
on 2 cores."""
import numpy as np
import pytest

from conftest import needs_qemu, needs_toolchain
from tvm_fused.micro import elf_memory

pytestmark = [needs_toolchain, needs_qemu]

MODELS = ["mbv2-0.35-96-tiny", "mbv2-0.35-96", "conv_chain.tflite"]
FUSED = [("mbv2-0.35-96-tiny", "auto"), ("mbv2-0.35-96-tiny", 2), ("mbv2-0.35-96", "auto"),
         ("mbv2-0.35-96", 2), ("conv_chain.tflite", "auto")]
STACK_SIZE = 16384  # the firmware template default


def _ids(p):
    return f"{p[0]}-fuse-{p[1]}" if isinstance(p, tuple) else str(p)


@pytest.mark.parametrize("name", MODELS)
def test_device_output_matches_reference(device_zoo, name):
    y, m = device_zoo.run(name)
    ref = np.asarray(device_zoo.reference(name))
    assert y.dtype == np.int8 and y.size == ref.size
    np.testing.assert_array_equal(y.reshape(-1), ref.reshape(-1),
                                  err_msg=f"{name}: QEMU output differs from the host reference")
    assert m["canaries_ok"] and not m["stack_overflow"]


@pytest.mark.parametrize("name", MODELS)
def test_instruction_counts_identical_across_runs(device_zoo, name):
    _, m = device_zoo.run(name)  # two runs of the same input (re-uploaded if the plan reuses its bytes)
    assert m["repeat"] == 2
    assert m["deterministic"] and m["instructions"] == m["instructions_max"]
    macs = device_zoo.compiled(name).report["macs"]
    # plain C int8 kernels: at least one instruction per MAC, and not absurdly many
    assert macs < m["instructions"] < 100 * macs


@pytest.mark.parametrize("name", MODELS)
def test_stack_flash_and_arena_measured_on_device(device_zoo, name):
    _, m = device_zoo.run(name)
    report = device_zoo.compiled(name).report
    assert 0 < m["stack_bytes"] < STACK_SIZE  # painted-stack high-water of one inference
    assert m["arena_bytes"] == report["arena_bytes"]  # the device's INFO/STATS arena is the planned one
    assert 0 < m["runtime_ram_bytes"] < 16 * 1024
    assert m["peak_ram_bytes"] == m["arena_bytes"] + m["stack_bytes"] + m["runtime_ram_bytes"]
    mem = elf_memory(device_zoo.project(name) / "build" / "qemu-mps2-an500" / "firmware.elf")
    assert m["flash_bytes"] == mem["flash_bytes"]
    # flash holds the weights plus kernels, AOT entry and RPC runtime (a few KiB .. tens of KiB)
    code_and_runtime = m["flash_bytes"] - report["weights_bytes"]
    assert 2048 < code_and_runtime < 128 * 1024, (m["flash_bytes"], report["weights_bytes"])
    assert mem["text_bytes"] > 2048


@pytest.mark.parametrize("case", FUSED, ids=_ids)
def test_fused_output_on_device_equals_unfused_reference(device_zoo, case):
    name, fuse = case
    fused = device_zoo.compiled(name, fuse)
    assert fused.report["fuse"]["chains"], f"{name} fuse={fuse}: nothing was fused"
    y, m = device_zoo.run(name, fuse)
    np.testing.assert_array_equal(y.reshape(-1), np.asarray(device_zoo.reference(name)).reshape(-1),
                                  err_msg=f"{name} fuse={fuse}: fused output on QEMU differs from the "
                                          "unfused host reference")
    assert m["canaries_ok"] and not m["stack_overflow"] and 0 < m["stack_bytes"] < STACK_SIZE
    assert m["deterministic"] and m["repeat"] == 2
    assert m["arena_bytes"] == fused.report["arena_bytes"]
    _, unfused = device_zoo.run(name)
    assert m["arena_bytes"] <= unfused["arena_bytes"]
    if fuse == "auto":  # the point of fusing: less RAM on the device, for about the same work
        assert m["peak_ram_bytes"] < unfused["peak_ram_bytes"]
        assert m["instructions"] < 1.25 * unfused["instructions"]


def test_demo_command_end_to_end(tmp_path, capsys, monkeypatch):
    """`tvm-fused demo` with a small model: table, JSON, exit status 0 (the default model
    mbv2-0.35-224 runs the same code in ~30 s)."""
    import json

    from tvm_fused import demo, models
    from tvm_fused.cli import main

    assert demo.DEFAULT_MODEL in models.ZOO
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--model", "mbv2-0.35-96-tiny", "-q"]) == 0
    out = capsys.readouterr().out
    for key in ("arena_bytes", "stack_bytes", "peak_ram_bytes", "flash_bytes", "instructions",
                "output_matches_reference", "fused/unfused", "fusion: fused blocks"):
        assert key in out
    result = json.loads((tmp_path / "demo_result.json").read_text())  # the default --json
    assert result["outputs_match_reference"] and result["model"] == "mbv2-0.35-96-tiny"
    u, f = result["unfused"], result["fused"]
    assert f["peak_ram_bytes"] < u["peak_ram_bytes"] and result["ratios"]["arena_bytes"] < 1
    assert u["peak_ram_bytes"] == u["arena_bytes"] + u["stack_bytes"] + u["runtime_ram_bytes"]
    assert result["fuse"]["chains"] and u["instructions"] > 0 and f["instructions"] > 0


def test_demo_exits_nonzero_when_an_output_differs(tmp_path, capsys, monkeypatch):
    import argparse
    import json

    from tvm_fused import demo

    def fake_run_demo(*args, **kwargs):
        side = {"arena_bytes": 100, "arena_bytes_without_input": 90, "stack_bytes": 300, "runtime_ram_bytes": 2000,
                "peak_ram_bytes": 2400, "flash_bytes": 5000, "instructions": 1000, "instructions_per_mac": 10.0,
                "fits_512KiB_sram": True}
        r = {"model": "m", "board": demo.BOARD, "fuse_mode": "auto", "input_shape": [1, 8, 8, 3], "macs": 100,
             "unfused": dict(side, output_matches_reference=True),
             "fused": dict(side, output_matches_reference=False, mismatched_elements=3),
             "fuse": {"chains": []}, "seconds": {"total": 1.0}, "outputs_match_reference": False}
        r["ratios"] = {k: 1.0 for k, _ in demo.ROWS}
        return r

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    args = argparse.Namespace(model="m", fuse="auto", seed=0, project_dir=None, quiet=True,
                              json=str(tmp_path / "r.json"))
    assert demo.cmd_demo(args, resolve_model=None) == 1
    captured = capsys.readouterr()
    assert "FAILED: the fused output" in captured.err and " NO" in captured.out
    assert json.loads((tmp_path / "r.json").read_text())["fused"]["mismatched_elements"] == 3
