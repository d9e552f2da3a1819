"""Endpoints controller: one core/v1 Endpoints per Service with a selector, listing its pods' addresses.

Mirrors `pkg/controller/endpoint/endpoints_controller.go` (syncService, addEndpointSubset) and
`pkg/api/v1/endpoints` RepackSubsets. Pure halves: `pod_in_endpoints`, `find_port`, `desired_subsets`,
`plan_endpoints`, `TriggerTimeTracker.compute`; `EndpointsController.sync` reads the informer caches, plans,
then writes one create/update/delete. The pod/port helpers here are shared with the EndpointSlice
controller (same upstream package `pkg/controller/util/endpoint`).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from skiff.api.errors import ApiError
from skiff.api.meta import Obj, parse_time, rfc3339
from skiff.api.pods import is_pod_ready
from skiff.client.interface import ENDPOINTS, PODS, SERVICES, Informer
from skiff.controllers.base import Controller, ControllerContext, key_of, split_key

TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
HEADLESS_LABEL = "service.kubernetes.io/headless"
MAX_CAPACITY = 1000  # upstream maxCapacity: addresses per Endpoints object before truncation
FIELD_MANAGER = "endpoint-controller"


# --- pure helpers shared with the EndpointSlice controller ---------------------------------------------




def pod_ipv4(pod: Obj) -> str:
    """The pod's IPv4 address ("" when it has none yet)."""
    status = pod.get("status") or {}
    for entry in status.get("podIPs") or []:
        ip = str(entry.get("ip") or "")
        if ip and ":" not in ip:
            return ip
    ip = str(status.get("podIP") or "")
    return ip if ip and ":" not in ip else ""


