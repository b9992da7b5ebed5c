"""Generated C is reproducible (same bytes for the same model, in one process and across
processes) and readable (kernels and constants named after the model's layers)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fixture_paths import FIXTURES

REPO = Path(__file__).resolve().parents[1]
# a small zoo model (ONNX) and a TFLite fixture, each unfused and fused
CASES = [("mbv2-0.35-96-tiny", "none"), ("mbv2-0.35-96-tiny", "auto"),
         ("conv_chain.tflite", "none"), ("conv_chain.tflite", "auto")]
# wall-clock fields: the only part of an export that may differ between two compiles
_TIMING_KEYS = ("compile_seconds", "timings")

_EXPORT_SCRIPT = """
import sys
from pathlib import Path
import tvm_fused
from tvm_fused import models
fixtures, out = Path(sys.argv[1]), Path(sys.argv[2])
for arg in sys.argv[3:]:
    name, fuse = arg.split(":")
    source = str(fixtures / name) if name.endswith(".tflite") else str(models.path(name))
    tvm_fused.compile(source, name=name, fuse=fuse, progress=False).export(out / f"{name}-{fuse}")
"""


def _compile_export(name, fuse, directory):
    import tvm_fused
    from tvm_fused import models

    source = str(FIXTURES / name) if name.endswith(".tflite") else str(models.path(name))
    return tvm_fused.compile(source, name=name, fuse=fuse, progress=False).export(directory)


def _tree(directory: Path) -> dict:
    """Every exported file's bytes (report.json without its wall-clock timings)."""
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == "report.json":
            report = json.loads(data)
            for key in _TIMING_KEYS:
                report.pop(key, None)
            data = json.dumps(report, indent=2).encode()
        files[str(path.relative_to(directory))] = data
    return files


