"""Proxying pod streams (log, exec, attach, portforward) to the node agent that runs the pod.

Upstream: `pkg/registry/core/pod/strategy.go` (LogLocation, ExecLocation, AttachLocation,
PortForwardLocation: validate the container, find the node's kubelet endpoint, build the kubelet URL) and
apimachinery's `UpgradeAwareHandler` (relay the 101, then bytes both ways). We never look inside a stream:
WebSocket and SPDY are the agent's business (`skiff/agent/server.py`).

Agent address: the Node's `status.addresses` InternalIP (else Hostname) and
`status.daemonEndpoints.kubeletEndpoint.Port`. TLS: the agent's serving certificate is verified against the
cluster CA, and we authenticate with a client certificate (`kube-apiserver-kubelet-client`,
group `system:masters`) issued from that CA on first use and kept next to the other credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import yarl
from aiohttp import web

from skiff.api import errors
from skiff.api.meta import Obj
from skiff.apiserver.certs import Credentials, issue_client_cert
from skiff.util.fs import write_atomic
from skiff.util.upgrade import take_over

if TYPE_CHECKING:
    from skiff.apiserver.http import APIServer

KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"
KUBELET_CLIENT_GROUP = "system:masters"
DIAL_TIMEOUT = 10.0
# PodLogOptions the kubelet understands (upstream LogLocation copies exactly these).
LOG_PARAMS = ("follow", "previous", "timestamps", "sinceSeconds", "sinceTime", "tailLines", "limitBytes")
# Request headers an upgrade needs end to end; everything else (notably Authorization) stays here.
UPGRADE_REQUEST_HEADERS = ("connection", "upgrade", "sec-websocket-key", "sec-websocket-version",
                           "sec-websocket-protocol", "x-stream-protocol-version")
UPGRADE_RESPONSE_HEADERS = ("connection", "upgrade", "sec-websocket-accept", "sec-websocket-protocol",
                            "x-stream-protocol-version")
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
            500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


@dataclass(frozen=True)
class AgentEndpoint:
    host: str
    port: int


@dataclass
class AgentDialer:
    """How the API server reaches agents: a client TLS context (None = plain HTTP, for tests only)."""

    ssl_context: ssl.SSLContext | None
    timeout: float = DIAL_TIMEOUT

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    async def open(self, ep: AgentEndpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        kw: dict[str, Any] = {}
        if self.ssl_context is not None:
            kw = {"ssl": self.ssl_context, "server_hostname": ep.host}
        return await asyncio.wait_for(asyncio.open_connection(ep.host, ep.port, **kw), self.timeout)


_DIALERS: weakref.WeakKeyDictionary[APIServer, AgentDialer] = weakref.WeakKeyDictionary()


def client_ssl_context(creds: Credentials) -> ssl.SSLContext:
    """TLS client context towards agents: trust the cluster CA; present the kubelet-client certificate
    (issued once, stored as `tls/kubelet-client.{crt,key}`). Blocking file I/O."""
    cert, key = creds.tls_dir / "kubelet-client.crt", creds.tls_dir / "kubelet-client.key"
    if not (cert.exists() and key.exists()):
        cert_pem, key_pem = issue_client_cert(creds, KUBELET_CLIENT_USER, [KUBELET_CLIENT_GROUP])
        write_atomic(key, key_pem, 0o600)
        write_atomic(cert, cert_pem, 0o644)
    ctx = ssl.create_default_context(cafile=str(creds.ca_cert))
    ctx.load_cert_chain(str(cert), str(key))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def configure(api: APIServer, creds: Credentials) -> None:
    """Enable pod streams on `api` with the cluster's credentials (call once at startup)."""
    set_dialer(api, AgentDialer(client_ssl_context(creds)))


def set_dialer(api: APIServer, dialer: AgentDialer) -> None:
    _DIALERS[api] = dialer


def dialer_for(api: APIServer) -> AgentDialer | None:
    return _DIALERS.get(api)


