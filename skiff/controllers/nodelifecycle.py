"""Node lifecycle: node health from heartbeats, the not-ready/unreachable taints, and NoExecute eviction.

Two controllers, as upstream since 1.29:

- `NodeLifecycleController` (`pkg/controller/nodelifecycle/node_lifecycle_controller.go`,
  `tryUpdateNodeHealth`, `processTaintBaseEviction`, `doNoScheduleTaintingPass`): a node whose Lease in
  `kube-node-lease` (or Ready heartbeat) was not renewed within the grace period (node-monitor-grace-period,
  40 s; node-startup-grace-period, 60 s, while the node has never posted Ready) gets its Ready,
  MemoryPressure, DiskPressure and PIDPressure conditions set to Unknown ("NodeStatusUnknown", "Kubelet
  stopped posting node status."; missing ones are added as "NodeStatusNeverUpdated"). A node whose Ready
  is False carries `node.kubernetes.io/not-ready`, one whose Ready is Unknown
  `node.kubernetes.io/unreachable`, each with effects NoSchedule and NoExecute (timeAdded on NoExecute);
  they are removed when Ready is True again. Pods on a node that is not Ready get their Ready condition
  set to False (`MarkPodsNotReady`) and an event NodeNotReady.
- `TaintEvictionController` (`pkg/controller/tainteviction/taint_eviction.go`): a pod on a node with a
  NoExecute taint it does not tolerate is deleted at once; if every such taint is tolerated, the pod is
  deleted after the smallest tolerationSeconds of the tolerations used (never, if none sets it). Before
  deleting, the pod gets the DisruptionTarget condition (reason DeletionByTaintManager); events
  TaintManagerEviction "Marking for deletion Pod ns/name" and, when the taints go away first,
  "Cancelling deletion of Pod ns/name".

Time: heartbeats are compared on the controller's own clock (`ControllerContext.clock`), as upstream
compares local observation times, never the kubelet's clock; a fresh controller (or a new node) starts
the grace period when it first sees the node. Timestamps written to objects come from `wall_clock`.
The pure halves are `observe_health`, `plan_node`, `plan_taint_eviction`; `sync` only reads the
caches, calls them, and writes.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from skiff.api.errors import ApiError
from skiff.api.meta import Obj, parse_time, rfc3339
from skiff.api.meta import now as wall_now
from skiff.api.taints import tolerates
from skiff.client.interface import LEASES, NODES, PODS, Informer
from skiff.controllers.base import Controller, ControllerContext, key_of, split_key

COMPONENT = "node-controller"
TAINT_COMPONENT = "taint-eviction-controller"
NODE_LEASE_NAMESPACE = "kube-node-lease"

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
NODE_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")

DEFAULT_GRACE_PERIOD = 40.0  # --node-monitor-grace-period
DEFAULT_STARTUP_GRACE_PERIOD = 60.0  # --node-startup-grace-period


# --- node health (pure) ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeHealth:
    """What the controller last observed of a node: when (own clock) it last saw a heartbeat, and the
    heartbeat values it saw (the lease's renewTime, the Ready condition's lastHeartbeatTime)."""

    probe: float
    lease_renew: dt.datetime | None = None
    ready_heartbeat: str = ""


def _condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond
    return None


def observe_health(
    saved: NodeHealth | None, node: Mapping[str, Any], lease: Mapping[str, Any] | None, now: float
) -> NodeHealth:
    """The node's health record after looking at it at `now`: the probe time moves to `now` when the
    Ready heartbeat changed or the lease was renewed since the last look (or on the first look)."""
    ready = _condition(node, "Ready")
    heartbeat = str((ready or {}).get("lastHeartbeatTime") or "")
    renew = parse_time(((lease or {}).get("spec") or {}).get("renewTime"))
    if saved is None:
        return NodeHealth(now, renew, heartbeat)
    probe = saved.probe
    if heartbeat != saved.ready_heartbeat:
        probe = now
    if renew is not None and (saved.lease_renew is None or renew > saved.lease_renew):
        probe = now
    return NodeHealth(probe, renew if renew is not None else saved.lease_renew, heartbeat)


@dataclass
class NodePlan:
    """One sync of a node: new `conditions` for its status (None: unchanged), new `taints` for its spec
    (None: unchanged), whether its pods must be marked not ready, events about the node
    ((type, reason, message)), and when to look again if nothing happens (seconds; None: next event)."""

    conditions: list[Obj] | None = None
    taints: list[Obj] | None = None
    mark_pods_not_ready: bool = False
    events: list[tuple[str, str, str]] = field(default_factory=list)
    recheck_after: float | None = None


def _unknown_conditions(node: Mapping[str, Any], wall: dt.datetime) -> list[Obj]:
    conditions = copy.deepcopy(list((node.get("status") or {}).get("conditions") or []))
    created = (node.get("metadata") or {}).get("creationTimestamp") or rfc3339(wall)
    for type_ in NODE_CONDITIONS:
        cond = next((c for c in conditions if isinstance(c, dict) and c.get("type") == type_), None)
        if cond is None:
            conditions.append(
                {
                    "type": type_,
                    "status": "Unknown",
                    "lastHeartbeatTime": created,
                    "lastTransitionTime": rfc3339(wall),
                    "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.",
                }
            )
        elif cond.get("status") != "Unknown":
            cond.update(
                status="Unknown",
                reason="NodeStatusUnknown",
                message="Kubelet stopped posting node status.",
                lastTransitionTime=rfc3339(wall),
            )
    return conditions


def _managed(taint: Mapping[str, Any]) -> bool:
    return taint.get("key") in (NOT_READY, UNREACHABLE) and taint.get("effect") in ("NoSchedule", "NoExecute")


def desired_taints(
    taints: Sequence[Mapping[str, Any]], ready_status: str | None, wall: dt.datetime
) -> list[Obj]:
    """The node's taints with the controller-managed ones matching its Ready status: not-ready for False,
    unreachable for Unknown (NoSchedule + NoExecute), neither for True or no Ready condition at all.
    Other taints are kept as they are; a kept managed taint keeps its timeAdded."""
    key = {"False": NOT_READY, "Unknown": UNREACHABLE}.get(ready_status or "")
    want = {(key, "NoSchedule"), (key, "NoExecute")} if key else set()
    out: list[Obj] = []
    have = set()
    for t in taints:
        if _managed(t) and (t.get("key"), t.get("effect")) not in want:
            continue
        have.add((t.get("key"), t.get("effect")))
        out.append(dict(t))
    for effect in ("NoSchedule", "NoExecute"):
        if not key or (key, effect) in have:
            continue
        taint: Obj = {"key": key, "effect": effect}
        if effect == "NoExecute":
            taint["timeAdded"] = rfc3339(wall)
        out.append(taint)
    return out


def plan_node(
    node: Mapping[str, Any],
    health: NodeHealth,
    now: float,
    wall: dt.datetime,
    grace_period: float = DEFAULT_GRACE_PERIOD,
    startup_grace_period: float = DEFAULT_STARTUP_GRACE_PERIOD,
) -> NodePlan:
    """Decide a node's conditions and taints (`tryUpdateNodeHealth` + the tainting passes). Pure."""
    plan = NodePlan()
    observed = _condition(node, "Ready")
    grace = grace_period if observed is not None else startup_grace_period
    deadline = health.probe + grace
    conditions = list((node.get("status") or {}).get("conditions") or [])
    if now > deadline:
        updated = _unknown_conditions(node, wall)
        if updated != conditions:
            plan.conditions = conditions = updated
    else:
        plan.recheck_after = deadline - now + 0.001
    ready = next((c for c in conditions if isinstance(c, dict) and c.get("type") == "Ready"), None)
    ready_status = str(ready.get("status")) if ready is not None else None
    taints = list((node.get("spec") or {}).get("taints") or [])
    wanted = desired_taints(taints, ready_status, wall)
    if wanted != taints:
        plan.taints = wanted
    if ready_status is not None and ready_status != "True":
        plan.mark_pods_not_ready = True
        if observed is not None and observed.get("status") == "True":
            name = (node.get("metadata") or {}).get("name")
            plan.events.append(("Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady"))
    return plan


