"""From a pod spec to runtime configs: the sandbox and each container, as the kubelet on containerd builds them.

Upstream spec: `pkg/kubelet/kuberuntime/kuberuntime_sandbox.go` (sandbox config), `kuberuntime_container.go` and
`kuberuntime_container_linux.go` (container config, resources), `security_context.go` + `pkg/securitycontext`
(security), `pkg/kubelet/kubelet_pods.go` (environment, `/etc/hosts`), `pkg/kubelet/network/dns/dns.go` (DNS),
`pkg/kubelet/envvars` (service links), `pkg/kubelet/qos/policy.go` (oom_score_adj) and
`third_party/forked/golang/expansion` (`$(VAR)` expansion).

Everything here decides; nothing starts containers. The only I/O is reading ConfigMaps, Secrets and Services
through an `ObjectLookup` (the kubelet's caches or the API), reading the host's resolv.conf / hosts file, and
creating the empty termination-message file a container's `terminationMessagePath` is mounted from.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from skiff.agent.runtime.interface import (
    ANNOTATION_HASH,
    ANNOTATION_RESTART_COUNT,
    ANNOTATION_TERMINATION_GRACE,
    ANNOTATION_TERMINATION_MESSAGE_PATH,
    LABEL_CONTAINER_NAME,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    ContainerConfig,
    DNSConfig,
    ImageInfo,
    Mount,
    PortMapping,
    Resources,
    SandboxConfig,
    SecurityContext,
)
from skiff.api.meta import Obj
from skiff.api.quantity import QuantityError, parse_quantity
from skiff.client.interface import SERVICES, Resource

CONFIGMAPS = Resource("", "v1", "configmaps")
SECRETS = Resource("", "v1", "secrets")

# More annotations the kubelet keeps on a container (kuberuntime `labels.go`).
ANNOTATION_TERMINATION_MESSAGE_POLICY = "io.kubernetes.container.terminationMessagePolicy"
ANNOTATION_PRESTOP_HANDLER = "io.kubernetes.container.preStopHandler"
ANNOTATION_PORTS = "io.kubernetes.container.ports"

# Validation limits the kubelet enforces on the resolver config (`apis/core/validation`).
MAX_DNS_NAMESERVERS = 3
MAX_DNS_SEARCH_PATHS = 32
MAX_DNS_SEARCH_LIST_CHARS = 2048
MAX_DNS_SEARCH_DOMAIN_LENGTH = 253
DEFAULT_DNS_OPTIONS = ("ndots:5",)

# kuberuntime/cm constants.
CPU_PERIOD = 100_000
MIN_CPU_QUOTA = 1000
MIN_SHARES = 2
MAX_SHARES = 262_144
GUARANTEED_OOM_SCORE_ADJ = -997
BEST_EFFORT_OOM_SCORE_ADJ = 1000
SYSTEM_CRITICAL_PRIORITY = 2_000_000_000

MANAGED_HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
MANAGED_HOSTS_HEADER_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"

Warn = Callable[[str, str], None]
"""(reason, message) of a Warning event the caller records on the pod (e.g. `DNSConfigForming`)."""


class ContainerConfigError(Exception):
    """A container cannot be configured; the kubelet shows `reason` as the container's waiting reason and
    `message` (upstream's text) as its message and in a `Failed` event (`Error: <message>`)."""

    def __init__(self, message: str, reason: str = "CreateContainerConfigError") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class ObjectLookup(Protocol):
    """Read access to the objects a pod's configuration refers to (the kubelet's ConfigMap/Secret/Service
    managers). `get` returns None when the object does not exist; other failures raise. Called for every
    container start (Services are listed each time), so it should be served from informer caches."""

    async def get(self, res: Resource, namespace: str, name: str) -> Obj | None: ...

    async def list(self, res: Resource, namespace: str) -> list[Obj]: ...


@dataclass
class DNSSettings:
    cluster_dns: list[str] = field(default_factory=list)  # kube-dns ClusterIP(s); empty → ClusterFirst falls back to Default
    cluster_domain: str = "cluster.local"
    resolv_conf: Path = Path("/etc/resolv.conf")


# ---------------------------------------------------------------------------------------------------- names


def _md(pod: Obj) -> Obj:
    return pod.get("metadata") or {}


def _spec(pod: Obj) -> Obj:
    return pod.get("spec") or {}


def pod_log_dir(log_root: Path, pod: Obj) -> Path:
    """`log_root/<namespace>_<name>_<uid>`: upstream's /var/log/pods layout (`BuildPodLogsDirectory`)."""
    md = _md(pod)
    return log_root / f"{md.get('namespace', '')}_{md.get('name', '')}_{md.get('uid', '')}"


def pod_full_name(pod: Obj) -> str:
    """`<name>_<namespace>(<uid>)`, as `format.Pod` writes a pod in kubelet messages."""
    md = _md(pod)
    return f"{md.get('name', '')}_{md.get('namespace', '')}({md.get('uid', '')})"


def termination_message_host_path(pod_dir: Path, container_name: str, restart_count: int) -> Path:
    """The host file a container's terminationMessagePath is mounted from. Upstream uses a random name under
    `pods/<uid>/containers/<name>/`; skiff names it by restart count so the kubelet finds it again (to read the
    message) after its own restart without asking the runtime for mounts."""
    return pod_dir / "containers" / container_name / f"{restart_count:08x}"


# ---------------------------------------------------------------------------------------------------- expansion


def expand(value: str, *sources: Mapping[str, str]) -> str:
    """`$(VAR)` expansion as upstream's `expansion.Expand`: `$$` is an escaped `$`, references to unknown
    variables and unterminated `$(` stay as written, a `$` before anything else is kept."""
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = value[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = value.find(")", i + 2)
            if close < 0:
                out.append("$(")
                i += 2
                continue
            name = value[i + 2:close]
            for source in sources:
                if name in source:
                    out.append(source[name])
                    break
            else:
                out.append(f"$({name})")
            i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def is_env_var_name(name: str) -> bool:
    """`validation.IsEnvVarName`: a C identifier plus `-` and `.` (not starting with a digit)."""
    return bool(_ENV_NAME.match(name))


# ---------------------------------------------------------------------------------------------------- QoS / resources


def _quantity(value: Any) -> Decimal:
    try:
        return parse_quantity(value)
    except QuantityError:
        return Decimal(0)


def _milli(value: Any) -> int:
    """`Quantity.MilliValue()`: rounded up."""
    return math.ceil(_quantity(value) * 1000)


def _value(value: Any) -> int:
    """`Quantity.Value()`: rounded up."""
    return math.ceil(_quantity(value))


def _requests_limits(container: Obj) -> tuple[dict[str, Any], dict[str, Any]]:
    """The container's requests (defaulted from limits, as the API server's defaulting does) and limits."""
    res = container.get("resources") or {}
    limits = dict(res.get("limits") or {})
    requests = dict(res.get("requests") or {})
    for name, value in limits.items():
        requests.setdefault(name, value)
    return requests, limits


def qos_class(pod: Obj) -> str:
    """`Guaranteed` | `Burstable` | `BestEffort` (`v1qos.GetPodQOS`, over cpu and memory only)."""
    spec = _spec(pod)
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        req, lim = _requests_limits(c)
        for name in ("cpu", "memory"):
            if name in req and _quantity(req[name]) > 0:
                requests[name] = requests.get(name, Decimal(0)) + _quantity(req[name])
        found = set()
        for name in ("cpu", "memory"):
            if name in lim and _quantity(lim[name]) > 0:
                found.add(name)
                limits[name] = limits.get(name, Decimal(0)) + _quantity(lim[name])
        if found != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(k) == v for k, v in requests.items()) and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def machine_memory_bytes() -> int:
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def oom_score_adj(pod: Obj, container: Obj, memory_capacity: int) -> int:
    """`qos.GetContainerOOMScoreAdjust`: Guaranteed (and node-critical) -997, BestEffort 1000, Burstable
    `1000 - 1000*memoryRequest/capacity` kept within [3, 999]. Where containerd runs with
    `restrict_oom_score_adj` (no CAP_SYS_RESOURCE) it raises values below its own score: skiff still computes
    upstream's value and lets containerd clamp it."""
    spec = _spec(pod)
    if spec.get("priorityClassName") == "system-node-critical" and int(spec.get("priority") or 0) >= SYSTEM_CRITICAL_PRIORITY:
        return GUARANTEED_OOM_SCORE_ADJ
    qos = qos_class(pod)
    if qos == "Guaranteed":
        return GUARANTEED_OOM_SCORE_ADJ
    if qos == "BestEffort":
        return BEST_EFFORT_OOM_SCORE_ADJ
    req, _ = _requests_limits(container)
    memory_request = _value(req.get("memory", 0))
    adj = 1000 - (1000 * memory_request) // max(memory_capacity, 1)
    if adj < 1000 + GUARANTEED_OOM_SCORE_ADJ:
        return 1000 + GUARANTEED_OOM_SCORE_ADJ
    if adj == BEST_EFFORT_OOM_SCORE_ADJ:
        return adj - 1
    return int(adj)


def milli_cpu_to_shares(milli_cpu: int) -> int:
    """`cm.MilliCPUToShares`: 1024 shares per core, within [2, 262144]."""
    if milli_cpu == 0:
        return MIN_SHARES
    return max(MIN_SHARES, min(MAX_SHARES, milli_cpu * 1024 // 1000))


def milli_cpu_to_quota(milli_cpu: int, period: int = CPU_PERIOD) -> int:
    """`milliCPUToQuota`: 0 (no limit) without a limit, else at least 1000 µs per period."""
    if milli_cpu == 0:
        return 0
    return max(MIN_CPU_QUOTA, milli_cpu * period // 1000)


def container_resources(pod: Obj, container: Obj, memory_capacity: int) -> Resources:
    """Linux resources of one container (`generateLinuxContainerResources`): shares from the cpu request (or
    the limit when no request is given), CFS quota from the cpu limit, memory limit in bytes."""
    res = container.get("resources") or {}
    requests = res.get("requests") or {}
    limits = res.get("limits") or {}
    cpu_limit = _milli(limits.get("cpu", 0))
    if "cpu" not in requests and cpu_limit:
        shares = milli_cpu_to_shares(cpu_limit)
    else:
        shares = milli_cpu_to_shares(_milli(requests.get("cpu", 0)))
    return Resources(
        cpu_shares=shares,
        cpu_period=CPU_PERIOD,
        cpu_quota=milli_cpu_to_quota(cpu_limit),
        memory_limit_bytes=_value(limits.get("memory", 0)),
        oom_score_adj=oom_score_adj(pod, container, memory_capacity),
    )


CGROUP_ROOT = "/skiff"  # named for skiff so `skiff uninstall` finds it (upstream's kubelet uses /kubepods)


def cgroup_parent(pod: Obj, root: str = CGROUP_ROOT) -> str:
    """The pod's cgroup (cgroupfs driver, as skiff's containerd runs runc): Guaranteed pods directly under
    `<root>/pod<uid>`, the others under `<root>/burstable/pod<uid>` or `<root>/besteffort/pod<uid>` — upstream's
    QoS cgroup hierarchy (`pkg/kubelet/cm/pod_container_manager_linux.go`) under skiff's own root. With
    systemd the names would be `kubepods-burstable-pod<uid>.slice`; skiff's containerd uses cgroupfs."""
    uid = str(_md(pod).get("uid", ""))
    qos = qos_class(pod)
    base = root.rstrip("/")
    if qos == "Guaranteed":
        return f"{base}/pod{uid}"
    return f"{base}/{qos.lower()}/pod{uid}"


# ---------------------------------------------------------------------------------------------------- DNS / hostname


def hostname_and_domain(pod: Obj, cluster_domain: str) -> tuple[str, str]:
    """`GeneratePodHostNameAndDomain`: spec.hostname (or the pod name) truncated to 63 characters without a
    trailing `-`/`.`, and `<subdomain>.<namespace>.svc.<cluster domain>` when spec.subdomain is set."""
    spec = _spec(pod)
    hostname = str(spec.get("hostname") or _md(pod).get("name", ""))
    if len(hostname) > 63:
        hostname = hostname[:63].rstrip("-.")
    domain = ""
    if spec.get("subdomain"):
        domain = f"{spec['subdomain']}.{_md(pod).get('namespace', '')}.svc.{cluster_domain}"
    return hostname, domain


def parse_resolv_conf(text: str) -> DNSConfig:
    """Nameservers, search list (the last `search` line wins; `.` dropped, trailing dots trimmed) and options,
    as the kubelet's `parseResolvConf` reads the host's file."""
    cfg = DNSConfig()
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            cfg.servers.append(fields[1])
        elif fields[0] == "search":
            cfg.searches = [s.rstrip(".") for s in fields[1:] if s != "."]
        elif fields[0] == "options":
            cfg.options = _merge_options(cfg.options, [(o.partition(":")[0], o.partition(":")[2]) for o in fields[1:]])
    return cfg


def _merge_options(existing: Iterable[str], new: Iterable[tuple[str, str]]) -> list[str]:
    """`mergeDNSOptions`: later options of the same name replace earlier ones (order of first appearance kept)."""
    merged: dict[str, str] = {}
    for op in existing:
        name, _, value = op.partition(":")
        merged[name] = value
    for name, value in new:
        merged[name] = value
    return [f"{k}:{v}" if v else k for k, v in merged.items()]


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def _fit_searches(searches: list[str], pod: Obj, warn: Warn | None) -> list[str]:
    """`formDNSSearchFitsLimits`: at most 32 domains, none longer than 253, the line at most 2048 chars."""
    exceeded = len(searches) > MAX_DNS_SEARCH_PATHS
    kept = [s for s in searches[:MAX_DNS_SEARCH_PATHS] if len(s) <= MAX_DNS_SEARCH_DOMAIN_LENGTH]
    exceeded = exceeded or len(kept) < len(searches[:MAX_DNS_SEARCH_PATHS])
    while kept and len(" ".join(kept)) > MAX_DNS_SEARCH_LIST_CHARS:
        kept.pop()
        exceeded = True
    if exceeded and warn is not None:
        warn("DNSConfigForming", "Search Line limits were exceeded, some search paths have been omitted, "
             f"the applied search line is: {' '.join(kept)}")
    return kept


def pod_dns(pod: Obj, dns: DNSSettings, warn: Warn | None = None) -> DNSConfig:
    """The pod's resolver config per dnsPolicy (`Configurer.GetPodDNS`).

    ClusterFirst (the default; on a hostNetwork pod it means Default) and ClusterFirstWithHostNet: the cluster
    DNS servers only, searches `<ns>.svc.<domain> svc.<domain> <domain>` + the host's, `ndots:5`. Without a
    cluster DNS address they fall back to Default with a `MissingClusterDNS` warning. Default: the host's
    resolv.conf. None: empty. Then `spec.dnsConfig` is appended (duplicates dropped, options merged by name)
    and the result trimmed to 3 nameservers and the search limits (`DNSConfigForming` warnings)."""
    spec = _spec(pod)
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_network = bool(spec.get("hostNetwork"))
    kind = "host"
    if policy == "None":
        kind = "none"
    elif policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not host_network):
        kind = "cluster"
    if kind == "cluster" and not dns.cluster_dns:
        msg = ('kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. '
               'Falling back to "Default" policy.')
        if warn is not None:
            warn("MissingClusterDNS", f'pod: "{pod_full_name(pod)}". {msg}')
        kind = "host"
    if kind == "none":
        cfg = DNSConfig()
    else:
        try:
            cfg = parse_resolv_conf(dns.resolv_conf.read_text())
        except OSError:
            cfg = DNSConfig()
        if kind == "cluster":
            cluster_search = []
            if dns.cluster_domain:
                ns = _md(pod).get("namespace", "")
                cluster_search = [f"{ns}.svc.{dns.cluster_domain}", f"svc.{dns.cluster_domain}", dns.cluster_domain]
            cfg = DNSConfig(servers=list(dns.cluster_dns), searches=_unique([*cluster_search, *cfg.searches]),
                            options=list(DEFAULT_DNS_OPTIONS))
    extra = spec.get("dnsConfig") or {}
    if extra:
        cfg.servers = _unique([*cfg.servers, *(extra.get("nameservers") or [])])
        cfg.searches = _unique([*cfg.searches, *(extra.get("searches") or [])])
        cfg.options = _merge_options(cfg.options, [(str(o.get("name", "")), str(o.get("value") or ""))
                                                   for o in extra.get("options") or []])
    if len(cfg.servers) > MAX_DNS_NAMESERVERS:
        cfg.servers = cfg.servers[:MAX_DNS_NAMESERVERS]
        if warn is not None:
            warn("DNSConfigForming", "Nameserver limits were exceeded, some nameservers have been omitted, "
                 f"the applied nameserver line is: {' '.join(cfg.servers)}")
    cfg.searches = _fit_searches(cfg.searches, pod, warn)
    return cfg


# ---------------------------------------------------------------------------------------------------- sandbox


def _port_mappings(pod: Obj) -> list[PortMapping]:
    out: list[PortMapping] = []
    for c in _spec(pod).get("containers") or []:
        for p in c.get("ports") or []:
            if int(p.get("hostPort") or 0) > 0:
                out.append(PortMapping(container_port=int(p.get("containerPort") or 0), host_port=int(p["hostPort"]),
                                       host_ip=str(p.get("hostIP") or ""), protocol=str(p.get("protocol") or "TCP")))
    return out


def _seccomp(sc: Obj | None) -> str:
    return str(((sc or {}).get("seccompProfile") or {}).get("type") or "")


def sandbox_config(pod: Obj, *, node_name: str, log_root: Path, dns: DNSSettings, attempt: int,
                   warn: Warn | None = None, cgroup_root: str = CGROUP_ROOT) -> SandboxConfig:
    """The CRI sandbox config of a pod (`generatePodSandboxConfig`). `attempt` counts sandbox re-creations.
    Pure except for reading `dns.resolv_conf`; DNS problems are reported through `warn`."""
    md, spec = _md(pod), _spec(pod)
    host_network = bool(spec.get("hostNetwork"))
    if host_network:
        hostname = node_name
    else:
        hostname, domain = hostname_and_domain(pod, dns.cluster_domain)
        if spec.get("setHostnameAsFQDN") and domain:
            hostname = f"{hostname}.{domain}"
    psc = spec.get("securityContext") or {}
    labels = {**(md.get("labels") or {}), LABEL_POD_NAME: str(md.get("name", "")),
              LABEL_POD_NAMESPACE: str(md.get("namespace", "")), LABEL_POD_UID: str(md.get("uid", ""))}
    groups = [int(g) for g in psc.get("supplementalGroups") or []]
    if psc.get("fsGroup") is not None:
        groups = [int(psc["fsGroup"]), *groups]
    return SandboxConfig(
        name=str(md.get("name", "")),
        namespace=str(md.get("namespace", "")),
        uid=str(md.get("uid", "")),
        attempt=attempt,
        hostname=hostname,
        log_directory=str(pod_log_dir(log_root, pod)),
        dns=pod_dns(pod, dns, warn),
        port_mappings=_port_mappings(pod),
        labels=labels,
        annotations=dict(md.get("annotations") or {}),
        cgroup_parent=cgroup_parent(pod, cgroup_root),
        host_network=host_network,
        host_pid=bool(spec.get("hostPID")),
        host_ipc=bool(spec.get("hostIPC")),
        sysctls={str(s.get("name")): str(s.get("value", "")) for s in psc.get("sysctls") or []},
        run_as_user=psc.get("runAsUser"),
        run_as_group=psc.get("runAsGroup"),
        supplemental_groups=groups,
        seccomp_runtime_default=_seccomp(psc) == "RuntimeDefault",
        privileged=any(((c.get("securityContext") or {}).get("privileged") is True)
                       for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]),
        share_process_namespace=bool(spec.get("shareProcessNamespace")),
    )


# ---------------------------------------------------------------------------------------------------- environment


def _format_map(m: Mapping[str, str]) -> str:
    """`fieldpath.FormatMap`: sorted `key="value"` lines."""
    return "\n".join(f"{k}={json.dumps(m[k], ensure_ascii=False)}" for k in sorted(m))


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")


def field_ref_value(pod: Obj, field_path: str, *, pod_ip: str, pod_ips: list[str], host_ip: str) -> str:
    """The downward API value of a `fieldRef` (`podFieldSelectorRuntimeValue` + `ExtractFieldPathAsString`).
    Raises ContainerConfigError for an unsupported path."""
    md, spec = _md(pod), _spec(pod)
    ips = pod_ips or ([pod_ip] if pod_ip else [])
    simple = {
        "metadata.name": md.get("name", ""),
        "metadata.namespace": md.get("namespace", ""),
        "metadata.uid": md.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
        "status.podIP": ips[0] if ips else "",
        "status.podIPs": ",".join(ips),
    }
    if field_path in simple:
        return str(simple[field_path] or "")
    if field_path == "metadata.labels":
        return _format_map(md.get("labels") or {})
    if field_path == "metadata.annotations":
        return _format_map(md.get("annotations") or {})
    m = _SUBSCRIPT.match(field_path)
    if m:
        return str((md.get(m.group(1)) or {}).get(m.group(2), ""))
    raise ContainerConfigError(f"unsupported fieldPath: {field_path}")


def resource_field_value(container: Obj, resource: str, divisor: Any = None,
                         allocatable: Mapping[str, Any] | None = None) -> str:
    """A `resourceFieldRef` value (`ExtractContainerResourceValue`), rounded up to whole divisors. Unset
    limits default to the node's allocatable (`defaultPodLimitsForDownwardAPI`); unset requests are 0."""
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or name not in ("cpu", "memory", "ephemeral-storage"):
        raise ContainerConfigError(f"unsupported container resource : {resource}")
    res = container.get("resources") or {}
    values = dict(res.get(kind) or {})
    if kind == "limits" and name not in values:
        values[name] = (allocatable or {}).get(name, 0)
    div = _quantity(divisor) if divisor not in (None, "", 0, "0") else Decimal(1)
    if div == 0:
        div = Decimal(1)
    if name == "cpu":
        return str(math.ceil(Decimal(_milli(values.get(name, 0))) / Decimal(math.ceil(div * 1000))))
    return str(math.ceil(Decimal(_value(values.get(name, 0))) / Decimal(math.ceil(div))))


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_env(services: Iterable[Obj]) -> dict[str, str]:
    """Docker-link style variables for services with a ClusterIP (`envvars.FromServices`), in the order given."""
    env: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = str(spec.get("clusterIP") or "")
        ports = spec.get("ports") or []
        if ip in ("", "None") or not ports:
            continue
        prefix = _env_name(str(_md(svc).get("name", "")))
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
        for p in ports:
            if p.get("name"):
                env[f"{prefix}_SERVICE_PORT_{_env_name(str(p['name']))}"] = str(p.get("port"))
        host = f"[{ip}]" if ":" in ip else ip
        for i, p in enumerate(ports):
            proto = str(p.get("protocol") or "TCP")
            url = f"{proto.lower()}://{host}:{p.get('port')}"
            if i == 0:
                env[f"{prefix}_PORT"] = url
            port_prefix = f"{prefix}_PORT_{p.get('port')}_{proto.upper()}"
            env[port_prefix] = url
            env[f"{port_prefix}_PROTO"] = proto.lower()
            env[f"{port_prefix}_PORT"] = str(p.get("port"))
            env[f"{port_prefix}_ADDR"] = ip
    return env


async def _service_env(pod: Obj, lookup: ObjectLookup) -> dict[str, str]:
    """`getServiceEnvVarMap`: the `kubernetes` Service of `default` always, the pod's namespace's Services too
    when enableServiceLinks (default true); sorted by name for a stable order."""
    ns = str(_md(pod).get("namespace", ""))
    chosen: dict[str, Obj] = {}
    master = await lookup.get(SERVICES, "default", "kubernetes")
    if master is not None:
        chosen["kubernetes"] = master
    if _spec(pod).get("enableServiceLinks", True) is not False:
        for svc in await lookup.list(SERVICES, ns):
            name = str(_md(svc).get("name", ""))
            if ns == "default" and name == "kubernetes":
                continue
            chosen[name] = svc
    return service_env(chosen[k] for k in sorted(chosen))


class _Sources:
    """ConfigMaps and Secrets read once per container config (upstream caches them per call as well)."""

    def __init__(self, lookup: ObjectLookup, namespace: str) -> None:
        self.lookup = lookup
        self.namespace = namespace
        self._cache: dict[tuple[str, str], Obj | None] = {}

    async def data(self, kind: str, name: str) -> dict[str, str] | None:
        key = (kind, name)
        if key not in self._cache:
            res = CONFIGMAPS if kind == "configmap" else SECRETS
            self._cache[key] = await self.lookup.get(res, self.namespace, name)
        obj = self._cache[key]
        if obj is None:
            return None
        if kind == "configmap":
            return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
        out = {str(k): base64.b64decode(str(v)).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
        out.update({str(k): str(v) for k, v in (obj.get("stringData") or {}).items()})
        return out


async def make_env(pod: Obj, container: Obj, lookup: ObjectLookup, *, pod_ip: str, pod_ips: list[str], host_ip: str,
                   allocatable: Mapping[str, Any] | None = None, warn: Warn | None = None) -> list[tuple[str, str]]:
    """The container's environment (`makeEnvironmentVariables`): envFrom sources first (with prefix; invalid
    names skipped with an `InvalidEnvironmentVariableNames` warning), then `env` in order (values expanded
    against the variables so far and the service variables; valueFrom resolved), then the service link
    variables not already set. Raises ContainerConfigError with upstream's text when a non-optional source is
    missing (`configmap "x" not found`, `couldn't find key k in ConfigMap ns/x`)."""
    ns = str(_md(pod).get("namespace", ""))
    services = await _service_env(pod, lookup)
    sources = _Sources(lookup, ns)
    env: dict[str, str] = {}
    for ef in container.get("envFrom") or []:
        prefix = str(ef.get("prefix") or "")
        for kind, key in (("configmap", "configMapRef"), ("secret", "secretRef")):
            ref = ef.get(key)
            if not ref:
                continue
            name = str(ref.get("name", ""))
            data = await sources.data(kind, name)
            if data is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(f'{kind} "{name}" not found')
            invalid = []
            for k, v in data.items():
                k = prefix + k
                if not is_env_var_name(k):
                    invalid.append(k)
                    continue
                env[k] = v
            if invalid and warn is not None:
                label = "configMap" if kind == "configmap" else "secret"
                warn("InvalidEnvironmentVariableNames",
                     f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom {label} {ns}/{name} were skipped "
                     "since they are considered invalid environment variable names.")
    for ev in container.get("env") or []:
        name = str(ev.get("name", ""))
        value = str(ev.get("value") or "")
        source = ev.get("valueFrom")
        if value:
            value = expand(value, env, services)
        elif source:
            if source.get("fieldRef"):
                value = field_ref_value(pod, str(source["fieldRef"].get("fieldPath", "")), pod_ip=pod_ip,
                                        pod_ips=pod_ips, host_ip=host_ip)
            elif source.get("resourceFieldRef"):
                ref = source["resourceFieldRef"]
                value = resource_field_value(container, str(ref.get("resource", "")), ref.get("divisor"), allocatable)
            else:
                kind, ref = ("configmap", source.get("configMapKeyRef")) if source.get("configMapKeyRef") \
                    else ("secret", source.get("secretKeyRef"))
                if not ref:
                    continue
                src_name, src_key = str(ref.get("name", "")), str(ref.get("key", ""))
                data = await sources.data(kind, src_name)
                if data is None:
                    if ref.get("optional"):
                        continue
                    raise ContainerConfigError(f'{kind} "{src_name}" not found')
                if src_key not in data:
                    if ref.get("optional"):
                        continue
                    label = "ConfigMap" if kind == "configmap" else "Secret"
                    raise ContainerConfigError(f"couldn't find key {src_key} in {label} {ns}/{src_name}")
                value = data[src_key]
        env[name] = value
    for k, v in services.items():
        env.setdefault(k, v)
    return list(env.items())


# ---------------------------------------------------------------------------------------------------- security


def effective_security_context(pod: Obj, container: Obj) -> Obj:
    """`DetermineEffectiveSecurityContext`: the pod's user/group/non-root/seccomp settings, overridden field by
    field by the container's; container-only fields (capabilities, privileged, ...) come from the container."""
    psc = _spec(pod).get("securityContext") or {}
    csc = container.get("securityContext") or {}
    merged: Obj = {k: psc[k] for k in ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile", "seLinuxOptions",
                                       "appArmorProfile") if psc.get(k) is not None}
    merged.update({k: v for k, v in csc.items() if v is not None})
    return merged


def verify_run_as_non_root(pod: Obj, container: Obj, image: ImageInfo) -> None:
    """`verifyRunAsNonRoot`: with runAsNonRoot, refuse uid 0 (explicit or the image's; an image without a user
    runs as root) and images whose user is a name (it cannot be verified)."""
    sc = effective_security_context(pod, container)
    if not sc.get("runAsNonRoot"):
        return
    where = f'(pod: "{pod_full_name(pod)}", container: {container.get("name", "")})'
    if sc.get("runAsUser") is not None:
        if int(sc["runAsUser"]) == 0:
            raise ContainerConfigError(f"container's runAsUser breaks non-root policy {where}")
        return
    if image.uid is None and image.username:
        raise ContainerConfigError(f"container has runAsNonRoot and image has non-numeric user ({image.username}), "
                                   f"cannot verify user is non-root {where}")
    if image.uid is None or image.uid == 0:
        raise ContainerConfigError(f"container has runAsNonRoot and image will run as root {where}")


def security_context(pod: Obj, container: Obj, image: ImageInfo) -> SecurityContext:
    """The runtime security context (`determineEffectiveSecurityContext`). The image's user is used when
    neither pod nor container sets runAsUser; fsGroup and supplementalGroups become supplemental groups;
    allowPrivilegeEscalation=false sets no_new_privs."""
    sc = effective_security_context(pod, container)
    psc = _spec(pod).get("securityContext") or {}
    caps = sc.get("capabilities") or {}
    out = SecurityContext(
        privileged=bool(sc.get("privileged")),
        run_as_user=sc.get("runAsUser"),
        run_as_group=sc.get("runAsGroup"),
        read_only_rootfs=bool(sc.get("readOnlyRootFilesystem")),
        add_capabilities=[str(c) for c in caps.get("add") or []],
        drop_capabilities=[str(c) for c in caps.get("drop") or []],
        no_new_privs=sc.get("allowPrivilegeEscalation") is False,
        seccomp_runtime_default=_seccomp(sc) == "RuntimeDefault",
        seccomp_unconfined=_seccomp(sc) == "Unconfined",
    )
    if out.run_as_user is None:
        if image.uid is not None:
            out.run_as_user = image.uid
        elif image.username:
            out.run_as_username = image.username
    if psc.get("fsGroup") is not None:
        out.supplemental_groups.append(int(psc["fsGroup"]))
    out.supplemental_groups.extend(int(g) for g in psc.get("supplementalGroups") or [])
    if sc.get("procMount") == "Unmasked":
        out.masked_paths, out.readonly_paths = [], []
    return out


# ---------------------------------------------------------------------------------------------------- container


_IMAGE_REF = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?/)?"  # registry host[:port]/
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"  # path
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)