# ---------------------------------------------------------------------------------------------- pure half


def agent_endpoint(node: Obj) -> AgentEndpoint | None:
    """Where a node's agent listens, None when the node reports no endpoint."""
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    host = addresses.get("InternalIP") or addresses.get("Hostname")
    if not port or not host:
        return None
    return AgentEndpoint(str(host), int(port))


def _names(containers: list[Obj] | None) -> list[str]:
    return [c.get("name", "") for c in containers or []]


def resolve_container(pod: Obj, requested: str) -> str:
    """The container a request means (upstream `validateContainer`): 400 when it is missing or unknown."""
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    containers, inits = _names(spec.get("containers")), _names(spec.get("initContainers"))
    ephemeral = _names(spec.get("ephemeralContainers"))
    if not requested:
        if len(containers) == 1:
            return containers[0]
        if not containers:
            raise errors.bad_request(f"a container name must be specified for pod {name}")
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        if inits:
            message += f" or one of the init containers: [{' '.join(inits)}]"
        if ephemeral:
            message += f" or one of the ephemeral containers: [{' '.join(ephemeral)}]"
        raise errors.bad_request(message)
    if requested not in containers + inits + ephemeral:
        raise errors.bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def agent_path(subresource: str, namespace: str, name: str, container: str) -> str:
    """The kubelet URL path of a pod stream (upstream kubelet server routes)."""
    if subresource == "log":
        return f"/containerLogs/{namespace}/{name}/{container}"
    if subresource in ("exec", "attach"):
        return f"/{subresource}/{namespace}/{name}/{container}"
    if subresource == "portforward":
        return f"/portForward/{namespace}/{name}"
    raise errors.unknown_url()


def agent_query(subresource: str, query: Mapping[str, str] | Any) -> list[tuple[str, str]]:
    """Query parameters to pass on: PodLogOptions for logs; everything but `container` for the others."""
    items = list(query.items())
    if subresource == "log":
        return [(k, v) for k, v in items if k in LOG_PARAMS]
    return [(k, v) for k, v in items if k != "container"]


# ---------------------------------------------------------------------------------------------- handler


async def pod_stream(api: APIServer, request: web.Request, subresource: str, pod: Obj) -> web.StreamResponse:
    """Serve `pods/{log,exec,attach,portforward}` for `pod` by proxying to its node's agent."""
    md = pod["metadata"]
    container = "" if subresource == "portforward" else resolve_container(pod, request.query.get("container", ""))
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        if subresource == "log":  # upstream: no host yet means an empty log
            return web.Response(body=b"", content_type="text/plain")
        raise errors.bad_request(f"pod {md['name']} does not have a host assigned")
    unavailable = errors.ApiError(
        503, "ServiceUnavailable", f'no node agent is serving node "{node_name}" for pods/{subresource}')
    nodes = api.served.get(("", "v1", "nodes"))
    node = await nodes.registry.try_get("", node_name) if nodes is not None else None
    endpoint = agent_endpoint(node) if node is not None else None
    dialer = dialer_for(api)
    if endpoint is None or dialer is None:
        raise unavailable
    path = agent_path(subresource, md["namespace"], md["name"], container)
    query = agent_query(subresource, request.query)
    if subresource == "log":
        return await _proxy_log(request, dialer, endpoint, path, query)
    return await _proxy_upgrade(request, dialer, endpoint, path, query)


def _agent_error(status: int, body: bytes) -> errors.ApiError:
    """A non-success answer of the agent as the Status upstream's GenericHttpResponseChecker makes."""
    text = body.decode(errors="replace").strip() or f"the node agent answered {status}"
    return errors.ApiError(status, _REASONS.get(status, "InternalError"), text)


