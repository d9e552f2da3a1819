"""Pod streams through the API server's proxy to a node agent: path mapping, errors, logs, WebSocket exec with
stdin EOF and exit code, SPDY port-forward relayed byte for byte.

The agent is the real `AgentServer` over a fake runtime whose exec URL points at a fake CRI stream server
(SPDY, built from `skiff.agent.spdy`): it upper-cases stdin until EOF and exits 3, like `tr a-z A-Z; exit 3`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from skiff.agent import spdy, wsstream
from skiff.agent.runtime.interface import (
    LABEL_CONTAINER_NAME,
    LABEL_POD_UID,
    ContainerState,
    ContainerStatus,
    SandboxState,
    SandboxStatus,
)
from skiff.agent.server import AgentServer, agent_tls_context
from skiff.api import errors
from skiff.api.meta import Obj
from skiff.apiserver import proxy
from skiff.apiserver.registry.generic import WriteOptions
from skiff.testing import start_control_plane

UID = "0b8f6a2e-uid"


def pod(name: str = "p", containers: tuple[str, ...] = ("c",), node: str = "n1", inits: tuple[str, ...] = (),
        host_network: bool = False) -> Obj:
    spec: Obj = {"containers": [{"name": c, "image": "busybox"} for c in containers], "nodeName": node}
    if inits:
        spec["initContainers"] = [{"name": c, "image": "busybox"} for c in inits]
    if host_network:
        spec["hostNetwork"] = True
    return {"metadata": {"name": name, "namespace": "default", "uid": UID}, "spec": spec}


@pytest.mark.parametrize(("containers", "inits", "requested", "result"), [
    pytest.param(("c",), (), "", "c", id="only-container-is-the-default"),
    pytest.param(("a", "b"), (), "b", "b", id="named"),
    pytest.param(("a",), ("i",), "i", "i", id="init-container"),
    pytest.param(("a", "b"), (), "", "a container name must be specified for pod p, choose one of: [a b]",
                 id="ambiguous"),
    pytest.param(("a", "b"), ("i",), "",
                 "a container name must be specified for pod p, choose one of: [a b] or one of the init "
                 "containers: [i]", id="ambiguous-with-inits"),
    pytest.param(("a",), (), "y", "container y is not valid for pod p", id="unknown"),
])
def test_resolve_container(containers: tuple[str, ...], inits: tuple[str, ...], requested: str, result: str) -> None:
    try:
        assert proxy.resolve_container(pod(containers=containers, inits=inits), requested) == result
    except errors.ApiError as e:
        assert (e.code, e.message) == (400, result)


@pytest.mark.parametrize(("status", "endpoint"), [
    pytest.param({"addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}],
                  "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}, proxy.AgentEndpoint("10.0.0.5", 10250),
                 id="internal-ip-first"),
    pytest.param({"addresses": [{"type": "Hostname", "address": "n1"}],
                  "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}, proxy.AgentEndpoint("n1", 10250),
                 id="hostname-fallback"),
    pytest.param({"addresses": [{"type": "InternalIP", "address": "10.0.0.5"}]}, None, id="no-port"),
    pytest.param({}, None, id="no-status"),
])
def test_agent_endpoint(status: Obj, endpoint: proxy.AgentEndpoint | None) -> None:
    assert proxy.agent_endpoint({"metadata": {"name": "n1"}, "status": status}) == endpoint


@pytest.mark.parametrize(("sub", "path"), [
    pytest.param("log", "/containerLogs/ns/p/c", id="log"),
    pytest.param("exec", "/exec/ns/p/c", id="exec"),
    pytest.param("attach", "/attach/ns/p/c", id="attach"),
    pytest.param("portforward", "/portForward/ns/p", id="portforward"),
])
def test_agent_path(sub: str, path: str) -> None:
    assert proxy.agent_path(sub, "ns", "p", "c") == path


@pytest.mark.parametrize(("sub", "query", "kept"), [
    pytest.param("log", {"container": "c", "follow": "true", "tailLines": "3", "pretty": "1"},
                 [("follow", "true"), ("tailLines", "3")], id="log-options-only"),
    pytest.param("exec", {"container": "c", "command": "ls", "stdin": "true"},
                 [("command", "ls"), ("stdin", "true")], id="exec-all-but-container"),
])
def test_agent_query(sub: str, query: dict[str, str], kept: list[tuple[str, str]]) -> None:
    assert proxy.agent_query(sub, query) == kept


# ---------------------------------------------------------------------------------------------- fakes


class FakeCRIStreams:
    """containerd's CRI stream server, reduced: SPDY remote command (v4) that upper-cases stdin, exits 3."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"Upgrade: SPDY/3.1" in head and b"v4.channel.k8s.io" in head
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                     b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")

        async def write(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        session = spdy.Session(write, client=False)

        async def pump() -> None:
            while data := await reader.read(65536):
                await session.receive(data)
            session.connection_lost()

        pumping = asyncio.create_task(pump())
        streams: dict[str, spdy.Stream] = {}
        while len(streams) < 4:
            stream = await session.accept()
            assert stream is not None
            await stream.reply()
            streams[stream.header("streamtype")] = stream
        data = bytearray()
        while chunk := await streams["stdin"].read():
            data += chunk
        await streams["stdout"].write(bytes(data).upper())
        await streams["stderr"].write(b"done\n")
        await streams["error"].write(wsstream.status_message(wsstream.exit_status(3)))
        for s in streams.values():
            await s.close()
        pumping.cancel()
        writer.close()


class FakeRuntime:
    def __init__(self, streams: FakeCRIStreams) -> None:
        self.streams = streams
        self.exec_calls: list[tuple[str, list[str], bool, bool, bool, bool]] = []

    async def list_containers(self, sandbox_id: str = "") -> list[ContainerStatus]:
        return [ContainerStatus("cid-1", "sb", "c", 0, ContainerState.RUNNING,
                                labels={LABEL_POD_UID: UID, LABEL_CONTAINER_NAME: "c"})]

    async def container_status(self, container_id: str) -> ContainerStatus:
        return (await self.list_containers())[0]

    async def list_sandboxes(self) -> list[SandboxStatus]:
        return [SandboxStatus("sb", "p", "default", UID, 0, SandboxState.READY, ip="127.0.0.1")]

    async def exec_url(self, container_id: str, command: list[str], stdin: bool, stdout: bool, stderr: bool,
                       tty: bool) -> str:
        self.exec_calls.append((container_id, command, stdin, stdout, stderr, tty))
        return f"http://127.0.0.1:{self.streams.port}/exec/token"


class Cluster:
    def __init__(self, base: str, headers: dict[str, str], agent: AgentServer, runtime: FakeRuntime,
                 log_root: Path) -> None:
        self.base = base
        self.headers = headers
        self.agent = agent
        self.runtime = runtime
        self.log_root = log_root


def _agent_pods() -> dict[tuple[str, str], Obj]:
    running = pod()
    running["status"] = {"podIP": "127.0.0.1", "containerStatuses": [
        {"name": "c", "restartCount": 1, "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1}}}]}
    return {("default", "p"): running}


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    plane = await start_control_plane(tmp_path / "cp")
    streams = FakeCRIStreams()
    await streams.start()
    runtime = FakeRuntime(streams)
    log_root = tmp_path / "logs"
    pods = _agent_pods()
    creds = plane.creds
    tls = agent_tls_context(creds.serving_cert, creds.serving_key, creds.ca_cert)  # CA-signed, SAN 127.0.0.1
    agent = AgentServer(runtime, log_root, "n1", tls)  # type: ignore[arg-type]
    agent.pods_for_logs(lambda ns, name: pods.get((ns, name)))
    agent_port = await agent.start("127.0.0.1", 0)
    proxy.configure(plane.api, creds)
    opts = WriteOptions(field_manager="test")
    nodes = plane.registries[("", "nodes")]
    await nodes.create("", {"metadata": {"name": "n1"}}, opts)
    node = await nodes.get("", "n1")
    node["status"] = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                      "daemonEndpoints": {"kubeletEndpoint": {"Port": agent_port}}}
    await nodes.update("", "n1", node, WriteOptions(field_manager="test", subresource="status"))
    await nodes.create("", {"metadata": {"name": "bare"}}, opts)
    pods_reg = plane.registries[("", "pods")]
    for p in (pod(), pod("two", ("a", "b")), pod("pending", node=""), pod("elsewhere", node="bare")):
        body = {k: v for k, v in p.items() if k != "status"}
        body["metadata"] = {"name": p["metadata"]["name"], "namespace": "default"}
        await pods_reg.create("default", body, opts)
    server = TestServer(plane.api.app())
    await server.start_server()
    try:
        yield Cluster(str(server.make_url("")), {"Authorization": f"Bearer {creds.admin_token}"}, agent, runtime,
                      log_root)
    finally:
        await server.close()
        await agent.stop()
        await streams.stop()
        await plane.store.close()


async def _get(c: Cluster, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession(headers=c.headers) as s, s.get(c.base + path) as r:
        body = await r.read()
        try:
            return r.status, json.loads(body)
        except ValueError:
            return r.status, body.decode()


POD_URL = "/api/v1/namespaces/default/pods"


@pytest.mark.parametrize(("path", "code", "message"), [
    pytest.param("/missing/log", 404, 'pods "missing" not found', id="pod-not-found"),
    pytest.param("/two/log", 400, "a container name must be specified for pod two, choose one of: [a b]",
                 id="container-required"),
    pytest.param("/p/exec?container=y&command=ls", 400, "container y is not valid for pod p", id="bad-container"),
    pytest.param("/pending/exec?command=ls", 400, "pod pending does not have a host assigned", id="no-host"),
    pytest.param("/elsewhere/log", 503, 'no node agent is serving node "bare" for pods/log', id="no-endpoint"),
    pytest.param("/p/log?previous=true&container=c", 400, 'previous terminated container "c" in pod "p" not found',
                 id="previous-file-missing"),
])
async def test_stream_errors(cluster: Cluster, path: str, code: int, message: str) -> None:
    status, body = await _get(cluster, POD_URL + path)
    assert status == code, body
    assert body["message"] == message


async def test_pending_pod_has_an_empty_log(cluster: Cluster) -> None:
    assert await _get(cluster, POD_URL + "/pending/log") == (200, "")


async def test_logs_are_read_from_the_agents_cri_files(cluster: Cluster) -> None:
    d = cluster.log_root / f"default_p_{UID}" / "c"
    d.mkdir(parents=True)
    (d / "1.log").write_text("2024-05-01T10:00:00Z stdout F hello\n2024-05-01T10:00:01Z stderr F world\n")
    (d / "0.log").write_text("2024-05-01T09:00:00Z stdout F before the restart\n")
    assert await _get(cluster, POD_URL + "/p/log") == (200, "hello\nworld\n")
    assert await _get(cluster, POD_URL + "/p/log?tailLines=1&timestamps=true") == (
        200, "2024-05-01T10:00:01Z world\n")
    assert await _get(cluster, POD_URL + "/p/log?previous=true") == (200, "before the restart\n")


async def test_websocket_v5_exec_with_stdin_eof_and_exit_code(cluster: Cluster) -> None:
    url = cluster.base + POD_URL + "/p/exec?command=tr&command=a-z&command=A-Z&stdin=true&stdout=true&stderr=true"
    got: dict[int, bytes] = {1: b"", 2: b"", 3: b""}
    async with aiohttp.ClientSession(headers=cluster.headers) as s, s.ws_connect(
            url, protocols=[wsstream.V5]) as ws:
        assert ws.protocol == wsstream.V5
        await ws.send_bytes(wsstream.encode(wsstream.STDIN, b"hello "))
        await ws.send_bytes(wsstream.encode(wsstream.STDIN, b"world"))
        await ws.send_bytes(wsstream.close_message(wsstream.STDIN))  # stdin EOF lets the command finish
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            channel, payload = wsstream.decode(msg.data)
            got[channel] += payload
    assert got[1] == b"HELLO WORLD" and got[2] == b"done\n"
    assert wsstream.status_exit_code(json.loads(got[3])) == 3
    assert cluster.runtime.exec_calls == [("cid-1", ["tr", "a-z", "A-Z"], True, True, True, False)]


async def _echo_server() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(b"echo:" + data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_spdy_port_forward_through_the_proxy(cluster: Cluster) -> None:
    echo, port = await _echo_server()
    host, api_port = cluster.base.split("//")[1].rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(api_port))
    try:
        writer.write((f"POST {POD_URL}/p/portforward HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\n"
                      f"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n"
                      f"Authorization: {cluster.headers['Authorization']}\r\nContent-Length: 0\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"portforward.k8s.io" in head

        async def write(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        session = spdy.Session(write, client=True)

        async def pump() -> None:
            while data := await reader.read(65536):
                await session.receive(data)
            session.connection_lost()

        pumping = asyncio.create_task(pump())
        headers = [("port", str(port)), ("requestid", "0")]
        error = await session.open_stream([("streamtype", "error"), *headers])
        data = await session.open_stream([("streamtype", "data"), *headers])
        await data.write(b"ping")
        assert await data.read() == b"echo:ping"
        await data.close()
        assert await data.read() == b""
        assert await error.read() == b""
        pumping.cancel()
    finally:
        writer.close()
        echo.close()


async def test_websocket_port_forward_at_the_agent(cluster: Cluster) -> None:
    echo, port = await _echo_server()
    try:
        url = cluster.base + POD_URL + f"/p/portforward?ports={port}"
        async with aiohttp.ClientSession(headers=cluster.headers) as s, s.ws_connect(
                url, protocols=[wsstream.V4]) as ws:
            first = [wsstream.decode((await ws.receive()).data) for _ in range(2)]
            assert first == [(0, wsstream.port_prefix(port)), (1, wsstream.port_prefix(port))]
            await ws.send_bytes(wsstream.encode(0, b"hi"))
            assert wsstream.decode((await ws.receive()).data) == (0, b"echo:hi")
    finally:
        echo.close()


async def test_kubectl_websocket_tunnel_for_port_forward_is_declined(cluster: Cluster) -> None:
    url = cluster.base + POD_URL + "/p/portforward?ports=80"
    async with aiohttp.ClientSession(headers=cluster.headers) as s:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await s.ws_connect(url, protocols=[wsstream.SPDY_TUNNEL_PROTOCOL])
    assert err.value.status == 400


async def test_agent_refuses_clients_without_a_cluster_certificate(cluster: Cluster) -> None:
    agent_port = int(cluster.agent._runner.addresses[0][1])  # type: ignore[union-attr]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    answer = b""
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):  # TLS 1.2 fails the handshake itself
        reader, writer = await asyncio.open_connection("127.0.0.1", agent_port, ssl=ctx)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await reader.read(100)  # TLS 1.3: the alert arrives after the handshake
        writer.close()
    assert answer == b""
