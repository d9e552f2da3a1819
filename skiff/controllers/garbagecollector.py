"""Garbage collector: deletes dependents whose owners are gone, runs foreground and orphan deletion.

Mirrors `pkg/controller/garbagecollector` (garbagecollector.go attemptToDeleteItem, classifyReferences,
processDeletingDependentsItem, orphanDependents) without a separate graph: every monitored resource's
informer gets an index by owner uid, which is the dependents edge of upstream's graph, and owners are
found by (group, kind, namespace, name) with a live GET before anything is deleted (upstream
`isDangling` also confirms absent owners against the API server, since caches lag).

Work items are objects of any monitored resource, keyed `<plural>[.<group>]/<namespace>/<name>`.
Pure halves: `classify_owner`, `plan_dependent`, `plan_deleting_owner`.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from skiff.api.errors import ApiError
from skiff.api.meta import Obj
from skiff.client.interface import (
    CONTROLLERREVISIONS,
    CRONJOBS,
    DAEMONSETS,
    DEPLOYMENTS,
    ENDPOINTS,
    ENDPOINTSLICES,
    JOBS,
    LEASES,
    NODES,
    PDBS,
    PODS,
    PVCS,
    REPLICASETS,
    SERVICEACCOUNTS,
    SERVICES,
    STATEFULSETS,
    DeleteOptions,
    Handler,
    Informer,
    Resource,
)
from skiff.controllers.base import Controller, ControllerContext
from skiff.controllers.endpoints import wait_synced

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
OWNER_INDEX = "garbagecollector/owner-uids"
FIELD_MANAGER = "garbage-collector"

CONFIGMAPS = Resource("", "v1", "configmaps")
SECRETS = Resource("", "v1", "secrets")
REPLICATIONCONTROLLERS = Resource("", "v1", "replicationcontrollers")
PODTEMPLATES = Resource("", "v1", "podtemplates")


@dataclass(frozen=True)
class Monitored:
    """A resource the collector watches: its kind (for ownerReferences) and scope."""

    res: Resource
    kind: str
    namespaced: bool = True


DEFAULT_MONITORED: tuple[Monitored, ...] = (
    Monitored(PODS, "Pod"),
    Monitored(SERVICES, "Service"),
    Monitored(ENDPOINTS, "Endpoints"),
    Monitored(CONFIGMAPS, "ConfigMap"),
    Monitored(SECRETS, "Secret"),
    Monitored(SERVICEACCOUNTS, "ServiceAccount"),
    Monitored(PVCS, "PersistentVolumeClaim"),
    Monitored(REPLICATIONCONTROLLERS, "ReplicationController"),
    Monitored(PODTEMPLATES, "PodTemplate"),
    Monitored(NODES, "Node", namespaced=False),
    Monitored(DEPLOYMENTS, "Deployment"),
    Monitored(REPLICASETS, "ReplicaSet"),
    Monitored(STATEFULSETS, "StatefulSet"),
    Monitored(DAEMONSETS, "DaemonSet"),
    Monitored(CONTROLLERREVISIONS, "ControllerRevision"),
    Monitored(JOBS, "Job"),
    Monitored(CRONJOBS, "CronJob"),
    Monitored(LEASES, "Lease"),
    Monitored(ENDPOINTSLICES, "EndpointSlice"),
    Monitored(PDBS, "PodDisruptionBudget"),
)


class OwnerState(enum.Enum):
    SOLID = "solid"  # exists with this uid and is not waiting for its dependents
    DANGLING = "dangling"  # gone (or replaced by an object with another uid)
    WAITING = "waiting"  # being deleted in the foreground: dependents must go first


def classify_owner(ref: Mapping[str, object], owner: Obj | None) -> OwnerState:
    """`classifyReferences` for one reference, given the live owner looked up by name (None: not found)."""
    if owner is None or (owner.get("metadata") or {}).get("uid") != ref.get("uid"):
        return OwnerState.DANGLING
    md = owner.get("metadata") or {}
    if md.get("deletionTimestamp") and FOREGROUND in (md.get("finalizers") or []):
        return OwnerState.WAITING
    return OwnerState.SOLID


@dataclass(frozen=True)
class DependentAction:
    """What to do with one dependent: nothing, drop some ownerReferences, or delete it."""

    kind: str  # "none" | "remove_refs" | "delete"
    remove_uids: tuple[str, ...] = ()
    policy: str = ""  # Background | Foreground | Orphan when kind == "delete"


NOTHING = DependentAction("none")


def plan_dependent(obj: Obj, states: Mapping[str, OwnerState], has_dependents: bool) -> DependentAction:
    """`attemptToDeleteItem` for an object whose owners were classified (`states`: uid → state; a uid
    missing from `states` counts as solid, so unresolvable owners never cause a deletion).

    - being deleted already, or no ownerReferences: nothing;
    - some solid owner: keep it, but drop references to dangling and waiting owners (so a foreground
      owner is not blocked by an object that stays);
    - some owner waiting for its dependents and the object has dependents itself: delete Foreground;
    - otherwise: delete, honouring an orphan/foreground finalizer already on the object, else Background.
    """
    md = obj.get("metadata") or {}
    refs = md.get("ownerReferences") or []
    if md.get("deletionTimestamp") or not refs:
        return NOTHING
    solid, other = [], []
    waiting = False
    for ref in refs:
        state = states.get(str(ref.get("uid")), OwnerState.SOLID)
        if state is OwnerState.SOLID:
            solid.append(ref)
        else:
            other.append(str(ref.get("uid")))
            waiting = waiting or state is OwnerState.WAITING
    if solid:
        return DependentAction("remove_refs", tuple(other)) if other else NOTHING
    if waiting and has_dependents:
        return DependentAction("delete", policy="Foreground")
    finalizers = md.get("finalizers") or []
    if ORPHAN in finalizers:
        return DependentAction("delete", policy="Orphan")
    if FOREGROUND in finalizers:
        return DependentAction("delete", policy="Foreground")
    return DependentAction("delete", policy="Background")


@dataclass
class OwnerAction:
    """For an owner being deleted: dependents to orphan or to (re)examine, and the finalizer to drop."""

    orphan: list[Obj] = field(default_factory=list)  # dependents whose references to the owner go
    examine: list[Obj] = field(default_factory=list)  # dependents to run plan_dependent on
    remove_finalizer: str = ""


def plan_deleting_owner(owner: Obj, dependents: Sequence[Obj]) -> OwnerAction:
    """`orphanDependents` / `processDeletingDependentsItem` for an owner with a deletionTimestamp.

    Orphan: every dependent loses its references to the owner, then the `orphan` finalizer goes.
    Foreground: while a dependent that references the owner with blockOwnerDeletion=true exists, its
    dependents are examined (deleted) and the finalizer stays; once none is left it goes.
    Dependents are those whose ownerReferences name the owner's uid."""
    md = owner.get("metadata") or {}
    finalizers = md.get("finalizers") or []
    uid = md.get("uid")
    if not md.get("deletionTimestamp"):
        return OwnerAction()
    mine = [
        d
        for d in dependents
        if any(r.get("uid") == uid for r in (d.get("metadata") or {}).get("ownerReferences") or [])
    ]
    if ORPHAN in finalizers:
        return OwnerAction(orphan=mine, remove_finalizer=ORPHAN)
    if FOREGROUND in finalizers:
        blocking = [
            d
            for d in mine
            if any(
                r.get("uid") == uid and r.get("blockOwnerDeletion")
                for r in (d.get("metadata") or {}).get("ownerReferences") or []
            )
        ]
        if not blocking:
            return OwnerAction(
                examine=[d for d in mine if not (d.get("metadata") or {}).get("deletionTimestamp")],
                remove_finalizer=FOREGROUND,
            )
        return OwnerAction(
            examine=[d for d in mine if not (d.get("metadata") or {}).get("deletionTimestamp")]
        )
    return OwnerAction()


