"""Bad input gets a clear error naming the cause and the fix, never a deep TVM traceback."""
import subprocess
import sys

import onnx
import pytest

import tvm_fused
from tvm_fused.errors import ModelDoesNotFitError, ModelLoadError, UnsupportedModelError
from tvm_fused.models import testing


def test_float_only_model():
    with pytest.raises(UnsupportedModelError, match="float-only.*quantize_static"):
        tvm_fused.compile(testing.float_only_model(), progress=False)


def test_unsupported_op_lists_op_and_node():
    model = testing.unsupported_op_model("Hardmax")
    node = next(n.name for n in model.graph.node if n.op_type == "Hardmax")
    with pytest.raises(UnsupportedModelError, match=f"Hardmax \\(1 node, first '{node}'\\)"):
        tvm_fused.compile(model, progress=False)


def test_corrupt_onnx_file(tmp_path):
    from tvm_fused import models

    good = models.path("mbv2-0.35-96-tiny").read_bytes()
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(good[: len(good) // 3])
    with pytest.raises(ModelLoadError, match="broken.onnx"):
        tvm_fused.compile(str(bad), progress=False)


def test_corrupt_tflite_file(tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="not a TFLite flatbuffer"):
        tvm_fused.compile(str(bad), progress=False)


def test_missing_file():
    with pytest.raises(ModelLoadError, match="no such file"):
        tvm_fused.compile("/nonexistent/model.onnx", progress=False)


def test_model_over_ram_budget_names_the_peak_op():
    from tvm_fused import models

    with pytest.raises(ModelDoesNotFitError, match=r"needs \d+ bytes but the RAM budget is 65536 bytes.*peak is at op"):
        tvm_fused.compile(str(models.path("mbv2-0.35-96")), ram_budget="64K", progress=False)


def test_cli_reports_errors_without_traceback(tmp_path):
    model = tmp_path / "float.onnx"
    onnx.save(testing.float_only_model(), str(model))
    proc = subprocess.run([sys.executable, "-m", "tvm_fused.cli", "compile", str(model), "-o", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "tvm-fused: error:" in proc.stderr and "float-only" in proc.stderr
    assert "Traceback" not in proc.stderr
