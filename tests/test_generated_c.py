"""Generated C == TVM's own host build of the same legalized module, bit for bit.

The C is built with gcc -O2 -fsanitize=address,undefined (any out-of-bounds access
or UB aborts the run, and -Wall -Wextra -Werror), and must also compile warning-free for
Cortex-M7.
"""
import shutil
import subprocess

import numpy as np
import pytest

from fixture_paths import TFLITE_FIXTURES

# widths 0.35 and 1.0 at 96 and 224 px, plus the 5x5-depthwise and expand-4 variants
ZOO_MODELS = ["mbv2-0.35-96", "mbv2-1.0-96", "mbv2-0.35-224", "mbv2-1.0-224", "mbv2-0.35-96-dw5",
              "mbv2-0.5-96-t4"]
BIG = {"mbv2-1.0-224", "mbv2-0.35-224"}


@pytest.mark.parametrize("name", ZOO_MODELS + TFLITE_FIXTURES)
def test_c_matches_tvm_host_build(cache, name):
    cm = cache.compile(name)
    exe = cache.host_executable(name)
    for seed in range(1 if name in BIG else 3):
        x = cm.random_input(seed)
        np.testing.assert_array_equal(exe(x), cm.reference(x))


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc (make toolchain)")
@pytest.mark.parametrize("name,fuse", [("mbv2-0.35-96", "none"), ("mbv2-0.35-96", "auto"),
                                       (TFLITE_FIXTURES[0], "none"), (TFLITE_FIXTURES[0], "auto"),
                                       ("families/yolo_head.tflite", "none")])
def test_c_compiles_for_cortex_m7_without_warnings(cache, name, fuse, tmp_path):
    """-std=c99 -Wall -Wextra -Werror, at -O0 and -O2 (optimization enables more warnings)."""
    model = cache.export(name, fuse) / "model"
    for src in sorted((model / "src").glob("*.c")):
        for opt in ("-O0", "-O2"):
            cmd = ["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb", opt, "-std=c99", "-Wall", "-Wextra",
                   "-Werror", "-I", str(model / "include"), "-c", str(src), "-o", str(tmp_path / (src.stem + ".o"))]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            assert proc.returncode == 0, f"{src.name} {opt}:\n{proc.stderr}"


def test_export_layout_and_header(cache):
    out = cache.export("mbv2-0.35-96")
    header = (out / "model/include/tvmgen_default.h").read_text()
    for needle in ["TVMGEN_DEFAULT_ARENA_SIZE", "struct tvmgen_default_inputs", "struct tvmgen_default_outputs",
                   "int32_t tvmgen_default_run(struct tvmgen_default_inputs* inputs"]:
        assert needle in header
    src = "".join(p.read_text() for p in (out / "model/src").glob("*.c"))
    assert "tvm/" not in src and "TVMBackend" not in src and "TVMFFI" not in src
    weights = (out / "model/src/weights.c").read_text()
    assert "const int8_t tvmgen_default_conv_1_weight[" in weights  # named after the first conv node
    assert (out / "report.json").exists() and (out / "io.json").exists()
