"""The agent's HTTPS endpoint (upstream kubelet :10250): container logs, exec, attach and port-forward.

The API server proxies `pods/log|exec|attach|portforward` here unchanged (bytes both ways after a 101), so
every stream protocol is handled in this file and nowhere else:

* `GET /containerLogs/{ns}/{pod}/{container}`: the CRI log files, see `skiff.agent.logs`.
* `/exec/{ns}/{pod}/{container}` and `/attach/...`:
  - WebSocket `v5.channel.k8s.io` (kubectl 1.32) or `v4.channel.k8s.io` (Python client): translated to SPDY
    towards containerd's CRI stream server. SPDY, not containerd's WebSocket, because containerd 1.6 speaks
    only v4 over WebSocket, which cannot carry stdin EOF; over SPDY the stdin stream is half-closed with FIN,
    so v5's `[255, 0]` becomes a real EOF (`kubectl exec -i ... < file`, `kubectl cp`). containerd's v4 status
    JSON (NonZeroExitCode + ExitCode cause) is passed to channel 3 unchanged.
  - raw `Upgrade: SPDY/3.1` (kubectl's fallback): spliced byte for byte to containerd's stream URL, as the
    kubelet proxies to the CRI streaming server.
* `/portForward/{ns}/{pod}`: SPDY/3.1 (kubectl, `portforward.k8s.io`) or WebSocket `v4.channel.k8s.io`
  (Python client). Connections go from the host to the pod IP (the pod network is a local bridge), or to
  127.0.0.1 for hostNetwork pods. kubectl's WebSocket tunnel (`SPDY/3.1+portforward.k8s.io`) is declined with
  400 so kubectl falls back to raw SPDY, which client-go does on any upgrade failure.

Clients must present a certificate signed by the cluster CA in the `system:masters` group (the API server's
kubelet client identity); the TLS context does the chain check (`agent_tls_context`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import yarl
from aiohttp import WSMsgType, web

from skiff.agent import spdy, wsstream
from skiff.agent.logs import LogOptions, parse_timestamp, stream_log
from skiff.agent.metrics import Collect, resource_metrics_handler
from skiff.agent.runtime.interface import (
    LABEL_CONTAINER_NAME,
    LABEL_POD_UID,
    ContainerState,
    ContainerStatus,
    Runtime,
    RuntimeError_,
    SandboxState,
)
from skiff.api.meta import Obj
from skiff.util.upgrade import RawReader, take_over

log = logging.getLogger("skiff.agent.server")

PodLookup = Callable[[str, str], Obj | None]
ALLOWED_GROUP = "system:masters"
REMOTE_COMMAND_SPDY = "v4.channel.k8s.io"
PORT_FORWARD_SPDY = "portforward.k8s.io"
DIAL_TIMEOUT = 10.0


def agent_tls_context(cert_file: Path, key_file: Path, ca_file: Path) -> ssl.SSLContext:
    """Serving context for the agent: its certificate, client certificates required and checked against the CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert_file), str(key_file))
    ctx.load_verify_locations(cafile=str(ca_file))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class StreamError(Exception):
    """A request the agent refuses before any upgrade; becomes a plain-text HTTP error as the kubelet sends."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------------------------------------- raw upgrades


async def answer_upgrade(request: web.Request, headers: list[tuple[str, str]]) -> web.StreamResponse:
    """Send `101 Switching Protocols` with `headers`; the connection is closed when the handler returns."""
    resp = web.StreamResponse(status=101)
    for name, value in headers:
        resp.headers.add(name, value)
    resp.force_close()
    await resp.prepare(request)
    return resp


async def write_raw(request: web.Request, data: bytes) -> None:
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("client went away")
    transport.write(data)
    await request.writer.drain()


async def read_head(reader: asyncio.StreamReader) -> tuple[int, list[tuple[str, str]]]:
    """Status code and headers of an HTTP/1.1 response head."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = []
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers.append((name.strip(), value.strip()))
    return status, headers


async def read_body(reader: asyncio.StreamReader, headers: list[tuple[str, str]], limit: int = 65536) -> bytes:
    length = next((v for n, v in headers if n.lower() == "content-length"), None)
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, TimeoutError):
        if length is not None:
            return await asyncio.wait_for(reader.readexactly(min(int(length), limit)), 10)
        return await asyncio.wait_for(reader.read(limit), 10)
    return b""


