"""`tvm-fused run` with a given input: the saved device output equals the host reference."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import needs_qemu, needs_toolchain

ROOT = Path(__file__).resolve().parents[2]


@needs_toolchain
@needs_qemu
def test_run_with_input_output_and_json(tmp_path, cache):
    cm = cache.compile("mbv2-0.35-96-tiny", "auto")
    x = cm.random_input(42)
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run([sys.executable, "-m", "tvm_fused.cli", "run", "mbv2-0.35-96-tiny", "--fuse", "auto",
                           "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
                           "--json", str(tmp_path / "r.json"), "--repeat", "1", "-q"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["output_matches_reference"] is True and report["instructions"] > 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), cm.reference(x))


def test_run_rejects_a_wrong_input_shape(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 3, 3), np.int8))
    proc = subprocess.run([sys.executable, "-m", "tvm_fused.cli", "run", "mbv2-0.35-96-tiny",
                           "--input", str(tmp_path / "x.npy"), "-q"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 2 and "does not match the model input" in proc.stderr
