"""The node agent's runtime seam: pod sandboxes, containers and images, and nothing else.

The agent (`skiff/agent/kubelet.py` and friends) decides what a pod needs from the API objects and this
interface's view of what exists; a runtime only carries the decisions out. Two implementations:
`runtime/cri.py` (containerd over CRI v1, real containers) and `skiff.testing.FakeRuntime` (in memory, for unit
tests of the agent). The shapes follow CRI v1 (`k8s.io/cri-api/pkg/apis/runtime/v1/api.proto`) closely, as
upstream's kuberuntime manager sits on CRI, but as plain dataclasses so the agent never touches protobuf.

Identity: every sandbox carries the labels `io.kubernetes.pod.{uid,name,namespace}` and every container also
`io.kubernetes.container.name`, so the agent can re-adopt what is running after a restart (list + labels) —
the same labels the kubelet sets, so `crictl ps` shows familiar names.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

# Labels the agent puts on sandboxes and containers (upstream `pkg/kubelet/types/labels.go`).
LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_CONTAINER_NAME = "io.kubernetes.container.name"
# Annotations the agent keeps on containers to rebuild status after a restart (upstream labels.go of kuberuntime).
ANNOTATION_RESTART_COUNT = "io.kubernetes.container.restartCount"
ANNOTATION_HASH = "io.kubernetes.container.hash"
ANNOTATION_TERMINATION_MESSAGE_PATH = "io.kubernetes.container.terminationMessagePath"
ANNOTATION_TERMINATION_GRACE = "io.kubernetes.pod.terminationGracePeriod"


class RuntimeError_(Exception):
    """A runtime call failed. `reason` is a short CamelCase cause the agent may surface (e.g. in a container's
    waiting reason: `CreateContainerError`, `RunContainerError`); `message` is the runtime's text."""

    def __init__(self, reason: str, message: str, *, not_found: bool = False) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.not_found = not_found


class ImagePullError(RuntimeError_):
    """A pull failed; `reason` is `ErrImagePull` (or `ErrImageNeverPull` for policy Never)."""


class SandboxState(enum.Enum):
    READY = "READY"
    NOTREADY = "NOTREADY"


class ContainerState(enum.Enum):
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    EXITED = "EXITED"
    UNKNOWN = "UNKNOWN"


@dataclass
class PortMapping:
    container_port: int
    host_port: int = 0
    host_ip: str = ""
    protocol: str = "TCP"  # TCP | UDP | SCTP


@dataclass
class DNSConfig:
    servers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


@dataclass
class SandboxConfig:
    """What a pod's sandbox (network namespace + pause container) needs (CRI PodSandboxConfig)."""

    name: str
    namespace: str
    uid: str
    attempt: int = 0
    hostname: str = ""
    log_directory: str = ""  # container logs go under it (`<log_directory>/<container>/<attempt>.log`)
    dns: DNSConfig | None = None
    port_mappings: list[PortMapping] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    cgroup_parent: str = ""
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    sysctls: dict[str, str] = field(default_factory=dict)
    run_as_user: int | None = None  # pod-level securityContext defaults for the sandbox itself
    run_as_group: int | None = None
    supplemental_groups: list[int] = field(default_factory=list)
    seccomp_runtime_default: bool = False
    privileged: bool = False  # some container of the pod is privileged (containerd refuses it otherwise)
    share_process_namespace: bool = False  # pod.spec.shareProcessNamespace: one PID namespace for the pod


@dataclass
class Mount:
    host_path: str
    container_path: str
    read_only: bool = False
    selinux_relabel: bool = False
    propagation: str = "private"  # private | host_to_container | bidirectional


@dataclass
class Resources:
    """Linux resources of one container, already converted from requests/limits (upstream
    `kuberuntime_container_linux.go`): shares from the cpu request, quota/period from the cpu limit."""

    cpu_shares: int = 2
    cpu_period: int = 100_000
    cpu_quota: int = 0  # 0 = no limit
    memory_limit_bytes: int = 0  # 0 = no limit
    oom_score_adj: int = 0


@dataclass
class SecurityContext:
    privileged: bool = False
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_username: str = ""
    supplemental_groups: list[int] = field(default_factory=list)
    read_only_rootfs: bool = False
    add_capabilities: list[str] = field(default_factory=list)  # without the CAP_ prefix, as in the pod spec
    drop_capabilities: list[str] = field(default_factory=list)
    no_new_privs: bool = False
    seccomp_runtime_default: bool = False
    seccomp_unconfined: bool = False
    masked_paths: list[str] | None = None  # None = runtime default
    readonly_paths: list[str] | None = None


