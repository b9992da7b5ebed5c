"""Fixtures for the device tests: stub exports, firmware built once per session,
and a hard per-test time limit (no test may hang on a dead device)."""
import shutil
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from stub_model import write_stub_export  # noqa: E402

TEST_TIME_LIMIT_S = 90

needs_toolchain = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                     reason="arm-none-eabi-gcc not installed (make toolchain)")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None,
                                reason="qemu-system-arm not installed (make toolchain)")


@pytest.fixture(autouse=True)
def _time_limit(request):
    """SIGALRM guard: fail (not hang) a test that exceeds TEST_TIME_LIMIT_S."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def on_alarm(signum, frame):
        raise TimeoutError(f"{request.node.nodeid} exceeded {TEST_TIME_LIMIT_S}s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIME_LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


STUB_INPUT_SHAPE = (1, 32, 32, 3)  # 3072 B: several 1 KiB chunks
STUB_OUTPUT_SHAPE = (1, 100)


@pytest.fixture(scope="session")
def stub_export(tmp_path_factory):
    return write_stub_export(tmp_path_factory.mktemp("stub_export"), input_shape=STUB_INPUT_SHAPE,
                             output_shape=STUB_OUTPUT_SHAPE, macs=3072 * 100)


@pytest.fixture(scope="session")
def qemu_project(stub_export, tmp_path_factory):
    """The stub on QEMU with a 512 KiB RAM budget (an F767-sized chip), built once."""
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("ARM toolchain or QEMU missing")
    from tvm_fused.micro import build_project, generate_project

    project = generate_project(stub_export, board="qemu-mps2-an500",
                               project_dir=tmp_path_factory.mktemp("qemu_project"), ram_budget=524288)
    build_project(project)
    return project
