"""The scheduler component: informers → snapshot + queue → `Framework.schedule_one` → Binding.

Mirrors `pkg/scheduler/scheduler.go`, `eventhandlers.go`, `schedule_one.go` and the scheduling queue
(`internal/queue`): pending pods wait in an active queue ordered by priority, then arrival (the
PrioritySort plugin); a pod that fits no node goes to the unschedulable set and is retried, after a
per-pod back-off (1s doubling to 10s), when a node or an assigned pod changes, or after 5 minutes.

A chosen node is *assumed* in the snapshot at once so the next cycle sees the pod there; the Binding
POST runs concurrently. A failed binding forgets the assumption and requeues the pod.

Events and writes follow upstream: `Scheduled` (Normal, "Successfully assigned ns/p to node"),
`FailedScheduling` (Warning, the FitError text) and the pod condition PodScheduled=False/Unschedulable.
Informer handlers only update the snapshot and the queue; they never block or do I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from skiff.api.errors import ApiError
from skiff.api.meta import rfc3339
from skiff.client.events import EventBroadcaster
from skiff.client.interface import NAMESPACES, NODES, PODS, Client, Informer, Patch, Resource
from skiff.scheduler.framework import Framework, ScheduleResult
from skiff.scheduler.plugins import default_framework
from skiff.scheduler.snapshot import Obj, PodInfo, Snapshot

log = logging.getLogger("skiff.scheduler")

DEFAULT_SCHEDULER_NAME = "default-scheduler"
INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_UNSCHEDULABLE_DURATION = 300.0


class InformerSource(Protocol):
    def informer(self, res: Resource) -> Informer: ...


@dataclass(slots=True)
class _Pending:
    info: PodInfo
    attempts: int = 0
    last_attempt: float = 0.0
    unschedulable_since: float = 0.0
    message: str = ""


def responsible_for(pod: Obj, scheduler_name: str = DEFAULT_SCHEDULER_NAME) -> bool:
    """An unassigned, live pod for this scheduler (`eventhandlers.go responsibleForPod` + filters)."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return False
    if (spec.get("schedulerName") or DEFAULT_SCHEDULER_NAME) != scheduler_name:
        return False
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def unschedulable_condition_patch(message: str, now: str, nominated_node: str = "") -> Obj:
    """The strategic-merge status patch setting PodScheduled=False (reason Unschedulable), and
    `nominatedNodeName` when preemption chose a node."""
    patch: Obj = {
        "status": {
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": None,
                    "lastTransitionTime": now,
                }
            ]
        }
    }
    if nominated_node:
        patch["status"]["nominatedNodeName"] = nominated_node
    return patch


def disruption_condition_patch(scheduler_name: str, now: str) -> Obj:
    """The DisruptionTarget condition upstream puts on a victim before deleting it."""
    return {
        "status": {
            "conditions": [
                {
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "PreemptionByScheduler",
                    "message": f"{scheduler_name}: preempting to accommodate a higher priority pod",
                    "lastTransitionTime": now,
                }
            ]
        }
    }


def condition_is(pod: Obj, message: str) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "PodScheduled":
            return bool(
                c.get("status") == "False"
                and c.get("reason") == "Unschedulable"
                and c.get("message") == message
            )
    return False


def binding_for(name: str, node: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }


