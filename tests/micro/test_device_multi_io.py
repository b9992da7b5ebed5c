"""A model with two inputs and two outputs, end to end on the QEMU Cortex-M7 through
`tvm-fused run --output out.npz`: every output identical to TFLite's reference kernels."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import needs_qemu, needs_toolchain

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from tflite_builder import ModelBuilder, run_reference  # noqa: E402


def two_in_two_out_model() -> bytes:
    """image, mask -> QUANTIZE(mask) ++ image -> MAX_POOL 'boxes';  SPLIT(image) -> 'right' (the 2nd half)."""
    b = ModelBuilder()
    image = b.tensor([1, 12, 10, 4], scale=0.1, zero_point=3, name="image")
    mask = b.tensor([1, 12, 10, 2], scale=0.05, zero_point=-7, name="mask")
    mask_q = b.tensor([1, 12, 10, 2], scale=0.1, zero_point=3)
    b.op("QUANTIZE", [mask], [mask_q])
    cat = b.tensor([1, 12, 10, 6], scale=0.1, zero_point=3)
    b.op("CONCATENATION", [image, mask_q], [cat], "ConcatenationOptions", axis=3)
    boxes = b.tensor([1, 6, 5, 6], scale=0.1, zero_point=3, name="boxes")
    b.op("MAX_POOL_2D", [cat], [boxes], "Pool2DOptions", padding=1, stride_w=2, stride_h=2,
         filter_width=3, filter_height=3)
    axis = b.tensor([], "int32", data=np.array(2))
    left = b.tensor([1, 12, 5, 4], scale=0.1, zero_point=3, name="left")
    right = b.tensor([1, 12, 5, 4], scale=0.1, zero_point=3, name="right")
    b.op("SPLIT", [axis, image], [left, right], "SplitOptions", num_splits=2)
    return b.build([image, mask], [boxes, right])


@needs_toolchain
@needs_qemu
def test_two_inputs_two_outputs_on_qemu(tmp_path):
    model = tmp_path / "two_io.tflite"
    model.write_bytes(two_in_two_out_model())
    rng = np.random.default_rng(7)
    xs = {"image": rng.integers(-128, 128, (1, 12, 10, 4), dtype=np.int8),
          "mask": rng.integers(-128, 128, (1, 12, 10, 2), dtype=np.int8)}
    np.savez(tmp_path / "x.npz", **xs)
    proc = subprocess.run([sys.executable, "-m", "tvm_fused.cli", "run", str(model), "--fuse", "auto",
                           "--input", str(tmp_path / "x.npz"), "--output", str(tmp_path / "out.npz"),
                           "--json", str(tmp_path / "r.json"), "--repeat", "2", "-q"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["output_matches_reference"] is True
    assert [o["name"] for o in report["io"]["outputs"]] == ["boxes", "right"]
    out = np.load(tmp_path / "out.npz")
    assert out.files == ["boxes", "right"]
    boxes, right = run_reference(model.read_bytes(), [xs["image"], xs["mask"]])
    np.testing.assert_array_equal(out["boxes"], boxes)
    np.testing.assert_array_equal(out["right"], right)
    # one .npy per output when the name is not .npz (same run, from the export dir)
    proc = subprocess.run([sys.executable, "-m", "tvm_fused.cli", "run", str(model),
                           "--input", str(tmp_path / "x.npz"), "--output", str(tmp_path / "y.npy"), "-q",
                           "--repeat", "1"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y_boxes.npy"), boxes)
    np.testing.assert_array_equal(np.load(tmp_path / "y_right.npy"), right)