def pod_not_ready(pod: Mapping[str, Any], wall: dt.datetime) -> Obj | None:
    """The pod with its Ready condition set to False (`MarkPodsNotReady`), or None when nothing changes."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    for i, cond in enumerate(conditions):
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            if cond.get("status") == "False":
                return None
            new = copy.deepcopy(dict(pod))
            new["status"]["conditions"][i].update(status="False", lastTransitionTime=rfc3339(wall))
            return new
    return None


# --- taint eviction (pure) ------------------------------------------------------------------------------




def no_execute_taints(node: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if node is None:
        return []
    return [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]


def toleration_time(
    taints: Sequence[Mapping[str, Any]], tolerations: Sequence[Mapping[str, Any]]
) -> float | None:
    """How long a pod may stay given NoExecute `taints`: 0 when a taint is not tolerated, the smallest
    tolerationSeconds of the tolerations used (<= 0 counts as 0), None for forever
    (`GetMatchingTolerations` + `getMinTolerationTime`). Precondition: `taints` is not empty."""
    used = []
    for taint in taints:
        match = next((t for t in tolerations if tolerates(t, taint)), None)
        if match is None:
            return 0.0
        used.append(match)
    seconds = [t["tolerationSeconds"] for t in used if isinstance(t.get("tolerationSeconds"), int)]
    if not seconds:
        return None
    return float(max(0, min(seconds)))


@dataclass(frozen=True)
class TaintDecision:
    """`evict` now, or keep the pod; `since` is the start of the current toleration period (None: no
    eviction pending), `recheck_after` the seconds until it ends; `cancelled`: a pending eviction was
    dropped (its taints went away or are now tolerated forever)."""

    evict: bool = False
    since: float | None = None
    recheck_after: float | None = None
    cancelled: bool = False


def plan_taint_eviction(
    taints: Sequence[Mapping[str, Any]],
    tolerations: Sequence[Mapping[str, Any]],
    since: float | None,
    now: float,
) -> TaintDecision:
    """`processPodOnNode` for one pod: `taints` are its node's NoExecute taints, `since` when the current
    toleration period started (None: none pending). Pure."""
    if not taints:
        return TaintDecision(cancelled=since is not None)
    allowed = toleration_time(taints, tolerations)
    if allowed is None:
        return TaintDecision(cancelled=since is not None)
    start = since if since is not None else now
    if now >= start + allowed:
        return TaintDecision(evict=True, since=start)  # kept until the deletion succeeds
    return TaintDecision(since=start, recheck_after=start + allowed - now)


DISRUPTION_TARGET = {
    "type": "DisruptionTarget",
    "status": "True",
    "reason": "DeletionByTaintManager",
    "message": "Taint manager: deleting due to NoExecute taint",
}


def with_disruption_target(pod: Mapping[str, Any], wall: dt.datetime) -> Obj | None:
    """The pod with the DisruptionTarget condition the taint manager adds before deleting (None: present)."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    if any(c.get("type") == "DisruptionTarget" and c.get("status") == "True" for c in conditions):
        return None
    new = copy.deepcopy(dict(pod))
    status = new.setdefault("status", {})
    status["conditions"] = [c for c in conditions if c.get("type") != "DisruptionTarget"] + [
        {**DISRUPTION_TARGET, "lastTransitionTime": rfc3339(wall)}
    ]
    return new


