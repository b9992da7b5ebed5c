"""Framing and CRC: Python side against known vectors and the C header."""
import re
import zlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tvm_fused.micro import protocol as P

C_HEADER = Path(__file__).resolve().parents[2] / "tvm_fused" / "micro" / "template" / "src" / "rpc_protocol.h"

# (data, CRC-32/IEEE) check values from the CRC catalogue and zlib
CRC_VECTORS = [(b"", 0x00000000), (b"a", 0xE8B7BE43), (b"123456789", 0xCBF43926),
               (b"The quick brown fox jumps over the lazy dog", 0x414FA339)]


def test_crc32_known_vectors():
    for data, crc in CRC_VECTORS:
        assert P.crc32(data) == crc
        assert P.crc32_fast(data) == crc


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_crc32_matches_zlib_and_chains(a, b):
    assert P.crc32(a + b) == zlib.crc32(a + b) == P.crc32(b, P.crc32(a))


def test_constants_match_c_header():
    defines = dict(re.findall(r"#define\s+(RPC_\w+)\s+(0x[0-9A-Fa-f]+|\d+)u?\b", C_HEADER.read_text()))
    value = {k: int(v, 0) for k, v in defines.items()}
    assert bytes([value["RPC_MAGIC0"], value["RPC_MAGIC1"]]) == P.MAGIC
    assert value["RPC_HEADER_SIZE"] == P.HEADER_SIZE and value["RPC_CRC_SIZE"] == P.CRC_SIZE
    assert value["RPC_MAX_PAYLOAD"] == P.MAX_PAYLOAD and value["RPC_REPLY_FLAG"] == P.REPLY_FLAG
    assert value["RPC_PROTOCOL_VERSION"] == P.PROTOCOL_VERSION
    checked = 0
    for k, v in value.items():
        for prefix in ("RPC_CMD_", "RPC_STATUS_", "RPC_RUN_", "RPC_COUNTER_"):
            if k.startswith(prefix):
                assert getattr(P, k[len("RPC_"):]) == v, k
                checked += 1
    assert checked >= 20


def test_frame_layout():
    f = P.encode_frame(0x1234, P.CMD_PING, b"hi")
    assert f[:2] == b"\xa5\x5a" and f[2:4] == b"\x34\x12" and f[4] == P.CMD_PING and f[5] == 0
    assert f[6:8] == b"\x02\x00" and f[8:10] == b"hi"
    assert int.from_bytes(f[10:], "little") == zlib.crc32(f[2:10])


def test_decoder_skips_garbage_and_reports_bad_crc():
    good = P.encode_frame(7, P.CMD_INFO | P.REPLY_FLAG, b"payload")
    bad = bytearray(P.encode_frame(8, P.CMD_RUN | P.REPLY_FLAG, b"xyz"))
    bad[9] ^= 0x01
    d = P.FrameDecoder()
    out = d.feed(b"\x00\xa5garbage\x5a" + bytes(bad) + good)
    frames = [f for f in out if isinstance(f, P.Frame)]
    assert [(f.seq, f.payload) for f in frames] == [(7, b"payload")]
    assert any(isinstance(f, P.BadFrame) and f.seq == 8 for f in out)


def test_decoder_oversized_length_resyncs():
    d = P.FrameDecoder(max_payload=16)
    fake = b"\xa5\x5a\x01\x00\x01\x00\xff\xff"  # len 65535
    assert [f.seq for f in d.feed(fake + P.encode_frame(3, 0x81, b"ok"))] == [3]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=40)), max_size=6),
       st.integers(1, 17))
def test_decoder_recovers_every_frame_from_noisy_stream(pieces, split):
    stream, expected = b"", []
    for i, (garbage, payload) in enumerate(pieces):
        stream += garbage.replace(b"\xa5", b"") + P.encode_frame(i, 0x81, payload)
        expected.append((i, payload))
    d, got = P.FrameDecoder(), []
    for k in range(0, len(stream), split):  # arbitrary chunking of the byte stream
        got += [(f.seq, f.payload) for f in d.feed(stream[k:k + split]) if isinstance(f, P.Frame)]
    assert got == expected
