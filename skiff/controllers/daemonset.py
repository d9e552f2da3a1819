"""DaemonSet controller: one pod per eligible node, rolled out with maxUnavailable / maxSurge.

Mirrors `pkg/controller/daemon` (daemon_controller.go `manage` / `podsShouldBeOnNode` /
`NodeShouldRunDaemonPod` / `updateDaemonSetStatus`, update.go `rollingUpdate` / `constructHistory`,
util/daemonset_util.go) of Kubernetes 1.32:

- a node is eligible when the pod template's nodeSelector and required node affinity match it and every
  NoSchedule/NoExecute taint is tolerated; a pod may keep running while only NoExecute taints are
  tolerated. The tolerations counted are the template's plus the defaults upstream adds to every daemon
  pod (not-ready/unreachable NoExecute; disk/memory/pid-pressure and unschedulable NoSchedule;
  network-unavailable NoSchedule for hostNetwork pods);
- each pod gets a required node affinity with the single term `metadata.name In [<node>]` (replacing the
  template's required terms, which the node already matched) and is left to the scheduler to bind;
- failed pods are deleted (and recreated next sync), surplus pods on a node are deleted oldest-kept,
  pods on ineligible or vanished nodes are deleted;
- RollingUpdate replaces old pods under maxUnavailable, or with maxSurge creates the new pod first and
  deletes the old one once the new one is available; OnDelete only replaces deleted pods;
- pods carry `controller-revision-hash` (and the deprecated `pod-template-generation`).

`plan_daemonset` / `daemonset_status` are pure; `DaemonSetController.sync` reads caches, plans, writes.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from skiff.api.errors import ApiError
from skiff.api.meta import Obj
from skiff.api.pods import is_pod_ready as pod_ready
from skiff.api.taints import tolerates
from skiff.client.interface import CONTROLLERREVISIONS, DAEMONSETS, NODES, PODS, Informer, Patch
from skiff.controllers.base import Controller, ControllerContext, key_of, split_key
from skiff.controllers.history import (
    POD_REVISION_LABEL,
    available_in,
    controller_ref,
    controller_uid,
    is_terminating,
    pod_available,
    revisions_to_prune,
)
from skiff.controllers.statefulset import adopt_orphans, ensure_update_revision

log = logging.getLogger("skiff.controllers.daemonset")

KIND = "DaemonSet"
COMPONENT = "daemonset-controller"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"

# `AddOrUpdateDaemonPodTolerations` (pkg/controller/daemon/util).
DEFAULT_TOLERATIONS: tuple[Obj, ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
NETWORK_UNAVAILABLE_TOLERATION: Obj = {
    "key": "node.kubernetes.io/network-unavailable",
    "operator": "Exists",
    "effect": "NoSchedule",
}


# ---- node eligibility ---------------------------------------------------------------------------------


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _pod_spec(ds: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}


def daemon_tolerations(pod_spec: Mapping[str, Any]) -> list[Obj]:
    """The template's tolerations plus the daemon defaults (an existing toleration with the same key,
    effect and operator is kept as written)."""
    out = [dict(t) for t in pod_spec.get("tolerations") or []]
    defaults = list(DEFAULT_TOLERATIONS)
    if pod_spec.get("hostNetwork"):
        defaults.append(NETWORK_UNAVAILABLE_TOLERATION)
    for d in defaults:
        if not any(
            t.get("key") == d["key"]
            and t.get("effect") == d["effect"]
            and (t.get("operator") or "Equal") == d["operator"]
            for t in out
        ):
            out.append(dict(d))
    return out




def _requirement_matches(req: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    key, op, want = req.get("key", ""), req.get("operator", ""), list(req.get("values") or [])
    have = values.get(key)
    if op == "In":
        return have is not None and have in want
    if op == "NotIn":
        return have is None or have not in want
    if op == "Exists":
        return have is not None
    if op == "DoesNotExist":
        return have is None
    if op in ("Gt", "Lt") and have is not None and len(want) == 1:
        try:
            h, w = int(have), int(want[0])
        except ValueError:
            return False
        return h > w if op == "Gt" else h < w
    return False


def node_selector_terms_match(terms: Sequence[Mapping[str, Any]], node: Mapping[str, Any]) -> bool:
    """Terms are ORed, requirements within a term ANDed; an empty term matches nothing
    (`corev1 nodeaffinity.NodeSelector.Match`)."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    fields = {"metadata.name": _name(node)}
    for term in terms:
        exprs, mfields = term.get("matchExpressions") or [], term.get("matchFields") or []
        if not exprs and not mfields:
            continue
        if all(_requirement_matches(r, labels) for r in exprs) and all(
            _requirement_matches(r, fields) for r in mfields
        ):
            return True
    return False


