"""The Kubernetes REST surface over aiohttp: routing, verbs, content negotiation, watch streams.

Request flow: authenticate (bearer token or client certificate) → parse the resource path →
authorize (one `Authorizer`) → decode the body (JSON or YAML, served version → storage version) →
the generic `Registry` → encode (JSON object, Table, or watch lines). Every failure leaves as a
`Status` body (api-compat.md §6).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml
from aiohttp import web

from skiff.api import errors
from skiff.api.meta import Obj, rfc3339
from skiff.api.protobuf import PROTOBUF, ProtobufError, decode_request
from skiff.api.resources import ResourceInfo
from skiff.api.schema import model_for, prune_unknown
from skiff.apiserver import discovery, table
from skiff.apiserver.auth import Attributes, Authenticator, Authorizer, UserInfo, forbidden_error
from skiff.apiserver.patch import apply as ssa
from skiff.apiserver.patch.jsonpatch import apply_json_patch
from skiff.apiserver.patch.merge import apply_merge_patch
from skiff.apiserver.patch.smp import apply_strategic_merge_patch
from skiff.apiserver.registry.generic import DeleteOptions, ListOptions, Registry, WatchEvent, WriteOptions
from skiff.apiserver.registry.strategy import Strategy

log = logging.getLogger("skiff.apiserver")

JSON = "application/json"
PATCH_TYPES = {
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
}
def _pb_string(field: int, value: bytes) -> bytes:
    return bytes([field << 3 | 2, len(value)]) + value


# gnostic openapi_v2.Document{swagger: "2.0", info: Info{title, version}} (field numbers from openapiv2.proto).
GNOSTIC_V2_STUB = _pb_string(1, b"2.0") + _pb_string(2, _pb_string(1, b"Kubernetes") + _pb_string(2, b"v1.32.0"))
USER_KEY = web.RequestKey("user", UserInfo)  # the authenticated caller of a request
HEALTH_PATHS = {"/healthz", "/livez", "/readyz", "/version", "/cacerts"}
BOOKMARK_INTERVAL = 30.0
KUBE_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0+skiff", "gitCommit": "skiff",
                "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "python3.11",
                "compiler": "cpython", "platform": "linux/amd64"}


@dataclass
class Served:
    """One served resource (group/version/plural) over a registry in its storage version."""

    info: ResourceInfo
    registry: Registry
    to_served: Callable[[Obj], Obj]
    from_served: Callable[[Obj], Obj]
    model: str | None  # client model name for SMP/pruning; None for custom resources
    custom: bool = False

    @property
    def strategy(self) -> Strategy:
        return self.registry.strategy


@dataclass
class Target:
    """What a resource URL names."""

    served: Served
    namespace: str
    name: str
    subresource: str
    rest: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReadRequest:
    """A GET of a read-only virtual resource (`add_read_only`): one object when `name` is set, else a list
    in `namespace` ("" = all namespaces). `as_table` asks for a meta.k8s.io/v1 Table."""

    namespace: str
    name: str
    label_selector: str = ""
    field_selector: str = ""
    as_table: bool = False


ReadHandler = Callable[[UserInfo, ReadRequest], Awaitable[Obj]]


def _bool(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _int(value: str | None, what: str) -> int:
    if value in (None, ""):
        return 0
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f"invalid {what}: {value!r}") from None


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON, headers=headers)


def status_success(info: ResourceInfo, obj: Obj) -> Obj:
    md = obj.get("metadata") or {}
    details: Obj = {"name": md.get("name", ""), "kind": info.plural, "uid": md.get("uid", "")}
    if info.group:
        details["group"] = info.group
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


class APIServer:
    """Holds the served resources and answers HTTP requests for them."""

    def __init__(self, authenticator: Authenticator, authorizer: Authorizer) -> None:
        self.authenticator = authenticator
        self.authorizer = authorizer
        self.served: dict[tuple[str, str, str], Served] = {}
        self._docs: discovery.DiscoveryDocs | None = None
        self.openapi: Any = None  # skiff.apiserver.openapi.OpenAPI, set by the server
        self.ready = False
        # The cluster CA, served unauthenticated at /cacerts as k3s does: a joining agent checks it against the
        # hash pinned in its node token before trusting the server.
        self.ca_pem = b""
        self._watches: set[asyncio.Task[Any]] = set()
        self.extra_handlers: dict[tuple[str, str, str], Callable[[web.Request, UserInfo, Target | None], Awaitable[web.StreamResponse]]] = {}
        self.virtual: dict[tuple[str, str, str], tuple[ResourceInfo, Callable[[UserInfo, Obj], Awaitable[Obj]]]] = {}
        self.read_only: dict[tuple[str, str, str], tuple[ResourceInfo, ReadHandler]] = {}
        # Non-Kubernetes endpoints behind the same authentication (node certificates, the Marathon API).
        self.extra_routes: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = []

    # --- registration --------------------------------------------------------------------------------

    def add(self, served: Served) -> None:
        i = served.info
        self.served[(i.group, i.version, i.plural)] = served
        self._docs = None

    def remove(self, group: str, version: str, plural: str) -> None:
        self.served.pop((group, version, plural), None)
        self._docs = None

    def add_virtual(self, info: ResourceInfo, handler: Callable[[UserInfo, Obj], Awaitable[Obj]]) -> None:
        """A create-only resource computed per request (SelfSubjectAccessReview, SelfSubjectReview...)."""
        self.virtual[(info.group, info.version, info.plural)] = (info, handler)
        self._docs = None

    def add_read_only(self, info: ResourceInfo, handler: ReadHandler) -> None:
        """A get/list-only resource computed per request (metrics.k8s.io NodeMetrics, PodMetrics)."""
        self.read_only[(info.group, info.version, info.plural)] = (info, handler)
        self._docs = None

    def resources(self) -> list[ResourceInfo]:
        return ([s.info for s in self.served.values()] + [i for i, _ in self.virtual.values()]
                + [i for i, _ in self.read_only.values()])

    @property
    def docs(self) -> discovery.DiscoveryDocs:
        if self._docs is None:
            self._docs = discovery.build(self.resources())
        return self._docs

    # --- application -----------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors, self._authn], client_max_size=16 * 1024 * 1024)
        r = app.router
        for p in ("/healthz", "/livez", "/readyz"):
            r.add_get(p, self._health)
        r.add_get("/version", self._version)
        r.add_get("/cacerts", self._cacerts)
        r.add_get("/api", self._api_root)
        r.add_get("/apis", self._apis_root)
        r.add_get("/openapi/v2", self._openapi_v2)
        r.add_get("/openapi/v3", self._openapi_v3_index)
        r.add_get("/openapi/v3/{tail:.*}", self._openapi_v3)
        r.add_route("*", "/api/{tail:.*}", self._resource)
        r.add_route("*", "/apis/{tail:.*}", self._resource)
        for method, path, handler in self.extra_routes:  # before the catch-all: the first match wins
            r.add_route(method, path, handler)
        r.add_route("*", "/{tail:.*}", self._not_found)
        app.on_shutdown.append(self._close_watches)
        return app

    async def _close_watches(self, app: web.Application) -> None:
        for t in list(self._watches):
            t.cancel()

    async def _cacerts(self, request: web.Request) -> web.Response:
        if not self.ca_pem:
            raise errors.unknown_url()
        return web.Response(body=self.ca_pem, content_type="text/plain")

    async def _version(self, request: web.Request) -> web.Response:
        return json_response(KUBE_VERSION)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            return await handler(request)
        except errors.ApiError as e:
            return json_response(e.status(), e.code, e.headers)
        except web.HTTPException:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("internal error serving %s %s", request.method, request.path)
            err = errors.internal(str(e) or type(e).__name__)
            return json_response(err.status(), err.code)

    @web.middleware
    async def _authn(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path in HEALTH_PATHS:
            return await handler(request)
        peer: bytes | None = None
        if request.transport is not None:
            ssl_obj = request.transport.get_extra_info("ssl_object")
            if ssl_obj is not None:
                peer = ssl_obj.getpeercert(binary_form=True)
        user = self.authenticator.authenticate(request.headers.get("Authorization"), peer)
        if user is None:
            raise errors.unauthorized()
        request[USER_KEY] = user
        return await handler(request)

    async def _health(self, request: web.Request) -> web.Response:
        if request.path == "/readyz" and not self.ready:
            return web.Response(status=500, text="[-]skiff-ready failed: not ready\nreadyz check failed")
        return web.Response(text="ok", content_type="text/plain")

    async def _not_found(self, request: web.Request) -> web.Response:
        raise errors.unknown_url()

    async def _authorize(self, attrs: Attributes) -> None:
        allowed, reason = await self.authorizer.authorize(attrs)
        if not allowed:
            raise forbidden_error(attrs, reason)

    # --- discovery & openapi ----------------------------------------------------------------------

    async def _api_root(self, request: web.Request) -> web.Response:
        await self._authorize(Attributes(request[USER_KEY], "get", False, path="/api"))
        kind = discovery.aggregated_kind(request.headers.get("Accept", ""))
        if kind:
            return web.Response(body=self.docs.aggregated_core[kind], headers={"Content-Type": kind})
        return web.Response(body=self.docs.api_versions, content_type=JSON)

    async def _apis_root(self, request: web.Request) -> web.Response:
        await self._authorize(Attributes(request[USER_KEY], "get", False, path="/apis"))
        kind = discovery.aggregated_kind(request.headers.get("Accept", ""))
        if kind:
            return web.Response(body=self.docs.aggregated_apis[kind], headers={"Content-Type": kind})
        return web.Response(body=self.docs.api_groups, content_type=JSON)

    async def _openapi_v2(self, request: web.Request) -> web.Response:
        if self.openapi is None:
            raise errors.unknown_url()
        accept = request.headers.get("Accept", "")
        if "protobuf" in accept and "json" not in accept:
            # kubectl asks v2 (gnostic protobuf) only for kinds it did not find in /openapi/v3; a document without
            # definitions makes it skip client-side validation of those, so the unknown kind is reported by the
            # REST mapping (`no matches for kind`) exactly as against upstream.
            return web.Response(body=GNOSTIC_V2_STUB, content_type="application/octet-stream")
        return web.Response(body=self.openapi.v2_document(), content_type=JSON)

    async def _openapi_v3_index(self, request: web.Request) -> web.Response:
        if self.openapi is None:
            raise errors.unknown_url()
        return json_response(self.openapi.v3_index())

    async def _openapi_v3(self, request: web.Request) -> web.Response:
        if self.openapi is None:
            raise errors.unknown_url()
        path = request.match_info["tail"]
        doc = self.openapi.v3_document(path)
        if doc is None:
            raise errors.unknown_url()
        etag = '"' + self.openapi.v3_hash(path) + '"'
        headers = {"ETag": etag, "Cache-Control": "public, immutable" if request.query.get("hash") else "no-cache, private"}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=doc, content_type=JSON, headers=headers)

    # --- resource routing ---------------------------------------------------------------------------

    def _parse(self, request: web.Request) -> tuple[str, str, list[str], bool]:
        """(group, version, remaining segments, legacy_watch_prefix)."""
        parts = [p for p in request.path.split("/") if p]
        if parts[0] == "api":
            if len(parts) < 2:
                raise errors.unknown_url()
            group, version, rest = "", parts[1], parts[2:]
        else:
            if len(parts) < 3:
                return (parts[1] if len(parts) > 1 else "", "", [], False)
            group, version, rest = parts[1], parts[2], parts[3:]
        legacy_watch = bool(rest) and rest[0] == "watch"
        if legacy_watch:
            rest = rest[1:]
        return group, version, rest, legacy_watch

    def _target(self, group: str, version: str, rest: list[str]) -> Target | None:
        if not rest:
            return None
        ns = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            cand = self.served.get((group, version, rest[2]))
            if cand is not None and cand.info.namespaced:
                ns, rest = rest[1], rest[2:]
        served = self.served.get((group, version, rest[0]))
        if served is None:
            return None
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub and served.info.subresource(sub) is None:
            raise errors.unknown_url()
        return Target(served, ns, name, sub, rest[3:])

    async def _resource(self, request: web.Request) -> web.StreamResponse:
        group, version, rest, legacy_watch = self._parse(request)
        user: UserInfo = request[USER_KEY]
        if not version:
            if request.method != "GET":
                raise errors.method_not_allowed()
            doc = self.docs.groups.get(group)
            if doc is None:
                raise errors.unknown_url()
            return web.Response(body=doc, content_type=JSON)
        gv = f"{group}/{version}" if group else version
        if not rest:
            if request.method != "GET":
                raise errors.method_not_allowed()
            doc = self.docs.resource_lists.get(gv)
            if doc is None:
                raise errors.unknown_url()
            return web.Response(body=doc, content_type=JSON)
        if (group, version, rest[0]) in self.virtual and len(rest) == 1:
            return await self._virtual(request, user, group, version, rest[0])
        if self.read_only:
            read = self._read_only_target(group, version, rest)
            if read is not None:
                return await self._read_only(request, user, *read)
        target = self._target(group, version, rest)
        if target is None:
            raise errors.unknown_url()
        verb = self._verb(request, target, legacy_watch)
        if verb not in target.served.info.verbs and not target.subresource:
            raise errors.method_not_allowed()
        i = target.served.info
        await self._authorize(Attributes(user, verb, True, path=request.path, namespace=target.namespace,
                                         api_group=i.group, api_version=i.version, resource=i.plural,
                                         subresource=target.subresource, name=target.name))
        handler = self.extra_handlers.get((i.group, i.plural, target.subresource))
        if handler is not None and target.subresource:
            return await handler(request, user, target)
        if target.subresource == "scale":
            return await self._scale(request, target, user)
        if target.subresource not in ("", "status"):
            raise errors.method_not_allowed()
        if verb == "get":
            return await self._get(request, target)
        if verb in ("list", "watch"):
            if verb == "watch":
                return await self._watch(request, target)
            return await self._list(request, target)
        if verb == "create":
            return await self._create(request, target, user)
        if verb == "update":
            return await self._update(request, target, user)
        if verb == "patch":
            return await self._patch(request, target, user)
        if verb == "delete":
            return await self._delete(request, target)
        if verb == "deletecollection":
            return await self._delete_collection(request, target)
        raise errors.method_not_allowed()

    @staticmethod
    def _verb(request: web.Request, target: Target, legacy_watch: bool) -> str:
        m = request.method
        if m == "GET":
            if target.name and not legacy_watch:
                return "get"
            if legacy_watch or _bool(request.query.get("watch")):
                return "watch"
            return "list"
        if m == "POST":
            return "create"
        if m == "PUT":
            return "update"
        if m == "PATCH":
            return "patch"
        if m == "DELETE":
            return "delete" if target.name else "deletecollection"
        raise errors.method_not_allowed()

    # --- helpers ---------------------------------------------------------------------------------------

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        if not raw:
            raise errors.bad_request("the request body is empty")
        ctype = (request.content_type or "").lower()
        if ctype == PROTOBUF:
            # kubectl's typed clients (create <generator>, auth can-i, drain) send protobuf bodies.
            try:
                return decode_request(raw)
            except ProtobufError as e:
                raise errors.ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - {e}") from None
        try:
            if "yaml" in ctype:
                return yaml.safe_load(raw)
            return orjson.loads(raw)
        except Exception as e:
            if "yaml" not in ctype:
                try:
                    return yaml.safe_load(raw)
                except Exception:
                    pass
            raise errors.bad_request(f"the body of the request could not be decoded: {e}") from None

    def _respond(self, request: web.Request, target: Target, obj: Obj, status: int = 200,
                 headers: dict[str, str] | None = None) -> web.Response:
        out = target.served.to_served(obj)
        if table.wants_table(request.headers.get("Accept", "")):
            t = table.table(target.served.strategy, [obj], request.query.get("includeObject", "Metadata"))
            t["metadata"] = {"resourceVersion": (obj.get("metadata") or {}).get("resourceVersion", "")}
            if request.query.get("includeObject") == "Object":
                for row in t["rows"]:
                    row["object"] = out
            return json_response(t, status, headers)
        return json_response(out, status, headers)

    @staticmethod
    def _write_opts(request: web.Request, subresource: str = "") -> WriteOptions:
        dry = request.query.getall("dryRun", [])
        for d in dry:
            if d != "All":
                raise errors.bad_request(f'dryRun: Unsupported value: "{d}": supported values: "All"')
        manager = request.query.get("fieldManager", "")
        if not manager:
            manager = ssa.default_field_manager(request.headers.get("User-Agent", "")) or "unknown"
        if len(manager) > 128:
            raise errors.bad_request("fieldManager: Too long: must have at most 128 bytes")
        return WriteOptions(dry_run=bool(dry), field_manager=manager, subresource=subresource)

    def _check_fields(self, request: web.Request, target: Target, obj: Obj) -> dict[str, str]:
        """Drop unknown fields of built-in kinds; `fieldValidation=Strict` rejects them (400), `Warn` warns."""
        mode = request.query.get("fieldValidation", "Warn")
        if mode not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(f'fieldValidation: Unsupported value: "{mode}": supported values: "Ignore", "Strict", "Warn"')
        unknown: list[str] = []
        model = target.served.model
        if model is not None:
            unknown = prune_unknown(obj, model)
        else:
            finder = getattr(target.served.strategy, "unknown_fields", None)
            if finder is not None:
                unknown = list(finder(obj))
            pruner = getattr(target.served.strategy, "prune", None)
            if pruner is not None:
                pruner(obj)
        if not unknown or mode == "Ignore":
            return {}
        text = ", ".join(f'unknown field "{u}"' for u in unknown)
        if mode == "Strict":
            i = target.served.info
            raise errors.bad_request(f'{i.kind} in version "{i.version}" cannot be handled as a {i.kind}: strict decoding error: {text}')
        return {"Warning": ", ".join(f'299 - "unknown field \\"{u}\\""' for u in unknown)}

    def _check_kind(self, target: Target, obj: Any) -> Obj:
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        i = target.served.info
        if obj.get("kind") and obj["kind"] != i.kind:
            raise errors.bad_request(f'the API version in the data ({obj.get("apiVersion", "")}) does not match the expected API version ({i.api_version})'
                                     if obj.get("apiVersion") and obj["apiVersion"] != i.api_version
                                     else f'the kind in the data ({obj["kind"]}) does not match the expected kind ({i.kind})')
        if obj.get("apiVersion") and obj["apiVersion"] != i.api_version:
            raise errors.bad_request(f'the API version in the data ({obj["apiVersion"]}) does not match the expected API version ({i.api_version})')
        obj["kind"] = i.kind
        obj["apiVersion"] = i.api_version
        return obj

    # --- verbs ------------------------------------------------------------------------------------------

    async def _get(self, request: web.Request, target: Target) -> web.Response:
        obj = await target.served.registry.get(target.namespace, target.name)
        return self._respond(request, target, obj)

    @staticmethod
    def _list_opts(request: web.Request) -> ListOptions:
        q = request.query
        return ListOptions(
            label_selector=q.get("labelSelector", ""),
            field_selector=q.get("fieldSelector", ""),
            limit=_int(q.get("limit"), "limit"),
            continue_token=q.get("continue", ""),
            resource_version=q.get("resourceVersion", ""),
            resource_version_match=q.get("resourceVersionMatch", ""),
        )

    async def _list(self, request: web.Request, target: Target) -> web.Response:
        opts = self._list_opts(request)
        if opts.resource_version_match and not opts.resource_version:
            raise errors.invalid("ListOptions", "meta.k8s.io", "", [
                errors.FieldError("FieldValueForbidden", "resourceVersionMatch", "resourceVersionMatch is forbidden unless resourceVersion is provided")])
        if "sendInitialEvents" in request.query:
            raise errors.invalid("ListOptions", "meta.k8s.io", "", [
                errors.FieldError("FieldValueForbidden", "sendInitialEvents", "sendInitialEvents is forbidden for list")])
        lst = await target.served.registry.list(target.namespace, opts)
        served = target.served
        if table.wants_table(request.headers.get("Accept", "")):
            include = request.query.get("includeObject", "Metadata")
            t = table.table(served.strategy, lst["items"], include, lst["metadata"])
            if include == "Object":
                for row, item in zip(t["rows"], lst["items"], strict=True):
                    row["object"] = served.to_served(item)
            return json_response(t)
        lst["apiVersion"] = served.info.api_version
        lst["kind"] = f"{served.info.kind}List"
        lst["items"] = [served.to_served(o) for o in lst["items"]]
        return json_response(lst)

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        q = request.query
        opts = self._list_opts(request)
        send_initial: bool | None = None
        if "sendInitialEvents" in q:
            send_initial = _bool(q.get("sendInitialEvents"))
            if send_initial and (q.get("resourceVersionMatch") != "NotOlderThan" or not _bool(q.get("allowWatchBookmarks"))):
                raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.FieldError(
                    "FieldValueForbidden", "sendInitialEvents",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan and allowWatchBookmarks")])
        elif opts.resource_version_match:
            raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.FieldError(
                "FieldValueForbidden", "resourceVersionMatch", "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")])
        if target.name:  # legacy /watch/.../name
            opts.field_selector = ",".join(filter(None, [opts.field_selector, f"metadata.name={target.name}"]))
        timeout = _int(q.get("timeoutSeconds"), "timeoutSeconds") or random.randint(1800, 3600)
        bookmarks = _bool(q.get("allowWatchBookmarks"))
        served = target.served
        registry = served.registry
        events = await registry.watch(target.namespace, opts, send_initial_events=send_initial)
        as_table = table.wants_table(request.headers.get("Accept", ""))
        include = q.get("includeObject", "Metadata")
        resp = web.StreamResponse(headers={"Content-Type": JSON, "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        task = asyncio.current_task()
        if task is not None:
            self._watches.add(task)
        first_table = True
        last_rv = 0
        deadline = time.monotonic() + timeout
        queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue(maxsize=1024)

        async def pump() -> None:
            try:
                async for ev in events:
                    await queue.put(ev)
            finally:
                await queue.put(None)

        pump_task = asyncio.create_task(pump())
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    ev = await asyncio.wait_for(queue.get(), min(remaining, BOOKMARK_INTERVAL))
                except TimeoutError:
                    if bookmarks and last_rv:
                        await resp.write(orjson.dumps({"type": "BOOKMARK", "object": registry.bookmark(last_rv)}) + b"\n")
                    continue
                if ev is None:
                    break
                obj = ev.object
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if rv and rv.isdigit():
                    last_rv = max(last_rv, int(rv))
                if ev.type == "BOOKMARK":
                    if not bookmarks:
                        continue
                    obj = {**obj, "apiVersion": served.info.api_version, "kind": served.info.kind}
                elif ev.type == "ERROR":
                    pass
                elif as_table:
                    t = table.table(served.strategy, [obj], include, {"resourceVersion": rv or ""}, with_columns=first_table)
                    if include == "Object":
                        t["rows"][0]["object"] = served.to_served(obj)
                    first_table = False
                    obj = t
                else:
                    obj = served.to_served(obj)
                await resp.write(orjson.dumps({"type": ev.type, "object": obj}) + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            pump_task.cancel()
            with contextlib.suppress(BaseException):
                await pump_task
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(BaseException):
                    await aclose()
            if task is not None:
                self._watches.discard(task)
        with contextlib.suppress(Exception):
            await resp.write_eof()
        return resp

    async def _create(self, request: web.Request, target: Target, user: UserInfo) -> web.Response:
        if target.name:
            raise errors.method_not_allowed()
        body = self._check_kind(target, await self._body(request))
        warnings = self._check_fields(request, target, body)
        obj = target.served.from_served(body)
        opts = self._write_opts(request)
        created = await target.served.registry.create(target.namespace, obj, opts)
        return self._respond(request, target, created, 201, warnings)

    async def _update(self, request: web.Request, target: Target, user: UserInfo) -> web.Response:
        body = self._check_kind(target, await self._body(request))
        warnings = self._check_fields(request, target, body)
        obj = target.served.from_served(body)
        opts = self._write_opts(request, target.subresource)
        result, created = await target.served.registry.update(target.namespace, target.name, obj, opts)
        return self._respond(request, target, result, 201 if created else 200, warnings)

    async def _patch(self, request: web.Request, target: Target, user: UserInfo) -> web.Response:
        ctype = (request.content_type or "").lower()
        if ctype not in PATCH_TYPES:
            raise errors.unsupported_media_type(ctype)
        served = target.served
        if ctype == "application/strategic-merge-patch+json" and served.model is None:
            raise errors.unsupported_media_type(ctype)
        patch = await self._body(request)
        opts = self._write_opts(request, target.subresource)
        registry = served.registry
        warnings: dict[str, str] = {}
        force = _bool(request.query.get("force"))
        if ctype == "application/apply-patch+yaml":
            opts.applied = True
            if not isinstance(patch, dict):
                raise errors.bad_request("apply patch must be an object")
            if not request.query.get("fieldManager"):
                raise errors.bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
            self._check_kind(target, patch)
            warnings = self._check_fields(request, target, patch)
            live = await registry.try_get(target.namespace, target.name)
            if live is None:
                if target.subresource:
                    raise registry._not_found(target.name)
                applied = ssa.server_side_apply(None, patch, opts.field_manager, force, served.model, rfc3339(),
                                                ignore_fields=registry.ignored_fields(""))
                applied.setdefault("metadata", {})["name"] = target.name
                created = await registry.create(target.namespace, served.from_served(applied), opts)
                return self._respond(request, target, created, 201, warnings)

        precondition = ""
        if isinstance(patch, dict) and isinstance(patch.get("metadata"), dict):
            precondition = str(patch["metadata"].get("resourceVersion") or "")

        def mutate(live: Obj) -> Obj:
            cur = served.to_served(live)
            if ctype == "application/json-patch+json":
                out = apply_json_patch(cur, patch)
            elif ctype == "application/merge-patch+json":
                out = apply_merge_patch(cur, patch)
            elif ctype == "application/strategic-merge-patch+json":
                if not isinstance(patch, dict):
                    raise errors.bad_request("strategic merge patch must be a JSON object")
                out = apply_strategic_merge_patch(cur, patch, served.model or "")
            else:
                out = ssa.server_side_apply(cur, copy.deepcopy(patch), opts.field_manager, force, served.model, rfc3339(),
                                            ignore_fields=registry.ignored_fields(target.subresource))
            if not isinstance(out, dict):
                raise errors.bad_request("the patch result is not an object")
            self._check_kind(target, out)
            warnings.update(self._check_fields(request, target, out))
            return served.from_served(out)

        result = await registry.guaranteed_update(target.namespace, target.name, mutate, opts, precondition_rv=precondition)
        return self._respond(request, target, result, 200, warnings)

    async def _delete_options(self, request: web.Request) -> DeleteOptions:
        q = request.query
        body: Obj = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise errors.bad_request("the body of the request was not valid DeleteOptions") from None
        dry = q.getall("dryRun", []) or body.get("dryRun") or []
        policy = q.get("propagationPolicy") or body.get("propagationPolicy")
        if policy is None and body.get("orphanDependents") is not None:
            policy = "Orphan" if body["orphanDependents"] else "Background"
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.bad_request(f'propagationPolicy: Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"')
        grace = q.get("gracePeriodSeconds")
        grace_val = int(grace) if grace not in (None, "") else body.get("gracePeriodSeconds")
        return DeleteOptions(dry_run=bool(dry), propagation_policy=policy, grace_period_seconds=grace_val,
                             preconditions=body.get("preconditions") or {})

    async def _delete(self, request: web.Request, target: Target) -> web.Response:
        if target.subresource:
            raise errors.method_not_allowed()
        opts = await self._delete_options(request)
        obj, removed = await target.served.registry.delete(target.namespace, target.name, opts)
        if removed:
            return json_response(status_success(target.served.info, obj))
        return self._respond(request, target, obj, 200)

    async def _delete_collection(self, request: web.Request, target: Target) -> web.Response:
        opts = await self._delete_options(request)
        lst = await target.served.registry.delete_collection(target.namespace, self._list_opts(request), opts)
        lst["items"] = [target.served.to_served(o) for o in lst["items"]]
        return json_response(lst)

    # --- scale subresource ----------------------------------------------------------------------------

    def _scale_obj(self, target: Target, obj: Obj) -> Obj:
        spec_r, status_r, selector = target.served.strategy.scale_of(obj)
        md = obj.get("metadata") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in md},
            "spec": {"replicas": spec_r},
            "status": {"replicas": status_r, "selector": selector},
        }

    async def _scale(self, request: web.Request, target: Target, user: UserInfo) -> web.Response:
        registry = target.served.registry
        if request.method == "GET":
            return json_response(self._scale_obj(target, await registry.get(target.namespace, target.name)))
        if request.method not in ("PUT", "PATCH"):
            raise errors.method_not_allowed()
        body = await self._body(request)
        ctype = (request.content_type or "").lower()
        opts = self._write_opts(request)
        precondition = ""

        def new_replicas(scale: Obj) -> int:
            r = (scale.get("spec") or {}).get("replicas", 0)
            if not isinstance(r, int) or isinstance(r, bool) or r < 0:
                raise errors.invalid("Scale", "autoscaling", target.name, [
                    errors.FieldError("FieldValueInvalid", "spec.replicas", "must be greater than or equal to 0", r)])
            return r

        if request.method == "PUT":
            if not isinstance(body, dict):
                raise errors.bad_request("the body of the request must be a Scale object")
            precondition = str((body.get("metadata") or {}).get("resourceVersion") or "")

        def mutate(live: Obj) -> Obj:
            if request.method == "PUT":
                scale = body
            else:
                cur = self._scale_obj(target, live)
                if ctype == "application/json-patch+json":
                    scale = apply_json_patch(cur, body)
                elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                    scale = apply_merge_patch(cur, body)
                else:
                    raise errors.unsupported_media_type(ctype)
            target.served.strategy.set_replicas(live, new_replicas(scale))
            return live

        result = await registry.guaranteed_update(target.namespace, target.name, mutate, opts, precondition_rv=precondition)
        return json_response(self._scale_obj(target, result))

    # --- virtual resources (reviews) -----------------------------------------------------------------

    async def _virtual(self, request: web.Request, user: UserInfo, group: str, version: str, plural: str) -> web.Response:
        info, handler = self.virtual[(group, version, plural)]
        if request.method != "POST":
            raise errors.method_not_allowed()
        body = await self._body(request)
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be an object")
        out = await handler(user, body)
        out["kind"] = info.kind
        out["apiVersion"] = info.api_version
        return json_response(out, 201)

    # --- read-only virtual resources (metrics.k8s.io) ------------------------------------------------

    def _read_only_target(self, group: str, version: str, rest: list[str]) -> tuple[ResourceInfo, ReadHandler, str, str] | None:
        """(info, handler, namespace, name) when the path names a read-only resource, else None."""
        ns = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            cand = self.read_only.get((group, version, rest[2]))
            if cand is not None and cand[0].namespaced:
                ns, rest = rest[1], rest[2:]
        entry = self.read_only.get((group, version, rest[0]))
        if entry is None:
            return None
        if len(rest) > 2:
            raise errors.unknown_url()
        return entry[0], entry[1], ns, rest[1] if len(rest) > 1 else ""

    async def _read_only(self, request: web.Request, user: UserInfo, info: ResourceInfo, handler: ReadHandler,
                         namespace: str, name: str) -> web.Response:
        verb = "get" if name else "list"
        if request.method != "GET" or _bool(request.query.get("watch")) or verb not in info.verbs:
            raise errors.method_not_allowed()
        await self._authorize(Attributes(user, verb, True, path=request.path, namespace=namespace,
                                         api_group=info.group, api_version=info.version, resource=info.plural,
                                         name=name))
        q = request.query
        read = ReadRequest(namespace, name, q.get("labelSelector", ""), q.get("fieldSelector", ""),
                           table.wants_table(request.headers.get("Accept", "")))
        return json_response(await handler(user, read))


def model_of(info: ResourceInfo) -> str | None:
    return model_for(info.group, info.version, info.kind)
