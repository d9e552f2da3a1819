"""The in-process client: the `Client` contract over a backend living in the same process.

Inside `skiff server`, components talk to the registries through this client (no HTTP, no JSON round
trip) with the semantics of `HTTPSClient`: same objects in the served version, same `ApiError`s, same
watch events. The backend is `skiff.apiserver.local.LocalBackend`; this module only knows the
`Backend` protocol below (skiff.client must not import skiff.apiserver).

Ownership: objects returned (and watch event objects) are fresh copies owned by the caller; objects
passed in are never mutated nor retained.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from skiff.client.interface import DeleteOptions, ListOptions, Obj, Patch, Resource, WatchEvent


class BackendEvent(Protocol):
    """A watch event as the backend yields it (converted to `WatchEvent` here, at the layer boundary)."""

    @property
    def type(self) -> str: ...

    @property
    def object(self) -> Obj: ...


class Backend(Protocol):
    """The API verbs of a co-located API server, already in served-version terms (errors: ApiError)."""

    async def get(self, res: Resource, namespace: str, name: str, subresource: str = "") -> Obj: ...

    async def list(self, res: Resource, namespace: str, opts: ListOptions) -> Obj: ...

    async def watch(self, res: Resource, namespace: str, opts: ListOptions) -> AsyncIterator[BackendEvent]:
        """Starts the watch (errors such as 410 raise here) and returns its event stream."""
        ...

    async def create(
        self,
        res: Resource,
        namespace: str,
        obj: Obj,
        *,
        subresource: str = "",
        name: str = "",
        field_manager: str = "",
    ) -> Obj: ...

    async def update(
        self, res: Resource, namespace: str, obj: Obj, *, subresource: str = "", field_manager: str = ""
    ) -> Obj: ...

    async def patch(
        self,
        res: Resource,
        namespace: str,
        name: str,
        patch: Patch,
        *,
        subresource: str = "",
        field_manager: str = "",
        dry_run: bool = False,
    ) -> Obj: ...

    async def delete(self, res: Resource, namespace: str, name: str, opts: DeleteOptions) -> Obj | None: ...


class InProcessClient:
    """`Client` over a `Backend`; closing it ends nothing but the client's own watches."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._closed = False

    async def get(self, res: Resource, namespace: str, name: str) -> Obj:
        return await self.backend.get(res, namespace, name)

    async def list(self, res: Resource, namespace: str = "", opts: ListOptions | None = None) -> Obj:
        return await self.backend.list(res, namespace, opts or ListOptions())

    async def watch(
        self, res: Resource, namespace: str = "", opts: ListOptions | None = None
    ) -> AsyncIterator[WatchEvent]:
        """Events after `opts.resource_version` (all current objects as ADDED first when it is ""); a 410 for a
        compacted resourceVersion raises ApiError on the first iteration, as over HTTPS."""
        events = await self.backend.watch(res, namespace, opts or ListOptions())
        try:
            async for ev in events:
                if self._closed:
                    return
                yield WatchEvent(ev.type, ev.object)
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def create(
        self,
        res: Resource,
        namespace: str,
        obj: Obj,
        *,
        subresource: str = "",
        name: str = "",
        field_manager: str = "",
    ) -> Obj:
        return await self.backend.create(
            res, namespace, obj, subresource=subresource, name=name, field_manager=field_manager
        )

    async def update(
        self, res: Resource, namespace: str, obj: Obj, *, subresource: str = "", field_manager: str = ""
    ) -> Obj:
        return await self.backend.update(
            res, namespace, obj, subresource=subresource, field_manager=field_manager
        )

    async def patch(
        self,
        res: Resource,
        namespace: str,
        name: str,
        patch: Patch,
        *,
        subresource: str = "",
        field_manager: str = "",
        dry_run: bool = False,
    ) -> Obj:
        return await self.backend.patch(
            res, namespace, name, patch, subresource=subresource, field_manager=field_manager, dry_run=dry_run
        )

    async def delete(
        self, res: Resource, namespace: str, name: str, opts: DeleteOptions | None = None
    ) -> Obj | None:
        return await self.backend.delete(res, namespace, name, opts or DeleteOptions())

    async def close(self) -> None:
        self._closed = True
