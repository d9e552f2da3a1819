"""Deployment controller: roll a pod template out through ReplicaSets.

Upstream `pkg/controller/deployment/{deployment_controller,sync,rolling,recreate,progress}.go` and
`pkg/controller/deployment/util/deployment_util.go`. `sync(key)` reads the caches, claims
ReplicaSets, and then, depending on the Deployment's state, asks one pure planner what to change:

- paused or a scaling event: `plan_scale` (proportional scaling across active ReplicaSets);
- RollingUpdate: `plan_rolling_step` (scale the new RS up within maxSurge, or old ones down within
  maxUnavailable);
- Recreate: `plan_recreate_step` (all old to zero, wait for their pods, then the new one up).

It executes the scaling, deletes ReplicaSets beyond `revisionHistoryLimit` (`plan_cleanup`) and writes
the status computed by `compute_status` + `rollout_conditions`. All planners take plain dicts and
never mutate them.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from skiff.api.errors import ApiError
from skiff.api.meta import Obj, now, parse_time, rfc3339
from skiff.api.selectors import SelectorError, label_selector_matcher
from skiff.client.interface import DEPLOYMENTS, PODS, REPLICASETS, DeleteOptions, Informer, Patch
from skiff.controllers.base import Controller, ControllerContext, key_of
from skiff.controllers.podcontrol import adopt_patch, claim, controller_ref, owner_reference, release_patch

log = logging.getLogger("skiff.controllers.deployment")

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Annotations of a Deployment that are not copied to its ReplicaSets (upstream skipCopyAnnotation).
SKIP_COPY = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO})
MAX_REV_HISTORY_CHARS = 2000
MAX_INT32 = 2**31 - 1

PROGRESSING = "Progressing"
AVAILABLE = "Available"
REPLICA_FAILURE = "ReplicaFailure"
# Progressing reasons (upstream deployment_util.go).
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
FAILED_RS_CREATE = "ReplicaSetCreateError"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

RECREATE = "Recreate"
ROLLING_UPDATE = "RollingUpdate"


# ---- template hashing ---------------------------------------------------------------------------

_SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery util/rand: no vowels, no 0/1/3


def safe_encode_string(s: str) -> str:
    """apimachinery `rand.SafeEncodeString`: each byte mapped onto a vowel-free alphabet."""
    return "".join(_SAFE_ALPHANUMS[b % len(_SAFE_ALPHANUMS)] for b in s.encode())


def _prune(value: Any) -> Any:
    """Drop nulls, empty maps and empty lists recursively: `omitempty` on the wire, so a template
    that went through JSON and one that did not hash and compare the same."""
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def _canonical(value: Any) -> str:
    """A deterministic rendering of a JSON value: sorted keys, no whitespace, repr-free."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{_canonical(k)}:{_canonical(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def _fnv32a(data: bytes, h: int = 0x811C9DC5) -> int:
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def compute_hash(template: Obj, collision_count: int | None) -> str:
    """The `pod-template-hash` of a template (upstream ComputeHash): FNV-32a over the template,
    then the collision count as 8 little-endian bytes, the decimal sum safe-encoded.

    Upstream feeds the Go struct through a spew printer; we feed a canonical JSON rendering of the
    pruned template, so values differ from upstream's but are stable across restarts and versions.
    """
    data = _canonical(_prune(template)).encode()
    h = _fnv32a(data)
    if collision_count is not None:
        h = _fnv32a((collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4), h)
    return safe_encode_string(str(h))


def equal_ignore_hash(t1: Obj | None, t2: Obj | None) -> bool:
    """Templates equal apart from the `pod-template-hash` label (upstream EqualIgnoreHash)."""

    def strip(t: Obj | None) -> Any:
        t = copy.deepcopy(t or {})
        labels = (t.get("metadata") or {}).get("labels")
        if isinstance(labels, dict):
            labels.pop(HASH_LABEL, None)
        return _prune(t)

    return bool(strip(t1) == strip(t2))


# ---- small accessors ------------------------------------------------------------------------------


