"""Probes: handlers against real local servers, threshold counting, and the workers in virtual time."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from aiohttp import web

from skiff.agent.probes import (
    FAILURE,
    PROBE_USER_AGENT,
    SUCCESS,
    WARNING,
    ProbeError,
    ProbeManager,
    Thresholds,
    exec_command,
    grpc_health,
    http_get,
    resolve_port,
    tcp_socket,
)
from skiff.agent.runtime.interface import ContainerState, ContainerStatus, ExecResult, RuntimeError_
from skiff.api.meta import Obj
from skiff.apiserver.local import LocalBackend
from skiff.client.events import EventBroadcaster
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import EVENTS
from skiff.testing import eventually, free_port, start_control_plane

# ------------------------------------------------------------------------------------------------ thresholds


@pytest.mark.parametrize("initial, success, failure, results, published, changes", [
    pytest.param(False, 1, 3, [True], True, 1, id="readiness-one-success"),
    pytest.param(False, 2, 3, [True], False, 0, id="readiness-below-success-threshold"),
    pytest.param(False, 2, 3, [True, True], True, 1, id="readiness-success-threshold-met"),
    pytest.param(False, 2, 3, [True, False, True], False, 0, id="success-run-broken"),
    pytest.param(True, 1, 3, [False, False], True, 0, id="liveness-below-failure-threshold"),
    pytest.param(True, 1, 3, [False, False, False], False, 1, id="liveness-failure-threshold-met"),
    pytest.param(True, 1, 3, [False, False, True, False, False], True, 0, id="failure-run-reset-by-success"),
    pytest.param(True, 1, 1, [False, True, False], False, 3, id="flapping-with-threshold-one"),
    pytest.param(None, 1, 30, [False] * 29 + [True], True, 1, id="startup-unknown-then-success"),
])
def test_thresholds(initial: bool | None, success: int, failure: int, results: list[bool], published: bool | None,
                    changes: int) -> None:
    t = Thresholds(success, failure, initial)
    assert sum(t.observe(r) for r in results) == changes
    assert t.published is published


@pytest.mark.parametrize("port, want", [
    pytest.param(8080, 8080, id="number"),
    pytest.param("http", 80, id="name"),
    pytest.param("9090", 9090, id="number-as-string"),
    pytest.param("nope", ProbeError, id="unknown-name"),
    pytest.param(0, ProbeError, id="zero"),
    pytest.param(70000, ProbeError, id="too-big"),
])
def test_resolve_port(port: Any, want: int | type[Exception]) -> None:
    container = {"name": "app", "ports": [{"name": "http", "containerPort": 80}]}
    if isinstance(want, int):
        assert resolve_port(port, container) == want
    else:
        with pytest.raises(want):
            resolve_port(port, container)


# ------------------------------------------------------------------------------------------------ HTTP


class Web:
    def __init__(self, port: int) -> None:
        self.port = port
        self.headers: list[dict[str, str]] = []
        self.status = 200


@pytest.fixture
async def web_server() -> AsyncIterator[Web]:
    srv = Web(free_port())

    async def ok(req: web.Request) -> web.Response:
        srv.headers.append(dict(req.headers))
        return web.Response(status=srv.status, text="fine")

    async def code(req: web.Request) -> web.Response:
        return web.Response(status=int(req.match_info["code"]), text="body")

    async def redirect(req: web.Request) -> web.Response:
        raise web.HTTPFound(req.query["to"].replace("PORT", str(srv.port)))

    async def loop(req: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def slow(req: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response()

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/code/{code}", code)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/loop", loop)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", srv.port).start()
    try:
        yield srv
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("path, result, output", [
    pytest.param("/ok", SUCCESS, "fine", id="200"),
    pytest.param("/code/204", SUCCESS, "", id="204"),
    pytest.param("/code/503", FAILURE, "HTTP probe failed with statuscode: 503", id="503"),
    pytest.param("/code/404", FAILURE, "HTTP probe failed with statuscode: 404", id="404"),
    pytest.param("/code/304", WARNING, "Probe terminated redirects, Response body: ", id="3xx-without-location"),
    pytest.param("/redirect?to=/ok", SUCCESS, "fine", id="same-host-redirect-followed"),
    pytest.param("/redirect?to=http://localhost:PORT/ok", WARNING, "Probe terminated redirects, Response body: ",
                 id="other-host-redirect-not-followed"),
    pytest.param("/loop", FAILURE, "stopped after 10 redirects", id="redirect-loop"),
])
async def test_http_probe(web_server: Web, path: str, result: str, output: str) -> None:
    container = {"name": "app", "ports": [{"name": "web", "containerPort": web_server.port}]}
    res = await http_get({"path": path, "port": "web"}, container, "127.0.0.1", 5)
    assert res.result == result
    assert output in res.output


async def test_http_probe_sends_kube_probe_user_agent_and_custom_headers(web_server: Web) -> None:
    await http_get({"path": "/ok", "port": web_server.port,
                    "httpHeaders": [{"name": "X-Custom", "value": "1"}]}, {"name": "app"}, "127.0.0.1", 5)
    await http_get({"path": "ok", "port": web_server.port, "host": "127.0.0.1",
                    "httpHeaders": [{"name": "User-Agent", "value": "mine"}]}, {"name": "app"}, "10.255.255.1", 5)
    first, second = web_server.headers
    assert first["User-Agent"] == PROBE_USER_AGENT == "kube-probe/1.32"
    assert (first["X-Custom"], first["Accept"]) == ("1", "*/*")
    assert second["User-Agent"] == "mine"


async def test_http_probe_timeout_and_refused(web_server: Web) -> None:
    slow = await http_get({"path": "/slow", "port": web_server.port}, {"name": "app"}, "127.0.0.1", 0.2)
    assert slow.result == FAILURE and "Client.Timeout exceeded while awaiting headers" in slow.output
    port = free_port()
    refused = await http_get({"path": "/", "port": port}, {"name": "app"}, "127.0.0.1", 5)
    assert refused == type(refused)(FAILURE, f'Get "http://127.0.0.1:{port}/": dial tcp 127.0.0.1:{port}: connect: '
                                             "connection refused")


async def test_tcp_probe(web_server: Web) -> None:
    assert (await tcp_socket("127.0.0.1", web_server.port, 1)).result == SUCCESS
    port = free_port()
    res = await tcp_socket("127.0.0.1", port, 1)
    assert (res.result, res.output) == (FAILURE, f"dial tcp 127.0.0.1:{port}: connect: connection refused")


# ------------------------------------------------------------------------------------------------ gRPC


@pytest.fixture
async def grpc_port() -> AsyncIterator[int]:
    statuses = {b"": 1, b"db": 2}

    async def check(request: bytes, context: Any) -> bytes:
        service = request[2:] if request else b""
        if service not in statuses:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return bytes([0x08, statuses[service]])

    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port
    finally:
        await server.stop(0)


@pytest.mark.parametrize("service, result, output", [
    pytest.param("", SUCCESS, "service healthy", id="serving"),
    pytest.param("db", FAILURE, 'service unhealthy (responded with "NOT_SERVING")', id="not-serving"),
    pytest.param("cache", FAILURE, "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service",
                 id="unknown-service"),
])
async def test_grpc_probe(grpc_port: int, service: str, result: str, output: str) -> None:
    res = await grpc_health("127.0.0.1", grpc_port, service, 5)
    assert (res.result, res.output) == (result, output)


async def test_grpc_probe_without_health_service() -> None:
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        res = await grpc_health("127.0.0.1", port, "", 5)
    finally:
        await server.stop(0)
    assert res.result == FAILURE
    assert res.output.startswith("this server does not implement the grpc health protocol (grpc.health.v1.Health)")


# ------------------------------------------------------------------------------------------------ exec


class ExecRuntime:
    """exec_sync answering from a fixed result or raising."""

    def __init__(self, result: ExecResult | RuntimeError_) -> None:
        self.result = result
        self.calls: list[tuple[str, list[str], int]] = []

    async def exec_sync(self, container_id: str, command: list[str], timeout_seconds: int) -> ExecResult:
        self.calls.append((container_id, command, timeout_seconds))
        if isinstance(self.result, RuntimeError_):
            raise self.result
        return self.result


@pytest.mark.parametrize("answer, result, output", [
    pytest.param(ExecResult(0, b"ok\n", b""), SUCCESS, "ok\n", id="exit-0"),
    pytest.param(ExecResult(1, b"", b"cat: /tmp/healthy: No such file or directory\n"), FAILURE,
                 "cat: /tmp/healthy: No such file or directory\n", id="exit-1-output-is-message"),
    pytest.param(RuntimeError_("DeadlineExceeded", "timeout 3s exceeded"), FAILURE,
                 'command "cat /tmp/healthy" timed out', id="runtime-timeout"),
])
async def test_exec_probe(answer: ExecResult | RuntimeError_, result: str, output: str) -> None:
    rt = ExecRuntime(answer)
    res = await exec_command(rt, "c1", ["cat", "/tmp/healthy"], 3)  # type: ignore[arg-type]
    assert (res.result, res.output) == (result, output)
    assert rt.calls == [("c1", ["cat", "/tmp/healthy"], 3)]


async def test_exec_probe_runtime_error_is_a_probe_error() -> None:
    with pytest.raises(ProbeError):
        await exec_command(ExecRuntime(RuntimeError_("NotFound", "no such container")), "c1", ["true"], 1)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ workers


class VirtualTime:
    """A clock that only moves when a worker sleeps: one worker per test makes its schedule exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0.001)


