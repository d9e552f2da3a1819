"""Marathon's REST API (1.x, `/v2/...`) on the skiff server's own HTTPS port.

Marathon clients (curl scripts, marathon-lb style tools, CI jobs) talk to skiff as they would to Marathon:
`POST /v2/apps` with an app definition deploys it, `GET /v2/apps/<id>` shows it back, and so on, with
Marathon's response shapes and status codes (mesosphere/marathon `AppsResource`, `TasksResource`,
`DeploymentsResource`). Underneath an app is what `skiff.translate.marathon` makes of it — a Deployment
and its Services in the namespace `marathon` — deployed through the shared deploy layer, so `kubectl get
deploy -n marathon` and this API always agree: GET answers from the Deployment (`marathon_app_view`).

A Marathon deployment (a rollout in progress) is a Deployment whose rollout has not completed; its id is
derived from the Deployment's uid and generation, so the `Marathon-Deployment-Id` header of a write
matches what `GET /v2/deployments` lists until the rollout is done.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from skiff.api.errors import ApiError
from skiff.api.meta import parse_time
from skiff.cli import deploy
from skiff.cli.stack import REVISION, previous_template
from skiff.client.interface import DEPLOYMENTS, PODS, REPLICASETS, SERVICES, Client, ListOptions, Obj, Patch
from skiff.translate.marathon import (
    APP_ID_ANNOTATION,
    app_to_workload,
    marathon_app_view,
    render_app,
    translate_marathon,
    workload_name,
)
from skiff.translate.model import LABEL_MARATHON_APP, LABEL_WORKLOAD, TranslateError, Translation

Authenticate = Callable[[web.Request], Awaitable[bool]]
MARATHON_VERSION = "1.11.24"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"  # what `kubectl rollout restart` sets: same effect
BODY_PATH = "request body"  # the "file" translation warnings and errors name


# --- pure helpers -----------------------------------------------------------------------------------------------


def normalize_id(raw: str) -> str:
    """`prod/api/` → `/prod/api` (Marathon's canonical absolute path id)."""
    return "/" + "/".join(s for s in raw.split("/") if s)


def segments_of(app_id: str) -> list[str]:
    return [s for s in app_id.split("/") if s]


def json_path(key: str) -> str:
    """A translator key (`container.docker.portMappings[0].hostPort`) as Marathon's JSON path
    (`/container/docker/portMappings(0)/hostPort`)."""
    if not key or key.startswith("("):
        return "/"
    return "/" + re.sub(r"\[(\d+)\]", r"(\1)", key).replace(".", "/").lstrip("/")


def invalid(path: str, *messages: str) -> web.Response:
    """422 as Marathon's validation failures (`ValidationFailure` → "Object is not valid")."""
    return web.json_response({"message": "Object is not valid",
                              "details": [{"path": path, "errors": list(messages)}]}, status=422)


def message(status: int, text: str, **extra: Any) -> web.Response:
    return web.json_response({"message": text, **extra}, status=status)


def marathon_time(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def deployment_id(deployment: Obj) -> str:
    """The Marathon deployment id of the Deployment's current rollout (stable for one generation)."""
    md = deployment.get("metadata") or {}
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"skiff:{md.get('uid', '')}:{md.get('generation', 0)}"))


def rolling(deployment: Obj) -> bool:
    """True while the rollout of the current generation is not complete (a Marathon deployment is running)."""
    md, spec, status = deployment.get("metadata") or {}, deployment.get("spec") or {}, deployment.get("status") or {}
    want = int(spec.get("replicas", 1))
    return (int(status.get("observedGeneration") or 0) < int(md.get("generation") or 0)
            or int(status.get("updatedReplicas") or 0) < want
            or int(status.get("availableReplicas") or 0) < want
            or int(status.get("replicas") or 0) > want)


