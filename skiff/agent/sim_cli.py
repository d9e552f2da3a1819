"""`skiff sim-nodes`: simulated nodes joining a cluster over HTTPS (the same code `--sim-nodes` runs in-process)."""

from __future__ import annotations

import asyncio
import logging

from skiff.agent.simulated import SimulatedNodes
from skiff.client.https import HTTPSClient

log = logging.getLogger("skiff.agent.simulated")


async def run_sim_nodes(kubeconfig: str, count: int, prefix: str = "sim-node-") -> None:
    """Register `count` simulated nodes with the cluster of `kubeconfig` and serve them until cancelled."""
    client = HTTPSClient.from_kubeconfig(kubeconfig)
    sim = SimulatedNodes(client, count, prefix=prefix)

    async def announce() -> None:
        await sim.ready.wait()
        log.info("%d simulated nodes registered and serving their pods", count)

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sim.run())
            tg.create_task(announce())
    finally:
        await client.close()
