"""Container probes: startup, liveness and readiness workers, as upstream's `pkg/kubelet/prober`.

One worker per (pod, container, probe kind) of a running container. A worker probes immediately, then every
`periodSeconds`; nothing is probed before `initialDelaySeconds` have passed since the worker first saw the
container running (upstream measures from the container's start; the worker is created within a sync of it).
Liveness and readiness wait until the startup probe (if any) has succeeded; the startup worker stops probing
then. A result is published only after `successThreshold` / `failureThreshold` equal results in a row; a
published liveness or startup failure puts the worker on hold (no more probes of that container) and
`liveness_failed` tells the kubelet to restart it. Every failed probe records an `Unhealthy` event with
upstream's text (`Readiness probe failed: HTTP probe failed with statuscode: 503`).

The handlers (`pkg/probe/{http,tcp,exec,grpc}`) are plain functions, shared with lifecycle hooks (hooks.py).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc  # type: ignore[import-untyped]

from skiff.agent.runtime.interface import ContainerStatus, Runtime, RuntimeError_
from skiff.api.meta import Obj
from skiff.client.events import EventBroadcaster

log = logging.getLogger("skiff.agent.probes")

KUBE_VERSION = "1.32"
PROBE_USER_AGENT = f"kube-probe/{KUBE_VERSION}"
MAX_RESPONSE_BODY = 10 * 1024  # upstream reads at most 10 KiB of a probe's response
MAX_REDIRECTS = 10
COMPONENT = "kubelet"

SUCCESS, FAILURE, WARNING = "Success", "Failure", "Warning"
KINDS = ("startup", "liveness", "readiness")
_SPEC_FIELD = {"startup": "startupProbe", "liveness": "livenessProbe", "readiness": "readinessProbe"}
_GRPC_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


class ProbeError(Exception):
    """The probe could not be run at all (e.g. a port name the container does not declare): upstream throws
    such a result away instead of counting it."""


@dataclass
class ProbeResult:
    result: str  # Success | Failure | Warning (a Warning counts as a success, with a ProbeWarning event)
    output: str = ""


def _duration(seconds: float) -> str:
    """A Go `time.Duration` string for whole or fractional seconds (`1s`, `1.5s`)."""
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{seconds:g}s"


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def resolve_port(port: Any, container: Obj) -> int:
    """A probe's port: a number, or the name of one of the container's ports (`probe.ResolveContainerPort`)."""
    value: int | None = None
    if isinstance(port, int) and not isinstance(port, bool):
        value = port
    elif isinstance(port, str):
        for p in container.get("ports") or []:
            if p.get("name") == port:
                value = int(p.get("containerPort") or 0)
                break
        else:
            if not port.isdigit():
                raise ProbeError(f"couldn't find port: {port} in {container.get('name', '')}")
            value = int(port)
    if value is None or not 0 < value < 65536:
        raise ProbeError(f"invalid port number: {value if value is not None else port}")
    return value


def dial_error(addr: str, exc: BaseException) -> str:
    """Go's dialer wording, which users grep for in events (`dial tcp 10.0.0.5:80: connect: connection refused`)."""
    code = getattr(exc, "errno", None)
    if code == errno.ECONNREFUSED:
        return f"dial tcp {addr}: connect: connection refused"
    if code == errno.EHOSTUNREACH:
        return f"dial tcp {addr}: connect: no route to host"
    if isinstance(exc, TimeoutError):
        return f"dial tcp {addr}: i/o timeout"
    return f"dial tcp {addr}: {getattr(exc, 'strerror', None) or exc}"


# ---------------------------------------------------------------------------------------------------- handlers


