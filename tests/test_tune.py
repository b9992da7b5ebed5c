"""tvm_fused.tune: task extraction, the log (round trip, resume), the cost model, applying a log.

Device measurements are faked here (a deterministic function of the config) except in
test_tune_on_qemu_resumes, which measures three configs of a one-kernel model on QEMU."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from tvm_fused.schedules.config import DepthwiseConfig, GemmConfig
from tvm_fused.backend import HostExecutable
from tvm_fused.tune import Database, Record, Task, extract_tasks, tuner
from tvm_fused.tune.cost_model import CostModel
from tvm_fused.tune.runner import one_kernel_onnx
from tvm_fused.tune.space import config_dict, space
from tvm_fused.tune.tasks import TUNABLE_KINDS

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "mbv2_035_96.tflite"


def _conv_task(h, w, c, oc, k=1, s=1, dw=False, weight=1):
    pad = k // 2
    shape = (("depthwise", dw), ("in_shape", (1, h, w, c)), ("kernel", (k, k)), ("out_channels", oc),
             ("padding", (pad, pad, pad, pad)), ("strides", (s, s)))
    kind = "depthwise_conv2d" if dw else ("conv2d_1x1" if k == 1 else "conv2d")
    return Task(kind, shape, weight, h * w * oc * k * k * (1 if dw else c) // (s * s))


def _fake_cost(task, config):
    """A synthetic device: GEMM cost falls with pixel/channel blocking, rises with tails."""
    d = task.shape_dict()
    n, h, w, c = d["in_shape"]
    oc = d["out_channels"]
    k = config_dict(config)
    if "unroll_groups" in k:
        return 1000 + h * w * c * (3 if k["unroll_groups"] == 2 else 4)
    pb, cb, uw = k["pixel_block"], k["channel_block"], k["unroll_words"]
    per_mac = 1.0 / pb + 1.0 / cb + (0.3 if uw >= c // 4 else 0.6)
    tail = (oc % cb) * h * w * c + (w % pb) * h * oc * c
    return int(1000 + h * w * oc * c * per_mac + 3 * tail)


@pytest.fixture(scope="module")
def fixture_tasks():
    import tvm_fused

    cm = tvm_fused.compile(str(FIXTURE), progress=False, codegen=False)
    return cm, extract_tasks(cm.mod)


def test_extract_tasks_deduplicates_and_weights(fixture_tasks):
    cm, tasks = fixture_tasks
    tunable = [op for op in cm.report["ops"] if op["op"] in TUNABLE_KINDS]
    assert sum(t.weight for t in tasks) == len(tunable)  # every conv / FC kernel call is in one task
    assert len({t.key for t in tasks}) == len(tasks) < len(tunable)  # deduplicated
    assert sum(t.weight * t.macs for t in tasks) == sum(op["macs"] for op in tunable)
    assert {t.kind for t in tasks} == {op["op"] for op in tunable}
    # largest share of the model first
    shares = [t.weight * t.macs for t in tasks]
    assert shares == sorted(shares, reverse=True)


def _fake_measure(calls):
    def measure(pairs, board, parallel=1, remote=None, check=False):
        calls.append(len(pairs))
        return [Record(task=t.key, config=config_dict(c), cost=_fake_cost(t, c), board=board) for t, c in pairs]
    return measure


def test_log_round_trip_and_resume(tmp_path, monkeypatch):
    tasks = [_conv_task(12, 12, 16, 96, weight=3), _conv_task(6, 6, 32, 48), _conv_task(12, 12, 24, 24, k=3, dw=True)]
    calls = []
    monkeypatch.setattr(tuner, "measure_batch", _fake_measure(calls))
    log = tmp_path / "t.json"
    db = tuner.tune("unused", "qemu-mps2-an500", 12, log, parallel=3, tasks=tasks, out=open("/dev/null", "w"))
    assert sum(calls) == 12 and len(db.records) == 12
    data = json.loads(log.read_text())
    assert data["format"] == "tvm-fused-tuning-log/1" and len(data["records"]) == 12
    assert set(data["tasks"]) == {t.key for t in tasks}
    again = Database.load(log)
    assert again.to_json() == db.to_json()
    assert {k: config_dict(v) for k, v in again.best_configs().items()} == \
           {k: config_dict(v) for k, v in db.best_configs().items()}
    # a task's first record is its default config (the baseline); the largest task got the most
    for t in tasks:
        first = next((r for r in again.records if r.task == t.key), None)
        assert first is None or first.config == config_dict(space(t)[0])
    per_task = [len(again.measured(t.key)) for t in tasks]
    assert per_task[0] == max(per_task) and per_task[0] < 12
    # the depthwise space has 2 points: never measured twice
    dw = tasks[2]
    assert len(again.measured(dw.key)) <= len(space(dw))
    calls.clear()
    tuner.tune("unused", "qemu-mps2-an500", 12, log, tasks=tasks, out=open("/dev/null", "w"))
    assert calls == []  # resumed: nothing re-measured
    tuner.tune("unused", "qemu-mps2-an500", 15, log, tasks=tasks, out=open("/dev/null", "w"))
    assert sum(calls) == 3 and len(Database.load(log).records) == 15


def test_cost_model_ranks_a_synthetic_task():
    rng = random.Random(0)
    train_tasks = [_conv_task(h, h, c, oc) for h, c, oc in [(24, 8, 48), (12, 16, 96), (6, 32, 192), (12, 96, 16),
                                                            (6, 144, 24), (3, 56, 336)]]
    samples = []
    for t in train_tasks:
        default = _fake_cost(t, GemmConfig())
        for c in rng.sample(space(t), 12):
            samples.append((t, c, _fake_cost(t, c) / default))
    model = CostModel()
    assert model.fit(samples)
    held_out = _conv_task(6, 6, 144, 32)
    configs = space(held_out)
    true = np.array([_fake_cost(held_out, c) for c in configs])
    pred = model.predict(held_out, configs)
    rank_true, rank_pred = np.argsort(np.argsort(true)), np.argsort(np.argsort(pred))
    spearman = np.corrcoef(rank_true, rank_pred)[0, 1]
    assert spearman > 0.7, spearman
    top = model.rank(held_out, configs)[0]
    assert _fake_cost(held_out, top) <= np.quantile(true, 0.2)  # the pick is in the best fifth
    assert _fake_cost(held_out, top) <= _fake_cost(held_out, GemmConfig())


@pytest.mark.parametrize("task, configs", [
    (_conv_task(7, 5, 6, 9, k=3, s=2), [GemmConfig(4, 4, 0), GemmConfig(1, 1, 16), GemmConfig(4, 2, 2)]),
    (_conv_task(5, 7, 13, 11), [GemmConfig(4, 1, 0), GemmConfig(1, 4, 8), GemmConfig(2, 2, 4, True)]),
    (_conv_task(6, 5, 4, 24), [GemmConfig(2, 2, 4, True)]),  # expanding 1x1: its output may alias its input
    (_conv_task(5, 3, 10, 10, k=3, dw=True), [DepthwiseConfig(1, 1), DepthwiseConfig(2, 2)]),
])
def test_applied_log_changes_c_and_stays_bit_exact(tmp_path, task, configs):
    import tvm_fused

    model = str(one_kernel_onnx(task, tmp_path / "m.onnx"))
    base = tvm_fused.compile(model, progress=False)
    x = base.random_input(3)
    ref = base.reference(x)
    for config in configs:
        db = Database(tmp_path / f"log.json")
        db.add_task(task)
        db.add(Record(task=task.key, config=config_dict(task_config := config), cost=1))
        db.add(Record(task=task.key, config=config_dict(space(task)[0]), cost=2))  # the default, slower
        tuned = tvm_fused.compile(model, progress=False, tuning_log=db.path)
        assert tuned.report["tuning_log"]["tasks_tuned"] == 1
        assert tuned.library.files != base.library.files, task_config  # the schedule reached the C
        np.testing.assert_array_equal(tuned.reference(x), ref)
        # the generated C with the memory plan (its in-place aliases assume row-ordered writes,
        # which a loop order must keep), built with ASan + UBSan on this machine
        exe = HostExecutable(tuned.export(tmp_path / f"c{len(config_dict(config))}-{hash(config) & 0xFFFF}") / "model",
                             tuned.io["outputs"][0]["shape"])
        try:
            np.testing.assert_array_equal(exe(x), ref)
        finally:
            exe.close()


class _Proc:
    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


def _cli(*args):
    """The CLI in this process (argument errors must come before any work)."""
    import contextlib
    import io

    from tvm_fused import cli

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(args))
        except SystemExit as e:
            code = e.code
    return _Proc(code, err.getvalue())


@pytest.mark.parametrize("args, message", [
    (["--trials", "0"], "--trials must be >= 1"),
    (["--trials", "x"], "is not a whole number"),
    (["--trials", "2", "--board", "no-such-board"], "invalid choice: 'no-such-board'"),
    (["--trials", "2", "-o", "/nonexistent-dir/t.json"], "/nonexistent-dir"),
    (["--trials", "2", "--tracker", "nohostport"], "HOST:PORT"),
])
def test_tune_cli_argument_errors(args, message):
    base = {"--board": "qemu-mps2-an500", "-o": "/tmp/tvm-fused-test-tune.json"}
    for i, a in enumerate(args):
        if a in base:
            base[a] = args[i + 1]
    rest = [a for i, a in enumerate(args) if a not in base and (i == 0 or args[i - 1] not in base)]
    proc = _cli("tune", str(FIXTURE), "--board", base["--board"], "-o", base["-o"], *rest)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr, proc.stderr


def test_tuning_log_must_be_a_log(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    proc = _cli("compile", str(FIXTURE), "-o", str(tmp_path / "out"), "--tuning-log", str(bad), "-q")
    assert proc.returncode == 2 and "not a tvm-fused tuning log" in proc.stderr, proc.stderr
    proc = _cli("tune", str(FIXTURE), "--board", "qemu-mps2-an500", "--trials", "1", "-o", str(bad))
    assert proc.returncode == 2 and "not a tvm-fused tuning log" in proc.stderr, proc.stderr


@pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                    reason="needs qemu-system-arm and arm-none-eabi-gcc")
def test_tune_on_qemu_resumes(tmp_path, monkeypatch):
    task = _conv_task(6, 6, 8, 12)
    log = tmp_path / "t.json"
    db = tuner.tune("unused", "qemu-mps2-an500", 3, log, parallel=2, tasks=[task], out=open("/dev/null", "w"))
    costs = [r.cost for r in db.records]
    assert len(costs) == 3 and all(isinstance(c, int) and c > 0 for c in costs), db.records
    assert len(set(costs)) > 1  # configs change the instruction count
    monkeypatch.setattr(tuner, "measure_batch", lambda *a, **k: pytest.fail("re-measured on resume"))
    tuner.tune("unused", "qemu-mps2-an500", 3, log, tasks=[task], out=open("/dev/null", "w"))


@pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                    reason="needs qemu-system-arm and arm-none-eabi-gcc")
def test_tune_through_rpc_tracker_with_two_qemu_servers(tmp_path):
    """Loopback: a TVM RPC tracker, two rpc-servers (QEMU) under one key, tune spreads over both."""
    import subprocess
    import sys
    import time

    from tvm import rpc

    from tvm_fused.micro.launcher import free_loopback_port
    from tvm_fused.tune import rpc as tune_rpc

    port = free_loopback_port()
    tracker = subprocess.Popen([sys.executable, "-m", "tvm.exec.rpc_tracker", "--host", "127.0.0.1",
                                "--port", str(port), "--port-end", str(port + 1), "--silent"])
    servers = []
    try:
        for _ in range(50):  # wait for the tracker
            try:
                rpc.connect_tracker("127.0.0.1", port).summary()
                break
            except Exception:  # noqa: BLE001
                time.sleep(0.2)
        servers = [tune_rpc.start_server(("127.0.0.1", port), "m7", "qemu-mps2-an500", port=free_loopback_port())
                   for _ in range(2)]
        for _ in range(50):
            if tune_rpc.TrackerRunner(("127.0.0.1", port), "m7").servers == 2:
                break
            time.sleep(0.2)
        runner = tune_rpc.TrackerRunner(("127.0.0.1", port), "m7")
        assert runner.servers == 2
        task = _conv_task(6, 6, 8, 12)
        db = tuner.tune("unused", "qemu-mps2-an500", 4, tmp_path / "t.json", parallel=2, remote=runner,
                        tasks=[task], out=open("/dev/null", "w"))
        assert [r.error for r in db.records] == [None] * 4
        assert all(isinstance(r.cost, int) and r.cost > 0 for r in db.records)
        # the same numbers as a local QEMU (exact instruction counts)
        from tvm_fused.tune.runner import measure_batch

        first = db.records[0]
        local = measure_batch([(task, space(task)[0])], "qemu-mps2-an500")[0]
        assert first.config == config_dict(space(task)[0]) and local.cost == first.cost
    finally:
        import psutil

        for s in servers:
            s.terminate()
        children = psutil.Process(tracker.pid).children(recursive=True)  # its popen worker
        tracker.kill()
        tracker.wait()
        for c in children:
            c.kill()