def _md(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def replicas_of(obj: Obj) -> int:
    """spec.replicas (defaulted to 1 as upstream)."""
    r = _spec(obj).get("replicas")
    return 1 if r is None else int(r)


def _st(obj: Obj, k: str) -> int:
    return int(_status(obj).get(k) or 0)


def _annotation_int(obj: Obj, key: str) -> int | None:
    raw = (_md(obj).get("annotations") or {}).get(key)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def revision_of(obj: Obj) -> int:
    return _annotation_int(obj, REVISION) or 0


def _created_key(rs: Obj) -> tuple[Any, ...]:
    """Upstream ReplicaSetsByCreationTimestamp: oldest first, ties by name."""
    t = parse_time(_md(rs).get("creationTimestamp"))
    return (t or dt.datetime.min.replace(tzinfo=dt.UTC), _md(rs).get("name", ""))


def is_rolling(d: Obj) -> bool:
    return ((_spec(d).get("strategy") or {}).get("type") or ROLLING_UPDATE) == ROLLING_UPDATE


def has_progress_deadline(d: Obj) -> bool:
    v = _spec(d).get("progressDeadlineSeconds")
    return v is not None and int(v) != MAX_INT32


# ---- rolling update math ----------------------------------------------------------------------------


def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: ints as is, "N%" of `total` rounded up or down."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    s = str(value)
    if not s.endswith("%"):
        return int(s)
    pct = int(s[:-1])
    return math.ceil(pct * total / 100) if round_up else math.floor(pct * total / 100)


def resolve_fenceposts(
    max_surge: int | str | None, max_unavailable: int | str | None, desired: int
) -> tuple[int, int]:
    """(surge, unavailable) for `desired` replicas: surge rounds up, unavailable down, and both
    zero becomes unavailable 1 so a rollout can always move (upstream ResolveFenceposts)."""
    surge = scaled_value(max_surge, desired, True)
    unavailable = scaled_value(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Obj) -> int:
    if not is_rolling(d):
        return 0
    ru = (_spec(d).get("strategy") or {}).get("rollingUpdate") or {}
    return resolve_fenceposts(ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%"), replicas_of(d))[0]


def max_unavailable(d: Obj) -> int:
    """Upstream MaxUnavailable: 0 for Recreate or zero replicas, never above replicas."""
    if not is_rolling(d) or replicas_of(d) == 0:
        return 0
    ru = (_spec(d).get("strategy") or {}).get("rollingUpdate") or {}
    unavailable = resolve_fenceposts(
        ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%"), replicas_of(d)
    )[1]
    return min(unavailable, replicas_of(d))


def new_rs_new_replicas(d: Obj, all_rses: Sequence[Obj], new_rs: Obj) -> int:
    """Size the new ReplicaSet may grow to now (upstream NewRSNewReplicas)."""
    if not is_rolling(d):
        return replicas_of(d)
    current = sum(replicas_of(rs) for rs in all_rses)
    max_total = replicas_of(d) + max_surge(d)
    if current >= max_total:
        return replicas_of(new_rs)
    return replicas_of(new_rs) + max(0, min(max_total - current, replicas_of(d) - replicas_of(new_rs)))


Scales = dict[str, int]  # ReplicaSet name → new spec.replicas (only those that change)


def _reconcile_new(d: Obj, all_rses: Sequence[Obj], new_rs: Obj) -> int | None:
    """Upstream reconcileNewReplicaSet: the new size of the new RS, None when unchanged."""
    want = replicas_of(d)
    have = replicas_of(new_rs)
    if have == want:
        return None
    target = want if have > want else new_rs_new_replicas(d, all_rses, new_rs)
    return None if target == have else target


def _reconcile_old(d: Obj, old_rses: Sequence[Obj], new_rs: Obj) -> Scales:
    """Upstream reconcileOldReplicaSets: first scale down unhealthy old replicas, then healthy ones,
    never taking availability below replicas - maxUnavailable."""
    active_old = sorted((rs for rs in old_rses if replicas_of(rs) > 0), key=_created_key)
    if not active_old:
        return {}
    all_rses = [*old_rses, new_rs]
    all_pods = sum(replicas_of(rs) for rs in all_rses)
    min_available = replicas_of(d) - max_unavailable(d)
    new_unavailable = replicas_of(new_rs) - _st(new_rs, "availableReplicas")
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}
    sizes = {_md(rs)["name"]: replicas_of(rs) for rs in active_old}
    # cleanupUnhealthyReplicas: pods that are not available cost nothing to remove.
    cleaned = 0
    for rs in active_old:
        if cleaned >= max_scaled_down:
            break
        name = _md(rs)["name"]
        unhealthy = sizes[name] - _st(rs, "availableReplicas")
        if sizes[name] == 0 or unhealthy <= 0:
            continue
        n = min(max_scaled_down - cleaned, unhealthy)
        sizes[name] -= n
        cleaned += n
    # scaleDownOldReplicaSetsForRollingUpdate: available pods above the minimum may go.
    available = sum(_st(rs, "availableReplicas") for rs in all_rses)
    if available > min_available:
        budget = available - min_available
        done = 0
        for rs in active_old:
            if done >= budget:
                break
            name = _md(rs)["name"]
            if sizes[name] == 0:
                continue
            n = min(sizes[name], budget - done)
            sizes[name] -= n
            done += n
    return {name: size for name, size in sizes.items() if size != replicas_of(_by_name(active_old, name))}


def _by_name(rses: Sequence[Obj], name: str) -> Obj:
    return next(rs for rs in rses if _md(rs).get("name") == name)


def plan_rolling_step(d: Obj, new_rs: Obj, old_rses: Sequence[Obj]) -> Scales:
    """One RollingUpdate step (upstream rolloutRolling): grow the new RS if it may, otherwise
    shrink old ones. Invariants: the sum of spec.replicas never exceeds replicas + maxSurge, and
    old RSes are only shrunk while availability stays at least replicas - maxUnavailable."""
    target = _reconcile_new(d, [*old_rses, new_rs], new_rs)
    if target is not None:
        return {_md(new_rs)["name"]: target}
    return _reconcile_old(d, old_rses, new_rs)


@dataclass
class RecreateStep:
    scales: Scales = field(default_factory=dict)
    create_new: bool = False  # the new RS must be created (at full size) before anything else


def plan_recreate_step(
    d: Obj, new_rs: Obj | None, old_rses: Sequence[Obj], old_pods_running: bool
) -> RecreateStep:
    """One Recreate step (upstream rolloutRecreate): old RSes to zero; once none of their pods
    runs, create or scale the new RS to full size."""
    down = {_md(rs)["name"]: 0 for rs in old_rses if replicas_of(rs) > 0}
    if down:
        return RecreateStep(scales=down)
    if old_pods_running:
        return RecreateStep()
    if new_rs is None:
        return RecreateStep(create_new=True)
    if replicas_of(new_rs) != replicas_of(d):
        return RecreateStep(scales={_md(new_rs)["name"]: replicas_of(d)})
    return RecreateStep()


def find_active_or_latest(new_rs: Obj | None, old_rses: Sequence[Obj]) -> Obj | None:
    """Upstream FindActiveOrLatest: the only active RS, or the newest if none is active."""
    if new_rs is None and not old_rses:
        return None
    newest_first = sorted(old_rses, key=_created_key, reverse=True)
    active = [rs for rs in [*newest_first, *([new_rs] if new_rs else [])] if replicas_of(rs) > 0]
    if not active:
        return new_rs if new_rs is not None else newest_first[0]
    return active[0] if len(active) == 1 else None


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    return (
        replicas_of(rs) == replicas_of(d)
        and _annotation_int(rs, DESIRED_REPLICAS) == replicas_of(d)
        and _st(rs, "availableReplicas") == replicas_of(d)
    )


def _go_round(x: float) -> int:
    """math.Round: halves away from zero."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def plan_scale(d: Obj, new_rs: Obj | None, old_rses: Sequence[Obj]) -> Scales:
    """Scaling without a rollout (upstream `scale`): a single active RS takes the new size; a
    saturated new RS means old ones go to zero; otherwise the difference to replicas + maxSurge is
    spread proportionally to each RS's share (by its max-replicas annotation), leftovers to the
    largest. In that last case every active RS is listed, changed or not, because upstream rewrites
    the replicas annotations of all of them (otherwise the scaling event would never end)."""
    want = replicas_of(d)
    only = find_active_or_latest(new_rs, old_rses)
    if only is not None:
        return {} if replicas_of(only) == want else {_md(only)["name"]: want}
    if is_saturated(d, new_rs):
        return {_md(rs)["name"]: 0 for rs in old_rses if replicas_of(rs) > 0}
    if not is_rolling(d):
        return {}
    active = [rs for rs in [*old_rses, *([new_rs] if new_rs else [])] if replicas_of(rs) > 0]
    allowed = want + max_surge(d) if want > 0 else 0
    to_add = allowed - sum(replicas_of(rs) for rs in active)

    # ReplicaSetsBySizeNewer when growing, BySizeOlder when shrinking: larger first.
    def newer(rs: Obj) -> tuple[Any, ...]:
        t, name = _created_key(rs)
        return (-replicas_of(rs), -t.timestamp(), name)

    def older(rs: Obj) -> tuple[Any, ...]:
        return (-replicas_of(rs), *_created_key(rs))

    active.sort(key=newer if to_add > 0 else older)
    sizes: dict[str, int] = {}
    added = 0
    for rs in active:
        prop = 0
        if to_add != added:
            if want == 0:
                frac = -replicas_of(rs)
            else:
                annotated = _annotation_int(rs, MAX_REPLICAS)
                base = annotated if annotated is not None else _st(d, "replicas")
                frac = _go_round(replicas_of(rs) * allowed / base) - replicas_of(rs) if base else 0
            left = to_add - added
            prop = min(frac, left) if to_add > 0 else max(frac, left)
        sizes[_md(rs)["name"]] = replicas_of(rs) + prop
        added += prop
    if to_add != 0:
        first = _md(active[0])["name"]
        sizes[first] = max(0, sizes[first] + to_add - added)
    return sizes


def is_scaling_event(d: Obj, rses: Sequence[Obj]) -> bool:
    """An active RS whose desired-replicas annotation differs from spec.replicas (upstream isScalingEvent)."""
    for rs in rses:
        if replicas_of(rs) > 0:
            desired = _annotation_int(rs, DESIRED_REPLICAS)
            if desired is not None and desired != replicas_of(d):
                return True
    return False


def plan_cleanup(d: Obj, old_rses: Sequence[Obj]) -> list[Obj]:
    """Old ReplicaSets beyond revisionHistoryLimit to delete, oldest revision first, skipping any
    that still has replicas or whose status is stale (upstream cleanupDeployment)."""
    limit = _spec(d).get("revisionHistoryLimit")
    if limit is None:
        return []
    cleanable = [rs for rs in old_rses if not _md(rs).get("deletionTimestamp")]
    diff = len(cleanable) - int(limit)
    if diff <= 0:
        return []
    cleanable.sort(key=lambda rs: (revision_of(rs), *_created_key(rs)))
    out = []
    for rs in cleanable[:diff]:
        if (
            _st(rs, "replicas") != 0
            or replicas_of(rs) != 0
            or int(_md(rs).get("generation") or 0) > _st(rs, "observedGeneration")
        ):
            continue
        out.append(rs)
    return out


# ---- ReplicaSet annotations --------------------------------------------------------------------------


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    """desired-replicas / max-replicas on `rs` (mutates it); True if anything changed."""
    ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for k, v in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if ann.get(k) != v:
            ann[k] = v
            changed = True
    return changed


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    """Upstream SetNewReplicaSetAnnotations (mutates `rs`): copy the Deployment's annotations
    (change-cause included), raise the revision (recording the previous one in revision-history
    when an old RS is brought back), and for a fresh RS the replicas annotations."""
    md = rs.setdefault("metadata", {})
    ann = md.setdefault("annotations", {})
    changed = False
    for k, v in (_md(d).get("annotations") or {}).items():
        if k in SKIP_COPY or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    old = ann.get(REVISION, "")
    try:
        old_rev = int(old) if old else 0
    except ValueError:
        old_rev = 0
    if old_rev < new_revision:
        ann[REVISION] = str(new_revision)
        changed = True
        if old:
            history = [h for h in (ann.get(REVISION_HISTORY) or "").split(",") if h] + [old]
            while history and len(",".join(history)) > MAX_REV_HISTORY_CHARS:
                history.pop(0)
            ann[REVISION_HISTORY] = ",".join(history)
    if not exists and set_replicas_annotations(rs, replicas_of(d), replicas_of(d) + max_surge(d)):
        changed = True
    if not ann:
        md.pop("annotations", None)
    return changed


def new_replica_set(d: Obj, collision_count: int | None, revision: int, old_rses: Sequence[Obj]) -> Obj:
    """The ReplicaSet for the Deployment's current template (upstream getNewReplicaSet, create
    branch): name `<deployment>-<hash>`, the hash as label and selector, size from NewRSNewReplicas."""
    template = copy.deepcopy(_spec(d).get("template") or {})
    h = compute_hash(_spec(d).get("template") or {}, collision_count)
    tmd = template.setdefault("metadata", {})
    tmd["labels"] = {**(tmd.get("labels") or {}), HASH_LABEL: h}
    selector = copy.deepcopy(_spec(d).get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: h}
    rs: Obj = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{_md(d).get('name', '')}-{h}",
            "namespace": _md(d).get("namespace", ""),
            "labels": dict(tmd["labels"]),
            "ownerReferences": [owner_reference(d, "apps/v1", "Deployment")],
        },
        "spec": {
            "replicas": 0,
            "minReadySeconds": int(_spec(d).get("minReadySeconds") or 0),
            "selector": selector,
            "template": template,
        },
    }
    set_new_rs_annotations(d, rs, revision, exists=False)
    rs["spec"]["replicas"] = new_rs_new_replicas(d, [*old_rses, rs], rs)
    return rs


def find_new_rs(d: Obj, rses: Sequence[Obj]) -> Obj | None:
    """The oldest RS whose template equals the Deployment's ignoring the hash (upstream FindNewReplicaSet)."""
    template = _spec(d).get("template")
    for rs in sorted(rses, key=_created_key):
        if equal_ignore_hash(_spec(rs).get("template"), template):
            return rs
    return None


