"""`tvm-fused run` under faults (issue 12): the user's project folder is never overwritten, two runs
on one folder are refused, a device that dies, answers garbage or hangs gives a clear error in time,
and the temp folder holds exactly what it held before a successful, failed or interrupted run, with
no QEMU or make process left behind.

The temp-folder checks give each run its own empty TMPDIR (other processes share /tmp), so
"entries before == entries after" is "the folder is still empty"."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import needs_qemu, needs_toolchain
from tiny_onnx import tiny_qdq_conv

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from test_bad_input import assert_user_error, cli, snapshot, user_folder  # noqa: E402

pytestmark = [needs_toolchain, needs_qemu]


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention ``text`` (a run's temp or project path)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (d / "stat").read_text().split(")")[-1].split()[0]
            except OSError:
                continue
            if text in cmd and d.name != str(os.getpid()):
                found.append(f"{d.name} [{state}] {cmd}")
    return found


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    return tiny_qdq_conv(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """An empty temp folder for this process (tempfile and child processes)."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setenv("TMPDIR", str(d))
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


def _env(tmp: Path) -> dict:
    return dict(os.environ, TMPDIR=str(tmp), PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


# ---- success, failure, interruption: nothing left in the temp folder -------------------------------------------------

def test_successful_run_leaves_nothing_and_accepts_readme_flags(tmp_path, tiny_onnx):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    x = np.random.default_rng(5).integers(-128, 128, (1, 16, 16, 3), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run([sys.executable, "-m", "tvm_fused.cli", "run", str(tiny_onnx), "--repeat", "1",
                           "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
                           "-o", str(tmp_path / "report.json")],  # README: `run MODEL ... -o report.json`
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=_env(tmp))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "report.json").read_text())["output_matches_reference"] is True
    assert np.load(tmp_path / "y.npy").shape == (1, 8, 8, 4)
    assert "\r" not in proc.stdout + proc.stderr  # no progress bars in a log
    assert sorted(os.listdir(tmp)) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "tiny", "tmp", "x.npy", "y.npy"] or \
        sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "tmp", "x.npy", "y.npy"]
    assert processes_mentioning(str(tmp)) == []


def test_failed_run_leaves_nothing(capsys, own_tmp, tiny_onnx):
    np.save(own_tmp.parent / "x.npy", np.zeros((1, 3, 16, 16), np.float32))  # NCHW: refused after compiling
    status, _, err = cli(capsys, "run", tiny_onnx, "--input", own_tmp.parent / "x.npy", "-q")
    assert_user_error(status, err, "x.npy", "looks like NCHW")
    assert os.listdir(own_tmp) == []


def test_failed_build_leaves_nothing_unless_kept(capsys, own_tmp, stub_export):
    args = ("run", stub_export, "--board", "nucleo-f767zi", "--ram-budget", "1K", "--port", "/dev/null")
    status, _, err = cli(capsys, *args)
    assert_user_error(status, err, "RAM_BUDGET", "--keep")
    assert os.listdir(own_tmp) == []
    status, _, err = cli(capsys, *args, "--keep")
    assert status == 2 and "Traceback" not in err
    kept = next(line for line in err.splitlines() if line.startswith("kept the firmware project in "))
    kept = kept.removeprefix("kept the firmware project in ")
    assert Path(kept).is_relative_to(own_tmp) and (Path(kept) / "Makefile").is_file()
    assert len(os.listdir(own_tmp)) == 1


@pytest.mark.parametrize("sig,status,word,stage", [(signal.SIGINT, 130, "interrupted", "build"),
                                                   (signal.SIGTERM, 143, "terminated", "qemu")])
def test_interrupted_run_leaves_nothing(tmp_path, tiny_onnx, sig, status, word, stage):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "tvm_fused.cli", "run", str(tiny_onnx), "--repeat", "100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=_env(tmp))
    wanted = "make" if stage == "build" else "qemu-system-arm"
    deadline = time.monotonic() + 60
    while not any(wanted in p for p in processes_mentioning(str(tmp))):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == status, err
    assert err.strip().endswith(f"tvm-fused: {word}") and "Traceback" not in err
    time.sleep(0.2)
    assert processes_mentioning(str(tmp)) == []
    assert os.listdir(tmp) == []


def test_ctrl_c_during_compile(capsys, tmp_path, own_tmp):
    """SIGINT while TVM compiles (also inside a pass, where TVM's FFI turns the interrupt into a RuntimeError)."""
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        status, _, err = cli(capsys, "compile", "mbv2-0.35-96", "-o", tmp_path / "out", "--fuse", "auto", "-q")
    finally:
        timer.cancel()
    assert status == 130 and err.strip() == "tvm-fused: interrupted", err
    assert not (tmp_path / "out").exists() and os.listdir(own_tmp) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]  # no half-written export next to it


