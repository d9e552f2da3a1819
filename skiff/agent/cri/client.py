"""An asyncio client for a CRI v1 runtime (containerd's `io.containerd.grpc.v1.cri` plugin) on a unix socket.

Methods mirror the RPCs of `runtime.v1.RuntimeService` / `runtime.v1.ImageService` one to one (the
kubelet's `remote_runtime.go` / `remote_image.go` are the model): they take and return the generated
protobuf messages, unwrap single-field responses (an ID, a URL, a list) and raise one exception type,
`CRIError`, for every failed call, with the gRPC status code kept so callers can tell "not found" from
"runtime down". The streaming RPCs (Exec, Attach, PortForward) only return the URL of the runtime's
streaming server; the caller proxies the stream itself.

The RPC paths are bound here rather than through a generated `_pb2_grpc` module; see build.py.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import grpc  # type: ignore[import-untyped]

try:
    from skiff.agent.cri import api_pb2 as api
except ModuleNotFoundError as e:  # pragma: no cover - only without an install step
    if e.name != "skiff.agent.cri.api_pb2":
        raise
    raise ImportError(
        "skiff.agent.cri.api_pb2 is generated from api.proto when skiff is installed: "
        "run `pip install -e .` (scripts/setup.sh) or `python -m skiff.agent.cri.build`"
    ) from e

__all__ = ["DEFAULT", "DEFAULT_TIMEOUT", "CRIClient", "CRIError", "api"]

RUNTIME_SERVICE = "runtime.v1.RuntimeService"
IMAGE_SERVICE = "runtime.v1.ImageService"
# The kubelet's --runtime-request-timeout default (2m).
DEFAULT_TIMEOUT = 120.0
# The kubelet's CRI message cap; runtimes cap each ExecSync stream at the same 16 MiB.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

R = TypeVar("R")


class _Default(enum.Enum):
    TIMEOUT = enum.auto()


DEFAULT = _Default.TIMEOUT
"""Per-call timeout marker: the client's default deadline for this kind of call."""

Timeout = float | None | Literal[_Default.TIMEOUT]
"""Seconds until the gRPC deadline; None waits forever."""


