"""A regular (non-editable) install runs on QEMU: build the wheel, install it into a fresh venv outside
the checkout, run `tvm-fused run` on a small model, and find the temp folder as it was (issue 11).

To avoid downloading TVM, onnx, ... again, the fresh venv sees the test interpreter's site-packages
through a .pth line. Python adds such a directory to sys.path *after* the venv's own site-packages and
does not process the .pth files inside it, so an editable tvm_fused installed there (an
``__editable__`` finder or an egg-link path) is not activated: ``tvm_fused`` comes from the wheel, and
the test checks that it does. PYTHONPATH is removed and the run happens in a folder outside the checkout,
so nothing from the source tree (in particular the firmware template) can be found by accident."""
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import needs_qemu, needs_toolchain
from tiny_onnx import tiny_qdq_conv

ROOT = Path(__file__).resolve().parents[2]


def _build_wheel(dist: Path) -> Path:
    src = dist.parent / "src"  # a copy, so the build's build/ and *.egg-info never land in the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__",
                                                             "tests", "benchmarks", "docs", ".hypothesis"))
    errors = []
    for extra in ([], ["--no-build-isolation"]):  # isolation needs the index; the fallback needs `wheel` here
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), *extra,
                               str(src)], capture_output=True, text=True, timeout=300)
        wheels = list(dist.glob("tvm_fused-*.whl"))
        if proc.returncode == 0 and wheels:
            return wheels[0]
        errors.append(proc.stderr[-2000:])
    pytest.fail("could not build the wheel:\n" + "\n".join(errors))


@needs_toolchain
@needs_qemu
def test_wheel_in_a_fresh_venv_runs_on_qemu(tmp_path):
    wheel = _build_wheel(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    assert "tvm_fused/py.typed" in names
    assert "tvm_fused/micro/template/Makefile" in names
    assert "tvm_fused/micro/template/boards/qemu-mps2-an500/memory.ld" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "shared_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=300)

    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["TMPDIR"] = str(tmp)
    where = subprocess.run([str(py), "-c", "import tvm_fused; print(tvm_fused.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=120)
    assert Path(where.stdout.strip()).is_relative_to(venv), where  # the wheel, not the checkout

    model = tiny_qdq_conv(work / "tiny.onnx")
    proc = subprocess.run([str(venv / "bin" / "tvm-fused"), "run", str(model), "--repeat", "1", "-o", "report.json"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "output_matches_reference True" in proc.stdout
    assert (work / "report.json").is_file()
    assert os.listdir(tmp) == []  # no project folder, no QEMU log left behind
