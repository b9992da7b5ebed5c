"""Issue 8's model families on the QEMU Cortex-M7 (mps2-an500) with `fuse="auto"`: the device output
equals TFLite's BUILTIN_REF (TFLite families) or our host build, which tests/test_model_families.py
holds within its tolerance of onnxruntime (ONNX families). Same strict xfails as that file.

Run on its own: pytest tests/micro/test_device_model_families.py (about 20 s per family)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import needs_qemu, needs_toolchain

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_model_families import (FAMILIES, NOT_EXACT, ONNX_FAMILIES, TFLITE_FAMILIES, UNSUPPORTED,  # noqa: E402
                                 _as_list, _xfail, assert_same_outputs, builtin_ref, tflite_input)


def _run(name: str, tmp_path: Path, x: np.ndarray):
    import tvm_fused
    from tvm_fused.micro import run_on_device

    cm = tvm_fused.compile(str(FAMILIES / name), board="qemu-mps2-an500", fuse="auto", name=Path(name).stem,
                           progress=False)
    return cm, run_on_device(cm, x, board="qemu-mps2-an500", project_dir=tmp_path / "fw")


@needs_toolchain
@needs_qemu
@pytest.mark.parametrize("name", [_xfail(n, UNSUPPORTED, NOT_EXACT) for n in TFLITE_FAMILIES])
def test_tflite_family_on_qemu_equals_builtin_ref(name, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    x = tflite_input(Interpreter(model_path=str(FAMILIES / name)).get_input_details()[0], seed=0)
    import tvm_fused

    cm = tvm_fused.compile(str(FAMILIES / name), board="qemu-mps2-an500", fuse="auto", name=Path(name).stem,
                           progress=False)
    float_in = cm.io["inputs"][0].get("model_dtype") == "float32"
    from tvm_fused.micro import run_on_device

    run = run_on_device(cm, cm.quantize_input(x) if float_in else x, board="qemu-mps2-an500",
                        project_dir=tmp_path / "fw")
    got = [cm.dequantize_output(a) if spec.get("model_dtype") == "float32" else a
           for a, spec in zip(_as_list(run.output), cm.io["outputs"])]
    assert_same_outputs(got, builtin_ref(FAMILIES / name, x), f"{name} on QEMU")
    assert run.measurement["canaries_ok"]


@needs_toolchain
@needs_qemu
@pytest.mark.parametrize("name", [_xfail(n, UNSUPPORTED) for n in ONNX_FAMILIES])
def test_onnx_family_on_qemu_equals_host_build(name, tmp_path):
    import tvm_fused

    shape = tvm_fused.compile(str(FAMILIES / name), codegen=False, progress=False).io["inputs"][0]["shape"]
    x = np.random.default_rng(0).integers(-128, 128, size=shape, dtype=np.int8)
    cm, run = _run(name, tmp_path, x)
    got, want = _as_list(run.output), _as_list(cm.reference(x))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.reshape(-1), w.reshape(-1))