async def http_get(action: Obj, container: Obj, pod_ip: str, timeout: float, *, user_agent: str = PROBE_USER_AGENT,
                   session: aiohttp.ClientSession | None = None) -> ProbeResult:
    """An httpGet probe (`pkg/probe/http`): 200-399 succeeds; redirects are followed only to the same host
    (a redirect elsewhere ends the chain and is a Warning, as a 3xx answer is); TLS is not verified. Raises
    ProbeError when the port cannot be resolved."""
    scheme = str(action.get("scheme") or "HTTP").lower()
    host = str(action.get("host") or pod_ip)
    port = resolve_port(action.get("port"), container)
    path = str(action.get("path") or "")
    if path and not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{_join_host_port(host, port)}{path}"
    headers: dict[str, str] = {}
    for h in action.get("httpHeaders") or []:
        headers[str(h.get("name", ""))] = str(h.get("value", ""))
    lower = {k.lower() for k in headers}
    if "user-agent" not in lower:
        headers["User-Agent"] = user_agent
    if "accept" not in lower:
        headers["Accept"] = "*/*"
    own = session is None
    if session is None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, ssl=False))
    try:
        return await asyncio.wait_for(_http_chain(session, url, headers), timeout)
    except TimeoutError:
        return ProbeResult(FAILURE, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)')
    finally:
        if own:
            await session.close()


async def _http_chain(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> ProbeResult:
    first_host = urllib.parse.urlsplit(url).hostname
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        try:
            async with session.get(current, headers=headers, allow_redirects=False, ssl=False) as resp:
                body = (await resp.content.read(MAX_RESPONSE_BODY)).decode(errors="replace")
                status = resp.status
                location = resp.headers.get("Location", "")
        except aiohttp.ClientConnectorError as e:
            return ProbeResult(FAILURE, f'Get "{current}": {dial_error(f"{e.host}:{e.port}", e.os_error)}')
        except aiohttp.ClientError as e:
            return ProbeResult(FAILURE, f'Get "{current}": {e}')
        if status in (301, 302, 303, 307, 308) and location:
            target = urllib.parse.urljoin(current, location)
            if urllib.parse.urlsplit(target).hostname == first_host:
                if hop == MAX_REDIRECTS - 1:
                    return ProbeResult(FAILURE, f'Get "{target}": stopped after {MAX_REDIRECTS} redirects')
                current = target
                continue
        if 200 <= status < 400:
            if status >= 300:
                return ProbeResult(WARNING, f"Probe terminated redirects, Response body: {body}")
            return ProbeResult(SUCCESS, body)
        return ProbeResult(FAILURE, f"HTTP probe failed with statuscode: {status}")
    raise AssertionError("unreachable: the loop returns on its last hop")


async def tcp_socket(host: str, port: int, timeout: float) -> ProbeResult:
    """A tcpSocket probe (`pkg/probe/tcp`): success when a connection opens within the timeout."""
    addr = _join_host_port(host, port)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as e:
        return ProbeResult(FAILURE, dial_error(addr, e))
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return ProbeResult(SUCCESS)


def is_timeout(err: RuntimeError_) -> bool:
    text = f"{err.reason} {err.message}".lower()
    return any(w in text for w in ("deadline", "timeout", "timed out"))


async def exec_command(runtime: Runtime, container_id: str, command: list[str], timeout: float) -> ProbeResult:
    """An exec probe (`pkg/probe/exec`) through the runtime's ExecSync: exit 0 succeeds; the output (stdout
    then stderr) is the message. A timeout is a failure `command "..." timed out`; other runtime errors raise
    ProbeError."""
    timed_out = ProbeResult(FAILURE, f'command "{" ".join(command)}" timed out')
    try:
        # The runtime enforces the timeout; the margin only guards against a runtime that never answers.
        res = await asyncio.wait_for(runtime.exec_sync(container_id, command, max(1, int(timeout))), timeout + 5)
    except TimeoutError:
        return timed_out
    except RuntimeError_ as e:
        if is_timeout(e):
            return timed_out
        raise ProbeError(e.message) from e
    output = (res.stdout + res.stderr).decode(errors="replace")
    return ProbeResult(SUCCESS if res.exit_code == 0 else FAILURE, output)


def _health_request(service: str) -> bytes:
    """`grpc.health.v1.HealthCheckRequest{service}`: field 1, length-delimited."""
    data = service.encode()
    if not data:
        return b""
    n, prefix = len(data), bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        prefix.append(byte | (0x80 if n else 0))
        if not n:
            break
    return b"\x0a" + bytes(prefix) + data


def _health_status(data: bytes) -> int:
    """`HealthCheckResponse.status` (field 1, varint; 0 = UNKNOWN when absent); other fields are skipped."""
    i = 0
    status = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while i < len(data):
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        return value

    while i < len(data):
        tag = varint()
        wire = tag & 7
        if wire == 0:
            v = varint()
            if tag >> 3 == 1:
                status = v
        elif wire == 2:
            i += varint()
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            break
    return status


async def grpc_health(host: str, port: int, service: str, timeout: float) -> ProbeResult:
    """A grpc probe (`pkg/probe/grpc`): `grpc.health.v1.Health/Check`, SERVING succeeds; plaintext only."""
    addr = _join_host_port(host, port)
    async with grpc.aio.insecure_channel(addr, options=[("grpc.primary_user_agent", PROBE_USER_AGENT)]) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout)
        except TimeoutError:
            return ProbeResult(FAILURE, f'timeout: failed to connect service "{addr}" within {_duration(timeout)}: '
                                        "context deadline exceeded")
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        try:
            reply = await check(_health_request(service), timeout=timeout)
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                return ProbeResult(FAILURE, "this server does not implement the grpc health protocol "
                                            f"(grpc.health.v1.Health): {e.details()}")
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return ProbeResult(FAILURE, f"timeout: health rpc did not complete within {_duration(timeout)}")
            return ProbeResult(FAILURE, f"error: health rpc probe failed: rpc error: code = {_grpc_code(e.code())} "
                                        f"desc = {e.details()}")
    status = _health_status(bytes(reply))
    if status != 1:
        return ProbeResult(FAILURE, f'service unhealthy (responded with "{_GRPC_STATUS.get(status, str(status))}")')
    return ProbeResult(SUCCESS, "service healthy")