class CRIError(Exception):
    """A CRI call failed; `code` is the gRPC status (NOT_FOUND, UNAVAILABLE, DEADLINE_EXCEEDED, ...)."""

    def __init__(self, code: grpc.StatusCode, message: str, method: str = "") -> None:
        super().__init__(f"{method}: {code.name}: {message}" if method else f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.method = method

    @property
    def not_found(self) -> bool:
        return bool(self.code == grpc.StatusCode.NOT_FOUND)

    @property
    def unavailable(self) -> bool:
        """The runtime is not answering (socket missing, process down): retry later, not a pod error."""
        return bool(self.code == grpc.StatusCode.UNAVAILABLE)


class CRIClient:
    """One gRPC channel to a CRI runtime socket. Cheap to create; `close()` (or `async with`) ends it.

    `timeout` is the deadline of ordinary calls; image pulls have no deadline by default (as in the
    kubelet) and ExecSync/StopContainer add their own command or grace time to it.
    """

    def __init__(
        self, socket_path: str | Path, *, timeout: float = DEFAULT_TIMEOUT, pull_timeout: float | None = None
    ) -> None:
        self.socket_path = str(socket_path)
        self.timeout = timeout
        self.pull_timeout = pull_timeout
        self._channel: Any = grpc.aio.insecure_channel(
            f"unix://{self.socket_path}",
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self._stubs: dict[str, Any] = {}

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> CRIClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _call(
        self,
        service: str,
        method: str,
        request: Any,
        response_type: type[R],
        timeout: Timeout,
        default: float | None = None,
    ) -> R:
        path = f"/{service}/{method}"
        stub = self._stubs.get(path)
        if stub is None:
            stub = self._channel.unary_unary(
                path,
                request_serializer=type(request).SerializeToString,
                response_deserializer=response_type.FromString,  # type: ignore[attr-defined]
            )
            self._stubs[path] = stub
        deadline = (self.timeout if default is None else default) if timeout is DEFAULT else timeout
        try:
            response: R = await stub(request, timeout=deadline)
        except grpc.aio.AioRpcError as e:
            raise CRIError(e.code(), e.details() or "", method) from None
        return response

    def _runtime(
        self,
        method: str,
        request: Any,
        response_type: type[R],
        timeout: Timeout,
        default: float | None = None,
    ) -> Any:
        return self._call(RUNTIME_SERVICE, method, request, response_type, timeout, default)

    def _image(
        self,
        method: str,
        request: Any,
        response_type: type[R],
        timeout: Timeout,
        default: float | None = None,
    ) -> Any:
        return self._call(IMAGE_SERVICE, method, request, response_type, timeout, default)

    # ---- runtime ----

    async def version(self, api_version: str = "v1", *, timeout: Timeout = DEFAULT) -> api.VersionResponse:
        resp: api.VersionResponse = await self._runtime(
            "Version", api.VersionRequest(version=api_version), api.VersionResponse, timeout
        )
        return resp

    async def status(self, verbose: bool = False, *, timeout: Timeout = DEFAULT) -> api.StatusResponse:
        """The runtime's conditions (RuntimeReady, NetworkReady) the node's Ready condition is made from."""
        resp: api.StatusResponse = await self._runtime(
            "Status", api.StatusRequest(verbose=verbose), api.StatusResponse, timeout
        )
        return resp

    async def update_runtime_config(self, pod_cidr: str, *, timeout: Timeout = DEFAULT) -> None:
        request = api.UpdateRuntimeConfigRequest(
            runtime_config=api.RuntimeConfig(network_config=api.NetworkConfig(pod_cidr=pod_cidr))
        )
        await self._runtime("UpdateRuntimeConfig", request, api.UpdateRuntimeConfigResponse, timeout)

    # ---- pod sandboxes ----

    async def run_pod_sandbox(
        self, config: api.PodSandboxConfig, runtime_handler: str = "", *, timeout: Timeout = DEFAULT
    ) -> str:
        """Creates and starts the sandbox (netns + pause container + CNI); returns its ID."""
        resp: api.RunPodSandboxResponse = await self._runtime(
            "RunPodSandbox",
            api.RunPodSandboxRequest(config=config, runtime_handler=runtime_handler),
            api.RunPodSandboxResponse,
            timeout,
        )
        return resp.pod_sandbox_id

    async def stop_pod_sandbox(self, pod_sandbox_id: str, *, timeout: Timeout = DEFAULT) -> None:
        """Kills the sandbox's containers and releases its network. Idempotent."""
        await self._runtime(
            "StopPodSandbox",
            api.StopPodSandboxRequest(pod_sandbox_id=pod_sandbox_id),
            api.StopPodSandboxResponse,
            timeout,
        )

    async def remove_pod_sandbox(self, pod_sandbox_id: str, *, timeout: Timeout = DEFAULT) -> None:
        """Removes the sandbox and its containers. Idempotent."""
        await self._runtime(
            "RemovePodSandbox",
            api.RemovePodSandboxRequest(pod_sandbox_id=pod_sandbox_id),
            api.RemovePodSandboxResponse,
            timeout,
        )

    async def pod_sandbox_status(
        self, pod_sandbox_id: str, verbose: bool = False, *, timeout: Timeout = DEFAULT
    ) -> api.PodSandboxStatusResponse:
        resp: api.PodSandboxStatusResponse = await self._runtime(
            "PodSandboxStatus",
            api.PodSandboxStatusRequest(pod_sandbox_id=pod_sandbox_id, verbose=verbose),
            api.PodSandboxStatusResponse,
            timeout,
        )
        return resp

    async def list_pod_sandbox(
        self, filter: api.PodSandboxFilter | None = None, *, timeout: Timeout = DEFAULT
    ) -> list[api.PodSandbox]:
        resp: api.ListPodSandboxResponse = await self._runtime(
            "ListPodSandbox", api.ListPodSandboxRequest(filter=filter), api.ListPodSandboxResponse, timeout
        )
        return list(resp.items)

    # ---- containers ----

    async def create_container(
        self,
        pod_sandbox_id: str,
        config: api.ContainerConfig,
        sandbox_config: api.PodSandboxConfig,
        *,
        timeout: Timeout = DEFAULT,
    ) -> str:
        """Creates (does not start) a container in the sandbox; returns its ID."""
        resp: api.CreateContainerResponse = await self._runtime(
            "CreateContainer",
            api.CreateContainerRequest(
                pod_sandbox_id=pod_sandbox_id, config=config, sandbox_config=sandbox_config
            ),
            api.CreateContainerResponse,
            timeout,
        )
        return resp.container_id

    async def start_container(self, container_id: str, *, timeout: Timeout = DEFAULT) -> None:
        await self._runtime(
            "StartContainer",
            api.StartContainerRequest(container_id=container_id),
            api.StartContainerResponse,
            timeout,
        )

    async def stop_container(
        self, container_id: str, grace_seconds: int, *, timeout: Timeout = DEFAULT
    ) -> None:
        """SIGTERM, then SIGKILL after `grace_seconds` (0 kills at once). Idempotent.

        The default deadline is the grace period plus the client timeout, as in the kubelet.
        """
        await self._runtime(
            "StopContainer",
            api.StopContainerRequest(container_id=container_id, timeout=grace_seconds),
            api.StopContainerResponse,
            timeout,
            default=self.timeout + max(grace_seconds, 0),
        )

    async def remove_container(self, container_id: str, *, timeout: Timeout = DEFAULT) -> None:
        """Removes the container, killing it first if it runs. Idempotent."""
        await self._runtime(
            "RemoveContainer",
            api.RemoveContainerRequest(container_id=container_id),
            api.RemoveContainerResponse,
            timeout,
        )

    async def list_containers(
        self, filter: api.ContainerFilter | None = None, *, timeout: Timeout = DEFAULT
    ) -> list[api.Container]:
        resp: api.ListContainersResponse = await self._runtime(
            "ListContainers", api.ListContainersRequest(filter=filter), api.ListContainersResponse, timeout
        )
        return list(resp.containers)

    async def container_status(
        self, container_id: str, verbose: bool = False, *, timeout: Timeout = DEFAULT
    ) -> api.ContainerStatusResponse:
        resp: api.ContainerStatusResponse = await self._runtime(
            "ContainerStatus",
            api.ContainerStatusRequest(container_id=container_id, verbose=verbose),
            api.ContainerStatusResponse,
            timeout,
        )
        return resp

    async def update_container_resources(
        self,
        container_id: str,
        linux: api.LinuxContainerResources,
        annotations: Mapping[str, str] | None = None,
        *,
        timeout: Timeout = DEFAULT,
    ) -> None:
        request = api.UpdateContainerResourcesRequest(
            container_id=container_id, linux=linux, annotations=dict(annotations or {})
        )
        await self._runtime(
            "UpdateContainerResources", request, api.UpdateContainerResourcesResponse, timeout
        )

    async def reopen_container_log(self, container_id: str, *, timeout: Timeout = DEFAULT) -> None:
        """Makes the runtime reopen the container's log file after the agent rotated it."""
        await self._runtime(
            "ReopenContainerLog",
            api.ReopenContainerLogRequest(container_id=container_id),
            api.ReopenContainerLogResponse,
            timeout,
        )

    # ---- exec, attach, port-forward ----

    async def exec_sync(
        self, container_id: str, cmd: Iterable[str], timeout_seconds: int = 0, *, timeout: Timeout = DEFAULT
    ) -> api.ExecSyncResponse:
        """Runs `cmd` to completion (probes, `kubectl exec` without a stream); output capped at 16 MiB.

        `timeout_seconds` bounds the command (0: none); the default deadline adds the client timeout to it,
        and is unbounded when the command is.
        """
        request = api.ExecSyncRequest(container_id=container_id, cmd=list(cmd), timeout=timeout_seconds)
        default = self.timeout + timeout_seconds if timeout_seconds > 0 else None
        if timeout is DEFAULT and default is None:
            timeout = None
        resp: api.ExecSyncResponse = await self._runtime(
            "ExecSync", request, api.ExecSyncResponse, timeout, default
        )
        return resp

    async def exec(
        self,
        container_id: str,
        cmd: Iterable[str],
        *,
        tty: bool = False,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
        timeout: Timeout = DEFAULT,
    ) -> str:
        """Returns the streaming-server URL that runs `cmd` when connected to."""
        request = api.ExecRequest(
            container_id=container_id,
            cmd=list(cmd),
            tty=tty,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr and not tty,
        )
        resp: api.ExecResponse = await self._runtime("Exec", request, api.ExecResponse, timeout)
        return resp.url

    async def attach(
        self,
        container_id: str,
        *,
        tty: bool = False,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
        timeout: Timeout = DEFAULT,
    ) -> str:
        """Returns the streaming-server URL attached to the container's main process."""
        request = api.AttachRequest(
            container_id=container_id, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr and not tty
        )
        resp: api.AttachResponse = await self._runtime("Attach", request, api.AttachResponse, timeout)
        return resp.url

    async def port_forward(
        self, pod_sandbox_id: str, ports: Iterable[int] = (), *, timeout: Timeout = DEFAULT
    ) -> str:
        """Returns the streaming-server URL that forwards to ports in the sandbox's network namespace."""
        request = api.PortForwardRequest(pod_sandbox_id=pod_sandbox_id, port=list(ports))
        resp: api.PortForwardResponse = await self._runtime(
            "PortForward", request, api.PortForwardResponse, timeout
        )
        return resp.url

    # ---- stats ----

    async def container_stats(self, container_id: str, *, timeout: Timeout = DEFAULT) -> api.ContainerStats:
        resp: api.ContainerStatsResponse = await self._runtime(
            "ContainerStats",
            api.ContainerStatsRequest(container_id=container_id),
            api.ContainerStatsResponse,
            timeout,
        )
        return resp.stats

    async def list_container_stats(
        self, filter: api.ContainerStatsFilter | None = None, *, timeout: Timeout = DEFAULT
    ) -> list[api.ContainerStats]:
        resp: api.ListContainerStatsResponse = await self._runtime(
            "ListContainerStats",
            api.ListContainerStatsRequest(filter=filter),
            api.ListContainerStatsResponse,
            timeout,
        )
        return list(resp.stats)

    async def pod_sandbox_stats(
        self, pod_sandbox_id: str, *, timeout: Timeout = DEFAULT
    ) -> api.PodSandboxStats:
        resp: api.PodSandboxStatsResponse = await self._runtime(
            "PodSandboxStats",
            api.PodSandboxStatsRequest(pod_sandbox_id=pod_sandbox_id),
            api.PodSandboxStatsResponse,
            timeout,
        )
        return resp.stats

    async def list_pod_sandbox_stats(
        self, filter: api.PodSandboxStatsFilter | None = None, *, timeout: Timeout = DEFAULT
    ) -> list[api.PodSandboxStats]:
        resp: api.ListPodSandboxStatsResponse = await self._runtime(
            "ListPodSandboxStats",
            api.ListPodSandboxStatsRequest(filter=filter),
            api.ListPodSandboxStatsResponse,
            timeout,
        )
        return list(resp.stats)

    # ---- images ----

    async def list_images(self, image: str = "", *, timeout: Timeout = DEFAULT) -> list[api.Image]:
        """All images, or those matching the reference `image`."""
        flt = api.ImageFilter(image=api.ImageSpec(image=image)) if image else None
        resp: api.ListImagesResponse = await self._image(
            "ListImages", api.ListImagesRequest(filter=flt), api.ListImagesResponse, timeout
        )
        return list(resp.images)

    async def image_status(self, image: str, *, timeout: Timeout = DEFAULT) -> api.Image | None:
        """The image, or None when the runtime does not have it (CRI answers an empty image, not an error)."""
        resp: api.ImageStatusResponse = await self._image(
            "ImageStatus",
            api.ImageStatusRequest(image=api.ImageSpec(image=image)),
            api.ImageStatusResponse,
            timeout,
        )
        return resp.image if resp.HasField("image") and resp.image.id else None

    async def pull_image(
        self,
        image: str,
        auth: api.AuthConfig | None = None,
        sandbox_config: api.PodSandboxConfig | None = None,
        *,
        timeout: Timeout = DEFAULT,
    ) -> str:
        """Pulls `image` (with registry credentials if given); returns the image reference (ID) to run."""
        request = api.PullImageRequest(
            image=api.ImageSpec(image=image), auth=auth, sandbox_config=sandbox_config
        )
        if timeout is DEFAULT:
            timeout = self.pull_timeout
        resp: api.PullImageResponse = await self._image("PullImage", request, api.PullImageResponse, timeout)
        return resp.image_ref

    async def remove_image(self, image: str, *, timeout: Timeout = DEFAULT) -> None:
        """Removes the image. Idempotent."""
        await self._image(
            "RemoveImage",
            api.RemoveImageRequest(image=api.ImageSpec(image=image)),
            api.RemoveImageResponse,
            timeout,
        )

    async def image_fs_info(self, *, timeout: Timeout = DEFAULT) -> api.ImageFsInfoResponse:
        resp: api.ImageFsInfoResponse = await self._image(
            "ImageFsInfo", api.ImageFsInfoRequest(), api.ImageFsInfoResponse, timeout
        )
        return resp
