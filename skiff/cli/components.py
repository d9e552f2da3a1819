"""Assemble `skiff server`: the API server plus the in-process components that act on the cluster.

The components (controllers, scheduler, simulated nodes) only know the client contract; here, at the
top layer, they get the in-process client over the server's registries.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from skiff.apiserver.local import LocalBackend
from skiff.apiserver.server import ControlPlane, ServerConfig, serve
from skiff.client.events import EventBroadcaster
from skiff.client.factory import InformerFactory
from skiff.client.inprocess import InProcessClient
from skiff.client.leaderelection import LeaderElector

log = logging.getLogger("skiff.components")


def start_components(plane: ControlPlane, sim_nodes: int = 0) -> None:
    from skiff.controllers.manager import controllers_for
    from skiff.scheduler.scheduler import Scheduler

    client = InProcessClient(LocalBackend(plane))
    informers = InformerFactory(client)
    identity = f"{socket.gethostname()}_{uuid.uuid4()}"

    async def controller_manager() -> None:
        events = EventBroadcaster(client)
        controllers = controllers_for(client, informers, events)
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
    log.info("controllers and scheduler started%s", f", {sim_nodes} simulated nodes" if sim_nodes else "")


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


async def run_server(data_dir: Path, port: int, bind: str, *, sim_nodes: int = 0) -> None:
    await serve(ServerConfig(data_dir=data_dir, port=port, bind=bind),
                on_ready=lambda plane: start_components(plane, sim_nodes))