class ScriptedRuntime:
    """exec_sync waits for the test to hand it the next result of that command."""

    def __init__(self, clock: VirtualTime) -> None:
        self.clock = clock
        self.answers: dict[tuple[str, ...], asyncio.Queue[int]] = defaultdict(asyncio.Queue)
        self.calls: list[tuple[float, tuple[str, ...], str]] = []

    def answer(self, command: str, exit_code: int) -> None:
        self.answers[(command,)].put_nowait(exit_code)

    def count(self, command: str) -> int:
        return sum(1 for _, c, _ in self.calls if c == (command,))

    async def exec_sync(self, container_id: str, command: list[str], timeout_seconds: int) -> ExecResult:
        self.calls.append((self.clock.now, tuple(command), container_id))
        code = await self.answers[tuple(command)].get()
        return ExecResult(code, b"", b"boom" if code else b"")


class Events:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str, str]] = []

    async def record(self, obj: Obj, type_: str, reason: str, message: str, component: str, action: str = "") -> None:
        self.recorded.append((type_, reason, message))


def probe(command: str, **timing: int) -> Obj:
    return {"exec": {"command": [command]}, "timeoutSeconds": 30, **timing}


def probed_pod(**probes: Obj) -> Obj:
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {"containers": [{"name": "app", "image": "x", **probes}]}}


