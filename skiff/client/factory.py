"""One shared informer per resource, and fresh work queues, for every component of a process
(client-go's SharedInformerFactory)."""

from __future__ import annotations

import asyncio
import contextlib

from skiff.client.informer import SharedInformer
from skiff.client.interface import Client, Resource
from skiff.client.workqueue import RateLimitingQueue


class InformerFactory:
    """Informers are created on first use and started at once when an event loop is running (else by `start()`)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._informers: dict[Resource, SharedInformer] = {}

    def informer(self, res: Resource) -> SharedInformer:
        inf = self._informers.get(res)
        if inf is None:
            inf = self._informers[res] = SharedInformer(self.client, res)
            with contextlib.suppress(RuntimeError):  # no running loop: start() starts it later
                asyncio.get_running_loop()
                inf.start()
        return inf

    def start(self) -> None:
        for inf in self._informers.values():
            inf.start()

    async def wait_synced(self) -> None:
        for inf in list(self._informers.values()):
            await inf.wait_synced()

    async def stop(self) -> None:
        for inf in list(self._informers.values()):
            await inf.stop()

    @staticmethod
    def new_queue(name: str) -> RateLimitingQueue:
        return RateLimitingQueue(name)
