"""Container logs in the CRI log format, read the way the kubelet serves `pods/log`.

A CRI log line is `<RFC3339Nano timestamp> <stdout|stderr> <P|F> <text>\\n` (upstream
`pkg/kubelet/kuberuntime/logs/logs.go`): `P` is a fragment of a longer line (the runtime splits at 16 KiB),
`F` ends it. We join fragments per stream into one line, so output without timestamps is byte-identical to
upstream's; with `timestamps=true` each joined line carries its first fragment's time.

Options mirror `PodLogOptions`: tailLines is applied first (the last N lines of the file), then sinceTime/
sinceSeconds keeps lines at or after the instant, limitBytes truncates the output, follow keeps reading until
the container stops and the file is drained (reopening the path if the runtime rotated it).
The parsing and selection half is pure; `stream_log` does the file I/O (in a thread, never on the loop).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

_TS = re.compile(
    rb"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"
)
POLL_SECONDS = 0.2
READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class LogLine:
    """One joined log line: `content` without its newline; `complete` is False for a trailing fragment."""

    timestamp_ns: int
    stream: str
    content: bytes
    complete: bool = True


@dataclass(frozen=True)
class LogOptions:
    tail_lines: int | None = None
    since_ns: int | None = None  # absolute, nanoseconds since the epoch
    timestamps: bool = False
    limit_bytes: int | None = None
    follow: bool = False


def parse_timestamp(text: bytes) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 timestamp with optional fraction; None when malformed."""
    m = _TS.match(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac, zone = m.group(7), m.group(8)
    try:
        base = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
    except ValueError:
        return None
    offset = 0
    if zone != b"Z":
        sign = -1 if zone[:1] == b"-" else 1
        offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    nanos = int((frac or b"0").ljust(9, b"0"))
    return (int(base.timestamp()) - offset) * 1_000_000_000 + nanos


def format_timestamp(ns: int) -> str:
    """Go's RFC3339Nano in UTC (trailing zeros of the fraction dropped), as kubectl shows `--timestamps`."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    base = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{nanos:09d}".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


def parse_cri_line(line: bytes) -> tuple[int, str, bool, bytes] | None:
    """(timestamp ns, stream, partial, content) of one physical line without its newline; None if malformed."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    ts = parse_timestamp(parts[0])
    stream = parts[1].decode("ascii", "replace")
    if ts is None or stream not in ("stdout", "stderr") or parts[2] not in (b"P", b"F"):
        return None
    return ts, stream, parts[2] == b"P", parts[3] if len(parts) == 4 else b""


class CRILogParser:
    """Incremental parser: feed file bytes in any chunking, get complete joined lines back.

    Keeps an unterminated physical line and open `P` fragments (per stream) between calls; `flush()` hands out
    what is pending, marked incomplete, for a reader that stops before the runtime finished the line.
    """

    def __init__(self) -> None:
        self._rest = b""
        self._partial: dict[str, tuple[int, list[bytes]]] = {}

    def feed(self, data: bytes) -> list[LogLine]:
        lines = (self._rest + data).split(b"\n")
        self._rest = lines.pop()
        out: list[LogLine] = []
        for raw in lines:
            parsed = parse_cri_line(raw)
            if parsed is None:
                continue  # upstream logs and skips a malformed line
            ts, stream, partial, content = parsed
            first_ts, pieces = self._partial.pop(stream, (ts, []))
            pieces.append(content)
            if partial:
                self._partial[stream] = (first_ts, pieces)
            else:
                out.append(LogLine(first_ts, stream, b"".join(pieces)))
        return out

    def flush(self) -> list[LogLine]:
        parsed = parse_cri_line(self._rest) if self._rest else None
        self._rest = b""
        if parsed is not None:
            ts, stream, _, content = parsed
            first_ts, pieces = self._partial.pop(stream, (ts, []))
            self._partial[stream] = (first_ts, [*pieces, content])
        out = [LogLine(ts, stream, b"".join(pieces), complete=False) for stream, (ts, pieces) in self._partial.items()]
        self._partial.clear()
        return sorted(out, key=lambda line: line.timestamp_ns)


def select(lines: list[LogLine], opts: LogOptions) -> list[LogLine]:
    """tailLines first (upstream seeks to the last N lines), then the since filter (`!ts.Before(since)`)."""
    if opts.tail_lines is not None:
        lines = lines[-opts.tail_lines:] if opts.tail_lines > 0 else []
    if opts.since_ns is not None:
        since = opts.since_ns
        lines = [line for line in lines if line.timestamp_ns >= since]
    return lines


def render(line: LogLine, timestamps: bool) -> bytes:
    text = line.content + (b"\n" if line.complete else b"")
    return (format_timestamp(line.timestamp_ns).encode() + b" " + text) if timestamps else text


class Limiter:
    """limitBytes: passes output through until the budget is spent, then cuts (mid-line, as upstream)."""

    def __init__(self, limit: int | None) -> None:
        self.left = limit

    def take(self, data: bytes) -> bytes:
        if self.left is None:
            return data
        data = data[: self.left]
        self.left -= len(data)
        return data

    @property
    def done(self) -> bool:
        return self.left is not None and self.left <= 0


def render_all(lines: Iterable[LogLine], opts: LogOptions, limiter: Limiter) -> bytes:
    out = bytearray()
    for line in lines:
        if limiter.done:
            break
        out += limiter.take(render(line, opts.timestamps))
    return bytes(out)


def read_log(data: bytes, opts: LogOptions) -> bytes:
    """The whole answer for a non-follow request over the file content `data` (pure)."""
    parser = CRILogParser()
    lines = parser.feed(data) + parser.flush()
    return render_all(select(lines, opts), opts, Limiter(opts.limit_bytes))


def _read_from(path: Path, offset: int, inode: int = 0) -> tuple[bytes, int, int]:
    """(bytes from `offset`, the file's inode, the offset they start at); a missing file reads as empty.
    A different inode than `inode` (rotated) or a shorter file (truncated) is read from its start."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_size < offset or (inode and st.st_ino != inode):
                offset = 0
            f.seek(offset)
            return f.read(), st.st_ino, offset
    except FileNotFoundError:
        return b"", inode, offset


async def stream_log(path: Path, opts: LogOptions,
                     still_running: Callable[[], Awaitable[bool]] | None = None) -> AsyncIterator[bytes]:
    """Yield the log answer in chunks; with `follow`, keep going until `still_running()` is False and the file
    is drained. A rotated file (new inode at `path`) is reopened from its start."""
    data, inode, _ = await asyncio.to_thread(_read_from, path, 0)
    parser = CRILogParser()
    limiter = Limiter(opts.limit_bytes)
    first = select(parser.feed(data), opts)
    if not opts.follow:
        first += select(parser.flush(), LogOptions(since_ns=opts.since_ns))
    chunk = render_all(first, opts, limiter)
    if chunk:
        yield chunk
    if not opts.follow:
        return
    offset = len(data)
    since = LogOptions(since_ns=opts.since_ns)
    while not limiter.done:
        running = True if still_running is None else await still_running()
        data, inode, start = await asyncio.to_thread(_read_from, path, offset, inode)
        offset = start + len(data)
        lines = select(parser.feed(data), since)
        if not running:
            lines += select(parser.flush(), since)
        chunk = render_all(lines, opts, limiter)
        if chunk:
            yield chunk
        if not running:
            return
        if not data:
            await asyncio.sleep(POLL_SECONDS)
