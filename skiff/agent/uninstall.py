"""`skiff uninstall`: remove everything a node agent put on this host (k3s-killall + k3s-uninstall).

Stopping the agent leaves its containers running on purpose (a restart adopts them). This removes them:
every pod sandbox in skiff's containerd (stopped and removed, which tears down their network namespaces
through CNI), then the containerd process itself (by the PID it recorded), whatever is still mounted
under the data dir, the `skiff0` bridge and the local route of the cluster CIDR. With `purge`, the data
dir goes too. Idempotent: every step tolerates what is already gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from pathlib import Path

from skiff.agent import cni
from skiff.agent.containerd import ContainerdConfig, ManagedContainerd, unmount_under
from skiff.agent.containers import CGROUP_ROOT
from skiff.agent.cri.client import CRIClient, CRIError

log = logging.getLogger("skiff.agent.uninstall")


async def remove_pods(socket: Path) -> int:
    """Stop and remove every sandbox (and so every container) of the containerd at `socket`; returns how many."""
    count = 0
    async with CRIClient(socket, timeout=60) as cri:
        for sandbox in await cri.list_pod_sandbox():
            with contextlib.suppress(CRIError):
                await cri.stop_pod_sandbox(sandbox.id)
            with contextlib.suppress(CRIError):
                await cri.remove_pod_sandbox(sandbox.id)
                count += 1
    return count


def _kill_stray_shims(socket: Path) -> list[int]:
    """SIGKILL containerd shims still serving our socket (containerd could not be reached to stop them);
    their containers die with them. Only processes naming our socket are touched."""
    killed = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and os.fsencode(str(socket)) in argv:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
    return killed


def cgroup_dirs(mountinfo: str, root: str = CGROUP_ROOT) -> list[Path]:
    """`root` under every cgroup mount (v1 controllers and v2), from /proc/self/mountinfo text."""
    out = []
    for line in mountinfo.splitlines():
        pre, _, post = line.partition(" - ")
        fields = pre.split()
        if len(fields) >= 5 and post.split()[:1] in (["cgroup"], ["cgroup2"]):
            out.append(Path(fields[4]) / root.lstrip("/"))
    return out


def _remove_cgroups(mountinfo: str) -> None:
    """rmdir skiff's cgroup trees bottom-up (a cgroup is removed with rmdir once it holds no process)."""
    for top in cgroup_dirs(mountinfo):
        if not top.is_dir():
            continue
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


async def uninstall(agent_data_dir: Path, cluster_cidr: str = "10.42.0.0/16", *, purge: bool = False) -> None:
    """Remove the node's pods, its containerd, mounts, bridge and route (and with `purge` its data dir)."""
    config = ContainerdConfig.for_host(agent_data_dir)
    containerd = ManagedContainerd(config)
    if config.config_path.exists():
        # The agent stops containerd when it stops, but the containers live on in their shims: start (or
        # adopt) it again so CRI can stop them and CNI can release their network namespaces.
        try:
            await containerd.start()
            removed = await remove_pods(config.socket_path)
            log.info("removed %d pod sandboxes", removed)
        except Exception as e:  # a broken containerd must not stop the rest of the cleanup
            log.warning("could not remove pods through containerd: %s", e)
    await containerd.stop()
    await asyncio.to_thread(_kill_stray_shims, config.socket_path)
    await asyncio.to_thread(unmount_under, agent_data_dir)
    await asyncio.to_thread(_remove_cgroups, Path("/proc/self/mountinfo").read_text())
    await cni.remove_network(cluster_cidr)
    if purge:
        await asyncio.to_thread(shutil.rmtree, agent_data_dir, True)