# ---- status and conditions ---------------------------------------------------------------------------


def new_condition(type_: str, status: str, reason: str, message: str, at: dt.datetime) -> Obj:
    ts = rfc3339(at)
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": ts,
        "lastTransitionTime": ts,
        "reason": reason,
        "message": message,
    }


def get_condition(status: Obj, type_: str) -> Obj | None:
    return next((c for c in status.get("conditions") or () if c.get("type") == type_), None)


def set_condition(status: Obj, cond: Obj) -> None:
    """Upstream SetDeploymentCondition (mutates `status`): same status and reason keeps the old
    one; same status keeps its lastTransitionTime."""
    cur = get_condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] and cur.get("reason") == cond["reason"]:
        return
    if cur is not None and cur.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": cur.get("lastTransitionTime")}
    status["conditions"] = [c for c in status.get("conditions") or () if c.get("type") != cond["type"]] + [
        cond
    ]


def remove_condition(status: Obj, type_: str) -> None:
    conds = [c for c in status.get("conditions") or () if c.get("type") != type_]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


def compute_status(d: Obj, all_rses: Sequence[Obj], new_rs: Obj | None, at: dt.datetime) -> Obj:
    """Upstream calculateStatus: counters summed over the ReplicaSets and the Available condition."""
    available = sum(_st(rs, "availableReplicas") for rs in all_rses)
    total = sum(replicas_of(rs) for rs in all_rses)
    status: Obj = {
        "observedGeneration": int(_md(d).get("generation") or 0),
        "replicas": sum(_st(rs, "replicas") for rs in all_rses),
        "updatedReplicas": _st(new_rs, "replicas") if new_rs is not None else 0,
        "readyReplicas": sum(_st(rs, "readyReplicas") for rs in all_rses),
        "availableReplicas": available,
        "unavailableReplicas": max(0, total - available),
    }
    if _status(d).get("collisionCount") is not None:
        status["collisionCount"] = _status(d)["collisionCount"]
    if _status(d).get("conditions"):
        status["conditions"] = copy.deepcopy(_status(d)["conditions"])
    if available >= replicas_of(d) - max_unavailable(d):
        cond = new_condition(AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability.", at)
    else:
        cond = new_condition(
            AVAILABLE, "False", MIN_UNAVAILABLE, "Deployment does not have minimum availability.", at
        )
    set_condition(status, cond)
    return status


def deployment_complete(d: Obj, status: Obj) -> bool:
    want = replicas_of(d)
    return (
        int(status.get("updatedReplicas") or 0) == want
        and int(status.get("replicas") or 0) == want
        and int(status.get("availableReplicas") or 0) == want
        and int(status.get("observedGeneration") or 0) >= int(_md(d).get("generation") or 0)
    )


def deployment_progressing(d: Obj, status: Obj) -> bool:
    """Upstream DeploymentProgressing: more updated/ready/available pods, or fewer old ones."""
    old = _status(d)

    def g(s: Obj, k: str) -> int:
        return int(s.get(k) or 0)

    return (
        g(status, "updatedReplicas") > g(old, "updatedReplicas")
        or g(status, "replicas") - g(status, "updatedReplicas")
        < g(old, "replicas") - g(old, "updatedReplicas")
        or g(status, "readyReplicas") > g(old, "readyReplicas")
        or g(status, "availableReplicas") > g(old, "availableReplicas")
    )


def deployment_timed_out(d: Obj, status: Obj, at: dt.datetime) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    deadline = int(_spec(d).get("progressDeadlineSeconds") or 0)
    return since is not None and since + dt.timedelta(seconds=deadline) < at


def rollout_status(d: Obj, all_rses: Sequence[Obj], new_rs: Obj | None, at: dt.datetime) -> Obj:
    """Upstream syncRolloutStatus: compute_status plus the Progressing condition and the
    ReplicaFailure condition mirrored from the ReplicaSets."""
    status = compute_status(d, all_rses, new_rs, at)
    if not has_progress_deadline(d):
        remove_condition(status, PROGRESSING)
    cur = get_condition(status, PROGRESSING)
    complete = (
        int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0)
        and cur is not None
        and cur.get("reason") == NEW_RS_AVAILABLE
    )
    what = (
        f'ReplicaSet "{_md(new_rs).get("name")}"'
        if new_rs is not None
        else f'Deployment "{_md(d).get("name")}"'
    )
    if has_progress_deadline(d) and not complete:
        if deployment_complete(d, status):
            set_condition(
                status,
                new_condition(
                    PROGRESSING, "True", NEW_RS_AVAILABLE, f"{what} has successfully progressed.", at
                ),
            )
        elif deployment_progressing(d, status):
            cond = new_condition(PROGRESSING, "True", RS_UPDATED, f"{what} is progressing.", at)
            if cur is not None:
                if cur.get("status") == "True":
                    cond["lastTransitionTime"] = cur.get("lastTransitionTime")
                remove_condition(status, PROGRESSING)
            set_condition(status, cond)
        elif deployment_timed_out(d, status, at):
            set_condition(
                status,
                new_condition(PROGRESSING, "False", TIMED_OUT, f"{what} has timed out progressing.", at),
            )
    failure = None
    for rs in ([new_rs] if new_rs is not None else []) + list(all_rses):
        c = get_condition(_status(rs), REPLICA_FAILURE)
        if c is not None:
            failure = c
            break
    if failure is not None:
        ts = failure.get("lastTransitionTime") or rfc3339(at)
        set_condition(
            status,
            {
                "type": REPLICA_FAILURE,
                "status": failure.get("status", "True"),
                "lastUpdateTime": ts,
                "lastTransitionTime": ts,
                "reason": failure.get("reason", ""),
                "message": failure.get("message", ""),
            },
        )
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def requeue_after(d: Obj, status: Obj, at: dt.datetime) -> float | None:
    """Seconds until the progress deadline must be checked again (upstream requeueStuckDeployment)."""
    cond = get_condition(status, PROGRESSING)
    if not has_progress_deadline(d) or cond is None:
        return None
    if cond.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT) or deployment_complete(d, status):
        return None
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    left = (
        since + dt.timedelta(seconds=int(_spec(d).get("progressDeadlineSeconds") or 0)) - at
    ).total_seconds()
    return 0.0 if left < 1 else left + 1


