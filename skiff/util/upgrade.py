"""Taking over a connection after an HTTP upgrade aiohttp does not speak itself (SPDY, raw proxying).

Shared by the node agent's stream server and the API server's upgrade-aware proxy: after the 101, aiohttp
hands every later chunk of the connection to the parser set with `protocol.set_parser`; `RawReader` is that
parser, with back-pressure.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from aiohttp import web

_PAUSE_ABOVE = 1024 * 1024


class RawReader:
    """Receives a connection's bytes after an upgrade aiohttp does not know (SPDY), via `protocol.set_parser`.

    aiohttp hands every later chunk to `feed_data` and calls `feed_eof` when the peer goes away. Reading is
    paused while more than `_PAUSE_ABOVE` bytes wait, so a fast sender cannot fill our memory.
    """

    def __init__(self, transport: asyncio.Transport | None) -> None:
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._pending = 0
        self._transport = transport
        self._paused = False

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self._queue.put_nowait(bytes(data))
            self._pending += len(data)
            if self._pending > _PAUSE_ABOVE and self._transport is not None and not self._paused:
                self._paused = True
                self._transport.pause_reading()
        return False, b""

    def feed_eof(self) -> None:
        self._queue.put_nowait(b"")

    async def read(self) -> bytes:
        data = await self._queue.get()
        if not data:
            self._queue.put_nowait(b"")
            return b""
        self._pending -= len(data)
        if self._paused and self._pending < _PAUSE_ABOVE // 2 and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return data


def take_over(request: web.Request) -> RawReader:
    """Route the rest of the request's connection into a RawReader (call before answering 101)."""
    reader = RawReader(request.transport)
    assert request.protocol is not None
    request.protocol.set_parser(cast(Any, reader))
    return reader
