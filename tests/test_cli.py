"""The command line and the benchmark scripts run end to end (numbers are not asserted here)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_compile_writes_c_and_report(tmp_path):
    proc = _run("-m", "tvm_fused.cli", "compile", "mbv2-0.35-96-tiny", "-o", str(tmp_path), "--fuse", "auto", "-q")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    for key in ("arena_bytes", "layerwise_lower_bound", "flash_bytes_estimate", "ops", "fuse"):
        assert key in report
    assert report["fuse"]["chains"]
    assert (tmp_path / "model/include/tvmgen_default.h").exists()


def test_plan_prints_table_and_plots(tmp_path):
    png = tmp_path / "mem.png"
    proc = _run("-m", "tvm_fused.cli", "plan", "mbv2-0.35-96-tiny", "--fuse", "auto", "--plot", str(png), "-q")
    assert proc.returncode == 0, proc.stderr
    assert "<- peak" in proc.stdout and "fused chain:" in proc.stdout
    assert png.stat().st_size > 10_000


def test_max_resolution_needs_a_budget():
    proc = _run("-m", "tvm_fused.cli", "plan", "mbv2-0.35-96", "--max-resolution")
    assert proc.returncode == 2 and "--ram-budget" in proc.stderr


def test_memory_benchmark_runs(tmp_path):
    out = tmp_path / "memory.json"
    proc = _run("benchmarks/memory.py", "--models", "mbv2-0.35-96-tiny", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert rows[0]["model"] == "mbv2-0.35-96-tiny" and rows[0]["ratio"] <= 1.05


def test_no_import_cycle_between_the_cli_modules():
    """cli.py registers micro/cli.py (run) and demo.py (demo); neither imports cli.py back."""
    code = ("import sys, tvm_fused.demo, tvm_fused.micro.cli; "
            "print('tvm_fused.cli' in sys.modules)")
    proc = _run("-c", code)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr


def test_a_broken_device_package_is_not_hidden(monkeypatch):
    """An ImportError in tvm_fused.micro must surface, not silently remove `run` from the CLI."""
    import pytest

    import tvm_fused.micro
    from tvm_fused import cli

    monkeypatch.delattr(tvm_fused.micro, "cli", raising=False)
    monkeypatch.setitem(sys.modules, "tvm_fused.micro.cli", None)  # importing it raises ImportError
    with pytest.raises(ImportError):
        cli.main(["compile", "--help"])
