"""What every controller shares: its context and the worker loop around a level-driven `sync(key)`.

Upstream model (`pkg/controller/*`, "Writing Controllers"): informer handlers only enqueue keys;
`sync(key)` reads cached state, decides purely, then writes through the client; an error requeues
the key with rate-limited back-off, success forgets it. Cached objects are read-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from skiff.api.meta import Obj
from skiff.client.events import EventBroadcaster
from skiff.client.interface import Client, Informer, Resource, WorkQueue

log = logging.getLogger("skiff.controllers")


class InformerFactory(Protocol):
    def informer(self, res: Resource) -> Informer:
        """The shared informer of a resource (created and started on first use)."""


@dataclass
class ControllerContext:
    client: Client
    informers: InformerFactory
    new_queue: Callable[[str], WorkQueue]  # name → a fresh rate-limited queue
    clock: Callable[[], float] = field(default=lambda: asyncio.get_running_loop().time())
    # The process's event writer; None → each controller writes its events inline (unit tests).
    events: EventBroadcaster | None = None


def key_of(obj: Obj) -> str:
    md = obj.get("metadata") or {}
    ns = md.get("namespace") or ""
    return f"{ns}/{md.get('name', '')}" if ns else str(md.get("name", ""))


def split_key(key: str) -> tuple[str, str]:
    ns, _, name = key.rpartition("/")
    return ns, name


class Controller:
    """Base: subclasses set `name`, enqueue keys from informer handlers in `setup()`, implement `sync`."""

    name = "controller"
    workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.queue = ctx.new_queue(self.name)
        self.events = ctx.events if ctx.events is not None else EventBroadcaster(ctx.client)

    def setup(self) -> None:
        """Register informer handlers (they only call self.queue.add)."""

    def informers(self) -> Sequence[Informer]:
        """Informers that must be synced before the first sync."""
        return ()

    async def sync(self, key: str) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        while not all(i.synced for i in self.informers()):
            await asyncio.sleep(0.05)
        workers = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            self.queue.shutdown()
            for w in workers:
                w.cancel()
            for w in workers:
                with contextlib.suppress(BaseException):
                    await w

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            if key is None:
                return
            try:
                await self.sync(key)
                self.queue.forget(key)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.info("%s: sync %s failed (%s); retrying", self.name, key, e)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)