def pod_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """`endpointutil.ShouldPodBeInEndpoints`: has an IP, not in a terminal phase, and (unless
    `include_terminating`) not being deleted."""
    if not pod_ipv4(pod):
        return False
    if not include_terminating and (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def find_port(pod: Obj, service_port: Mapping[str, Any]) -> int | None:
    """`podutil.FindPort`: the container port a service port targets in this pod, or None.

    A numeric targetPort is used as is; a named one must match a container port's name and protocol.
    A missing targetPort means the service port number (the API server defaults it so)."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or []:
        for p in container.get("ports") or []:
            if p.get("name") == target and (p.get("protocol") or "TCP") == protocol:
                port = p.get("containerPort")
                return int(port) if port is not None else None
    return None


def selector_matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def services_for_pod(services: Iterable[Obj], pod: Obj) -> list[str]:
    """Keys of the services (in the pod's namespace) whose selector selects the pod."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    out = []
    for svc in services:
        sel = (svc.get("spec") or {}).get("selector")
        if sel and selector_matches(sel, labels):
            out.append(key_of(svc))
    return out


def selected_pods(service: Obj, pods: Iterable[Obj]) -> list[Obj]:
    sel = (service.get("spec") or {}).get("selector") or {}
    return [p for p in pods if selector_matches(sel, (p.get("metadata") or {}).get("labels") or {})]


def is_headless(service: Obj) -> bool:
    """Not `helper.IsServiceIPSet`: clusterIP is "" or "None"."""
    ip = (service.get("spec") or {}).get("clusterIP") or ""
    return ip in ("", "None")


def should_set_hostname(pod: Obj, service: Obj) -> bool:
    """`endpointutil.ShouldSetHostname`."""
    spec = pod.get("spec") or {}
    smd = service.get("metadata") or {}
    return (
        bool(spec.get("hostname"))
        and spec.get("subdomain") == smd.get("name")
        and ((pod.get("metadata") or {}).get("namespace") == smd.get("namespace"))
    )


def pod_target_ref(pod: Obj) -> Obj:
    md = pod.get("metadata") or {}
    return {
        "kind": "Pod",
        "namespace": md.get("namespace", ""),
        "name": md.get("name", ""),
        "uid": md.get("uid", ""),
    }


def is_managed_service(service: Obj) -> bool:
    """Services this controller fills: a selector and not ExternalName (upstream returns early otherwise)."""
    spec = service.get("spec") or {}
    return bool(spec.get("selector")) and spec.get("type") != "ExternalName"


class TriggerTimeTracker:
    """`endpointutil.TriggerTimeTracker`: the time of the oldest change not yet reflected in the endpoints.

    A pod's trigger time is its Ready condition's lastTransitionTime; a service's is its creation time.
    `compute` returns the minimum over the pods (and the service) whose trigger time changed since the
    previous call for that service, or "" when nothing changed. It updates its own state only."""

    def __init__(self) -> None:
        self._state: dict[str, tuple[str, dict[str, str]]] = {}

    def compute(self, service: Obj, pods: Sequence[Obj]) -> str:
        key = key_of(service)
        svc_time = str((service.get("metadata") or {}).get("creationTimestamp") or "")
        old_svc, old_pods = self._state.get(key, ("", {}))
        changed: list[str] = []
        if svc_time != old_svc and svc_time:
            changed.append(svc_time)
        new_pods: dict[str, str] = {}
        for pod in pods:
            t = ""
            for c in (pod.get("status") or {}).get("conditions") or []:
                if c.get("type") == "Ready":
                    t = str(c.get("lastTransitionTime") or "")
            name = str((pod.get("metadata") or {}).get("name") or "")
            new_pods[name] = t
            if t and old_pods.get(name) != t:
                changed.append(t)
        self._state[key] = (svc_time, new_pods)
        parsed = [p for p in (parse_time(t) for t in changed) if p is not None]
        return rfc3339(min(parsed)) if parsed else ""

    def forget(self, key: str) -> None:
        self._state.pop(key, None)


# --- Endpoints planner ------------------------------------------------------------------------------


def _address(pod: Obj, service: Obj) -> Obj:
    addr: Obj = {"ip": pod_ipv4(pod)}
    if should_set_hostname(pod, service):
        addr["hostname"] = (pod.get("spec") or {})["hostname"]
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        addr["nodeName"] = node
    addr["targetRef"] = pod_target_ref(pod)
    return addr


def _endpoint_port(service_port: Mapping[str, Any], number: int) -> Obj:
    p: Obj = {}
    if service_port.get("name"):
        p["name"] = service_port["name"]
    p["port"] = number
    p["protocol"] = service_port.get("protocol") or "TCP"
    if service_port.get("appProtocol"):
        p["appProtocol"] = service_port["appProtocol"]
    return p


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def repack_subsets(subsets: Sequence[Obj]) -> list[Obj]:
    """`endpoints.RepackSubsets`: merge subsets offering the same ports to the same addresses, drop
    duplicates (an address ready anywhere is ready), sort everything so equal inputs give equal output."""
    no_port = "-"  # sentinel for subsets without ports (headless services without ports)
    addrs: dict[str, Obj] = {}
    ports: dict[str, Obj | None] = {}
    ready_by_port: dict[str, dict[str, bool]] = {}
    for ss in subsets:
        port_list: list[Obj | None] = list(ss.get("ports") or []) or [None]
        for port in port_list:
            pk = _canon(port) if port is not None else no_port
            ports[pk] = port
            m = ready_by_port.setdefault(pk, {})
            for a in ss.get("addresses") or []:
                ak = _canon([a.get("ip"), (a.get("targetRef") or {}).get("uid", "")])
                addrs[ak] = a
                m[ak] = True
            for a in ss.get("notReadyAddresses") or []:
                ak = _canon([a.get("ip"), (a.get("targetRef") or {}).get("uid", "")])
                addrs.setdefault(ak, a)
                m.setdefault(ak, False)
    by_addrset: dict[str, list[str]] = {}
    for pk, m in ready_by_port.items():
        by_addrset.setdefault(_canon(sorted(m.items())), []).append(pk)
    out: list[Obj] = []
    for addrset, pks in by_addrset.items():
        members: list[list[Any]] = json.loads(addrset)
        ready = [addrs[k] for k, r in members if r]
        not_ready = [addrs[k] for k, r in members if not r]
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=_addr_order)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=_addr_order)
        real_ports = [p for p in (ports[pk] for pk in pks) if p is not None]
        if real_ports:
            subset["ports"] = sorted(
                real_ports, key=lambda p: (p.get("name", ""), p["port"], p.get("protocol", ""))
            )
        out.append(subset)
    return sorted(out, key=_canon)


def _addr_order(a: Obj) -> tuple[str, str]:
    return (str(a.get("ip", "")), str((a.get("targetRef") or {}).get("uid", "")))


def desired_subsets(service: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """The Endpoints subsets of `service` given the pods its selector selects (syncService's loop)."""
    spec = service.get("spec") or {}
    tolerate_unready = bool(spec.get("publishNotReadyAddresses"))
    service_ports = spec.get("ports") or []
    subsets: list[Obj] = []
    for pod in pods:
        if not pod_in_endpoints(pod, include_terminating=tolerate_unready):
            continue
        addr = _address(pod, service)
        ready = tolerate_unready or is_pod_ready(pod)
        field = "addresses" if ready else "notReadyAddresses"
        if not service_ports:
            if spec.get("clusterIP") == "None":  # headless without ports: addresses only
                subsets.append({field: [addr]})
            continue
        for sp in service_ports:
            number = find_port(pod, sp)
            if number is None:
                continue
            subsets.append({field: [addr], "ports": [_endpoint_port(sp, number)]})
    return repack_subsets(subsets)


def endpoints_labels(service: Obj) -> dict[str, str]:
    labels = dict((service.get("metadata") or {}).get("labels") or {})
    labels.pop(HEADLESS_LABEL, None)
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    return labels


def _truncate(subsets: list[Obj]) -> bool:
    """`truncateEndpoints`: keep at most MAX_CAPACITY addresses, ready ones first. True if it cut."""
    total = sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or []) for s in subsets)
    if total <= MAX_CAPACITY:
        return False
    budget = MAX_CAPACITY
    for field in ("addresses", "notReadyAddresses"):
        for s in subsets:
            have = s.get(field) or []
            keep = have[: max(budget, 0)]
            budget -= len(keep)
            if have:
                if keep:
                    s[field] = keep
                else:
                    s.pop(field, None)
    subsets[:] = [s for s in subsets if s.get("addresses") or s.get("notReadyAddresses")]
    return True


