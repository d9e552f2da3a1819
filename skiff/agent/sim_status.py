"""Pure halves of the simulated nodes: the Node, Lease and Pod status objects, and what to do with a pod.

Nothing here does I/O or reads a clock: every function takes `now` and returns fresh dicts without
mutating its arguments, so the table-driven tests in tests/unit/agent pin the exact objects.

Upstream shapes mirrored: the kubelet's node registration and `setNodeStatus` functions
(`pkg/kubelet/kubelet_node_status.go`, `pkg/kubelet/nodestatus/setters.go`: condition reasons and
messages), the node lease (`pkg/kubelet/nodelease`: holder = node name, 40 s, renewed every 10 s, owned by
the Node), and pod status generation (`pkg/kubelet/status/generate.go`: PodCompleted reasons;
`kubelet_pods.go` `generateAPIPodStatus`). KWOK (`sigs.k8s.io/kwok`) is the model for "simulated".

Addresses are labels only: no traffic is ever sent to them. Node InternalIPs come from 198.18.0.0/15
(RFC 2544, reserved for benchmarking, never routed); pod CIDRs are /24s carved from 10.128.0.0/9.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from skiff.api.meta import Obj, parse_time, rfc3339, rfc3339_micro
from skiff.api.pods import readiness_gates_message

KUBELET_VERSION = "v1.32.0-skiff-sim"
RUNTIME_VERSION = "sim://1.0"
OS_IMAGE = "skiff simulated node"
KERNEL_VERSION = "0.0.0-skiff-sim"
INSTANCE_TYPE = "skiff-sim"
EPHEMERAL_STORAGE = "100Gi"
# Simulated nodes serve no streams: port 0 tells the API server's proxy and the metrics scraper that there is
# no agent to dial (their addresses are labels only and must never receive a packet).
KUBELET_PORT = 0

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
LEASE_RENEW_SECONDS = 10.0  # upstream: 0.25 x leaseDurationSeconds
STATUS_REPORT_SECONDS = 60.0

RUN_SECONDS_ANNOTATION = "skiff.io/sim-run-seconds"
JOB_DEFAULT_RUN_SECONDS = 1.0
MAX_DELETE_DELAY = 1.0  # a deleted pod is confirmed after min(grace period, this)
KILLED_EXIT_CODE = 137  # 128 + SIGKILL: what a runtime reports for a container stopped on deletion

NODE_IP_RANGE = ipaddress.ip_network("198.18.0.0/15")
POD_CIDR_RANGE = ipaddress.ip_network("10.128.0.0/9")

# (type, reason, message) of the healthy node conditions, in the order the kubelet reports them.
HEALTHY_NODE_CONDITIONS: tuple[tuple[str, str, str, str], ...] = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


# --- nodes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeParams:
    """Everything that makes one simulated node what it is (derived from its index, so restarts agree)."""

    name: str
    index: int
    zone: str
    internal_ip: str
    pod_cidr: str
    cpu: str = "8"
    memory: str = "32Gi"
    pods: int = 110


def node_internal_ip(index: int) -> str:
    """The index-th address of 198.18.0.0/15, skipping the network address (node 0 → 198.18.0.1)."""
    if not 0 <= index < NODE_IP_RANGE.num_addresses - 2:
        raise ValueError(f"node index {index} out of range")
    return str(NODE_IP_RANGE.network_address + index + 1)


def node_pod_cidr(index: int) -> str:
    """The index-th /24 of 10.128.0.0/9 (node 0 → 10.128.0.0/24; 32,768 nodes fit)."""
    if not 0 <= index < POD_CIDR_RANGE.num_addresses // 256:
        raise ValueError(f"node index {index} out of range")
    return f"{POD_CIDR_RANGE.network_address + index * 256}/24"


def plan_nodes(prefix: str, count: int, zones: int, cpu: str, memory: str, pods: int) -> list[NodeParams]:
    """`count` nodes named `<prefix><i>`, zones assigned round-robin (`<prefix>zone-<k>` is not used:
    zones are `zone-0` … `zone-<zones-1>` so several simulators in one cluster share them)."""
    zones = max(1, zones)
    return [
        NodeParams(
            name=f"{prefix}{i}",
            index=i,
            zone=f"zone-{i % zones}",
            internal_ip=node_internal_ip(i),
            pod_cidr=node_pod_cidr(i),
            cpu=cpu,
            memory=memory,
            pods=pods,
        )
        for i in range(count)
    ]


def _machine_id(name: str) -> str:
    return hashlib.sha256(f"skiff-sim/{name}".encode()).hexdigest()[:32]


def node_conditions(previous: list[Obj] | None, now: dt.datetime) -> list[Obj]:
    """The healthy conditions with `lastHeartbeatTime = now`; `lastTransitionTime` is kept from `previous`
    when that condition already had the same status (upstream: transition time changes only on flips)."""
    prev = {c.get("type"): c for c in previous or [] if isinstance(c, dict)}
    ts = rfc3339(now)
    out: list[Obj] = []
    for type_, status, reason, message in HEALTHY_NODE_CONDITIONS:
        old = prev.get(type_)
        transition = old.get("lastTransitionTime") if old and old.get("status") == status else None
        out.append(
            {
                "type": type_,
                "status": status,
                "lastHeartbeatTime": ts,
                "lastTransitionTime": transition or ts,
                "reason": reason,
                "message": message,
            }
        )
    return out


def node_status(p: NodeParams, previous_conditions: list[Obj] | None, now: dt.datetime) -> Obj:
    capacity = {"cpu": p.cpu, "memory": p.memory, "pods": str(p.pods), "ephemeral-storage": EPHEMERAL_STORAGE}
    mid = _machine_id(p.name)
    return {
        "capacity": dict(capacity),
        "allocatable": dict(capacity),
        "conditions": node_conditions(previous_conditions, now),
        "addresses": [
            {"type": "InternalIP", "address": p.internal_ip},
            {"type": "Hostname", "address": p.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
        "nodeInfo": {
            "machineID": mid,
            "systemUUID": f"{mid[:8]}-{mid[8:12]}-{mid[12:16]}-{mid[16:20]}-{mid[20:32]}",
            "bootID": mid,
            "kernelVersion": KERNEL_VERSION,
            "osImage": OS_IMAGE,
            "containerRuntimeVersion": RUNTIME_VERSION,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


def node_object(p: NodeParams, now: dt.datetime) -> Obj:
    """The Node a simulated kubelet registers (status included: node registration may carry status)."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": p.name,
            "labels": {
                "kubernetes.io/hostname": p.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": p.zone,
                "node.kubernetes.io/instance-type": INSTANCE_TYPE,
                "type": "sim",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"podCIDR": p.pod_cidr, "podCIDRs": [p.pod_cidr]},
        "status": node_status(p, None, now),
    }