def _upgrade_request(url: yarl.URL, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"POST {url.raw_path_qs} HTTP/1.1", f"Host: {url.host}:{url.port}",
             "Connection: Upgrade", "Upgrade: SPDY/3.1", "Content-Length: 0"]
    lines += [f"{n}: {v}" for n, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def dial_spdy(url: str, protocols: list[str]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter,
                                                               int, list[tuple[str, str]]]:
    """Open an `Upgrade: SPDY/3.1` connection to a CRI stream URL (plain HTTP on loopback)."""
    u = yarl.URL(url)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(u.host, u.port), DIAL_TIMEOUT)
    writer.write(_upgrade_request(u, [("X-Stream-Protocol-Version", p) for p in protocols]))
    status, headers = await asyncio.wait_for(read_head(reader), DIAL_TIMEOUT)
    return reader, writer, status, headers


async def splice(client: RawReader, request: web.Request, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
    """Copy bytes both ways until either side ends; then close both."""

    async def up() -> None:
        while data := await client.read():
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    async def down() -> None:
        while data := await reader.read(65536):
            await write_raw(request, data)

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


def _bool(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _is_spdy(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower().startswith("spdy/3.1")


def _offered(request: web.Request, header: str) -> list[str]:
    return [p.strip() for v in request.headers.getall(header, []) for p in v.split(",") if p.strip()]


# ---------------------------------------------------------------------------------------------- the server


class AgentServer:
    """The agent's HTTPS endpoint the API server proxies to (upstream kubelet :10250)."""

    def __init__(self, runtime: Runtime, log_root: Path, node_name: str, tls: ssl.SSLContext | None,
                 pod_lookup: PodLookup | None = None, metrics: Collect | None = None) -> None:
        self._metrics = metrics
        self.runtime = runtime
        self.log_root = log_root
        self.node_name = node_name
        self.tls = tls
        self._lookup: PodLookup = pod_lookup or (lambda ns, name: None)
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def pods_for_logs(self, lookup: PodLookup) -> None:
        """Set the kubelet's view of pods on this node: `(namespace, name) -> pod or None`."""
        self._lookup = lookup

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors])
        r = app.router
        r.add_get("/healthz", self._healthz)
        if self._metrics is not None:
            r.add_get("/metrics/resource", resource_metrics_handler(self._metrics))
        r.add_get("/containerLogs/{ns}/{pod}/{container}", self._logs)
        for verb in ("exec", "attach"):
            r.add_route("GET", f"/{verb}/{{ns}}/{{pod}}/{{container}}", self._remote_command)
            r.add_route("POST", f"/{verb}/{{ns}}/{{pod}}/{{container}}", self._remote_command)
        r.add_route("GET", "/portForward/{ns}/{pod}", self._port_forward)
        r.add_route("POST", "/portForward/{ns}/{pod}", self._port_forward)
        return app

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0 = any free port); returns the bound port."""
        self._runner = web.AppRunner(self.app(), handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=self.tls)
        await site.start()
        server = cast(Any, site._server)  # the asyncio Server: its socket tells the port actually bound
        return int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- plumbing ---------------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if self.tls is not None and not self._authorized(request):
            return web.Response(status=403, text="Forbidden: a client certificate of the API server is required\n")
        try:
            return await handler(request)
        except StreamError as e:
            return web.Response(status=e.status, text=e.message)
        except RuntimeError_ as e:
            return web.Response(status=404 if e.not_found else 500, text=e.message)

    @staticmethod
    def _authorized(request: web.Request) -> bool:
        transport = request.transport
        cert = transport.get_extra_info("peercert") if transport is not None else None
        if not cert:
            return False
        groups = [value for rdn in cert.get("subject", ()) for key, value in rdn if key == "organizationName"]
        return ALLOWED_GROUP in groups

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _pod(self, request: web.Request) -> Obj:
        ns, name = request.match_info["ns"], request.match_info["pod"]
        pod = self._lookup(ns, name)
        if pod is None:
            raise StreamError(404, f'pod "{name}" not found in namespace "{ns}"')
        return pod

    async def _containers(self, pod: Obj, container: str) -> list[ContainerStatus]:
        uid = pod["metadata"].get("uid", "")
        found = [c for c in await self.runtime.list_containers()
                 if c.labels.get(LABEL_POD_UID) == uid and c.labels.get(LABEL_CONTAINER_NAME) == container]
        return sorted(found, key=lambda c: c.attempt)

    async def _running_container(self, pod: Obj, container: str) -> ContainerStatus:
        running = [c for c in await self._containers(pod, container) if c.state == ContainerState.RUNNING]
        if not running:
            raise StreamError(400, f'container not found ("{container}")')
        return running[-1]

    # --- logs -------------------------------------------------------------------------------------

    def _log_file(self, pod: Obj, container: str, attempt: int) -> Path:
        md = pod["metadata"]
        return self.log_root / f"{md['namespace']}_{md['name']}_{md.get('uid', '')}" / container / f"{attempt}.log"

    @staticmethod
    def _status_of(pod: Obj, container: str) -> Obj | None:
        status = pod.get("status") or {}
        for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
            for cs in status.get(key) or []:
                if cs.get("name") == container:
                    return cast(Obj, cs)
        return None

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        pod = self._pod(request)
        name, container = pod["metadata"]["name"], request.match_info["container"]
        q = request.query
        opts = _log_options(q)
        previous = _bool(q.get("previous"))
        runtime_attempts = await self._containers(pod, container)
        cs = self._status_of(pod, container)
        # upstream validateContainerLogStatus: which attempt's file, or why there is none
        if cs is not None:
            current = int(cs.get("restartCount") or 0)
            state, last = cs.get("state") or {}, cs.get("lastState") or {}
            if previous:
                if not last.get("terminated"):
                    raise StreamError(400, f'previous terminated container "{container}" in pod "{name}" not found')
                attempt = current - 1
            elif "waiting" in state and not state.get("running") and not state.get("terminated"):
                if not last.get("terminated"):
                    reason = (state.get("waiting") or {}).get("reason") or "ContainerCreating"
                    raise StreamError(400, f'container "{container}" in pod "{name}" is waiting to start: {reason}')
                attempt = current - 1
            else:
                attempt = current
        elif runtime_attempts:
            attempt = runtime_attempts[-1].attempt - (1 if previous else 0)
        else:
            raise StreamError(400, f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
        path = self._log_file(pod, container, attempt)
        if attempt < 0 or not path.exists():
            if previous:
                raise StreamError(400, f'previous terminated container "{container}" in pod "{name}" not found')
            raise StreamError(404, f'log file for container "{container}" in pod "{name}" not found')
        ids = [c.id for c in runtime_attempts if c.attempt == attempt]

        async def still_running() -> bool:
            for cid in ids:
                with contextlib.suppress(RuntimeError_):
                    if (await self.runtime.container_status(cid)).state == ContainerState.RUNNING:
                        return True
            return False

        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):
            async for chunk in stream_log(path, opts, still_running):
                await resp.write(chunk)
        return resp

    # --- exec / attach ---------------------------------------------------------------------------

    async def _remote_command(self, request: web.Request) -> web.StreamResponse:
        pod = self._pod(request)
        verb = request.path.split("/")[1]
        container = request.match_info["container"]
        q = request.query
        tty = _bool(q.get("tty"))
        stdin, stdout = _bool(q.get("stdin") or q.get("input")), _bool(q.get("stdout") or q.get("output"))
        stderr = _bool(q.get("stderr") or q.get("error")) and not tty  # a tty merges stderr into stdout
        target = await self._running_container(pod, container)
        if verb == "exec":
            command = q.getall("command", [])
            if not command:
                raise StreamError(400, "you must specify at least 1 command")
            url = await self.runtime.exec_url(target.id, list(command), stdin, stdout, stderr, tty)
        else:
            url = await self.runtime.attach_url(target.id, stdin, stdout, stderr, tty)
        if _is_spdy(request):
            return await self._spdy_passthrough(request, url)
        if _is_websocket(request):
            return await self._ws_remote_command(request, url, stdin, stdout, stderr, tty)
        raise StreamError(400, "Upgrade request required")

    async def _spdy_passthrough(self, request: web.Request, url: str) -> web.StreamResponse:
        offered = _offered(request, "X-Stream-Protocol-Version")
        reader, writer, status, headers = await dial_spdy(url, offered)
        if status != 101:
            body = await read_body(reader, headers)
            writer.close()
            return web.Response(status=status, body=body, content_type="text/plain")
        client = take_over(request)
        keep = [(n, v) for n, v in headers if n.lower() in ("connection", "upgrade", "x-stream-protocol-version")]
        resp = await answer_upgrade(request, keep)
        await splice(client, request, reader, writer)
        return resp

    async def _ws_remote_command(self, request: web.Request, url: str, stdin: bool, stdout: bool, stderr: bool,
                                 tty: bool) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=wsstream.REMOTE_COMMAND_PROTOCOLS, max_msg_size=0,
                                   autoping=True)
        if not ws.can_prepare(request).ok:
            raise StreamError(400, f"unsupported WebSocket subprotocol; supported: {list(wsstream.REMOTE_COMMAND_PROTOCOLS)}")
        reader, writer, status, headers = await dial_spdy(url, [REMOTE_COMMAND_SPDY])
        if status != 101:
            body = await read_body(reader, headers)
            writer.close()
            raise StreamError(500, body.decode(errors="replace") or f"runtime stream server answered {status}")
        await ws.prepare(request)
        send_lock = asyncio.Lock()

        async def send(channel: int, payload: bytes) -> None:
            async with send_lock:
                await ws.send_bytes(wsstream.encode(channel, payload))

        async def write_upstream(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        session = spdy.Session(write_upstream, client=True)
        pump = asyncio.create_task(_pump(reader, session))
        try:
            error = await session.open_stream([("streamtype", "error")])
            streams: dict[str, spdy.Stream] = {}
            for kind, wanted in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr), ("resize", tty)):
                if wanted:
                    streams[kind] = await session.open_stream([("streamtype", kind)])

            async def relay_out(stream: spdy.Stream, channel: int) -> None:
                while chunk := await stream.read():
                    await send(channel, chunk)

            async def collect(stream: spdy.Stream) -> bytes:
                out = bytearray()
                while chunk := await stream.read():
                    out += chunk
                return bytes(out)

            outputs = [asyncio.create_task(relay_out(streams[k], ch))
                       for k, ch in (("stdout", wsstream.STDOUT), ("stderr", wsstream.STDERR)) if k in streams]
            status_task = asyncio.create_task(collect(error))
            inbound = asyncio.create_task(self._ws_inbound(ws, streams.get("stdin"), streams.get("resize")))
            done_out = asyncio.gather(*outputs, status_task)
            await asyncio.wait([cast(asyncio.Future[Any], done_out), inbound], return_when=asyncio.FIRST_COMPLETED)
            if not done_out.done():
                # the client went away first: stop the command's streams
                inbound_result = inbound.exception() if inbound.done() and not inbound.cancelled() else None
                if inbound_result is not None:
                    log.debug("exec client stream ended: %s", inbound_result)
                done_out.cancel()
                with contextlib.suppress(BaseException):
                    await done_out
            else:
                raw_status = status_task.result()
                inbound.cancel()
                with contextlib.suppress(BaseException):
                    await inbound
                if not raw_status:
                    raw_status = wsstream.status_message(wsstream.success_status())
                with contextlib.suppress(ConnectionError):
                    await send(wsstream.ERROR, raw_status)
        except (ConnectionError, asyncio.IncompleteReadError, spdy.SpdyError) as e:
            with contextlib.suppress(ConnectionError):
                await send(wsstream.ERROR, wsstream.status_message(wsstream.error_status(f"stream error: {e}")))
        finally:
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
            writer.close()
            await ws.close()
        return ws

    @staticmethod
    async def _ws_inbound(ws: web.WebSocketResponse, stdin: spdy.Stream | None, resize: spdy.Stream | None) -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                continue
            data = cast(bytes, msg.data)
            if not data:
                continue
            channel, payload = wsstream.decode(data)
            closed = wsstream.closed_channel(channel, payload) if ws.ws_protocol == wsstream.V5 else None
            if closed == wsstream.STDIN and stdin is not None:
                await stdin.close()
            elif channel == wsstream.STDIN and stdin is not None and payload:
                await stdin.write(payload)
            elif channel == wsstream.RESIZE and resize is not None and payload:
                await resize.write(payload)

    # --- port-forward -----------------------------------------------------------------------------

    async def _pod_address(self, pod: Obj) -> str:
        if (pod.get("spec") or {}).get("hostNetwork"):
            return "127.0.0.1"
        uid = pod["metadata"].get("uid", "")
        with contextlib.suppress(RuntimeError_):
            for sandbox in await self.runtime.list_sandboxes():
                if sandbox.uid == uid and sandbox.state == SandboxState.READY and sandbox.ip:
                    return sandbox.ip
        ip = (pod.get("status") or {}).get("podIP")
        if not ip:
            raise StreamError(400, f'pod "{pod["metadata"]["name"]}" has no IP address: it is not running')
        return str(ip)

    async def _port_forward(self, request: web.Request) -> web.StreamResponse:
        pod = self._pod(request)
        address = await self._pod_address(pod)
        if _is_spdy(request):
            if PORT_FORWARD_SPDY not in _offered(request, "X-Stream-Protocol-Version"):
                raise StreamError(403, f"unable to upgrade: unable to negotiate protocol: client supports "
                                       f"{_offered(request, 'X-Stream-Protocol-Version')}, server supports "
                                       f"[{PORT_FORWARD_SPDY}]")
            return await self._spdy_port_forward(request, pod, address)
        if _is_websocket(request):
            offered = _offered(request, "Sec-WebSocket-Protocol")
            if wsstream.V4 not in offered:
                # kubectl's SPDY-over-WebSocket tunnel: decline, so it falls back to SPDY/3.1
                raise StreamError(400, f"unsupported WebSocket subprotocol {offered}: use SPDY/3.1 or "
                                       f"{wsstream.V4}")
            return await self._ws_port_forward(request, address)
        raise StreamError(400, "Upgrade request required")

    async def _spdy_port_forward(self, request: web.Request, pod: Obj, address: str) -> web.StreamResponse:
        client = take_over(request)
        resp = await answer_upgrade(request, [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
                                              ("X-Stream-Protocol-Version", PORT_FORWARD_SPDY)])

        async def write(data: bytes) -> None:
            await write_raw(request, data)

        session = spdy.Session(write, client=False)
        errors: dict[str, spdy.Stream] = {}
        tasks: set[asyncio.Task[None]] = set()

        async def feed() -> None:
            try:
                while data := await client.read():
                    await session.receive(data)
            except (spdy.SpdyError, ConnectionError) as e:
                log.debug("port-forward session ended: %s", e)
            finally:
                session.connection_lost()

        feeder = asyncio.create_task(feed())
        try:
            while (stream := await session.accept()) is not None:
                await stream.reply()
                kind, request_id = stream.header("streamtype"), stream.header("requestid")
                if kind == "error":
                    errors[request_id] = stream
                    continue
                if kind != "data":
                    await session.send(spdy.RstStream(stream.id, spdy.PROTOCOL_ERROR))
                    continue
                t = asyncio.create_task(self._forward_one(pod, address, stream, errors.pop(request_id, None)))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
        except ConnectionError:
            pass
        finally:
            for t in [*tasks, feeder]:
                t.cancel()
            for t in [*tasks, feeder]:
                with contextlib.suppress(BaseException):
                    await t
        return resp

    async def _forward_one(self, pod: Obj, address: str, data: spdy.Stream, error: spdy.Stream | None) -> None:
        port_text = data.header("port")
        try:
            port = int(port_text)
            reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), DIAL_TIMEOUT)
        except (ValueError, OSError, TimeoutError) as e:
            message = (f"error forwarding port {port_text} to pod {pod['metadata'].get('uid', '')}, "
                       f"uid : failed to connect to {address}:{port_text}: {e}")
            with contextlib.suppress(ConnectionError):
                if error is not None:
                    await error.write(message.encode())
                    await error.close()
                await data.close()
            return

        async def up() -> None:
            while chunk := await data.read():
                writer.write(chunk)
                await writer.drain()
            with contextlib.suppress(OSError):
                writer.write_eof()

        async def down() -> None:
            while chunk := await reader.read(65536):
                await data.write(chunk)

        up_task = asyncio.create_task(up())
        try:
            with contextlib.suppress(ConnectionError, OSError):
                await down()
            with contextlib.suppress(ConnectionError):
                await data.close()
                if error is not None:
                    await error.close()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(up_task, 5)
        finally:
            up_task.cancel()
            writer.close()

    async def _ws_port_forward(self, request: web.Request, address: str) -> web.StreamResponse:
        try:
            ports = wsstream.parse_ports(request.query.getall("ports", []))
        except wsstream.ChannelError as e:
            raise StreamError(400, str(e)) from None
        ws = web.WebSocketResponse(protocols=wsstream.PORT_FORWARD_PROTOCOLS, max_msg_size=0)
        await ws.prepare(request)
        send_lock = asyncio.Lock()

        async def send(channel: int, payload: bytes) -> None:
            async with send_lock:
                await ws.send_bytes(wsstream.encode(channel, payload))

        writers: dict[int, asyncio.StreamWriter] = {}
        readers: list[asyncio.Task[None]] = []

        async def down(index: int, reader: asyncio.StreamReader) -> None:
            data_ch, _ = wsstream.port_channels(index)
            with contextlib.suppress(ConnectionError, OSError):
                while chunk := await reader.read(65536):
                    await send(data_ch, chunk)

        for index, port in enumerate(ports):
            data_ch, err_ch = wsstream.port_channels(index)
            await send(data_ch, wsstream.port_prefix(port))
            await send(err_ch, wsstream.port_prefix(port))
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), DIAL_TIMEOUT)
            except (OSError, TimeoutError) as e:
                await send(err_ch, f"error forwarding port {port} to {address}: {e}".encode())
                continue
            writers[index] = writer
            readers.append(asyncio.create_task(down(index, reader)))

        async def inbound() -> None:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY or not msg.data:
                    continue
                channel, payload = wsstream.decode(cast(bytes, msg.data))
                w = writers.get(channel // 2)
                if channel % 2 == 0 and w is not None and payload:
                    w.write(payload)
                    await w.drain()

        in_task = asyncio.create_task(inbound())
        try:
            if readers:
                everyone = cast(asyncio.Future[Any], asyncio.gather(*readers))
                await asyncio.wait([everyone, in_task], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in [*readers, in_task]:
                t.cancel()
            for t in [*readers, in_task]:
                with contextlib.suppress(BaseException):
                    await t
            for w in writers.values():
                w.close()
            await ws.close()
        return ws


async def _pump(reader: asyncio.StreamReader, session: spdy.Session) -> None:
    try:
        while data := await reader.read(65536):
            await session.receive(data)
    except (ConnectionError, spdy.SpdyError) as e:
        log.debug("runtime stream ended: %s", e)
    finally:
        session.connection_lost()


def _log_options(q: Any) -> LogOptions:
    """PodLogOptions from the query, validated as the API server would (400 on nonsense)."""

    def number(name: str) -> int | None:
        raw = q.get(name)
        if raw in (None, ""):
            return None
        try:
            value = int(raw)
        except ValueError:
            raise StreamError(400, f"invalid {name}: {raw!r}") from None
        if value < 0 or (name == "limitBytes" and value == 0):
            raise StreamError(400, f"{name}: Invalid value: {value}: must be greater than 0")
        return value

    since_ns: int | None = None
    if q.get("sinceTime"):
        since_ns = parse_timestamp(q["sinceTime"].encode())
        if since_ns is None:
            raise StreamError(400, f"invalid sinceTime: {q['sinceTime']!r}")
    seconds = number("sinceSeconds")
    if seconds is not None:
        now = dt.datetime.now(dt.UTC).timestamp()
        since_ns = int((now - seconds) * 1_000_000_000)
    return LogOptions(tail_lines=number("tailLines"), since_ns=since_ns, timestamps=_bool(q.get("timestamps")),
                      limit_bytes=number("limitBytes"), follow=_bool(q.get("follow")))