def check_image_name(image: str) -> None:
    """`InvalidImageName` for references docker's reference grammar rejects (`Failed to apply default image tag`)."""
    if not image or not _IMAGE_REF.match(image):
        raise ContainerConfigError(f'Failed to apply default image tag "{image}": couldn\'t parse image name '
                                   f'"{image}": invalid reference format', reason="InvalidImageName")


def container_hash(container: Obj) -> str:
    """Hash of the fields whose change makes the kubelet restart a container. Kubernetes ≥1.31 hashes only
    `name` and `image` (the only mutable fields that need a restart; `pickFieldsToHash`), so an agent
    upgrade never restarts containers. fnv32a over canonical JSON, in hex as the annotation carries it."""
    data = json.dumps({"image": container.get("image", ""), "name": container.get("name", "")},
                      sort_keys=True, separators=(",", ":")).encode()
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return f"{h:x}"


def _container_annotations(pod: Obj, container: Obj, restart_count: int) -> dict[str, str]:
    """`newContainerAnnotations`: what the kubelet needs to rebuild status and kill correctly after a restart."""
    spec = _spec(pod)
    out = {
        ANNOTATION_HASH: container_hash(container),
        ANNOTATION_RESTART_COUNT: str(restart_count),
        ANNOTATION_TERMINATION_MESSAGE_PATH: str(container.get("terminationMessagePath") or "/dev/termination-log"),
        ANNOTATION_TERMINATION_MESSAGE_POLICY: str(container.get("terminationMessagePolicy") or "File"),
    }
    if spec.get("terminationGracePeriodSeconds") is not None:
        out[ANNOTATION_TERMINATION_GRACE] = str(spec["terminationGracePeriodSeconds"])
    pre_stop = (container.get("lifecycle") or {}).get("preStop")
    if pre_stop:
        out[ANNOTATION_PRESTOP_HANDLER] = json.dumps(pre_stop, sort_keys=True)
    if container.get("ports"):
        out[ANNOTATION_PORTS] = json.dumps(container["ports"], sort_keys=True)
    return out


