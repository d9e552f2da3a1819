"""Assemble `skiff server`: the API server plus the in-process components that act on the cluster.

The components (controllers, scheduler, simulated nodes) only know the client contract; here, at the
top layer, they get the in-process client over the server's registries.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from skiff.apiserver.local import LocalBackend
from skiff.apiserver.server import ControlPlane, ServerConfig, serve
from skiff.client.events import EventBroadcaster
from skiff.client.factory import InformerFactory
from skiff.client.inprocess import InProcessClient
from skiff.client.leaderelection import LeaderElector
from skiff.controllers.nodeipam import DEFAULT_CLUSTER_CIDR

if TYPE_CHECKING:  # the agent (grpc, containerd) is imported only when it runs
    from skiff.agent.agent import AgentConfig

log = logging.getLogger("skiff.components")


def configure(plane: ControlPlane) -> None:
    """Endpoints beyond the Kubernetes API on the same port: Marathon's REST API under /v2/."""
    from skiff.apiserver.http import USER_KEY
    from skiff.cli import marathon_api

    async def authenticated(request: web.Request) -> bool:
        return request.get(USER_KEY) is not None  # the API server's authentication already ran

    client = InProcessClient(LocalBackend(plane))
    plane.api.extra_routes.extend(marathon_api.routes(client, authenticate=authenticated))


def start_components(plane: ControlPlane, sim_nodes: int = 0, cluster_cidr: str = DEFAULT_CLUSTER_CIDR,
                     agent: AgentConfig | None = None) -> None:
    from skiff.controllers.manager import controllers_for
    from skiff.scheduler.scheduler import Scheduler

    client = InProcessClient(LocalBackend(plane))
    informers = InformerFactory(client)
    identity = f"{socket.gethostname()}_{uuid.uuid4()}"

    async def controller_manager() -> None:
        events = EventBroadcaster(client)
        controllers = controllers_for(client, informers, events, cluster_cidr)
        for controller in controllers:
            controller.setup()
        await asyncio.gather(events.run(), *(c.run() for c in controllers))

    async def scheduler() -> None:
        events = EventBroadcaster(client)
        await asyncio.gather(events.run(), Scheduler(client, informers, events=events).run())

    # Leases in kube-system, as kube-controller-manager and kube-scheduler hold them: two servers on one
    # store never run the same controllers at once.
    plane.start_task(_lead(client, "kube-controller-manager", identity, controller_manager))
    plane.start_task(_lead(client, "kube-scheduler", identity, scheduler))
    plane.start_task(_stop_on_shutdown(informers))
    if sim_nodes:
        from skiff.agent.simulated import SimulatedNodes

        plane.start_task(SimulatedNodes(client, sim_nodes).run())
    if agent is not None:
        plane.start_task(_embedded_agent(plane, agent))
    log.info("controllers and scheduler started%s%s", f", {sim_nodes} simulated nodes" if sim_nodes else "",
             ", node agent" if agent is not None else "")


async def _embedded_agent(plane: ControlPlane, cfg: AgentConfig) -> None:
    """The server's own node: in-process client, serving certificate straight from the cluster CA."""
    from skiff.agent.agent import run_agent
    from skiff.agent.join import serving_context
    from skiff.apiserver.certs import issue_node_serving_cert

    creds = plane.creds

    async def tls(node_name: str, node_ip: str) -> ssl.SSLContext:
        cert, key = await asyncio.to_thread(issue_node_serving_cert, creds, node_name, [node_ip, "127.0.0.1"])
        return serving_context(cfg.data_dir, cert, key, creds.ca_cert.read_bytes())

    try:
        await run_agent(InProcessClient(LocalBackend(plane)), cfg, tls)
    except Exception:
        log.exception("the node agent stopped; the control plane keeps running")
        raise


async def _lead(client: InProcessClient, name: str, identity: str, work: Callable[[], Awaitable[None]]) -> None:
    """Campaign for the lease; run `work` while leading; campaign again when leadership is lost."""
    while True:
        await LeaderElector(client, "kube-system", name, identity).run(work)


async def _stop_on_shutdown(informers: InformerFactory) -> None:
    """Owns the shared informers' lifetime: they stop with the other components, before the store closes."""
    try:
        await asyncio.Event().wait()
    finally:
        await informers.stop()


async def run_server(data_dir: Path, port: int, bind: str, *, sim_nodes: int = 0,
                     cluster_cidr: str = DEFAULT_CLUSTER_CIDR, agent: AgentConfig | None = None) -> None:
    await serve(ServerConfig(data_dir=data_dir, port=port, bind=bind), configure=configure,
                on_ready=lambda plane: start_components(plane, sim_nodes, cluster_cidr, agent))