def _first_difference(a: dict, b: dict) -> str:
    if a.keys() != b.keys():
        return f"different files: {sorted(set(a) ^ set(b))}"
    for rel in a:
        if a[rel] != b[rel]:
            la, lb = a[rel].decode().splitlines(), b[rel].decode().splitlines()
            diff = sum(x != y for x, y in zip(la, lb)) + abs(len(la) - len(lb))
            first = next((i for i, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
            return f"{rel}: {diff} lines differ, first at line {first + 1}"
    return ""


def test_generated_tree_is_byte_identical_in_process_and_across_processes(tmp_path):
    """Two compiles in this process and one in a fresh interpreter (another hash seed) agree
    byte for byte, for an ONNX and a TFLite model, unfused and fused."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               PYTHONHASHSEED="12345")
    proc = subprocess.run([sys.executable, "-c", _EXPORT_SCRIPT, str(FIXTURES), str(tmp_path / "sub"),
                           *[f"{n}:{f}" for n, f in CASES]], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name, fuse in CASES:
        first = _tree(_compile_export(name, fuse, tmp_path / "a" / f"{name}-{fuse}"))
        second = _tree(_compile_export(name, fuse, tmp_path / "b" / f"{name}-{fuse}"))
        other = _tree(tmp_path / "sub" / f"{name}-{fuse}")
        assert any(rel.endswith("kernels.c") for rel in first)
        if first != second:
            pytest.fail(f"{name} fuse={fuse}, same process: {_first_difference(first, second)}")
        if first != other:
            pytest.fail(f"{name} fuse={fuse}, other process: {_first_difference(first, other)}")


def _definitions(model_dir: Path):
    kernels = re.findall(r"^void (\w+)\(.*\) \{$", (model_dir / "src/kernels.c").read_text(), re.M)
    constants = re.findall(r"^const \w+ (\w+)\[", (model_dir / "src/weights.c").read_text(), re.M)
    return kernels, constants


@pytest.mark.parametrize("fuse", ["none", "auto"])
def test_tflite_kernels_and_constants_are_named_after_layers(cache, fuse):
    """Keras layer scopes in the TFLite tensor names become the C names: block_3_expand, ..."""
    from tvm_fused.frontend.tflite_loader import _op_names, read_tflite

    name = "mbv2_035_96.tflite"
    model = cache.export(name, fuse) / "model"
    kernels, constants = _definitions(model)
    # the layer scopes, read straight from the flatbuffer: ".../block_3_expand_1/convolution"
    scopes = set()
    for _, tensor, _ in _op_names(read_tflite(str(FIXTURES / name))):
        scopes |= set(re.findall(r"/(block_\d+_(?:expand|depthwise|project|add))_1/", tensor))
    assert len(scopes) > 40
    named = {k.removeprefix("tvmgen_default_") for k in kernels}
    # every layer outside a fused chain either names its own kernel or appears in a shared one's comment
    kernels_c = (model / "src/kernels.c").read_text()
    fused = set(re.findall(r"fuses ([^)]*)\)", kernels_c))
    fused_layers = {layer for group in fused for layer in group.split(", ")}
    for scope in sorted(scopes - fused_layers):
        assert scope in named or f"   layer {scope}" in kernels_c, scope
    assert "tvmgen_default_block_3_expand" in kernels if fuse == "none" else True
    assert "tvmgen_default_block_13_expand_weight" in constants
    assert {"tvmgen_default_block_13_expand_bias", "tvmgen_default_block_13_expand_multiplier",
            "tvmgen_default_block_13_expand_shift"} <= set(constants)
    if fuse == "auto":
        # auto may fuse several chains: each is named after its first and last layer
        assert any(k.startswith("tvmgen_default_fused_Conv1_to_") for k in kernels)
        assert any(re.match(r"tvmgen_default_fused_block_\d+_expand_to_block_\d+_", k) for k in kernels)
    assert len(set(kernels)) == len(kernels) and len(set(constants)) == len(constants)
    assert not set(kernels) & set(constants)


def test_onnx_kernels_are_named_after_nodes(cache):
    """ONNX node names (conv_17, add_16, fc_100 in the zoo models) name kernels and constants."""
    import onnx

    from tvm_fused import models

    proto = onnx.load(str(models.path("mbv2-0.35-96")))
    convs = [n.name for n in proto.graph.node if n.op_type in ("Conv", "Gemm", "Add")]
    model = cache.export("mbv2-0.35-96") / "model"
    kernels, constants = _definitions(model)
    kernels_c = (model / "src/kernels.c").read_text()
    for node in convs:
        assert f"tvmgen_default_{node}" in kernels or f"   layer {node}\n" in kernels_c + "\n" \
            or f"   layer {node} */" in kernels_c, node
    assert f"tvmgen_default_{convs[0]}_weight" in constants
    assert len(set(kernels)) == len(kernels) and len(set(constants)) == len(constants)


def test_every_kernel_has_a_header_comment(cache):
    """Each kernel definition follows a comment with its op, shapes, MACs and layer(s)."""
    text = (cache.export("mbv2_035_96.tflite", "auto") / "model/src/kernels.c").read_text()
    blocks = re.findall(r"/\* (\w+): (.*?) -> (\[[\d, ]+\]), ([\d,]+) MACs per call\n(.*?)\*/\nvoid (\w+)\(",
                        text, re.S)
    definitions = re.findall(r"^void \w+\(.*\) \{$", text, re.M)
    assert len(blocks) == len(definitions) > 10
    ops = {b[0] for b in blocks}
    assert {"fused_chain", "conv2d_1x1", "depthwise_conv2d", "add", "dense"} <= ops
    for op, _, _, macs, layers, _ in blocks:
        assert "layer " in layers
        if op in ("conv2d_1x1", "depthwise_conv2d", "dense", "fused_chain"):
            assert int(macs.replace(",", "")) > 0


def test_weights_are_const_and_land_in_flash(cache, tmp_path):
    """Every weight/requantization table is ``const`` and passed without casting const away,
    and the ARM compiler puts them all in read-only data."""
    import shutil

    model = cache.export("conv_chain.tflite", "auto") / "model"
    weights = (model / "src/weights.c").read_text()
    arrays = re.findall(r"^(.*)\b(\w+)\[\d+\] __attribute__", weights, re.M)
    assert arrays and all(prefix.startswith("const ") for prefix, _ in arrays)
    entry = (model / "src/tvmgen_default.c").read_text()
    for _, symbol in arrays:
        assert f"*){symbol}" not in entry  # no (int8_t*) cast dropping const
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("needs arm-none-eabi-gcc (make toolchain)")
    obj = tmp_path / "weights.o"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb", "-O2", "-c", str(model / "src/weights.c"),
                    "-o", str(obj)], check=True)
    symbols = subprocess.run(["arm-none-eabi-nm", str(obj)], capture_output=True, text=True, check=True).stdout
    kinds = {line.split()[2]: line.split()[1] for line in symbols.splitlines() if len(line.split()) == 3}
    assert {s for _, s in arrays} == set(kinds)
    assert set(kinds.values()) == {"R"}, kinds


def test_c_identifiers_are_sanitized_and_unique():
    from tvm_fused.backend.naming import NameTable, c_identifier, comment_text

    assert c_identifier("model/block_3 expand:0") == "model_block_3_expand_0"
    assert c_identifier("3x3") == "layer_3x3"
    assert c_identifier("int") == "int_"
    assert c_identifier("///") == "layer"
    assert len(c_identifier("a" * 200)) <= 48
    table = NameTable(reserved={"run"})
    assert [table.fresh(n) for n in ["conv", "conv", "conv.", "run", "conv_2"]] == \
        ["conv", "conv_2", "conv_3", "run_2", "conv_2_2"]
    assert comment_text("a */ b\n/* c") == "a * / b / * c"


def test_layer_names_from_tflite_tensor_names():
    """The main op's scope names the layer; Keras 3's call suffix goes only when every scope has one;
    a layer called twice gets _2."""
    from tvm_fused.frontend.layer_names import _tflite_layers

    keras3 = ["m_1/block_3_expand_relu_1/Relu6;m_1/block_3_expand_BN_1/batchnorm/add_1;"
              "m_1/block_3_expand_1/convolution",
              "m_1/block_3_add_1/Add", "StatefulPartitionedCall_1:0", "m_1/block_3_add_1/Add;x"]
    assert list(_tflite_layers(keras3).values()) == ["block_3_expand", "block_3_add", "StatefulPartitionedCall_1",
                                                     "block_3_add_2"]
    mixed = ["model/conv_a/BiasAdd;model/conv_a/Conv2D", "model/dense_1/MatMul", "model/out/Softmax",
             "model/upsample/resize/ResizeNearestNeighbor", "head/Sigmoid"]
    assert list(_tflite_layers(mixed).values()) == ["conv_a", "dense_1", "out", "upsample", "head"]
