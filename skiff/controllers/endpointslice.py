"""EndpointSlice controller: discovery.k8s.io/v1 EndpointSlices for every Service with a selector.

Mirrors `pkg/controller/endpointslice` (endpointslice_controller.go syncService, reconciler.go,
utils.go podToEndpoint/getEndpointPorts/setEndpointSliceLabels) in a simpler reconciler: endpoints are
grouped by the port set they offer, each group is cut into slices of at most MAX_ENDPOINTS_PER_SLICE,
existing managed slices of the same port set are reused in name order, extra ones deleted, missing ones
created with generateName `<service>-`. A service without endpoints keeps one placeholder slice (no
ports, no endpoints) as upstream does. Only IPv4 is served.

Pure halves: `pod_endpoint`, `endpoint_ports`, `desired_groups`, `plan_slices`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from skiff.api.errors import ApiError
from skiff.api.meta import Obj
from skiff.api.pods import is_pod_ready
from skiff.client.interface import ENDPOINTSLICES, NODES, PODS, SERVICES, Informer
from skiff.controllers.base import Controller, ControllerContext, key_of, split_key
from skiff.controllers.endpoints import (
    HEADLESS_LABEL,
    TRIGGER_TIME_ANNOTATION,
    TriggerTimeTracker,
    find_port,
    is_headless,
    is_managed_service,
    pod_in_endpoints,
    pod_ipv4,
    pod_target_ref,
    selected_pods,
    services_for_pod,
    should_set_hostname,
    wait_synced,
)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
ZONE_LABEL = "topology.kubernetes.io/zone"
MAX_ENDPOINTS_PER_SLICE = 100  # upstream --max-endpoints-per-slice default
ADDRESS_TYPE = "IPv4"
FIELD_MANAGER = "endpointslice-controller"
SERVICE_NAME_INDEX = "endpointslice/service-name"


def endpoint_ports(service: Obj, pod: Obj) -> list[Obj]:
    """`getEndpointPorts`: the service ports this pod can serve, resolved to its container ports.
    `name` is always present (upstream sets the pointer even for ""), protocol defaults to TCP."""
    out = []
    for sp in (service.get("spec") or {}).get("ports") or []:
        number = find_port(pod, sp)
        if number is None:
            continue
        p: Obj = {"name": sp.get("name") or "", "port": number, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            p["appProtocol"] = sp["appProtocol"]
        out.append(p)
    return out


def pod_endpoint(service: Obj, pod: Obj, node_zones: Mapping[str, str]) -> Obj:
    """`podToEndpoint`: conditions serving = pod Ready; terminating = deletionTimestamp set; ready =
    publishNotReadyAddresses or (serving and not terminating)."""
    serving = is_pod_ready(pod)
    terminating = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses")) or (serving and not terminating)
    ep: Obj = {
        "addresses": [pod_ipv4(pod)],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
    }
    if should_set_hostname(pod, service):
        ep["hostname"] = (pod.get("spec") or {})["hostname"]
    ep["targetRef"] = pod_target_ref(pod)
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        ep["nodeName"] = node
        zone = node_zones.get(node)
        if zone:
            ep["zone"] = zone
    return ep


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _ports_key(ports: Sequence[Obj]) -> str:
    return _canon(sorted(ports, key=_canon))


def desired_groups(
    service: Obj, pods: Iterable[Obj], node_zones: Mapping[str, str]
) -> dict[str, tuple[list[Obj], list[Obj]]]:
    """Port-set key → (ports, endpoints sorted by pod name) for the pods the service selects.
    Pods that resolve no port of a service with ports are left out (upstream: `len(endpointPorts) == 0`)."""
    groups: dict[str, tuple[list[Obj], list[Obj]]] = {}
    has_ports = bool((service.get("spec") or {}).get("ports"))
    for pod in pods:
        if not pod_in_endpoints(pod, include_terminating=True):
            continue
        ports = endpoint_ports(service, pod)
        if has_ports and not ports:
            continue
        key = _ports_key(ports)
        groups.setdefault(key, (sorted(ports, key=_canon), []))[1].append(
            pod_endpoint(service, pod, node_zones)
        )
    for _ports, eps in groups.values():
        eps.sort(key=lambda e: (e["targetRef"]["name"], e["addresses"][0]))
    return groups


def slice_labels(service: Obj) -> dict[str, str]:
    """`setEndpointSliceLabels`: the service's labels minus reserved ones, plus service-name,
    managed-by and (for headless services) service.kubernetes.io/headless."""
    md = service.get("metadata") or {}
    labels = {
        k: v
        for k, v in (md.get("labels") or {}).items()
        if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)
    }
    labels[SERVICE_NAME_LABEL] = md.get("name", "")
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    return labels


def owner_reference(service: Obj) -> Obj:
    md = service.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "name": md.get("name", ""),
        "uid": md.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


@dataclass
class SlicePlan:
    create: list[Obj] = field(default_factory=list)
    update: list[Obj] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)  # slice names

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


def _slice_matches(
    existing: Obj, ports: list[Obj], endpoints: list[Obj], labels: Mapping[str, str], owner: Obj
) -> bool:
    md = existing.get("metadata") or {}
    return (
        _canon(existing.get("endpoints") or []) == _canon(endpoints)
        and _ports_key(existing.get("ports") or []) == _ports_key(ports)
        and (md.get("labels") or {}) == dict(labels)
        and any(r.get("uid") == owner["uid"] and r.get("controller") for r in md.get("ownerReferences") or [])
    )


def plan_slices(
    service: Obj,
    pods: Iterable[Obj],
    node_zones: Mapping[str, str],
    existing: Sequence[Obj],
    trigger_time: str = "",
) -> SlicePlan:
    """What to create, update (copies of `existing` items) and delete so that the managed slices of
    `service` hold exactly its endpoints. `existing` are the slices labelled for this service and managed by
    this controller. Never mutates its inputs; equal inputs give an empty plan."""
    smd = service.get("metadata") or {}
    labels = slice_labels(service)
    owner = owner_reference(service)
    groups = desired_groups(service, pods, node_zones)
    if not groups:
        groups = {_ports_key([]): ([], [])}  # the placeholder slice
    by_ports: dict[str, list[Obj]] = {}
    plan = SlicePlan()
    for s in sorted(existing, key=lambda s: str((s.get("metadata") or {}).get("name", ""))):
        if s.get("addressType") != ADDRESS_TYPE:
            plan.delete.append(s["metadata"]["name"])
        else:
            by_ports.setdefault(_ports_key(s.get("ports") or []), []).append(s)
    for key in sorted(groups):
        ports, eps = groups[key]
        chunks = [
            eps[i : i + MAX_ENDPOINTS_PER_SLICE] for i in range(0, len(eps), MAX_ENDPOINTS_PER_SLICE)
        ] or [[]]
        reuse = by_ports.pop(key, [])
        for i, chunk in enumerate(chunks):
            if i < len(reuse):
                cur = reuse[i]
                if _slice_matches(cur, ports, chunk, labels, owner):
                    continue
                new = copy.deepcopy(cur)
                refs = [r for r in new["metadata"].get("ownerReferences") or [] if not r.get("controller")]
                new["metadata"]["ownerReferences"] = [owner, *refs]
            else:
                new = {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "generateName": f"{smd.get('name', '')}-",
                        "namespace": smd.get("namespace", ""),
                        "ownerReferences": [owner],
                    },
                    "addressType": ADDRESS_TYPE,
                }
            md = new["metadata"]
            md["labels"] = dict(labels)
            annotations = dict(md.get("annotations") or {})
            if trigger_time:
                annotations[TRIGGER_TIME_ANNOTATION] = trigger_time
            else:
                annotations.pop(TRIGGER_TIME_ANNOTATION, None)
            if annotations:
                md["annotations"] = annotations
            else:
                md.pop("annotations", None)
            new["ports"] = copy.deepcopy(ports)
            new["endpoints"] = copy.deepcopy(chunk)
            (plan.update if i < len(reuse) else plan.create).append(new)
        plan.delete += [s["metadata"]["name"] for s in reuse[len(chunks) :]]
    for leftovers in by_ports.values():
        plan.delete += [s["metadata"]["name"] for s in leftovers]
    return plan


class EndpointSliceController(Controller):
    """Keeps each selector Service's managed EndpointSlices equal to `plan_slices`."""

    name = "endpointslice-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.services: Informer = ctx.informers.informer(SERVICES)
        self.pods: Informer = ctx.informers.informer(PODS)
        self.nodes: Informer = ctx.informers.informer(NODES)
        self.slices: Informer = ctx.informers.informer(ENDPOINTSLICES)
        self.slices.add_index(SERVICE_NAME_INDEX, _slice_service_key)
        self.triggers = TriggerTimeTracker()
        self.expected: dict[str, dict[str, int | None]] = {}  # service key → our last writes

    def informers(self) -> Sequence[Informer]:
        return (self.services, self.pods, self.nodes, self.slices)

    def setup(self) -> None:
        self.services.add_handler(self._on_service)
        self.pods.add_handler(self._on_pod)
        self.slices.add_handler(self._on_slice)
        self.nodes.add_handler(self._on_node)

    def _on_service(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is not None:
            self.queue.add(key_of(obj))

    def _on_slice(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is not None:
            for k in _slice_service_key(obj):
                if new is None:  # deleted: never wait for it to show up again
                    self.expected.get(k, {}).pop(str(obj["metadata"].get("name")), None)
                self.queue.add(k)

    def _on_pod(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        keys: set[str] = set()
        for pod in (old, new):
            if pod is not None:
                keys.update(
                    services_for_pod(
                        self.services.list((pod.get("metadata") or {}).get("namespace") or ""), pod
                    )
                )
        for k in keys:
            self.queue.add(k)

    def _on_node(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        zone = [
            ((o.get("metadata") or {}).get("labels") or {}).get(ZONE_LABEL) if o else None for o in (old, new)
        ]
        if type_ == "MODIFIED" and zone[0] == zone[1]:
            return  # only the zone matters here; node heartbeats are ignored
        node = new if new is not None else old
        name = (node or {}).get("metadata", {}).get("name")
        keys: set[str] = set()
        for pod in self.pods.by_index("nodeName", str(name)):
            keys.update(
                services_for_pod(self.services.list((pod.get("metadata") or {}).get("namespace") or ""), pod)
            )
        for k in keys:
            self.queue.add(k)

    async def run(self) -> None:
        await wait_synced(self.informers())
        for svc in self.services.list():
            self.queue.add(key_of(svc))
        await super().run()

    def _node_zones(self) -> dict[str, str]:
        out = {}
        for n in self.nodes.list():
            md = n.get("metadata") or {}
            zone = (md.get("labels") or {}).get(ZONE_LABEL)
            if zone:
                out[str(md.get("name"))] = str(zone)
        return out

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        service = self.services.get(ns, name)
        if service is None or (service.get("metadata") or {}).get("deletionTimestamp"):
            # Owned slices go with the service through the garbage collector (ownerReferences).
            self.triggers.forget(key)
            self.expected.pop(key, None)
            return
        if not is_managed_service(service):
            return
        existing = [
            s
            for s in self.slices.by_index(SERVICE_NAME_INDEX, key)
            if ((s.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_LABEL) == CONTROLLER_NAME
        ]
        pods = selected_pods(service, self.pods.list(ns))
        if cache_is_stale(self.expected.get(key, {}), existing):
            # Our own last writes are not in the cache yet: acting now could duplicate slices
            # (upstream endpointSliceTracker.StaleSlices). The informer event will requeue us.
            self.queue.add_after(key, 0.5)
            return
        self.expected.pop(key, None)
        trigger = self.triggers.compute(service, pods)
        plan = plan_slices(service, pods, self._node_zones(), existing, trigger)
        expected: dict[str, int | None] = {}
        try:
            for obj in plan.create:
                created = await self.client.create(ENDPOINTSLICES, ns, obj, field_manager=FIELD_MANAGER)
                expected[created["metadata"]["name"]] = _rv(created)
            for obj in plan.update:
                updated = await self.client.update(ENDPOINTSLICES, ns, obj, field_manager=FIELD_MANAGER)
                expected[updated["metadata"]["name"]] = _rv(updated)
            for slice_name in plan.delete:
                try:
                    await self.client.delete(ENDPOINTSLICES, ns, slice_name)
                except ApiError as e:
                    if e.code != 404:
                        raise
                expected[slice_name] = None
        finally:
            if expected:
                self.expected[key] = expected


def _rv(obj: Obj) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def cache_is_stale(expected: Mapping[str, int | None], cached: Sequence[Obj]) -> bool:
    """True when the cached slices do not yet show our writes: a slice we created or updated is missing
    or older than what we wrote, or one we deleted is still there. `expected` maps slice name → the
    resourceVersion we wrote (None: deleted)."""
    by_name = {str((s.get("metadata") or {}).get("name")): s for s in cached}
    for name, rv in expected.items():
        cur = by_name.get(name)
        if rv is None:
            if cur is not None:
                return True
        elif cur is None or _rv(cur) < rv:
            return True
    return False


def _slice_service_key(obj: Obj) -> list[str]:
    md = obj.get("metadata") or {}
    svc = (md.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{md.get('namespace', '')}/{svc}"] if svc else []
