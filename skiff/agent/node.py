"""The real node's Node object and heartbeat: registration, status and the node Lease.

Upstream model: `pkg/kubelet/kubelet_node_status.go` (register, then keep status fresh), the status setters
(`pkg/kubelet/nodestatus/setters.go`: capacity, addresses, nodeInfo, conditions with their reasons) and the
node lease (`pkg/kubelet/nodelease`: renewed every 10 s). As upstream with leases, the Node's status is
PATCHed when it changed or every `STATUS_REPORT_SECONDS`, the Lease carries the liveness signal.

`describe_host` is the pure half: it turns facts read from /proc, /etc and statvfs into the Node.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import platform
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from skiff.agent import sim_status as s
from skiff.api.errors import ApiError
from skiff.api.meta import Obj, rfc3339
from skiff.client.interface import LEASES, NODES, Client, Patch

log = logging.getLogger("skiff.agent.node")

KUBELET_VERSION = "v1.32.0-skiff"
FIELD_MANAGER = "kubelet"
STATUS_REPORT_SECONDS = 300.0  # upstream nodeStatusReportFrequency: a change is posted at once
STATUS_CHECK_SECONDS = 10.0  # upstream nodeStatusUpdateFrequency
MAX_PODS = 110
# Upstream's default hard eviction thresholds, used here only to report pressure conditions.
MEMORY_AVAILABLE_MIN = 100 * 1024 * 1024
NODEFS_AVAILABLE_MIN_FRACTION = 0.10

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


@dataclass(frozen=True)
class HostFacts:
    """What the node reports about its machine; read once by `read_host_facts`, refreshed for usage."""

    hostname: str
    internal_ip: str
    cpus: int
    memory_bytes: int
    memory_available_bytes: int
    disk_bytes: int
    disk_available_bytes: int
    kernel: str
    os_image: str
    arch: str
    machine_id: str
    system_uuid: str
    boot_id: str


@dataclass
class NodeOptions:
    name: str
    server_node: bool = False  # carries the control-plane role labels (k3s: server nodes)
    labels: dict[str, str] = field(default_factory=dict)
    runtime_version: str = "containerd://unknown"
    kubelet_port: int = 10250
    max_pods: int = MAX_PODS


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return out


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return "Linux"


def primary_ipv4() -> str:
    """The address of the interface the default route leaves by (no packet is sent: a UDP connect only
    picks the route); loopback when the machine has no route out."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: never answered, only routed
            addr = str(sock.getsockname()[0])
        except OSError:
            return "127.0.0.1"
    return addr


def read_host_facts(data_dir: Path, hostname: str = "", node_ip: str = "") -> HostFacts:
    """Blocking reads of /proc, /etc, /sys and statvfs (run in a thread)."""
    mem = _meminfo()
    st = os.statvfs(data_dir)
    machine_id = _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id")
    return HostFacts(
        hostname=(hostname or socket.gethostname()).lower(),
        internal_ip=node_ip or primary_ipv4(),
        cpus=os.cpu_count() or 1,
        memory_bytes=mem.get("MemTotal", 0),
        memory_available_bytes=mem.get("MemAvailable", mem.get("MemFree", 0)),
        disk_bytes=st.f_blocks * st.f_frsize,
        disk_available_bytes=st.f_bavail * st.f_frsize,
        kernel=platform.release(),
        os_image=_os_image(),
        arch=_ARCH.get(platform.machine(), platform.machine()),
        machine_id=machine_id,
        system_uuid=_read("/sys/class/dmi/id/product_uuid").lower() or machine_id,
        boot_id=_read("/proc/sys/kernel/random/boot_id"),
    )


def node_labels(facts: HostFacts, opts: NodeOptions) -> dict[str, str]:
    labels = {
        "kubernetes.io/hostname": opts.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": facts.arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": facts.arch,
    }
    if opts.server_node:  # as k3s labels its server nodes
        labels["node-role.kubernetes.io/control-plane"] = "true"
        labels["node-role.kubernetes.io/master"] = "true"
    labels.update(opts.labels)
    return labels


