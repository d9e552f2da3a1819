"""`Runtime` over a CRI v1 runtime (containerd): the agent's dataclasses to protobuf and back.

This is the part of upstream's kuberuntime manager that builds CRI requests (`kuberuntime_sandbox_linux.go`,
`kuberuntime_container_linux.go`, `security_context.go`, `helpers_linux.go`) and reads CRI statuses back;
the decisions (what to run, limits, users) are already made in the dataclasses. Conventions kept here:

- Every sandbox and container carries the pod identity labels (and containers their name label), added
  from the sandbox's metadata, so a restarted agent re-adopts what runs whatever labels the caller passed.
- Namespaces as the kubelet sets them: NODE for hostNetwork/hostPID/hostIPC, else POD for network and IPC
  and CONTAINER for PID (POD only with shareProcessNamespace); containers get the sandbox's options.
- A sandbox is privileged when any of its containers is (containerd refuses a privileged container in an
  unprivileged sandbox); the kubelet derives that and shareProcessNamespace when building SandboxConfig.
- Seccomp is sent explicitly (RuntimeDefault or Unconfined), as the kubelet does; an unset profile would
  leave the choice to the runtime.
- Capabilities go to CRI without the `CAP_` prefix: containerd 1.6 prepends it unconditionally, so
  "CAP_NET_ADMIN" would become "CAP_CAP_NET_ADMIN", which runc 1.1 silently ignores (checked on this
  platform: the capability is not granted); we strip one if the pod spec carries it.
- Errors: every `CRIError` becomes `RuntimeError_` with the kubelet's reason for the step
  (`CreateContainerError`, `RunContainerError`, ...) and the runtime's message, `not_found` kept; pulls
  raise `ImagePullError("ErrImagePull", "rpc error: code = ... desc = ...")`, the text the kubelet shows,
  which carries the registry's "401 Unauthorized". Stopping and removing something already gone succeeds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import grpc  # type: ignore[import-untyped]

from skiff.agent.cri.client import DEFAULT, CRIClient, CRIError, Timeout, api
from skiff.agent.runtime.credentials import image_credentials
from skiff.agent.runtime.interface import (
    LABEL_CONTAINER_NAME,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    AuthConfig,
    ContainerConfig,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    ImageInfo,
    ImagePullError,
    Mount,
    PortMapping,
    RuntimeError_,
    SandboxConfig,
    SandboxState,
    SandboxStatus,
    SecurityContext,
)

__all__ = [
    "CRIRuntime",
    "container_config_to_cri",
    "image_credentials",
    "sandbox_config_to_cri",
]

T = TypeVar("T")

# grpc-go's names for status codes (`codes.Code.String()`), as they appear in the kubelet's error texts.
_GO_CODE_NAMES = {
    "OK": "OK",
    "CANCELLED": "Canceled",
    "UNKNOWN": "Unknown",
    "INVALID_ARGUMENT": "InvalidArgument",
    "DEADLINE_EXCEEDED": "DeadlineExceeded",
    "NOT_FOUND": "NotFound",
    "ALREADY_EXISTS": "AlreadyExists",
    "PERMISSION_DENIED": "PermissionDenied",
    "RESOURCE_EXHAUSTED": "ResourceExhausted",
    "FAILED_PRECONDITION": "FailedPrecondition",
    "ABORTED": "Aborted",
    "OUT_OF_RANGE": "OutOfRange",
    "UNIMPLEMENTED": "Unimplemented",
    "INTERNAL": "Internal",
    "UNAVAILABLE": "Unavailable",
    "DATA_LOSS": "DataLoss",
    "UNAUTHENTICATED": "Unauthenticated",
}

_PROTOCOLS = {"TCP": api.TCP, "UDP": api.UDP, "SCTP": api.SCTP}
_PROPAGATION = {
    "private": api.PROPAGATION_PRIVATE,
    "host_to_container": api.PROPAGATION_HOST_TO_CONTAINER,
    "bidirectional": api.PROPAGATION_BIDIRECTIONAL,
}
_SANDBOX_STATES = {api.SANDBOX_READY: SandboxState.READY, api.SANDBOX_NOTREADY: SandboxState.NOTREADY}
_CONTAINER_STATES = {
    api.CONTAINER_CREATED: ContainerState.CREATED,
    api.CONTAINER_RUNNING: ContainerState.RUNNING,
    api.CONTAINER_EXITED: ContainerState.EXITED,
    api.CONTAINER_UNKNOWN: ContainerState.UNKNOWN,
}


def go_code_name(code: grpc.StatusCode) -> str:
    """The grpc-go spelling of a status code (NOT_FOUND -> NotFound), as kubelet messages show it."""
    name = str(code.name)
    return _GO_CODE_NAMES.get(name, name.title().replace("_", ""))


def rpc_error_text(err: CRIError) -> str:
    """The error as grpc-go formats it: `rpc error: code = Unknown desc = ...`."""
    return f"rpc error: code = {go_code_name(err.code)} desc = {err.message}"


def _runtime_error(err: CRIError, reason: str) -> RuntimeError_:
    return RuntimeError_(reason, err.message, not_found=err.not_found)


# ---- dataclasses → protobuf ----


def _int64(value: int | None) -> api.Int64Value | None:
    return None if value is None else api.Int64Value(value=value)


def _seccomp(runtime_default: bool) -> api.SecurityProfile:
    kind = api.SecurityProfile.RuntimeDefault if runtime_default else api.SecurityProfile.Unconfined
    return api.SecurityProfile(profile_type=kind)


def _namespaces(sandbox: SandboxConfig) -> api.NamespaceOption:
    """Upstream `namespacesForPod`. `share_process_namespace` is read if the dataclass has it (pid POD)."""
    share_pid = sandbox.share_process_namespace
    pid = api.NODE if sandbox.host_pid else api.POD if share_pid else api.CONTAINER
    return api.NamespaceOption(
        network=api.NODE if sandbox.host_network else api.POD,
        pid=pid,
        ipc=api.NODE if sandbox.host_ipc else api.POD,
    )


def _identity_labels(sandbox: SandboxConfig) -> dict[str, str]:
    return {LABEL_POD_NAME: sandbox.name, LABEL_POD_NAMESPACE: sandbox.namespace, LABEL_POD_UID: sandbox.uid}


def _port_mapping(port: PortMapping) -> api.PortMapping:
    protocol = _PROTOCOLS.get(port.protocol.upper())
    if protocol is None:
        raise RuntimeError_("CreatePodSandboxError", f"unknown port protocol {port.protocol!r}")
    return api.PortMapping(
        protocol=protocol, container_port=port.container_port, host_port=port.host_port, host_ip=port.host_ip
    )


def sandbox_config_to_cri(config: SandboxConfig) -> api.PodSandboxConfig:
    """The CRI PodSandboxConfig for `config` (upstream `generatePodSandboxConfig` + `...LinuxConfig`)."""
    security = api.LinuxSandboxSecurityContext(
        namespace_options=_namespaces(config),
        # containerd refuses a privileged container in a sandbox not marked privileged (the kubelet sets it
        # when any container is); read if the dataclass has the field.
        privileged=config.privileged,
        run_as_user=_int64(config.run_as_user),
        run_as_group=_int64(config.run_as_group),
        supplemental_groups=list(config.supplemental_groups),
        seccomp=_seccomp(config.seccomp_runtime_default),
    )
    dns = None
    if config.dns is not None:
        dns = api.DNSConfig(
            servers=list(config.dns.servers),
            searches=list(config.dns.searches),
            options=list(config.dns.options),
        )
    return api.PodSandboxConfig(
        metadata=api.PodSandboxMetadata(
            name=config.name, uid=config.uid, namespace=config.namespace, attempt=config.attempt
        ),
        hostname=config.hostname,
        log_directory=config.log_directory,
        dns_config=dns,
        port_mappings=[_port_mapping(p) for p in config.port_mappings],
        labels={**config.labels, **_identity_labels(config)},
        annotations=dict(config.annotations),
        linux=api.LinuxPodSandboxConfig(
            cgroup_parent=config.cgroup_parent, security_context=security, sysctls=dict(config.sysctls)
        ),
    )


def _capability_names(names: Iterable[str]) -> list[str]:
    """Pod-spec capability names as CRI wants them: upper case, no `CAP_` prefix ("ALL" kept)."""
    out = []
    for name in names:
        upper = name.upper()
        out.append(upper[4:] if upper.startswith("CAP_") else upper)
    return out


def _mount(mount: Mount) -> api.Mount:
    propagation = _PROPAGATION.get(mount.propagation)
    if propagation is None:
        raise RuntimeError_("CreateContainerError", f"unknown mount propagation {mount.propagation!r}")
    return api.Mount(
        container_path=mount.container_path,
        host_path=mount.host_path,
        readonly=mount.read_only,
        selinux_relabel=mount.selinux_relabel,
        propagation=propagation,
    )


def _container_security(sec: SecurityContext, sandbox: SandboxConfig) -> api.LinuxContainerSecurityContext:
    """Upstream `determineEffectiveSecurityContext` output, already decided in `sec`."""
    return api.LinuxContainerSecurityContext(
        capabilities=api.Capability(
            add_capabilities=_capability_names(sec.add_capabilities),
            drop_capabilities=_capability_names(sec.drop_capabilities),
        ),
        privileged=sec.privileged,
        namespace_options=_namespaces(sandbox),
        run_as_user=_int64(sec.run_as_user),
        run_as_group=_int64(sec.run_as_group),
        run_as_username=sec.run_as_username,
        readonly_rootfs=sec.read_only_rootfs,
        supplemental_groups=list(sec.supplemental_groups),
        no_new_privs=sec.no_new_privs,
        # None and [] both mean the runtime's default: protobuf cannot tell an empty list from an unset one.
        masked_paths=list(sec.masked_paths or []),
        readonly_paths=list(sec.readonly_paths or []),
        seccomp=_seccomp(sec.seccomp_runtime_default and not sec.seccomp_unconfined),
    )


def container_config_to_cri(config: ContainerConfig, sandbox: SandboxConfig) -> api.ContainerConfig:
    """The CRI ContainerConfig for `config` in `sandbox` (upstream `generateContainerConfig`)."""
    res = config.resources
    return api.ContainerConfig(
        metadata=api.ContainerMetadata(name=config.name, attempt=config.attempt),
        image=api.ImageSpec(image=config.image, user_specified_image=config.image),
        command=list(config.command),
        args=list(config.args),
        working_dir=config.working_dir,
        envs=[api.KeyValue(key=k, value=v) for k, v in config.env],
        mounts=[_mount(m) for m in config.mounts],
        labels={**config.labels, **_identity_labels(sandbox), LABEL_CONTAINER_NAME: config.name},
        annotations=dict(config.annotations),
        log_path=config.log_path,
        stdin=config.stdin,
        stdin_once=config.stdin_once,
        tty=config.tty,
        linux=api.LinuxContainerConfig(
            resources=api.LinuxContainerResources(
                cpu_period=res.cpu_period,
                cpu_quota=res.cpu_quota,
                cpu_shares=res.cpu_shares,
                memory_limit_in_bytes=res.memory_limit_bytes,
                oom_score_adj=res.oom_score_adj,
            ),
            security_context=_container_security(config.security, sandbox),
        ),
    )


def auth_to_cri(auth: AuthConfig) -> api.AuthConfig:
    return api.AuthConfig(
        username=auth.username, password=auth.password, auth=auth.auth, server_address=auth.server_address
    )


# ---- protobuf → dataclasses ----


def sandbox_status_from_cri(status: api.PodSandboxStatus) -> SandboxStatus:
    meta = status.metadata
    return SandboxStatus(
        id=status.id,
        name=meta.name,
        namespace=meta.namespace,
        uid=meta.uid,
        attempt=meta.attempt,
        state=_SANDBOX_STATES.get(status.state, SandboxState.NOTREADY),
        created_at_ns=status.created_at,
        ip=status.network.ip,
        additional_ips=[p.ip for p in status.network.additional_ips],
        labels=dict(status.labels),
        annotations=dict(status.annotations),
    )


def sandbox_from_cri(sandbox: api.PodSandbox) -> SandboxStatus:
    """A listed sandbox (ListPodSandbox carries no network status, so no IP)."""
    meta = sandbox.metadata
    return SandboxStatus(
        id=sandbox.id,
        name=meta.name,
        namespace=meta.namespace,
        uid=meta.uid,
        attempt=meta.attempt,
        state=_SANDBOX_STATES.get(sandbox.state, SandboxState.NOTREADY),
        created_at_ns=sandbox.created_at,
        labels=dict(sandbox.labels),
        annotations=dict(sandbox.annotations),
    )


def container_status_from_cri(status: api.ContainerStatus, sandbox_id: str) -> ContainerStatus:
    """CRI ContainerStatus has no sandbox id; the caller knows it (from ListContainers)."""
    return ContainerStatus(
        id=status.id,
        sandbox_id=sandbox_id,
        name=status.metadata.name,
        attempt=status.metadata.attempt,
        state=_CONTAINER_STATES.get(status.state, ContainerState.UNKNOWN),
        image=status.image.image,
        image_ref=status.image_ref,
        created_at_ns=status.created_at,
        started_at_ns=status.started_at,
        finished_at_ns=status.finished_at,
        exit_code=status.exit_code,
        reason=status.reason,
        message=status.message,
        labels=dict(status.labels),
        annotations=dict(status.annotations),
        log_path=status.log_path,
    )


def container_from_cri(container: api.Container) -> ContainerStatus:
    """A listed container (no timestamps but creation, no exit code)."""
    return ContainerStatus(
        id=container.id,
        sandbox_id=container.pod_sandbox_id,
        name=container.metadata.name,
        attempt=container.metadata.attempt,
        state=_CONTAINER_STATES.get(container.state, ContainerState.UNKNOWN),
        image=container.image.image,
        image_ref=container.image_ref,
        created_at_ns=container.created_at,
        labels=dict(container.labels),
        annotations=dict(container.annotations),
    )


def image_info_from_cri(image: api.Image) -> ImageInfo:
    """containerd fills `uid` for a numeric image user and `username` for a named one; an image without
    a user runs as root, so it gets uid 0 (what the kubelet's `getImageUser` assumes)."""
    uid: int | None = image.uid.value if image.HasField("uid") else None
    if uid is None and not image.username:
        uid = 0
    return ImageInfo(
        id=image.id,
        repo_tags=list(image.repo_tags),
        repo_digests=list(image.repo_digests),
        size=image.size,
        uid=uid,
        username=image.username,
    )


def stats_from_cri(stats: api.ContainerStats) -> ContainerStats:
    timestamp = stats.cpu.timestamp or stats.memory.timestamp
    return ContainerStats(
        container_id=stats.attributes.id,
        timestamp_ns=timestamp,
        cpu_usage_core_nanoseconds=stats.cpu.usage_core_nano_seconds.value,
        memory_working_set_bytes=stats.memory.working_set_bytes.value,
    )


class CRIRuntime:
    """`Runtime` on a CRI v1 runtime reached through `client` (which the caller owns and closes).

    `pull_timeout` bounds one image pull (None: the client's, by default unbounded as in the kubelet).
    """

    def __init__(self, client: CRIClient, *, pull_timeout: float | None = None) -> None:
        self.client = client
        self.pull_timeout = pull_timeout

    async def _call(self, reason: str, call: Awaitable[T]) -> T:
        try:
            return await call
        except CRIError as e:
            raise _runtime_error(e, reason) from None

    async def _idempotent(self, reason: str, call: Awaitable[None]) -> None:
        """Stop/remove: something already gone is what the caller wanted."""
        try:
            await call
        except CRIError as e:
            if not e.not_found:
                raise _runtime_error(e, reason) from None

    async def _each(self, items: Iterable[Any], status: Callable[[Any], Awaitable[T]]) -> list[T]:
        """`status(item)` for every item concurrently, leaving out those removed meanwhile."""

        async def one(item: Any) -> T | None:
            try:
                return await status(item)
            except RuntimeError_ as e:
                if e.not_found:
                    return None
                raise

        results = await asyncio.gather(*(one(i) for i in items))
        return [r for r in results if r is not None]

    # ---- sandboxes ----

    async def run_sandbox(self, config: SandboxConfig, runtime_handler: str = "") -> str:
        cri_config = sandbox_config_to_cri(config)
        return await self._call(
            "CreatePodSandboxError", self.client.run_pod_sandbox(cri_config, runtime_handler)
        )

    async def stop_sandbox(self, sandbox_id: str) -> None:
        await self._idempotent("KillPodSandboxError", self.client.stop_pod_sandbox(sandbox_id))

    async def remove_sandbox(self, sandbox_id: str) -> None:
        await self._idempotent("RemovePodSandboxError", self.client.remove_pod_sandbox(sandbox_id))

    async def sandbox_status(self, sandbox_id: str) -> SandboxStatus:
        resp = await self._call("PodSandboxStatusError", self.client.pod_sandbox_status(sandbox_id))
        return sandbox_status_from_cri(resp.status)

    async def list_sandboxes(self) -> list[SandboxStatus]:
        """Every sandbox with its full status (IP included), as the kubelet reads them: list, then status."""
        listed = await self._call("ListPodSandboxError", self.client.list_pod_sandbox())
        return await self._each([s.id for s in listed], self.sandbox_status)

    # ---- containers ----

    async def create_container(self, sandbox_id: str, config: ContainerConfig, sandbox: SandboxConfig) -> str:
        request = container_config_to_cri(config, sandbox)
        return await self._call(
            "CreateContainerError",
            self.client.create_container(sandbox_id, request, sandbox_config_to_cri(sandbox)),
        )

    async def start_container(self, container_id: str) -> None:
        await self._call("RunContainerError", self.client.start_container(container_id))

    async def stop_container(self, container_id: str, timeout_seconds: int) -> None:
        await self._call("KillContainerError", self.client.stop_container(container_id, timeout_seconds))

    async def remove_container(self, container_id: str) -> None:
        await self._idempotent("RemoveContainerError", self.client.remove_container(container_id))

    async def _container_status(self, container_id: str, sandbox_id: str) -> ContainerStatus:
        resp = await self._call("ContainerStatusError", self.client.container_status(container_id))
        return container_status_from_cri(resp.status, sandbox_id)

    async def container_status(self, container_id: str) -> ContainerStatus:
        """CRI's ContainerStatus lacks the sandbox id: it comes from a one-container ListContainers."""
        listed = await self._call(
            "ContainerStatusError", self.client.list_containers(api.ContainerFilter(id=container_id))
        )
        # containerd also resolves a unique id prefix, so a single answer is ours even if not equal.
        exact = [c for c in listed if c.id == container_id] or listed[:1]
        sandbox_id = exact[0].pod_sandbox_id if exact else ""
        return await self._container_status(container_id, sandbox_id)

    async def list_containers(self, sandbox_id: str = "") -> list[ContainerStatus]:
        """Every container (of one sandbox if given) with its full status: exit codes, reasons, times."""
        flt = api.ContainerFilter(pod_sandbox_id=sandbox_id) if sandbox_id else None
        listed = await self._call("ListContainersError", self.client.list_containers(flt))
        return await self._each(listed, lambda c: self._container_status(c.id, c.pod_sandbox_id))

    async def exec_sync(self, container_id: str, command: list[str], timeout_seconds: int) -> ExecResult:
        """A non-zero exit is a result; a command that outlives `timeout_seconds` raises reason "Timeout"."""
        try:
            resp = await self.client.exec_sync(container_id, command, timeout_seconds)
        except CRIError as e:
            if e.code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise RuntimeError_("Timeout", f'command "{" ".join(command)}" timed out') from None
            raise _runtime_error(e, "ExecSyncError") from None
        return ExecResult(exit_code=resp.exit_code, stdout=resp.stdout, stderr=resp.stderr)

    # ---- images ----

    async def image_status(self, image: str) -> ImageInfo | None:
        found = await self._call("ImageInspectError", self.client.image_status(image))
        return None if found is None else image_info_from_cri(found)

    async def pull_image(self, image: str, auth: AuthConfig | None, sandbox: SandboxConfig | None) -> str:
        timeout: Timeout = DEFAULT if self.pull_timeout is None else self.pull_timeout
        try:
            return await self.client.pull_image(
                image,
                None if auth is None else auth_to_cri(auth),
                None if sandbox is None else sandbox_config_to_cri(sandbox),
                timeout=timeout,
            )
        except CRIError as e:
            raise ImagePullError("ErrImagePull", rpc_error_text(e)) from None

    # ---- stats and streams ----

    async def container_stats(self, container_ids: list[str]) -> list[ContainerStats]:
        """Stats of the given containers that exist, from one ListContainerStats call."""
        wanted = set(container_ids)
        if not wanted:
            return []
        listed = await self._call("ContainerStatsError", self.client.list_container_stats())
        return [stats_from_cri(s) for s in listed if s.attributes.id in wanted]

    async def exec_url(
        self, container_id: str, command: list[str], stdin: bool, stdout: bool, stderr: bool, tty: bool
    ) -> str:
        return await self._call(
            "ExecError",
            self.client.exec(container_id, command, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr),
        )

    async def attach_url(self, container_id: str, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> str:
        return await self._call(
            "AttachError",
            self.client.attach(container_id, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr),
        )

    async def port_forward_url(self, sandbox_id: str, ports: list[int]) -> str:
        return await self._call("PortForwardError", self.client.port_forward(sandbox_id, ports))
