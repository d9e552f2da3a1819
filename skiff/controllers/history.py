"""ControllerRevision helpers shared by the StatefulSet and DaemonSet controllers (pure, no I/O).

Mirrors `pkg/controller/history/controller_history.go` and the `getPatch` / `newRevision` /
`getStatefulSetRevisions` / `constructHistory` / `truncateHistory` logic of `pkg/controller/statefulset`
and `pkg/controller/daemon`:

- a revision's `data` is the template patch `{"spec": {"template": {..., "$patch": "replace"}}}`, which is
  what `kubectl rollout undo` strategic-merge-patches back onto the workload;
- the name is `<parent>-<hash>` where the hash is FNV-32 over the canonical JSON of `data` plus the
  collision count, encoded with `rand.SafeEncodeString` (the bytes differ from Go's encoder for floats and
  HTML characters, so hashes are skiff's own; only their shape and stability matter);
- revision numbers grow: an existing equal revision is reused and, unless it is already the newest,
  renumbered to max+1 (a rollback); a missing one is created with max+1;
- history beyond `revisionHistoryLimit` is pruned oldest first, never touching a revision still used by a
  live pod or the current/update revision.

Nothing here mutates its arguments.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from skiff.api.meta import Obj, parse_time
from skiff.api.pods import is_pod_ready as pod_ready
from skiff.api.selectors import SelectorError, label_selector_matcher

# `pkg/controller/history`: ControllerRevisionHashLabel.
HASH_LABEL = "controller.kubernetes.io/hash"
# `apps/v1`: ControllerRevisionHashLabelKey / DefaultDaemonSetUniqueLabelKey (on pods and DS revisions).
POD_REVISION_LABEL = "controller-revision-hash"

_SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery util/rand.SafeEncodeString
_MAX_PREFIX = 223  # ControllerRevisionName: 253 - len("-") - room for the hash


def template_patch(workload: Mapping[str, Any]) -> Obj:
    """The revision `data` of a StatefulSet/DaemonSet: its pod template marked `$patch: replace`."""
    template = copy.deepcopy((workload.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def template_of_revision(revision: Mapping[str, Any]) -> Obj:
    """The pod template a revision records (a deep copy, `$patch` directive removed)."""
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def _canonical(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def fnv32(data: bytes, h: int = 0x811C9DC5) -> int:
    """Go's `hash/fnv.New32` (FNV-1, not FNV-1a)."""
    for b in data:
        h = (h * 0x01000193) & 0xFFFFFFFF
        h ^= b
    return h


def safe_encode(s: str) -> str:
    return "".join(_SAFE_ALPHANUMS[b % len(_SAFE_ALPHANUMS)] for b in s.encode())


def revision_hash(data: Any, collision_count: int = 0) -> str:
    """`HashControllerRevision`: FNV-32 of the data, then of the collision count, safe-encoded."""
    h = fnv32(_canonical(data))
    h = fnv32(str(collision_count).encode(), h)
    return safe_encode(str(h))


def revision_name(parent_name: str, hash_: str) -> str:
    return f"{parent_name[:_MAX_PREFIX]}-{hash_}"


def controller_ref(owner: Mapping[str, Any], kind: str, api_version: str = "apps/v1") -> Obj:
    md = owner.get("metadata") or {}
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": md.get("name", ""),
        "uid": md.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: Mapping[str, Any]) -> str:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid") or "")
    return ""