def task_view(pod: Obj, app_id: str) -> Obj:
    """A pod as Marathon shows a task (`GET /v2/apps/<id>/tasks`)."""
    md, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    state = {"Running": "TASK_RUNNING", "Succeeded": "TASK_FINISHED", "Failed": "TASK_FAILED"}.get(
        phase, "TASK_STAGING")
    if md.get("deletionTimestamp"):
        state = "TASK_KILLING"
    ports = [p.get("hostPort") or p.get("containerPort") for c in spec.get("containers") or []
             for p in c.get("ports") or []]
    staged = parse_time(md.get("creationTimestamp"))
    started = parse_time(status.get("startTime"))
    node = str(spec.get("nodeName") or "")
    task: Obj = {
        "id": f"{'.'.join(segments_of(app_id))}.{md.get('uid', '')}",
        "appId": app_id,
        "host": status.get("hostIP") or node,
        "agentId": node,
        "slaveId": node,
        "ports": ports,
        "servicePorts": [],
        "ipAddresses": [{"ipAddress": ip.get("ip"), "protocol": "IPv6" if ":" in str(ip.get("ip")) else "IPv4"}
                        for ip in status.get("podIPs") or []],
        "stagedAt": marathon_time(staged) if staged else None,
        "startedAt": marathon_time(started) if started and phase == "Running" else None,
        "state": state,
        "version": marathon_time(staged) if staged else None,
    }
    checks = [c for c in spec.get("containers") or [] if c.get("livenessProbe") or c.get("readinessProbe")]
    if checks and phase == "Running":
        task["healthCheckResults"] = [{"alive": ready, "consecutiveFailures": 0, "instanceId": task["id"]}]
    return task


def deployment_view(deployment: Obj, app_id: str) -> Obj:
    """A rolling Deployment as a Marathon deployment plan (`GET /v2/deployments`)."""
    md = deployment.get("metadata") or {}
    started = parse_time(md.get("creationTimestamp"))
    action = "StartApplication" if int(md.get("generation") or 1) <= 1 else "RestartApplication"
    return {
        "id": deployment_id(deployment),
        "version": marathon_time(started) if started else None,
        "affectedApps": [app_id],
        "affectedPods": [],
        "steps": [{"actions": [{"action": action, "app": app_id}]}],
        "currentActions": [{"action": action, "app": app_id, "readinessCheckResults": []}],
        "currentStep": 1,
        "totalSteps": 1,
    }


# --- the API ----------------------------------------------------------------------------------------------------


