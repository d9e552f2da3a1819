"""SPDY/3.1 framing: the dictionary, frame round trips, hand-built wire bytes, header compression, sessions."""

from __future__ import annotations

import asyncio
import hashlib
import struct
import zlib

import pytest

from skiff.agent import spdy

# sha256 of the 1423-byte dictionary as found in kubectl 1.32's binary (golang spdy headerDictionaryV3).
DICTIONARY_SHA256 = "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"


def test_dictionary_is_the_spdy3_one() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert hashlib.sha256(spdy.DICTIONARY).hexdigest() == DICTIONARY_SHA256
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b",enq=0.")


FRAMES = [
    pytest.param(spdy.DataFrame(1, b"hello"), id="data"),
    pytest.param(spdy.DataFrame(3, b"", fin=True), id="data-fin"),
    pytest.param(spdy.SynStream(1, [("streamtype", "error"), ("port", "80"), ("requestid", "0")]), id="syn-stream"),
    pytest.param(spdy.SynStream(5, [("a", "1")], associated_id=3, priority=2, fin=True, unidirectional=True),
                 id="syn-stream-flags"),
    pytest.param(spdy.SynReply(1, []), id="syn-reply-empty"),
    pytest.param(spdy.SynReply(2, [("x", "y")], fin=True), id="syn-reply-fin"),
    pytest.param(spdy.HeadersFrame(7, [("k", "v")]), id="headers"),
    pytest.param(spdy.RstStream(9, spdy.CANCEL), id="rst"),
    pytest.param(spdy.Settings({spdy.SETTINGS_INITIAL_WINDOW_SIZE: 1 << 20, 4: 100}), id="settings"),
    pytest.param(spdy.Ping(7), id="ping"),
    pytest.param(spdy.GoAway(11, 0), id="goaway"),
    pytest.param(spdy.WindowUpdate(1, 65536), id="window-update"),
]


@pytest.mark.parametrize("frame", FRAMES)
def test_frames_round_trip(frame: spdy.Frame) -> None:
    wire = spdy.encode_frame(frame, spdy.HeaderCompressor())
    decoder = spdy.FrameDecoder()
    # byte by byte: the decoder must keep partial frames
    got: list[spdy.Frame] = []
    for i in range(len(wire)):
        got += decoder.feed(wire[i:i + 1])
    assert got == [frame]


HAND_BUILT = [
    pytest.param(bytes.fromhex("80030006 00000004 00000001"), spdy.Ping(1), id="ping"),
    pytest.param(bytes.fromhex("00000003 01000002 6869"), spdy.DataFrame(3, b"hi", fin=True), id="data-fin"),
    pytest.param(bytes.fromhex("80030009 00000008 00000005 00001000"), spdy.WindowUpdate(5, 4096), id="window"),
    pytest.param(bytes.fromhex("80030003 00000008 00000001 00000005"), spdy.RstStream(1, 5), id="rst"),
    pytest.param(bytes.fromhex("80030007 00000008 00000003 00000000"), spdy.GoAway(3, 0), id="goaway"),
    pytest.param(bytes.fromhex("80030004 0000000c 00000001 00000007 00010000"),
                 spdy.Settings({7: 65536}), id="settings"),
]


@pytest.mark.parametrize(("wire", "frame"), HAND_BUILT)
def test_hand_built_frames(wire: bytes, frame: spdy.Frame) -> None:
    assert spdy.FrameDecoder().feed(wire) == [frame]
    assert spdy.encode_frame(frame, spdy.HeaderCompressor()) == wire


def _raw_block(headers: list[tuple[str, bytes]]) -> bytes:
    out = struct.pack(">I", len(headers))
    for name, value in headers:
        out += struct.pack(">I", len(name)) + name.encode() + struct.pack(">I", len(value)) + value
    return out


