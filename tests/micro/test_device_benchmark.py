"""benchmarks/device.py runs the stub end to end and writes its JSON."""
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
