"""Pod helpers shared by the workload controllers (ReplicaSet, ReplicationController, Deployment, ...).

Mirrors upstream `pkg/controller/controller_utils.go` (GetPodFromTemplate, FilterActivePods,
ActivePodsWithRanks, slowStartBatch, ControllerExpectations), `pkg/controller/controller_ref_manager.go`
(ClaimObject: adopt orphans, release non-matching) and `pkg/api/v1/pod/util.go` (IsPodReady,
IsPodAvailable). Everything here is pure except `Expectations`, which is an in-memory ledger.
Functions never mutate their arguments; objects they return are fresh.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from skiff.api.meta import Obj, parse_time
from skiff.api.pods import is_pod_ready

# Upstream `pkg/controller/controller_utils.go`.
SLOW_START_INITIAL_BATCH_SIZE = 1
BURST_REPLICAS = 500  # replicaset controller: at most this many creates/deletes per sync
EXPECTATIONS_TIMEOUT = 5 * 60.0  # ExpectationsTimeout: a lost watch event cannot wedge a controller
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"

_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


# ---- ownership ---------------------------------------------------------------------------------


def controller_ref(obj: Obj) -> Obj | None:
    """The ownerReference with `controller: true`, if any (metav1.GetControllerOf)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_reference(owner: Obj, api_version: str, kind: str) -> Obj:
    """A controller ownerReference to `owner` (metav1.NewControllerRef: controller and blockOwnerDeletion)."""
    md = owner.get("metadata") or {}
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": md.get("name", ""),
        "uid": md.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def adopt_patch(owner_ref: Obj, obj_uid: str) -> Obj:
    """Strategic merge patch adding a controller ref; `metadata.uid` makes it fail if the object was
    replaced meanwhile (upstream ownerRefControllerPatch)."""
    return {"metadata": {"ownerReferences": [owner_ref], "uid": obj_uid}}


def release_patch(owner_uid: str, obj_uid: str) -> Obj:
    """Strategic merge patch removing the ownerReference to `owner_uid` (upstream deleteOwnerRefStrategicMergePatch)."""
    return {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}], "uid": obj_uid}}


ORPHANS_INDEX = "podcontrol.orphans"  # namespace → objects without a controller ownerReference


def index_orphans(obj: Obj) -> list[str]:
    """Index function: the namespace of objects no controller owns (candidates for adoption)."""
    return [str((obj.get("metadata") or {}).get("namespace") or "")] if controller_ref(obj) is None else []


def ensure_orphans_index(informer: Any) -> None:
    """Add ORPHANS_INDEX to a shared informer unless another controller already did."""
    try:
        informer.add_index(ORPHANS_INDEX, index_orphans)
    except ValueError:
        pass


@dataclass
class Claim:
    """Outcome of ClaimObjects: `owned` already ours and matching, `adopt` orphans to take over,
    `release` ours but no longer matching the selector."""

    owned: list[Obj] = field(default_factory=list)
    adopt: list[Obj] = field(default_factory=list)
    release: list[Obj] = field(default_factory=list)


def claim(owner: Obj, matches: Callable[[dict[str, str]], bool], objs: Iterable[Obj]) -> Claim:
    """Upstream BaseControllerRefManager.ClaimObject over `objs` (pure).

    Objects controlled by someone else are ignored. Orphans are adopted only when they match and
    neither they nor the owner are being deleted; owned objects that stopped matching are released
    unless the owner is being deleted.
    """
    md = owner.get("metadata") or {}
    uid = md.get("uid")
    owner_deleting = bool(md.get("deletionTimestamp"))
    out = Claim()
    for obj in objs:
        omd = obj.get("metadata") or {}
        labels = omd.get("labels") or {}
        ref = controller_ref(obj)
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches(labels):
                out.owned.append(obj)
            elif not owner_deleting and not omd.get("deletionTimestamp"):
                out.release.append(obj)
            continue
        if owner_deleting or omd.get("deletionTimestamp") or not matches(labels):
            continue
        out.adopt.append(obj)
    return out


# ---- pods from templates ---------------------------------------------------------------------


