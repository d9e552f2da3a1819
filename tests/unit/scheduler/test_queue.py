"""The Scheduler's queue and snapshot upkeep driven through informer handlers, with fake informers
and a recording client (no server, no I/O)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sched_helpers import node, pod

from skiff.client.interface import NAMESPACES, NODES, PODS, Handler, Resource
from skiff.scheduler.plugins import default_framework
from skiff.scheduler.scheduler import Scheduler

Obj = dict[str, Any]


class FakeInformer:
    def __init__(self) -> None:
        self.items: dict[str, Obj] = {}
        self.handlers: list[Handler] = []

    def get(self, namespace: str, name: str) -> Obj | None:
        return self.items.get(f"{namespace}/{name}")

    def list(self, namespace: str = "") -> Sequence[Obj]:
        return list(self.items.values())

    def by_index(self, index: str, value: str) -> Sequence[Obj]:
        return []

    def add_index(self, name: str, fn: Any) -> None:
        pass

    def add_handler(self, handler: Handler) -> None:
        self.handlers.append(handler)

    @property
    def synced(self) -> bool:
        return True

    def emit(self, type_: str, obj: Obj) -> None:
        md = obj["metadata"]
        key = f"{md.get('namespace', '')}/{md['name']}"
        old = self.items.get(key)
        if type_ == "DELETED":
            self.items.pop(key, None)
            new = None
        else:
            self.items[key] = obj
            new = obj
        for h in self.handlers:
            h(type_, old, new)


class FakeInformers:
    def __init__(self) -> None:
        self.by_res = {PODS: FakeInformer(), NODES: FakeInformer(), NAMESPACES: FakeInformer()}

    def informer(self, res: Resource) -> FakeInformer:
        return self.by_res[res]


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def make() -> tuple[Scheduler, FakeInformers, Clock]:
    inf, clock = FakeInformers(), Clock()
    sched = Scheduler(None, inf, default_framework(seed=0), clock=clock)  # type: ignore[arg-type]
    return sched, inf, clock


def prio(p: Obj, n: int) -> Obj:
    p["spec"]["priority"] = n
    return p


async def test_priority_then_fifo() -> None:
    sched, inf, _ = make()
    for p in (pod("first"), prio(pod("urgent"), 100), pod("second"), prio(pod("mid"), 5)):
        inf.by_res[PODS].emit("ADDED", p)
    order = []
    while (pending := sched._pop()) is not None:
        order.append(pending.info.name)
    assert order == ["urgent", "mid", "first", "second"]


async def test_ignores_other_schedulers_and_bound_pods_feed_the_snapshot() -> None:
    sched, inf, _ = make()
    inf.by_res[NODES].emit("ADDED", node("a", cpu="2"))
    inf.by_res[PODS].emit("ADDED", pod("other", schedulerName="custom"))
    inf.by_res[PODS].emit("ADDED", pod("bound", "1", node_name="a"))
    assert sched._pop() is None
    assert sched.snapshot.nodes["a"].requested["cpu"] == 1000
    inf.by_res[PODS].emit("DELETED", pod("bound", "1", node_name="a"))
    assert sched.snapshot.nodes["a"].requested["cpu"] == 0


async def test_assumed_pod_is_not_requeued_and_binding_confirms_it() -> None:
    sched, inf, _ = make()
    inf.by_res[NODES].emit("ADDED", node("a", cpu="2"))
    inf.by_res[PODS].emit("ADDED", pod("p", "1"))
    p = sched._pop()
    assert p is not None
    result = sched.framework.schedule_one(p.info, sched.snapshot)
    assert result.node == "a"
    sched._drop_pending("default/p")
    sched._assumed.add("default/p")
    sched.snapshot.assume(p.info, "a")
    inf.by_res[PODS].emit("MODIFIED", pod("p", "1"))  # e.g. a status write before the binding lands
    assert sched._pop() is None
    inf.by_res[PODS].emit("MODIFIED", pod("p", "1", node_name="a"))
    assert "default/p" not in sched._assumed
    assert sched.snapshot.nodes["a"].requested["cpu"] == 1000  # counted once


async def test_unschedulable_pod_retried_on_node_add_after_backoff() -> None:
    sched, inf, clock = make()
    inf.by_res[NODES].emit("ADDED", node("a", cpu="1"))
    inf.by_res[PODS].emit("ADDED", pod("big", "2"))
    p = sched._pop()
    assert p is not None
    p.attempts, p.last_attempt = 1, clock.t
    sched._unschedulable.add(p.info.key)
    inf.by_res[NODES].emit("ADDED", node("b", cpu="4"))  # within the 1s back-off: a timer, not the queue
    assert sched._pop() is None and "default/big" in sched._timers
    sched._timers.pop("default/big").cancel()
    clock.t = 5.0
    sched._unschedulable.add("default/big")
    inf.by_res[NODES].emit("MODIFIED", node("b", cpu="4"))  # back-off over: straight to the active queue
    again = sched._pop()
    assert again is not None and again.info.name == "big"
    assert sched.framework.schedule_one(again.info, sched.snapshot).node == "b"


async def test_deleted_pending_pod_leaves_the_queue() -> None:
    sched, inf, _ = make()
    inf.by_res[PODS].emit("ADDED", pod("p"))
    inf.by_res[PODS].emit("DELETED", pod("p"))
    assert sched._pop() is None
    await asyncio.sleep(0)
