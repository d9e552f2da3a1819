"""CRI log files read as the kubelet serves them: partial lines, tail, since, timestamps, limitBytes, follow."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from skiff.agent import logs
from skiff.agent.logs import CRILogParser, LogLine, LogOptions
from skiff.testing import eventually

T0 = "2024-05-01T10:00:00.000000001Z"
T1 = "2024-05-01T10:00:01.5Z"
T2 = "2024-05-01T10:00:02.123456789Z"
FILE = (
    f"{T0} stdout F one\n"
    f"{T1} stderr P par\n"
    f"{T1} stdout F two\n"
    f"{T2} stderr F tial\n"
    f"{T2} stdout F three\n"
).encode()


@pytest.mark.parametrize(("text", "ns"), [
    pytest.param(b"1970-01-01T00:00:00Z", 0, id="epoch"),
    pytest.param(b"1970-01-01T00:00:01.5Z", 1_500_000_000, id="fraction"),
    pytest.param(b"1970-01-01T01:00:00+01:00", 0, id="offset"),
    pytest.param(b"1970-01-01T00:00:00.000000001Z", 1, id="nanos"),
    pytest.param(b"yesterday", None, id="garbage"),
    pytest.param(b"1970-13-01T00:00:00Z", None, id="bad-month"),
])
def test_parse_timestamp(text: bytes, ns: int | None) -> None:
    assert logs.parse_timestamp(text) == ns


@pytest.mark.parametrize(("ns", "text"), [
    pytest.param(0, "1970-01-01T00:00:00Z", id="no-fraction"),
    pytest.param(1_500_000_000, "1970-01-01T00:00:01.5Z", id="trimmed"),
    pytest.param(1, "1970-01-01T00:00:00.000000001Z", id="nanos"),
])
def test_format_timestamp_is_go_rfc3339nano(ns: int, text: str) -> None:
    assert logs.format_timestamp(ns) == text


def test_partial_lines_are_joined_per_stream_across_chunks() -> None:
    parser = CRILogParser()
    got: list[LogLine] = []
    for i in range(0, len(FILE), 7):
        got += parser.feed(FILE[i:i + 7])
    assert [(line.stream, line.content) for line in got] == [
        ("stdout", b"one"), ("stdout", b"two"), ("stderr", b"partial"), ("stdout", b"three")]
    assert got[2].timestamp_ns == logs.parse_timestamp(T1.encode())  # the first fragment's time


def test_malformed_lines_are_skipped_and_unfinished_fragments_flushed() -> None:
    parser = CRILogParser()
    assert parser.feed(b"garbage\n" + f"{T0} stdout P half".encode() + b"\n" + f"{T0} stdout F".encode()) == []
    flushed = parser.flush()
    assert [(line.content, line.complete) for line in flushed] == [(b"half", False)]


SINCE_T1 = logs.parse_timestamp(T1.encode())


@pytest.mark.parametrize(("opts", "out"), [
    pytest.param(LogOptions(), b"one\ntwo\npartial\nthree\n", id="all"),
    pytest.param(LogOptions(tail_lines=2), b"partial\nthree\n", id="tail"),
    pytest.param(LogOptions(tail_lines=0), b"", id="tail-zero"),
    pytest.param(LogOptions(since_ns=SINCE_T1), b"two\npartial\nthree\n", id="since"),
    pytest.param(LogOptions(tail_lines=3, since_ns=logs.parse_timestamp(T2.encode())), b"three\n",
                 id="tail-then-since"),
    pytest.param(LogOptions(limit_bytes=6), b"one\ntw", id="limit-cuts-mid-line"),
    pytest.param(LogOptions(tail_lines=1, timestamps=True), f"{T2} three\n".encode(), id="timestamps"),
    pytest.param(LogOptions(tail_lines=1, timestamps=True, limit_bytes=4), b"2024", id="limit-with-timestamps"),
])
def test_read_log(opts: LogOptions, out: bytes) -> None:
    assert logs.read_log(FILE, opts) == out


async def _collect(path: Path, opts: LogOptions, running: list[bool], out: bytearray | None = None) -> bytes:
    async def still_running() -> bool:
        return running[0]

    out = bytearray() if out is None else out
    async for chunk in logs.stream_log(path, opts, still_running):
        out += chunk
    return bytes(out)


async def test_follow_reads_appended_lines_until_the_container_stops(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "POLL_SECONDS", 0.01)
    path = tmp_path / "0.log"
    path.write_bytes(f"{T0} stdout F first\n".encode())
    running, seen = [True], bytearray()
    task = asyncio.create_task(_collect(path, LogOptions(follow=True), running, seen))

    async def shown(text: bytes) -> bool:
        return text in seen

    await eventually(lambda: shown(b"first\n"), "the existing line")
    with open(path, "ab") as f:
        f.write(f"{T1} stdout P sec".encode())  # an unfinished physical line is not shown yet
        f.flush()
        f.write(f"\n{T1} stdout F ond\n".encode())
    await eventually(lambda: shown(b"second\n"), "the joined appended line")
    running[0] = False
    assert await task == b"first\nsecond\n"


async def test_follow_reopens_a_rotated_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "POLL_SECONDS", 0.01)
    path = tmp_path / "0.log"
    path.write_bytes(f"{T0} stdout F old\n".encode())
    running, seen = [True], bytearray()
    task = asyncio.create_task(_collect(path, LogOptions(follow=True), running, seen))

    async def shown(text: bytes) -> bool:
        return text in seen

    await eventually(lambda: shown(b"old\n"), "the first file's line")
    path.rename(tmp_path / "0.log.20240501-100000")
    path.write_bytes(f"{T1} stdout F new\n".encode())
    await eventually(lambda: shown(b"new\n"), "the rotated file's line")
    running[0] = False
    assert await task == b"old\nnew\n"


async def test_follow_ends_when_the_container_stopped_and_the_file_is_drained(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(FILE + f"{T2} stdout P unfinished".encode())
    assert await _collect(path, LogOptions(follow=True, tail_lines=1), [False]) == b"three\nunfinished"


async def test_follow_stops_at_limit_bytes(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(FILE)
    # still running, but the byte budget ends the stream
    assert await _collect(path, LogOptions(follow=True, limit_bytes=5), [True]) == b"one\nt"
