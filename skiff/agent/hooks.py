"""Container lifecycle hooks (postStart, preStop), as upstream's `pkg/kubelet/lifecycle/handlers.go`.

`run_handler` runs one handler and returns None on success or upstream's error text, which the kubelet puts
in a `FailedPostStartHook` / `FailedPreStopHook` event (and, for postStart, kills the container). Unlike
probes, an httpGet hook fails only when the request cannot be made: the response status is not checked, as
upstream. A `tcpSocket` handler is deprecated and not supported for hooks: it is a no-op with a warning.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from skiff.agent.containers import pod_full_name
from skiff.agent.probes import KUBE_VERSION, ProbeError, dial_error, resolve_port
from skiff.agent.runtime.interface import Runtime, RuntimeError_
from skiff.api.meta import Obj

log = logging.getLogger("skiff.agent.hooks")

HOOK_USER_AGENT = f"kube-lifecycle/{KUBE_VERSION}"


def _go_list(items: list[str]) -> str:
    """A string slice as Go's `%v` prints it (`[sh -c exit 1]`)."""
    return "[" + " ".join(items) + "]"


async def run_handler(runtime: Runtime, pod: Obj, container: Obj, container_id: str, handler: Obj,
                      pod_ip: str, timeout_seconds: float) -> str | None:
    """Run a lifecycle handler in/against the container; None = success, else the error message. The whole
    handler is bounded by `timeout_seconds` (the grace period for preStop)."""
    name = str(container.get("name", ""))
    who = f'for Container "{name}" in Pod "{pod_full_name(pod)}"'
    timeout = max(float(timeout_seconds), 0.0)
    if handler.get("exec"):
        command = [str(c) for c in handler["exec"].get("command") or []]
        error, output = await _exec(runtime, container_id, command, timeout)
        if error is None:
            return None
        return f"Exec lifecycle hook ({_go_list(command)}) {who} failed - error: {error}, message: \"{output}\""
    if handler.get("httpGet"):
        action = handler["httpGet"]
        error = await _http(action, container, pod_ip, timeout)
        if error is None:
            return None
        return f"HTTP lifecycle hook ({action.get('path', '')}) {who} failed - error: {error}"
    if handler.get("sleep"):
        seconds = int(handler["sleep"].get("seconds") or 0)
        if seconds <= timeout:
            await asyncio.sleep(seconds)
            return None
        await asyncio.sleep(timeout)
        return (f"Sleep lifecycle hook ({seconds}) {who} failed - error: "
                "container terminated before sleep hook finished")
    if handler.get("tcpSocket"):
        log.warning("tcpSocket lifecycle hook %s is deprecated and not supported: skipped", who)
        return None
    return f"Cannot run handler: invalid handler: {handler}"


async def _exec(runtime: Runtime, container_id: str, command: list[str], timeout: float) -> tuple[str | None, str]:
    """(error, output) of an exec hook: the runtime's `command '...' exited with N: <stderr>` wording."""
    try:
        res = await asyncio.wait_for(runtime.exec_sync(container_id, command, max(1, int(timeout))), timeout + 5)
    except TimeoutError:
        return f"command '{' '.join(command)}' timed out after {int(timeout)}s", ""
    except RuntimeError_ as e:
        return e.message, ""
    output = (res.stdout + res.stderr).decode(errors="replace")
    if res.exit_code != 0:
        return (f"command '{' '.join(command)}' exited with {res.exit_code}: "
                f"{res.stderr.decode(errors='replace')}", output)
    return None, output


async def _http(action: Obj, container: Obj, pod_ip: str, timeout: float) -> str | None:
    """A GET to the hook's URL; any response is success. An HTTPS hook answered in plain HTTP is retried over
    HTTP, as upstream's fallback does."""
    try:
        port = resolve_port(action.get("port"), container)
    except ProbeError as e:
        return str(e)
    host = str(action.get("host") or pod_ip)
    if not host:
        return "failed to find networking container: no pod IP"
    scheme = str(action.get("scheme") or "HTTP").lower()
    path = str(action.get("path") or "")
    if path and not path.startswith("/"):
        path = "/" + path
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    headers = {str(h.get("name", "")): str(h.get("value", "")) for h in action.get("httpHeaders") or []}
    headers.setdefault("User-Agent", HOOK_USER_AGENT)
    headers.setdefault("Accept", "*/*")

    async def get(url: str) -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, ssl=False)) as session, \
                session.get(url, headers=headers, ssl=False) as resp:
            await resp.content.read(10 * 1024)

    url = f"{scheme}://{hostport}{path}"
    try:
        async with asyncio.timeout(timeout):
            try:
                await get(url)
            except aiohttp.ClientError as e:
                if scheme != "https" or not _tls_to_plain_http(e):
                    raise
                await get(f"http://{hostport}{path}")
                log.warning("request to HTTPS lifecycle hook %s got HTTP response, retry with HTTP succeeded", hostport)
    except TimeoutError:
        return f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    except aiohttp.ClientConnectorError as e:
        return f'Get "{url}": {dial_error(hostport, e.os_error)}'
    except aiohttp.ClientError as e:
        return f'Get "{url}": {e}'
    return None


def _tls_to_plain_http(err: aiohttp.ClientError) -> bool:
    """A TLS handshake answered by a plain-HTTP server (OpenSSL's "wrong version number" / "record layer")."""
    text = str(err).lower()
    return isinstance(err, aiohttp.ClientSSLError | aiohttp.ClientOSError) and (
        "wrong version number" in text or "record layer failure" in text or "packet length too long" in text)