def lease_object(node_name: str, node_uid: str, now: dt.datetime) -> Obj:
    """The node's Lease in kube-node-lease, owned by its Node (so it is collected with it)."""
    md: Obj = {"name": node_name, "namespace": LEASE_NAMESPACE}
    if node_uid:
        md["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": md,
        "spec": {
            "holderIdentity": node_name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": rfc3339_micro(now),
        },
    }


def renewed_lease(lease: Obj, node_name: str, now: dt.datetime) -> Obj:
    """A copy of `lease` (resourceVersion kept: the update is conditional) held by the node until now+40s."""
    out = {**lease, "metadata": dict(lease.get("metadata") or {}), "spec": dict(lease.get("spec") or {})}
    out["spec"].update(
        {
            "holderIdentity": node_name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": rfc3339_micro(now),
        }
    )
    return out


# --- pods -------------------------------------------------------------------------------------------


class PoolExhausted(Exception):
    """No free pod IP in the node's CIDR (upstream: sandbox creation fails, the pod stays Pending)."""


@dataclass
class PodIPPool:
    """Pod IPs of one node: unique among its live pods, handed out round-robin like host-local IPAM
    (network address and .1, the bridge gateway, are never used). Not thread-safe; one event loop."""

    cidr: str
    by_pod: dict[str, str] = field(default_factory=dict)  # pod uid → ip
    _used: set[str] = field(default_factory=set)
    _cursor: int = 0

    def __post_init__(self) -> None:
        net = ipaddress.ip_network(self.cidr, strict=False)
        self._first = net.network_address + 2
        self._size = max(0, net.num_addresses - 3)  # minus network, gateway, broadcast

    def claim(self, uid: str, ip: str) -> None:
        """Record an IP already in a pod's status (after a restart of the simulator)."""
        if uid not in self.by_pod:
            self.by_pod[uid] = ip
            self._used.add(ip)

    def allocate(self, uid: str) -> str:
        """The pod's IP (the same one on every call until released)."""
        if uid in self.by_pod:
            return self.by_pod[uid]
        for step in range(self._size):
            ip = str(self._first + (self._cursor + step) % self._size)
            if ip not in self._used:
                self._cursor = (self._cursor + step + 1) % self._size
                self._used.add(ip)
                self.by_pod[uid] = ip
                return ip
        raise PoolExhausted(f"no free IP in {self.cidr}")

    def release(self, uid: str) -> None:
        ip = self.by_pod.pop(uid, None)
        if ip is not None:
            self._used.discard(ip)


def _owned_by_job(pod: Obj) -> bool:
    return any(
        (ref or {}).get("kind") == "Job" and str((ref or {}).get("apiVersion", "")).startswith("batch/")
        for ref in (pod.get("metadata") or {}).get("ownerReferences") or []
    )