async def _proxy_log(request: web.Request, dialer: AgentDialer, ep: AgentEndpoint, path: str,
                     query: list[tuple[str, str]]) -> web.StreamResponse:
    url = f"{dialer.scheme}://{ep.host}:{ep.port}{path}"
    timeout = aiohttp.ClientTimeout(total=None, connect=dialer.timeout, sock_connect=dialer.timeout)
    connector = aiohttp.TCPConnector(ssl=dialer.ssl_context if dialer.ssl_context is not None else False)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        try:
            upstream = await session.get(url, params=query)
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise errors.internal(f'Get "{url}": {e}') from None
        async with upstream:
            if upstream.status != 200:
                raise _agent_error(upstream.status, await upstream.read())
            resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await resp.prepare(request)
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
            return resp


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, list[tuple[str, str]]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = []
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers.append((name.strip(), value.strip()))
    return status, headers


async def _read_body(reader: asyncio.StreamReader, headers: list[tuple[str, str]]) -> bytes:
    length = next((v for n, v in headers if n.lower() == "content-length"), None)
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, TimeoutError, ValueError):
        if length is not None:
            return await asyncio.wait_for(reader.readexactly(min(int(length), 65536)), 10)
        return await asyncio.wait_for(reader.read(65536), 10)
    return b""


def _request_head(request: web.Request, ep: AgentEndpoint, path: str, query: list[tuple[str, str]]) -> bytes:
    qs = yarl.URL.build(path=path, query=query).raw_path_qs if query else path
    lines = [f"{request.method} {qs} HTTP/1.1", f"Host: {ep.host}:{ep.port}", "Content-Length: 0"]
    for name, value in request.headers.items():
        if name.lower() in UPGRADE_REQUEST_HEADERS:
            lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _proxy_upgrade(request: web.Request, dialer: AgentDialer, ep: AgentEndpoint, path: str,
                         query: list[tuple[str, str]]) -> web.StreamResponse:
    """UpgradeAwareHandler: forward the upgrade request, relay a non-101 answer as is, else splice bytes."""
    try:
        reader, writer = await dialer.open(ep)
    except (OSError, TimeoutError, ssl.SSLError) as e:
        raise errors.internal(f"error dialing backend: {e}") from None
    try:
        writer.write(_request_head(request, ep, path, query))
        status, headers = await asyncio.wait_for(_read_head(reader), dialer.timeout)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
        writer.close()
        raise errors.internal(f"error dialing backend: {e}") from None
    if status != 101:
        body = await _read_body(reader, headers)
        writer.close()
        ctype = next((v for n, v in headers if n.lower() == "content-type"), "text/plain")
        return web.Response(status=status, body=body, headers={"Content-Type": ctype})
    client = take_over(request)
    resp = web.StreamResponse(status=101)
    for name, value in headers:
        if name.lower() in UPGRADE_RESPONSE_HEADERS:
            resp.headers.add(name, value)
    resp.force_close()
    await resp.prepare(request)

    async def up() -> None:
        while data := await client.read():
            writer.write(data)
            await writer.drain()

    async def down() -> None:
        while data := await reader.read(65536):
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            transport.write(data)
            await request.writer.drain()

    tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        writer.close()
    return resp


async def agent_get(api: APIServer, node: Obj, path: str, timeout: float = 10.0) -> bytes:
    """GET `path` from a node's agent (e.g. `/metrics/resource` for the metrics API); raises ApiError."""
    dialer = dialer_for(api)
    ep = agent_endpoint(node)
    name = (node.get("metadata") or {}).get("name", "")
    if dialer is None or ep is None:
        raise errors.ApiError(503, "ServiceUnavailable", f'no node agent is serving node "{name}"')
    url = f"{dialer.scheme}://{ep.host}:{ep.port}{path}"
    connector = aiohttp.TCPConnector(ssl=dialer.ssl_context if dialer.ssl_context is not None else False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        try:
            async with session.get(url) as upstream:
                body = await upstream.read()
                if upstream.status != 200:
                    raise _agent_error(upstream.status, body)
                return body
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise errors.internal(f'Get "{url}": {e}') from None
