"""Simulated nodes (KWOK-like): Node objects with leases and status, and a fake kubelet for their pods.

No container runs and no packet is sent: pods bound to a simulated node are reported Running/Ready
(Job pods complete), deleted pods are stopped and confirmed. Many nodes share one process, one pod
watch and a bounded pool of writers, so 1,000 nodes and bursts of 10,000 pods stay cheap:

* heartbeats are staggered: on each tick (1 s) only the nodes whose index falls in that tick's slot
  renew their Lease (every 10 s) or post their conditions (every 60 s);
* pods come from one list+watch over all namespaces, kept only when bound to one of our nodes;
  their keys go through a deduplicating queue drained by `concurrency` workers, each of which
  re-reads the cached pod, asks the pure `sim_status.decide`, and writes once (merge patch on
  `/status`, or a delete with grace period 0 and the pod's uid as precondition).

The decisions and every object written are built in `skiff.agent.sim_status` (pure, tested by tables).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from skiff.agent import sim_status as s
from skiff.api.errors import ApiError
from skiff.api.meta import Obj
from skiff.client.interface import (
    LEASES,
    NODES,
    PODS,
    Client,
    DeleteOptions,
    ListOptions,
    Patch,
)

log = logging.getLogger("skiff.agent.simulated")

FIELD_MANAGER = "skiff-sim-kubelet"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key(pod: Obj) -> str:
    md = pod.get("metadata") or {}
    return f"{md.get('namespace', '')}/{md.get('name', '')}"


def _rv(obj: Obj) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


@dataclass
class _Node:
    params: s.NodeParams
    pool: s.PodIPPool
    running: bool = True
    uid: str = ""
    conditions: list[Obj] = field(default_factory=list)  # as last posted
    lease: Obj | None = None  # as last written (its resourceVersion makes the renewal conditional)
    registered: bool = False
    resumed: bool = False  # started again: re-read the node's conditions and post status at the next tick


class SimulatedNodes:
    """`count` simulated nodes named `<prefix><i>`; `run()` registers them and serves them until cancelled.

    `stop_node`/`start_node` pause and resume one node's heartbeats and pod handling (its pods stay as
    they are while it is stopped, as with a kubelet that lost its connection).
    """

    def __init__(
        self,
        client: Client,
        count: int,
        prefix: str = "sim-node-",
        zones: int = 3,
        cpu: str = "8",
        memory: str = "32Gi",
        pods: int = 110,
        *,
        concurrency: int = 32,
        tick: float = 1.0,
        lease_seconds: float = s.LEASE_RENEW_SECONDS,
        status_seconds: float = s.STATUS_REPORT_SECONDS,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.client = client
        self.concurrency = max(1, concurrency)
        self.tick = tick
        self.lease_slots = max(1, round(lease_seconds / tick))
        self.status_slots = max(1, round(status_seconds / tick))
        self.clock = clock
        self.nodes: dict[str, _Node] = {
            p.name: _Node(p, s.PodIPPool(p.pod_cidr))
            for p in s.plan_nodes(prefix, count, zones, cpu, memory, pods)
        }
        self.ready = asyncio.Event()  # nodes registered and the pod cache listed
        self._pods: dict[str, Obj] = {}  # ns/name → pod bound to one of our nodes
        self._deleting_seen: dict[str, dt.datetime] = {}  # pod uid → when we first saw deletionTimestamp
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._writes = asyncio.Semaphore(self.concurrency)  # heartbeat writes in flight

    # --- public -----------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._register_all()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._reflect_pods())
                tg.create_task(self._heartbeats())
                for _ in range(self.concurrency):
                    tg.create_task(self._pod_worker())
        finally:
            for t in self._timers.values():
                t.cancel()
            self._timers.clear()

    def stop_node(self, name: str) -> None:
        """Stop heartbeats and pod handling of one node (KeyError for a name that is not ours)."""
        self.nodes[name].running = False

    def start_node(self, name: str) -> None:
        """Resume a stopped node: lease and status at the next tick, its pods re-examined now."""
        node = self.nodes[name]
        if node.running:
            return
        node.running = True
        node.resumed = True
        for key, pod in list(self._pods.items()):
            if (pod.get("spec") or {}).get("nodeName") == name:
                self._enqueue(key)

    def node_names(self) -> list[str]:
        return list(self.nodes)

    # --- registration and heartbeats ---------------------------------------------------------------

    async def _register_all(self) -> None:
        async def one(node: _Node) -> None:
            async with self._writes:
                while True:
                    try:
                        await self._register(node)
                        return
                    except Exception as e:  # API or transport failure: registration is retried until it works
                        log.warning("registering %s failed: %s; retrying", node.params.name, e)
                    await asyncio.sleep(1.0)

        await asyncio.gather(*(one(n) for n in self.nodes.values()))

    async def _register(self, node: _Node) -> None:
        """Create the Node (or adopt an existing one: its podCIDR wins, status is refreshed), then its Lease."""
        now = self.clock()
        p = node.params
        try:
            created = await self.client.create(NODES, "", s.node_object(p, now), field_manager=FIELD_MANAGER)
        except ApiError as e:
            if e.code != 409:
                raise
            created = await self.client.get(NODES, "", p.name)
            cidr = (created.get("spec") or {}).get("podCIDR")
            if cidr and cidr != p.pod_cidr:
                node.pool = s.PodIPPool(cidr)
            previous = (created.get("status") or {}).get("conditions")
            body = {"status": s.node_status(p, previous, now)}
            created = await self.client.patch(
                NODES, "", p.name, Patch("merge", body), subresource="status", field_manager=FIELD_MANAGER
            )
        node.uid = str((created.get("metadata") or {}).get("uid", ""))
        node.conditions = list((created.get("status") or {}).get("conditions") or [])
        node.registered = True
        await self._renew_lease(node)

    async def _heartbeats(self) -> None:
        """One tick per `tick` seconds; each node renews its lease in its slot of `lease_slots` ticks and
        posts status in its slot of `status_slots` ticks. A tick's writes finish before the next starts."""
        loop = asyncio.get_running_loop()
        n = 0
        next_at = loop.time()
        while True:
            n += 1
            next_at += self.tick
            writes = []
            for node in self.nodes.values():
                if not node.running or not node.registered:
                    continue
                i = node.params.index
                if i % self.lease_slots == n % self.lease_slots:
                    writes.append(self._guarded(self._renew_lease(node), f"lease of {node.params.name}"))
                if node.resumed or i % self.status_slots == n % self.status_slots:
                    writes.append(self._guarded(self._post_status(node), f"status of {node.params.name}"))
            if writes:
                await asyncio.gather(*writes)
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def _guarded(self, write: Coroutine[Any, Any, None], what: str) -> None:
        """Run one heartbeat write under the write bound; a failure is logged and retried next slot."""
        async with self._writes:
            try:
                await write
            except Exception as e:  # API or transport failure: the next heartbeat slot retries
                log.info("%s not written: %s", what, e)

    async def _renew_lease(self, node: _Node) -> None:
        """Conditional update of the lease we last wrote; re-read on conflict, create when missing."""
        name = node.params.name
        if not node.running:
            return
        now = self.clock()
        if node.lease is None:
            try:
                node.lease = await self.client.get(LEASES, s.LEASE_NAMESPACE, name)
            except ApiError as e:
                if e.code != 404:
                    raise
                obj = s.lease_object(name, node.uid, now)
                node.lease = await self.client.create(
                    LEASES, s.LEASE_NAMESPACE, obj, field_manager=FIELD_MANAGER
                )
                return
        try:
            node.lease = await self.client.update(
                LEASES, s.LEASE_NAMESPACE, s.renewed_lease(node.lease, name, now), field_manager=FIELD_MANAGER
            )
        except ApiError as e:
            if e.code in (404, 409):
                node.lease = None  # re-read (or re-create) on the next renewal
            raise

    async def _post_status(self, node: _Node) -> None:
        """Heartbeat the conditions. After a resume, the stored ones are read first: while the node was
        away the node lifecycle controller may have set them Unknown, and Ready flips back now."""
        if not node.running:
            return
        if node.resumed:
            current = await self.client.get(NODES, "", node.params.name)
            node.conditions = list((current.get("status") or {}).get("conditions") or [])
            node.resumed = False
        body = {"status": {"conditions": s.node_conditions(node.conditions, self.clock())}}
        updated = await self.client.patch(
            NODES,
            "",
            node.params.name,
            Patch("merge", body),
            subresource="status",
            field_manager=FIELD_MANAGER,
        )
        node.conditions = list((updated.get("status") or {}).get("conditions") or [])

    # --- pod cache ---------------------------------------------------------------------------------

    def _ours(self, pod: Obj) -> bool:
        return (pod.get("spec") or {}).get("nodeName") in self.nodes

    def _store(self, pod: Obj) -> None:
        """Cache a pod (never an older version than the cached one) and remember an IP it already has."""
        key = _key(pod)
        old = self._pods.get(key)
        if old is not None and (old.get("metadata") or {}).get("uid") == (pod.get("metadata") or {}).get(
            "uid"
        ):
            if _rv(pod) < _rv(old):
                return
        elif old is not None:
            self._forget(old)
        self._pods[key] = pod
        status = pod.get("status") or {}
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        node = self.nodes[(pod.get("spec") or {})["nodeName"]]
        if status.get("phase") in ("Succeeded", "Failed"):
            node.pool.release(uid)
        elif status.get("podIP") and not (pod.get("spec") or {}).get("hostNetwork"):
            node.pool.claim(uid, status["podIP"])

    def _forget(self, pod: Obj) -> None:
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        node = self.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        if node is not None:
            node.pool.release(uid)
        self._deleting_seen.pop(uid, None)

    def _drop(self, key: str) -> None:
        pod = self._pods.pop(key, None)
        if pod is not None:
            self._forget(pod)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    async def _relist(self) -> str:
        lst = await self.client.list(PODS, "")
        seen = set()
        for pod in lst.get("items") or []:
            if self._ours(pod):
                key = _key(pod)
                seen.add(key)
                self._store(pod)
                self._enqueue(key)
        for key in [k for k in self._pods if k not in seen]:
            self._drop(key)
        return str((lst.get("metadata") or {}).get("resourceVersion") or "")

    async def _reflect_pods(self) -> None:
        """List, then watch from the list's resourceVersion; relist on 410, reconnect on other failures."""
        rv = ""
        while True:
            try:
                if not rv:
                    rv = await self._relist()
                    self.ready.set()
                async for ev in self.client.watch(PODS, "", ListOptions(resource_version=rv)):
                    if ev.type == "ERROR":
                        code = ev.object.get("code")
                        log.info("pod watch error: %s", ev.object.get("message"))
                        if code == 410:
                            rv = ""
                        break
                    rv = str((ev.object.get("metadata") or {}).get("resourceVersion") or rv)
                    if ev.type == "BOOKMARK" or not self._ours(ev.object):
                        continue
                    key = _key(ev.object)
                    if ev.type == "DELETED":
                        self._drop(key)
                    else:
                        self._store(ev.object)
                        self._enqueue(key)
            except ApiError as e:
                if e.code == 410:
                    rv = ""
                    continue
                log.info("pod watch failed: %s; retrying", e)
                await asyncio.sleep(1.0)
            except Exception as e:  # transport failure (HTTPS): reconnect from the last resourceVersion
                log.info("pod watch failed: %s; retrying", e)
                await asyncio.sleep(1.0)

    # --- pod work ----------------------------------------------------------------------------------

    def _enqueue(self, key: str) -> None:
        """Deduplicated; a key being processed is queued again after it is done (upstream workqueue)."""
        if key in self._queued:
            return
        self._queued.add(key)
        if key not in self._processing:
            self._queue.put_nowait(key)

    def _enqueue_after(self, key: str, delay: float) -> None:
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            self._timers.pop(key, None)
            self._enqueue(key)

        self._timers[key] = asyncio.get_running_loop().call_later(max(0.0, delay), fire)

    async def _pod_worker(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._processing.add(key)
            try:
                await self._sync_pod(key)
            except ApiError as e:
                if e.code == 404:
                    pass
                elif e.code == 409:
                    self._enqueue_after(key, 0.1)
                else:
                    log.info("pod %s: %s; retrying", key, e)
                    self._enqueue_after(key, 1.0)
            except s.PoolExhausted as e:
                log.warning("pod %s: %s", key, e)
                self._enqueue_after(key, 5.0)
            except Exception as e:  # transport failure or a bug: logged, retried with a pause
                log.warning("pod %s: %s; retrying", key, e, exc_info=not isinstance(e, OSError))
                self._enqueue_after(key, 1.0)
            finally:
                self._processing.discard(key)
                if key in self._queued:
                    self._queue.put_nowait(key)

    async def _sync_pod(self, key: str) -> None:
        """Level-driven: decide from the cached pod, write at most once, schedule the next look if later."""
        pod = self._pods.get(key)
        if pod is None:
            return
        node = self.nodes[pod["spec"]["nodeName"]]
        if not node.running:
            return
        md = pod.get("metadata") or {}
        uid = str(md.get("uid", ""))
        now = self.clock()
        seen = None
        if md.get("deletionTimestamp"):
            seen = self._deleting_seen.setdefault(uid, now)
        decision = s.decide(pod, now, seen)
        if decision.action == s.NOTHING:
            return
        if not decision.due(now):
            assert decision.at is not None
            self._enqueue_after(key, (decision.at - now).total_seconds())
            return
        ns, name = md.get("namespace", ""), md.get("name", "")
        if decision.action == s.DELETE:
            opts = DeleteOptions(grace_period_seconds=0, preconditions={"uid": uid} if uid else {})
            try:
                await self.client.delete(PODS, ns, name, opts)
            except ApiError as e:
                if e.code not in (404, 409):  # gone, or a new pod of the same name: not ours to delete
                    raise
            return
        host_ip = node.params.internal_ip
        if decision.action == s.START:
            pod_ip = host_ip if (pod.get("spec") or {}).get("hostNetwork") else node.pool.allocate(uid)
            status = s.running_status(pod, host_ip, pod_ip, now)
        else:
            pod_ip = (pod.get("status") or {}).get("podIP") or host_ip
            status = s.terminated_status(pod, host_ip, pod_ip, now, succeeded=decision.action == s.COMPLETE)
        updated = await self.client.patch(
            PODS,
            ns,
            name,
            Patch("merge", s.status_patch(pod, status)),
            subresource="status",
            field_manager=FIELD_MANAGER,
        )
        if (updated.get("metadata") or {}).get("uid") == uid and key in self._pods:
            self._store(updated)
            self._enqueue(key)  # its next step (completion, confirmation) is planned from the new state