async def container_config(pod: Obj, container: Obj, *, restart_count: int, image: ImageInfo, mounts: list[Mount],
                           lookup: ObjectLookup, pod_ip: str, pod_ips: list[str], host_ip: str, node_name: str,
                           etc_hosts_path: str | None, pod_dir: Path | None = None,
                           allocatable: Mapping[str, Any] | None = None, memory_capacity: int = 0,
                           warn: Warn | None = None) -> ContainerConfig:
    """The CRI config of one container (`generateContainerConfig`); raises ContainerConfigError.

    `mounts` are the volume mounts (VolumeManager.container_mounts); this adds `etc_hosts_path` (the file the
    kubelet wrote from `etc_hosts`) at /etc/hosts unless the container mounts /etc/hosts itself, and, when
    `pod_dir` is given, the termination-message file (created here, empty, mode 0666) at
    terminationMessagePath. `allocatable` defaults downward-API limits;
    `memory_capacity` (0 = this machine's) feeds the Burstable oom_score_adj."""
    check_image_name(str(container.get("image", "")))
    verify_run_as_non_root(pod, container, image)
    name = str(container.get("name", ""))
    md = _md(pod)
    env = await make_env(pod, container, lookup, pod_ip=pod_ip, pod_ips=pod_ips, host_ip=host_ip,
                         allocatable=allocatable, warn=warn)
    env_map = dict(env)
    command = [expand(str(c), env_map) for c in container.get("command") or []]
    args = [expand(str(a), env_map) for a in container.get("args") or []]
    all_mounts = list(mounts)
    mounted = {m.container_path for m in all_mounts}
    if etc_hosts_path and "/etc/hosts" not in mounted:
        all_mounts.append(Mount(host_path=etc_hosts_path, container_path="/etc/hosts"))
    term_path = str(container.get("terminationMessagePath") or "/dev/termination-log")
    if pod_dir is not None and term_path not in mounted:
        host_file = termination_message_host_path(pod_dir, name, restart_count)
        host_file.parent.mkdir(parents=True, exist_ok=True)
        host_file.touch(exist_ok=True)
        host_file.chmod(0o666)
        all_mounts.append(Mount(host_path=str(host_file), container_path=term_path))
    labels = {LABEL_POD_NAME: str(md.get("name", "")), LABEL_POD_NAMESPACE: str(md.get("namespace", "")),
              LABEL_POD_UID: str(md.get("uid", "")), LABEL_CONTAINER_NAME: name}
    return ContainerConfig(
        name=name,
        image=str(container.get("image", "")),
        attempt=restart_count,
        command=command,
        args=args,
        working_dir=str(container.get("workingDir") or ""),
        env=env,
        mounts=all_mounts,
        labels=labels,
        annotations=_container_annotations(pod, container, restart_count),
        log_path=f"{name}/{restart_count}.log",
        stdin=bool(container.get("stdin")),
        stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
        resources=container_resources(pod, container, memory_capacity or machine_memory_bytes()),
        security=security_context(pod, container, image),
    )


