"""RPC framing shared with the firmware (tvm_fused/micro/template/src/rpc_protocol.h, docs/rpc.md).

Pure Python, no I/O: encode frames, decode a byte stream into frames (skipping
garbage, resyncing on the magic), and pack/unpack command payloads."""
from __future__ import annotations

import struct
from dataclasses import dataclass

PROTOCOL_VERSION = 1
MAGIC = b"\xa5\x5a"
HEADER_SIZE = 8
CRC_SIZE = 4
MAX_PAYLOAD = 1024  # firmware default; the device reports its own in INFO
REPLY_FLAG = 0x80

CMD_PING = 0x01
CMD_INFO = 0x02
CMD_SET_INPUT = 0x03
CMD_RUN = 0x04
CMD_GET_OUTPUT = 0x05
CMD_STATS = 0x06
CMD_CRC32 = 0x07
CMD_BOOT = 0x7F

STATUS_OK = 0
STATUS_BAD_CRC = 1
STATUS_UNKNOWN_CMD = 2
STATUS_TOO_LONG = 3
STATUS_TIMEOUT = 4
STATUS_RANGE = 5
STATUS_BAD_PAYLOAD = 6
STATUS_MODEL_ERROR = 7
STATUS_CANARY = 8
STATUS_FAULT = 9
STATUS_STACK = 10

STATUS_NAMES = {v: k[len("STATUS_"):].lower() for k, v in globals().items() if k.startswith("STATUS_")}
CMD_NAMES = {v: k[len("CMD_"):].lower() for k, v in globals().items() if k.startswith("CMD_")}
#: statuses that mean "the frame was damaged in transit": the host resends it
TRANSIENT_STATUSES = {STATUS_BAD_CRC, STATUS_TIMEOUT}

RUN_CANARIES_OK = 0x01
RUN_INPUT_INTACT = 0x02
RUN_STACK_OK = 0x04

COUNTER_QEMU_TICKS = 0
COUNTER_CYCLES = 1


def _make_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _make_table()


def crc32(data: bytes, crc: int = 0) -> int:
    """CRC-32/IEEE (reflected 0x04C11DB7, init/xorout 0xFFFFFFFF) == zlib.crc32.

    Written out (not zlib) so the definition matching the C code is visible here."""
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


try:  # same function, C speed, used for big frames
    import zlib as _zlib

    if _zlib.crc32(b"123456789") == crc32(b"123456789"):
        crc32_fast = _zlib.crc32
    else:  # pragma: no cover
        crc32_fast = crc32
except ImportError:  # pragma: no cover
    crc32_fast = crc32


@dataclass
class Frame:
    seq: int
    cmd: int
    status: int
    payload: bytes

    @property
    def is_reply(self) -> bool:
        return bool(self.cmd & REPLY_FLAG)

    @property
    def command(self) -> int:
        return self.cmd & ~REPLY_FLAG


def encode_frame(seq: int, cmd: int, payload: bytes = b"", status: int = 0,
                 max_payload: int = 0xFFFF) -> bytes:
    if len(payload) > max_payload:
        raise ValueError(f"payload of {len(payload)} bytes exceeds max {max_payload}")
    body = struct.pack("<HBBH", seq & 0xFFFF, cmd, status, len(payload)) + bytes(payload)
    return MAGIC + body + struct.pack("<I", crc32_fast(body))


@dataclass
class BadFrame:
    """A frame whose CRC did not match (reported, then skipped)."""
    seq: int
    cmd: int
    raw: bytes


class FrameDecoder:
    """Incremental stream parser: feed() bytes, get complete frames back.

    Bytes before a magic are skipped; a length above max_payload or a CRC mismatch
    drops the candidate frame and rescans from the byte after its magic."""

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self.max_payload = max_payload
        self.buf = bytearray()
        self.skipped = 0

    def feed(self, data: bytes) -> list:
        self.buf += data
        out = []
        while True:
            i = self.buf.find(MAGIC)
            if i < 0:
                keep = 1 if self.buf[-1:] == MAGIC[:1] else 0
                self.skipped += len(self.buf) - keep
                del self.buf[:len(self.buf) - keep]
                return out
            if i:
                self.skipped += i
                del self.buf[:i]
            if len(self.buf) < HEADER_SIZE:
                return out
            seq, cmd, status, length = struct.unpack_from("<HBBH", self.buf, 2)
            if length > self.max_payload:
                del self.buf[:1]
                self.skipped += 1
                continue
            total = HEADER_SIZE + length + CRC_SIZE
            if len(self.buf) < total:
                return out
            raw = bytes(self.buf[:total])
            (crc,) = struct.unpack_from("<I", raw, total - CRC_SIZE)
            if crc32_fast(raw[2:total - CRC_SIZE]) != crc:
                out.append(BadFrame(seq, cmd, raw))
                del self.buf[:1]
                continue
            del self.buf[:total]
            out.append(Frame(seq, cmd, status, raw[HEADER_SIZE:total - CRC_SIZE]))


