"""`CRIRuntime` mapping (dataclasses ↔ CRI protobuf, errors) against a fake CRIClient, and the pull-secret
keyring of `image_credentials`. The real containerd path is in tests/e2e/test_cri_runtime.py."""

from __future__ import annotations

import base64
import json
from typing import Any

import grpc
import pytest

from skiff.agent.cri.client import DEFAULT, CRIClient, CRIError, Timeout, api
from skiff.agent.runtime.cri import (
    CRIRuntime,
    container_config_to_cri,
    go_code_name,
    image_credentials,
    sandbox_config_to_cri,
)
from skiff.agent.runtime.interface import (
    LABEL_CONTAINER_NAME,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    AuthConfig,
    ContainerConfig,
    ContainerState,
    DNSConfig,
    ImagePullError,
    Mount,
    PortMapping,
    Resources,
    RuntimeError_,
    SandboxConfig,
    SandboxState,
    SecurityContext,
)

NOT_FOUND = grpc.StatusCode.NOT_FOUND


def sandbox(**kw: Any) -> SandboxConfig:
    return SandboxConfig(name="web", namespace="default", uid="u-1", **kw)


class FakeCRI(CRIClient):
    """A CRIClient without a channel: canned answers, recorded requests, scriptable failures."""

    def __init__(self) -> None:
        self.timeout = 120.0
        self.pull_timeout = None
        self.calls: list[tuple[str, Any]] = []
        self.fail: dict[str, CRIError] = {}
        self.sandboxes: dict[str, api.PodSandboxStatus] = {}
        self.containers: dict[str, api.ContainerStatus] = {}
        self.container_sandbox: dict[str, str] = {}
        self.images: dict[str, api.Image] = {}
        self.stats: list[api.ContainerStats] = []
        self.exec_answer = api.ExecSyncResponse()
        self.pull_timeouts: list[Timeout] = []

    def _enter(self, method: str, request: Any = None) -> None:
        self.calls.append((method, request))
        if method in self.fail:
            raise self.fail[method]

    def _missing(self, method: str) -> CRIError:
        return CRIError(NOT_FOUND, "not found", method)

    async def run_pod_sandbox(
        self, config: api.PodSandboxConfig, runtime_handler: str = "", *, timeout: Timeout = DEFAULT
    ) -> str:
        self._enter("RunPodSandbox", (config, runtime_handler))
        return "sb-1"

    async def stop_pod_sandbox(self, pod_sandbox_id: str, *, timeout: Timeout = DEFAULT) -> None:
        self._enter("StopPodSandbox", pod_sandbox_id)

    async def remove_pod_sandbox(self, pod_sandbox_id: str, *, timeout: Timeout = DEFAULT) -> None:
        self._enter("RemovePodSandbox", pod_sandbox_id)

    async def pod_sandbox_status(
        self, pod_sandbox_id: str, verbose: bool = False, *, timeout: Timeout = DEFAULT
    ) -> api.PodSandboxStatusResponse:
        self._enter("PodSandboxStatus", pod_sandbox_id)
        if pod_sandbox_id not in self.sandboxes:
            raise self._missing("PodSandboxStatus")
        return api.PodSandboxStatusResponse(status=self.sandboxes[pod_sandbox_id])

    async def list_pod_sandbox(
        self, filter: api.PodSandboxFilter | None = None, *, timeout: Timeout = DEFAULT
    ) -> list[api.PodSandbox]:
        self._enter("ListPodSandbox", filter)
        return [api.PodSandbox(id=i) for i in [*self.sandboxes, "sb-removed-meanwhile"]]

    async def create_container(
        self,
        pod_sandbox_id: str,
        config: api.ContainerConfig,
        sandbox_config: api.PodSandboxConfig,
        *,
        timeout: Timeout = DEFAULT,
    ) -> str:
        self._enter("CreateContainer", (pod_sandbox_id, config, sandbox_config))
        return "c-1"

    async def start_container(self, container_id: str, *, timeout: Timeout = DEFAULT) -> None:
        self._enter("StartContainer", container_id)

    async def stop_container(
        self, container_id: str, grace_seconds: int, *, timeout: Timeout = DEFAULT
    ) -> None:
        self._enter("StopContainer", (container_id, grace_seconds))

    async def remove_container(self, container_id: str, *, timeout: Timeout = DEFAULT) -> None:
        self._enter("RemoveContainer", container_id)

    async def list_containers(
        self, filter: api.ContainerFilter | None = None, *, timeout: Timeout = DEFAULT
    ) -> list[api.Container]:
        self._enter("ListContainers", filter)
        ids = [*self.container_sandbox, "c-removed-meanwhile"]
        found = [api.Container(id=i, pod_sandbox_id=self.container_sandbox.get(i, "sb-x")) for i in ids]
        if filter is not None and filter.id:
            found = [c for c in found if c.id == filter.id]
        if filter is not None and filter.pod_sandbox_id:
            found = [c for c in found if c.pod_sandbox_id == filter.pod_sandbox_id]
        return found

    async def container_status(
        self, container_id: str, verbose: bool = False, *, timeout: Timeout = DEFAULT
    ) -> api.ContainerStatusResponse:
        self._enter("ContainerStatus", container_id)
        if container_id not in self.containers:
            raise self._missing("ContainerStatus")
        return api.ContainerStatusResponse(status=self.containers[container_id])

    async def exec_sync(
        self, container_id: str, cmd: Any, timeout_seconds: int = 0, *, timeout: Timeout = DEFAULT
    ) -> api.ExecSyncResponse:
        self._enter("ExecSync", (container_id, list(cmd), timeout_seconds))
        return self.exec_answer

    async def exec(self, container_id: str, cmd: Any, **kw: Any) -> str:
        self._enter("Exec", (container_id, list(cmd), kw))
        return "http://127.0.0.1:1/exec/x"

    async def attach(self, container_id: str, **kw: Any) -> str:
        self._enter("Attach", (container_id, kw))
        return "http://127.0.0.1:1/attach/x"

    async def port_forward(self, pod_sandbox_id: str, ports: Any = (), *, timeout: Timeout = DEFAULT) -> str:
        self._enter("PortForward", (pod_sandbox_id, list(ports)))
        return "http://127.0.0.1:1/portforward/x"

    async def list_container_stats(
        self, filter: api.ContainerStatsFilter | None = None, *, timeout: Timeout = DEFAULT
    ) -> list[api.ContainerStats]:
        self._enter("ListContainerStats", filter)
        return self.stats

    async def image_status(self, image: str, *, timeout: Timeout = DEFAULT) -> api.Image | None:
        self._enter("ImageStatus", image)
        return self.images.get(image)

    async def pull_image(
        self,
        image: str,
        auth: api.AuthConfig | None = None,
        sandbox_config: api.PodSandboxConfig | None = None,
        *,
        timeout: Timeout = DEFAULT,
    ) -> str:
        self._enter("PullImage", (image, auth, sandbox_config))
        self.pull_timeouts.append(timeout)
        return "sha256:abc"