def _grpc_code(code: Any) -> str:
    """Go's code name (`Unavailable`) from Python's (`UNAVAILABLE`)."""
    return "".join(part.capitalize() for part in str(code.name).split("_"))


async def run_probe(runtime: Runtime, probe: Obj, container: Obj, container_id: str, pod_ip: str, *,
                    session: aiohttp.ClientSession | None = None) -> ProbeResult:
    """Run one probe of a container once, whatever its handler; ProbeError when it cannot run."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    if probe.get("exec"):
        return await exec_command(runtime, container_id, [str(c) for c in probe["exec"].get("command") or []], timeout)
    if probe.get("httpGet"):
        return await http_get(probe["httpGet"], container, pod_ip, timeout, session=session)
    if probe.get("tcpSocket"):
        action = probe["tcpSocket"]
        return await tcp_socket(str(action.get("host") or pod_ip), resolve_port(action.get("port"), container), timeout)
    if probe.get("grpc"):
        action = probe["grpc"]
        return await grpc_health(pod_ip, resolve_port(action.get("port"), container), str(action.get("service") or ""),
                                 timeout)
    raise ProbeError("missing probe handler")


# ---------------------------------------------------------------------------------------------------- thresholds


@dataclass
class ProbeSpec:
    """A probe's timing with the API defaults."""

    initial_delay: float = 0.0
    period: float = 10.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def of(cls, probe: Obj) -> ProbeSpec:
        return cls(initial_delay=float(probe.get("initialDelaySeconds") or 0),
                   period=float(probe.get("periodSeconds") or 10),
                   success_threshold=int(probe.get("successThreshold") or 1),
                   failure_threshold=int(probe.get("failureThreshold") or 3))


@dataclass
class Thresholds:
    """The worker's counting (`worker.doProbe`): a result is published once it was seen `threshold` times in a
    row. `published` starts at the kind's initial value (readiness: failure; liveness: success; startup:
    unknown = None)."""

    success_threshold: int
    failure_threshold: int
    published: bool | None
    last: bool | None = None
    run: int = 0

    def observe(self, ok: bool) -> bool:
        """Count one probe result; True when the published result changed."""
        if self.last == ok:
            self.run += 1
        else:
            self.last, self.run = ok, 1
        needed = self.success_threshold if ok else self.failure_threshold
        if self.run < needed:
            return False
        changed = self.published != ok
        self.published = ok
        return changed


