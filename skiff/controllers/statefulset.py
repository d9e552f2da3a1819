"""StatefulSet controller: stable pod identities `<set>-<ordinal>`, their claims, ordered rollout.

Mirrors `pkg/controller/statefulset` (stateful_set_control.go `updateStatefulSet`,
stateful_set_utils.go, stateful_set_status_updater.go) of Kubernetes 1.32:

- pods `<name>-<ordinal>` for ordinals `[start, start+replicas)` (`spec.ordinals.start`), labelled
  `statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index` and `controller-revision-hash`,
  with `hostname` = pod name and `subdomain` = `serviceName`;
- `volumeClaimTemplates` become PVCs `<claim>-<set>-<ordinal>`, created before the pod and mounted in
  place of any template volume of the same name;
- OrderedReady creates in ascending order waiting for each pod to be Running+Ready(+available), and
  deletes condemned pods in descending order one at a time; Parallel does both at once;
- RollingUpdate deletes the highest-ordinal pod at or above the partition that is not at the update
  revision, one at a time, waiting for health; pods below the partition are (re)created from the current
  revision; OnDelete only recreates deleted pods, from the update revision;
- ControllerRevisions as in skiff.controllers.history, status as `computeReplicaStatus` +
  `completeRollingUpdate`.

`plan_statefulset` and `statefulset_status` are pure; `StatefulSetController.sync` reads the informer
caches, calls them and writes through the client.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from skiff.api.errors import ApiError
from skiff.api.meta import Obj
from skiff.api.pods import is_pod_ready as pod_ready
from skiff.client.interface import (
    CONTROLLERREVISIONS,
    PODS,
    PVCS,
    STATEFULSETS,
    Client,
    Informer,
    Patch,
    Resource,
)
from skiff.controllers.base import Controller, ControllerContext, key_of, split_key
from skiff.controllers.history import (
    HASH_LABEL,
    POD_REVISION_LABEL,
    adoption_patch,
    available_in,
    controller_ref,
    controller_uid,
    equal_revision,
    is_terminating,
    orphans_to_adopt,
    plan_update_revision,
    pod_available,
    revisions_to_prune,
    template_of_revision,
)

log = logging.getLogger("skiff.controllers.statefulset")

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
KIND = "StatefulSet"
COMPONENT = "statefulset-controller"


# ---- pure helpers -------------------------------------------------------------------------------------


def _spec(sts: Mapping[str, Any]) -> Mapping[str, Any]:
    return sts.get("spec") or {}


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def replicas_of(sts: Mapping[str, Any]) -> int:
    return _int(_spec(sts).get("replicas"), 1)


def start_ordinal(sts: Mapping[str, Any]) -> int:
    return _int((_spec(sts).get("ordinals") or {}).get("start"), 0)


def is_parallel(sts: Mapping[str, Any]) -> bool:
    return _spec(sts).get("podManagementPolicy") == "Parallel"


def update_strategy(sts: Mapping[str, Any]) -> tuple[str, int | None]:
    """(type, partition): partition is None when RollingUpdate has no rollingUpdate block."""
    us = _spec(sts).get("updateStrategy") or {}
    type_ = us.get("type") or "RollingUpdate"
    ru = us.get("rollingUpdate")
    partition = _int(ru.get("partition"), 0) if isinstance(ru, dict) else None
    return type_, partition


def ordinal_of(sts: Mapping[str, Any], pod: Mapping[str, Any]) -> int | None:
    """The ordinal of a member pod (`<set>-<n>`), None for a pod that is not a member by name."""
    name = str((pod.get("metadata") or {}).get("name") or "")
    m = re.fullmatch(
        re.escape(str((sts.get("metadata") or {}).get("name") or "")) + r"-(0|[1-9][0-9]*)", name
    )
    return int(m.group(1)) if m else None


def pod_name(sts: Mapping[str, Any], ordinal: int) -> str:
    return f"{(sts.get('metadata') or {}).get('name', '')}-{ordinal}"


def claim_name(sts: Mapping[str, Any], claim_template: Mapping[str, Any], ordinal: int) -> str:
    return f"{(claim_template.get('metadata') or {}).get('name', '')}-{pod_name(sts, ordinal)}"


def retention_policy(sts: Mapping[str, Any]) -> tuple[str, str]:
    """(whenDeleted, whenScaled) of `persistentVolumeClaimRetentionPolicy`, both defaulting to Retain."""
    policy = _spec(sts).get("persistentVolumeClaimRetentionPolicy") or {}
    return policy.get("whenDeleted") or "Retain", policy.get("whenScaled") or "Retain"


def claim_owner_refs(
    sts: Mapping[str, Any], claim: Mapping[str, Any], pod: Mapping[str, Any] | None, in_range: bool
) -> list[Obj]:
    """The ownerReferences a member claim should carry (`updateClaimOwnerRefForSetAndPod`).

    whenDeleted=Delete: owned by the set while its pod is in range (so deleting the set deletes it);
    whenScaled=Delete: owned by its pod once that pod is scaled away (so the garbage collector deletes
    the claim after the pod). References to other owners are kept as they are."""
    when_deleted, when_scaled = retention_policy(sts)
    smd, pmd = sts.get("metadata") or {}, (pod or {}).get("metadata") or {}
    ours = {smd.get("uid"), pmd.get("uid")} - {None, ""}
    refs = [
        dict(r)
        for r in (claim.get("metadata") or {}).get("ownerReferences") or []
        if r.get("uid") not in ours
    ]
    if when_deleted == "Delete" and (in_range or when_scaled != "Delete"):
        refs.append(
            {"apiVersion": "apps/v1", "kind": KIND, "name": smd.get("name", ""), "uid": smd.get("uid", "")}
        )
    if when_scaled == "Delete" and not in_range and pmd.get("uid"):
        refs.append({"apiVersion": "v1", "kind": "Pod", "name": pmd.get("name", ""), "uid": pmd["uid"]})
    return refs


def _same_refs(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> bool:
    def key(refs: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
        return sorted((str(r.get("uid")), str(r.get("kind")), str(r.get("name"))) for r in refs)

    return key(a) == key(b)


def claims_for(sts: Mapping[str, Any], ordinal: int) -> list[Obj]:
    """The PVCs of one ordinal (`getPersistentVolumeClaims`): template + selector matchLabels, and the
    set as owner when `whenDeleted` is Delete."""
    md = sts.get("metadata") or {}
    selector_labels = (_spec(sts).get("selector") or {}).get("matchLabels") or {}
    out = []
    for tmpl in _spec(sts).get("volumeClaimTemplates") or []:
        tmd = tmpl.get("metadata") or {}
        meta: Obj = {
            "name": claim_name(sts, tmpl, ordinal),
            "namespace": md.get("namespace", ""),
            "labels": {**(tmd.get("labels") or {}), **selector_labels},
        }
        if tmd.get("annotations"):
            meta["annotations"] = dict(tmd["annotations"])
        refs = claim_owner_refs(sts, {}, None, True)
        if refs:
            meta["ownerReferences"] = refs
        out.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": meta,
                "spec": copy.deepcopy(tmpl.get("spec") or {}),
            }
        )
    return out


def new_pod(sts: Mapping[str, Any], template: Mapping[str, Any], ordinal: int, revision: str) -> Obj:
    """`newVersionedStatefulSetPod`: the pod of `ordinal` built from `template` at `revision`."""
    md = sts.get("metadata") or {}
    tmd = template.get("metadata") or {}
    name = pod_name(sts, ordinal)
    labels = {
        **(tmd.get("labels") or {}),
        POD_NAME_LABEL: name,
        POD_INDEX_LABEL: str(ordinal),
        POD_REVISION_LABEL: revision,
    }
    meta: Obj = {
        "name": name,
        "namespace": md.get("namespace", ""),
        "labels": labels,
        "ownerReferences": [controller_ref(sts, KIND)],
    }
    if tmd.get("annotations"):
        meta["annotations"] = dict(tmd["annotations"])
    spec = copy.deepcopy(template.get("spec") or {})
    spec["hostname"] = name
    if _spec(sts).get("serviceName"):
        spec["subdomain"] = _spec(sts)["serviceName"]
    claim_templates = _spec(sts).get("volumeClaimTemplates") or []
    if claim_templates:
        names = {(t.get("metadata") or {}).get("name") for t in claim_templates}
        volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in names]
        for t in claim_templates:
            volumes.append(
                {
                    "name": (t.get("metadata") or {}).get("name"),
                    "persistentVolumeClaim": {"claimName": claim_name(sts, t, ordinal)},
                }
            )
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _labels(pod: Mapping[str, Any]) -> Mapping[str, str]:
    return (pod.get("metadata") or {}).get("labels") or {}


def pod_revision(pod: Mapping[str, Any]) -> str:
    return str(_labels(pod).get(POD_REVISION_LABEL) or "")


def _phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_created(pod: Mapping[str, Any]) -> bool:
    return _phase(pod) != ""


def running_and_ready(pod: Mapping[str, Any]) -> bool:
    return _phase(pod) == "Running" and pod_ready(pod)


def running_and_available(pod: Mapping[str, Any], min_ready: int, now: float) -> bool:
    return _phase(pod) == "Running" and pod_available(pod, min_ready, now)


def healthy(pod: Mapping[str, Any]) -> bool:
    return running_and_ready(pod) and not is_terminating(pod)


def _finished(pod: Mapping[str, Any]) -> bool:
    return _phase(pod) in ("Failed", "Succeeded")


@dataclass
class PodCreate:
    pod: Obj
    claims: list[Obj]  # claims that do not exist yet, to create first


@dataclass
class StatefulSetPlan:
    creates: list[PodCreate] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)  # pod names, in order
    # (claim name, ownerReferences) to set before any delete: the retention policy's owners
    claim_owners: list[tuple[str, list[Obj]]] = field(default_factory=list)
    requeue_after: float | None = None  # a pod becomes available after minReadySeconds

    @property
    def empty(self) -> bool:
        return not self.creates and not self.deletes


def plan_statefulset(
    sts: Mapping[str, Any],
    pods: Sequence[Obj],
    current_revision: Mapping[str, Any],
    update_revision: Mapping[str, Any],
    existing_claims: Mapping[str, Obj],
    now: float,
) -> StatefulSetPlan:
    """One step of `updateStatefulSet` over the set's own pods. Pure; mutates nothing.

    `current_revision`/`update_revision` are ControllerRevisions; `existing_claims` the PVCs of the
    namespace by name; `now` epoch seconds (for minReadySeconds)."""
    plan = StatefulSetPlan()
    if is_terminating(sts):
        return plan
    spec = _spec(sts)
    min_ready = _int(spec.get("minReadySeconds"), 0)
    monotonic = not is_parallel(sts)
    start, count = start_ordinal(sts), replicas_of(sts)
    strategy, partition = update_strategy(sts)
    current_name = str((current_revision.get("metadata") or {}).get("name") or "")
    update_name = str((update_revision.get("metadata") or {}).get("name") or "")
    current_template = template_of_revision(current_revision)
    update_template = template_of_revision(update_revision)
    status_current = _int((sts.get("status") or {}).get("currentReplicas"), 0)

    replicas: dict[int, Obj] = {}
    condemned: list[tuple[int, Obj]] = []
    for pod in pods:
        ordinal = ordinal_of(sts, pod)
        if ordinal is None:
            continue
        if start <= ordinal < start + count:
            replicas[ordinal] = pod
        else:
            condemned.append((ordinal, pod))
    condemned.sort(key=lambda t: t[0])

    # Retention-policy owners of the claims of live members (before any condemned pod is deleted).
    for ordinal, member in sorted(replicas.items()) + condemned:
        if is_terminating(member):
            continue
        in_range = start <= ordinal < start + count
        for tmpl in spec.get("volumeClaimTemplates") or []:
            existing = existing_claims.get(claim_name(sts, tmpl, ordinal))
            if existing is None or is_terminating(existing):
                continue
            want = claim_owner_refs(sts, existing, member, in_range)
            if not _same_refs(want, (existing.get("metadata") or {}).get("ownerReferences") or []):
                plan.claim_owners.append((str(existing["metadata"]["name"]), want))

    def versioned(ordinal: int) -> Obj:
        # `newVersionedStatefulSetPod`: below the partition (or below status.currentReplicas when the
        # strategy has no rollingUpdate block) pods keep the current revision.
        index = ordinal - start
        keep_current = strategy == "RollingUpdate" and (
            (partition is None and index < status_current) or (partition is not None and index < partition)
        )
        if keep_current:
            return new_pod(sts, current_template, ordinal, current_name)
        return new_pod(sts, update_template, ordinal, update_name)

    def create(ordinal: int) -> None:
        pod = versioned(ordinal)
        claims = [c for c in claims_for(sts, ordinal) if c["metadata"]["name"] not in existing_claims]
        plan.creates.append(PodCreate(pod, claims))

    # The first unhealthy pod, replicas ascending then condemned (upstream order of `firstUnhealthyPod`).
    first_unhealthy: str | None = None
    for _, member in sorted(replicas.items()) + condemned:
        if not healthy(member):
            first_unhealthy = (member.get("metadata") or {}).get("name")
            break

    for ordinal in range(start, start + count):
        slot = replicas.get(ordinal)
        if slot is None:
            create(ordinal)
            if monotonic:
                return plan
            continue
        pod = slot
        if _finished(pod) and not is_terminating(pod):
            # a Failed/Succeeded pod is deleted and recreated (the create happens once it is gone)
            plan.deletes.append(str(pod["metadata"]["name"]))
            if monotonic:
                return plan
            continue
        if is_terminating(pod):
            if monotonic:
                return plan
            continue
        if not running_and_available(pod, min_ready, now) and monotonic:
            plan.requeue_after = available_in(pod, min_ready, now)
            return plan

    for _, pod in reversed(condemned):
        if is_terminating(pod):
            if monotonic:
                return plan
            continue
        if not running_and_ready(pod) and monotonic and pod["metadata"].get("name") != first_unhealthy:
            return plan
        plan.deletes.append(str(pod["metadata"]["name"]))
        if monotonic:
            return plan
    if not plan.empty or strategy != "RollingUpdate":
        return plan

    update_min = start + (partition or 0)
    for ordinal in range(start + count - 1, update_min - 1, -1):
        target = replicas.get(ordinal)
        if target is None:
            return plan
        if pod_revision(target) != update_name and not is_terminating(target):
            plan.deletes.append(str(target["metadata"]["name"]))
            return plan
        if not healthy(target):
            return plan
    return plan


def statefulset_status(
    sts: Mapping[str, Any],
    pods: Sequence[Obj],
    current_revision: str,
    update_revision: str,
    collision_count: int,
    now: float,
) -> Obj:
    """`computeReplicaStatus` + `completeRollingUpdate` over the set's pods. Pure."""
    min_ready = _int(_spec(sts).get("minReadySeconds"), 0)
    replicas = ready = available = current = updated = 0
    for pod in pods:
        if ordinal_of(sts, pod) is None:
            continue
        if is_created(pod):
            replicas += 1
        if running_and_ready(pod):
            ready += 1
            if running_and_available(pod, min_ready, now):
                available += 1
        if is_created(pod) and not is_terminating(pod):
            rev = pod_revision(pod)
            current += rev == current_revision
            updated += rev == update_revision
    status: Obj = {
        "observedGeneration": (sts.get("metadata") or {}).get("generation", 0),
        "replicas": replicas,
        "readyReplicas": ready,
        "currentReplicas": current,
        "updatedReplicas": updated,
        "currentRevision": current_revision,
        "updateRevision": update_revision,
        "collisionCount": collision_count,
        "availableReplicas": available,
    }
    strategy, _ = update_strategy(sts)
    if strategy == "RollingUpdate" and updated == replicas and ready == replicas:
        status["currentReplicas"] = updated
        status["currentRevision"] = update_revision
    return status