def node_should_run(ds: Mapping[str, Any], node: Mapping[str, Any]) -> tuple[bool, bool]:
    """`NodeShouldRunDaemonPod`: (should run, should continue running) for the DaemonSet on the node."""
    spec = _pod_spec(ds)
    if spec.get("nodeName") and spec["nodeName"] != _name(node):
        return False, False
    labels = (node.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False, False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if required is not None and not node_selector_terms_match(required.get("nodeSelectorTerms") or [], node):
        return False, False
    tolerations = daemon_tolerations(spec)
    should_run = should_continue = True
    for taint in (node.get("spec") or {}).get("taints") or []:
        effect = taint.get("effect")
        if effect not in ("NoSchedule", "NoExecute"):
            continue
        if any(tolerates(t, taint) for t in tolerations):
            continue
        should_run = False
        if effect == "NoExecute":
            should_continue = False
    return should_run, should_continue


# ---- pods ---------------------------------------------------------------------------------------------


def target_node(pod: Mapping[str, Any]) -> str:
    """`GetTargetNodeName`: spec.nodeName, else the node of the `metadata.name` affinity term."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for req in term.get("matchFields") or []:
            if (
                req.get("key") == "metadata.name"
                and req.get("operator") == "In"
                and len(req.get("values") or []) == 1
            ):
                return str(req["values"][0])
    return ""


def node_name_affinity(affinity: Mapping[str, Any] | None, node: str) -> Obj:
    """`ReplaceDaemonSetPodNodeNameNodeAffinity`: required terms become the single node-name term."""
    out = copy.deepcopy(dict(affinity or {}))
    node_affinity = out.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]
    }
    return out


def new_pod(ds: Mapping[str, Any], node: str, hash_: str) -> Obj:
    md = ds.get("metadata") or {}
    template = (ds.get("spec") or {}).get("template") or {}
    tmd = template.get("metadata") or {}
    labels = {
        **(tmd.get("labels") or {}),
        POD_REVISION_LABEL: hash_,
        TEMPLATE_GENERATION_LABEL: str(md.get("generation", 1)),
    }
    meta: Obj = {
        "generateName": f"{md.get('name', '')}-",
        "namespace": md.get("namespace", ""),
        "labels": labels,
        "ownerReferences": [controller_ref(ds, KIND)],
    }
    if tmd.get("annotations"):
        meta["annotations"] = dict(tmd["annotations"])
    spec = copy.deepcopy(template.get("spec") or {})
    spec["affinity"] = node_name_affinity(spec.get("affinity"), node)
    spec["tolerations"] = daemon_tolerations(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _created(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("creationTimestamp") or "")


def oldest_first(pods: Sequence[Obj]) -> list[Obj]:
    """`podByCreationTimestampAndPhase`: scheduled pods first, then by creation time, then name."""
    return sorted(pods, key=lambda p: (not (p.get("spec") or {}).get("nodeName"), _created(p), _name(p)))


def pod_updated(pod: Mapping[str, Any], hash_: str) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return labels.get(POD_REVISION_LABEL) == hash_


def _phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def int_or_percent(value: Any, total: int, default: int) -> int:
    """`GetScaledValueFromIntOrPercent(value, total, roundUp=true)`."""
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.endswith("%"):
        try:
            return math.ceil(int(text[:-1]) * total / 100)
        except ValueError:
            return default
    try:
        return int(text)
    except ValueError:
        return default


def surge_and_unavailable(ds: Mapping[str, Any], desired: int) -> tuple[int, int]:
    ru = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    surge = int_or_percent(ru.get("maxSurge"), desired, 0)
    unavailable = int_or_percent(ru.get("maxUnavailable"), desired, 1)
    if desired > 0 and surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


# ---- the planner --------------------------------------------------------------------------------------


@dataclass
class DaemonSetPlan:
    create_on: list[str] = field(default_factory=list)  # node names needing a new pod
    deletes: list[str] = field(default_factory=list)  # pod names
    requeue_after: float | None = None

    @property
    def empty(self) -> bool:
        return not self.create_on and not self.deletes


def pods_by_node(pods: Sequence[Obj]) -> dict[str, list[Obj]]:
    out: dict[str, list[Obj]] = {}
    for pod in pods:
        out.setdefault(target_node(pod), []).append(pod)
    return out


def _new_and_old(pods: Sequence[Obj], hash_: str) -> tuple[Obj | None, Obj | None, bool]:
    """`findUpdatedPodsOnNode`: the one new and one old live pod on a node (ok False when more)."""
    new = old = None
    for pod in pods:
        if is_terminating(pod):
            continue
        if pod_updated(pod, hash_):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def _manage(
    ds: Mapping[str, Any],
    nodes: Sequence[Obj],
    by_node: Mapping[str, list[Obj]],
    hash_: str,
    surge_allowed: bool,
    now: float,
    plan: DaemonSetPlan,
) -> None:
    """`manage` / `podsShouldBeOnNode`, appending to `plan`."""
    min_ready = _int((ds.get("spec") or {}).get("minReadySeconds"), 0)
    node_names = set()
    for node in nodes:
        name = _name(node)
        node_names.add(name)
        should_run, should_continue = node_should_run(ds, node)
        pods = by_node.get(name, [])
        if should_run and not pods:
            plan.create_on.append(name)
        elif should_continue:
            running = []
            for pod in pods:
                if is_terminating(pod):
                    continue
                if _phase(pod) in ("Failed", "Succeeded"):
                    plan.deletes.append(_name(pod))
                else:
                    running.append(pod)
            if not surge_allowed:
                plan.deletes.extend(_name(p) for p in oldest_first(running)[1:])
                continue
            if len(running) <= 1:
                if not running and should_run:
                    plan.create_on.append(name)
                continue
            oldest_new = oldest_old = None
            for pod in oldest_first(running):
                if pod_updated(pod, hash_):
                    if oldest_new is None:
                        oldest_new = pod
                        continue
                elif oldest_old is None:
                    oldest_old = pod
                    continue
                plan.deletes.append(_name(pod))
            if (
                oldest_new is not None
                and oldest_old is not None
                and (not pod_ready(oldest_old) or pod_available(oldest_new, min_ready, now))
            ):
                plan.deletes.append(_name(oldest_old))
        elif pods:
            plan.deletes.extend(_name(p) for p in pods if not is_terminating(p))
    # pods whose node is gone (`getUnscheduledPodsWithoutNode` and vanished nodes)
    for node_name, pods in by_node.items():
        if node_name not in node_names:
            plan.deletes.extend(_name(p) for p in pods if not is_terminating(p))


def _rolling_update(
    ds: Mapping[str, Any],
    nodes: Sequence[Obj],
    by_node: Mapping[str, list[Obj]],
    hash_: str,
    now: float,
    plan: DaemonSetPlan,
) -> None:
    """update.go `rollingUpdate`, appending to `plan`. Nodes are visited in name order (upstream: map
    order), so the choice among equal candidates is deterministic."""
    min_ready = _int((ds.get("spec") or {}).get("minReadySeconds"), 0)
    eligible = {_name(n): n for n in nodes if node_should_run(ds, n)[0]}
    node_pods = {name: list(by_node.get(name, [])) for name in eligible}
    for name, pods in by_node.items():
        if name in {_name(n) for n in nodes}:
            node_pods.setdefault(name, pods)
    max_surge, max_unavailable = surge_and_unavailable(ds, len(eligible))
    order = sorted(node_pods)

    if max_surge == 0:
        unavailable = 0
        replacements: list[str] = []
        candidates: list[str] = []
        for name in order:
            new, old, ok = _new_and_old(node_pods[name], hash_)
            if not ok or (new is None) == (old is None):
                unavailable += 1
            elif new is not None:
                if not pod_available(new, min_ready, now):
                    unavailable += 1
            elif old is not None:
                if not pod_available(old, min_ready, now):
                    replacements.append(_name(old))
                    unavailable += 1
                elif unavailable < max_unavailable:
                    candidates.append(_name(old))
        remaining = min(max(max_unavailable - unavailable, 0), len(candidates))
        plan.deletes.extend(replacements + candidates[:remaining])
        return

    surging = 0
    allowed: list[str] = []
    candidate_nodes: list[str] = []
    for name in order:
        new, old, ok = _new_and_old(node_pods[name], hash_)
        if not ok:
            surging += 1
            continue
        if old is None:
            continue
        if new is None:
            if not pod_available(old, min_ready, now):
                if name not in eligible:
                    plan.deletes.append(_name(old))
                    continue
                allowed.append(name)
            elif surging < max_surge:
                candidate_nodes.append(name)
            continue
        if not pod_available(new, min_ready, now):
            surging += 1
            continue
        plan.deletes.append(_name(old))
    remaining = min(max(max_surge - surging, 0), len(candidate_nodes))
    plan.create_on.extend(allowed + candidate_nodes[:remaining])


def plan_daemonset(
    ds: Mapping[str, Any], nodes: Sequence[Obj], pods: Sequence[Obj], hash_: str, now: float
) -> DaemonSetPlan:
    """One sync of the DaemonSet's own pods against the nodes. Pure; mutates nothing.

    The node-level fix-ups (`manage`) come first; the rolling update only runs once they leave nothing
    to do, so one sync never both creates and replaces on the same snapshot."""
    plan = DaemonSetPlan()
    if is_terminating(ds):
        return plan
    strategy = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type") or "RollingUpdate"
    by_node = pods_by_node(pods)
    surge_allowed = strategy == "RollingUpdate" and surge_and_unavailable(ds, 1)[0] > 0
    _manage(ds, nodes, by_node, hash_, surge_allowed, now, plan)
    if plan.empty and strategy == "RollingUpdate":
        _rolling_update(ds, nodes, by_node, hash_, now, plan)
    min_ready = _int((ds.get("spec") or {}).get("minReadySeconds"), 0)
    waits = [w for p in pods if (w := available_in(p, min_ready, now)) is not None]
    plan.requeue_after = min(waits) if waits else None
    return plan


def daemonset_status(
    ds: Mapping[str, Any],
    nodes: Sequence[Obj],
    pods: Sequence[Obj],
    hash_: str,
    collision_count: int,
    now: float,
) -> Obj:
    """`updateDaemonSetStatus`. Pure."""
    min_ready = _int((ds.get("spec") or {}).get("minReadySeconds"), 0)
    by_node = pods_by_node(pods)
    desired = current = ready = available = updated = misscheduled = 0
    for node in nodes:
        should_run, _ = node_should_run(ds, node)
        node_pods = by_node.get(_name(node), [])
        if should_run:
            desired += 1
            if not node_pods:
                continue
            current += 1
            pod = oldest_first(node_pods)[0]
            if pod_ready(pod):
                ready += 1
                if pod_available(pod, min_ready, now):
                    available += 1
            if pod_updated(pod, hash_):
                updated += 1
        elif node_pods:
            misscheduled += 1
    status: Obj = {
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "desiredNumberScheduled": desired,
        "numberReady": ready,
        "observedGeneration": (ds.get("metadata") or {}).get("generation", 0),
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
        "numberUnavailable": desired - available,
        "collisionCount": collision_count,
    }
    return status


# ---- the controller -----------------------------------------------------------------------------------


class DaemonSetController(Controller):
    name = "daemonset"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.sets = ctx.informers.informer(DAEMONSETS)
        self.pods = ctx.informers.informer(PODS)
        self.nodes = ctx.informers.informer(NODES)
        self.revisions = ctx.informers.informer(CONTROLLERREVISIONS)
        # Expectations (upstream `controller.ControllerExpectations`): pods this controller created or
        # deleted that the pod cache has not reflected yet. Pods are created with generateName, so acting
        # on a stale cache would place a second pod on the node; until the cache catches up (or
        # EXPECTATIONS_TIMEOUT passes) a sync does nothing.
        self._expect: dict[str, _Expectations] = {}

    def informers(self) -> Sequence[Informer]:
        return (self.sets, self.pods, self.nodes, self.revisions)

    def _satisfied(self, key: str) -> bool:
        exp = self._expect.get(key)
        if exp is None:
            return True
        ns, _ = split_key(key)
        exp.creates = {n for n in exp.creates if self.pods.get(ns, n) is None}
        exp.deletes = {
            n for n in exp.deletes if (p := self.pods.get(ns, n)) is not None and not is_terminating(p)
        }
        if (exp.creates or exp.deletes) and self.ctx.clock() < exp.deadline:
            return False
        del self._expect[key]
        return True

    def setup(self) -> None:
        def on_set(_: str, old: Obj | None, new: Obj | None) -> None:
            obj = new or old
            if obj is not None:
                self.queue.add(key_of(obj))

        def on_owned(type_: str, old: Obj | None, new: Obj | None) -> None:
            if type_ == "DELETED" and old is not None:  # created then deleted before we saw it
                for exp in self._expect.values():
                    exp.creates.discard(str((old.get("metadata") or {}).get("name")))
            for obj in (old, new):
                if obj is None:
                    continue
                ns = (obj.get("metadata") or {}).get("namespace") or ""
                for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
                    if (
                        ref.get("controller")
                        and ref.get("kind") == KIND
                        and str(ref.get("apiVersion", "")).startswith("apps/")
                    ):
                        self.queue.add(f"{ns}/{ref.get('name')}")

        def on_node(_: str, old: Obj | None, new: Obj | None) -> None:
            # Node changes (labels, taints, new nodes) can change eligibility of every DaemonSet.
            if old is not None and new is not None and _node_view(old) == _node_view(new):
                return
            for ds in self.sets.list():
                self.queue.add(key_of(ds))

        self.sets.add_handler(on_set)
        self.pods.add_handler(on_owned)
        self.revisions.add_handler(on_owned)
        self.nodes.add_handler(on_node)

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        ds = self.sets.get(ns, name)
        if ds is None:
            return
        if not self._satisfied(key):
            return  # the pod events that satisfy the expectations requeue the key
        uid = str(ds["metadata"].get("uid") or "")
        pods = [p for p in self.pods.by_index("owner", uid) if controller_uid(p) == uid]
        pods += await adopt_orphans(self.client, PODS, ds, KIND, self.pods.list(ns))
        revisions = [r for r in self.revisions.by_index("owner", uid) if controller_uid(r) == uid]
        revisions += await adopt_orphans(self.client, CONTROLLERREVISIONS, ds, KIND, self.revisions.list(ns))
        status = ds.get("status") or {}
        collision = _int(status.get("collisionCount"), 0)
        current = await ensure_update_revision(
            self.client, DAEMONSETS, ds, KIND, revisions, collision, (POD_REVISION_LABEL,)
        )
        hash_ = str(current["metadata"]["labels"][POD_REVISION_LABEL])

        nodes = list(self.nodes.list())
        now = dt.datetime.now(dt.UTC).timestamp()
        plan = plan_daemonset(ds, nodes, pods, hash_, now)
        await self._execute(key, ds, plan, hash_)

        new_status = daemonset_status(ds, nodes, pods, hash_, collision, now)
        if any(status.get(k) != v for k, v in new_status.items()):
            try:
                await self.client.patch(
                    DAEMONSETS,
                    ns,
                    name,
                    Patch("merge", {"status": new_status}),
                    subresource="status",
                    field_manager=COMPONENT,
                )
            except ApiError as e:
                if e.code != 404:
                    raise

        keep = {str(((p.get("metadata") or {}).get("labels") or {}).get(POD_REVISION_LABEL)) for p in pods}
        live = {
            r["metadata"]["name"]
            for r in revisions
            if (r["metadata"].get("labels") or {}).get(POD_REVISION_LABEL) in keep
        }
        live.add(current["metadata"]["name"])
        limit = _int((ds.get("spec") or {}).get("revisionHistoryLimit"), 10)
        for rev_name in revisions_to_prune(revisions, live, limit):
            try:
                await self.client.delete(CONTROLLERREVISIONS, ns, rev_name)
            except ApiError as e:
                if e.code != 404:
                    raise
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after + 0.1)

    async def _execute(self, key: str, ds: Obj, plan: DaemonSetPlan, hash_: str) -> None:
        ns = ds["metadata"].get("namespace", "")
        ds_name = ds["metadata"]["name"]
        exp = self._expect.setdefault(
            key, _Expectations(set(), set(), self.ctx.clock() + EXPECTATIONS_TIMEOUT)
        )
        for node in plan.create_on:
            try:
                created = await self.client.create(
                    PODS, ns, new_pod(ds, node, hash_), field_manager=COMPONENT
                )
            except ApiError as e:
                await self.events.record(ds, "Warning", "FailedCreate", f"Error creating: {e.message}", COMPONENT
                )
                raise
            exp.creates.add(str(created["metadata"]["name"]))
            await self.events.record(ds,
                "Normal",
                "SuccessfulCreate",
                f"Created pod: {created['metadata']['name']}",
                COMPONENT,
            )
        for pod_name in plan.deletes:
            try:
                await self.client.delete(PODS, ns, pod_name)
            except ApiError as e:
                if e.code == 404:
                    continue
                raise
            exp.deletes.add(pod_name)
            await self.events.record(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {pod_name}", COMPONENT
            )
        if plan.deletes or plan.create_on:
            log.debug("daemonset %s/%s: created on %s, deleted %s", ns, ds_name, plan.create_on, plan.deletes)


EXPECTATIONS_TIMEOUT = 300.0  # upstream ExpectationsTimeout: 5 minutes


@dataclass
class _Expectations:
    creates: set[str]
    deletes: set[str]
    deadline: float  # on ControllerContext.clock


def _node_view(node: Mapping[str, Any]) -> tuple[Any, ...]:
    """The parts of a node that decide daemon eligibility (status heartbeats are ignored)."""
    return (
        (node.get("metadata") or {}).get("labels"),
        (node.get("spec") or {}).get("taints"),
        (node.get("metadata") or {}).get("name"),
    )
