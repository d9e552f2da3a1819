"""SharedInformer and InformerFactory over the in-process client: sync, handler events, indexes, relist."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from skiff.apiserver.server import ControlPlane
from skiff.client.factory import InformerFactory
from skiff.client.https import HTTPSClient
from skiff.client.informer import SharedInformer, index_node_name, index_owner
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import PODS, DeleteOptions, ListOptions, Obj, Patch, Resource, WatchEvent
from skiff.client.workqueue import RateLimitingQueue

CONFIGMAPS = Resource("", "v1", "configmaps")
GUARD = 20.0

Event = tuple[str, str | None, str | None]  # (type, old name@rv, new name@rv)


def cm(name: str, ns: str = "default", **data: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": dict(data),
    }


def pod(name: str, node: str = "", owner: str = "") -> Obj:
    md: Obj = {"name": name}
    if owner:
        md["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": owner, "controller": True}
        ]
    spec: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec}


def names(objs: object) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objs)  # type: ignore[attr-defined]


class Recorder:
    """A handler that records events and lets a test await the next one."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[tuple[str, Obj | None, Obj | None]] = asyncio.Queue()

    def __call__(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        self.events.put_nowait((type_, old, new))

    async def next(self) -> tuple[str, str | None, str | None]:
        type_, old, new = await asyncio.wait_for(self.events.get(), GUARD)
        return type_, old["metadata"]["name"] if old else None, new["metadata"]["name"] if new else None


@pytest.fixture
async def informer(local: InProcessClient) -> AsyncIterator[SharedInformer]:
    inf = SharedInformer(local, CONFIGMAPS, "default")
    yield inf
    await inf.stop()


async def test_syncs_existing_objects_and_replays_them_to_late_handlers(
    local: InProcessClient, informer: SharedInformer
) -> None:
    await local.create(CONFIGMAPS, "default", cm("a"))
    await local.create(CONFIGMAPS, "default", cm("b"))
    assert not informer.synced
    informer.start()
    await asyncio.wait_for(informer.wait_synced(), GUARD)
    assert names(informer.list()) == ["a", "b"]
    assert informer.get("default", "a") is not None and informer.get("default", "zzz") is None
    rec = Recorder()
    informer.add_handler(rec)
    assert sorted([await rec.next(), await rec.next()]) == [("ADDED", None, "a"), ("ADDED", None, "b")]


async def test_handlers_see_add_modify_delete_in_order(
    local: InProcessClient, informer: SharedInformer
) -> None:
    rec = Recorder()
    informer.add_handler(rec)
    informer.start()
    await asyncio.wait_for(informer.wait_synced(), GUARD)
    await local.create(CONFIGMAPS, "default", cm("a", k="1"))
    assert await rec.next() == ("ADDED", None, "a")
    await local.patch(CONFIGMAPS, "default", "a", Patch("merge", {"data": {"k": "2"}}))
    type_, old, new = await asyncio.wait_for(rec.events.get(), GUARD)
    assert type_ == "MODIFIED" and old is not None and new is not None
    assert (old["data"], new["data"]) == ({"k": "1"}, {"k": "2"})
    assert informer.get("default", "a") is new
    await local.delete(CONFIGMAPS, "default", "a")
    assert await rec.next() == ("DELETED", "a", None)
    assert informer.list() == []


async def test_namespaced_informer_ignores_other_namespaces(
    local: InProcessClient, informer: SharedInformer
) -> None:
    await local.create(CONFIGMAPS, "kube-system", cm("other", "kube-system"))
    await local.create(CONFIGMAPS, "default", cm("mine"))
    informer.start()
    await asyncio.wait_for(informer.wait_synced(), GUARD)
    assert names(informer.list()) == ["mine"]


@pytest.mark.parametrize(
    ("obj", "want"),
    [
        pytest.param(pod("p", node="n1"), ["n1"], id="bound-pod"),
        pytest.param(pod("p"), [], id="unbound-pod"),
    ],
)
def test_node_name_index(obj: Obj, want: list[str]) -> None:
    assert list(index_node_name(obj)) == want


@pytest.mark.parametrize(
    ("refs", "want"),
    [
        pytest.param([], [], id="no-owner"),
        pytest.param([{"uid": "u1", "controller": False}], [], id="owner-not-controller"),
        pytest.param([{"uid": "u1"}, {"uid": "u2", "controller": True}], ["u2"], id="controller-ref"),
    ],
)
def test_owner_index(refs: list[Obj], want: list[str]) -> None:
    assert list(index_owner({"metadata": {"ownerReferences": refs}})) == want


async def test_indexes_follow_updates(local: InProcessClient) -> None:
    inf = SharedInformer(local, PODS)
    inf.add_index("image", lambda o: [c["image"] for c in o["spec"]["containers"]])
    rec = Recorder()
    inf.add_handler(rec)
    inf.start()
    try:
        await asyncio.wait_for(inf.wait_synced(), GUARD)
        await local.create(PODS, "default", pod("p1", owner="rs-1"))
        await local.create(PODS, "kube-system", pod("p2", node="n1"))
        await rec.next()
        await rec.next()
        assert names(inf.by_index("namespace", "default")) == ["p1"]
        assert names(inf.list("kube-system")) == ["p2"]
        assert names(inf.by_index("nodeName", "n1")) == ["p2"]
        assert names(inf.by_index("owner", "rs-1")) == ["p1"]
        assert names(inf.by_index("image", "busybox")) == ["p1", "p2"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": "p1"},
            "target": {"name": "n1"},
        }
        await local.create(PODS, "default", binding, subresource="binding", name="p1")
        assert (await rec.next())[0] == "MODIFIED"
        assert names(inf.by_index("nodeName", "n1")) == ["p1", "p2"]
        await local.delete(PODS, "kube-system", "p2", DeleteOptions(grace_period_seconds=0))
        assert await rec.next() == ("DELETED", "p2", None)
        assert names(inf.by_index("nodeName", "n1")) == ["p1"]
        assert inf.by_index("namespace", "kube-system") == []
    finally:
        await inf.stop()


class GatedClient(InProcessClient):
    """In-process client whose watches a test can cut, and whose next watch waits for the test's go-ahead."""

    def __init__(self, inner: InProcessClient) -> None:
        super().__init__(inner.backend)
        self.gate = asyncio.Event()
        self.gate.set()
        self.cut = asyncio.Event()
        self.watch_from: list[str] = []

    async def watch(
        self, res: Resource, namespace: str = "", opts: ListOptions | None = None
    ) -> AsyncIterator[WatchEvent]:
        await self.gate.wait()
        self.watch_from.append((opts or ListOptions()).resource_version)
        stream = super().watch(res, namespace, opts).__aiter__()
        while True:
            nxt = asyncio.ensure_future(stream.__anext__())
            cut = asyncio.ensure_future(self.cut.wait())
            done, _ = await asyncio.wait({nxt, cut}, return_when=asyncio.FIRST_COMPLETED)
            if cut in done:
                nxt.cancel()
                with contextlib.suppress(BaseException):
                    await nxt
                self.cut.clear()
                await stream.aclose()  # type: ignore[attr-defined]
                return
            cut.cancel()
            try:
                ev = nxt.result()
            except StopAsyncIteration:
                return
            yield ev


async def test_rewatches_from_last_resource_version_when_the_stream_ends(local: InProcessClient) -> None:
    client = GatedClient(local)
    inf = SharedInformer(client, CONFIGMAPS, "default")
    rec = Recorder()
    inf.add_handler(rec)
    inf.start()
    try:
        await asyncio.wait_for(inf.wait_synced(), GUARD)
        a = await local.create(CONFIGMAPS, "default", cm("a"))
        await rec.next()
        client.gate.clear()
        client.cut.set()
        b = await local.create(CONFIGMAPS, "default", cm("b"))
        client.gate.set()
        assert await rec.next() == ("ADDED", None, "b")
        assert client.watch_from[-1] == a["metadata"]["resourceVersion"]
        assert inf.lists == 1  # no relist needed
        assert inf.last_resource_version == b["metadata"]["resourceVersion"]
    finally:
        await inf.stop()


async def test_relists_after_compaction_and_reports_what_changed(
    local: InProcessClient, plane: ControlPlane
) -> None:
    client = GatedClient(local)
    await local.create(CONFIGMAPS, "default", cm("keep", v="1"))
    inf = SharedInformer(client, CONFIGMAPS, "default")
    rec = Recorder()
    inf.start()
    try:
        await asyncio.wait_for(inf.wait_synced(), GUARD)
        await local.create(CONFIGMAPS, "default", cm("gone"))
        inf.add_handler(rec)
        assert sorted([await rec.next(), await rec.next()]) == [
            ("ADDED", None, "gone"),
            ("ADDED", None, "keep"),
        ]
        client.gate.clear()
        client.cut.set()  # the watch ends; the next one waits at the gate
        await local.delete(CONFIGMAPS, "default", "gone")
        await local.patch(CONFIGMAPS, "default", "keep", Patch("merge", {"data": {"v": "2"}}))
        await local.create(CONFIGMAPS, "default", cm("new"))
        await plane.store.compact(plane.store.revision)  # the informer's resourceVersion is now too old
        client.gate.set()
        got = sorted([await rec.next() for _ in range(3)])
        assert got == [("ADDED", None, "new"), ("DELETED", "gone", None), ("MODIFIED", "keep", "keep")]
        assert inf.lists == 2
        assert names(inf.list()) == ["keep", "new"]
        assert inf.get("default", "keep")["data"] == {"v": "2"}  # type: ignore[index]
    finally:
        await inf.stop()


async def test_handler_failure_does_not_stop_the_informer(
    local: InProcessClient, informer: SharedInformer
) -> None:
    def broken(type_: str, old: Obj | None, new: Obj | None) -> None:
        raise RuntimeError("boom")

    rec = Recorder()
    informer.add_handler(broken)
    informer.add_handler(rec)
    informer.start()
    await asyncio.wait_for(informer.wait_synced(), GUARD)
    await local.create(CONFIGMAPS, "default", cm("a"))
    await local.create(CONFIGMAPS, "default", cm("b"))
    assert [await rec.next(), await rec.next()] == [("ADDED", None, "a"), ("ADDED", None, "b")]


async def test_factory_shares_one_started_informer_per_resource(local: InProcessClient) -> None:
    factory = InformerFactory(local)
    try:
        pods = factory.informer(PODS)
        assert factory.informer(PODS) is pods
        assert factory.informer(CONFIGMAPS) is not pods
        await asyncio.wait_for(factory.wait_synced(), GUARD)
        assert pods.synced
        q = factory.new_queue("x")
        assert isinstance(q, RateLimitingQueue) and q is not factory.new_queue("x")
    finally:
        await factory.stop()


async def test_informer_over_https(remote: HTTPSClient) -> None:
    await remote.create(CONFIGMAPS, "default", cm("before"))
    inf = SharedInformer(remote, CONFIGMAPS, "default")
    rec = Recorder()
    inf.add_handler(rec)
    inf.start()
    try:
        await asyncio.wait_for(inf.wait_synced(), GUARD)
        assert await rec.next() == ("ADDED", None, "before")
        await remote.create(CONFIGMAPS, "default", cm("after"))
        assert await rec.next() == ("ADDED", None, "after")
        await remote.delete(CONFIGMAPS, "default", "before")
        assert await rec.next() == ("DELETED", "before", None)
        assert names(inf.list()) == ["after"]
    finally:
        await inf.stop()
