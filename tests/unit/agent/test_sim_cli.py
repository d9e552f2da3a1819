"""`run_sim_nodes` over HTTPS against a real API server (`serve`, in this process, temp data dir, free port)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skiff.agent.sim_cli import run_sim_nodes
from skiff.api.errors import ApiError
from skiff.apiserver.server import ServerConfig, serve
from skiff.client.https import HTTPSClient
from skiff.client.interface import LEASES, NODES, PODS, ListOptions
from skiff.testing import free_port

HANG_GUARD = 60.0


@pytest.fixture
async def kubeconfig(tmp_path: Path) -> AsyncIterator[str]:
    """The admin kubeconfig of an API server (no controllers: only the simulated kubelet acts on pods)."""
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        serve(ServerConfig(tmp_path / "data", free_port()), on_ready=lambda _plane: ready.set(), stop=stop)
    )
    try:
        await asyncio.wait(
            {task, asyncio.create_task(ready.wait())}, timeout=HANG_GUARD, return_when=asyncio.FIRST_COMPLETED
        )
        if task.done():
            task.result()  # the server failed: raise its error
        yield str(tmp_path / "data" / "kubeconfig.yaml")
    finally:
        stop.set()
        await task


@pytest.fixture
async def https(kubeconfig: str) -> AsyncIterator[HTTPSClient]:
    client = HTTPSClient.from_kubeconfig(kubeconfig)
    try:
        yield client
    finally:
        await client.close()


async def watch_until(client: HTTPSClient, res: Any, namespace: str, name: str, done: Any) -> dict[str, Any]:
    """The first version of the object for which `done(obj)` holds (watch from a list; no polling)."""

    async def run() -> dict[str, Any]:
        while True:
            lst = await client.list(res, namespace, ListOptions(field_selector=f"metadata.name={name}"))
            for obj in lst["items"]:
                if done(obj):
                    return dict(obj)
            opts = ListOptions(
                field_selector=f"metadata.name={name}", resource_version=lst["metadata"]["resourceVersion"]
            )
            async for ev in client.watch(res, namespace, opts):
                if ev.type in ("ADDED", "MODIFIED") and done(ev.object):
                    return ev.object

    return await asyncio.wait_for(run(), HANG_GUARD)  # a hang guard, not a timing assertion


def ready(obj: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


async def test_sim_nodes_over_https_register_and_run_pods(kubeconfig: str, https: HTTPSClient) -> None:
    task = asyncio.create_task(run_sim_nodes(kubeconfig, 2))
    try:
        node = await watch_until(https, NODES, "", "sim-node-1", ready)
        assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.0-skiff-sim"
        lease = await watch_until(https, LEASES, "kube-node-lease", "sim-node-1", lambda o: True)
        assert lease["spec"]["holderIdentity"] == "sim-node-1"
        pod = {
            "metadata": {"name": "over-https", "namespace": "default"},
            "spec": {"nodeName": "sim-node-1", "containers": [{"name": "app", "image": "nginx"}]},
        }
        await https.create(PODS, "default", pod)
        running = await watch_until(https, PODS, "default", "over-https", ready)
        assert running["status"]["phase"] == "Running"
        assert running["status"]["hostIP"] == "198.18.0.2"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ApiError):
            await task