@pytest.fixture
def cri() -> FakeCRI:
    return FakeCRI()


# ---- sandbox config ----


@pytest.mark.parametrize(
    ("kw", "network", "pid", "ipc"),
    [
        pytest.param({}, api.POD, api.CONTAINER, api.POD, id="pod-default"),
        pytest.param({"host_network": True}, api.NODE, api.CONTAINER, api.POD, id="host-network"),
        pytest.param({"host_pid": True}, api.POD, api.NODE, api.POD, id="host-pid"),
        pytest.param({"host_ipc": True}, api.POD, api.CONTAINER, api.NODE, id="host-ipc"),
    ],
)
def test_sandbox_namespaces(kw: dict[str, bool], network: int, pid: int, ipc: int) -> None:
    ns = sandbox_config_to_cri(sandbox(**kw)).linux.security_context.namespace_options
    assert (ns.network, ns.pid, ns.ipc) == (network, pid, ipc)
    # Containers get the sandbox's namespaces.
    cns = container_config_to_cri(ContainerConfig(name="c", image="i"), sandbox(**kw))
    assert cns.linux.security_context.namespace_options == ns


@pytest.mark.parametrize(
    ("field", "check"),
    [
        pytest.param(
            "share_process_namespace",
            lambda sec: sec.namespace_options.pid == api.POD,
            id="share-process-namespace-pid-pod",
        ),
        pytest.param("privileged", lambda sec: sec.privileged, id="privileged-sandbox"),
    ],
)
def test_sandbox_fields_read_when_present(field: str, check: Any) -> None:
    cfg = sandbox()
    assert not check(sandbox_config_to_cri(cfg).linux.security_context)
    setattr(cfg, field, True)
    assert check(sandbox_config_to_cri(cfg).linux.security_context)


