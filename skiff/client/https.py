"""The HTTPS client: the `Client` contract over the Kubernetes REST API (agents, sim-nodes, tools).

Paths as upstream's REST mapping: `/api/v1` for the core group, `/apis/<group>/<version>` otherwise,
`/namespaces/<ns>` inserted when a namespace is given ("" = cluster scope or all namespaces). Error
responses carrying a `Status` become `ApiError(code, reason, message, details)`, exactly what the
in-process client raises. Watches are newline-delimited JSON events (`watch=1`,
`allowWatchBookmarks=true`, a server-side `timeoutSeconds` of 5 to 10 minutes as client-go's reflector).

Objects returned are freshly decoded and owned by the caller; inputs are never mutated.
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import yaml

from skiff.api.errors import ApiError
from skiff.client.interface import DeleteOptions, ListOptions, Obj, Patch, Resource, WatchEvent

USER_AGENT = "skiff/0.1"  # the server's default fieldManager is the part before "/" ("skiff"), as in-process
PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}
MIN_WATCH_TIMEOUT = 300  # client-go reflector: minWatchTimeout · (1 + rand)


class KubeconfigError(Exception):
    pass


def resource_path(res: Resource, namespace: str = "", name: str = "", subresource: str = "") -> str:
    """`/api/v1/namespaces/ns/pods/name/status` and friends (pure)."""
    base = f"/apis/{res.group}/{res.version}" if res.group else f"/api/{res.version}"
    path = base + (f"/namespaces/{quote(namespace, safe='')}" if namespace else "") + f"/{res.plural}"
    if name:
        path += f"/{quote(name, safe='')}"
        if subresource:
            path += f"/{subresource}"
    return path


def list_query(opts: ListOptions | None) -> dict[str, str]:
    opts = opts or ListOptions()
    q: dict[str, str] = {}
    if opts.label_selector:
        q["labelSelector"] = opts.label_selector
    if opts.field_selector:
        q["fieldSelector"] = opts.field_selector
    if opts.resource_version:
        q["resourceVersion"] = opts.resource_version
    if opts.limit:
        q["limit"] = str(opts.limit)
    if opts.continue_token:
        q["continue"] = opts.continue_token
    return q


def error_from_response(code: int, body: bytes) -> ApiError:
    """The ApiError of an error response: its Status when there is one, else a generic reason for the code."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and data.get("kind") == "Status":
        return ApiError(
            int(data.get("code") or code),
            str(data.get("reason") or ""),
            str(data.get("message") or ""),
            data.get("details"),
        )
    reasons = {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        405: "MethodNotAllowed",
        409: "Conflict",
        410: "Expired",
        415: "UnsupportedMediaType",
        422: "Invalid",
        429: "TooManyRequests",
        500: "InternalError",
        503: "ServiceUnavailable",
        504: "Timeout",
    }
    text = body.decode(errors="replace").strip()
    return ApiError(code, reasons.get(code, "Unknown"), text or f"the server responded with status {code}")


def _pick(items: Any, name: str, key: str) -> Mapping[str, Any]:
    for item in items or []:
        if item.get("name") == name:
            value = item.get(key)
            if isinstance(value, dict):
                return value
    raise KubeconfigError(f"kubeconfig has no {key} named {name!r}")


