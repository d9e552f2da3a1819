"""The CRI v1 client against skiff's own containerd: a real pod sandbox with a bridge network and busybox.

Needs root, containerd, runc, ctr, the CNI plugins and `ip`; skipped otherwise. The module starts one
ManagedContainerd in a temp data dir (long enough that its socket falls back to /run/skiff-<hash>), and
leaves nothing behind: sandboxes are stopped and removed, containerd is stopped by PID, leftover mounts
are unmounted, the test bridge `skiff-test0` and the sandbox's netns are deleted, the temp dir removed.
The pod network is a host-local /24 on that bridge only: no masquerading, no default route off the box.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skiff.agent.containerd import ContainerdConfig, ManagedContainerd, unmount_under
from skiff.agent.cri.client import CRIClient, CRIError, api
from skiff.testing import eventually

BRIDGE = "skiff-test0"
SUBNET_PREFIX = "10.244.250."
SUBNET = SUBNET_PREFIX + "0/24"
MiB = 1024 * 1024


def _missing() -> list[str]:
    missing = [
        b for b in ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "ip") if shutil.which(b) is None
    ]
    missing += [p for p in ("/usr/lib/cni/bridge", "/usr/lib/cni/host-local") if not Path(p).exists()]
    return missing


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="containerd and CNI need root"),
    pytest.mark.skipif(bool(_missing()), reason=f"not installed: {', '.join(_missing())} (scripts/setup.sh)"),
]


def _delete_bridge() -> None:
    if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0:
        subprocess.run(["ip", "link", "delete", BRIDGE], check=True, capture_output=True)


def _conflist(ipam_dir: Path) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "skiff-cri-test",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": SUBNET}]], "dataDir": str(ipam_dir)},
            }
        ],
    }


async def _remove_all_sandboxes(socket: Path) -> None:
    async with CRIClient(socket, timeout=60) as cri:
        for sandbox in await cri.list_pod_sandbox():
            await cri.stop_pod_sandbox(sandbox.id)
            await cri.remove_pod_sandbox(sandbox.id)


class Runtime:
    def __init__(self, tmp: Path, containerd: ManagedContainerd) -> None:
        self.tmp = tmp
        self.containerd = containerd
        self.netns_paths: list[Path] = []


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    _delete_bridge()  # a previous run that was killed may have left it
    tmp = Path(tempfile.mkdtemp(prefix="skiff-cri-"))
    data = tmp / "data-dir-with-a-long-name-so-the-containerd-socket-path-exceeds-the-unix-limit"
    cfg = ContainerdConfig.for_host(data)
    containerd = ManagedContainerd(cfg)
    rt = Runtime(tmp, containerd)
    try:
        asyncio.run(containerd.start())
        yield rt
    finally:
        try:
            if containerd.running():
                asyncio.run(_remove_all_sandboxes(cfg.socket_path))
        finally:
            asyncio.run(containerd.stop())
            unmount_under(tmp)
            for netns in rt.netns_paths:
                if netns.exists():
                    subprocess.run(["umount", "-l", str(netns)], capture_output=True)
                    netns.unlink(missing_ok=True)
            _delete_bridge()
            shutil.rmtree(tmp, ignore_errors=True)


async def test_runtime_answers(runtime: Runtime) -> None:
    cfg = runtime.containerd.config
    assert cfg.socket_path.parent.name.startswith("skiff-")  # the /run fallback for a too-long data dir
    async with runtime.containerd.client() as cri:
        version = await cri.version()
        assert (version.runtime_name, version.runtime_api_version) == ("containerd", "v1")
        assert await cri.list_pod_sandbox() == []
        fs = await cri.image_fs_info()
        assert Path(fs.image_filesystems[0].fs_id.mountpoint).is_relative_to(cfg.root)
        status = await cri.status()
        assert {c.type: c.status for c in status.status.conditions}["RuntimeReady"] is True
        assert await cri.image_status("skiff.local/absent:1") is None
        with pytest.raises(CRIError) as err:
            await cri.container_status("no-such-container")
        assert err.value.not_found


async def test_restarted_agent_adopts_running_containerd(runtime: Runtime) -> None:
    first = runtime.containerd
    second = ManagedContainerd(first.config)
    await second.start()
    assert second.adopted
    assert second.pid == first.pid


async def _import_images(runtime: Runtime) -> None:
    images = pytest.importorskip("skiff.agent.images", reason="skiff.agent.images (pause image) not present")
    from skiff.agent.images.builtin import ensure_pause_archive, find_busybox
    from skiff.agent.images.oci import write_archive
    from skiff.agent.images.testimages import SHELL_IMAGE, shell_image

    cfg = runtime.containerd.config
    pause = await asyncio.to_thread(ensure_pause_archive, cfg.data_dir)
    shell = await asyncio.to_thread(write_archive, runtime.tmp / "shell.tar", shell_image(find_busybox()))
    for archive in (pause, shell):
        await images.import_archive(cfg.socket_path, archive)
    async with runtime.containerd.client() as cri:
        for ref in (cfg.sandbox_image, SHELL_IMAGE):
            image = await cri.image_status(ref)
            assert image is not None and ref in image.repo_tags


async def test_pod_sandbox_with_busybox_container(runtime: Runtime) -> None:
    from_images = pytest.importorskip("skiff.agent.images.testimages")
    cfg = runtime.containerd.config
    await _import_images(runtime)
    conflist = cfg.cni_conf_dir / "10-skiff-cri-test.conflist"
    conflist.write_text(json.dumps(_conflist(runtime.tmp / "ipam")))
    logs = runtime.tmp / "pod-logs"

    async with runtime.containerd.client() as cri:

        async def network_ready() -> bool:
            conditions = (await cri.status()).status.conditions
            return any(c.type == "NetworkReady" and c.status for c in conditions)

        await eventually(network_ready, "containerd loaded the CNI conflist")

        sandbox_config = api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name="cri-e2e", uid=str(uuid.uuid4()), namespace="default"),
            hostname="cri-e2e",
            log_directory=str(logs),
            labels={"io.skiff.test": "cri"},
            linux=api.LinuxPodSandboxConfig(
                security_context=api.LinuxSandboxSecurityContext(
                    namespace_options=api.NamespaceOption(network=api.POD, pid=api.CONTAINER, ipc=api.POD)
                )
            ),
        )
        sandbox_id = await cri.run_pod_sandbox(sandbox_config)
        status = await cri.pod_sandbox_status(sandbox_id, verbose=True)
        assert status.status.state == api.SANDBOX_READY
        assert status.status.network.ip.startswith(SUBNET_PREFIX)
        spec = json.loads(status.info["info"])["runtimeSpec"]
        netns = next(Path(ns["path"]) for ns in spec["linux"]["namespaces"] if ns["type"] == "network")
        runtime.netns_paths.append(netns)
        assert [
            s.id
            for s in await cri.list_pod_sandbox(api.PodSandboxFilter(label_selector={"io.skiff.test": "cri"}))
        ] == [sandbox_id]

        def container(name: str, *command: str) -> api.ContainerConfig:
            return api.ContainerConfig(
                metadata=api.ContainerMetadata(name=name),
                image=api.ImageSpec(image=from_images.SHELL_IMAGE),
                command=list(command),
                log_path=f"{name}/0.log",
                linux=api.LinuxContainerConfig(
                    resources=api.LinuxContainerResources(
                        memory_limit_in_bytes=64 * MiB, cpu_shares=256, cpu_period=100_000, cpu_quota=50_000
                    )
                ),
            )

        sleeper = await cri.create_container(
            sandbox_id, container("sleeper", "sh", "-c", "echo started; exec sleep 3600"), sandbox_config
        )
        await cri.start_container(sleeper)
        running = (await cri.container_status(sleeper)).status
        assert running.state == api.CONTAINER_RUNNING
        assert running.started_at > 0 and running.finished_at == 0

        async def logged() -> bool:
            log = logs / "sleeper" / "0.log"
            return log.exists() and " stdout F started" in log.read_text()

        await eventually(logged, "the container's first line in its CRI log file")

        hi = await cri.exec_sync(sleeper, ["echo", "hi"], timeout_seconds=10)
        assert (hi.stdout, hi.stderr, hi.exit_code) == (b"hi\n", b"", 0)
        failed = await cri.exec_sync(sleeper, ["sh", "-c", "echo oops >&2; exit 3"], timeout_seconds=10)
        assert (failed.stderr, failed.exit_code) == (b"oops\n", 3)
        for url in (
            await cri.exec(sleeper, ["sh"], stdin=True),
            await cri.attach(sleeper),
            await cri.port_forward(sandbox_id, [8080]),
        ):
            assert url.startswith("http://127.0.0.1:") and not url.startswith("http://127.0.0.1:0/"), url

        await cri.update_container_resources(
            sleeper, api.LinuxContainerResources(memory_limit_in_bytes=96 * MiB)
        )
        stats = await cri.container_stats(sleeper)
        assert stats.attributes.id == sleeper
        assert [c.id for c in await cri.list_containers(api.ContainerFilter(pod_sandbox_id=sandbox_id))] == [
            sleeper
        ]

        quitter = await cri.create_container(
            sandbox_id, container("quitter", "sh", "-c", "exit 3"), sandbox_config
        )
        await cri.start_container(quitter)

        async def quitter_exited() -> api.ContainerStatus | None:
            st = (await cri.container_status(quitter)).status
            return st if st.state == api.CONTAINER_EXITED else None

        exited = await eventually(quitter_exited, "the quitter container exited")
        assert (exited.exit_code, exited.reason) == (3, "Error")
        # containerd stamps started_at after the start call returns: for a process that exits at once the exit
        # can be stamped first (seen: 0.2 ms earlier), so allow a few milliseconds either way.
        assert exited.started_at > 0 and exited.finished_at >= exited.started_at - 10_000_000

        await cri.stop_container(sleeper, grace_seconds=0)
        stopped = (await cri.container_status(sleeper)).status
        assert stopped.state == api.CONTAINER_EXITED
        assert stopped.exit_code == 137  # `sleep` as PID 1 ignores SIGTERM; grace 0 means SIGKILL
        await cri.stop_container(sleeper, grace_seconds=0)  # idempotent
        await cri.remove_container(quitter)
        with pytest.raises(CRIError) as err:
            await cri.container_status(quitter)
        assert err.value.not_found

        await cri.stop_pod_sandbox(sandbox_id)
        assert (await cri.pod_sandbox_status(sandbox_id)).status.state == api.SANDBOX_NOTREADY
        await cri.remove_pod_sandbox(sandbox_id)
        await cri.remove_pod_sandbox(sandbox_id)  # idempotent
        assert await cri.list_pod_sandbox() == []
        assert await cri.list_containers() == []
        assert not netns.exists()