# ---- project folders ---------------------------------------------------------------------------------------------------

def test_project_dir_never_overwrites_user_files(capsys, tmp_path, stub_export):
    mine = user_folder(tmp_path / "mine")
    before = snapshot(mine)
    status, _, err = cli(capsys, "run", stub_export, "--project-dir", mine, "-q")
    assert_user_error(status, err, "not empty", "--force")
    assert snapshot(mine) == before
    ours = tmp_path / "fw"
    for _ in range(2):  # the second run regenerates its own folder
        status, out, err = cli(capsys, "run", stub_export, "--project-dir", ours, "-q", "--repeat", "1")
        assert status == 0, err
        assert (ours / "build" / "qemu-mps2-an500" / "firmware.elf").is_file() and str(ours) in out


def test_two_runs_on_one_project_dir_are_refused(capsys, tmp_path, stub_export):
    project = tmp_path / "fw"
    project.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
                               str(project / ".tvm-fused.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        status, _, err = cli(capsys, "run", stub_export, "--project-dir", project, "-q")
        assert_user_error(status, err, "another tvm-fused process", str(project))
        assert sorted(os.listdir(project)) == [".tvm-fused.lock"]
    finally:
        holder.kill()
        holder.wait()


def test_project_lock_is_reentrant_per_thread_and_refuses_another_thread(tmp_path):
    """Two threads of one process (e.g. a build script running several models) on one folder:
    the second is refused like another process; the holder may re-enter its own lock."""
    from tvm_fused.errors import ProjectBusyError
    from tvm_fused.micro.project import project_lock

    project = tmp_path / "fw"
    held, release, seen = threading.Event(), threading.Event(), []

    def holder():
        with project_lock(project):
            with project_lock(project):  # reentrant in the same thread
                held.set()
                release.wait(30)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert held.wait(30)
        with pytest.raises(ProjectBusyError, match="another tvm-fused process"):
            with project_lock(project):
                seen.append("entered")
    finally:
        release.set()
        t.join(30)
    assert seen == []
    with project_lock(project):  # free again once the holder is done
        seen.append("entered")
    assert seen == ["entered"]


# ---- device faults -------------------------------------------------------------------------------------------------

FAKE_QEMU = r'''
import os, random, re, socket, sys, time
mode = os.environ["FAKE_QEMU_MODE"]
with open(os.environ["FAKE_QEMU_PIDS"], "a") as f:
    f.write(f"{os.getpid()}\n")
if mode == "die":
    sys.exit(1)
port = int(re.search(r"tcp:127\.0\.0\.1:(\d+)", " ".join(sys.argv)).group(1))
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(1)
conn, _ = srv.accept()
if mode == "hang":
    time.sleep(600)
if mode == "close":
    conn.recv(16)
    sys.exit(0)
rng = random.Random(0)
while True:  # garbage
    conn.sendall(bytes(rng.randrange(256) for _ in range(64)))
    time.sleep(0.005)
'''


@pytest.mark.parametrize("mode,words", [("die", ["exited before accepting a connection"]),
                                        ("close", ["connection"]),
                                        ("garbage", ["no answer from qemu-mps2-an500", "is the firmware running"]),
                                        ("hang", ["no answer from qemu-mps2-an500", "is the firmware running"])])
def test_device_faults_end_in_a_clear_error_without_leftovers(capsys, tmp_path, own_tmp, monkeypatch, stub_export,
                                                              mode, words):
    import shutil

    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "qemu-system-arm"
    fake.write_text(f"#!{sys.executable}\n{FAKE_QEMU}")
    fake.chmod(0o755)
    for tool in ("make", "arm-none-eabi-gcc"):
        (bindir / tool).symlink_to(shutil.which(tool))
    pids = tmp_path / "pids"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_QEMU_MODE", mode)
    monkeypatch.setenv("FAKE_QEMU_PIDS", str(pids))
    t0 = time.monotonic()
    status, _, err = cli(capsys, "run", stub_export, "-q")
    assert time.monotonic() - t0 < 60
    assert_user_error(status, err, *words)
    for pid in pids.read_text().split():
        assert not Path(f"/proc/{pid}").exists(), f"fake QEMU {pid} left behind (zombie or alive)"
    assert os.listdir(own_tmp) == []