def running(cid: str = "c1") -> dict[str, ContainerStatus]:
    return {"app": ContainerStatus(id=cid, sandbox_id="s1", name="app", attempt=0, state=ContainerState.RUNNING)}


class Harness:
    def __init__(self) -> None:
        self.clock = VirtualTime()
        self.runtime = ScriptedRuntime(self.clock)
        self.events = Events()
        self.changes: list[str] = []
        self.manager = ProbeManager(self.runtime, self.changes.append, self.events,  # type: ignore[arg-type]
                                    clock=self.clock, sleep=self.clock.sleep)

    async def calls(self, command: str, n: int) -> None:
        async def seen() -> bool:
            return self.runtime.count(command) >= n
        await eventually(seen, f"{n} calls of {command}")


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    harness = Harness()
    try:
        yield harness
    finally:
        await harness.manager.close()


async def test_nothing_is_probed_before_the_initial_delay(h: Harness) -> None:
    h.manager.update_pod(probed_pod(livenessProbe=probe("live", initialDelaySeconds=5, periodSeconds=2)), "10.0.0.1",
                         running())
    await h.calls("live", 1)
    assert h.runtime.calls[0][0] == 6.0  # ticks at 0, 2, 4 are inside the delay


async def test_liveness_failures_up_to_the_threshold_then_restart_and_hold(h: Harness) -> None:
    h.manager.update_pod(probed_pod(livenessProbe=probe("live", failureThreshold=3, periodSeconds=1)), "10.0.0.1",
                         running())
    for n in (1, 2):
        await h.calls("live", n)
        h.runtime.answer("live", 1)
    await h.calls("live", 3)
    assert not h.manager.liveness_failed("u1", "c1") and h.changes == []
    h.runtime.answer("live", 1)

    async def failed() -> bool:
        return h.manager.liveness_failed("u1", "c1")
    await eventually(failed, "liveness failure published")
    assert h.changes == ["u1"]
    assert h.events.recorded == [("Warning", "Unhealthy", "Liveness probe failed: boom")] * 3
    probed_at = h.clock.now

    async def later() -> bool:
        return h.clock.now > probed_at + 50
    await eventually(later, "virtual time passes")
    assert h.runtime.count("live") == 3  # on hold until a new container appears

    h.manager.update_pod(probed_pod(livenessProbe=probe("live", failureThreshold=3, periodSeconds=1)), "10.0.0.1",
                         running("c2"))
    assert not h.manager.liveness_failed("u1", "c1") and not h.manager.liveness_failed("u1", "c2")
    await h.calls("live", 4)
    assert h.runtime.calls[-1][2] == "c2"


