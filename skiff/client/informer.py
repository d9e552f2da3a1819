"""Shared informers: a list+watch cache of one resource with indexes and event handlers.

After client-go `tools/cache` (reflector.go, shared_informer.go, thread_safe_store.go): list with
resourceVersion "" (a consistent read), replace the cache (emitting ADDED / MODIFIED / DELETED for
the difference), then watch from the list's resourceVersion with bookmarks; when a watch ends
normally, watch again from the last seen resourceVersion; on 410 Expired (or an ERROR event) relist.
Other failures relist after a back-off (0.1 s doubling to 30 s, reset once a list succeeds).

Handlers are called synchronously, in event order, as `(type, old, new)`:
ADDED `(None, obj)`, MODIFIED `(old, new)`, DELETED `(last known state, None)`. They must only enqueue.
Cached objects are shared: callers must treat them as read-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from skiff.api.errors import ApiError
from skiff.client.interface import Client, Handler, ListOptions, Obj, Resource

log = logging.getLogger("skiff.client.informer")

IndexFunc = Callable[[Obj], Sequence[str]]


def object_key(obj: Obj) -> str:
    """`namespace/name`, or `name` for cluster-scoped objects (the controllers' key_of)."""
    md = obj.get("metadata") or {}
    ns = md.get("namespace") or ""
    return f"{ns}/{md.get('name', '')}" if ns else str(md.get("name", ""))


def index_namespace(obj: Obj) -> Sequence[str]:
    return [str((obj.get("metadata") or {}).get("namespace") or "")]


def index_node_name(obj: Obj) -> Sequence[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return [str(node)] if node else []


def index_owner(obj: Obj) -> Sequence[str]:
    """The uid of the controller ownerReference (upstream's controllerRef), if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("uid"):
            return [str(ref["uid"])]
    return []


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class _Relist(Exception):
    pass


class SharedInformer:
    """`Informer` of one resource (in `namespace`, or all namespaces with ""). `start()` runs it as a task."""

    def __init__(
        self,
        client: Client,
        res: Resource,
        namespace: str = "",
        *,
        label_selector: str = "",
        field_selector: str = "",
    ) -> None:
        self.client = client
        self.res = res
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self._items: dict[str, Obj] = {}
        self._index_funcs: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, dict[str, Obj]]] = {}
        self._handlers: list[Handler] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_resource_version = ""
        self.lists = 0  # how many times the cache was (re)listed: observability and tests
        for name, fn in (
            ("namespace", index_namespace),
            ("nodeName", index_node_name),
            ("owner", index_owner),
        ):
            self.add_index(name, fn)

    # --- Informer ------------------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> Obj | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def list(self, namespace: str = "") -> Sequence[Obj]:
        if namespace:
            return self.by_index("namespace", namespace)
        return list(self._items.values())

    def by_index(self, index: str, value: str) -> Sequence[Obj]:
        try:
            idx = self._indexes[index]
        except KeyError:
            raise KeyError(f"informer {self.res.plural}: no index {index!r}") from None
        return list((idx.get(value) or {}).values())

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Register an index; objects already cached are indexed at once. Replacing an index is an error."""
        if name in self._index_funcs:
            raise ValueError(f"informer {self.res.plural}: index {name!r} already exists")
        self._index_funcs[name] = fn
        idx: dict[str, dict[str, Obj]] = {}
        self._indexes[name] = idx
        for key, obj in self._items.items():
            for value in fn(obj):
                idx.setdefault(value, {})[key] = obj

    def add_handler(self, handler: Handler) -> None:
        """Handlers added after objects are cached get an ADDED for each of them first (as upstream)."""
        self._handlers.append(handler)
        for obj in list(self._items.values()):
            self._call(handler, "ADDED", None, obj)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the list+watch task on the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"informer-{self.res.plural}"
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            lists_before = self.lists
            try:
                await self._list_and_watch()
            except asyncio.CancelledError:
                raise
            except _Relist:
                continue
            except ApiError as e:
                if e.code == 410:
                    continue
                log.warning("informer %s: %s (%s); relisting", self.res.plural, e.message, e.code)
            except Exception as e:
                log.warning("informer %s: %s; relisting", self.res.plural, e or type(e).__name__)
            if self.lists != lists_before:
                backoff = 0.1  # the list worked: this is a new failure, not a repeated one
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    def _opts(self, rv: str) -> ListOptions:
        return ListOptions(
            label_selector=self.label_selector, field_selector=self.field_selector, resource_version=rv
        )

    async def _list_and_watch(self) -> None:
        lst = await self.client.list(self.res, self.namespace, self._opts(""))
        self.lists += 1
        self._replace(lst.get("items") or [])
        rv = str((lst.get("metadata") or {}).get("resourceVersion") or "")
        self.last_resource_version = rv
        self._synced.set()
        quick_ends = 0
        while True:
            events = 0
            async for ev in self.client.watch(self.res, self.namespace, self._opts(rv)):
                events += 1
                if ev.type == "ERROR":
                    code = ev.object.get("code")
                    if code == 410:
                        raise _Relist()
                    raise ApiError(
                        int(code or 500),
                        str(ev.object.get("reason") or "InternalError"),
                        str(ev.object.get("message") or "watch error"),
                        ev.object.get("details"),
                    )
                new_rv = _rv(ev.object)
                if ev.type == "BOOKMARK":
                    pass
                elif ev.type in ("ADDED", "MODIFIED"):
                    self._upsert(ev.object)
                elif ev.type == "DELETED":
                    self._remove(object_key(ev.object), ev.object)
                if new_rv:
                    rv = new_rv
                    self.last_resource_version = rv
            # A stream that ends at once (server closing, store closed) must not become a busy loop that
            # never yields to the event loop: back off before watching again.
            quick_ends = 0 if events else quick_ends + 1
            await asyncio.sleep(min(0.05 * 2**quick_ends, 5.0) if quick_ends else 0)

    # --- cache updates -------------------------------------------------------------------------------

    def _replace(self, items: Sequence[Obj]) -> None:
        fresh = {object_key(o): o for o in items}
        for key in [k for k in self._items if k not in fresh]:
            self._remove(key, None)
        for obj in fresh.values():
            self._upsert(obj)

    def _upsert(self, obj: Obj) -> None:
        key = object_key(obj)
        old = self._items.get(key)
        if old is not None and _rv(old) == _rv(obj) and _rv(obj):
            return  # a relist of an unchanged object: nothing new to tell
        self._unindex(key, old)
        self._items[key] = obj
        self._index(key, obj)
        self._dispatch("MODIFIED" if old is not None else "ADDED", old, obj)

    def _remove(self, key: str, final: Obj | None) -> None:
        old = self._items.pop(key, None)
        if old is None:
            return
        self._unindex(key, old)
        self._dispatch("DELETED", final if final is not None else old, None)

    def _index(self, key: str, obj: Obj) -> None:
        for name, fn in self._index_funcs.items():
            idx = self._indexes[name]
            for value in fn(obj):
                idx.setdefault(value, {})[key] = obj

    def _unindex(self, key: str, obj: Obj | None) -> None:
        if obj is None:
            return
        for name, fn in self._index_funcs.items():
            idx = self._indexes[name]
            for value in fn(obj):
                bucket = idx.get(value)
                if bucket is not None:
                    bucket.pop(key, None)
                    if not bucket:
                        del idx[value]

    def _dispatch(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        for h in self._handlers:
            self._call(h, type_, old, new)

    def _call(self, handler: Handler, type_: str, old: Obj | None, new: Obj | None) -> None:
        try:
            handler(type_, old, new)
        except Exception:
            log.exception("informer %s: handler failed on %s", self.res.plural, type_)