def test_sandbox_config_fields() -> None:
    cfg = sandbox(
        attempt=2,
        hostname="web-0",
        log_directory="/data/logs/pods/default_web_u-1",
        dns=DNSConfig(servers=["10.43.0.10"], searches=["default.svc.cluster.local"], options=["ndots:5"]),
        port_mappings=[PortMapping(8080, 80, "127.0.0.1", "udp"), PortMapping(9090)],
        labels={"app": "web", LABEL_POD_UID: "stale"},
        annotations={"a": "b"},
        cgroup_parent="/kubepods/besteffort/podu-1",
        sysctls={"net.ipv4.ip_unprivileged_port_start": "0"},
        run_as_user=1000,
        supplemental_groups=[5, 6],
        seccomp_runtime_default=True,
    )
    got = sandbox_config_to_cri(cfg)
    assert (got.metadata.name, got.metadata.namespace, got.metadata.uid, got.metadata.attempt) == (
        "web",
        "default",
        "u-1",
        2,
    )
    assert (got.hostname, got.log_directory) == ("web-0", "/data/logs/pods/default_web_u-1")
    assert list(got.dns_config.servers) == ["10.43.0.10"] and list(got.dns_config.options) == ["ndots:5"]
    assert [(p.protocol, p.container_port, p.host_port, p.host_ip) for p in got.port_mappings] == [
        (api.UDP, 8080, 80, "127.0.0.1"),
        (api.TCP, 9090, 0, ""),
    ]
    assert dict(got.labels) == {
        "app": "web",
        LABEL_POD_UID: "u-1",
        LABEL_POD_NAME: "web",
        LABEL_POD_NAMESPACE: "default",
    }
    assert dict(got.annotations) == {"a": "b"}
    linux = got.linux
    assert linux.cgroup_parent == "/kubepods/besteffort/podu-1"
    assert dict(linux.sysctls) == {"net.ipv4.ip_unprivileged_port_start": "0"}
    sec = linux.security_context
    assert sec.HasField("run_as_user") and sec.run_as_user.value == 1000
    assert not sec.HasField("run_as_group")
    assert list(sec.supplemental_groups) == [5, 6]
    assert sec.seccomp.profile_type == api.SecurityProfile.RuntimeDefault


def test_sandbox_without_dns_leaves_it_to_the_runtime() -> None:
    got = sandbox_config_to_cri(sandbox())
    assert not got.HasField("dns_config")
    assert got.linux.security_context.seccomp.profile_type == api.SecurityProfile.Unconfined
    assert not got.linux.security_context.HasField("run_as_user")


def test_unknown_port_protocol_is_a_sandbox_error() -> None:
    with pytest.raises(RuntimeError_) as err:
        sandbox_config_to_cri(sandbox(port_mappings=[PortMapping(80, protocol="ICMP")]))
    assert err.value.reason == "CreatePodSandboxError"


# ---- container config ----


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        pytest.param(["NET_ADMIN"], ["NET_ADMIN"], id="as-in-pod-spec"),
        pytest.param(["CAP_NET_ADMIN"], ["NET_ADMIN"], id="cap-prefix-stripped"),
        pytest.param(["net_raw", "cap_sys_time"], ["NET_RAW", "SYS_TIME"], id="lower-case"),
        pytest.param(["ALL"], ["ALL"], id="all"),
        pytest.param([], [], id="none"),
    ],
)
def test_capabilities_without_cap_prefix(given: list[str], sent: list[str]) -> None:
    cfg = ContainerConfig(
        name="c", image="i", security=SecurityContext(add_capabilities=given, drop_capabilities=given)
    )
    caps = container_config_to_cri(cfg, sandbox()).linux.security_context.capabilities
    assert (list(caps.add_capabilities), list(caps.drop_capabilities)) == (sent, sent)


@pytest.mark.parametrize(
    ("security", "profile"),
    [
        pytest.param(SecurityContext(), api.SecurityProfile.Unconfined, id="unset-is-unconfined"),
        pytest.param(
            SecurityContext(seccomp_runtime_default=True),
            api.SecurityProfile.RuntimeDefault,
            id="runtime-default",
        ),
        pytest.param(
            SecurityContext(seccomp_runtime_default=True, seccomp_unconfined=True),
            api.SecurityProfile.Unconfined,
            id="unconfined-wins",
        ),
    ],
)
def test_container_seccomp(security: SecurityContext, profile: int) -> None:
    cfg = ContainerConfig(name="c", image="i", security=security)
    sec = container_config_to_cri(cfg, sandbox()).linux.security_context
    assert sec.HasField("seccomp") and sec.seccomp.profile_type == profile