# ---- payloads -------------------------------------------------------------

def pack_set_input(offset: int, data: bytes) -> bytes:
    return struct.pack("<I", offset) + bytes(data)


def pack_get_output(offset: int, length: int) -> bytes:
    return struct.pack("<IH", offset, length)


def pack_run(repeat: int) -> bytes:
    return struct.pack("<I", repeat)


def _read_str(buf: bytes, off: int):
    n = buf[off]
    return buf[off + 1:off + 1 + n].decode("utf-8", "replace"), off + 1 + n


def unpack_info(p: bytes) -> dict:
    (version, max_payload, arena, insize, outsize, hz, kind, in_nd, out_nd, _r,
     stack) = struct.unpack_from("<HHIIIIBBBBI", p, 0)
    off = 28
    in_shape = list(struct.unpack_from(f"<{in_nd}I", p, off))
    off += 4 * in_nd
    out_shape = list(struct.unpack_from(f"<{out_nd}I", p, off))
    off += 4 * out_nd
    board, off = _read_str(p, off)
    model, off = _read_str(p, off)
    input_sizes, output_sizes = [insize], [outsize]
    if len(p) >= off + 2:  # tensor table: u8 n_in, u8 n_out, u32 bytes per input then per output
        n_in, n_out = p[off], p[off + 1]
        sizes = list(struct.unpack_from(f"<{n_in + n_out}I", p, off + 2))
        input_sizes, output_sizes = sizes[:n_in], sizes[n_in:]
    return {"protocol_version": version, "max_payload": max_payload, "board": board, "model": model,
            "input_sizes": input_sizes, "output_sizes": output_sizes,
            "arena_bytes": arena, "input_bytes": insize, "output_bytes": outsize,
            "input_shape": in_shape, "output_shape": out_shape, "stack_size": stack,
            "counter_hz": hz, "counter_kind": "qemu_ticks" if kind == COUNTER_QEMU_TICKS else "cycles"}


def unpack_run(p: bytes) -> dict:
    runs, rc, flags, kind, _r, total, tmin, tmax, overhead = struct.unpack_from("<IiBBHQQQQ", p, 0)
    return {"runs_done": runs, "model_status": rc, "canaries_ok": bool(flags & RUN_CANARIES_OK),
            "input_intact": bool(flags & RUN_INPUT_INTACT), "stack_ok": bool(flags & RUN_STACK_OK),
            "counter_kind": "qemu_ticks" if kind == COUNTER_QEMU_TICKS else "cycles",
            "total": total, "min": tmin, "max": tmax, "overhead": overhead}


def unpack_stats(p: bytes) -> dict:
    (stack_size, stack_used, arena, static_ram, canaries_ok, stack_overflow, _r, frames_ok, bad_crc,
     timeouts, too_long, unknown_cmd, retried) = struct.unpack_from("<IIIIBBHIIIIII", p, 0)
    return {"stack_size": stack_size, "stack_bytes": stack_used, "arena_bytes": arena,
            "runtime_static_ram_bytes": static_ram, "canaries_ok": bool(canaries_ok),
            "stack_overflow": bool(stack_overflow), "frames_ok": frames_ok, "bad_crc": bad_crc,
            "timeouts": timeouts, "too_long": too_long, "unknown_cmd": unknown_cmd, "retried": retried}


def unpack_fault(p: bytes) -> dict:
    cfsr, hfsr, pc, lr, mmfar, bfar = struct.unpack_from("<6I", p, 0)
    return {"cfsr": cfsr, "hfsr": hfsr, "pc": pc, "lr": lr, "mmfar": mmfar, "bfar": bfar}
