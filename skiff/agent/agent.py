"""`skiff agent` (and the agent embedded in `skiff server`): one node's kubelet, assembled.

Startup: containerd (skiff's own child, or the CRI socket given) → the pause image imported → the Node
registered → its pod CIDR (allocated by the server) written as the CNI config → volumes, kubelet, stream
server and heartbeats run together. Shutdown stops the agent's own tasks and its containerd process, but
never the containers: containerd's shims keep them running, and the next start adopts them (as k3s does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from skiff.agent import cni
from skiff.agent.containerd import ContainerdConfig, ManagedContainerd
from skiff.agent.containers import DNSSettings
from skiff.agent.cri.client import CRIClient
from skiff.agent.images import import_archive
from skiff.agent.images.builtin import ensure_pause_archive
from skiff.agent.kubelet import Kubelet
from skiff.agent.metrics import snapshot_collector
from skiff.agent.node import HostFacts, NodeAgent, NodeOptions, read_host_facts
from skiff.agent.runtime.cri import CRIRuntime
from skiff.agent.server import AgentServer
from skiff.agent.stats import NodeStatsReader
from skiff.agent.volumes import VolumeManager
from skiff.client.events import EventBroadcaster
from skiff.client.interface import Client

log = logging.getLogger("skiff.agent")

DEFAULT_KUBELET_PORT = 10250


@dataclass
class AgentConfig:
    data_dir: Path
    node_name: str = ""  # default: the hostname
    node_ip: str = ""  # default: the address of the default route's interface
    server_node: bool = False
    container_runtime_endpoint: str = ""  # a running CRI socket; "" = start skiff's own containerd
    cluster_cidr: str = "10.42.0.0/16"
    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    kubelet_port: int = DEFAULT_KUBELET_PORT
    preload_images: list[Path] = field(default_factory=list)  # archives imported at startup (demo, tests)


# The agent's TLS: (serving context for its stream server, given the node name and IP).
TLSFactory = Callable[[str, str], Awaitable[ssl.SSLContext]]


async def run_agent(client: Client, cfg: AgentConfig, tls: TLSFactory) -> None:
    """Run one node until cancelled."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    facts0 = await asyncio.to_thread(read_host_facts, cfg.data_dir, cfg.node_name, cfg.node_ip)
    name = cfg.node_name or facts0.hostname
    containerd: ManagedContainerd | None = None
    if cfg.container_runtime_endpoint:
        socket = Path(cfg.container_runtime_endpoint.removeprefix("unix://"))
        containerd_cfg = None
    else:
        containerd_cfg = ContainerdConfig.for_host(cfg.data_dir)
        containerd = ManagedContainerd(containerd_cfg)
        await containerd.start()
        socket = containerd.socket_path
    cri = CRIClient(socket)
    try:
        pause = await asyncio.to_thread(ensure_pause_archive, cfg.data_dir)
        await import_archive(socket, pause)
        for archive in cfg.preload_images:
            await import_archive(socket, archive)
        version = await cri.version()
        runtime = CRIRuntime(cri)

        async def facts() -> HostFacts:
            return await asyncio.to_thread(read_host_facts, cfg.data_dir, name, facts0.internal_ip)

        async def runtime_ready() -> bool:
            try:
                await cri.version(timeout=5)
                return True
            except Exception:  # any failure to answer is "runtime down" for the Ready condition
                return False

        node = NodeAgent(client, NodeOptions(name=name, server_node=cfg.server_node,
                                             runtime_version=f"containerd://{version.runtime_version}",
                                             kubelet_port=cfg.kubelet_port), facts, runtime_ready)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(node.run(), name="node-heartbeat")
            await node.registered.wait()
            pod_cidr = await _wait_for_pod_cidr(node)
            conf_dir = containerd_cfg.cni_conf_dir if containerd_cfg else Path("/etc/cni/net.d")
            await asyncio.to_thread(cni.write_conflist, conf_dir, pod_cidr, cfg.data_dir / "cni" / "ipam")
            await cni.route_cluster_cidr_locally(cfg.cluster_cidr)
            events = EventBroadcaster(client)
            tg.create_task(events.run(), name="agent-events")
            volumes = VolumeManager(cfg.data_dir / "pods", client, name)
            kubelet = Kubelet(client, runtime, node_name=name, data_dir=cfg.data_dir, volumes=volumes,
                              events=events, host_ip=facts0.internal_ip, memory_capacity=facts0.memory_bytes,
                              dns=DNSSettings(cluster_dns=list(cfg.cluster_dns), cluster_domain=cfg.cluster_domain))
            server = AgentServer(runtime, kubelet.log_root, name, await tls(name, facts0.internal_ip),
                                 pod_lookup=kubelet.informer.get,
                                 metrics=snapshot_collector(NodeStatsReader(), runtime))
            await server.start(facts0.internal_ip, cfg.kubelet_port)
            try:
                tg.create_task(kubelet.run(), name="kubelet")
                log.info("node %s ready: pod CIDR %s, containerd %s", name, pod_cidr, version.runtime_version)
                await asyncio.Event().wait()
            finally:
                await server.stop()
    finally:
        await cri.close()
        if containerd is not None:
            with contextlib.suppress(Exception):
                await containerd.stop()


async def _wait_for_pod_cidr(node: NodeAgent) -> str:
    """The server's node IPAM sets spec.podCIDR shortly after registration."""
    while not node.pod_cidr:
        await asyncio.sleep(0.5)
        with contextlib.suppress(Exception):
            await node.refresh()
    return node.pod_cidr