def test_container_config_fields() -> None:
    cfg = ContainerConfig(
        name="app",
        image="nginx:1.27",
        attempt=3,
        command=["/bin/sh"],
        args=["-c", "echo hi"],
        working_dir="/srv",
        env=[("A", "1"), ("B", "")],
        mounts=[
            Mount("/host/a", "/a"),
            Mount("/host/b", "/b", read_only=True, propagation="host_to_container"),
            Mount("/host/c", "/c", selinux_relabel=True, propagation="bidirectional"),
        ],
        labels={"x": "y"},
        annotations={"io.kubernetes.container.restartCount": "3"},
        log_path="app/3.log",
        stdin=True,
        stdin_once=True,
        tty=True,
        resources=Resources(
            cpu_shares=512,
            cpu_period=100_000,
            cpu_quota=50_000,
            memory_limit_bytes=1 << 27,
            oom_score_adj=999,
        ),
        security=SecurityContext(
            privileged=True,
            run_as_user=0,
            run_as_group=10,
            run_as_username="",
            supplemental_groups=[4],
            read_only_rootfs=True,
            no_new_privs=True,
            masked_paths=["/proc/kcore"],
            readonly_paths=["/proc/sys"],
        ),
    )
    got = container_config_to_cri(cfg, sandbox())
    assert (got.metadata.name, got.metadata.attempt) == ("app", 3)
    assert (got.image.image, got.image.user_specified_image) == ("nginx:1.27", "nginx:1.27")
    assert (list(got.command), list(got.args), got.working_dir) == (["/bin/sh"], ["-c", "echo hi"], "/srv")
    assert [(e.key, e.value) for e in got.envs] == [("A", "1"), ("B", "")]
    assert [
        (m.host_path, m.container_path, m.readonly, m.selinux_relabel, m.propagation) for m in got.mounts
    ] == [
        ("/host/a", "/a", False, False, api.PROPAGATION_PRIVATE),
        ("/host/b", "/b", True, False, api.PROPAGATION_HOST_TO_CONTAINER),
        ("/host/c", "/c", False, True, api.PROPAGATION_BIDIRECTIONAL),
    ]
    assert dict(got.labels) == {
        "x": "y",
        LABEL_POD_NAME: "web",
        LABEL_POD_NAMESPACE: "default",
        LABEL_POD_UID: "u-1",
        LABEL_CONTAINER_NAME: "app",
    }
    assert dict(got.annotations) == {"io.kubernetes.container.restartCount": "3"}
    assert (got.log_path, got.stdin, got.stdin_once, got.tty) == ("app/3.log", True, True, True)
    res = got.linux.resources
    assert (res.cpu_shares, res.cpu_period, res.cpu_quota, res.memory_limit_in_bytes, res.oom_score_adj) == (
        512,
        100_000,
        50_000,
        1 << 27,
        999,
    )
    sec = got.linux.security_context
    assert sec.privileged and sec.readonly_rootfs and sec.no_new_privs
    # uid 0 is a real value (runAsUser: 0), not "unset".
    assert sec.HasField("run_as_user") and sec.run_as_user.value == 0
    assert sec.run_as_group.value == 10 and list(sec.supplemental_groups) == [4]
    assert (list(sec.masked_paths), list(sec.readonly_paths)) == (["/proc/kcore"], ["/proc/sys"])


def test_unknown_mount_propagation_is_a_create_error() -> None:
    cfg = ContainerConfig(name="c", image="i", mounts=[Mount("/a", "/a", propagation="shared")])
    with pytest.raises(RuntimeError_) as err:
        container_config_to_cri(cfg, sandbox())
    assert err.value.reason == "CreateContainerError"


# ---- calls and statuses ----


async def test_run_sandbox_and_create_container_send_the_mapped_configs(cri: FakeCRI) -> None:
    rt = CRIRuntime(cri)
    sb = sandbox(hostname="h")
    assert await rt.run_sandbox(sb, "runc") == "sb-1"
    config, handler = cri.calls[-1][1]
    assert (config, handler) == (sandbox_config_to_cri(sb), "runc")
    assert await rt.create_container("sb-1", ContainerConfig(name="c", image="i"), sb) == "c-1"
    sandbox_id, container, sandbox_config = cri.calls[-1][1]
    assert (sandbox_id, container.metadata.name, sandbox_config) == ("sb-1", "c", sandbox_config_to_cri(sb))


