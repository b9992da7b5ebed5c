"""Fixtures for the device tests: stub exports, firmware built once per session,
and a hard per-test time limit (no test may hang on a dead device)."""
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from stub_model import write_stub_export  # noqa: E402

# A hang guard, generous for a quiet 2-core CI machine;
# raise it on a loaded machine with TVM_FUSED_TEST_TIME_LIMIT=seconds.
TEST_TIME_LIMIT_S = int(os.environ.get("TVM_FUSED_TEST_TIME_LIMIT", "180"))

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


class DeviceZoo:
    """Real models on QEMU, each compiled once (the suite-wide `cache`), each firmware
    built once and each (model, fuse, seed, repeat) run once per session."""

    BOARD = "qemu-mps2-an500"

    def __init__(self, cache, root: Path):
        self.cache, self.root = cache, root
        self.runs = {}
        self.projects = {}
        self.references = {}

    def compiled(self, name: str, fuse="none"):
        return self.cache.compile(name, fuse)

    def input(self, name: str, seed: int = 0):
        return self.compiled(name).random_input(seed)

    def reference(self, name: str, seed: int = 0):
        """The unfused host reference (TVM's LLVM build): what every variant must output."""
        key = (name, seed)
        if key not in self.references:
            self.references[key] = self.compiled(name).reference(self.input(name, seed))
        return self.references[key]

    def project(self, name: str, fuse="none"):
        from tvm_fused.micro import build_firmware

        key = (name, str(fuse))
        if key not in self.projects:
            safe = name.replace(".", "_")
            self.projects[key] = build_firmware(self.cache.export(name, fuse), board=self.BOARD,
                                                project_dir=self.root / f"{safe}-fuse-{fuse}")
        return self.projects[key][0]

    def run(self, name: str, fuse="none", seed: int = 0, repeat: int = 2):
        """(output, measurement) on QEMU; repeat=2 runs the same input twice."""
        from tvm_fused.micro import run_firmware

        key = (name, str(fuse), seed, repeat)
        if key not in self.runs:
            y, m, _ = run_firmware(self.project(name, fuse), self.input(name, seed), board=self.BOARD,
                                   repeat=repeat)
            self.runs[key] = (y, m)
        return self.runs[key]


@pytest.fixture(scope="session")
def device_zoo(cache, tmp_path_factory):
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("ARM toolchain or QEMU missing")
    pytest.importorskip("tvm")
    pytest.importorskip("onnx")
    return DeviceZoo(cache, tmp_path_factory.mktemp("device_zoo"))