@dataclass
class ContainerConfig:
    """One container of a sandbox (CRI ContainerConfig)."""

    name: str
    image: str  # the image reference as the pod names it (the runtime resolves it)
    attempt: int = 0
    command: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    working_dir: str = ""
    env: list[tuple[str, str]] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    log_path: str = ""  # relative to the sandbox's log_directory
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    resources: Resources = field(default_factory=Resources)
    security: SecurityContext = field(default_factory=SecurityContext)


@dataclass
class SandboxStatus:
    id: str
    name: str
    namespace: str
    uid: str
    attempt: int
    state: SandboxState
    created_at_ns: int = 0
    ip: str = ""
    additional_ips: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerStatus:
    id: str
    sandbox_id: str
    name: str
    attempt: int
    state: ContainerState
    image: str = ""  # as requested
    image_ref: str = ""  # the resolved image id (`imageID` in pod status)
    created_at_ns: int = 0
    started_at_ns: int = 0
    finished_at_ns: int = 0
    exit_code: int = 0
    reason: str = ""  # e.g. "OOMKilled", "Completed", "Error"
    message: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    log_path: str = ""


@dataclass
class ImageInfo:
    id: str  # content id (sha256:...)
    repo_tags: list[str] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)
    size: int = 0
    uid: int | None = None  # the image config's numeric user, when it has one (runAsNonRoot checks it)
    username: str = ""  # a non-numeric image user (runAsNonRoot cannot verify it: refused as upstream)


@dataclass
class AuthConfig:
    """Registry credentials for one pull (from a `kubernetes.io/dockerconfigjson` secret)."""

    username: str = ""
    password: str = ""
    auth: str = ""  # base64 "user:password", as docker config files carry it
    server_address: str = ""


@dataclass
class ContainerStats:
    container_id: str
    timestamp_ns: int
    cpu_usage_core_nanoseconds: int = 0
    memory_working_set_bytes: int = 0


@dataclass
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


class Runtime(Protocol):
    """Sandboxes, containers and images on one node. All methods raise `RuntimeError_` on failure;
    `*_status` of something that does not exist raises it with `not_found=True`."""

    async def run_sandbox(self, config: SandboxConfig, runtime_handler: str = "") -> str:
        """Create and start the pod's sandbox (network set up, IP assigned); returns its id."""

    async def stop_sandbox(self, sandbox_id: str) -> None:
        """Stop every container of the sandbox and tear its network down (idempotent)."""

    async def remove_sandbox(self, sandbox_id: str) -> None:
        """Remove a stopped sandbox and its containers (idempotent)."""

    async def sandbox_status(self, sandbox_id: str) -> SandboxStatus: ...

    async def list_sandboxes(self) -> list[SandboxStatus]: ...

    async def create_container(self, sandbox_id: str, config: ContainerConfig, sandbox: SandboxConfig) -> str: ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, timeout_seconds: int) -> None:
        """SIGTERM (or the image's stop signal), then SIGKILL after `timeout_seconds` (0 = kill now)."""

    async def remove_container(self, container_id: str) -> None: ...

    async def container_status(self, container_id: str) -> ContainerStatus: ...

    async def list_containers(self, sandbox_id: str = "") -> list[ContainerStatus]: ...

    async def exec_sync(self, container_id: str, command: list[str], timeout_seconds: int) -> ExecResult:
        """Run a command in the container and wait for it (exec probes, exec hooks)."""

    async def image_status(self, image: str) -> ImageInfo | None:
        """The local image named `image`, None when it is not present."""

    async def pull_image(self, image: str, auth: AuthConfig | None, sandbox: SandboxConfig | None) -> str:
        """Pull and return the image id; `ImagePullError` on failure."""

    async def container_stats(self, container_ids: list[str]) -> list[ContainerStats]: ...

    async def exec_url(self, container_id: str, command: list[str], stdin: bool, stdout: bool, stderr: bool,
                       tty: bool) -> str:
        """The runtime's streaming URL for an interactive exec (CRI Exec)."""

    async def attach_url(self, container_id: str, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> str: ...

    async def port_forward_url(self, sandbox_id: str, ports: list[int]) -> str: ...


class LogReader(Protocol):
    """Reading container logs in the CRI log format (`<RFC3339Nano> <stream> <P|F> <text>`)."""

    def follow(self, path: str, since_ns: int = 0, tail: int | None = None) -> AsyncIterator[bytes]: ...