async def test_sandbox_status_and_list(cri: FakeCRI) -> None:
    cri.sandboxes["sb-1"] = api.PodSandboxStatus(
        id="sb-1",
        metadata=api.PodSandboxMetadata(name="web", namespace="default", uid="u-1", attempt=1),
        state=api.SANDBOX_NOTREADY,
        created_at=1_700_000_000_123_456_789,
        network=api.PodSandboxNetworkStatus(ip="10.42.0.5", additional_ips=[api.PodIP(ip="fd00::5")]),
        labels={"app": "web"},
        annotations={"a": "b"},
    )
    rt = CRIRuntime(cri)
    status = await rt.sandbox_status("sb-1")
    assert (status.id, status.name, status.namespace, status.uid, status.attempt) == (
        "sb-1",
        "web",
        "default",
        "u-1",
        1,
    )
    assert (status.state, status.created_at_ns) == (SandboxState.NOTREADY, 1_700_000_000_123_456_789)
    assert (status.ip, status.additional_ips) == ("10.42.0.5", ["fd00::5"])
    assert (status.labels, status.annotations) == ({"app": "web"}, {"a": "b"})
    # One listed sandbox vanished between the list and its status: left out, not an error.
    assert await rt.list_sandboxes() == [status]
    with pytest.raises(RuntimeError_) as err:
        await rt.sandbox_status("nope")
    assert err.value.not_found


def _container_status(cid: str, state: int, **kw: Any) -> api.ContainerStatus:
    return api.ContainerStatus(
        id=cid, metadata=api.ContainerMetadata(name="app", attempt=2), state=state, **kw
    )


@pytest.mark.parametrize(
    ("cri_state", "state"),
    [
        pytest.param(api.CONTAINER_CREATED, ContainerState.CREATED, id="created"),
        pytest.param(api.CONTAINER_RUNNING, ContainerState.RUNNING, id="running"),
        pytest.param(api.CONTAINER_EXITED, ContainerState.EXITED, id="exited"),
        pytest.param(api.CONTAINER_UNKNOWN, ContainerState.UNKNOWN, id="unknown"),
    ],
)
async def test_container_states(cri: FakeCRI, cri_state: int, state: ContainerState) -> None:
    cri.containers["c-1"] = _container_status("c-1", cri_state)
    cri.container_sandbox["c-1"] = "sb-1"
    assert (await CRIRuntime(cri).container_status("c-1")).state == state


async def test_exited_container_status(cri: FakeCRI) -> None:
    cri.containers["c-1"] = _container_status(
        "c-1",
        api.CONTAINER_EXITED,
        created_at=1,
        started_at=2,
        finished_at=3,
        exit_code=137,
        image=api.ImageSpec(image="skiff.local/test/shell:1"),
        image_ref="sha256:feed",
        reason="OOMKilled",
        message="",
        labels={LABEL_CONTAINER_NAME: "app"},
        annotations={"io.kubernetes.container.hash": "abc"},
        log_path="/logs/app/2.log",
    )
    cri.container_sandbox["c-1"] = "sb-1"
    got = await CRIRuntime(cri).container_status("c-1")
    assert (got.id, got.sandbox_id, got.name, got.attempt) == ("c-1", "sb-1", "app", 2)
    assert (got.created_at_ns, got.started_at_ns, got.finished_at_ns) == (1, 2, 3)
    assert (got.exit_code, got.reason) == (137, "OOMKilled")
    assert (got.image, got.image_ref, got.log_path) == (
        "skiff.local/test/shell:1",
        "sha256:feed",
        "/logs/app/2.log",
    )
    assert got.labels == {LABEL_CONTAINER_NAME: "app"}
    assert got.annotations == {"io.kubernetes.container.hash": "abc"}


async def test_list_containers_reads_each_status_and_skips_removed_ones(cri: FakeCRI) -> None:
    for cid, sb in (("c-1", "sb-1"), ("c-2", "sb-2")):
        cri.containers[cid] = _container_status(cid, api.CONTAINER_EXITED, exit_code=1, reason="Error")
        cri.container_sandbox[cid] = sb
    rt = CRIRuntime(cri)
    everything = await rt.list_containers()
    assert sorted((c.id, c.sandbox_id, c.exit_code, c.reason) for c in everything) == [
        ("c-1", "sb-1", 1, "Error"),
        ("c-2", "sb-2", 1, "Error"),
    ]
    assert [c.id for c in await rt.list_containers("sb-2")] == ["c-2"]


