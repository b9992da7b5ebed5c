"""Distributed measurement through TVM's RPC tracker (``python -m tvm.exec.rpc_tracker``).

``tvm-fused rpc-server --tracker HOST:PORT --key K [--port /dev/ttyACM0]`` starts a
``tvm.rpc.Server`` registered under key K whose sessions expose one global function,
``tvm_fused.tune.measure_export(tar, board) -> json``: it unpacks an exported one-kernel model
(``CompiledModel.export`` as a tar), builds the firmware for the server's board, runs it
(a fresh QEMU per request, or the flashed board on ``--port``) on seeded random input and
returns ``{"cost", "metric"}``. ``TrackerRunner`` is the client side: each measurement asks
the tracker for a free server of the key (``tracker.request``), so ``tune --parallel P``
keeps up to P servers busy at once. As TVM's own RPC server it trusts its network: run it
on a private network only (it builds and runs what it is sent).
"""
from __future__ import annotations

import functools
import io
import json
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

MEASURE_FUNC = "tvm_fused.tune.measure_export"


def _tar_bytes(directory) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(str(directory), arcname="export")
    return buf.getvalue()


def measure_export(tar: bytes, board: str, serial_port: str | None = None) -> str:
    """Server side: build and run one exported model, return JSON ``{"cost", "metric"}``."""
    from ..micro import run_on_device

    with tempfile.TemporaryDirectory(prefix="tvm-fused-rpc-") as work:
        with tarfile.open(fileobj=io.BytesIO(bytes(tar)), mode="r:gz") as t:
            t.extractall(work, filter="data")
        export = Path(work) / "export"
        spec = json.loads((export / "io.json").read_text())["inputs"][0]
        x = np.random.default_rng(0).integers(-128, 128, size=spec["shape"], dtype=np.int8)
        run = run_on_device(export, x, board=board, project_dir=Path(work) / "project", port=serial_port)
    m = run.measurement
    if m.get("cycles") is not None:
        return json.dumps({"cost": int(m["cycles"]), "metric": "cycles"})
    return json.dumps({"cost": int(m["instructions"]), "metric": "instructions"})


def _register(board: str, serial_port: str | None):
    """server_init_callback: runs in the RPC server process, before it listens."""
    import tvm_ffi

    tvm_ffi.register_global_func(MEASURE_FUNC, lambda tar, _board: measure_export(tar, board, serial_port),
                                 override=True)


def start_server(tracker, key: str, board: str, serial_port: str | None = None, host: str = "127.0.0.1",
                 port: int = 9091):
    """A ``tvm.rpc.Server`` registered with the tracker under ``key`` (call .terminate() to stop)."""
    from tvm import rpc

    return rpc.Server(host=host, port=port, port_end=port + 200, tracker_addr=tuple(tracker), key=key,
                      silent=True, server_init_callback=functools.partial(_register, board, serial_port))


def serve(tracker, key: str, board: str, serial_port: str | None = None, host: str = "127.0.0.1") -> None:
    """``tvm-fused rpc-server``: serve until interrupted."""
    server = start_server(tracker, key, board, serial_port, host)
    print(f"rpc-server: {board}{' on ' + serial_port if serial_port else ' (QEMU)'} registered as key "
          f"'{key}' with tracker {tracker[0]}:{tracker[1]}, listening on {host}:{server.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.terminate()


class TrackerRunner:
    """Client side: ``runner(cm, board) -> (cost, metric)`` on any free server of ``key``."""

    def __init__(self, tracker, key: str, session_timeout: float = 600):
        from tvm import rpc

        self.tracker, self.key, self.session_timeout = tuple(tracker), key, session_timeout
        try:
            client = rpc.connect_tracker(*self.tracker)
            summary = client.summary()
        except Exception as e:  # noqa: BLE001
            from ..errors import UsageError

            raise UsageError(f"cannot reach the RPC tracker at {self.tracker[0]}:{self.tracker[1]} ({e}); start "
                             "it with `python -m tvm.exec.rpc_tracker --port PORT`") from None
        self.servers = sum(v.get("free", 0) + v.get("pending", 0)
                           for k, v in summary.get("queue_info", {}).items() if k == key)

    def __call__(self, cm, board):
        from tvm import rpc

        with tempfile.TemporaryDirectory(prefix="tvm-fused-rpc-client-") as work:
            tar = _tar_bytes(cm.export(Path(work) / "export"))
        sess = rpc.connect_tracker(*self.tracker).request(self.key, priority=1,
                                                          session_timeout=self.session_timeout)
        result = json.loads(sess.get_function(MEASURE_FUNC)(bytearray(tar), board))
        return result["cost"], result["metric"]
