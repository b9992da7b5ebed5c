"""RPC client: one request, one reply, with timeouts and same-seq retries.

A retry reuses the sequence number, so a firmware that already executed the
request (only its reply was lost) resends the cached reply instead of running
again. Replies with another seq are stale (answers to an earlier try) and dropped."""
from __future__ import annotations

import random
import time

from . import protocol as P
from .errors import (CanaryError, DeviceDisconnectedError, DeviceFaultError, DeviceTimeoutError,
                     RpcError)


class RpcClient:
    def __init__(self, transport, device_name: str = "device", timeout: float = 2.0, retries: int = 3,
                 max_payload: int = P.MAX_PAYLOAD):
        self.transport = transport
        self.device_name = device_name
        self.timeout = timeout
        self.retries = retries
        self.decoder = P.FrameDecoder(max_payload)
        # random start: a board that kept running between sessions must not
        # mistake our first request for a retry of the previous session's last one
        self.seq = random.randrange(1, 0xFFFF)
        self.boot_seen = False
        self.stats = {"retries": 0, "stale": 0, "bad_frames": 0}

    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFFFF
        if self.seq == 0xFFFF or self.seq == 0:  # reserved: boot frame / "seq unknown"
            self.seq = 1
        return self.seq

    def call(self, cmd: int, payload: bytes = b"", timeout: float | None = None,
             retries: int | None = None) -> bytes:
        """Send one request and return the reply payload (status OK), else raise."""
        timeout = self.timeout if timeout is None else timeout
        tries = 1 + (self.retries if retries is None else retries)
        seq = self._next_seq()
        frame = P.encode_frame(seq, cmd, payload)
        last_error = "no reply"
        for attempt in range(tries):
            if attempt:
                self.stats["retries"] += 1
            self.transport.write(frame)
            reply = self._wait_reply(seq, cmd, timeout)
            if reply is None:
                self.decoder.buf.clear()  # drop a half frame so the next try resyncs
                continue
            if reply.status in P.TRANSIENT_STATUSES:
                last_error = f"device reported {P.STATUS_NAMES[reply.status]}"
                continue
            if reply.status != P.STATUS_OK:
                raise self._error(cmd, reply)
            return reply.payload
        raise DeviceTimeoutError(
            f"no answer from {self.device_name} on {self.transport.url} to '{P.CMD_NAMES.get(cmd, cmd)}' "
            f"after {tries} tries ({last_error}, {timeout:.1f}s each); is the firmware running?")

    def _wait_reply(self, seq: int, cmd: int, timeout: float):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            data = self.transport.read(left)
            for f in self.decoder.feed(data) if data else ():
                if isinstance(f, P.BadFrame):
                    self.stats["bad_frames"] += 1
                    continue
                if f.cmd == P.CMD_BOOT | P.REPLY_FLAG:
                    self.boot_seen = True
                    continue
                if f.seq == seq and f.cmd == (cmd | P.REPLY_FLAG):
                    return f
                if f.seq == seq and f.status in P.TRANSIENT_STATUSES:
                    return f  # our frame arrived damaged: cmd byte may be garbled too
                self.stats["stale"] += 1

    def _error(self, cmd: int, reply: P.Frame) -> RpcError:
        name = P.STATUS_NAMES.get(reply.status, f"status {reply.status}")
        what = f"{self.device_name}: '{P.CMD_NAMES.get(cmd, hex(cmd))}' failed: {name}"
        if reply.status == P.STATUS_FAULT:
            f = P.unpack_fault(reply.payload)
            return DeviceFaultError(
                f"{what} (CPU fault at pc=0x{f['pc']:08x}, cfsr=0x{f['cfsr']:08x}, hfsr=0x{f['hfsr']:08x}); "
                "the device is halted", reply.status, reply.payload)
        if reply.status == P.STATUS_CANARY:
            return CanaryError(f"{what}: the model wrote outside its arena (canary words overwritten)",
                               reply.status, reply.payload)
        detail = reply.payload.decode("ascii", "replace") if reply.payload and reply.status not in (
            P.STATUS_MODEL_ERROR, P.STATUS_STACK) else ""
        return RpcError(f"{what}{': ' + detail if detail else ''}", reply.status, reply.payload)

    def wait_boot(self, timeout: float) -> bool:
        """Consume the firmware's boot frame if it comes within `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.boot_seen and time.monotonic() < deadline:
            try:
                data = self.transport.read(deadline - time.monotonic())
            except DeviceDisconnectedError:
                raise
            for f in self.decoder.feed(data) if data else ():
                if isinstance(f, P.Frame) and f.cmd == P.CMD_BOOT | P.REPLY_FLAG:
                    self.boot_seen = True
        return self.boot_seen