def test_header_block_layout_and_shared_context() -> None:
    c = spdy.HeaderCompressor()
    first = c.compress([("streamType", "stdout"), ("X-Multi", "a"), ("x-multi", "b")])
    second = c.compress([("streamtype", "stderr")])
    plain = zlib.decompressobj(zdict=spdy.DICTIONARY)
    assert plain.decompress(first) == _raw_block([("streamtype", b"stdout"), ("x-multi", b"a\0b")])
    assert plain.decompress(second) == _raw_block([("streamtype", b"stderr")])
    # the second block continues the first one's zlib stream: alone it does not inflate
    with pytest.raises(zlib.error):
        zlib.decompressobj(zdict=spdy.DICTIONARY).decompress(second)


def test_decompressor_reads_a_block_made_by_plain_zlib() -> None:
    z = zlib.compressobj(zdict=spdy.DICTIONARY)
    block = z.compress(_raw_block([("port", b"8080"), ("requestid", b"0")])) + z.flush(zlib.Z_SYNC_FLUSH)
    assert spdy.HeaderDecompressor().decompress(block) == [("port", "8080"), ("requestid", "0")]


@pytest.mark.parametrize("wire", [
    pytest.param(bytes.fromhex("80020006 00000004 00000001"), id="spdy2"),
    pytest.param(bytes.fromhex("80030001 0000000a 00000001 00000000 0000") , id="syn-without-header-block"),
])
def test_bad_frames_are_protocol_errors(wire: bytes) -> None:
    with pytest.raises(spdy.SpdyError):
        spdy.FrameDecoder().feed(wire)


async def _pair() -> tuple[spdy.Session, spdy.Session]:
    client: spdy.Session
    server: spdy.Session

    async def to_server(data: bytes) -> None:
        await server.receive(data)

    async def to_client(data: bytes) -> None:
        await client.receive(data)

    client = spdy.Session(to_server, client=True)
    server = spdy.Session(to_client, client=False)
    return client, server


async def test_session_streams_replies_data_and_half_close() -> None:
    client, server = await _pair()
    opening = asyncio.create_task(client.open_stream([("streamtype", "data"), ("port", "80")]))
    incoming = await server.accept()
    assert incoming is not None and incoming.header("streamType") == "data" and incoming.id == 1
    await incoming.reply()
    stream = await opening
    await stream.write(b"x" * 100_000)  # more than one DATA frame
    await stream.close()
    got = bytearray()
    while chunk := await incoming.read():
        got += chunk
    assert bytes(got) == b"x" * 100_000
    await incoming.write(b"back")
    await incoming.close()
    assert await stream.read() == b"back"
    assert await stream.read() == b""


async def test_session_honours_windows_of_a_peer_that_sends_updates() -> None:
    client, server = await _pair()
    opening = asyncio.create_task(client.open_stream([]))
    incoming = await server.accept()
    assert incoming is not None
    await incoming.reply()
    stream = await opening
    await client.receive(spdy.encode_frame(spdy.WindowUpdate(stream.id, 1), spdy.HeaderCompressor()))
    assert client.peer_flow_control
    assert stream.send_window == spdy.INITIAL_WINDOW + 1
    # the server consumed what it read: it sends WINDOW_UPDATE, which grows the client's window back
    await stream.write(b"abc")
    assert stream.send_window == spdy.INITIAL_WINDOW - 2
    assert await incoming.read() == b"abc"
    assert stream.send_window == spdy.INITIAL_WINDOW + 1


async def test_ping_is_answered_and_reset_aborts_the_stream() -> None:
    sent: list[bytes] = []

    async def write(data: bytes) -> None:
        sent.append(data)

    session = spdy.Session(write, client=False)
    c = spdy.HeaderCompressor()
    await session.receive(spdy.encode_frame(spdy.Ping(1), c))
    assert spdy.FrameDecoder().feed(b"".join(sent)) == [spdy.Ping(1)]
    await session.receive(spdy.encode_frame(spdy.SynStream(1, [("streamtype", "data")]), c))
    stream = await session.accept()
    assert stream is not None
    await session.receive(spdy.encode_frame(spdy.RstStream(1, spdy.CANCEL), c))
    assert await stream.read() == b""
    with pytest.raises(ConnectionResetError):
        await stream.write(b"x")
    session.connection_lost()
    assert await session.accept() is None