# ---------------------------------------------------------------------------------------------------- manager


@dataclass
class _Worker:
    pod_uid: str
    container: str
    kind: str
    container_id: str
    seen_at: float
    spec: ProbeSpec
    counts: Thresholds
    on_hold: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class ProbeManager:
    """Runs the probe workers of the node's pods and holds their results for the kubelet's status.

    `on_change(pod_uid)` is called (synchronously; it must not block) whenever a published result changes, so
    the kubelet resyncs the pod. `sleep` is the worker's pause between probes (inject a virtual one in tests,
    with a matching `clock`)."""

    def __init__(self, runtime: Runtime, on_change: Callable[[str], None], events: EventBroadcaster,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.runtime = runtime
        self.on_change = on_change
        self.events = events
        self.clock = clock
        self.sleep = sleep
        self._workers: dict[tuple[str, str, str], _Worker] = {}
        self._pods: dict[str, Obj] = {}
        self._pod_ips: dict[str, str] = {}
        self._liveness_failed: dict[str, set[str]] = {}
        self._session: aiohttp.ClientSession | None = None

    # -- kubelet-facing

    def update_pod(self, pod: Obj, pod_ip: str, running: Mapping[str, ContainerStatus]) -> None:
        """Make the workers match the pod's running containers (`running`: container name → its status, for
        the running ones only): one worker per (container, probe kind) with a probe;
        a new container id (a restart) gets a fresh worker, containers no longer running lose theirs. During
        deletion, liveness and startup probing stops (upstream: graceful shutdown must not restart)."""
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        self._pods[uid] = pod
        self._pod_ips[uid] = pod_ip
        deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
        wanted: set[tuple[str, str, str]] = set()
        for container in _probed_containers(pod):
            name = str(container.get("name", ""))
            status = running.get(name)
            if status is None:
                continue
            for kind in KINDS:
                probe = container.get(_SPEC_FIELD[kind])
                if not probe or (deleting and kind != "readiness"):
                    continue
                key = (uid, name, kind)
                wanted.add(key)
                current = self._workers.get(key)
                if current is not None and current.container_id == status.id:
                    continue
                if current is not None:
                    self._stop(current)
                self._start(key, status.id, ProbeSpec.of(probe))
        for key in [k for k in self._workers if k[0] == uid and k not in wanted]:
            self._stop(self._workers.pop(key))
        live_ids = {s.id for s in running.values()}
        failed = self._liveness_failed.get(uid)
        if failed is not None:
            failed &= live_ids
            if deleting:
                failed.clear()

    def remove_pod(self, pod_uid: str) -> None:
        for key in [k for k in self._workers if k[0] == pod_uid]:
            self._stop(self._workers.pop(key))
        self._pods.pop(pod_uid, None)
        self._pod_ips.pop(pod_uid, None)
        self._liveness_failed.pop(pod_uid, None)

    def ready(self, pod_uid: str, container: str) -> bool:
        """The readiness result; True for a container without a readiness probe once it has started, False
        for a probed container that is not running (no worker). A pod the manager does not track (never
        updated, or removed) answers as a container without probes: the kubelet checks running state itself."""
        spec = self._container_spec(pod_uid, container)
        if spec is None or not spec.get("readinessProbe"):
            return self.started(pod_uid, container)
        w = self._workers.get((pod_uid, container, "readiness"))
        return w is not None and w.counts.published is True and self.started(pod_uid, container)

    def started(self, pod_uid: str, container: str) -> bool:
        """Whether the startup probe has passed (True without one)."""
        spec = self._container_spec(pod_uid, container)
        if spec is None or not spec.get("startupProbe"):
            return True
        w = self._workers.get((pod_uid, container, "startup"))
        return w is not None and w.counts.published is True

    def liveness_failed(self, pod_uid: str, container_id: str) -> bool:
        """The container failed its liveness (or startup) probe: the kubelet kills and restarts it."""
        return container_id in self._liveness_failed.get(pod_uid, set())

    async def close(self) -> None:
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        for key in list(self._workers):
            self._stop(self._workers.pop(key), notify=False)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- workers

    def _container_spec(self, pod_uid: str, name: str) -> Obj | None:
        pod = self._pods.get(pod_uid)
        if pod is None:
            return None
        for c in _probed_containers(pod):
            if c.get("name") == name:
                return c
        return None

    def _start(self, key: tuple[str, str, str], container_id: str, spec: ProbeSpec) -> None:
        uid, name, kind = key
        initial = {"readiness": False, "liveness": True, "startup": None}[kind]
        w = _Worker(uid, name, kind, container_id, self.clock(), spec,
                    Thresholds(spec.success_threshold, spec.failure_threshold, initial))
        self._workers[key] = w
        w.task = asyncio.get_running_loop().create_task(self._loop(w), name=f"probe-{kind}-{name}-{uid}")

    def _stop(self, w: _Worker, notify: bool = True) -> None:
        """Cancel a worker; a container that was ready (or started) no longer is, so the kubelet resyncs."""
        if w.task is not None and not w.task.done():
            w.task.cancel()
        if notify and w.kind in ("readiness", "startup") and w.counts.published:
            self.on_change(w.pod_uid)

    async def _loop(self, w: _Worker) -> None:
        while True:
            try:
                await self.step(w)
            except asyncio.CancelledError:
                raise
            except Exception:  # a worker must outlive one broken probe
                log.exception("%s probe of %s/%s failed", w.kind, w.pod_uid, w.container)
            await self.sleep(w.spec.period)

    async def step(self, w: _Worker) -> None:
        """One tick of a worker (`worker.doProbe`)."""
        if w.on_hold or self.clock() - w.seen_at < w.spec.initial_delay:
            return
        started = self.started(w.pod_uid, w.container)
        if w.kind == "startup" and started:
            return
        if w.kind != "startup" and not started:
            return
        pod, container = self._pods.get(w.pod_uid), self._container_spec(w.pod_uid, w.container)
        if pod is None or container is None:
            return
        probe = container[_SPEC_FIELD[w.kind]]
        title = w.kind.capitalize()
        try:
            result = await run_probe(self.runtime, probe, container, w.container_id, self._pod_ips.get(w.pod_uid, ""),
                                     session=self._http())
        except ProbeError as e:
            await self._event(pod, "Unhealthy", f"{title} probe errored and resulted in Unknown state: {e}")
            return
        if self._workers.get((w.pod_uid, w.container, w.kind)) is not w:
            return  # replaced or stopped while probing
        if result.result == FAILURE:
            await self._event(pod, "Unhealthy", f"{title} probe failed: {result.output}")
        elif result.result == WARNING:
            await self._event(pod, "ProbeWarning", f"{title} probe warning: {result.output}")
        if not w.counts.observe(result.result != FAILURE):
            return
        if w.kind in ("liveness", "startup") and w.counts.published is False:
            w.on_hold = True
            w.counts.run = 0
            self._liveness_failed.setdefault(w.pod_uid, set()).add(w.container_id)
        self.on_change(w.pod_uid)

    def _http(self) -> aiohttp.ClientSession:
        """One session for every httpGet probe; no keep-alive (upstream disables it so each probe really
        connects)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, ssl=False))
        return self._session

    async def _event(self, pod: Obj, reason: str, message: str) -> None:
        obj = pod if pod.get("kind") else {**pod, "kind": "Pod", "apiVersion": "v1"}
        await self.events.record(obj, "Warning", reason, message, COMPONENT)


def _probed_containers(pod: Obj) -> list[Obj]:
    """Regular containers and restartable init containers (sidecars), the ones upstream probes."""
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    return [*sidecars, *(spec.get("containers") or [])]