def paused_condition(d: Obj, at: dt.datetime) -> Obj | None:
    """Progressing=Unknown DeploymentPaused/DeploymentResumed when `spec.paused` flips (upstream
    checkPausedConditions); None when nothing changes."""
    if not has_progress_deadline(d):
        return None
    cur = get_condition(_status(d), PROGRESSING)
    if cur is not None and cur.get("reason") == TIMED_OUT:
        return None
    paused = bool(_spec(d).get("paused"))
    if paused and (cur is None or cur.get("reason") != PAUSED):
        return new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused", at)
    if not paused and cur is not None and cur.get("reason") == PAUSED:
        return new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", at)
    return None


def status_equal(a: Obj, b: Obj) -> bool:
    keys = set(a) | set(b)
    return all((a.get(k) or 0) == (b.get(k) or 0) for k in keys)


# ---- controller -------------------------------------------------------------------------------------


class DeploymentController(Controller):
    name = "deployment"
    workers = 4

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.deployments: Informer = ctx.informers.informer(DEPLOYMENTS)
        self.rses: Informer = ctx.informers.informer(REPLICASETS)
        self.pods: Informer = ctx.informers.informer(PODS)
        self.now: Callable[[], dt.datetime] = now

    def informers(self) -> Sequence[Informer]:
        return (self.deployments, self.rses, self.pods)

    def setup(self) -> None:
        self.deployments.add_handler(self._on_deployment)
        self.rses.add_handler(self._on_rs)
        self.pods.add_handler(self._on_pod)

    # -- handlers --

    def _on_deployment(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is not None:
            self.queue.add(key_of(obj))

    def _deployment_key(self, rs: Obj) -> str | None:
        ref = controller_ref(rs)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        d = self.deployments.get(_md(rs).get("namespace", ""), ref.get("name", ""))
        if d is None or _md(d).get("uid") != ref.get("uid"):
            return None
        return key_of(d)

    def _on_rs(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        rs = new if new is not None else old
        if rs is None:
            return
        if old is not None and new is not None:
            old_key = self._deployment_key(old)
            if old_key is not None and old_key != self._deployment_key(new):
                self.queue.add(old_key)
        key = self._deployment_key(rs)
        if key is not None:
            self.queue.add(key)
        elif controller_ref(rs) is None and type_ != "DELETED":
            labels = _md(rs).get("labels") or {}
            for d in self.deployments.list(_md(rs).get("namespace", "")):
                try:
                    if label_selector_matcher(_spec(d).get("selector"))(labels):
                        self.queue.add(key_of(d))
                except SelectorError:
                    continue

    def _on_pod(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        """Recreate waits for old pods to be gone: a deleted pod may unblock its Deployment."""
        if type_ != "DELETED" or (old is None and new is None):
            return
        pod = new if new is not None else old
        assert pod is not None
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rses.get(_md(pod).get("namespace", ""), ref.get("name", ""))
        if rs is None:
            return
        key = self._deployment_key(rs)
        if key is not None:
            d = self.deployments.get(*_split(key))
            if d is not None and not is_rolling(d):
                self.queue.add(key)

    # -- sync --

    async def sync(self, key: str) -> None:
        ns, name = _split(key)
        cached = self.deployments.get(ns, name)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        at = self.now()
        selector = _spec(d).get("selector") or {}
        if not (selector.get("matchLabels") or selector.get("matchExpressions")):
            await self.events.record(_as_deployment(d),
                "Warning",
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
                self.name,
            )
            if _st(d, "observedGeneration") < int(_md(d).get("generation") or 0):
                await self._write_status(d, {**_status(d), "observedGeneration": _md(d).get("generation")})
            return
        rses = await self._claim(d)
        if _md(d).get("deletionTimestamp"):
            new_rs = find_new_rs(d, rses)
            await self._sync_status(d, rses, new_rs, at, rollout=False)
            return
        cond = paused_condition(d, at)
        if cond is not None:
            status = copy.deepcopy(_status(d))
            set_condition(status, cond)
            d = await self._write_status(d, status)
        new_rs, old_rses, d = await self._new_and_old(d, rses, at, create=False)
        if _spec(d).get("paused") or is_scaling_event(d, [*old_rses, *([new_rs] if new_rs else [])]):
            rses2 = await self._apply_scales(
                d, [*old_rses, *([new_rs] if new_rs else [])], plan_scale(d, new_rs, old_rses)
            )
            new_rs, old_rses = _split_new(rses2, new_rs)
            if _spec(d).get("paused"):
                await self._cleanup(d, old_rses)
            await self._sync_status(d, [*old_rses, *([new_rs] if new_rs else [])], new_rs, at, rollout=False)
            return
        if is_rolling(d):
            await self._rolling(d, new_rs, old_rses, rses, at)
        else:
            await self._recreate(d, new_rs, old_rses, rses, at)

    async def _rolling(
        self, d: Obj, new_rs: Obj | None, old_rses: list[Obj], rses: list[Obj], at: dt.datetime
    ) -> None:
        if new_rs is None:
            new_rs, old_rses, d = await self._new_and_old(d, rses, at, create=True)
            assert new_rs is not None
        scales = plan_rolling_step(d, new_rs, old_rses)
        all_rses = await self._apply_scales(d, [*old_rses, new_rs], scales)
        new_rs, old_rses = _split_new(all_rses, new_rs)
        if not scales and deployment_complete(d, _status(d)):
            await self._cleanup(d, old_rses)
        await self._sync_status(d, all_rses, new_rs, at, rollout=True)

    async def _recreate(
        self, d: Obj, new_rs: Obj | None, old_rses: list[Obj], rses: list[Obj], at: dt.datetime
    ) -> None:
        # Upstream oldPodsRunning: terminating pods count; Succeeded/Failed ones do not.
        running = sum(_st(rs, "replicas") for rs in old_rses) > 0 or any(
            (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            for rs in old_rses
            for p in self.pods.by_index("owner", str(_md(rs).get("uid", "")))
        )
        step = plan_recreate_step(d, new_rs, old_rses, running)
        if step.create_new:
            new_rs, old_rses, d = await self._new_and_old(d, rses, at, create=True)
            assert new_rs is not None
            step = plan_recreate_step(d, new_rs, old_rses, running)
        current = [*old_rses, *([new_rs] if new_rs else [])]
        all_rses = await self._apply_scales(d, current, step.scales)
        new_rs, old_rses = _split_new(all_rses, new_rs)
        if not step.scales and not running and deployment_complete(d, _status(d)):
            await self._cleanup(d, old_rses)
        await self._sync_status(d, all_rses, new_rs, at, rollout=True)

    async def _claim(self, d: Obj) -> list[Obj]:
        """Upstream getReplicaSetsForDeployment: adopt matching orphans (after re-reading the
        Deployment), release owned RSes that stopped matching; returns the owned ones."""
        ns = _md(d).get("namespace", "")
        try:
            matches = label_selector_matcher(_spec(d).get("selector"))
        except SelectorError:
            return []
        c = claim(d, matches, self.rses.list(ns))
        owned = list(c.owned)
        if c.adopt:
            fresh = await self.client.get(DEPLOYMENTS, ns, _md(d).get("name", ""))
            if _md(fresh).get("uid") != _md(d).get("uid") or _md(fresh).get("deletionTimestamp"):
                c.adopt = []
        ref = owner_reference(d, "apps/v1", "Deployment")
        for rs in c.adopt:
            try:
                owned.append(
                    await self.client.patch(
                        REPLICASETS,
                        ns,
                        _md(rs)["name"],
                        Patch("strategic", adopt_patch(ref, _md(rs).get("uid", ""))),
                        field_manager=self.name,
                    )
                )
            except ApiError as e:
                if e.code not in (404, 409, 422):
                    raise
        for rs in c.release:
            try:
                await self.client.patch(
                    REPLICASETS,
                    ns,
                    _md(rs)["name"],
                    Patch("strategic", release_patch(_md(d).get("uid", ""), _md(rs).get("uid", ""))),
                    field_manager=self.name,
                )
            except ApiError as e:
                if e.code not in (404, 409, 422):
                    raise
        return owned

    async def _new_and_old(
        self, d: Obj, rses: list[Obj], at: dt.datetime, create: bool
    ) -> tuple[Obj | None, list[Obj], Obj]:
        """Upstream getAllReplicaSetsAndSyncRevision: find (or create) the new RS, keep its
        annotations and minReadySeconds in step, stamp the revision on the Deployment, set the
        Progressing condition for a found/created RS. Returns (new RS, old RSes, Deployment)."""
        ns = _md(d).get("namespace", "")
        existing = find_new_rs(d, rses)
        old_rses = [rs for rs in rses if existing is None or _md(rs).get("uid") != _md(existing).get("uid")]
        new_revision = max((revision_of(rs) for rs in old_rses), default=0) + 1
        if existing is not None:
            rs = copy.deepcopy(existing)
            changed = set_new_rs_annotations(d, rs, new_revision, exists=True)
            min_ready = int(_spec(d).get("minReadySeconds") or 0)
            if int(_spec(rs).get("minReadySeconds") or 0) != min_ready:
                rs["spec"]["minReadySeconds"] = min_ready
                changed = True
            if changed:
                rs = await self.client.update(REPLICASETS, ns, rs, field_manager=self.name)
            d = await self._stamp_revision(d, (_md(rs).get("annotations") or {}).get(REVISION, ""))
            if has_progress_deadline(d) and get_condition(_status(d), PROGRESSING) is None:
                status = copy.deepcopy(_status(d))
                set_condition(
                    status,
                    new_condition(
                        PROGRESSING,
                        "True",
                        FOUND_NEW_RS,
                        f'Found new replica set "{_md(rs).get("name")}"',
                        at,
                    ),
                )
                d = await self._write_status(d, status)
            return rs, old_rses, d
        if not create:
            return None, old_rses, d
        collision = _status(d).get("collisionCount")
        rs = new_replica_set(d, collision, new_revision, old_rses)
        already_exists = False
        try:
            created = await self.client.create(REPLICASETS, ns, rs, field_manager=self.name)
        except ApiError as e:
            if e.code == 409 and e.reason == "AlreadyExists":
                other = await self.client.get(REPLICASETS, ns, _md(rs)["name"])
                ours = (controller_ref(other) or {}).get("uid") == _md(d).get("uid")
                if ours and equal_ignore_hash(_spec(other).get("template"), _spec(d).get("template")):
                    created, already_exists = other, True  # our informer has not caught up
                else:
                    # A hash collision: bump collisionCount so the next sync hashes differently.
                    status = {**copy.deepcopy(_status(d)), "collisionCount": int(collision or 0) + 1}
                    await self._write_status(d, status)
                    raise
            else:
                if has_progress_deadline(d):
                    status = copy.deepcopy(_status(d))
                    set_condition(
                        status,
                        new_condition(
                            PROGRESSING,
                            "False",
                            FAILED_RS_CREATE,
                            f'Failed to create new replica set "{_md(rs)["name"]}": {e.message}',
                            at,
                        ),
                    )
                    await self._write_status(d, status)
                raise
        if not already_exists and replicas_of(created) > 0:
            await self.events.record(_as_deployment(d),
                "Normal",
                "ScalingReplicaSet",
                f"Scaled up replica set {_md(created)['name']} from 0 to {replicas_of(created)}",
                self.name,
            )
        d = await self._stamp_revision(d, str(new_revision))
        if not already_exists and has_progress_deadline(d):
            status = copy.deepcopy(_status(d))
            set_condition(
                status,
                new_condition(
                    PROGRESSING,
                    "True",
                    NEW_RS_CREATED,
                    f'Created new replica set "{_md(created)["name"]}"',
                    at,
                ),
            )
            d = await self._write_status(d, status)
        return created, old_rses, d

    async def _stamp_revision(self, d: Obj, revision: str) -> Obj:
        """deployment.kubernetes.io/revision on the Deployment. Upstream writes it through /status
        (deploymentStatusStrategy keeps annotations, so the generation does not move); if this
        server's /status drops metadata changes, fall back to a main-resource update, which bumps
        metadata.generation (annotation changes do on Deployments)."""
        ann = _md(d).get("annotations") or {}
        if not revision or ann.get(REVISION) == revision:
            return d
        ns = _md(d).get("namespace", "")
        obj = copy.deepcopy(d)
        obj["metadata"]["annotations"] = {**ann, REVISION: revision}
        updated = await self.client.update(
            DEPLOYMENTS, ns, obj, subresource="status", field_manager=self.name
        )
        if (_md(updated).get("annotations") or {}).get(REVISION) == revision:
            return updated
        obj["metadata"]["resourceVersion"] = _md(updated).get("resourceVersion")
        updated = await self.client.update(DEPLOYMENTS, ns, obj, field_manager=self.name)
        return updated

    async def _apply_scales(self, d: Obj, rses: list[Obj], scales: Scales) -> list[Obj]:
        """Upstream scaleReplicaSetAndRecordEvent for every RS; also refreshes the replicas
        annotations of RSes whose size is unchanged. Returns the RSes as now stored."""
        out = []
        want, surge = replicas_of(d), max_surge(d)
        for rs in rses:
            name = _md(rs)["name"]
            size = scales.get(name, replicas_of(rs))
            obj = copy.deepcopy(rs)
            ann_changed = set_replicas_annotations(obj, want, want + surge) if name in scales else False
            if size == replicas_of(rs) and not ann_changed:
                out.append(rs)
                continue
            obj["spec"]["replicas"] = size
            updated = await self.client.update(
                REPLICASETS, _md(rs).get("namespace", ""), obj, field_manager=self.name
            )
            if size != replicas_of(rs):
                op = "up" if size > replicas_of(rs) else "down"
                await self.events.record(_as_deployment(d),
                    "Normal",
                    "ScalingReplicaSet",
                    f"Scaled {op} replica set {name} from {replicas_of(rs)} to {size}",
                    self.name,
                )
            out.append(updated)
        return out

    async def _cleanup(self, d: Obj, old_rses: list[Obj]) -> None:
        for rs in plan_cleanup(d, old_rses):
            try:
                await self.client.delete(
                    REPLICASETS, _md(rs).get("namespace", ""), _md(rs)["name"], DeleteOptions()
                )
            except ApiError as e:
                if e.code != 404:
                    raise

    async def _sync_status(
        self, d: Obj, all_rses: list[Obj], new_rs: Obj | None, at: dt.datetime, rollout: bool
    ) -> None:
        if rollout:
            status = rollout_status(d, all_rses, new_rs, at)
        else:
            status = compute_status(d, all_rses, new_rs, at)
        if not status_equal(_status(d), status):
            d = await self._write_status(d, status)
        if rollout:
            wait = requeue_after(d, status, at)
            if wait is not None:
                if wait <= 0:
                    self.queue.add_rate_limited(key_of(d))
                else:
                    self.queue.add_after(key_of(d), wait)

    async def _write_status(self, d: Obj, status: Obj) -> Obj:
        obj = copy.deepcopy(d)
        obj["status"] = _omit_zero_status(status)
        updated = await self.client.update(
            DEPLOYMENTS, _md(d).get("namespace", ""), obj, subresource="status", field_manager=self.name
        )
        return updated


def _omit_zero_status(status: Obj) -> Obj:
    out = dict(status)
    for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
        if not out.get(k):
            out.pop(k, None)
    return out


def _split(key: str) -> tuple[str, str]:
    ns, _, name = key.rpartition("/")
    return ns, name


def _split_new(rses: list[Obj], new_rs: Obj | None) -> tuple[Obj | None, list[Obj]]:
    if new_rs is None:
        return None, rses
    uid = _md(new_rs).get("uid")
    new = next((rs for rs in rses if _md(rs).get("uid") == uid), new_rs)
    return new, [rs for rs in rses if _md(rs).get("uid") != uid]


def _as_deployment(d: Obj) -> Obj:
    return {**d, "kind": "Deployment", "apiVersion": "apps/v1"}
