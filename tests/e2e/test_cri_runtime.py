"""`CRIRuntime` against skiff's own containerd: real sandboxes and containers, an OOM kill under a cgroup v1
memory limit, and pulls from a local registry with htpasswd auth (right and wrong password).

Needs root, containerd, runc, ctr, the CNI plugins, `ip`, docker-registry and htpasswd; skipped otherwise.
Leaves nothing behind: sandboxes are stopped and removed, containerd and the registry are stopped by PID,
leftover mounts are unmounted, the test bridge and the sandboxes' netns are deleted, the temp dir removed.
The pod network is a host-local /24 on a bridge of its own: no masquerading, no route off the box.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from skiff.agent.containerd import ContainerdConfig, ManagedContainerd, unmount_under, write_registry_host
from skiff.agent.cri.client import CRIClient
from skiff.agent.runtime.cri import CRIRuntime, image_credentials
from skiff.agent.runtime.interface import (
    LABEL_CONTAINER_NAME,
    LABEL_POD_UID,
    ContainerConfig,
    ContainerState,
    ImagePullError,
    Resources,
    RuntimeError_,
    SandboxConfig,
    SandboxState,
    SecurityContext,
)
from skiff.testing import eventually

from .registry import LocalRegistry, missing_binaries

BRIDGE = "skiff-crirt0"
SUBNET_PREFIX = "10.244.237."
MiB = 1024 * 1024


def _missing() -> list[str]:
    missing = missing_binaries(
        "containerd", "containerd-shim-runc-v2", "runc", "ctr", "ip", "docker-registry", "htpasswd"
    )
    missing += [p for p in ("/usr/lib/cni/bridge", "/usr/lib/cni/host-local") if not Path(p).exists()]
    return missing


pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="containerd and CNI need root"),
    pytest.mark.skipif(bool(_missing()), reason=f"not installed: {', '.join(_missing())} (scripts/setup.sh)"),
]


def _delete_bridge() -> None:
    if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0:
        subprocess.run(["ip", "link", "delete", BRIDGE], check=True, capture_output=True)


def _conflist(ipam_dir: Path) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "skiff-cri-runtime-test",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": SUBNET_PREFIX + "0/24"}]],
                    "dataDir": str(ipam_dir),
                },
            }
        ],
    }


@dataclass
class Node:
    tmp: Path
    containerd: ManagedContainerd
    registry: LocalRegistry
    archives: dict[str, Path] = field(default_factory=dict)
    netns_paths: list[Path] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        return self.tmp / "pod-logs"


async def _prepare(node: Node) -> None:
    from skiff.agent.images import import_archive
    from skiff.agent.images.builtin import ensure_pause_archive
    from skiff.agent.images.testimages import build_test_images

    cfg = node.containerd.config
    await node.containerd.start()
    node.archives = await asyncio.to_thread(build_test_images, node.tmp / "images", with_pause=False)
    pause = await asyncio.to_thread(ensure_pause_archive, cfg.data_dir)
    for archive in (pause, *node.archives.values()):
        await import_archive(cfg.socket_path, archive)
    cfg.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    (cfg.cni_conf_dir / "10-skiff-cri-runtime-test.conflist").write_text(
        json.dumps(_conflist(node.tmp / "ipam"))
    )
    async with node.containerd.client() as cri:

        async def network_ready() -> bool:
            conditions = (await cri.status()).status.conditions
            return any(c.type == "NetworkReady" and c.status for c in conditions)

        await eventually(network_ready, "containerd loaded the CNI conflist")


async def _remove_all_sandboxes(socket: Path) -> None:
    async with CRIClient(socket, timeout=60) as cri:
        for sandbox in await cri.list_pod_sandbox():
            await cri.stop_pod_sandbox(sandbox.id)
            await cri.remove_pod_sandbox(sandbox.id)


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    _delete_bridge()  # a previous run that was killed may have left it
    tmp = Path(tempfile.mkdtemp(prefix="skiff-crirt-"))
    containerd = ManagedContainerd(ContainerdConfig.for_host(tmp / "data"))
    registry = LocalRegistry(tmp / "registry")
    n = Node(tmp, containerd, registry)
    try:
        registry.start()
        asyncio.run(_prepare(n))
        yield n
    finally:
        try:
            if containerd.running():
                asyncio.run(_remove_all_sandboxes(containerd.config.socket_path))
        finally:
            asyncio.run(containerd.stop())
            registry.stop()
            unmount_under(tmp)
            for netns in n.netns_paths:
                if netns.exists():
                    subprocess.run(["umount", "-l", str(netns)], capture_output=True)
                    netns.unlink(missing_ok=True)
            _delete_bridge()
            shutil.rmtree(tmp, ignore_errors=True)


def _sandbox(node: Node, name: str) -> SandboxConfig:
    uid = str(uuid.uuid4())
    return SandboxConfig(
        name=name,
        namespace="default",
        uid=uid,
        hostname=name,
        log_directory=str(node.logs / f"default_{name}_{uid}"),
        labels={"app": name},
    )


async def _run_sandbox(node: Node, runtime: CRIRuntime, config: SandboxConfig) -> str:
    """Run the sandbox and remember its netns so the fixture can remove it even after a failure."""
    sandbox_id = await runtime.run_sandbox(config)
    status = await runtime.client.pod_sandbox_status(sandbox_id, verbose=True)
    spec = json.loads(status.info["info"])["runtimeSpec"]
    node.netns_paths += [Path(ns["path"]) for ns in spec["linux"]["namespaces"] if ns["type"] == "network"]
    return sandbox_id


async def _exited(runtime: CRIRuntime, container_id: str) -> Any:
    async def probe() -> Any:
        status = await runtime.container_status(container_id)
        return status if status.state == ContainerState.EXITED else None

    return await eventually(probe, f"container {container_id} exited", timeout=60)


def _cap_bits(status_text: str) -> int:
    line = next(ln for ln in status_text.splitlines() if ln.startswith("CapEff:"))
    return int(line.split()[1], 16)


async def test_web_pod_lifecycle(node: Node) -> None:
    from skiff.agent.images.testimages import SHELL_IMAGE, WEB_IMAGE

    async with node.containerd.client() as cri:
        runtime = CRIRuntime(cri)
        sandbox = _sandbox(node, "web")
        sandbox_id = await _run_sandbox(node, runtime, sandbox)
        status = await runtime.sandbox_status(sandbox_id)
        assert status.state == SandboxState.READY
        assert status.ip.startswith(SUBNET_PREFIX)
        assert (status.name, status.namespace, status.uid) == ("web", "default", sandbox.uid)
        assert status.labels[LABEL_POD_UID] == sandbox.uid and status.labels["app"] == "web"
        assert [s.ip for s in await runtime.list_sandboxes() if s.id == sandbox_id] == [status.ip]

        web = ContainerConfig(
            name="web",
            image=WEB_IMAGE,
            env=[("PORT", "8080"), ("GREETING", "hello")],
            log_path="web/0.log",
            annotations={"io.kubernetes.container.restartCount": "0"},
            resources=Resources(cpu_shares=256, cpu_quota=50_000, memory_limit_bytes=64 * MiB),
            # Both spellings, as pod specs carry them; containerd itself would turn CAP_SYS_TIME into
            # CAP_CAP_SYS_TIME.
            security=SecurityContext(
                add_capabilities=["NET_ADMIN", "CAP_SYS_TIME"],
                drop_capabilities=["MKNOD"],
                seccomp_runtime_default=True,
            ),
        )
        web_id = await runtime.create_container(sandbox_id, web, sandbox)
        assert (await runtime.container_status(web_id)).state == ContainerState.CREATED
        await runtime.start_container(web_id)
        running = await runtime.container_status(web_id)
        assert running.state == ContainerState.RUNNING
        assert running.sandbox_id == sandbox_id
        assert (running.name, running.attempt, running.image) == ("web", 0, WEB_IMAGE)
        assert running.image_ref.startswith("sha256:")
        assert running.started_at_ns >= running.created_at_ns > 0 and running.finished_at_ns == 0
        assert running.labels[LABEL_CONTAINER_NAME] == "web" and running.labels[LABEL_POD_UID] == sandbox.uid
        assert running.annotations["io.kubernetes.container.restartCount"] == "0"

        async def serving() -> bool:
            got = await runtime.exec_sync(web_id, ["wget", "-qO-", "http://127.0.0.1:8080/health"], 10)
            return got.exit_code == 0 and got.stdout == b"ok"

        await eventually(serving, "httpd answers /health inside the pod")
        env = await runtime.exec_sync(web_id, ["sh", "-c", "echo $GREETING"], 10)
        assert (env.exit_code, env.stdout) == (0, b"hello\n")
        caps = _cap_bits((await runtime.exec_sync(web_id, ["cat", "/proc/self/status"], 10)).stdout.decode())
        cap_mknod, cap_net_admin, cap_sys_time = 27, 12, 25
        assert caps >> cap_net_admin & 1 and caps >> cap_sys_time & 1 and not caps >> cap_mknod & 1
        limit = await runtime.exec_sync(web_id, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"], 10)
        assert limit.stdout.strip() == str(64 * MiB).encode()

        failed = await runtime.exec_sync(web_id, ["sh", "-c", "echo oops >&2; exit 3"], 10)
        assert (failed.exit_code, failed.stderr) == (3, b"oops\n")
        with pytest.raises(RuntimeError_) as timeout:
            await runtime.exec_sync(web_id, ["sleep", "30"], 1)
        assert timeout.value.reason == "Timeout"

        for url in (
            await runtime.exec_url(web_id, ["sh"], stdin=True, stdout=True, stderr=True, tty=False),
            await runtime.attach_url(web_id, stdin=False, stdout=True, stderr=True, tty=False),
            await runtime.port_forward_url(sandbox_id, [8080]),
        ):
            assert url.startswith("http://127.0.0.1:") and not url.startswith("http://127.0.0.1:0/"), url
        [stats] = await runtime.container_stats([web_id, "no-such-container"])
        assert stats.container_id == web_id and stats.timestamp_ns > 0
        assert stats.memory_working_set_bytes > 0

        quitter = ContainerConfig(name="quitter", image=SHELL_IMAGE, command=["sh", "-c", "exit 3"])
        quitter_id = await runtime.create_container(sandbox_id, quitter, sandbox)
        await runtime.start_container(quitter_id)
        exited = await _exited(runtime, quitter_id)
        assert (exited.exit_code, exited.reason) == (3, "Error")
        assert exited.finished_at_ns >= exited.started_at_ns > 0

        # web.sh traps SIGTERM and exits 0: a graceful stop ends "Completed".
        await runtime.stop_container(web_id, 10)
        stopped = await runtime.container_status(web_id)
        assert (stopped.state, stopped.exit_code, stopped.reason) == (ContainerState.EXITED, 0, "Completed")
        listed = {c.name: c for c in await runtime.list_containers(sandbox_id)}
        assert {n: (c.state, c.exit_code, c.reason) for n, c in listed.items()} == {
            "web": (ContainerState.EXITED, 0, "Completed"),
            "quitter": (ContainerState.EXITED, 3, "Error"),
        }
        assert listed["web"].finished_at_ns == stopped.finished_at_ns

        await runtime.remove_container(quitter_id)
        await runtime.remove_container(quitter_id)  # idempotent
        with pytest.raises(RuntimeError_) as gone:
            await runtime.container_status(quitter_id)
        assert gone.value.not_found
        await runtime.stop_sandbox(sandbox_id)
        assert (await runtime.sandbox_status(sandbox_id)).state == SandboxState.NOTREADY
        await runtime.remove_sandbox(sandbox_id)
        await runtime.stop_sandbox(sandbox_id)  # idempotent, also once removed
        await runtime.remove_sandbox(sandbox_id)
        with pytest.raises(RuntimeError_) as gone:
            await runtime.sandbox_status(sandbox_id)
        assert gone.value.not_found
        assert await runtime.list_containers(sandbox_id) == []


async def test_memory_hog_is_oom_killed(node: Node) -> None:
    from skiff.agent.images.testimages import SHELL_IMAGE

    async with node.containerd.client() as cri:
        runtime = CRIRuntime(cri)
        sandbox = _sandbox(node, "hog")
        sandbox_id = await _run_sandbox(node, runtime, sandbox)
        hog = ContainerConfig(
            name="hog",
            image=SHELL_IMAGE,
            command=[
                "sh",
                "-c",
                "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
                'x=$(head -c 67108864 /dev/zero | tr "\\0" a); sleep 1',
            ],
            log_path="hog/0.log",
            resources=Resources(memory_limit_bytes=16 * MiB),
        )
        hog_id = await runtime.create_container(sandbox_id, hog, sandbox)
        await runtime.start_container(hog_id)
        exited = await _exited(runtime, hog_id)
        assert exited.reason == "OOMKilled", exited
        # The limit really was the cgroup's (v1 here: memory.limit_in_bytes), as the container saw it.
        log = Path(sandbox.log_directory, "hog", "0.log").read_text()
        assert f" stdout F {16 * MiB}\n" in log
        await runtime.stop_sandbox(sandbox_id)
        await runtime.remove_sandbox(sandbox_id)


def _pull_secret(host: str, user: str, password: str) -> dict[str, Any]:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = {"auths": {host: {"auth": auth}}}
    return {
        "metadata": {"name": "regcred", "namespace": "default"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
    }


async def test_pull_from_registry_with_credentials(node: Node) -> None:
    from skiff.agent.images.testimages import NONROOT_IMAGE

    registry = node.registry
    ref = await asyncio.to_thread(registry.push, node.archives[NONROOT_IMAGE], "team/nonroot", "1")
    write_registry_host(node.containerd.config, registry.host, registry.url)
    async with node.containerd.client() as cri:
        runtime = CRIRuntime(cri, pull_timeout=120)
        assert await runtime.image_status(ref) is None

        with pytest.raises(ImagePullError) as anonymous:
            await runtime.pull_image(ref, None, None)
        assert anonymous.value.reason == "ErrImagePull"
        assert "401 Unauthorized" in anonymous.value.message, anonymous.value.message

        wrong = await image_credentials([_pull_secret(registry.host, registry.user, "wrong")], ref)
        assert wrong is not None and wrong.password == "wrong"
        with pytest.raises(ImagePullError) as denied:
            await runtime.pull_image(ref, wrong, _sandbox(node, "puller"))
        assert denied.value.message.startswith("rpc error: code = ")
        assert "401 Unauthorized" in denied.value.message, denied.value.message
        assert await runtime.image_status(ref) is None

        secrets = [
            _pull_secret("other.example:5000", "x", "y"),
            _pull_secret(registry.host, registry.user, registry.password),
        ]
        right = await image_credentials(secrets, ref)
        assert right is not None and (right.username, right.password) == (registry.user, registry.password)
        image_id = await runtime.pull_image(ref, right, _sandbox(node, "puller"))
        assert image_id.startswith("sha256:")
        info = await runtime.image_status(ref)
        assert info is not None
        assert info.id == image_id and ref in info.repo_tags
        assert any(d.startswith(f"{registry.host}/team/nonroot@sha256:") for d in info.repo_digests)
        assert (info.uid, info.username) == (1000, "") and info.size > 0