def plan_endpoints(
    service: Obj, pods: Iterable[Obj], current: Obj | None, trigger_time: str = ""
) -> Obj | None:
    """The Endpoints object to write for `service` (create when `current` is None, else an update of a
    copy of `current`), or None when `current` is already right. `pods` are the selected pods.
    Never mutates its inputs."""
    subsets = desired_subsets(service, pods)
    truncated = _truncate(subsets)
    labels = endpoints_labels(service)
    if current is not None:
        cur_md = current.get("metadata") or {}
        cur_annotations = cur_md.get("annotations") or {}
        if (
            _canon(current.get("subsets") or []) == _canon(subsets)
            and (cur_md.get("labels") or {}) == labels
            and (OVER_CAPACITY_ANNOTATION in cur_annotations) == truncated
        ):
            return None
        new = copy.deepcopy(current)
    else:
        smd = service.get("metadata") or {}
        new = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": smd.get("name", ""), "namespace": smd.get("namespace", "")},
        }
    md = new["metadata"]
    md["labels"] = labels
    annotations = dict(md.get("annotations") or {})
    if trigger_time:
        annotations[TRIGGER_TIME_ANNOTATION] = trigger_time
    else:
        annotations.pop(TRIGGER_TIME_ANNOTATION, None)
    if truncated:
        annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
    else:
        annotations.pop(OVER_CAPACITY_ANNOTATION, None)
    md["annotations"] = annotations
    if not annotations:
        md.pop("annotations")
    new["subsets"] = subsets
    return new


# --- controller ---------------------------------------------------------------------------------------


class EndpointsController(Controller):
    """Keeps `Endpoints/<svc>` equal to `plan_endpoints` of the service and its selected pods."""

    name = "endpoint-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.services: Informer = ctx.informers.informer(SERVICES)
        self.pods: Informer = ctx.informers.informer(PODS)
        self.endpoints: Informer = ctx.informers.informer(ENDPOINTS)
        self.triggers = TriggerTimeTracker()

    def informers(self) -> Sequence[Informer]:
        return (self.services, self.pods, self.endpoints)

    def setup(self) -> None:
        self.services.add_handler(self._on_service)
        self.pods.add_handler(self._on_pod)
        self.endpoints.add_handler(self._on_endpoints)

    def _on_service(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is not None:
            self.queue.add(key_of(obj))

    def _on_endpoints(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        """Only deletions (upstream onEndpointsDelete): an Endpoints without a Service is left alone."""
        if type_ == "DELETED" and old is not None:
            self.queue.add(key_of(old))

    def _on_pod(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        keys: set[str] = set()
        for pod in (old, new):
            if pod is not None:
                ns = (pod.get("metadata") or {}).get("namespace") or ""
                keys.update(services_for_pod(self.services.list(ns), pod))
        for k in keys:
            self.queue.add(k)

    async def run(self) -> None:
        await wait_synced(self.informers())
        for svc in self.services.list():
            self.queue.add(key_of(svc))
        await super().run()

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        service = self.services.get(ns, name)
        current = self.endpoints.get(ns, name)
        if service is None:
            self.triggers.forget(key)
            if current is not None:
                await _delete_ignoring_missing(self, ns, name)
            return
        if not is_managed_service(service):
            return
        pods = selected_pods(service, self.pods.list(ns))
        trigger = self.triggers.compute(service, pods)
        new = plan_endpoints(service, pods, current, trigger)
        if new is None:
            return
        if current is None:
            await self.client.create(ENDPOINTS, ns, new, field_manager=FIELD_MANAGER)
        else:
            await self.client.update(ENDPOINTS, ns, new, field_manager=FIELD_MANAGER)


async def _delete_ignoring_missing(c: Controller, ns: str, name: str) -> None:
    try:
        await c.client.delete(ENDPOINTS, ns, name)
    except ApiError as e:
        if e.code != 404:
            raise


async def wait_synced(informers: Sequence[Informer]) -> None:
    while not all(i.synced for i in informers):
        await asyncio.sleep(0.05)