class MarathonAPI:
    """Request handlers over a `Client`; apps live in `namespace`."""

    def __init__(self, client: Client, namespace: str, authenticate: Authenticate) -> None:
        self.client = client
        self.namespace = namespace
        self.authenticate = authenticate

    # reading the cluster

    async def _deployment(self, app_id: str) -> Obj | None:
        segments = segments_of(app_id)
        if not segments:
            return None
        try:
            d = await self.client.get(DEPLOYMENTS, self.namespace, workload_name(segments))
        except ApiError as e:
            if e.code == 404:
                return None
            raise
        annotations = (d.get("metadata") or {}).get("annotations") or {}
        return d if annotations.get(APP_ID_ANNOTATION, app_id) == app_id else None

    async def _deployments(self) -> list[tuple[str, Obj]]:
        lst = await self.client.list(DEPLOYMENTS, self.namespace, ListOptions(label_selector=LABEL_MARATHON_APP))
        out = []
        for d in lst.get("items") or []:
            md = d.get("metadata") or {}
            out.append((str((md.get("annotations") or {}).get(APP_ID_ANNOTATION) or "/" + md.get("name", "")), d))
        return sorted(out, key=lambda x: x[0])

    async def _view(self, deployment: Obj) -> Obj:
        label = ((deployment.get("metadata") or {}).get("labels") or {}).get(LABEL_WORKLOAD, "")
        services = (await self.client.list(SERVICES, self.namespace,
                                           ListOptions(label_selector=f"{LABEL_WORKLOAD}={label}"))).get("items")
        main = next((s for s in services or [] if (s.get("spec") or {}).get("type") in ("NodePort", "LoadBalancer")),
                    (services or [None])[0])
        view = marathon_app_view(deployment, main)
        view["deployments"] = [{"id": deployment_id(deployment)}] if rolling(deployment) else []
        return view

    async def _pods(self, deployment: Obj) -> list[Obj]:
        sel = (deployment.get("spec") or {}).get("selector", {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(sel.items()))
        return list((await self.client.list(PODS, self.namespace, ListOptions(label_selector=selector))).get("items")
                    or [])

    # writing

    def _translate(self, app: Any) -> tuple[Translation, str, str] | web.Response:
        """The app's objects, its id and its label value; or Marathon's 422."""
        if not isinstance(app, dict):
            return invalid("/", "error.expected.jsobject")
        try:
            w, extra, warnings = app_to_workload(app, BODY_PATH, self.namespace)
        except TranslateError as e:
            return invalid(json_path(e.key), e.why)
        objects = [*extra, *render_app(w)]
        return (Translation(objects, list(warnings)), str(w.annotations.get(APP_ID_ANNOTATION) or ""),
                w.labels.get(LABEL_MARATHON_APP, ""))

    async def _deploy(self, translation: Translation, app_id: str, label: str) -> deploy.DeployResult | web.Response:
        try:
            return await deploy.apply(self.client, translation, owner_kind="Workload", owner_name=app_id,
                                      namespace=self.namespace, prune_label=f"{LABEL_MARATHON_APP}={label}",
                                      dialect="marathon")
        except deploy.DeployError as e:
            return invalid("/", str(e))

    @staticmethod
    def _written(result: deploy.DeployResult) -> Obj:
        return next(a.object for a in result.applied if a.ref.kind in deploy.WORKLOAD_KINDS)

    @staticmethod
    def _version() -> str:
        return marathon_time(dt.datetime.now(dt.UTC))

    # handlers

    async def _guard(self, request: web.Request) -> web.Response | None:
        if not await self.authenticate(request):
            return message(401, "Invalid username or password.")
        return None

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            return json.loads(raw)
        except ValueError as e:
            raise web.HTTPBadRequest(text=json.dumps({"message": "Invalid JSON", "details": [
                {"path": "/", "errors": [f"Unexpected JSON: {e}"]}]}), content_type="application/json") from e

    async def ping(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="pong", content_type="text/plain")

    async def info(self, request: web.Request) -> web.StreamResponse:
        if (denied := await self._guard(request)) is not None:
            return denied
        return web.json_response({
            "name": "marathon", "version": MARATHON_VERSION, "buildref": "skiff", "elected": True,
            "leader": request.host, "frameworkId": "skiff",
            "marathon_config": {"master": "skiff", "mesos_role": "*", "task_launch_timeout": 300000},
            "zookeeper_config": {}, "http_config": {"http_port": None, "https_port": request.url.port},
        })

    async def list_apps(self, request: web.Request) -> web.StreamResponse:
        if (denied := await self._guard(request)) is not None:
            return denied
        wanted = request.query.get("id", "")
        apps = [await self._view(d) for app_id, d in await self._deployments() if wanted in app_id]
        return web.json_response({"apps": apps})

    async def create_app(self, request: web.Request) -> web.StreamResponse:
        if (denied := await self._guard(request)) is not None:
            return denied
        app = await self._body(request)
        translated = self._translate(app)
        if isinstance(translated, web.Response):
            return translated
        translation, app_id, label = translated
        if await self._deployment(app_id) is not None:
            return message(409, f"An app with id [{app_id}] already exists.", deployments=[])
        result = await self._deploy(translation, app_id, label)
        if isinstance(result, web.Response):
            return result
        written = self._written(result)
        view = await self._view(written)
        view["deployments"] = [{"id": deployment_id(written)}]
        return web.json_response(view, status=201, headers={
            "Marathon-Deployment-Id": deployment_id(written), "Location": f"/v2/apps{app_id}"})

    async def get_app(self, request: web.Request) -> web.StreamResponse:
        if (denied := await self._guard(request)) is not None:
            return denied
        app_id = normalize_id(request.match_info["id"])
        d = await self._deployment(app_id)
        if d is None:
            return message(404, f"App '{app_id}' does not exist")
        return web.json_response({"app": await self._view(d)})

    async def put_app(self, request: web.Request) -> web.StreamResponse:
        """Create or replace (PUT) / merge into the current definition (PATCH)."""
        if (denied := await self._guard(request)) is not None:
            return denied
        app_id = normalize_id(request.match_info["id"])
        body = await self._body(request)
        if not isinstance(body, dict):
            return invalid("/", "error.expected.jsobject")
        current = await self._deployment(app_id)
        if request.method == "PATCH":
            if current is None:
                return message(404, f"App '{app_id}' does not exist")
            definition = _definition(current)
            body = {**definition, **body}
        if "id" in body and normalize_id(str(body["id"])) != app_id:
            return invalid("/id", f"The path id {app_id} does not match the id in the body {body['id']}")
        translated = self._translate({**body, "id": app_id})
        if isinstance(translated, web.Response):
            return translated
        translation, _, label = translated
        result = await self._deploy(translation, app_id, label)
        if isinstance(result, web.Response):
            return result
        written = self._written(result)
        dep = deployment_id(written)
        status = 201 if current is None else 200
        headers = {"Marathon-Deployment-Id": dep}
        if current is None:
            headers["Location"] = f"/v2/apps{app_id}"
        return web.json_response({"deploymentId": dep, "version": self._version()}, status=status, headers=headers)

    async def delete_app(self, request: web.Request) -> web.StreamResponse:
        if (denied := await self._guard(request)) is not None:
            return denied
        app_id = normalize_id(request.match_info["id"])
        d = await self._deployment(app_id)
        if d is None:
            return message(404, f"App '{app_id}' does not exist")
        label = ((d.get("metadata") or {}).get("labels") or {}).get(LABEL_MARATHON_APP, "")
        await deploy.remove(self.client, self.namespace, f"{LABEL_MARATHON_APP}={label}")
        dep = str(uuid.uuid5(uuid.NAMESPACE_URL, f"skiff:delete:{d['metadata'].get('uid', '')}"))
        return web.json_response({"deploymentId": dep, "version": self._version()},
                                 headers={"Marathon-Deployment-Id": dep})

    async def restart_app(self, request: web.Request) -> web.StreamResponse:
        if (denied := await self._guard(request)) is not None:
            return denied
        app_id = normalize_id(request.match_info["id"])
        d = await self._deployment(app_id)
        if d is None:
            return message(404, f"App '{app_id}' does not exist")
        now = dt.datetime.now(dt.UTC)
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now.strftime("%Y-%m-%dT%H:%M:%SZ")}}}}}
        written = await self.client.patch(DEPLOYMENTS, self.namespace, d["metadata"]["name"], Patch("merge", patch),
                                          field_manager="skiff-marathon-api")
        dep = deployment_id(written)
        return web.json_response({"deploymentId": dep, "version": marathon_time(now)},
                                 headers={"Marathon-Deployment-Id": dep})

    async def app_tasks(self, request: web.Request) -> web.StreamResponse:
        if (denied := await self._guard(request)) is not None:
            return denied
        app_id = normalize_id(request.match_info["id"])
        d = await self._deployment(app_id)
        if d is None:
            return message(404, f"App '{app_id}' does not exist")
        return web.json_response({"tasks": [task_view(p, app_id) for p in await self._pods(d)]})

    async def all_tasks(self, request: web.Request) -> web.StreamResponse:
        if (denied := await self._guard(request)) is not None:
            return denied
        tasks: list[Obj] = []
        for app_id, d in await self._deployments():
            tasks += [task_view(p, app_id) for p in await self._pods(d)]
        wanted = request.query.getall("status", [])
        if wanted:
            states = {f"TASK_{s.upper()}" for s in wanted}
            tasks = [t for t in tasks if t["state"] in states]
        return web.json_response({"tasks": tasks})

    async def list_deployments(self, request: web.Request) -> web.StreamResponse:
        if (denied := await self._guard(request)) is not None:
            return denied
        return web.json_response([deployment_view(d, app_id) for app_id, d in await self._deployments()
                                  if rolling(d)])

    async def cancel_deployment(self, request: web.Request) -> web.StreamResponse:
        """Cancel a rollout: roll the app back to its previous template (Marathon's default), or with
        `force=true` just stop tracking it (the rollout continues, as Marathon leaves the app as it is)."""
        if (denied := await self._guard(request)) is not None:
            return denied
        wanted = request.match_info["id"]
        for app_id, d in await self._deployments():
            if deployment_id(d) != wanted or not rolling(d):
                continue
            if request.query.get("force") == "true":
                return web.Response(status=202)
            rss = [rs for rs in (await self.client.list(REPLICASETS, self.namespace)).get("items") or []
                   if any(o.get("uid") == d["metadata"].get("uid")
                          for o in (rs.get("metadata") or {}).get("ownerReferences") or [])]
            current = int(((d["metadata"].get("annotations") or {}).get(REVISION)) or 0)
            template = previous_template(rss, current)
            if template is None:
                return message(409, f"Deployment {wanted} of {app_id} has no previous version to roll back to")
            written = await self.client.patch(
                DEPLOYMENTS, self.namespace, d["metadata"]["name"],
                Patch("json", [{"op": "replace", "path": "/spec/template", "value": template}]),
                field_manager="skiff-marathon-api")
            return web.json_response({"deploymentId": deployment_id(written), "version": self._version()})
        return message(404, f"DeploymentPlan {wanted} does not exist")

    async def create_group(self, request: web.Request) -> web.StreamResponse:
        """POST /v2/groups: every app of the group tree, each deployed (and validated) as its own app."""
        if (denied := await self._guard(request)) is not None:
            return denied
        raw = await request.read()
        try:
            translation = translate_marathon(BODY_PATH, raw.decode(errors="replace"), self.namespace)
        except TranslateError as e:
            return invalid(json_path(e.key), e.why)
        per_app: dict[str, list[Obj]] = {}
        for obj in translation.objects:
            per_app.setdefault(((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_MARATHON_APP, ""),
                               []).append(obj)
        for label, objects in per_app.items():
            app_id = next((str((o["metadata"].get("annotations") or {}).get(APP_ID_ANNOTATION))
                           for o in objects if o.get("kind") in deploy.WORKLOAD_KINDS), label)
            result = await self._deploy(Translation(objects, []), app_id, label)
            if isinstance(result, web.Response):
                return result
        dep = str(uuid.uuid4())
        return web.json_response({"deploymentId": dep, "version": self._version()}, status=201,
                                 headers={"Marathon-Deployment-Id": dep})


def _definition(deployment: Obj) -> Obj:
    """The app JSON the Deployment was made from, with the live instance count (kubectl scale shows through)."""
    from skiff.translate.marathon import APP_DEFINITION_ANNOTATION

    md = deployment.get("metadata") or {}
    annotations = {**(((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
        "annotations", {}), **(md.get("annotations") or {})}
    try:
        loaded = json.loads(annotations.get(APP_DEFINITION_ANNOTATION, "{}"))
    except ValueError:
        loaded = {}
    definition: Obj = loaded if isinstance(loaded, dict) else {}
    definition["instances"] = (deployment.get("spec") or {}).get("replicas", definition.get("instances", 1))
    return definition


Route = tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]


def routes(client: Client, *, namespace: str = "marathon", authenticate: Authenticate) -> list[Route]:
    """Marathon's `/v2/` routes as (method, path, handler), for the API server's `extra_routes`."""
    api = MarathonAPI(client, namespace, authenticate)
    return [
        ("GET", "/v2/ping", api.ping),
        ("GET", "/v2/info", api.info),
        ("GET", "/v2/apps", api.list_apps),
        ("POST", "/v2/apps", api.create_app),
        ("POST", "/v2/apps/", api.create_app),
        ("POST", "/v2/apps/{id:.+}/restart", api.restart_app),
        ("GET", "/v2/apps/{id:.+}/tasks", api.app_tasks),
        ("GET", "/v2/apps/{id:.+}", api.get_app),
        ("PUT", "/v2/apps/{id:.+}", api.put_app),
        ("PATCH", "/v2/apps/{id:.+}", api.put_app),
        ("DELETE", "/v2/apps/{id:.+}", api.delete_app),
        ("GET", "/v2/tasks", api.all_tasks),
        ("GET", "/v2/deployments", api.list_deployments),
        ("DELETE", "/v2/deployments/{id}", api.cancel_deployment),
        ("POST", "/v2/groups", api.create_group),
    ]


def install(app: web.Application, client: Client, *, namespace: str = "marathon",
            authenticate: Authenticate) -> None:
    """Add Marathon's `/v2/` routes to `app` (before any catch-all route: aiohttp matches in order)."""
    for method, path, handler in routes(client, namespace=namespace, authenticate=authenticate):
        app.router.add_route(method, path, handler)
