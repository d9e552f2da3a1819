"""Lifecycle hooks: exec through the runtime, httpGet against a local server, sleep, and upstream's messages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from skiff.agent.hooks import run_handler
from skiff.agent.runtime.fake import FakeRuntime
from skiff.agent.runtime.interface import ContainerConfig, ExecResult, SandboxConfig
from skiff.api.meta import Obj
from skiff.testing import free_port

POD: Obj = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {"containers": [{"name": "app", "image": "x"}]}}
CONTAINER: Obj = {"name": "app", "image": "x", "ports": [{"name": "admin", "containerPort": 1}]}
WHO = 'for Container "app" in Pod "web_default(u1)"'


@pytest.fixture
async def runtime() -> tuple[FakeRuntime, str]:
    rt = FakeRuntime()
    sandbox = SandboxConfig(name="web", namespace="default", uid="u1", log_directory="/tmp/none")
    sid = await rt.run_sandbox(sandbox)
    cid = await rt.create_container(sid, ContainerConfig(name="app", image="x"), sandbox)
    await rt.start_container(cid)
    return rt, cid


@pytest.mark.parametrize("result, want", [
    pytest.param(ExecResult(0, b"done", b""), None, id="success"),
    pytest.param(ExecResult(2, b"partial\n", b"no such file\n"),
                 f"Exec lifecycle hook ([sh -c /hooks/stop.sh]) {WHO} failed - error: command 'sh -c /hooks/stop.sh' "
                 'exited with 2: no such file\n, message: "partial\nno such file\n"', id="non-zero-exit"),
])
async def test_exec_hook(runtime: tuple[FakeRuntime, str], result: ExecResult, want: str | None) -> None:
    rt, cid = runtime
    rt.exec_results[("sh", "-c", "/hooks/stop.sh")] = result
    handler = {"exec": {"command": ["sh", "-c", "/hooks/stop.sh"]}}
    assert await run_handler(rt, POD, CONTAINER, cid, handler, "10.88.0.2", 30) == want
    assert ("exec_sync", "app", "sh", "-c", "/hooks/stop.sh") in rt.calls


async def test_exec_hook_in_a_stopped_container_fails(runtime: tuple[FakeRuntime, str]) -> None:
    rt, cid = runtime
    await rt.stop_container(cid, 0)
    msg = await run_handler(rt, POD, CONTAINER, cid, {"exec": {"command": ["true"]}}, "10.88.0.2", 30)
    assert msg == f'Exec lifecycle hook ([true]) {WHO} failed - error: container {cid} is not running, message: ""'


class Hits:
    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[tuple[str, dict[str, str]]] = []


@pytest.fixture
async def server() -> AsyncIterator[Hits]:
    hits = Hits()

    async def any_path(req: web.Request) -> web.Response:
        hits.requests.append((req.path, dict(req.headers)))
        return web.Response(status=500 if req.path == "/broken" else 200)

    app = web.Application()
    app.router.add_get("/{tail:.*}", any_path)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", hits.port).start()
    try:
        yield hits
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("action, path", [
    pytest.param({"path": "/shutdown"}, "/shutdown", id="ok"),
    pytest.param({"path": "/broken"}, "/broken", id="error-status-is-not-a-failure"),
    pytest.param({"path": "/tls", "scheme": "HTTPS"}, "/tls", id="https-falls-back-to-http"),
])
async def test_http_hook(runtime: tuple[FakeRuntime, str], server: Hits, action: Obj, path: str) -> None:
    rt, cid = runtime
    handler = {"httpGet": {**action, "port": server.port,
                           "httpHeaders": [{"name": "X-Reason", "value": "stop"}]}}
    assert await run_handler(rt, POD, CONTAINER, cid, handler, "127.0.0.1", 10) is None
    assert [p for p, _ in server.requests] == [path]
    headers = server.requests[0][1]
    assert (headers["User-Agent"], headers["X-Reason"]) == ("kube-lifecycle/1.32", "stop")


async def test_http_hook_by_port_name_and_host(runtime: tuple[FakeRuntime, str], server: Hits) -> None:
    rt, cid = runtime
    container = {"name": "app", "ports": [{"name": "admin", "containerPort": server.port}]}
    handler = {"httpGet": {"path": "/x", "port": "admin", "host": "127.0.0.1"}}
    assert await run_handler(rt, POD, container, cid, handler, "10.255.255.1", 10) is None
    assert [p for p, _ in server.requests] == ["/x"]


async def test_http_hook_connection_refused(runtime: tuple[FakeRuntime, str]) -> None:
    rt, cid = runtime
    port = free_port()
    msg = await run_handler(rt, POD, CONTAINER, cid, {"httpGet": {"path": "/stop", "port": port}}, "127.0.0.1", 10)
    assert msg == (f'HTTP lifecycle hook (/stop) {WHO} failed - error: Get "http://127.0.0.1:{port}/stop": '
                   f"dial tcp 127.0.0.1:{port}: connect: connection refused")


@pytest.mark.parametrize("handler, timeout, want", [
    pytest.param({"sleep": {"seconds": 0}}, 30, None, id="sleep-done"),
    pytest.param({"sleep": {"seconds": 5}}, 0.05,
                 f"Sleep lifecycle hook (5) {WHO} failed - error: container terminated before sleep hook finished",
                 id="sleep-cut-by-grace-period"),
    pytest.param({"tcpSocket": {"port": 80}}, 30, None, id="tcp-socket-deprecated-no-op"),
    pytest.param({}, 30, "Cannot run handler: invalid handler: {}", id="no-handler"),
])
async def test_other_handlers(runtime: tuple[FakeRuntime, str], handler: Obj, timeout: float,
                              want: str | None) -> None:
    rt, cid = runtime
    assert await run_handler(rt, POD, CONTAINER, cid, handler, "10.88.0.2", timeout) == want

