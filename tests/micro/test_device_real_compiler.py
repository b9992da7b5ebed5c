"""The firmware runs code from the real compiler (tvm_fused.compile) bit-exactly."""
import numpy as np
import pytest

from conftest import needs_qemu, needs_toolchain
from tiny_onnx import tiny_qdq_conv
from tvm_fused.micro import Session, build_project, generate_project

pytest.importorskip("onnx")
pytest.importorskip("tvm")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    import tvm_fused

    path = tiny_qdq_conv(tmp_path_factory.mktemp("onnx") / "tiny.onnx")
    return tvm_fused.compile(str(path), board="qemu-mps2-an500", progress=False)


@needs_qemu
def test_compiled_model_matches_reference_on_qemu(compiled, tmp_path):
    project = generate_project(compiled, project_dir=tmp_path / "p", ram_budget=524288)
    build_project(project)
    x = compiled.random_input(seed=1)
    with Session(project) as s:
        y = s(x)
        m = s.measure(repeat=2)
    np.testing.assert_array_equal(y.reshape(-1), np.asarray(compiled.reference(x)).reshape(-1))
    assert m["deterministic"] and m["canaries_ok"] and m["instructions"] > compiled.report["macs"]


@pytest.mark.parametrize("board", ["nucleo-f767zi", "nucleo-h743zi"])
def test_compiled_model_links_for_stm32(compiled, board, tmp_path):
    assert build_project(generate_project(compiled, board=board, project_dir=tmp_path / board)).is_file()


@needs_toolchain
def test_h743_puts_the_fused_rings_in_dtcm_and_links(tmp_path):
    """nucleo-h743zi: the fused chains' ring buffers go to the DTCM bank (report and ELF:
    the .tvm_arena_dtcm section lies in DTCM, 0x20000000 + 128 KiB)."""
    from elftools.elf.elffile import ELFFile

    import tvm_fused
    from tvm_fused import models

    cm = tvm_fused.compile(str(models.path("mbv2-0.35-96-tiny")), board="nucleo-h743zi", fuse="auto",
                           progress=False)
    dtcm = cm.report["banks"]["dtcm"]
    assert dtcm["hot"] and 0 < dtcm["arena_bytes"] <= dtcm["capacity"]
    elf = build_project(generate_project(cm, board="nucleo-h743zi", project_dir=tmp_path / "h7"))
    with open(elf, "rb") as f:
        sec = ELFFile(f).get_section_by_name(".tvm_arena_dtcm")
        assert sec is not None and sec["sh_size"] >= dtcm["arena_bytes"]
        assert 0x20000000 <= sec["sh_addr"] and sec["sh_addr"] + sec["sh_size"] <= 0x20000000 + 128 * 1024
