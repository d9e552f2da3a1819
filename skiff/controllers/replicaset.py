"""ReplicaSet (and ReplicationController) controller: keep `spec.replicas` active pods per owner.

Upstream `pkg/controller/replicaset/replica_set.go` and `replica_set_utils.go`. `sync(key)` reads the
informer caches, claims pods (adopt orphans that match, release owned ones that do not), asks the
pure `plan_replicas` how many pods to create and which to delete, executes that in slow-start
batches, then writes the status computed by the pure `compute_status`. Expectations stop a second
sync from creating again before the informer has seen the pods of the first.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from skiff.api.errors import ApiError
from skiff.api.meta import Obj, now, rfc3339
from skiff.api.pods import is_pod_ready
from skiff.api.selectors import SelectorError, label_selector_matcher
from skiff.client.interface import PODS, REPLICASETS, Informer, Patch, Resource
from skiff.controllers.base import Controller, ControllerContext, key_of
from skiff.controllers.podcontrol import (
    BURST_REPLICAS,
    ORPHANS_INDEX,
    Expectations,
    adopt_patch,
    available_again_in,
    claim,
    controller_ref,
    ensure_orphans_index,
    is_pod_active,
    is_pod_available,
    owner_reference,
    pod_from_template,
    pods_to_delete,
    release_patch,
    slow_start_batches,
)

log = logging.getLogger("skiff.controllers.replicaset")

REPLICATIONCONTROLLERS = Resource("", "v1", "replicationcontrollers")
REPLICA_FAILURE = "ReplicaFailure"
Matcher = Callable[[dict[str, str]], bool]


# ---- pure decisions --------------------------------------------------------------------------


@dataclass
class ReplicaPlan:
    create: int = 0
    delete: list[Obj] = field(default_factory=list)


def plan_replicas(desired: int, pods: Sequence[Obj], related: Sequence[Obj], at: dt.datetime) -> ReplicaPlan:
    """How to move from the active owned `pods` to `desired` (upstream manageReplicas): create the
    shortfall or delete the surplus, at most BURST_REPLICAS either way; deletions follow the
    upstream ranking (`pods_to_delete`)."""
    diff = len(pods) - desired
    if diff < 0:
        return ReplicaPlan(create=min(-diff, BURST_REPLICAS))
    if diff > 0:
        return ReplicaPlan(delete=pods_to_delete(pods, related, min(diff, BURST_REPLICAS), at))
    return ReplicaPlan()


def _omit_zero(status: Obj, *keys: str) -> Obj:
    """Drop zero counters the way the Go types' `omitempty` does on the wire."""
    for k in keys:
        if not status.get(k):
            status.pop(k, None)
    return status


def compute_status(rs: Obj, pods: Sequence[Obj], manage_error: str | None, diff: int, at: dt.datetime) -> Obj:
    """Status of `rs` given its active owned `pods` (upstream calculateStatus). `manage_error` is
    the create/delete failure of this sync (None if none), `diff` = len(pods) - desired before it;
    the ReplicaFailure condition is added on failure and removed on the next clean sync."""
    spec = rs.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    status: Obj = copy.deepcopy(rs.get("status") or {})
    # One pass over the pods (a ReplicaSet of 10,000 is re-counted on every pod status change).
    labeled = ready = available = 0
    wanted = template_labels.items()
    for p in pods:
        labels = (p.get("metadata") or {}).get("labels") or {}
        if all(labels.get(k) == v for k, v in wanted):
            labeled += 1
        if is_pod_ready(p):
            ready += 1
            if min_ready <= 0 or is_pod_available(p, min_ready, at):
                available += 1
    status["replicas"] = len(pods)
    status["fullyLabeledReplicas"] = labeled
    status["readyReplicas"] = ready
    status["availableReplicas"] = available
    status["observedGeneration"] = (rs.get("metadata") or {}).get("generation", 0)
    conditions = [c for c in status.get("conditions") or () if c.get("type") != REPLICA_FAILURE]
    failure = next((c for c in status.get("conditions") or () if c.get("type") == REPLICA_FAILURE), None)
    if manage_error is not None:
        if failure is None:
            failure = {
                "type": REPLICA_FAILURE,
                "status": "True",
                "lastTransitionTime": rfc3339(at),
                "reason": "FailedCreate" if diff < 0 else "FailedDelete",
                "message": manage_error,
            }
        conditions.append(failure)
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    return _omit_zero(
        status, "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration"
    )