def pod_from_template(template: Obj, owner: Obj, api_version: str, kind: str) -> Obj:
    """A new pod for `owner` (upstream GetPodFromTemplate): labels, annotations and finalizers from
    the template, `generateName` `<owner>-`, a controller ownerReference, the template's spec."""
    tmd = template.get("metadata") or {}
    name = (owner.get("metadata") or {}).get("name", "")
    md: Obj = {
        "generateName": f"{name}-",
        "namespace": (owner.get("metadata") or {}).get("namespace", ""),
        "ownerReferences": [owner_reference(owner, api_version, kind)],
    }
    for k in ("labels", "annotations"):
        if tmd.get(k):
            md[k] = dict(tmd[k])
    if tmd.get("finalizers"):
        md["finalizers"] = list(tmd["finalizers"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": md,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


# ---- pod state ---------------------------------------------------------------------------------


def is_pod_active(pod: Obj) -> bool:
    """Not Succeeded/Failed and not being deleted (upstream IsPodActive)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp")


def _ready_condition(pod: Obj) -> Obj | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c  # type: ignore[no-any-return]
    return None




def pod_ready_time(pod: Obj) -> dt.datetime | None:
    """When the pod became Ready (lastTransitionTime of Ready=True), None when not ready or unknown."""
    c = _ready_condition(pod)
    if c is None or c.get("status") != "True":
        return None
    return parse_time(c.get("lastTransitionTime"))


def is_pod_available(pod: Obj, min_ready_seconds: int, now: dt.datetime) -> bool:
    """Ready for at least `min_ready_seconds` (upstream IsPodAvailable: strictly before now)."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = pod_ready_time(pod)
    return since is not None and since + dt.timedelta(seconds=min_ready_seconds) < now


def available_again_in(pods: Iterable[Obj], min_ready_seconds: int, now: dt.datetime) -> float | None:
    """Seconds until the next ready-but-not-yet-available pod becomes available (None if none)."""
    if min_ready_seconds <= 0:
        return None
    waits = []
    for p in pods:
        since = pod_ready_time(p)
        if since is not None and not is_pod_available(p, min_ready_seconds, now):
            waits.append((since + dt.timedelta(seconds=min_ready_seconds) - now).total_seconds())
    return max(0.0, min(waits)) + 1.0 if waits else None


# ---- deletion ranking ---------------------------------------------------------------------------


def _deletion_cost(pod: Obj) -> int:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(DELETION_COST_ANNOTATION)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def _max_restarts(pod: Obj) -> int:
    st = pod.get("status") or {}
    counts = [int(c.get("restartCount") or 0) for c in st.get("containerStatuses") or ()]
    counts += [int(c.get("restartCount") or 0) for c in st.get("initContainerStatuses") or ()]
    return max(counts, default=0)


def _log_rank(t: dt.datetime | None, now: dt.datetime) -> float:
    """Upstream logarithmicRankDiff: log2 of the age in nanoseconds, so pods of similar age tie."""
    if t is None:
        return -math.inf  # zero time sorts first ("empty < newer < older")
    d = (now - t).total_seconds() * 1e9
    return float(int(math.log2(d))) if d > 1 else 0.0


def deletion_sort_key(pod: Obj, rank: int, now: dt.datetime) -> tuple[Any, ...]:
    """Sort key of upstream ActivePodsWithRanks (LogarithmicScaleDown on, as in 1.32): pods that
    sort first are deleted first."""
    md = pod.get("metadata") or {}
    st = pod.get("status") or {}
    ready = is_pod_ready(pod)
    return (
        bool((pod.get("spec") or {}).get("nodeName")),  # 1. unassigned < assigned
        _PHASE_ORDINAL.get(st.get("phase", ""), -1),  # 2. pending < unknown < running
        ready,  # 3. not ready < ready
        _deletion_cost(pod),  # 4. lower pod-deletion-cost first
        -rank,  # 5. doubled up (more related pods on the node) first
        _log_rank(pod_ready_time(pod), now) if ready else 0.0,  # 6. ready for less time first
        -_max_restarts(pod),  # 7. more restarts first
        _log_rank(parse_time(md.get("creationTimestamp")), now),  # 8. newer first
        md.get("uid", ""),  # 9. UID
    )


def pods_to_delete(pods: Sequence[Obj], related: Sequence[Obj], count: int, now: dt.datetime) -> list[Obj]:
    """The `count` pods to delete (upstream getPodsToDelete): ranked by how many active `related`
    pods (from the same owner and its siblings) share their node, then ActivePodsWithRanks."""
    if count <= 0:
        return []
    if count >= len(pods):
        return list(pods)
    on_node: dict[str, int] = {}
    for p in related:
        if is_pod_active(p):
            node = (p.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    ranked = sorted(
        pods,
        key=lambda p: deletion_sort_key(p, on_node.get((p.get("spec") or {}).get("nodeName") or "", 0), now),
    )
    return ranked[:count]


# ---- batching ----------------------------------------------------------------------------------


def slow_start_batches(count: int, initial: int = SLOW_START_INITIAL_BATCH_SIZE) -> list[int]:
    """Batch sizes 1, 2, 4, ... summing to `count` (upstream slowStartBatch): a failing batch stops
    the rest, so a broken template costs one failed create instead of hundreds."""
    out: list[int] = []
    size = min(count, initial)
    remaining = count
    while size > 0:
        out.append(size)
        remaining -= size
        size = min(2 * size, remaining)
    return out


# ---- expectations ------------------------------------------------------------------------------


@dataclass
class _Expectation:
    adds: int
    deletes: set[str]
    at: float


class Expectations:
    """Creates/deletes a controller is waiting to see in its informer (upstream
    UIDTrackingControllerExpectations): while unsatisfied, a sync must not create or delete again.
    Records expire after EXPECTATIONS_TIMEOUT so a missed event cannot block an owner forever."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._by_key: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        e = self._by_key.get(key)
        if e is None:
            return True
        if e.adds <= 0 and not e.deletes:
            return True
        return self._clock() - e.at > EXPECTATIONS_TIMEOUT

    def expect(self, key: str, adds: int = 0, deletes: Iterable[str] = ()) -> None:
        self._by_key[key] = _Expectation(adds, set(deletes), self._clock())

    def creation_observed(self, key: str) -> None:
        e = self._by_key.get(key)
        if e is not None:
            e.adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        e = self._by_key.get(key)
        if e is not None:
            e.deletes.discard(pod_key)

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)
