"""Fixtures for the client machinery: a real ControlPlane over a temporary SQLite store (in-process),
and the real HTTPS API server (`serve`) in the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skiff.apiserver.certs import bootstrap
from skiff.apiserver.local import LocalBackend
from skiff.apiserver.server import ControlPlane, ServerConfig, serve
from skiff.client.https import HTTPSClient
from skiff.client.inprocess import InProcessClient
from skiff.storage.sqlite import SQLiteStore
from skiff.testing import free_port


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    creds = bootstrap(tmp_path, "127.0.0.1", free_port())
    store = SQLiteStore(str(tmp_path / "state.db"))
    await store.start()
    cp = ControlPlane(store, creds)
    await cp.seed()
    try:
        yield cp
    finally:
        await store.close()


@pytest.fixture
async def local(plane: ControlPlane) -> AsyncIterator[InProcessClient]:
    client = InProcessClient(LocalBackend(plane))
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def https_server(tmp_path: Path) -> AsyncIterator[tuple[Path, ControlPlane]]:
    """A real HTTPS API server run by `serve()` in this test's event loop (the API server alone, independent of
    the components `skiff server` adds); yields the kubeconfig it wrote and its control plane."""
    ready: asyncio.Future[ControlPlane] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    config = ServerConfig(data_dir=tmp_path / "https", port=free_port(), bind="127.0.0.1")
    task = asyncio.create_task(serve(config, on_ready=ready.set_result, stop=stop))
    pending: set[asyncio.Future[Any]] = {ready, task}
    done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises why the server did not start
    try:
        yield config.data_dir / "kubeconfig.yaml", ready.result()
    finally:
        stop.set()
        await task


@pytest.fixture
def https_kubeconfig(https_server: tuple[Path, ControlPlane]) -> Path:
    return https_server[0]


@pytest.fixture
async def remote(https_kubeconfig: Path) -> AsyncIterator[HTTPSClient]:
    """An HTTPSClient from the kubeconfig skiff wrote."""
    client = HTTPSClient.from_kubeconfig(https_kubeconfig)
    try:
        yield client
    finally:
        await client.close()
