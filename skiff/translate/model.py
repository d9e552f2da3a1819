"""The intermediate form the three dialects share, and the errors and warnings they report.

Compose services, Marathon apps and Nomad task groups all describe the same thing where they overlap: a
replicated (or per-node, or run-to-completion) group of containers with ports, health checks, resources,
placement rules and an update policy. Each translator parses its format into `Workload`s (plus any extra
objects of its own, such as ConfigMaps from Swarm configs) and `render.py` turns a `Workload` into
Kubernetes objects the same way for all three, so a Marathon health check and a Compose healthcheck become
the same probe.

Everything here is pure data: no I/O, no clock, no randomness. Translators never raise anything but
`TranslateError` for input they cannot read, and report every key they read but cannot honour as a
`TranslateWarning` instead of dropping it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Obj = dict[str, Any]

# Labels every translated object carries, so a stack/app/job can be found and removed as one.
LABEL_STACK = "skiff.io/stack"  # Compose/Swarm stack name
LABEL_MARATHON_APP = "skiff.io/marathon-app"  # Marathon app id with "/" as "."
LABEL_NOMAD_JOB = "skiff.io/nomad-job"  # Nomad job id
LABEL_WORKLOAD = "skiff.io/workload"  # the Workload name inside its stack/app/job (the pod selector)


@dataclass(frozen=True)
class TranslateWarning:
    """A key that was read but cannot be honoured (or is honoured differently): never silently dropped."""

    file: str
    key: str  # dotted path inside the file, e.g. "services.web.deploy.resources.limits.pids"
    why: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.why}"


class TranslateError(Exception):
    """Input that cannot be translated at all; nothing is deployed. Names the file and the key."""

    def __init__(self, file: str, key: str, why: str) -> None:
        super().__init__(f"{file}: {key}: {why}")
        self.file = file
        self.key = key
        self.why = why


@dataclass
class Port:
    """A container port, optionally published outside the workload."""

    container_port: int
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    name: str = ""
    # Published on every node (Swarm ingress `published`, Marathon servicePort, Nomad static port) → NodePort
    # where it lies in the NodePort range, else a LoadBalancer port; None = reachable only inside the cluster.
    published: int | None = None
    # Swarm `mode: host` / Marathon hostPort / Nomad static port on the task's node only → hostPort.
    host_port: int | None = None


@dataclass
class Check:
    """A health check; rendered as a readiness probe and (when `liveness`) a liveness probe."""

    kind: Literal["http", "tcp", "exec", "grpc"]
    port: int | str | None = None  # number or port name (http/tcp/grpc)
    path: str = "/"
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"
    command: list[str] = field(default_factory=list)  # exec: argv (a shell string is ["/bin/sh", "-c", s])
    initial_delay_seconds: int = 0
    period_seconds: int = 10
    timeout_seconds: int = 1
    failure_threshold: int = 3
    start_period_seconds: int = 0  # Compose start_period / Marathon gracePeriodSeconds → startupProbe budget
    liveness: bool = True
    readiness: bool = True


@dataclass
class Mount:
    """A volume mounted into the container. `source` names an entry of `Workload.volumes`."""

    source: str
    path: str
    read_only: bool = False
    sub_path: str = ""


@dataclass
class Volume:
    """A pod volume. `kind` picks the Kubernetes volume source."""

    name: str
    kind: Literal["emptyDir", "memory", "hostPath", "pvc", "configMap", "secret"]
    ref: str = ""  # hostPath path, PVC claim name, ConfigMap or Secret name
    items: list[tuple[str, str, int | None]] = field(default_factory=list)  # (key, path, mode) for configMap/secret
    size_limit: str = ""  # emptyDir/tmpfs sizeLimit as a Kubernetes quantity


@dataclass
class Container:
    name: str
    image: str
    command: list[str] | None = None  # entrypoint override (Kubernetes `command`)
    args: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = ""
    run_as_user: int | None = None
    run_as_group: int | None = None
    ports: list[Port] = field(default_factory=list)
    # Kubernetes quantities ("500m", "256Mi"); "" = unset.
    cpu_request: str = ""
    cpu_limit: str = ""
    memory_request: str = ""
    memory_limit: str = ""
    checks: list[Check] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    read_only_root_filesystem: bool = False
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    no_new_privileges: bool = False
    stop_grace_seconds: int | None = None  # Compose stop_grace_period, Nomad kill_timeout


@dataclass
class NodeRule:
    """A placement rule on node labels; `key` is a Kubernetes node label (e.g. kubernetes.io/hostname)."""

    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = field(default_factory=list)


@dataclass
class Placement:
    required: list[NodeRule] = field(default_factory=list)  # all must hold (requiredDuringScheduling)
    spread_by: list[str] = field(default_factory=list)  # node label keys to spread replicas over (soft)
    one_per_node: bool = False  # Marathon UNIQUE hostname / Nomad distinct_hosts → required anti-affinity
    max_per_node: int | None = None  # Swarm max_replicas_per_node / Marathon MAX_PER → topology spread (hard)


@dataclass
class Update:
    """Rolling-update policy. `parallelism` 0 means all at once (Swarm's meaning)."""

    parallelism: int = 1
    order: Literal["stop-first", "start-first"] = "stop-first"
    delay_seconds: int = 0
    monitor_seconds: int = 0  # → minReadySeconds
    failure_action: Literal["pause", "continue", "rollback"] = "pause"
    max_failure_ratio: float = 0.0
    max_surge: int | str | None = None  # explicit override (Marathon maximumOverCapacity as a percentage)
    max_unavailable: int | str | None = None  # explicit override (Marathon minimumHealthCapacity)
    progress_deadline_seconds: int | None = None


@dataclass
class Restart:
    policy: Literal["Always", "OnFailure", "Never"] = "Always"
    max_attempts: int | None = None  # → Job backoffLimit for batch workloads
    delay_seconds: int | None = None


@dataclass
class Workload:
    """One replicated unit: a Compose service, a Marathon app or a Nomad task group."""

    name: str  # DNS-1123 label, unique in its namespace
    namespace: str
    mode: Literal["replicated", "global", "batch"] = "replicated"  # → Deployment | DaemonSet | Job
    replicas: int = 1
    containers: list[Container] = field(default_factory=list)
    init_containers: list[Container] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    placement: Placement = field(default_factory=Placement)
    update: Update = field(default_factory=Update)
    restart: Restart = field(default_factory=Restart)
    labels: dict[str, str] = field(default_factory=dict)  # on every object rendered for this workload
    pod_labels: dict[str, str] = field(default_factory=dict)  # on pods only (Compose service labels: metadata)
    annotations: dict[str, str] = field(default_factory=dict)
    # How other workloads reach it: "vip" → ClusterIP Service, "dnsrr" → headless Service, None → no Service.
    endpoint_mode: Literal["vip", "dnsrr"] | None = "vip"
    service_name: str = ""  # the Service's name when it differs from `name` (Nomad service stanza)
    host_network: bool = False


@dataclass
class Translation:
    """What a translator returns: objects ready to create, in dependency order, and every warning."""

    objects: list[Obj] = field(default_factory=list)
    warnings: list[TranslateWarning] = field(default_factory=list)