def without_owner_refs(obj: Obj, uids: Sequence[str]) -> Obj:
    """A copy of `obj` without the ownerReferences to `uids`."""
    new = copy.deepcopy(obj)
    md = new["metadata"]
    md["ownerReferences"] = [r for r in md.get("ownerReferences") or [] if r.get("uid") not in uids]
    if not md["ownerReferences"]:
        del md["ownerReferences"]
    return new


def without_finalizer(obj: Obj, name: str) -> Obj:
    new = copy.deepcopy(obj)
    new["metadata"]["finalizers"] = [f for f in new["metadata"].get("finalizers") or [] if f != name]
    return new


def owner_uids(obj: Obj) -> list[str]:
    return [
        str(r.get("uid")) for r in (obj.get("metadata") or {}).get("ownerReferences") or [] if r.get("uid")
    ]


def _group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


class GarbageCollector(Controller):
    """Watches every monitored resource; see the module docstring."""

    name = "garbage-collector"
    workers = 4

    def __init__(self, ctx: ControllerContext, monitored: Sequence[Monitored] = DEFAULT_MONITORED) -> None:
        super().__init__(ctx)
        self.monitored = list(monitored)
        self._by_id: dict[str, Monitored] = {}
        self._by_kind: dict[tuple[str, str], Monitored] = {}
        self._informers: dict[str, Informer] = {}
        for m in self.monitored:
            rid = self._rid(m.res)
            self._by_id[rid] = m
            self._by_kind[(m.res.group, m.kind)] = m
            inf = ctx.informers.informer(m.res)
            inf.add_index(OWNER_INDEX, owner_uids)
            self._informers[rid] = inf

    @staticmethod
    def _rid(res: Resource) -> str:
        return f"{res.plural}.{res.group}" if res.group else res.plural

    def informers(self) -> Sequence[Informer]:
        return list(self._informers.values())

    def setup(self) -> None:
        for rid, inf in self._informers.items():
            inf.add_handler(self._handler(rid))

    def _handler(self, rid: str) -> Handler:
        def handle(type_: str, old: Obj | None, new: Obj | None) -> None:
            obj = new if new is not None else old
            if obj is None:
                return
            md = obj.get("metadata") or {}
            if new is None or type_ == "DELETED":
                # Its dependents may now be dangling; an owner waiting on it may now be done.
                for dep_rid, dep in self._dependents(str(md.get("uid"))):
                    self.queue.add(self._key(dep_rid, dep))
                for key in self._owner_keys(rid, obj):
                    self.queue.add(key)
                return
            finalizers = md.get("finalizers") or []
            if md.get("ownerReferences") or (
                md.get("deletionTimestamp") and (ORPHAN in finalizers or FOREGROUND in finalizers)
            ):
                self.queue.add(self._key(rid, obj))

        return handle

    def _key(self, rid: str, obj: Obj) -> str:
        md = obj.get("metadata") or {}
        return f"{rid}/{md.get('namespace') or ''}/{md.get('name', '')}"

    def _has_dependents(self, uid: str) -> bool:
        """Cheaper than `_dependents` for an owner of thousands (a ReplicaSet re-checked on every status write)."""
        return any(inf.by_index(OWNER_INDEX, uid) for inf in self._informers.values())

    def _dependents(self, uid: str) -> list[tuple[str, Obj]]:
        return [(rid, d) for rid, inf in self._informers.items() for d in inf.by_index(OWNER_INDEX, uid)]

    def _resolve(self, dependent_ns: str, ref: Mapping[str, object]) -> tuple[Monitored, str] | None:
        """The monitored resource and namespace an ownerReference points at, None if unresolvable
        (unknown kind, or a namespaced owner named by a cluster-scoped dependent)."""
        m = self._by_kind.get((_group_of(str(ref.get("apiVersion", ""))), str(ref.get("kind", ""))))
        if m is None or (m.namespaced and not dependent_ns):
            return None
        return m, dependent_ns if m.namespaced else ""

    def _owner_keys(self, rid: str, obj: Obj) -> list[str]:
        ns = (obj.get("metadata") or {}).get("namespace") or ""
        out = []
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
            r = self._resolve(ns, ref)
            if r is not None:
                out.append(f"{self._rid(r[0].res)}/{r[1]}/{ref.get('name', '')}")
        return out

    async def run(self) -> None:
        await wait_synced(self.informers())
        for rid, inf in self._informers.items():
            for obj in inf.list():
                md = obj.get("metadata") or {}
                if md.get("ownerReferences") or md.get("deletionTimestamp"):
                    self.queue.add(self._key(rid, obj))
        await super().run()

    async def _lookup_owner(self, dependent_ns: str, ref: Mapping[str, object]) -> Obj | bool | None:
        """The owner object, None if it is gone, True if unresolvable (treated as solid)."""
        r = self._resolve(dependent_ns, ref)
        if r is None:
            return True
        m, ns = r
        cached = self._informers[self._rid(m.res)].get(ns, str(ref.get("name", "")))
        if cached is not None and (cached.get("metadata") or {}).get("uid") == ref.get("uid"):
            return cached
        try:  # the cache may lag behind a freshly created owner: ask the API server
            return await self.client.get(m.res, ns, str(ref.get("name", "")))
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    async def sync(self, key: str) -> None:
        rid, ns, name = key.split("/", 2)
        m = self._by_id.get(rid)
        if m is None:
            return
        obj = self._informers[rid].get(ns, name)
        if obj is None:
            return
        md = obj.get("metadata") or {}
        if md.get("deletionTimestamp"):
            await self._process_deleting(obj, rid)
            return
        states: dict[str, OwnerState] = {}
        for ref in md.get("ownerReferences") or []:
            owner = await self._lookup_owner(ns, ref)
            if owner is True:
                continue
            states[str(ref.get("uid"))] = classify_owner(ref, owner if isinstance(owner, dict) else None)
        action = plan_dependent(obj, states, self._has_dependents(str(md.get("uid"))))
        await self._apply(m, obj, action)

    async def _apply(self, m: Monitored, obj: Obj, action: DependentAction) -> None:
        md = obj.get("metadata") or {}
        ns = md.get("namespace") or ""
        try:
            if action.kind == "remove_refs":
                await self.client.update(
                    m.res, ns, without_owner_refs(obj, action.remove_uids), field_manager=FIELD_MANAGER
                )
            elif action.kind == "delete":
                pre = {"uid": md.get("uid"), "resourceVersion": md.get("resourceVersion")}
                await self.client.delete(
                    m.res,
                    ns,
                    md.get("name", ""),
                    DeleteOptions(
                        propagation_policy=action.policy, preconditions={k: v for k, v in pre.items() if v}
                    ),
                )
        except ApiError as e:
            if e.code != 404:
                raise

    async def _process_deleting(self, owner: Obj, rid: str) -> None:
        uid = str((owner.get("metadata") or {}).get("uid"))
        deps = self._dependents(uid)
        rid_of = {id(d): r for r, d in deps}
        action = plan_deleting_owner(owner, [d for _, d in deps])
        for dep in action.orphan:
            try:
                await self.client.update(
                    self._by_id[rid_of[id(dep)]].res,
                    (dep.get("metadata") or {}).get("namespace") or "",
                    without_owner_refs(dep, [uid]),
                    field_manager=FIELD_MANAGER,
                )
            except ApiError as e:
                if e.code != 404:
                    raise
        for dep in action.examine:
            self.queue.add(self._key(rid_of[id(dep)], dep))
        if action.remove_finalizer:
            m = self._by_id[rid]
            try:
                await self.client.update(
                    m.res,
                    (owner.get("metadata") or {}).get("namespace") or "",
                    without_finalizer(owner, action.remove_finalizer),
                    field_manager=FIELD_MANAGER,
                )
            except ApiError as e:
                if e.code != 404:
                    raise
