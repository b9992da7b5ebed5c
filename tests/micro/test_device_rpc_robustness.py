"""RPC robustness on QEMU: damaged, truncated, oversized, unknown and stray
frames are rejected with an error code, the firmware keeps answering, and a
dead or silent device is a clear host-side exception, never a hang."""
import os
import socket
import threading
import time

import numpy as np
import pytest

from conftest import needs_qemu
from tvm_fused.micro import (DeviceDisconnectedError, DeviceError, DeviceTimeoutError, RpcError, Session)
from tvm_fused.micro import protocol as P
from tvm_fused.micro.rpc import RpcClient
from tvm_fused.micro.transport import SerialTransport, TcpTransport

pytestmark = needs_qemu


@pytest.fixture(scope="module")
def session(qemu_project):
    with Session(qemu_project, timeout=2.0) as s:
        yield s


def exchange(session, raw: bytes, timeout: float = 5.0):
    """Write raw bytes; return the first reply frame (None if none within timeout)."""
    session.transport.write(raw)
    dec, deadline = P.FrameDecoder(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        for f in dec.feed(session.transport.read(deadline - time.monotonic())):
            if isinstance(f, P.Frame) and f.is_reply and f.command != P.CMD_BOOT:
                return f
    return None


def still_alive(session):
    assert session.ping(b"still there?") == b"still there?"
    assert session.stats()["canaries_ok"]


def test_corrupted_crc_is_rejected(session):
    frame = bytearray(P.encode_frame(0x1111, P.CMD_PING, b"abc"))
    frame[-1] ^= 0xFF
    reply = exchange(session, bytes(frame))
    assert reply.seq == 0x1111 and reply.status == P.STATUS_BAD_CRC
    still_alive(session)


def test_corrupted_payload_is_rejected(session):
    frame = bytearray(P.encode_frame(0x1112, P.CMD_SET_INPUT, P.pack_set_input(0, b"\x01" * 64)))
    frame[20] ^= 0x40
    before = session.client.call(P.CMD_CRC32, b"\x01")
    assert exchange(session, bytes(frame)).status == P.STATUS_BAD_CRC
    assert session.client.call(P.CMD_CRC32, b"\x01") == before  # nothing written
    still_alive(session)


def test_truncated_frame_times_out_and_parser_resyncs(session):
    frame = P.encode_frame(0x2222, P.CMD_PING, b"x" * 100)
    t0 = time.monotonic()
    reply = exchange(session, frame[:30], timeout=10)
    assert reply is not None and reply.seq == 0x2222 and reply.status == P.STATUS_TIMEOUT
    assert time.monotonic() - t0 < 10
    still_alive(session)


def test_garbage_before_a_frame_is_skipped(session):
    rng = np.random.default_rng(1)
    garbage = rng.integers(0, 256, 500, dtype=np.uint8).tobytes().replace(b"\xa5\x5a", b"")
    garbage += b"\xa5\xa5\x00\xa5"  # stray magic bytes too
    reply = exchange(session, garbage + P.encode_frame(0x3333, P.CMD_PING, b"hello"))
    assert reply.seq == 0x3333 and reply.status == P.STATUS_OK and reply.payload == b"hello"
    still_alive(session)


def test_unknown_command(session):
    with pytest.raises(RpcError, match="unknown_cmd") as e:
        session.client.call(0x55, b"??")
    assert e.value.status == P.STATUS_UNKNOWN_CMD
    still_alive(session)


def test_oversized_length_is_rejected_at_once(session):
    header = b"\xa5\x5a" + (0x4444).to_bytes(2, "little") + bytes([P.CMD_SET_INPUT, 0]) + (0xFFFF).to_bytes(2, "little")
    reply = exchange(session, header + b"\x00" * 64, timeout=5)
    assert reply.seq == 0x4444 and reply.status == P.STATUS_TOO_LONG
    with pytest.raises(ValueError):
        P.encode_frame(1, P.CMD_PING, b"x" * 2000, max_payload=1024)
    still_alive(session)


def test_out_of_range_offsets_do_not_write_outside_tensors(session):
    before = session.client.call(P.CMD_CRC32, b"\x01")
    for offset, n in [(3072, 1), (3000, 100), (0xFFFFFFFF, 2), (0xFFFFFFF0, 32)]:
        with pytest.raises(RpcError, match="range"):
            session.client.call(P.CMD_SET_INPUT, P.pack_set_input(offset, b"\x7f" * n))
    for offset, n in [(100, 1), (50, 51), (0xFFFFFFFF, 1)]:
        with pytest.raises(RpcError, match="range"):
            session.client.call(P.CMD_GET_OUTPUT, P.pack_get_output(offset, n))
    with pytest.raises(RpcError, match="bad_payload"):
        session.client.call(P.CMD_SET_INPUT, b"\x00")
    assert session.client.call(P.CMD_CRC32, b"\x01") == before
    still_alive(session)


def test_error_counters(session):
    st = session.stats()
    assert st["bad_crc"] >= 2 and st["timeouts"] >= 1 and st["too_long"] >= 1 and st["unknown_cmd"] >= 1


class _Flaky:
    """Transport wrapper: damages the first request / swallows the first reply."""

    def __init__(self, inner, corrupt_writes=0, drop_reads=0):
        self.inner, self.url = inner, inner.url
        self.corrupt_writes, self.drop_reads = corrupt_writes, drop_reads

    def write(self, data):
        if self.corrupt_writes:
            self.corrupt_writes -= 1
            data = data[:-1] + bytes([data[-1] ^ 0x5A])
        self.inner.write(data)

    def read(self, timeout):
        data = self.inner.read(timeout)
        if data and self.drop_reads:
            self.drop_reads -= 1
            time.sleep(0.05)
            return b""
        return data


def test_host_retries_a_damaged_request(session):
    client = RpcClient(_Flaky(session.transport, corrupt_writes=1), "qemu", timeout=2.0)
    assert client.call(P.CMD_PING, b"retry me") == b"retry me"
    assert client.stats["retries"] == 1


def test_lost_reply_is_resent_not_reexecuted(session):
    retried = session.stats()["retried"]
    client = RpcClient(_Flaky(session.transport, drop_reads=1), "qemu", timeout=0.5)
    r = P.unpack_run(client.call(P.CMD_RUN, P.pack_run(1)))
    assert r["runs_done"] == 1 and client.stats["retries"] == 1
    assert session.stats()["retried"] == retried + 1  # the device answered from its reply cache


def test_silent_device_raises_timeout_error():
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        t = TcpTransport("127.0.0.1", port)
        conn, _ = srv.accept()
        client = RpcClient(t, "qemu-mps2-an500", timeout=0.2, retries=2)
        t0 = time.monotonic()
        with pytest.raises(DeviceTimeoutError, match=rf"no answer from qemu-mps2-an500 on tcp://127.0.0.1:{port} .*"
                                                     r"after 3 tries.*is the firmware running\?"):
            client.call(P.CMD_PING, b"?")
        assert time.monotonic() - t0 < 2
        conn.close()
        t.close()


def test_device_killed_mid_run(qemu_project):
    with Session(qemu_project) as s:
        s.set_input(np.zeros(3072, np.int8))
        launcher = s.launcher
        threading.Timer(0.5, launcher.kill).start()
        t0 = time.monotonic()
        with pytest.raises(DeviceDisconnectedError, match="connection"):
            s.run(repeat=10**8)
        assert time.monotonic() - t0 < 10
        proc = launcher.proc
    assert s.launcher is None and proc.poll() is not None  # reaped, no orphan


def test_qemu_is_stopped_when_the_with_block_raises(qemu_project):
    with pytest.raises(KeyboardInterrupt):
        with Session(qemu_project) as s:
            proc = s.launcher.proc
            raise KeyboardInterrupt
    assert proc.poll() is not None


def test_missing_serial_port_is_a_clear_error(qemu_project):
    with pytest.raises(DeviceError, match="cannot open"):
        SerialTransport("/dev/does-not-exist-ttyACM9")
    assert not os.path.exists("/dev/does-not-exist-ttyACM9")