def status_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    old = old or {}
    return any(old.get(k) != v for k, v in new.items())


# ---- revision writes (shared with the DaemonSet controller) -----------------------------------------------


async def ensure_update_revision(
    client: Client,
    res: Resource,
    owner: Obj,
    kind: str,
    revisions: Sequence[Obj],
    collision_count: int,
    hash_labels: Sequence[str] = (HASH_LABEL,),
) -> Obj:
    """Make the owner's update revision exist and be the newest; return it.

    Mirrors `history.CreateControllerRevision`: a revision of the same name that already exists (a stale
    cache) is used when its data is equal and owned by `owner`; otherwise it is a hash collision, so
    `status.collisionCount` is bumped and an error raised for the work queue to retry with the new hash."""
    md = owner["metadata"]
    ns = md.get("namespace", "")
    plan = plan_update_revision(owner, kind, revisions, collision_count, hash_labels)
    if plan.renumber:
        return await client.update(CONTROLLERREVISIONS, ns, plan.update, field_manager=COMPONENT)
    if not plan.create:
        return plan.update
    try:
        return await client.create(CONTROLLERREVISIONS, ns, plan.update, field_manager=COMPONENT)
    except ApiError as e:
        if e.reason != "AlreadyExists":
            raise
    existing = await client.get(CONTROLLERREVISIONS, ns, plan.update["metadata"]["name"])
    if controller_uid(existing) == md.get("uid") and equal_revision(existing, plan.update):
        return existing
    await client.patch(
        res,
        ns,
        md["name"],
        Patch("merge", {"status": {"collisionCount": collision_count + 1}}),
        subresource="status",
        field_manager=COMPONENT,
    )
    raise RuntimeError(
        f"controllerrevision name collision for {key_of(owner)}; collisionCount {collision_count + 1}"
    )