@pytest.mark.parametrize(
    ("method", "rpc"),
    [
        pytest.param("stop_sandbox", "StopPodSandbox", id="stop-sandbox"),
        pytest.param("remove_sandbox", "RemovePodSandbox", id="remove-sandbox"),
        pytest.param("remove_container", "RemoveContainer", id="remove-container"),
    ],
)
async def test_stop_and_remove_of_something_gone_succeed(cri: FakeCRI, method: str, rpc: str) -> None:
    cri.fail[rpc] = CRIError(NOT_FOUND, "does not exist", rpc)
    await getattr(CRIRuntime(cri), method)("gone")
    cri.fail[rpc] = CRIError(grpc.StatusCode.UNAVAILABLE, "connection refused", rpc)
    with pytest.raises(RuntimeError_) as err:
        await getattr(CRIRuntime(cri), method)("gone")
    assert not err.value.not_found and err.value.message == "connection refused"


@pytest.mark.parametrize(
    ("rpc", "call", "reason"),
    [
        pytest.param(
            "RunPodSandbox", lambda rt: rt.run_sandbox(sandbox()), "CreatePodSandboxError", id="run-sandbox"
        ),
        pytest.param(
            "CreateContainer",
            lambda rt: rt.create_container("sb", ContainerConfig(name="c", image="i"), sandbox()),
            "CreateContainerError",
            id="create",
        ),
        pytest.param("StartContainer", lambda rt: rt.start_container("c"), "RunContainerError", id="start"),
        pytest.param("StopContainer", lambda rt: rt.stop_container("c", 30), "KillContainerError", id="stop"),
    ],
)
async def test_failures_carry_the_kubelet_reason(cri: FakeCRI, rpc: str, call: Any, reason: str) -> None:
    cri.fail[rpc] = CRIError(grpc.StatusCode.UNKNOWN, "failed to create containerd task: boom", rpc)
    with pytest.raises(RuntimeError_) as err:
        await call(CRIRuntime(cri))
    assert (err.value.reason, err.value.message) == (reason, "failed to create containerd task: boom")


async def test_stop_container_passes_the_grace_period(cri: FakeCRI) -> None:
    await CRIRuntime(cri).stop_container("c-1", 30)
    assert cri.calls[-1] == ("StopContainer", ("c-1", 30))


async def test_exec_sync_non_zero_exit_is_a_result(cri: FakeCRI) -> None:
    cri.exec_answer = api.ExecSyncResponse(stdout=b"out", stderr=b"err", exit_code=3)
    got = await CRIRuntime(cri).exec_sync("c-1", ["sh", "-c", "exit 3"], 5)
    assert (got.exit_code, got.stdout, got.stderr) == (3, b"out", b"err")
    assert cri.calls[-1] == ("ExecSync", ("c-1", ["sh", "-c", "exit 3"], 5))


async def test_exec_sync_timeout(cri: FakeCRI) -> None:
    cri.fail["ExecSync"] = CRIError(grpc.StatusCode.DEADLINE_EXCEEDED, "timeout 1s exceeded", "ExecSync")
    with pytest.raises(RuntimeError_) as err:
        await CRIRuntime(cri).exec_sync("c-1", ["sleep", "30"], 1)
    assert (err.value.reason, err.value.message) == ("Timeout", 'command "sleep 30" timed out')


async def test_streaming_urls(cri: FakeCRI) -> None:
    rt = CRIRuntime(cri)
    assert await rt.exec_url("c-1", ["sh"], True, True, False, True) == "http://127.0.0.1:1/exec/x"
    assert cri.calls[-1] == (
        "Exec",
        ("c-1", ["sh"], {"tty": True, "stdin": True, "stdout": True, "stderr": False}),
    )
    assert await rt.attach_url("c-1", False, True, True, False) == "http://127.0.0.1:1/attach/x"
    assert cri.calls[-1] == (
        "Attach",
        ("c-1", {"tty": False, "stdin": False, "stdout": True, "stderr": True}),
    )
    assert await rt.port_forward_url("sb-1", [80, 443]) == "http://127.0.0.1:1/portforward/x"
    assert cri.calls[-1] == ("PortForward", ("sb-1", [80, 443]))