# ---------------------------------------------------------------------------------------------------- /etc/hosts


def _host_aliases(pod: Obj) -> str:
    aliases = _spec(pod).get("hostAliases") or []
    if not aliases:
        return ""
    lines = ["", "# Entries added by HostAliases."]
    lines += [f"{a.get('ip', '')}\t" + "\t".join(a.get("hostnames") or []) for a in aliases]
    return "\n".join(lines) + "\n"


def etc_hosts(pod: Obj, pod_ips: list[str], *, cluster_domain: str = "cluster.local",
              host_file: Path = Path("/etc/hosts")) -> str:
    """The managed /etc/hosts (`managedHostsFileContent` / `nodeHostsFileContent`): localhost entries, one line
    per pod IP with the pod's hostname (FQDN first when it has a subdomain), then hostAliases. hostNetwork
    pods get the node's file with the aliases appended."""
    if _spec(pod).get("hostNetwork"):
        try:
            node = host_file.read_text()
        except OSError:
            node = ""
        return MANAGED_HOSTS_HEADER_HOST_NETWORK + node + _host_aliases(pod)
    hostname, domain = hostname_and_domain(pod, cluster_domain)
    lines = [
        MANAGED_HOSTS_HEADER.rstrip("\n"),
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
    ]
    for ip in pod_ips:
        lines.append(f"{ip}\t{hostname}.{domain}\t{hostname}" if domain else f"{ip}\t{hostname}")
    return "\n".join(lines) + "\n" + _host_aliases(pod)