def node_conditions(facts: HostFacts, runtime_ready: bool, previous: list[Obj] | None, now: dt.datetime) -> list[Obj]:
    """Ready / MemoryPressure / DiskPressure / PIDPressure with upstream reasons; transition times kept."""
    mem_pressure = facts.memory_available_bytes < MEMORY_AVAILABLE_MIN
    disk_pressure = facts.disk_bytes > 0 and facts.disk_available_bytes < NODEFS_AVAILABLE_MIN_FRACTION * facts.disk_bytes
    wanted = {
        "MemoryPressure": ("True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available")
        if mem_pressure else ("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        "DiskPressure": ("True", "KubeletHasDiskPressure", "kubelet has disk pressure")
        if disk_pressure else ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        "PIDPressure": ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        "Ready": ("True", "KubeletReady", "kubelet is posting ready status")
        if runtime_ready else ("False", "KubeletNotReady", "container runtime is down"),
    }
    prev = {c.get("type"): c for c in previous or [] if isinstance(c, dict)}
    ts = rfc3339(now)
    out = []
    for type_, (status, reason, message) in wanted.items():
        old = prev.get(type_)
        transition = old.get("lastTransitionTime") if old and old.get("status") == status else None
        out.append({"type": type_, "status": status, "lastHeartbeatTime": ts,
                    "lastTransitionTime": transition or ts, "reason": reason, "message": message})
    return out


def node_status(facts: HostFacts, opts: NodeOptions, runtime_ready: bool, previous: list[Obj] | None,
                now: dt.datetime) -> Obj:
    capacity = {
        "cpu": str(facts.cpus),
        "memory": f"{facts.memory_bytes // 1024}Ki",
        "ephemeral-storage": f"{facts.disk_bytes // 1024}Ki",
        "pods": str(opts.max_pods),
    }
    return {
        "capacity": capacity,
        "allocatable": dict(capacity),
        "conditions": node_conditions(facts, runtime_ready, previous, now),
        "addresses": [{"type": "InternalIP", "address": facts.internal_ip},
                      {"type": "Hostname", "address": facts.hostname}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": opts.kubelet_port}},
        "nodeInfo": {
            "machineID": facts.machine_id,
            "systemUUID": facts.system_uuid,
            "bootID": facts.boot_id,
            "kernelVersion": facts.kernel,
            "osImage": facts.os_image,
            "containerRuntimeVersion": opts.runtime_version,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": facts.arch,
        },
    }


def _comparable(status: Obj) -> Obj:
    """A status without heartbeat times: what decides whether a change must be posted now."""
    return {**status, "conditions": [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                                     for c in status.get("conditions") or []]}


class NodeAgent:
    """Registers this machine as a Node and keeps its status and Lease fresh until cancelled."""

    def __init__(self, client: Client, opts: NodeOptions, facts: Callable[[], Awaitable[HostFacts]],
                 runtime_ready: Callable[[], Awaitable[bool]],
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.client = client
        self.opts = opts
        self._facts = facts
        self._runtime_ready = runtime_ready
        self.clock = clock
        self.node: Obj | None = None
        self.registered = asyncio.Event()
        self._lease: Obj | None = None
        self._posted: Obj | None = None
        self._posted_at = 0.0

    @property
    def pod_cidr(self) -> str:
        return str(((self.node or {}).get("spec") or {}).get("podCIDR") or "")

    async def register(self) -> Obj:
        """Create the Node, or adopt the existing one (labels merged, status refreshed)."""
        facts = await self._facts()
        now = self.clock()
        status = node_status(facts, self.opts, await self._runtime_ready(), None, now)
        body: Obj = {"apiVersion": "v1", "kind": "Node",
                     "metadata": {"name": self.opts.name, "labels": node_labels(facts, self.opts),
                                  "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
                     "spec": {}, "status": status}
        try:
            self.node = await self.client.create(NODES, "", body, field_manager=FIELD_MANAGER)
        except ApiError as e:
            if e.code != 409:
                raise
            self.node = await self.client.patch(NODES, "", self.opts.name,
                                                Patch("strategic", {"metadata": {"labels": body["metadata"]["labels"]}}),
                                                field_manager=FIELD_MANAGER)
            await self._post_status(facts, force=True)
        self._posted = _comparable(status)
        self._posted_at = asyncio.get_running_loop().time()
        self.registered.set()
        return self.node

    async def run(self) -> None:
        """Register (retrying), then heartbeat: the lease every 10 s, status on change or every 5 minutes."""
        while not self.registered.is_set():
            try:
                await self.register()
            except Exception as e:  # API down or refusing: registration is retried, as the kubelet does
                log.warning("registering node %s failed: %s; retrying", self.opts.name, e)
                await asyncio.sleep(2.0)
        while True:
            try:
                await self._renew_lease()
                await self._post_status(await self._facts())
            except Exception as e:  # one missed heartbeat is not fatal; the next tick retries
                log.info("heartbeat of node %s failed: %s", self.opts.name, e)
            await asyncio.sleep(min(s.LEASE_RENEW_SECONDS, STATUS_CHECK_SECONDS))

    async def _post_status(self, facts: HostFacts, force: bool = False) -> None:
        loop = asyncio.get_running_loop()
        previous = ((self.node or {}).get("status") or {}).get("conditions")
        status = node_status(facts, self.opts, await self._runtime_ready(), previous, self.clock())
        changed = _comparable(status) != self._posted
        if not (force or changed or loop.time() - self._posted_at >= STATUS_REPORT_SECONDS):
            return
        self.node = await self.client.patch(NODES, "", self.opts.name, Patch("strategic", {"status": status}),
                                            subresource="status", field_manager=FIELD_MANAGER)
        self._posted = _comparable(status)
        self._posted_at = loop.time()

    async def refresh(self) -> Obj:
        """Re-read the Node (e.g. to see the pod CIDR the server allocated)."""
        self.node = await self.client.get(NODES, "", self.opts.name)
        return self.node

    async def _renew_lease(self) -> None:
        now = self.clock()
        name = self.opts.name
        if self._lease is None:
            try:
                self._lease = await self.client.get(LEASES, s.LEASE_NAMESPACE, name)
            except ApiError as e:
                if e.code != 404:
                    raise
                uid = str(((self.node or {}).get("metadata") or {}).get("uid", ""))
                self._lease = await self.client.create(LEASES, s.LEASE_NAMESPACE, s.lease_object(name, uid, now),
                                                       field_manager=FIELD_MANAGER)
                return
        try:
            self._lease = await self.client.update(LEASES, s.LEASE_NAMESPACE, s.renewed_lease(self._lease, name, now),
                                                   field_manager=FIELD_MANAGER)
        except ApiError as e:
            self._lease = None  # re-read (or re-create) on the next renewal
            if e.code not in (404, 409):
                raise
