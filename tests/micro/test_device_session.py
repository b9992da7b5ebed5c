"""End to end on QEMU with the stub model: upload, run, outputs, measurements."""
import numpy as np
import pytest

from conftest import STUB_INPUT_SHAPE, STUB_OUTPUT_SHAPE, needs_qemu
from stub_model import StubCompiledModel, stub_expected, write_stub_export
from tvm_fused.micro import CanaryError, Session, build_project, elf_memory, generate_project
from tvm_fused.micro import protocol as P

pytestmark = needs_qemu


@pytest.fixture(scope="module")
def session(qemu_project):
    with Session(qemu_project) as s:
        yield s


def _x(seed):
    return np.random.default_rng(seed).integers(-128, 128, STUB_INPUT_SHAPE, dtype=np.int8)


def test_info_describes_board_and_model(session):
    info = session.info()
    assert info["board"] == "qemu-mps2-an500" and info["model"] == "stub"
    assert info["input_shape"] == list(STUB_INPUT_SHAPE) and info["output_shape"] == list(STUB_OUTPUT_SHAPE)
    assert info["input_bytes"] == 3072 and info["output_bytes"] == 100
    assert info["arena_bytes"] >= 3072 + 100 and info["counter_kind"] == "qemu_ticks"


def test_output_matches_stub_reference(session):
    chunks = []
    x = _x(0)
    session.set_input(x, progress=lambda done, total: chunks.append((done, total)))
    assert chunks[-1] == (3072, 3072) and len(chunks) == 4  # 1016-byte chunks
    session.run()
    y = session.get_output()
    assert y.shape == STUB_OUTPUT_SHAPE and y.dtype == np.int8
    np.testing.assert_array_equal(y.reshape(-1), stub_expected(x, 100))
    x2 = _x(1)  # a second input gives a different, still exact, output
    np.testing.assert_array_equal(session(x2).reshape(-1), stub_expected(x2, 100))


def test_device_crc_matches_known_vectors(session):
    for data, crc in [(b"123456789", 0xCBF43926), (b"", 0), (bytes(range(256)) * 3, None)]:
        got = int.from_bytes(session.client.call(P.CMD_CRC32, b"\x00" + data), "little")
        assert got == (crc if crc is not None else P.crc32(data))


def test_instruction_counts_are_deterministic(session, qemu_project):
    session.set_input(_x(2))  # the stub saturates: counts depend on the data, so same input
    a = session.run(repeat=3)
    b = session.run(repeat=2)
    assert a["deterministic"] and b["deterministic"]
    assert a["instructions"] == b["instructions"] > 0
    with Session(qemu_project) as other:  # a fresh QEMU gives the same count
        other.set_input(_x(2))
        assert other.run()["instructions"] == a["instructions"]


def test_measure_reports_stack_arena_flash(session, qemu_project):
    session.set_input(_x(4))
    m = session.measure(repeat=3)
    mem = elf_memory(session.elf)
    assert m["instructions"] > 100 and m["deterministic"] and m["repeat"] == 3
    assert 0 < m["stack_bytes"] < 16384 and not m["stack_overflow"]
    assert m["canaries_ok"] and m["arena_bytes"] == session.info()["arena_bytes"] == mem["arena_bytes"]
    assert m["flash_bytes"] == mem["flash_bytes"] > 1000
    assert mem["flash_bytes"] == sum(mem["sections"][s] for s in (".isr_vector", ".text", ".rodata", ".data")
                                     if s in mem["sections"]) + mem["sections"].get(".ARM.exidx", 0)
    assert m["peak_ram_bytes"] == m["arena_bytes"] + m["stack_bytes"] + mem["runtime_ram_bytes"]
    assert mem["stack_reserved_bytes"] == 16384


def test_generate_project_from_compiled_model_object(tmp_path):
    model = StubCompiledModel(input_shape=(1, 4, 4, 2), output_shape=(1, 5))
    project = generate_project(model, project_dir=tmp_path / "p")
    build_project(project)
    x = np.arange(32, dtype=np.int8).reshape(1, 4, 4, 2)
    with Session(project) as s:
        np.testing.assert_array_equal(s(x), model.reference(x))


def test_model_that_overwrites_its_input_is_rerun_correctly(tmp_path):
    export = write_stub_export(tmp_path / "e", input_shape=(1, 64), output_shape=(1, 8), clobber_input=True)
    project = generate_project(export, project_dir=tmp_path / "p")
    build_project(project)
    x = np.arange(64, dtype=np.int8).reshape(1, 64)
    with Session(project) as s:
        s.set_input(x)
        r = s.run(repeat=3)  # device stops after 1 run each time; host re-uploads
        assert r["repeat"] == 3 and r["deterministic"]
        np.testing.assert_array_equal(s.get_output().reshape(-1), stub_expected(x, 8))


def test_arena_overflow_is_caught_by_canaries(tmp_path):
    export = write_stub_export(tmp_path / "e", input_shape=(1, 16), output_shape=(1, 4), overflow_arena_by=3)
    project = generate_project(export, project_dir=tmp_path / "p")
    build_project(project)
    with Session(project) as s:
        s.set_input(np.zeros(16, np.int8))
        with pytest.raises(CanaryError, match="outside its arena"):
            s.run()
        assert not s.stats()["canaries_ok"]
        s.ping()  # still answering


def test_cpu_fault_is_reported_with_pc(tmp_path):
    from tvm_fused.micro import DeviceFaultError

    export = write_stub_export(tmp_path / "e", input_shape=(1, 16), output_shape=(1, 4), fault=True)
    project = generate_project(export, project_dir=tmp_path / "p")
    build_project(project)
    with Session(project) as s:
        s.set_input(np.zeros(16, np.int8))
        with pytest.raises(DeviceFaultError, match=r"CPU fault at pc=0x[0-9a-f]{8}.*halted"):
            s.run()