def run_seconds(pod: Obj) -> float | None:
    """How long the pod's containers run before exiting 0, or None for "until deleted".

    Only pods that do not restart (restartPolicy Never/OnFailure) can complete: Job-owned pods after the
    `skiff.io/sim-run-seconds` annotation or 1 s, other such pods only when annotated. An annotation that
    is not a non-negative number is ignored.
    """
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    if policy == "Always":
        return None
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(RUN_SECONDS_ANNOTATION)
    if raw is not None:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = -1.0
        if value >= 0 and value == value and value != float("inf"):  # not NaN/inf
            return value
    return JOB_DEFAULT_RUN_SECONDS if _owned_by_job(pod) else None


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def image_id(image: str) -> str:
    """A repo digest for the image, as a runtime reports it (`repo@sha256:…`); stable per image."""
    if "@sha256:" in image:
        return image
    repo = image
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        repo = image[: len(image) - len(last)] + last.split(":", 1)[0]
    return f"{repo}@sha256:{_digest('image', image)}"


def container_id(pod_uid: str, name: str) -> str:
    return f"sim://{_digest(pod_uid, name)}"


def _set_condition(
    conds: list[Obj], type_: str, status: str, now: str, reason: str = "", message: str = ""
) -> None:
    """Set one condition in place on a fresh list; keeps lastTransitionTime when the status is unchanged."""
    new: Obj = {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": now}
    if reason:
        new["reason"] = reason
    if message:
        new["message"] = message
    for i, c in enumerate(conds):
        if c.get("type") == type_:
            if c.get("status") == status and c.get("lastTransitionTime"):
                new["lastTransitionTime"] = c["lastTransitionTime"]
            conds[i] = new
            return
    conds.append(new)


_CONDITION_ORDER = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


def _conditions(pod: Obj, values: dict[str, tuple[str, ...]], now: str) -> list[Obj]:
    """The pod's conditions with `values` (type → (status, reason[, message])) applied, kubelet types first
    in the kubelet's order, other condition types (readiness gates, DisruptionTarget, …) kept after them."""
    old = [dict(c) for c in (pod.get("status") or {}).get("conditions") or [] if isinstance(c, dict)]
    for type_, (status, reason, *message) in values.items():
        _set_condition(old, type_, status, now, reason, message[0] if message else "")
    rank = {t: i for i, t in enumerate(_CONDITION_ORDER)}
    return sorted(old, key=lambda c: rank.get(c.get("type", ""), len(rank)))


def _base_status(pod: Obj, host_ip: str, pod_ip: str, now: dt.datetime) -> Obj:
    status = pod.get("status") or {}
    out: Obj = {
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": status.get("startTime") or rfc3339(now),
    }
    if status.get("qosClass"):
        out["qosClass"] = status["qosClass"]
    return out


def _terminated(uid: str, c: Obj, started: str, finished: str, exit_code: int, reason: str) -> Obj:
    return {
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": started,
        "finishedAt": finished,
        "containerID": container_id(uid, str(c.get("name", ""))),
    }


def _container_status(uid: str, c: Obj, state: Obj, ready: bool, started: bool) -> Obj:
    image = str(c.get("image") or "")
    return {
        "name": c.get("name", ""),
        "state": state,
        "lastState": {},
        "ready": ready,
        "restartCount": 0,
        "image": image,
        "imageID": image_id(image),
        "containerID": container_id(uid, str(c.get("name", ""))),
        "started": started,
    }


def running_status(pod: Obj, host_ip: str, pod_ip: str, now: dt.datetime) -> Obj:
    """The status of a pod whose init containers completed and whose containers all run and are ready."""
    uid = str((pod.get("metadata") or {}).get("uid", ""))
    spec = pod.get("spec") or {}
    out = _base_status(pod, host_ip, pod_ip, now)
    ts = out["startTime"]
    inits = []
    for c in spec.get("initContainers") or []:
        if (c or {}).get("restartPolicy") == "Always":  # sidecar: keeps running
            inits.append(_container_status(uid, c, {"running": {"startedAt": ts}}, True, True))
        else:
            inits.append(
                _container_status(
                    uid, c, {"terminated": _terminated(uid, c, ts, ts, 0, "Completed")}, True, False
                )
            )
    containers = [
        _container_status(uid, c, {"running": {"startedAt": ts}}, True, True)
        for c in spec.get("containers") or []
    ]
    out["phase"] = "Running"
    if inits:
        out["initContainerStatuses"] = inits
    out["containerStatuses"] = containers
    gates = readiness_gates_message(pod)
    ready = ("False", "ReadinessGatesNotReady", gates) if gates else ("True", "")
    out["conditions"] = _conditions(
        pod,
        {
            "PodReadyToStartContainers": ("True", ""),
            "Initialized": ("True", ""),
            "Ready": ready,
            "ContainersReady": ("True", ""),
            "PodScheduled": ("True", ""),
        },
        rfc3339(now),
    )
    return out


def terminated_status(pod: Obj, host_ip: str, pod_ip: str, now: dt.datetime, *, succeeded: bool) -> Obj:
    """All containers exited: with 0 (`Completed`, phase Succeeded) or killed on deletion (137 `Error`,
    phase Failed, as the kubelet reports a pod it stopped before deleting it). The sandbox is gone, so
    PodReadyToStartContainers is False; Ready/ContainersReady are False (reason PodCompleted on success)."""
    uid = str((pod.get("metadata") or {}).get("uid", ""))
    spec = pod.get("spec") or {}
    out = _base_status(pod, host_ip, pod_ip, now)
    started, finished = out["startTime"], rfc3339(now)
    exit_code, reason = (0, "Completed") if succeeded else (KILLED_EXIT_CODE, "Error")
    inits = []
    for c in spec.get("initContainers") or []:
        if (c or {}).get("restartPolicy") == "Always":  # sidecar: stopped with the pod
            term = _terminated(uid, c, started, finished, exit_code, reason)
        else:  # ran to completion before the containers started
            term = _terminated(uid, c, started, started, 0, "Completed")
        inits.append(_container_status(uid, c, {"terminated": term}, False, False))
    containers = [
        _container_status(
            uid, c, {"terminated": _terminated(uid, c, started, finished, exit_code, reason)}, False, False
        )
        for c in spec.get("containers") or []
    ]
    out["phase"] = "Succeeded" if succeeded else "Failed"
    if inits:
        out["initContainerStatuses"] = inits
    out["containerStatuses"] = containers
    done_reason = "PodCompleted" if succeeded else "PodFailed"
    out["conditions"] = _conditions(
        pod,
        {
            "PodReadyToStartContainers": ("False", ""),
            "Initialized": ("True", "PodCompleted" if succeeded else ""),
            "Ready": ("False", done_reason),
            "ContainersReady": ("False", done_reason),
            "PodScheduled": ("True", ""),
        },
        finished,
    )
    return out


# --- what to do with a pod --------------------------------------------------------------------------

NOTHING = "nothing"
START = "start"  # Pending → Running
COMPLETE = "complete"  # Running → Succeeded
KILL = "kill"  # deleting: Running/Pending → Failed (containers stopped)
DELETE = "delete"  # deleting and terminal: confirm with grace period 0


@dataclass(frozen=True)
class Decision:
    action: str
    at: dt.datetime | None = None  # not before this time (None: now)

    def due(self, now: dt.datetime) -> bool:
        return self.at is None or self.at <= now


def _terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _delete_delay(pod: Obj) -> float:
    md = pod.get("metadata") or {}
    grace = md.get("deletionGracePeriodSeconds")
    if grace is None:
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    try:
        return max(0.0, min(float(grace), MAX_DELETE_DELAY))
    except (TypeError, ValueError):
        return MAX_DELETE_DELAY


def decide(pod: Obj, now: dt.datetime, deletion_seen: dt.datetime | None = None) -> Decision:
    """What the simulated kubelet does next with a pod bound to one of its running nodes.

    Idempotent and level-driven: it depends only on the pod as stored, `now`, and when the simulator
    first saw the pod's deletionTimestamp (`deletion_seen`, defaulting to now). A deleted pod is stopped
    (KILL) and then confirmed (DELETE) after min(grace period, 1 s); a pod that can complete does so
    `run_seconds` after its startTime; a Pending pod starts at once, and a running pod whose Ready
    condition no longer matches its readiness gates is reported again (START recomputes the status).
    """
    md = pod.get("metadata") or {}
    status = pod.get("status") or {}
    if md.get("deletionTimestamp"):
        at = (deletion_seen or now) + dt.timedelta(seconds=_delete_delay(pod))
        return Decision(DELETE if _terminal(pod) else KILL, at)
    if _terminal(pod):
        return Decision(NOTHING)
    if status.get("phase") != "Running" or not status.get("containerStatuses"):
        return Decision(START)
    ready = next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready != ("False" if readiness_gates_message(pod) else "True"):
        return Decision(START)  # a readiness gate changed (or Ready was overwritten): report again
    secs = run_seconds(pod)
    if secs is None:
        return Decision(NOTHING)
    started = parse_time(status.get("startTime")) or now
    return Decision(COMPLETE, started + dt.timedelta(seconds=secs))


def status_patch(pod: Obj, status: Obj) -> Obj:
    """A merge patch for `/status` carrying the pod's uid, as the kubelet's status manager does."""
    uid = (pod.get("metadata") or {}).get("uid")
    body: dict[str, Any] = {"status": status}
    if uid:
        body["metadata"] = {"uid": uid}
    return body