def status_changed(old: Obj, new: Obj) -> bool:
    keys = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration")
    return any((old.get(k) or 0) != (new.get(k) or 0) for k in keys) or (old.get("conditions") or []) != (
        new.get("conditions") or []
    )


def selector_matcher(owner: Obj, map_selector: bool) -> Matcher:
    """LabelSelector matcher (ReplicationController: a plain map, where empty selects nothing)."""
    sel = (owner.get("spec") or {}).get("selector")
    if map_selector:
        labels = dict(sel or {})
        return (lambda lb: all(lb.get(k) == v for k, v in labels.items())) if labels else (lambda lb: False)
    if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        return lambda lb: False  # upstream: an empty selector on a ReplicaSet matches nothing here
    return label_selector_matcher(sel)


# ---- controller -------------------------------------------------------------------------------


class ReplicaSetController(Controller):
    """Upstream ReplicaSetController; `ReplicationManager` below reuses it for core/v1 RCs."""

    name = "replicaset"
    workers = 4
    resource = REPLICASETS
    kind = "ReplicaSet"
    map_selector = False

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.expectations = Expectations(ctx.clock)
        self.owners: Informer = ctx.informers.informer(self.resource)
        self.pods: Informer = ctx.informers.informer(PODS)
        self.now: Callable[[], dt.datetime] = now

    def informers(self) -> Sequence[Informer]:
        return (self.owners, self.pods)

    def setup(self) -> None:
        ensure_orphans_index(self.pods)
        self.owners.add_handler(self._on_owner)
        self.pods.add_handler(self._on_pod)

    # -- handlers: only enqueue (and account expectations) --

    def _on_owner(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        if type_ == "DELETED":
            self.expectations.forget(key_of(obj))
        self.queue.add(key_of(obj))

    def _owner_key(self, pod: Obj) -> str | None:
        """Key of the pod's controlling owner of our kind, if it is in the cache with the same UID."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != self.kind:
            return None
        ns = (pod.get("metadata") or {}).get("namespace", "")
        owner = self.owners.get(ns, ref.get("name", ""))
        if owner is None or (owner.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return key_of(owner)

    def _orphan_owner_keys(self, pod: Obj) -> list[str]:
        md = pod.get("metadata") or {}
        labels = md.get("labels") or {}
        out = []
        for owner in self.owners.list(md.get("namespace", "")):
            try:
                if selector_matcher(owner, self.map_selector)(labels):
                    out.append(key_of(owner))
            except SelectorError:
                continue
        return out

    def _on_pod(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        pod = new if new is not None else old
        if pod is None:
            return
        pod_key = key_of(pod)
        if type_ == "DELETED" or (pod.get("metadata") or {}).get("deletionTimestamp"):
            key = self._owner_key(pod)
            if key is not None:
                self.expectations.deletion_observed(key, pod_key)
                self.queue.add(key)
            return
        if old is not None and new is not None:
            old_key = self._owner_key(old)
            if old_key is not None and old_key != self._owner_key(new):
                self.queue.add(old_key)
        key = self._owner_key(pod)
        if key is not None:
            if type_ == "ADDED":
                self.expectations.creation_observed(key)
            self.queue.add(key)
            return
        if controller_ref(pod) is None:
            for k in self._orphan_owner_keys(pod):  # an orphan: whoever matches may adopt it
                self.queue.add(k)

    # -- sync --

    async def sync(self, key: str) -> None:
        ns, _, name = key.rpartition("/")
        cached = self.owners.get(ns, name)
        if cached is None:
            self.expectations.forget(key)
            return
        rs = cached
        needs_sync = self.expectations.satisfied(key)
        try:
            matches = selector_matcher(rs, self.map_selector)
        except SelectorError as e:
            log.info("%s %s: invalid selector: %s", self.kind, key, e)
            return
        uid = str((rs.get("metadata") or {}).get("uid", ""))
        # Only our pods and orphans can be claimed: the indexes spare a scan of the namespace.
        candidates = [*self.pods.by_index("owner", uid), *self.pods.by_index(ORPHANS_INDEX, ns)]
        pods = await self._claim(rs, matches, [p for p in candidates if is_pod_active(p)])
        at = self.now()
        desired = int((rs.get("spec") or {}).get("replicas", 1))
        diff = len(pods) - desired
        error: ApiError | Exception | None = None
        if needs_sync and not (rs.get("metadata") or {}).get("deletionTimestamp"):
            related = [
                p for s in self._sibling_uids(rs) for p in self.pods.by_index("owner", s) if is_pod_active(p)
            ]
            error = await self._manage(key, rs, plan_replicas(desired, pods, related, at))
        status = compute_status(rs, pods, str(error) if error is not None else None, diff, at)
        if status_changed(rs.get("status") or {}, status):
            await self._write_status(rs, status)
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        if error is None and min_ready > 0:
            wait = available_again_in(pods, min_ready, at)
            if wait is not None:
                self.queue.add_after(key, wait)
        if error is not None:
            raise error

    def _sibling_uids(self, rs: Obj) -> set[str]:
        """UIDs of `rs` and of the owners sharing its controller (a Deployment's other ReplicaSets):
        their pods count when ranking pods for deletion (upstream getIndirectlyRelatedPods)."""
        md = rs.get("metadata") or {}
        uids = {str(md.get("uid", ""))}
        parent = (controller_ref(rs) or {}).get("uid")
        if parent:
            for other in self.owners.list(md.get("namespace", "")):
                if (controller_ref(other) or {}).get("uid") == parent:
                    uids.add(str((other.get("metadata") or {}).get("uid", "")))
        return uids

    async def _claim(self, rs: Obj, matches: Matcher, pods: list[Obj]) -> list[Obj]:
        """Upstream claimPods: adoption re-reads the owner first (canAdoptFunc) so a deleted-and-
        recreated owner of the same name never adopts its predecessor's pods."""
        c = claim(rs, matches, pods)
        owned = list(c.owned)
        md = rs.get("metadata") or {}
        if c.adopt:
            fresh = await self.client.get(self.resource, md.get("namespace", ""), md.get("name", ""))
            if (fresh.get("metadata") or {}).get("uid") != md.get("uid") or (fresh.get("metadata") or {}).get(
                "deletionTimestamp"
            ):
                c.adopt = []
        ref = owner_reference(rs, self.resource.api_version, self.kind)
        for pod in c.adopt:
            pmd = pod.get("metadata") or {}
            try:
                adopted = await self.client.patch(
                    PODS,
                    pmd.get("namespace", ""),
                    pmd.get("name", ""),
                    Patch("strategic", adopt_patch(ref, pmd.get("uid", ""))),
                    field_manager=self.name,
                )
                owned.append(adopted)
            except ApiError as e:
                if e.code not in (404, 409, 422):
                    raise
        for pod in c.release:
            pmd = pod.get("metadata") or {}
            try:
                await self.client.patch(
                    PODS,
                    pmd.get("namespace", ""),
                    pmd.get("name", ""),
                    Patch("strategic", release_patch(md.get("uid", ""), pmd.get("uid", ""))),
                    field_manager=self.name,
                )
            except ApiError as e:
                if e.code not in (404, 409, 422):
                    raise
        return owned

    async def _manage(self, key: str, rs: Obj, plan: ReplicaPlan) -> Exception | None:
        """Execute a plan (upstream manageReplicas); returns the first failure instead of raising so
        the status still gets written."""
        ns = (rs.get("metadata") or {}).get("namespace", "")
        if plan.create:
            self.expectations.expect(key, adds=plan.create)
            template = (rs.get("spec") or {}).get("template") or {}
            done = 0
            for size in slow_start_batches(plan.create):
                results = await asyncio.gather(
                    *(self._create_pod(rs, ns, template) for _ in range(size)), return_exceptions=True
                )
                done += size
                errors = [r for r in results if isinstance(r, BaseException)]
                for _ in errors:
                    self.expectations.creation_observed(key)  # a failed create will never be observed
                if errors:
                    for _ in range(plan.create - done):  # skipped batches
                        self.expectations.creation_observed(key)
                    err = errors[0]
                    if isinstance(err, Exception):
                        return err
                    raise err
        if plan.delete:
            self.expectations.expect(key, deletes=[key_of(p) for p in plan.delete])
            results = await asyncio.gather(
                *(self._delete_pod(rs, p) for p in plan.delete), return_exceptions=True
            )
            for pod, r in zip(plan.delete, results, strict=True):
                if isinstance(r, BaseException):
                    self.expectations.deletion_observed(key, key_of(pod))
            errs = [r for r in results if isinstance(r, BaseException)]
            if errs:
                err = errs[0]
                if isinstance(err, Exception):
                    return err
                raise err
        return None

    async def _create_pod(self, rs: Obj, ns: str, template: Obj) -> None:
        pod = pod_from_template(template, rs, self.resource.api_version, self.kind)
        try:
            created = await self.client.create(PODS, ns, pod, field_manager=self.name)
        except ApiError as e:
            await self.events.record(self._event_obj(rs),
                "Warning",
                "FailedCreate",
                f"Error creating: {e.message}",
                self.name,
            )
            raise
        await self.events.record(self._event_obj(rs),
            "Normal",
            "SuccessfulCreate",
            f"Created pod: {created['metadata']['name']}",
            self.name,
        )

    async def _delete_pod(self, rs: Obj, pod: Obj) -> None:
        pmd = pod.get("metadata") or {}
        try:
            await self.client.delete(PODS, pmd.get("namespace", ""), pmd.get("name", ""))
        except ApiError as e:
            if e.code == 404:
                return
            await self.events.record(self._event_obj(rs),
                "Warning",
                "FailedDelete",
                f"Error deleting: {e.message}",
                self.name,
            )
            raise
        await self.events.record(self._event_obj(rs),
            "Normal",
            "SuccessfulDelete",
            f"Deleted pod: {pmd.get('name', '')}",
            self.name,
        )

    def _event_obj(self, rs: Obj) -> Obj:
        return {**rs, "kind": self.kind, "apiVersion": self.resource.api_version}

    async def _write_status(self, rs: Obj, status: Obj) -> None:
        """PUT /status with the cached resourceVersion; on conflict re-read once and retry
        (upstream updateReplicaSetStatus)."""
        md = rs.get("metadata") or {}
        obj = {**rs, "status": status}
        for attempt in range(2):
            try:
                await self.client.update(
                    self.resource, md.get("namespace", ""), obj, subresource="status", field_manager=self.name
                )
                return
            except ApiError as e:
                if e.code != 409 or attempt == 1:
                    if e.code == 404:
                        return
                    raise
            fresh = await self.client.get(self.resource, md.get("namespace", ""), md.get("name", ""))
            obj = {**fresh, "status": status}


class ReplicationManager(ReplicaSetController):
    """core/v1 ReplicationControllers: the same logic with a map selector (upstream
    pkg/controller/replication, itself a thin adapter over the ReplicaSet controller)."""

    name = "replicationcontroller"
    resource = REPLICATIONCONTROLLERS
    kind = "ReplicationController"
    map_selector = True