class HTTPSClient:
    """`Client` over HTTPS. Build with `from_kubeconfig`; `close()` ends its connections and watches."""

    def __init__(self, server: str, ssl_context: ssl.SSLContext, token: str = "") -> None:
        self.server = server.rstrip("/")
        self.ssl_context = ssl_context
        self.token = token
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str], context: str = "") -> HTTPSClient:
        """Server URL, CA and credentials (client certificate and/or bearer token) of a kubeconfig context."""
        doc = yaml.safe_load(Path(path).read_text())
        if not isinstance(doc, dict):
            raise KubeconfigError(f"{path}: not a kubeconfig")
        ctx_name = context or doc.get("current-context") or ""
        ctx = _pick(doc.get("contexts"), ctx_name, "context")
        cluster = _pick(doc.get("clusters"), ctx.get("cluster", ""), "cluster")
        user = _pick(doc.get("users"), ctx.get("user", ""), "user")
        base = Path(path).parent
        sslctx = ssl.create_default_context()
        if cluster.get("certificate-authority-data"):
            sslctx.load_verify_locations(
                cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
            )
        elif cluster.get("certificate-authority"):
            sslctx.load_verify_locations(cafile=str(base / cluster["certificate-authority"]))
        if cluster.get("insecure-skip-tls-verify"):
            sslctx.check_hostname = False
            sslctx.verify_mode = ssl.CERT_NONE
        if user.get("client-certificate-data") and user.get("client-key-data"):
            _load_cert_chain_data(
                sslctx,
                base64.b64decode(user["client-certificate-data"]),
                base64.b64decode(user["client-key-data"]),
            )
        elif user.get("client-certificate") and user.get("client-key"):
            sslctx.load_cert_chain(str(base / user["client-certificate"]), str(base / user["client-key"]))
        token = str(user.get("token") or "")
        if not token and user.get("tokenFile"):
            token = (base / user["tokenFile"]).read_text().strip()
        server = cluster.get("server")
        if not server:
            raise KubeconfigError(f"{path}: cluster {ctx.get('cluster')!r} has no server")
        return cls(str(server), sslctx, token)

    # --- transport -------------------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            self._session = aiohttp.ClientSession(
                self.server,
                headers=headers,
                connector=aiohttp.TCPConnector(ssl=self.ssl_context, limit=0),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            )
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Obj:
        data = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        async with self._http().request(
            method,
            path,
            params=query or None,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=60),
        ) as resp:
            raw = await resp.read()
            if resp.status >= 400:
                raise error_from_response(resp.status, raw)
            out = orjson.loads(raw)
            if not isinstance(out, dict):
                raise ApiError(500, "InternalError", f"unexpected response to {method} {path}")
            return out

    @staticmethod
    def _manager(field_manager: str) -> dict[str, str]:
        return {"fieldManager": field_manager} if field_manager else {}

    # --- Client ----------------------------------------------------------------------------------------

    async def get(self, res: Resource, namespace: str, name: str) -> Obj:
        return await self._request("GET", resource_path(res, namespace, name))

    async def list(self, res: Resource, namespace: str = "", opts: ListOptions | None = None) -> Obj:
        return await self._request("GET", resource_path(res, namespace), query=list_query(opts))

    async def watch(
        self, res: Resource, namespace: str = "", opts: ListOptions | None = None
    ) -> AsyncIterator[WatchEvent]:
        """Events after `opts.resource_version`; ends when the server's timeoutSeconds expires or on close().
        An error before the stream starts (e.g. 410 for a compacted resourceVersion) raises ApiError."""
        q = list_query(opts)
        q.pop("limit", None)
        q.pop("continue", None)
        q.update(
            watch="1",
            allowWatchBookmarks="true",
            timeoutSeconds=str(int(MIN_WATCH_TIMEOUT * (1 + random.random()))),
        )
        async with self._http().get(
            resource_path(res, namespace),
            params=q,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        ) as resp:
            if resp.status >= 400:
                raise error_from_response(resp.status, await resp.read())
            buf = b""
            try:
                async for chunk in resp.content.iter_any():
                    buf += chunk
                    while True:
                        nl = buf.find(b"\n")
                        if nl < 0:
                            break
                        line, buf = buf[:nl], buf[nl + 1 :]
                        if line.strip():
                            yield _event(line)
            except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
                return  # the stream ended uncleanly: as after a timeout, the caller watches again
            if buf.strip():
                yield _event(buf)

    async def create(
        self,
        res: Resource,
        namespace: str,
        obj: Obj,
        *,
        subresource: str = "",
        name: str = "",
        field_manager: str = "",
    ) -> Obj:
        if subresource:
            name = name or str((obj.get("metadata") or {}).get("name") or "")
            path = resource_path(res, namespace, name, subresource)
        else:
            path = resource_path(res, namespace)
        return await self._request("POST", path, query=self._manager(field_manager), body=obj)

    async def update(
        self, res: Resource, namespace: str, obj: Obj, *, subresource: str = "", field_manager: str = ""
    ) -> Obj:
        name = str((obj.get("metadata") or {}).get("name") or "")
        if not name:
            raise ApiError(400, "BadRequest", "name is required for an update")
        return await self._request(
            "PUT",
            resource_path(res, namespace, name, subresource),
            query=self._manager(field_manager),
            body=obj,
        )

    async def patch(
        self,
        res: Resource,
        namespace: str,
        name: str,
        patch: Patch,
        *,
        subresource: str = "",
        field_manager: str = "",
        dry_run: bool = False,
    ) -> Obj:
        ctype = PATCH_CONTENT_TYPES.get(patch.type)
        if ctype is None:
            raise ApiError(415, "UnsupportedMediaType", f"unknown patch type {patch.type!r}")
        q = self._manager(field_manager)
        if patch.type == "apply" and patch.force:
            q["force"] = "true"
        if dry_run:
            q["dryRun"] = "All"
        return await self._request(
            "PATCH",
            resource_path(res, namespace, name, subresource),
            query=q,
            body=patch.body,
            content_type=ctype,
        )

    async def delete(
        self, res: Resource, namespace: str, name: str, opts: DeleteOptions | None = None
    ) -> Obj | None:
        opts = opts or DeleteOptions()
        body: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if opts.propagation_policy is not None:
            body["propagationPolicy"] = opts.propagation_policy
        if opts.grace_period_seconds is not None:
            body["gracePeriodSeconds"] = opts.grace_period_seconds
        if opts.preconditions:
            body["preconditions"] = dict(opts.preconditions)
        out = await self._request("DELETE", resource_path(res, namespace, name), body=body)
        return None if out.get("kind") == "Status" else out

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _event(line: bytes) -> WatchEvent:
    data = orjson.loads(line)
    return WatchEvent(str(data.get("type") or ""), data.get("object") or {})


def _load_cert_chain_data(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """ssl only loads client certificates from files: write them to a private temp dir, load, remove."""
    with tempfile.TemporaryDirectory(prefix="skiff-client-") as d:
        cert, key = Path(d) / "client.crt", Path(d) / "client.key"
        for p, data in ((cert, cert_pem), (key, key_pem)):
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with contextlib.closing(os.fdopen(fd, "wb")) as f:
                f.write(data)
        ctx.load_cert_chain(str(cert), str(key))
