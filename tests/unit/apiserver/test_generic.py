"""Generic registry semantics over the real SQLite store: metadata, preconditions, finalizers, watch, paging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skiff.api.errors import ApiError
from skiff.api.meta import Obj
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.core.configmaps import ConfigMapStrategy
from skiff.apiserver.registry.generic import DeleteOptions, ListOptions, Registry, WatchEvent, WriteOptions
from skiff.apiserver.registry.strategy import Strategy
from skiff.storage.sqlite import SQLiteStore

W = WriteOptions(field_manager="test")


class Widget(Strategy):
    """A namespaced kind with spec/status split, like most workload kinds."""

    info = ResourceInfo("example.com", "v1", "Widget", "widgets", "widget", True)
    status_subresource = True


class Namespaces(Strategy):
    info = ResourceInfo("", "v1", "Namespace", "namespaces", "namespace", False)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(str(tmp_path / "state.db"))
    await s.start()
    yield s
    await s.close()


@pytest.fixture
async def regs(store: SQLiteStore) -> dict[str, Registry]:
    ns = Registry(store, Namespaces())

    async def lookup(name: str) -> Obj | None:
        return await ns.try_get("", name)

    await ns.create("", {"metadata": {"name": "default"}}, W)
    return {
        "ns": ns,
        "cm": Registry(store, ConfigMapStrategy(), lookup),
        "widget": Registry(store, Widget(), lookup),
    }


def cm(name: str, **data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


async def test_create_sets_metadata(regs: dict[str, Registry]) -> None:
    obj = await regs["cm"].create("default", {"metadata": {"generateName": "cfg-"}}, W)
    md = obj["metadata"]
    assert md["name"].startswith("cfg-") and len(md["name"]) == len("cfg-") + 5
    assert md["namespace"] == "default" and md["uid"] and md["creationTimestamp"].endswith("Z")
    assert int(md["resourceVersion"]) > 0
    got = await regs["cm"].get("default", md["name"])
    assert got["metadata"]["resourceVersion"] == md["resourceVersion"]


async def test_create_errors(regs: dict[str, Registry]) -> None:
    await regs["cm"].create("default", cm("a"), W)
    with pytest.raises(ApiError) as e:
        await regs["cm"].create("default", cm("a"), W)
    assert (e.value.code, e.value.reason, e.value.message) == (409, "AlreadyExists", 'configmaps "a" already exists')
    with pytest.raises(ApiError) as e:
        await regs["cm"].create("nowhere", cm("b"), W)
    assert e.value.code == 404 and e.value.message == 'namespaces "nowhere" not found'
    with pytest.raises(ApiError) as e:
        await regs["cm"].create("default", cm("Bad_Name"), W)
    assert e.value.code == 422
    causes = e.value.details["causes"]  # type: ignore[index]
    assert causes[0]["field"] == "metadata.name" and causes[0]["reason"] == "FieldValueInvalid"
    assert await regs["cm"].try_get("default", "Bad_Name") is None


async def test_update_precondition_and_noop(regs: dict[str, Registry]) -> None:
    created = await regs["cm"].create("default", cm("u", a="1"), W)
    rv = created["metadata"]["resourceVersion"]
    same, _ = await regs["cm"].update("default", "u", created, W)
    assert same["metadata"]["resourceVersion"] == rv  # nothing changed: no write
    changed = {**created, "data": {"a": "2"}}
    new, created_now = await regs["cm"].update("default", "u", changed, W)
    assert not created_now and int(new["metadata"]["resourceVersion"]) > int(rv)
    with pytest.raises(ApiError) as e:
        await regs["cm"].update("default", "u", {**changed, "data": {"a": "3"}}, W)  # stale rv
    assert e.value.code == 409 and e.value.reason == "Conflict"
    assert e.value.message.startswith('Operation cannot be fulfilled on configmaps "u"')


async def test_generation_and_status_split(regs: dict[str, Registry]) -> None:
    reg = regs["widget"]
    w = await reg.create("default", {"metadata": {"name": "w"}, "spec": {"size": 1}, "status": {"ready": True}}, W)
    assert w["metadata"]["generation"] == 1 and "status" not in w  # clients cannot set status on create
    w2, _ = await reg.update("default", "w", {**w, "metadata": {**w["metadata"], "labels": {"a": "b"}}}, W)
    assert w2["metadata"]["generation"] == 1  # metadata change: same generation
    w3, _ = await reg.update("default", "w", {**w2, "spec": {"size": 2}, "status": {"ready": True}}, W)
    assert w3["metadata"]["generation"] == 2 and "status" not in w3
    s = await reg.update("default", "w", {**w3, "spec": {"size": 99}, "status": {"ready": True}},
                         WriteOptions(field_manager="ctl", subresource="status"))
    assert s[0]["status"] == {"ready": True} and s[0]["spec"] == {"size": 2}  # status update ignores spec
    assert s[0]["metadata"]["generation"] == 2


async def test_finalizers_hold_deletion_until_removed(regs: dict[str, Registry]) -> None:
    reg = regs["cm"]
    obj = await reg.create("default", {**cm("f"), "metadata": {"name": "f", "finalizers": ["example.com/hold"]}}, W)
    pending, removed = await reg.delete("default", "f", DeleteOptions())
    assert not removed and pending["metadata"]["deletionTimestamp"]
    assert (await reg.get("default", "f"))["metadata"]["deletionTimestamp"]
    live = await reg.get("default", "f")
    live["metadata"]["finalizers"] = []
    await reg.update("default", "f", live, W)
    assert await reg.try_get("default", "f") is None
    assert obj["metadata"]["uid"]


async def test_delete_preconditions_and_dry_run(regs: dict[str, Registry]) -> None:
    reg = regs["cm"]
    await reg.create("default", cm("d"), W)
    with pytest.raises(ApiError) as e:
        await reg.delete("default", "d", DeleteOptions(preconditions={"uid": "other"}))
    assert e.value.code == 409
    _, removed = await reg.delete("default", "d", DeleteOptions(dry_run=True))
    assert removed and await reg.try_get("default", "d") is not None
    await reg.create("default", cm("e"), WriteOptions(dry_run=True, field_manager="x"))
    assert await reg.try_get("default", "e") is None


async def test_list_pagination_is_consistent_snapshot(regs: dict[str, Registry]) -> None:
    reg = regs["cm"]
    for i in range(7):
        await reg.create("default", {**cm(f"p{i}"), "metadata": {"name": f"p{i}", "labels": {"odd": str(i % 2)}}}, W)
    first = await reg.list("default", ListOptions(limit=3))
    assert [o["metadata"]["name"] for o in first["items"]] == ["p0", "p1", "p2"]
    assert first["metadata"]["remainingItemCount"] == 4
    await reg.create("default", cm("p00"), W)  # written after the snapshot: not in later pages
    second = await reg.list("default", ListOptions(limit=10, continue_token=first["metadata"]["continue"]))
    assert [o["metadata"]["name"] for o in second["items"]] == ["p3", "p4", "p5", "p6"]
    assert "continue" not in second["metadata"]
    odd = await reg.list("default", ListOptions(label_selector="odd=1", limit=2))
    assert [o["metadata"]["name"] for o in odd["items"]] == ["p1", "p3"]
    rest = await reg.list("default", ListOptions(label_selector="odd=1", limit=2, continue_token=odd["metadata"]["continue"]))
    assert [o["metadata"]["name"] for o in rest["items"]] == ["p5"]


async def _take(events: AsyncIterator[WatchEvent], n: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    async for ev in events:
        out.append((ev.type, ev.object["metadata"].get("name", "")))
        if len(out) == n:
            break
    return out


async def test_watch_from_revision_with_selector_transitions(regs: dict[str, Registry]) -> None:
    reg = regs["cm"]
    start = (await reg.list("default", ListOptions()))["metadata"]["resourceVersion"]
    events = await reg.watch("default", ListOptions(label_selector="app=x", resource_version=start))
    a = await reg.create("default", {**cm("a"), "metadata": {"name": "a", "labels": {"app": "x"}}}, W)
    await reg.create("default", cm("other"), W)  # never matches: no event
    a["metadata"]["labels"] = {"app": "y"}
    a, _ = await reg.update("default", "a", a, W)  # stops matching → DELETED
    a["metadata"]["labels"] = {"app": "x"}
    await reg.update("default", "a", a, W)  # matches again → ADDED
    await reg.delete("default", "a", DeleteOptions())
    got = await _take(events, 4)
    assert got == [("ADDED", "a"), ("DELETED", "a"), ("ADDED", "a"), ("DELETED", "a")]


async def test_watch_without_rv_starts_with_current_state(regs: dict[str, Registry]) -> None:
    reg = regs["cm"]
    await reg.create("default", cm("s1"), W)
    events = await reg.watch("default", ListOptions())
    await reg.create("default", cm("s2"), W)
    assert await _take(events, 2) == [("ADDED", "s1"), ("ADDED", "s2")]


async def test_compaction_gives_410_and_relist_recovers(regs: dict[str, Registry], store: SQLiteStore) -> None:
    reg = regs["cm"]
    first = await reg.create("default", cm("c0"), W)
    old_rv = first["metadata"]["resourceVersion"]
    for i in range(1, 5):
        await reg.create("default", cm(f"c{i}"), W)
    await store.compact(store.revision)
    with pytest.raises(ApiError) as e:
        await reg.watch("default", ListOptions(resource_version=old_rv))
    assert e.value.code == 410 and e.value.reason == "Expired"
    # An informer re-lists and watches from the new list revision.
    lst = await reg.list("default", ListOptions())
    assert {o["metadata"]["name"] for o in lst["items"]} >= {"c0", "c4"}
    events = await reg.watch("default", ListOptions(resource_version=lst["metadata"]["resourceVersion"]))
    await reg.create("default", cm("c5"), W)
    assert await _take(events, 1) == [("ADDED", "c5")]


async def test_send_initial_events_ends_with_bookmark(regs: dict[str, Registry]) -> None:
    reg = regs["cm"]
    await reg.create("default", cm("i1"), W)
    events = await reg.watch("default", ListOptions(), send_initial_events=True)
    got: list[Any] = []
    async for ev in events:
        got.append(ev)
        if ev.type == "BOOKMARK":
            break
    assert [e.type for e in got] == ["ADDED", "BOOKMARK"]
    assert got[-1].object["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_deployment_annotation_change_bumps_generation(store: SQLiteStore, regs: dict[str, Registry]) -> None:
    from skiff.apiserver.registry.apps.deployments import DeploymentStrategy

    reg = Registry(store, DeploymentStrategy(), regs["cm"]._namespace_lookup)
    d = await reg.create("default", {
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
    }, W)
    d["metadata"]["annotations"] = {"note": "x"}
    d2, _ = await reg.update("default", "d", d, W)
    assert d2["metadata"]["generation"] == 2
    cm_ = await regs["cm"].create("default", cm("g"), W)
    cm_["metadata"]["annotations"] = {"note": "x"}
    assert "generation" not in (await regs["cm"].update("default", "g", cm_, W))[0]["metadata"]
