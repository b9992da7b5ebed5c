"""Every board builds and links the stub; models that do not fit fail at link
time with the region and the overflow named."""
import pytest

from conftest import needs_toolchain
from stub_model import write_stub_export
from tvm_fused.errors import UsageError
from tvm_fused.micro import BOARDS, BuildError, ModelDoesNotFitError, build_project, elf_memory, generate_project

pytestmark = needs_toolchain

# where each board's RAM starts: the stack is the first RAM section
RAM_BASE = {"qemu-mps2-an500": 0x20000000, "nucleo-f767zi": 0x20000000, "nucleo-h743zi": 0x20000000}
FLASH_BASE = {"qemu-mps2-an500": 0x0, "nucleo-f767zi": 0x08000000, "nucleo-h743zi": 0x08000000}
ARENA_BASE = {"qemu-mps2-an500": 0x20000000, "nucleo-f767zi": 0x20000000, "nucleo-h743zi": 0x24000000}


@pytest.fixture(scope="module")
def huge_export(tmp_path_factory):
    return write_stub_export(tmp_path_factory.mktemp("huge"), arena_bytes=600_000)


@pytest.mark.parametrize("board", BOARDS)
def test_board_builds_and_links(board, stub_export, tmp_path):
    from elftools.elf.elffile import ELFFile

    elf = build_project(generate_project(stub_export, board=board, project_dir=tmp_path / board))
    mem = elf_memory(elf)
    assert mem["flash_bytes"] > 1000 and mem["arena_bytes"] >= 3172
    with open(elf, "rb") as f:
        e = ELFFile(f)
        addr = {s.name: s["sh_addr"] for s in e.iter_sections()}
        assert e["e_machine"] == "EM_ARM"
    assert addr[".isr_vector"] == FLASH_BASE[board]
    assert addr[".stack"] == RAM_BASE[board]
    assert ARENA_BASE[board] <= addr[".tvm_arena"] < ARENA_BASE[board] + 0x80000


def test_huge_arena_does_not_fit_f767(huge_export, tmp_path):
    project = generate_project(huge_export, board="nucleo-f767zi", project_dir=tmp_path / "p")
    with pytest.raises(ModelDoesNotFitError, match=r"region RAM overflowed by \d+ bytes on nucleo-f767zi") as e:
        build_project(project)
    # 600000 arena + 16384 stack + runtime data + canaries - 512 KiB
    assert e.value.region == "RAM" and 600000 + 16384 - 524288 < e.value.overflow_bytes < 600000 + 16384 + 8192 - 524288
    assert "arena 600000 B" in str(e.value)


def test_huge_arena_does_not_fit_h743_axi_sram(huge_export, tmp_path):
    project = generate_project(huge_export, board="nucleo-h743zi", project_dir=tmp_path / "p")
    with pytest.raises(ModelDoesNotFitError, match="region AXISRAM overflowed by 75840 bytes"):
        build_project(project)


def test_qemu_ram_budget_emulates_a_smaller_chip(stub_export, tmp_path):
    project = generate_project(stub_export, board="qemu-mps2-an500", project_dir=tmp_path / "p", ram_budget=16384)
    with pytest.raises(ModelDoesNotFitError, match="region RAM overflowed by .* RAM_BUDGET=16384 B"):
        build_project(project)
    elf = build_project(project, make_vars={"RAM_BUDGET": 65536})  # a make variable overrides
    assert elf.is_file()


def test_ram_budget_above_the_chip_is_refused(stub_export, tmp_path):
    project = generate_project(stub_export, board="nucleo-f767zi", project_dir=tmp_path / "p", ram_budget=1 << 20)
    with pytest.raises(ModelDoesNotFitError, match="RAM_BUDGET is larger than the 512 KiB"):
        build_project(project)


def test_bad_inputs_are_clear(stub_export, tmp_path):
    with pytest.raises(ValueError, match="unknown board"):
        generate_project(stub_export, board="arduino", project_dir=tmp_path / "a")
    with pytest.raises(UsageError, match="not an exported model dir"):
        generate_project(tmp_path, project_dir=tmp_path / "b")
    assert not (tmp_path / "b").exists()
    project = generate_project(stub_export, project_dir=tmp_path / "c")
    (project / "model" / "src" / "broken.c").write_text("int f(void) { return x; }\n")
    with pytest.raises(BuildError, match="broken.c"):
        build_project(project)
