"""`FakeRuntime`: the `Runtime` seam in memory, for unit tests of the agent.

Sandboxes get IPs from a counter (10.88.0.2, .3, ...); containers go CREATED → RUNNING → EXITED. Tests script
what a real node would do on its own: a container exiting (`exit`, or `crash_on_start` for crash loops), an
OOM kill (`exit(..., reason="OOMKilled")`), pull failures and registry credentials per image, exec results per
command. Every call is recorded in `calls` as a tuple, naming containers by their container name, so tests can
assert order (init containers before app containers, preStop exec before stop).

Timestamps come from the injected `clock` (seconds), so a test driving the kubelet with virtual time gets
consistent `startedAt`/`finishedAt`.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from skiff.agent.runtime.interface import (
    LABEL_CONTAINER_NAME,
    LABEL_POD_UID,
    AuthConfig,
    ContainerConfig,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    ImageInfo,
    ImagePullError,
    RuntimeError_,
    SandboxConfig,
    SandboxState,
    SandboxStatus,
)

DEFAULT_STOP_EXIT_CODE = 137  # what a container stopped by the runtime reports unless a test says otherwise


@dataclass
class FakeContainer:
    status: ContainerStatus
    config: ContainerConfig


@dataclass
class FakeSandbox:
    status: SandboxStatus
    config: SandboxConfig
    containers: list[str] = field(default_factory=list)


def image_digest(image: str) -> str:
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


class FakeRuntime:
    """An in-memory `Runtime`. Not safe to share between event loops; cheap to create per test."""

    def __init__(self, clock: Callable[[], float] = time.time, ip_prefix: str = "10.88.0.") -> None:
        self.clock = clock
        self.ip_prefix = ip_prefix
        self.sandboxes: dict[str, FakeSandbox] = {}
        self.containers: dict[str, FakeContainer] = {}
        self.images: dict[str, ImageInfo] = {}
        self.calls: list[tuple[str, ...]] = []
        self.pull_failures: dict[str, str] = {}  # image → error message (ErrImagePull)
        self.required_auth: dict[str, tuple[str, str]] = {}  # image → (username, password)
        self.pulled_with: dict[str, AuthConfig | None] = {}  # image → auth of its last pull
        self.exec_results: dict[tuple[str, ...], ExecResult] = {}  # command → result (any container)
        self.crash_on_start: dict[str, tuple[int, str]] = {}  # container name → (exit code, reason)
        self.stop_exit_codes: dict[str, int] = {}  # container name → exit code when stopped
        self.create_failures: dict[str, str] = {}  # container name → CreateContainerError message
        self.sandbox_failure: str = ""  # non-empty: run_sandbox fails with it
        self._ids = itertools.count(1)
        self._ips = itertools.count(2)

    # --- scripting ---

    def _now_ns(self) -> int:
        return int(self.clock() * 1e9)

    def add_image(self, image: str, *, uid: int | None = 0, username: str = "", size: int = 1000) -> ImageInfo:
        """Make `image` present locally (as if pulled before)."""
        info = ImageInfo(id=image_digest(image), repo_tags=[image], size=size, uid=uid, username=username)
        self.images[image] = info
        return info

    def by_name(self, container_name: str, pod_uid: str = "") -> list[FakeContainer]:
        """The containers named `container_name` (of pod `pod_uid` if given), oldest first."""
        return [c for c in self.containers.values()
                if c.status.name == container_name and (not pod_uid or c.status.labels.get(LABEL_POD_UID) == pod_uid)]

    def running(self, container_name: str, pod_uid: str = "") -> FakeContainer | None:
        live = [c for c in self.by_name(container_name, pod_uid) if c.status.state == ContainerState.RUNNING]
        return live[-1] if live else None

    def exit(self, container_name: str, code: int, reason: str = "", *, pod_uid: str = "", message: str = "") -> str:
        """Make the running container `container_name` exit with `code` (reason defaults as containerd's:
        `Completed` for 0, `Error` otherwise; pass `OOMKilled` for an OOM kill). Returns its id."""
        c = self.running(container_name, pod_uid)
        if c is None:
            raise AssertionError(f"no running container {container_name!r}")
        self._finish(c, code, reason or ("Completed" if code == 0 else "Error"), message)
        return c.status.id

    def _finish(self, c: FakeContainer, code: int, reason: str, message: str = "") -> None:
        c.status = replace(c.status, state=ContainerState.EXITED, exit_code=code, reason=reason, message=message,
                           finished_at_ns=self._now_ns())

    def call_names(self, op: str) -> list[str]:
        """The second element of every recorded call of `op` (the container name for container calls)."""
        return [c[1] for c in self.calls if c[0] == op]

    # --- sandboxes ---

    async def run_sandbox(self, config: SandboxConfig, runtime_handler: str = "") -> str:
        self.calls.append(("run_sandbox", config.name, str(config.attempt)))
        if self.sandbox_failure:
            raise RuntimeError_("CreatePodSandboxError", self.sandbox_failure)
        sid = f"sandbox-{next(self._ids)}"
        ip = "" if config.host_network else f"{self.ip_prefix}{next(self._ips)}"
        status = SandboxStatus(id=sid, name=config.name, namespace=config.namespace, uid=config.uid,
                               attempt=config.attempt, state=SandboxState.READY, created_at_ns=self._now_ns(),
                               ip=ip, labels=dict(config.labels), annotations=dict(config.annotations))
        self.sandboxes[sid] = FakeSandbox(status, config)
        return sid

    def _sandbox(self, sandbox_id: str) -> FakeSandbox:
        try:
            return self.sandboxes[sandbox_id]
        except KeyError:
            raise RuntimeError_("NotFound", f"sandbox {sandbox_id} not found", not_found=True) from None

    async def stop_sandbox(self, sandbox_id: str) -> None:
        self.calls.append(("stop_sandbox", sandbox_id))
        sb = self.sandboxes.get(sandbox_id)
        if sb is None:
            return
        for cid in sb.containers:
            c = self.containers.get(cid)
            if c is not None and c.status.state in (ContainerState.RUNNING, ContainerState.CREATED):
                self._finish(c, self.stop_exit_codes.get(c.status.name, DEFAULT_STOP_EXIT_CODE), "Error")
        sb.status = replace(sb.status, state=SandboxState.NOTREADY)

    async def remove_sandbox(self, sandbox_id: str) -> None:
        self.calls.append(("remove_sandbox", sandbox_id))
        sb = self.sandboxes.pop(sandbox_id, None)
        if sb is not None:
            for cid in sb.containers:
                self.containers.pop(cid, None)

    async def sandbox_status(self, sandbox_id: str) -> SandboxStatus:
        return replace(self._sandbox(sandbox_id).status)

    async def list_sandboxes(self) -> list[SandboxStatus]:
        return [replace(s.status) for s in self.sandboxes.values()]

    # --- containers ---

    async def create_container(self, sandbox_id: str, config: ContainerConfig, sandbox: SandboxConfig) -> str:
        self.calls.append(("create_container", config.name, str(config.attempt)))
        sb = self._sandbox(sandbox_id)
        if config.name in self.create_failures:
            raise RuntimeError_("CreateContainerError", self.create_failures[config.name])
        image = self.images.get(config.image)
        cid = f"c{next(self._ids):04d}"
        labels = {**config.labels, LABEL_CONTAINER_NAME: config.name, LABEL_POD_UID: sandbox.uid}
        status = ContainerStatus(id=cid, sandbox_id=sandbox_id, name=config.name, attempt=config.attempt,
                                 state=ContainerState.CREATED, image=config.image,
                                 image_ref=image.id if image else image_digest(config.image),
                                 created_at_ns=self._now_ns(), labels=labels,
                                 annotations=dict(config.annotations),
                                 log_path=f"{sandbox.log_directory}/{config.log_path}")
        self.containers[cid] = FakeContainer(status, config)
        sb.containers.append(cid)
        return cid

    def _container(self, container_id: str) -> FakeContainer:
        try:
            return self.containers[container_id]
        except KeyError:
            raise RuntimeError_("NotFound", f"container {container_id} not found", not_found=True) from None

    async def start_container(self, container_id: str) -> None:
        c = self._container(container_id)
        self.calls.append(("start_container", c.status.name))
        c.status = replace(c.status, state=ContainerState.RUNNING, started_at_ns=self._now_ns())
        crash = self.crash_on_start.get(c.status.name)
        if crash is not None:
            self._finish(c, crash[0], crash[1])

    async def stop_container(self, container_id: str, timeout_seconds: int) -> None:
        c = self._container(container_id)
        self.calls.append(("stop_container", c.status.name, str(timeout_seconds)))
        if c.status.state in (ContainerState.RUNNING, ContainerState.CREATED):
            self._finish(c, self.stop_exit_codes.get(c.status.name, DEFAULT_STOP_EXIT_CODE), "Error")

    async def remove_container(self, container_id: str) -> None:
        c = self.containers.pop(container_id, None)
        if c is not None:
            self.calls.append(("remove_container", c.status.name))
            sb = self.sandboxes.get(c.status.sandbox_id)
            if sb is not None and container_id in sb.containers:
                sb.containers.remove(container_id)

    async def container_status(self, container_id: str) -> ContainerStatus:
        return replace(self._container(container_id).status)

    async def list_containers(self, sandbox_id: str = "") -> list[ContainerStatus]:
        return [replace(c.status) for c in self.containers.values()
                if not sandbox_id or c.status.sandbox_id == sandbox_id]

    async def exec_sync(self, container_id: str, command: list[str], timeout_seconds: int) -> ExecResult:
        c = self._container(container_id)
        self.calls.append(("exec_sync", c.status.name, *command))
        if c.status.state != ContainerState.RUNNING:
            raise RuntimeError_("ExecError", f"container {container_id} is not running")
        return self.exec_results.get(tuple(command), ExecResult(0, b"", b""))

    # --- images ---

    async def image_status(self, image: str) -> ImageInfo | None:
        info = self.images.get(image)
        return replace(info) if info else None

    async def pull_image(self, image: str, auth: AuthConfig | None, sandbox: SandboxConfig | None) -> str:
        self.calls.append(("pull_image", image))
        self.pulled_with[image] = auth
        if image in self.pull_failures:
            raise ImagePullError("ErrImagePull", self.pull_failures[image])
        need = self.required_auth.get(image)
        if need is not None and (auth is None or (auth.username, auth.password) != need):
            raise ImagePullError("ErrImagePull", f'failed to pull and unpack image "{image}": failed to resolve '
                                                 "reference: unexpected status: 401 Unauthorized")
        return self.add_image(image).id

    # --- stats and streams ---

    async def container_stats(self, container_ids: list[str]) -> list[ContainerStats]:
        return [ContainerStats(container_id=cid, timestamp_ns=self._now_ns(), memory_working_set_bytes=1 << 20)
                for cid in container_ids if cid in self.containers]

    async def exec_url(self, container_id: str, command: list[str], stdin: bool, stdout: bool, stderr: bool,
                       tty: bool) -> str:
        self._container(container_id)
        return f"http://127.0.0.1:0/exec/{container_id}"

    async def attach_url(self, container_id: str, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> str:
        self._container(container_id)
        return f"http://127.0.0.1:0/attach/{container_id}"

    async def port_forward_url(self, sandbox_id: str, ports: list[int]) -> str:
        self._sandbox(sandbox_id)
        return f"http://127.0.0.1:0/portforward/{sandbox_id}"