class Scheduler:
    """Schedules the pods whose `spec.schedulerName` is `scheduler_name` onto nodes.

    `run()` waits for the informers, then loops until cancelled; every task it starts is owned by
    its TaskGroup. `snapshot`, `framework` and the queue are only touched on the event loop.
    """

    def __init__(
        self,
        client: Client,
        informers: InformerSource,
        framework: Framework | None = None,
        scheduler_name: str = DEFAULT_SCHEDULER_NAME,
        clock: Callable[[], float] | None = None,
        max_concurrent_binds: int = 64,
        events: EventBroadcaster | None = None,
    ) -> None:
        self.client = client
        # Without the process's event writer, events are written inline (unit tests).
        self.events = events if events is not None else EventBroadcaster(client)
        self.scheduler_name = scheduler_name
        self.framework = framework or default_framework()
        self.snapshot = Snapshot()
        self.pods = informers.informer(PODS)
        self.nodes = informers.informer(NODES)
        self.namespaces = informers.informer(NAMESPACES)
        self._clock = clock
        self._pending: dict[str, _Pending] = {}
        self._active: list[tuple[int, int, str]] = []
        self._in_active: dict[str, int] = {}  # key → seq of its live heap entry
        self._unschedulable: set[str] = set()
        self._assumed: set[str] = set()
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._binds = asyncio.Semaphore(max_concurrent_binds)
        self._tg: asyncio.TaskGroup | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.scheduled = 0  # counters for tests and metrics
        self.failed = 0
        self.pods.add_handler(self._on_pod)
        self.nodes.add_handler(self._on_node)
        self.namespaces.add_handler(self._on_namespace)

    def now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    # ---- informer handlers (no I/O) ----------------------------------------------------------------
    def _on_node(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        if type_ == "DELETED" or new is None:
            if old is not None:
                self.snapshot.remove_node((old.get("metadata") or {}).get("name", ""))
            return
        self.snapshot.update_node(new)
        self._move_all_to_active()

    def _on_namespace(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        md = obj.get("metadata") or {}
        self.snapshot.set_namespace(
            md.get("name", ""), None if type_ == "DELETED" or new is None else md.get("labels") or {}
        )

    def _on_pod(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        md = obj.get("metadata") or {}
        key = f"{md.get('namespace', '')}/{md.get('name', '')}"
        if type_ == "DELETED" or new is None:
            self._assumed.discard(key)
            self._drop_pending(key)
            if self.snapshot.get_pod(key) is not None:
                self.snapshot.remove_pod(key)
                self._move_all_to_active()
            return
        if (new.get("spec") or {}).get("nodeName"):
            self._assumed.discard(key)
            self._drop_pending(key)
            self.snapshot.update_pod(new)
            if (
                old is None
                or (old.get("spec") or {}).get("nodeName") != new["spec"]["nodeName"]
                or (new.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            ):
                self._move_all_to_active()
            return
        if key in self._assumed:
            return  # our binding is in flight; the bound version will follow
        if not responsible_for(new, self.scheduler_name):
            self._drop_pending(key)
            return
        p = self._pending.get(key)
        if p is None:
            self._pending[key] = _Pending(PodInfo(new))
            self._push(key)
        else:
            p.info = PodInfo(new)
            if key not in self._unschedulable and key not in self._timers:
                self._push(key)

    # ---- queue -------------------------------------------------------------------------------------
    def _push(self, key: str) -> None:
        p = self._pending.get(key)
        if p is None:
            return
        self._unschedulable.discard(key)
        t = self._timers.pop(key, None)
        if t is not None:
            t.cancel()
        seq = next(self._seq)
        self._in_active[key] = seq
        heapq.heappush(self._active, (-p.info.priority, seq, key))
        self._wake.set()

    def _drop_pending(self, key: str) -> None:
        self._pending.pop(key, None)
        self._in_active.pop(key, None)
        self._unschedulable.discard(key)
        t = self._timers.pop(key, None)
        if t is not None:
            t.cancel()

    def _backoff_left(self, p: _Pending) -> float:
        if p.attempts == 0:
            return 0.0
        backoff = min(INITIAL_BACKOFF * 2 ** (p.attempts - 1), MAX_BACKOFF)
        return float(max(0.0, p.last_attempt + backoff - self.now()))

    def _move_all_to_active(self) -> None:
        """A cluster change may make unschedulable pods fit: retry them after their back-off."""
        if not self._unschedulable:
            return
        for key in list(self._unschedulable):
            self._requeue_after_backoff(key)

    def _requeue_after_backoff(self, key: str) -> None:
        p = self._pending.get(key)
        if p is None or key in self._timers:
            return
        self._unschedulable.discard(key)
        delay = self._backoff_left(p)
        if delay <= 0:
            self._push(key)
        else:
            self._timers[key] = asyncio.get_running_loop().call_later(delay, self._timer_fired, key)

    def _timer_fired(self, key: str) -> None:
        self._timers.pop(key, None)
        self._push(key)

    def _pop(self) -> _Pending | None:
        while self._active:
            _, seq, key = heapq.heappop(self._active)
            if self._in_active.get(key) == seq:
                del self._in_active[key]
                return self._pending.get(key)
        return None

    # ---- loop --------------------------------------------------------------------------------------
    async def run(self) -> None:
        while not (self.pods.synced and self.nodes.synced and self.namespaces.synced):
            await asyncio.sleep(0.05)
        # Handlers may have been registered after the initial list: rebuild from the caches (idempotent).
        for ns in self.namespaces.list():
            self._on_namespace("ADDED", None, ns)
        for node in self.nodes.list():
            self._on_node("ADDED", None, node)
        for pod in self.pods.list():
            self._on_pod("ADDED", None, pod)
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            tg.create_task(self._flush_unschedulable())
            await self._schedule_loop(tg)

    async def _flush_unschedulable(self) -> None:
        while True:
            await asyncio.sleep(30)
            now = self.now()
            for key in list(self._unschedulable):
                p = self._pending.get(key)
                if p is not None and now - p.unschedulable_since >= MAX_UNSCHEDULABLE_DURATION:
                    self._requeue_after_backoff(key)

    async def _schedule_loop(self, tg: asyncio.TaskGroup) -> None:
        while True:
            p = self._pop()
            if p is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            self.schedule_pending(p, tg)
            await asyncio.sleep(0)  # let informer events and binds interleave

    def schedule_pending(self, p: _Pending, tg: asyncio.TaskGroup) -> ScheduleResult:
        """One cycle for one pod: decide purely, assume, then hand the writes to tasks."""
        info = p.info
        p.attempts += 1
        p.last_attempt = self.now()
        result = self.framework.schedule_one(info, self.snapshot)
        if result.node is not None:
            key = info.key
            self._drop_pending(key)
            self._assumed.add(key)
            self.snapshot.assume(info, result.node)
            tg.create_task(self._bind(info, result.node, p))
        else:
            self._unschedulable.add(info.key)
            p.unschedulable_since = self.now()
            self.failed += 1
            nominated = result.nomination.node if result.nomination is not None else ""
            if result.nomination is not None:
                tg.create_task(self._preempt(info, result.nomination.node, result.nomination.victims))
            if nominated or p.message != result.message or not condition_is(info.obj, result.message):
                p.message = result.message
                tg.create_task(self._report_unschedulable(info, result.message, nominated))
        return result

    # ---- writes ------------------------------------------------------------------------------------
    async def _bind(self, info: PodInfo, node: str, p: _Pending) -> None:
        async with self._binds:
            try:
                await self.client.create(
                    PODS,
                    info.namespace,
                    binding_for(info.name, node),
                    subresource="binding",
                    name=info.name,
                    field_manager=self.scheduler_name,
                )
            except ApiError as e:
                log.info("binding %s to %s failed: %s", info.key, node, e)
                self._forget(info, p)
                return
            except Exception as e:  # transport errors: same treatment, never silent
                log.warning("binding %s to %s failed: %s", info.key, node, e)
                self._forget(info, p)
                return
        self.scheduled += 1
        await self._event(
            info.obj, "Normal", "Scheduled", f"Successfully assigned {info.key} to {node}", "Binding"
        )

    def _forget(self, info: PodInfo, p: _Pending) -> None:
        key = info.key
        self._assumed.discard(key)
        if self.snapshot.get_pod(key) is info:
            self.snapshot.remove_pod(key)
        info.node = ""
        current = self.pods.get(info.namespace, info.name)
        if current is not None and responsible_for(current, self.scheduler_name):
            p.info = PodInfo(current)
            self._pending[key] = p
            self._unschedulable.add(key)
            self._requeue_after_backoff(key)

    async def _preempt(self, preemptor: PodInfo, node: str, victims: list[PodInfo]) -> None:
        """Evict the victims (`preemption.go prepareCandidate`): condition, delete, event."""
        for v in victims:
            try:
                await self.client.patch(
                    PODS,
                    v.namespace,
                    v.name,
                    Patch("strategic", disruption_condition_patch(self.scheduler_name, rfc3339())),
                    subresource="status",
                    field_manager=self.scheduler_name,
                )
                await self.client.delete(PODS, v.namespace, v.name)
            except ApiError as e:
                if e.code != 404:
                    log.info("preempting %s for %s failed: %s", v.key, preemptor.key, e)
                continue
            await self._event(
                v.obj, "Normal", "Preempted", f"Preempted by pod {preemptor.uid} on node {node}", "Preempting"
            )

    async def _report_unschedulable(self, info: PodInfo, message: str, nominated_node: str = "") -> None:
        await self._event(info.obj, "Warning", "FailedScheduling", message, "Scheduling")
        try:
            await self.client.patch(
                PODS,
                info.namespace,
                info.name,
                Patch("strategic", unschedulable_condition_patch(message, rfc3339(), nominated_node)),
                subresource="status",
                field_manager=self.scheduler_name,
            )
        except ApiError as e:
            log.debug("PodScheduled condition of %s not set: %s", info.key, e)

    async def _event(self, pod: Obj, type_: str, reason: str, message: str, action: str) -> None:
        await self.events.record(pod, type_, reason, message, self.scheduler_name, action)

    def close(self) -> None:
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        with contextlib.suppress(Exception):
            self._wake.set()