async def adopt_orphans(
    client: Client, res: Resource, owner: Obj, kind: str, candidates: Sequence[Obj]
) -> list[Obj]:
    """Adopt the orphans among `candidates` (see history.orphans_to_adopt); returns the adopted objects.
    An orphan that vanished, changed uid or was claimed meanwhile is skipped."""
    ns = owner["metadata"].get("namespace", "")
    adopted = []
    for orphan in orphans_to_adopt(owner, candidates):
        body = adoption_patch(owner, kind, orphan)
        try:
            adopted.append(
                await client.patch(
                    res, ns, orphan["metadata"]["name"], Patch("merge", body), field_manager=COMPONENT
                )
            )
        except ApiError as e:
            if e.code not in (404, 409, 422):
                raise
    return adopted


# ---- the controller -----------------------------------------------------------------------------------


class StatefulSetController(Controller):
    name = "statefulset"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.sets = ctx.informers.informer(STATEFULSETS)
        self.pods = ctx.informers.informer(PODS)
        self.revisions = ctx.informers.informer(CONTROLLERREVISIONS)
        self.claims = ctx.informers.informer(PVCS)

    def informers(self) -> Sequence[Informer]:
        return (self.sets, self.pods, self.revisions, self.claims)

    def setup(self) -> None:
        def on_set(_: str, old: Obj | None, new: Obj | None) -> None:
            obj = new or old
            if obj is not None:
                self.queue.add(key_of(obj))

        def on_owned(_: str, old: Obj | None, new: Obj | None) -> None:
            for obj in (old, new):
                if obj is None:
                    continue
                ns = (obj.get("metadata") or {}).get("namespace") or ""
                for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
                    if (
                        ref.get("controller")
                        and ref.get("kind") == KIND
                        and ref.get("apiVersion", "").startswith("apps/")
                    ):
                        self.queue.add(f"{ns}/{ref.get('name')}")

        self.sets.add_handler(on_set)
        self.pods.add_handler(on_owned)
        self.revisions.add_handler(on_owned)

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        sts = self.sets.get(ns, name)
        if sts is None:
            return
        uid = str(sts["metadata"].get("uid") or "")
        pods = [p for p in self.pods.by_index("owner", uid) if controller_uid(p) == uid]
        pods += await adopt_orphans(self.client, PODS, sts, KIND, self.pods.list(ns))
        revisions = [r for r in self.revisions.by_index("owner", uid) if controller_uid(r) == uid]
        revisions += await adopt_orphans(self.client, CONTROLLERREVISIONS, sts, KIND, self.revisions.list(ns))
        status = sts.get("status") or {}
        collision = _int(status.get("collisionCount"), 0)

        update_rev = await ensure_update_revision(self.client, STATEFULSETS, sts, KIND, revisions, collision)
        current_rev = next(
            (r for r in revisions if r["metadata"]["name"] == status.get("currentRevision")), update_rev
        )

        now = dt.datetime.now(dt.UTC).timestamp()
        existing_claims = {str(c["metadata"]["name"]): c for c in self.claims.list(ns)}
        plan = plan_statefulset(sts, pods, current_rev, update_rev, existing_claims, now)
        await self._execute(sts, plan)

        new_status = statefulset_status(
            sts, pods, current_rev["metadata"]["name"], update_rev["metadata"]["name"], collision, now
        )
        if status_changed(status, new_status):
            await self._write_status(sts, new_status)

        keep = {pod_revision(p) for p in pods} | {
            current_rev["metadata"]["name"],
            update_rev["metadata"]["name"],
        }
        limit = _int(_spec(sts).get("revisionHistoryLimit"), 10)
        for rev_name in revisions_to_prune(revisions, keep, limit):
            try:
                await self.client.delete(CONTROLLERREVISIONS, ns, rev_name)
            except ApiError as e:
                if e.code != 404:
                    raise
        min_ready = _int(_spec(sts).get("minReadySeconds"), 0)
        waits = [w for p in pods if (w := available_in(p, min_ready, now)) is not None]
        if plan.requeue_after is not None:
            waits.append(plan.requeue_after)
        if waits:
            self.queue.add_after(key, min(waits) + 0.1)

    async def _execute(self, sts: Obj, plan: StatefulSetPlan) -> None:
        ns = sts["metadata"].get("namespace", "")
        for claim_to_own, refs in plan.claim_owners:
            body = {"metadata": {"ownerReferences": refs or None}}
            await self.client.patch(PVCS, ns, claim_to_own, Patch("merge", body), field_manager=COMPONENT)
        for c in plan.creates:
            for claim in c.claims:
                try:
                    await self.client.create(PVCS, ns, claim, field_manager=COMPONENT)
                except ApiError as e:
                    if e.reason != "AlreadyExists":
                        await self.events.record(sts,
                            "Warning",
                            "FailedCreate",
                            f"create Claim {claim['metadata']['name']} for Pod "
                            f"{c.pod['metadata']['name']} in StatefulSet {sts['metadata']['name']} "
                            f"failed error: {e.message}",
                            COMPONENT,
                        )
                        raise
                else:
                    await self.events.record(sts,
                        "Normal",
                        "SuccessfulCreate",
                        f"create Claim {claim['metadata']['name']} Pod {c.pod['metadata']['name']} "
                        f"in StatefulSet {sts['metadata']['name']} success",
                        COMPONENT,
                    )
            pod_ref = f"Pod {c.pod['metadata']['name']} in StatefulSet {sts['metadata']['name']}"
            try:
                await self.client.create(PODS, ns, c.pod, field_manager=COMPONENT)
            except ApiError as e:
                if e.reason == "AlreadyExists":
                    continue
                await self.events.record(sts,
                    "Warning",
                    "FailedCreate",
                    f"create {pod_ref} failed error: {e.message}",
                    COMPONENT,
                )
                raise
            await self.events.record(sts, "Normal", "SuccessfulCreate", f"create {pod_ref} successful", COMPONENT
            )
        for name in plan.deletes:
            try:
                await self.client.delete(PODS, ns, name)
            except ApiError as e:
                if e.code == 404:
                    continue
                raise
            await self.events.record(sts,
                "Normal",
                "SuccessfulDelete",
                f"delete Pod {name} in StatefulSet {sts['metadata']['name']} successful",
                COMPONENT,
            )

    async def _write_status(self, sts: Obj, status: Obj) -> None:
        md = sts["metadata"]
        try:
            await self.client.patch(
                STATEFULSETS,
                md.get("namespace", ""),
                md["name"],
                Patch("merge", {"status": status}),
                subresource="status",
                field_manager=COMPONENT,
            )
        except ApiError as e:
            if e.code != 404:
                raise