async def test_container_stats_of_the_asked_containers(cri: FakeCRI) -> None:
    def stats(cid: str, cpu: int, mem: int) -> api.ContainerStats:
        return api.ContainerStats(
            attributes=api.ContainerAttributes(id=cid),
            cpu=api.CpuUsage(timestamp=42, usage_core_nano_seconds=api.UInt64Value(value=cpu)),
            memory=api.MemoryUsage(timestamp=43, working_set_bytes=api.UInt64Value(value=mem)),
        )

    cri.stats = [stats("c-1", 5_000, 1 << 20), stats("c-2", 7, 8)]
    rt = CRIRuntime(cri)
    [got] = await rt.container_stats(["c-1", "c-gone"])
    assert (
        got.container_id,
        got.timestamp_ns,
        got.cpu_usage_core_nanoseconds,
        got.memory_working_set_bytes,
    ) == (
        "c-1",
        42,
        5_000,
        1 << 20,
    )
    assert await rt.container_stats([]) == []


# ---- images ----


@pytest.mark.parametrize(
    ("image", "uid", "username"),
    [
        pytest.param(api.Image(id="sha256:a", uid=api.Int64Value(value=1000)), 1000, "", id="numeric-user"),
        pytest.param(api.Image(id="sha256:a", uid=api.Int64Value(value=0)), 0, "", id="explicit-root"),
        pytest.param(api.Image(id="sha256:a", username="app"), None, "app", id="named-user"),
        pytest.param(api.Image(id="sha256:a"), 0, "", id="no-user-runs-as-root"),
    ],
)
async def test_image_user(cri: FakeCRI, image: api.Image, uid: int | None, username: str) -> None:
    cri.images["x:1"] = image
    info = await CRIRuntime(cri).image_status("x:1")
    assert info is not None and (info.uid, info.username) == (uid, username)


async def test_image_status_fields_and_absence(cri: FakeCRI) -> None:
    cri.images["x:1"] = api.Image(id="sha256:a", repo_tags=["x:1"], repo_digests=["x@sha256:b"], size=1234)
    rt = CRIRuntime(cri)
    info = await rt.image_status("x:1")
    assert info is not None
    assert (info.id, info.repo_tags, info.repo_digests, info.size) == (
        "sha256:a",
        ["x:1"],
        ["x@sha256:b"],
        1234,
    )
    assert await rt.image_status("absent:1") is None


async def test_pull_sends_credentials_and_sandbox(cri: FakeCRI) -> None:
    rt = CRIRuntime(cri, pull_timeout=90)
    auth = AuthConfig(username="u", password="p", auth="dTpw", server_address="")
    assert await rt.pull_image("reg:5000/a:1", auth, sandbox()) == "sha256:abc"
    image, sent_auth, sent_sandbox = cri.calls[-1][1]
    assert image == "reg:5000/a:1"
    assert (sent_auth.username, sent_auth.password, sent_auth.auth) == ("u", "p", "dTpw")
    assert sent_sandbox == sandbox_config_to_cri(sandbox())
    await CRIRuntime(cri).pull_image("a:1", None, None)
    assert cri.calls[-1][1] == ("a:1", None, None)
    assert cri.pull_timeouts == [90, DEFAULT]


async def test_pull_failure_is_err_image_pull_with_the_registry_answer(cri: FakeCRI) -> None:
    desc = (
        'failed to pull and unpack image "127.0.0.1:5000/a:1": failed to resolve reference '
        '"127.0.0.1:5000/a:1": unexpected status from HEAD request to http://127.0.0.1:5000/v2/a/manifests/1: '
        "401 Unauthorized"
    )
    cri.fail["PullImage"] = CRIError(grpc.StatusCode.UNKNOWN, desc, "PullImage")
    with pytest.raises(ImagePullError) as err:
        await CRIRuntime(cri).pull_image("127.0.0.1:5000/a:1", None, None)
    assert err.value.reason == "ErrImagePull"
    assert err.value.message == f"rpc error: code = Unknown desc = {desc}"


@pytest.mark.parametrize(
    ("code", "name"),
    [
        pytest.param(grpc.StatusCode.NOT_FOUND, "NotFound", id="not-found"),
        pytest.param(grpc.StatusCode.CANCELLED, "Canceled", id="canceled-go-spelling"),
        pytest.param(grpc.StatusCode.DEADLINE_EXCEEDED, "DeadlineExceeded", id="deadline"),
        pytest.param(grpc.StatusCode.UNKNOWN, "Unknown", id="unknown"),
    ],
)
def test_go_code_names(code: grpc.StatusCode, name: str) -> None:
    assert go_code_name(code) == name