# --- controllers ----------------------------------------------------------------------------------------


def _with_kind(obj: Obj, kind: str) -> Obj:
    return {"kind": kind, "apiVersion": "v1", **obj}


class NodeLifecycleController(Controller):
    """Keys are node names. `grace_period` / `startup_grace_period` are seconds on `ctx.clock`."""

    name = "node-lifecycle"

    def __init__(
        self,
        ctx: ControllerContext,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        startup_grace_period: float = DEFAULT_STARTUP_GRACE_PERIOD,
        wall_clock: Callable[[], dt.datetime] = wall_now,
    ) -> None:
        super().__init__(ctx)
        self.grace_period = grace_period
        self.startup_grace_period = startup_grace_period
        self.wall_clock = wall_clock
        self.nodes = ctx.informers.informer(NODES)
        self.leases = ctx.informers.informer(LEASES)
        self.pods = ctx.informers.informer(PODS)
        self.health: dict[str, NodeHealth] = {}

    def informers(self) -> Sequence[Informer]:
        return [self.nodes, self.leases, self.pods]

    def setup(self) -> None:
        self.nodes.add_handler(self._on_node)
        self.leases.add_handler(self._on_lease)
        self.pods.add_handler(self._on_pod)

    def _on_node(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is not None:
            self.queue.add(key_of(obj))

    def _on_lease(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is not None and (obj.get("metadata") or {}).get("namespace") == NODE_LEASE_NAMESPACE:
            self.queue.add(str((obj.get("metadata") or {}).get("name") or ""))

    def _on_pod(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        # A pod bound to a node that is not ready must be marked not ready too.
        node_name = ((new or {}).get("spec") or {}).get("nodeName")
        if node_name and (old is None or (old.get("spec") or {}).get("nodeName") != node_name):
            self.queue.add(str(node_name))

    async def sync(self, key: str) -> None:
        node = self.nodes.get("", key)
        if node is None:
            self.health.pop(key, None)
            return
        now, wall = self.ctx.clock(), self.wall_clock()
        health = observe_health(self.health.get(key), node, self.leases.get(NODE_LEASE_NAMESPACE, key), now)
        self.health[key] = health
        plan = plan_node(node, health, now, wall, self.grace_period, self.startup_grace_period)
        current: Obj = node
        try:
            if plan.conditions is not None:
                new = copy.copy(current)
                new["status"] = {**(current.get("status") or {}), "conditions": plan.conditions}
                current = await self.client.update(
                    NODES, "", new, subresource="status", field_manager=COMPONENT
                )
            if plan.taints is not None:
                new = copy.copy(current)
                new["spec"] = {**(current.get("spec") or {}), "taints": plan.taints}
                if not plan.taints:
                    del new["spec"]["taints"]
                current = await self.client.update(NODES, "", new, field_manager=COMPONENT)
        except ApiError as e:
            if e.code == 404:
                return
            raise
        for type_, reason, message in plan.events:
            await self.events.record(_with_kind(node, "Node"), type_, reason, message, COMPONENT)
        if plan.mark_pods_not_ready:
            await self._mark_pods_not_ready(key, wall)
        if plan.recheck_after is not None:
            self.queue.add_after(key, plan.recheck_after)

    async def _mark_pods_not_ready(self, node_name: str, wall: dt.datetime) -> None:
        for pod in list(self.pods.by_index("nodeName", node_name)):
            new = pod_not_ready(pod, wall)
            if new is None:
                continue
            md = pod.get("metadata") or {}
            try:
                await self.client.update(
                    PODS, md.get("namespace") or "", new, subresource="status", field_manager=COMPONENT
                )
            except ApiError as e:
                if e.code == 404:
                    continue
                raise
            await self.events.record(_with_kind(pod, "Pod"), "Warning", "NodeNotReady", "Node is not ready", COMPONENT
            )


class TaintEvictionController(Controller):
    """Keys are pod keys (`namespace/name`). Pending toleration periods live in memory, as upstream's
    timed queue does: a restarted controller starts them again."""

    name = "taint-eviction"

    def __init__(self, ctx: ControllerContext, wall_clock: Callable[[], dt.datetime] = wall_now) -> None:
        super().__init__(ctx)
        self.wall_clock = wall_clock
        self.nodes = ctx.informers.informer(NODES)
        self.pods = ctx.informers.informer(PODS)
        self.since: dict[str, float] = {}

    def informers(self) -> Sequence[Informer]:
        return [self.nodes, self.pods]

    def setup(self) -> None:
        self.nodes.add_handler(self._on_node)
        self.pods.add_handler(self._on_pod)

    def _on_node(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        if no_execute_taints(old) == no_execute_taints(new):
            return
        obj = new or old
        if obj is not None:
            for pod in self.pods.by_index("nodeName", key_of(obj)):
                self.queue.add(key_of(pod))

    def _on_pod(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            if old is not None:
                self.queue.add(key_of(old))  # drops its pending period
            return
        spec, old_spec = new.get("spec") or {}, (old or {}).get("spec") or {}
        if spec.get("nodeName") and (
            old is None
            or spec.get("nodeName") != old_spec.get("nodeName")
            or spec.get("tolerations") != old_spec.get("tolerations")
        ):
            self.queue.add(key_of(new))

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        pod = self.pods.get(ns, name)
        node_name = ((pod or {}).get("spec") or {}).get("nodeName")
        if pod is None or not node_name or (pod.get("metadata") or {}).get("deletionTimestamp"):
            self.since.pop(key, None)
            return
        taints = no_execute_taints(self.nodes.get("", str(node_name)))
        decision = plan_taint_eviction(
            taints, (pod.get("spec") or {}).get("tolerations") or [], self.since.get(key), self.ctx.clock()
        )
        if decision.since is None:
            self.since.pop(key, None)
        else:
            self.since[key] = decision.since
        if decision.cancelled:
            await self.events.record(_with_kind(pod, "Pod"),
                "Normal",
                "TaintManagerEviction",
                f"Cancelling deletion of Pod {key}",
                TAINT_COMPONENT,
            )
        if decision.recheck_after is not None:
            self.queue.add_after(key, decision.recheck_after)
        if decision.evict:
            await self._evict(pod, key)

    async def _evict(self, pod: Obj, key: str) -> None:
        ns, name = split_key(key)
        await self.events.record(_with_kind(pod, "Pod"),
            "Normal",
            "TaintManagerEviction",
            f"Marking for deletion Pod {key}",
            TAINT_COMPONENT,
        )
        try:
            marked = with_disruption_target(pod, self.wall_clock())
            if marked is not None:
                await self.client.update(
                    PODS, ns, marked, subresource="status", field_manager=TAINT_COMPONENT
                )
            await self.client.delete(PODS, ns, name)
        except ApiError as e:
            if e.code != 404:
                raise
        self.since.pop(key, None)