async def test_readiness_follows_success_and_failure_thresholds(h: Harness) -> None:
    h.manager.update_pod(probed_pod(readinessProbe=probe("ready", successThreshold=2, failureThreshold=1)),
                         "10.0.0.1", running())
    assert not h.manager.ready("u1", "app")
    await h.calls("ready", 1)
    h.runtime.answer("ready", 0)
    await h.calls("ready", 2)
    assert not h.manager.ready("u1", "app")
    h.runtime.answer("ready", 0)
    await h.calls("ready", 3)
    assert h.manager.ready("u1", "app") and h.changes == ["u1"]
    h.runtime.answer("ready", 1)
    await h.calls("ready", 4)
    assert not h.manager.ready("u1", "app") and h.changes == ["u1", "u1"]
    assert h.events.recorded == [("Warning", "Unhealthy", "Readiness probe failed: boom")]


async def test_startup_probe_gates_liveness_and_readiness(h: Harness) -> None:
    pod = probed_pod(startupProbe=probe("start", failureThreshold=10), livenessProbe=probe("live"))
    h.manager.update_pod(pod, "10.0.0.1", running())
    assert not h.manager.started("u1", "app") and not h.manager.ready("u1", "app")
    await h.calls("start", 1)
    h.runtime.answer("start", 1)
    await h.calls("start", 2)
    assert h.runtime.count("live") == 0
    h.runtime.answer("start", 0)
    await h.calls("live", 1)
    assert h.manager.started("u1", "app")
    assert h.manager.ready("u1", "app")  # no readiness probe: ready once started
    first_live = next(i for i, (_, c, _) in enumerate(h.runtime.calls) if c == ("live",))
    assert all(c == ("start",) for _, c, _ in h.runtime.calls[:first_live])
    assert h.runtime.count("start") == 2  # the startup worker stops probing once it succeeded


async def test_containers_without_probes_are_ready_and_started(h: Harness) -> None:
    h.manager.update_pod(probed_pod(), "10.0.0.1", running())
    assert h.manager.ready("u1", "app") and h.manager.started("u1", "app")
    assert not h.manager.liveness_failed("u1", "c1")


async def test_stopped_containers_and_removed_pods_lose_their_workers(h: Harness) -> None:
    pod = probed_pod(readinessProbe=probe("ready"))
    h.manager.update_pod(pod, "10.0.0.1", running())
    await h.calls("ready", 1)
    h.runtime.answer("ready", 0)

    async def ready() -> bool:
        return h.manager.ready("u1", "app")
    await eventually(ready, "ready")
    h.manager.update_pod(pod, "10.0.0.1", {})
    assert not h.manager.ready("u1", "app")
    h.manager.update_pod(pod, "10.0.0.1", running("c2"))
    await h.calls("ready", 3)
    task = next(iter(h.manager._workers.values())).task
    h.manager.remove_pod("u1")
    assert task is not None and (task.cancelled() or task.cancelling())
    assert not h.manager._workers


async def test_deleting_pods_stop_liveness_but_keep_readiness(h: Harness) -> None:
    pod = probed_pod(readinessProbe=probe("ready"), livenessProbe=probe("live"))
    pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    h.manager.update_pod(pod, "10.0.0.1", running())
    await h.calls("ready", 1)
    h.runtime.answer("ready", 0)
    await h.calls("ready", 2)
    assert h.runtime.count("live") == 0


async def test_http_readiness_failure_is_an_unhealthy_event_in_the_api(tmp_path: Path, web_server: Web) -> None:
    plane = await start_control_plane(tmp_path)
    client = InProcessClient(LocalBackend(plane))
    web_server.status = 503
    clock = VirtualTime()
    manager = ProbeManager(ScriptedRuntime(clock), lambda uid: None, EventBroadcaster(client),  # type: ignore[arg-type]
                           clock=clock, sleep=clock.sleep)
    pod = probed_pod(readinessProbe={"httpGet": {"path": "/ok", "port": web_server.port}, "periodSeconds": 10})
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": web_server.port}]
    try:
        manager.update_pod(pod, "127.0.0.1", running())

        async def event() -> list[Obj]:
            items = (await client.list(EVENTS, "default"))["items"]
            return [e for e in items if e["reason"] == "Unhealthy"]
        events = await eventually(event, "Unhealthy event written")
        assert events[0]["message"] == "Readiness probe failed: HTTP probe failed with statuscode: 503"
        assert events[0]["involvedObject"]["name"] == "web" and events[0]["type"] == "Warning"
        assert events[0]["source"]["component"] == "kubelet"
        assert not manager.ready("u1", "app")
    finally:
        await manager.close()
        await client.close()
        await plane.store.close()