# ---- pull secrets ----


def dockerconfigjson(auths: dict[str, Any], name: str = "s") -> dict[str, Any]:
    raw = json.dumps({"auths": auths}).encode()
    return {
        "metadata": {"name": name},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(raw).decode()},
    }


def dockercfg(entries: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps(entries).encode()
    return {
        "metadata": {"name": "old"},
        "type": "kubernetes.io/dockercfg",
        "data": {".dockercfg": base64.b64encode(raw).decode()},
    }


def entry(user: str) -> dict[str, str]:
    return {"username": user, "password": f"{user}-pw"}


@pytest.mark.parametrize(
    ("registries", "image", "user"),
    [
        pytest.param(["127.0.0.1:5000"], "127.0.0.1:5000/team/app:1", "127.0.0.1:5000", id="host-port"),
        pytest.param(["127.0.0.1:5000"], "127.0.0.1:5001/team/app:1", None, id="other-port"),
        pytest.param(["127.0.0.1"], "127.0.0.1:5000/team/app:1", None, id="port-must-match"),
        pytest.param(
            ["http://reg.example.com/v2/"],
            "reg.example.com/app",
            "http://reg.example.com/v2/",
            id="scheme-v2",
        ),
        pytest.param(
            ["quay.io", "quay.io/team"], "quay.io/team/app:1", "quay.io/team", id="longest-path-first"
        ),
        pytest.param(["quay.io", "quay.io/team"], "quay.io/other/app:1", "quay.io", id="host-fallback"),
        pytest.param(["*.example.com"], "reg.example.com/app@sha256:" + "0" * 64, "*.example.com", id="glob"),
        pytest.param(["*.example.com"], "a.reg.example.com/app", None, id="glob-part-count"),
        pytest.param(
            ["https://index.docker.io/v1/"], "nginx:1.27", "https://index.docker.io/v1/", id="hub-legacy-key"
        ),
        pytest.param(["docker.io"], "library/nginx", "docker.io", id="hub-docker-io"),
        pytest.param(["index.docker.io"], "docker.io/team/app", "index.docker.io", id="hub-alias"),
        pytest.param(["index.docker.io"], "team/app", "index.docker.io", id="hub-user-repo"),
        # Upstream's isDefaultRegistryMatch "doesn't check localhost": hub credentials are offered.
        pytest.param(["index.docker.io"], "localhost/app", "index.docker.io", id="localhost-quirk"),
        pytest.param(["index.docker.io"], "localhost:5000/app", None, id="host-with-port-is-not-hub"),
        pytest.param(["gcr.io"], "nginx", None, id="no-match"),
    ],
)
async def test_image_credentials_keyring(registries: list[str], image: str, user: str | None) -> None:
    secret = dockerconfigjson({r: entry(r) for r in registries})
    got = await image_credentials([secret], image)
    assert (got.username if got else None) == user
    if got is not None:
        assert (got.password, got.server_address) == (f"{user}-pw", "")


async def test_image_credentials_auth_field_and_legacy_dockercfg() -> None:
    auth = base64.b64encode(b"robot:s3cr:et").decode()
    got = await image_credentials(
        [dockercfg({"reg.example.com": {"auth": auth, "username": "ignored"}})], "reg.example.com/a"
    )
    assert got is not None and (got.username, got.password) == ("robot", "s3cr:et")


async def test_image_credentials_first_secret_wins_and_others_are_ignored() -> None:
    opaque = {"metadata": {"name": "o"}, "type": "Opaque", "data": {"x": "eA=="}}
    secrets = [
        opaque,
        dockerconfigjson({"r.io": entry("first")}),
        dockerconfigjson({"r.io": entry("second")}),
    ]
    got = await image_credentials(secrets, "r.io/a")
    assert got is not None and got.username == "first"
    assert await image_credentials([], "r.io/a") is None


async def test_malformed_pull_secret_fails_the_pull() -> None:
    bad = dockerconfigjson({"r.io": {"auth": "bm8tY29sb24="}}, name="regcred")  # "no-colon"
    with pytest.raises(ImagePullError) as err:
        await image_credentials([bad], "r.io/a")
    assert err.value.reason == "ErrImagePull" and 'pull secret "regcred"' in err.value.message
