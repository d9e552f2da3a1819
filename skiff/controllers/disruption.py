"""Disruption controller: keeps every PodDisruptionBudget's status current.

Mirrors `pkg/controller/disruption/disruption.go` (Kubernetes 1.32): a PDB's pods are those of its
namespace its selector matches (an empty selector matches all, a null one none); the expected count
comes from the pods' controllers (`getExpectedScale`: ReplicationController, Deployment via its
ReplicaSet, ReplicaSet, StatefulSet) for maxUnavailable and percentage minAvailable, and is the number of
pods for an integer minAvailable. The status math is `skiff.api.disruption` (shared with the eviction
subresource). When the count cannot be computed (a pod whose controller is not found, a malformed bound)
the controller writes the fail-safe status: no disruptions, DisruptionAllowed False/SyncFailed.
Evictions recorded in status.disruptedPods expire after two minutes; the PDB is re-synced then.

Deliberate differences: events (NoPods, UnmanagedPods, CalculateExpectedPodCountFailed) are posted only
when the status is written, not on every sync, because skiff's recorder does not aggregate duplicates;
custom resources with a scale subresource are not looked up (their pods count as "no controller").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from skiff.api import disruption as pdbmath
from skiff.api.errors import ApiError
from skiff.api.meta import Obj
from skiff.api.meta import now as wall_now
from skiff.api.selectors import SelectorError, label_selector_matcher, selector_to_string
from skiff.client.interface import DEPLOYMENTS, PDBS, PODS, REPLICASETS, STATEFULSETS, Informer, Resource
from skiff.controllers.base import Controller, ControllerContext, key_of, split_key

REPLICATIONCONTROLLERS = Resource("", "v1", "replicationcontrollers")
COMPONENT = "controllermanager"  # upstream events come from the kube-controller-manager's recorder

# (kind, namespace, name) → the cached controller object, or None.
Lookup = Callable[[str, str, str], Obj | None]


class NoControllerError(Exception):
    """A matched pod has a controller this controller cannot find or does not know (`getExpectedScale`)."""


def _controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def _group(ref: Mapping[str, Any]) -> str:
    api_version = str(ref.get("apiVersion") or "")
    return api_version.rpartition("/")[0]


def _replicas(obj: Mapping[str, Any]) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def controller_scale(ref: Mapping[str, Any], namespace: str, lookup: Lookup) -> tuple[str, int] | None:
    """The (uid, desired replicas) of the workload behind a pod's controllerRef, following the upstream
    finders: a ReplicaSet owned by a Deployment stands for the Deployment. None when not found, when the
    uid differs (a namesake), or for kinds without a finder."""
    kind, name, uid, group = ref.get("kind"), str(ref.get("name") or ""), ref.get("uid"), _group(ref)
    if kind == "ReplicationController" and group == "":
        rc = lookup("ReplicationController", namespace, name)
        if rc is not None and (rc.get("metadata") or {}).get("uid") == uid:
            return str(uid), _replicas(rc)
        return None
    if kind == "ReplicaSet" and group in ("apps", "extensions"):
        rs = lookup("ReplicaSet", namespace, name)
        if rs is None or (rs.get("metadata") or {}).get("uid") != uid:
            return None
        owner = _controller_ref(rs)
        if owner is not None and owner.get("kind") == "Deployment":
            if _group(owner) not in ("apps", "extensions"):
                return None
            dep = lookup("Deployment", namespace, str(owner.get("name") or ""))
            if dep is None or (dep.get("metadata") or {}).get("uid") != owner.get("uid"):
                return None
            return str(owner.get("uid")), _replicas(dep)
        return str(uid), _replicas(rs)
    if kind == "StatefulSet" and group == "apps":
        sts = lookup("StatefulSet", namespace, name)
        if sts is not None and (sts.get("metadata") or {}).get("uid") == uid:
            return str(uid), _replicas(sts)
    return None


def expected_scale(pods: Sequence[Mapping[str, Any]], lookup: Lookup) -> tuple[int, list[str]]:
    """`getExpectedScale`: the summed scale of the distinct controllers of `pods`, and the names of pods
    without a controller (they are reported, not counted). Raises NoControllerError for a pod whose
    controller is not found."""
    scales: dict[str, int] = {}
    unmanaged: list[str] = []
    for pod in pods:
        md = pod.get("metadata") or {}
        ref = _controller_ref(pod)
        if ref is None:
            unmanaged.append(str(md.get("name") or ""))
            continue
        if ref.get("uid") in scales:
            continue
        found = controller_scale(ref, str(md.get("namespace") or ""), lookup)
        if found is None:
            raise NoControllerError(f'found no controllers for pod "{md.get("name")}"')
        scales[found[0]] = found[1]
    return sum(scales.values()), unmanaged


def pods_for_pdb(pdb: Mapping[str, Any], pods: Sequence[Obj]) -> list[Obj]:
    """`getPodsForPdb`: pods (of the PDB's namespace) its selector matches; null matches none, empty all."""
    try:
        match = label_selector_matcher((pdb.get("spec") or {}).get("selector"))
    except SelectorError:
        return []
    return [p for p in pods if match((p.get("metadata") or {}).get("labels") or {})]


@dataclass
class PdbPlan:
    """What one sync of a PDB does: write `status` (None: already current), post `events`
    ((type, reason, message) about the PDB), and sync again after `recheck_after` seconds (None: no)."""

    status: Obj | None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    recheck_after: float | None = None


def plan_pdb(pdb: Mapping[str, Any], pods: Sequence[Obj], lookup: Lookup, now: dt.datetime) -> PdbPlan:
    """Decide a PDB's status from its matched pods (`trySync` + `failSafe`). Pure; mutates nothing."""
    events: list[tuple[str, str, str]] = []
    if not pods:
        events.append(("Normal", "NoPods", "No matching pods found"))
    scale: int | None = None
    try:
        if pdbmath.needs_scale(pdb):
            scale, unmanaged = expected_scale(pods, lookup)
            if unmanaged:
                sel = selector_to_string((pdb.get("spec") or {}).get("selector"))
                events.append(
                    (
                        "Warning",
                        "UnmanagedPods",
                        f"Pods selected by this PodDisruptionBudget (selector: {sel}) were found to be "
                        "unmanaged. As a result, the status of the PDB cannot be calculated correctly, "
                        "which may result in undefined behavior. To account for these pods please set "
                        '".spec.minAvailable" field of the PDB to an integer value.',
                    )
                )
        status = pdbmath.pdb_status(pdb, pods, scale, now)
    except (NoControllerError, ValueError) as e:
        events.append(
            (
                "Warning",
                "CalculateExpectedPodCountFailed",
                f"Failed to calculate the number of expected pods: {e}",
            )
        )
        failed = pdbmath.failed_status(pdb, str(e), now)
        same = failed == (pdb.get("status") or {})
        return PdbPlan(None if same else failed, events)
    _, recheck = pdbmath.disrupted_pods(pdb, pods, now)
    recheck_after = max(0.0, (recheck - now).total_seconds()) if recheck is not None else None
    if pdbmath.status_up_to_date(pdb, status):
        return PdbPlan(None, [], recheck_after)
    return PdbPlan(status, events, recheck_after)


class DisruptionController(Controller):
    """Level-driven: `sync("ns/name")` recomputes one PDB's status from the caches and writes it if needed."""

    name = "disruption"

    def __init__(self, ctx: ControllerContext, wall_clock: Callable[[], dt.datetime] = wall_now) -> None:
        super().__init__(ctx)
        self.wall_clock = wall_clock
        f = ctx.informers
        self.pdbs = f.informer(PDBS)
        self.pods = f.informer(PODS)
        self.workloads: dict[str, Informer] = {
            "ReplicationController": f.informer(REPLICATIONCONTROLLERS),
            "ReplicaSet": f.informer(REPLICASETS),
            "Deployment": f.informer(DEPLOYMENTS),
            "StatefulSet": f.informer(STATEFULSETS),
        }

    def informers(self) -> Sequence[Informer]:
        return [self.pdbs, self.pods, *self.workloads.values()]

    def setup(self) -> None:
        self.pdbs.add_handler(self._on_pdb)
        self.pods.add_handler(self._on_pod)
        for inf in self.workloads.values():
            inf.add_handler(self._on_workload)

    def _on_pdb(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is not None:
            self.queue.add(key_of(obj))

    def _on_pod(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        keys: set[str] = set()
        for pod in (old, new):
            if pod is None:
                continue
            ns = (pod.get("metadata") or {}).get("namespace") or ""
            for pdb in self.pdbs.by_index("namespace", ns):
                if pods_for_pdb(pdb, [pod]):
                    keys.add(key_of(pdb))
        for key in keys:
            self.queue.add(key)

    def _on_workload(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        if old is not None and new is not None and _replicas(old) == _replicas(new):
            return
        obj = new or old
        if obj is not None:
            for pdb in self.pdbs.by_index("namespace", (obj.get("metadata") or {}).get("namespace") or ""):
                self.queue.add(key_of(pdb))

    def _lookup(self, kind: str, namespace: str, name: str) -> Obj | None:
        inf = self.workloads.get(kind)
        return inf.get(namespace, name) if inf is not None else None

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        pdb = self.pdbs.get(ns, name)
        if pdb is None:
            return
        pods = pods_for_pdb(pdb, list(self.pods.by_index("namespace", ns)))
        plan = plan_pdb(pdb, pods, self._lookup, self.wall_clock())
        if plan.status is not None:
            new = {**pdb, "status": plan.status}
            try:
                await self.client.update(PDBS, ns, new, subresource="status", field_manager=COMPONENT)
            except ApiError as e:
                if e.code == 404:
                    return
                raise  # conflicts and others: requeued with back-off, the next sync re-reads the cache
            for type_, reason, message in plan.events:
                await self.events.record({"kind": "PodDisruptionBudget", "apiVersion": "policy/v1", **pdb},
                    type_,
                    reason,
                    message,
                    COMPONENT,
                )
        if plan.recheck_after is not None:
            self.queue.add_after(key, plan.recheck_after)