def new_revision(
    parent: Mapping[str, Any],
    kind: str,
    revision: int,
    collision_count: int = 0,
    hash_labels: Sequence[str] = (HASH_LABEL,),
) -> Obj:
    """`NewControllerRevision` for `parent`: labels = template labels + the hash under `hash_labels`,
    annotations copied from the parent, a controller ownerReference, `data` = the template patch."""
    md = parent.get("metadata") or {}
    data = template_patch(parent)
    hash_ = revision_hash(data, collision_count)
    labels = dict(((parent.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {})
    for label in hash_labels:
        labels[label] = hash_
    meta: Obj = {
        "name": revision_name(str(md.get("name", "")), hash_),
        "namespace": md.get("namespace", ""),
        "labels": labels,
        "ownerReferences": [controller_ref(parent, kind)],
    }
    if md.get("annotations"):
        meta["annotations"] = dict(md["annotations"])
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": meta,
        "data": data,
        "revision": revision,
    }


def revision_number(rev: Mapping[str, Any]) -> int:
    n = rev.get("revision")
    return n if isinstance(n, int) else 0


def sort_revisions(revisions: Iterable[Obj]) -> list[Obj]:
    """Oldest first: by revision number, then creation time, then name (`history.SortControllerRevisions`)."""
    return sorted(
        revisions,
        key=lambda r: (
            revision_number(r),
            (r.get("metadata") or {}).get("creationTimestamp") or "",
            (r.get("metadata") or {}).get("name", ""),
        ),
    )


def next_revision_number(revisions: Sequence[Mapping[str, Any]]) -> int:
    return max((revision_number(r) for r in revisions), default=0) + 1


def equal_revision(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """`history.EqualRevision`: same data (the hash label is only a fast path upstream)."""
    return _canonical(a.get("data")) == _canonical(b.get("data"))


@dataclass
class HistoryPlan:
    """What to do so the workload's update revision exists and is the newest.

    `update` is the revision to use; `create` says it must be created, `renumber` that an existing equal
    revision must be updated to `update["revision"]` (a rollback to an older template)."""

    update: Obj
    create: bool = False
    renumber: bool = False


def plan_update_revision(
    parent: Mapping[str, Any],
    kind: str,
    revisions: Sequence[Obj],
    collision_count: int,
    hash_labels: Sequence[str] = (HASH_LABEL,),
) -> HistoryPlan:
    """Upstream `getStatefulSetRevisions` / DaemonSet `constructHistory` (the revisions must be owned by
    `parent`). Returns a plan; the caller performs the write and handles a name collision (AlreadyExists
    with different data) by bumping `status.collisionCount` and retrying."""
    ordered = sort_revisions(revisions)
    want = new_revision(parent, kind, next_revision_number(ordered), collision_count, hash_labels)
    equal = [r for r in ordered if equal_revision(r, want)]
    if not equal:
        return HistoryPlan(update=want, create=True)
    found = equal[-1]
    if ordered and found is ordered[-1]:
        return HistoryPlan(update=found)
    renumbered = copy.deepcopy(found)
    renumbered["revision"] = want["revision"]
    return HistoryPlan(update=renumbered, renumber=True)


def revisions_to_prune(revisions: Sequence[Obj], keep: Iterable[str], limit: int) -> list[str]:
    """Names of revisions to delete, oldest first, so at most `limit` revisions not in `keep` remain
    (`truncateHistory` / `cleanupHistory`: live revisions never count against or get deleted)."""
    keep_set = set(keep)
    dead = [r for r in sort_revisions(revisions) if (r.get("metadata") or {}).get("name") not in keep_set]
    extra = len(dead) - max(limit, 0)
    return [str((r.get("metadata") or {}).get("name")) for r in dead[:extra]] if extra > 0 else []


# Pod state both workload controllers read (`k8s.io/kubernetes/pkg/api/v1/pod` IsPodReady/IsPodAvailable).


def _ready_condition(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c  # type: ignore[no-any-return]
    return None




def pod_available(pod: Mapping[str, Any], min_ready_seconds: int, now: float) -> bool:
    """Ready for more than `min_ready_seconds` at `now` (epoch seconds), as upstream IsPodAvailable."""
    if not pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_time((_ready_condition(pod) or {}).get("lastTransitionTime"))
    return since is not None and since.timestamp() + min_ready_seconds < now


def available_in(pod: Mapping[str, Any], min_ready_seconds: int, now: float) -> float | None:
    """Seconds until a ready pod becomes available (None when not ready or already available)."""
    if not pod_ready(pod) or min_ready_seconds <= 0:
        return None
    since = parse_time((_ready_condition(pod) or {}).get("lastTransitionTime"))
    if since is None:
        return None
    left = since.timestamp() + min_ready_seconds - now
    return left if left >= 0 else None


def is_terminating(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def orphans_to_adopt(owner: Mapping[str, Any], candidates: Iterable[Obj]) -> list[Obj]:
    """Pods (or revisions) `owner` should adopt (`ClaimObject` / ControllerRefManager): no controller
    reference, not being deleted, labels matching the owner's selector; nothing when the owner is being
    deleted. The caller adds the controller reference with the object's uid as a precondition."""
    if is_terminating(owner):
        return []
    try:
        matches = label_selector_matcher((owner.get("spec") or {}).get("selector"))
    except SelectorError:
        return []
    return [
        c
        for c in candidates
        if not controller_uid(c)
        and not is_terminating(c)
        and matches((c.get("metadata") or {}).get("labels") or {})
    ]


def adoption_patch(owner: Mapping[str, Any], kind: str, obj: Mapping[str, Any]) -> Obj:
    """Merge patch adding `owner` as controller of `obj`, guarded by `obj`'s uid."""
    md = obj.get("metadata") or {}
    refs = [dict(r) for r in md.get("ownerReferences") or []] + [controller_ref(owner, kind)]
    return {"metadata": {"ownerReferences": refs, "uid": md.get("uid")}}
