"""Marathon's REST API over an in-process cluster, through aiohttp's test client and `install`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from test_deploy import EXAMPLES, gone, running_cluster

from skiff.cli import marathon_api as m
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import DEPLOYMENTS, NAMESPACES, SERVICES
from skiff.testing import eventually

Obj = dict[str, Any]
MARATHON = sorted((EXAMPLES / "marathon").glob("*.json"))
TOKEN = "secret-token"


async def allow_token(request: web.Request) -> bool:
    return request.headers.get("Authorization") == f"Bearer {TOKEN}"


class Api:
    """A Marathon client: the test client plus the cluster under it."""

    def __init__(self, http: TestClient[web.Request, web.Application], cluster: InProcessClient) -> None:
        self.http = http
        self.cluster = cluster

    async def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                   token: str = TOKEN) -> tuple[int, Any, dict[str, str]]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        resp = await self.http.request(method, path, data=data, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        text = await resp.text()
        try:
            decoded: Any = json.loads(text) if text else None
        except ValueError:
            decoded = text
        return resp.status, decoded, dict(resp.headers)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_cluster(tmp_path) as cluster:
        app = web.Application()
        m.install(app, cluster, authenticate=allow_token)
        async with TestClient(TestServer(app)) as http:
            yield Api(http, cluster)


def app_json(app_id: str = "/web", instances: int = 2, image: str = "nginx:latest") -> Obj:
    return {"id": app_id, "instances": instances, "cpus": 0.1, "mem": 64,
            "container": {"type": "DOCKER", "docker": {"image": image},
                          "portMappings": [{"containerPort": 80, "hostPort": 0}]}}


async def running(api: Api, app_id: str, n: int) -> bool:
    status, body, _ = await api.call("GET", f"/v2/apps{app_id}")
    return status == 200 and body["app"]["tasksRunning"] == n and body["app"]["instances"] == n


# --- pure ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "path"), [
    pytest.param("id", "/id", id="top"),
    pytest.param("container.docker.portMappings[0].hostPort", "/container/docker/portMappings(0)/hostPort",
                 id="nested-index"),
    pytest.param("", "/", id="document"),
])
def test_json_path(key: str, path: str) -> None:
    assert m.json_path(key) == path


@pytest.mark.parametrize(("raw", "norm"), [
    pytest.param("web", "/web", id="relative"),
    pytest.param("/prod/api/", "/prod/api", id="trailing-slash"),
    pytest.param("prod//api", "/prod/api", id="double-slash"),
])
def test_normalize_id(raw: str, norm: str) -> None:
    assert m.normalize_id(raw) == norm


def _deployment(generation: int, observed: int, replicas: int, updated: int, available: int, total: int) -> Obj:
    return {"metadata": {"uid": "u1", "generation": generation, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated,
                       "availableReplicas": available, "replicas": total}}


@pytest.mark.parametrize(("d", "expected"), [
    pytest.param(_deployment(1, 1, 3, 3, 3, 3), False, id="done"),
    pytest.param(_deployment(2, 1, 3, 3, 3, 3), True, id="not-observed"),
    pytest.param(_deployment(1, 1, 3, 1, 3, 4), True, id="updating"),
    pytest.param(_deployment(1, 1, 3, 3, 2, 3), True, id="unavailable"),
    pytest.param(_deployment(1, 1, 3, 3, 3, 5), True, id="old-pods-left"),
])
def test_rolling(d: Obj, expected: bool) -> None:
    assert m.rolling(d) is expected


def test_deployment_id_is_stable_per_generation() -> None:
    a, b = _deployment(1, 1, 3, 3, 3, 3), _deployment(2, 1, 3, 3, 3, 3)
    assert m.deployment_id(a) == m.deployment_id(_deployment(1, 0, 1, 0, 0, 0))
    assert m.deployment_id(a) != m.deployment_id(b)
    view = m.deployment_view(b, "/web")
    assert view["id"] == m.deployment_id(b)
    assert view["affectedApps"] == ["/web"]
    assert view["currentActions"][0]["action"] == "RestartApplication"


@pytest.mark.parametrize(("phase", "deleting", "state"), [
    pytest.param("Running", False, "TASK_RUNNING", id="running"),
    pytest.param("Pending", False, "TASK_STAGING", id="staging"),
    pytest.param("Failed", False, "TASK_FAILED", id="failed"),
    pytest.param("Succeeded", False, "TASK_FINISHED", id="finished"),
    pytest.param("Running", True, "TASK_KILLING", id="killing"),
])
def test_task_view(phase: str, deleting: bool, state: str) -> None:
    md: Obj = {"uid": "abc", "creationTimestamp": "2026-01-01T00:00:00Z"}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    pod = {"metadata": md, "spec": {"nodeName": "n1", "containers": [{"ports": [{"containerPort": 80}]}]},
           "status": {"phase": phase, "hostIP": "10.0.0.1", "podIPs": [{"ip": "10.42.0.5"}],
                      "startTime": "2026-01-01T00:00:01Z"}}
    task = m.task_view(pod, "/prod/web")
    assert task["state"] == state
    assert task["id"] == "prod.web.abc"
    assert (task["appId"], task["host"], task["ports"]) == ("/prod/web", "10.0.0.1", [80])
    assert task["ipAddresses"] == [{"ipAddress": "10.42.0.5", "protocol": "IPv4"}]
    assert task["stagedAt"] == "2026-01-01T00:00:00.000Z"


# --- the API ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", MARATHON, ids=[p.name for p in MARATHON])
async def test_post_the_examples_as_curl_does(api: Api, path: Path) -> None:
    """`curl -X POST .../v2/apps -H 'Content-Type: application/json' -d @file.json`"""
    status, body, headers = await api.call("POST", "/v2/apps", raw=path.read_bytes())
    assert status == 201, body
    app = json.loads(path.read_text())
    app_id = m.normalize_id(app["id"])
    assert body["id"] == app_id
    assert body["instances"] == app.get("instances", 1)
    assert headers["Marathon-Deployment-Id"] == body["deployments"][0]["id"]
    assert headers["Location"] == f"/v2/apps{app_id}"
    await eventually(lambda: running(api, app_id, app.get("instances", 1)), f"{app_id} running")
    status, body, _ = await api.call("GET", f"/v2/apps{app_id}/tasks")
    assert status == 200
    assert [t["state"] for t in body["tasks"]] == ["TASK_RUNNING"] * app.get("instances", 1)
    status, body, _ = await api.call("POST", "/v2/apps", raw=path.read_bytes())
    assert (status, body) == (409, {"message": f"An app with id [{app_id}] already exists.", "deployments": []})


async def test_app_lifecycle_with_a_nested_id(api: Api) -> None:
    status, body, _ = await api.call("POST", "/v2/apps", app_json("/prod/api", 2))
    assert status == 201
    assert not await gone(api.cluster, NAMESPACES, "", "marathon")
    await eventually(lambda: running(api, "/prod/api", 2), "2 tasks")

    status, body, _ = await api.call("GET", "/v2/apps")
    assert [a["id"] for a in body["apps"]] == ["/prod/api"]
    status, body, _ = await api.call("GET", "/v2/tasks")
    assert len(body["tasks"]) == 2 and {t["appId"] for t in body["tasks"]} == {"/prod/api"}

    status, body, headers = await api.call("PUT", "/v2/apps/prod/api", app_json("/prod/api", 3, "nginx:1.27"))
    assert status == 200
    assert set(body) == {"deploymentId", "version"}
    assert headers["Marathon-Deployment-Id"] == body["deploymentId"]
    d = await api.cluster.get(DEPLOYMENTS, "marathon", "prod-api")
    assert d["spec"]["replicas"] == 3
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"

    status, body, _ = await api.call("PATCH", "/v2/apps/prod/api", {"instances": 1})
    assert status == 200
    d = await api.cluster.get(DEPLOYMENTS, "marathon", "prod-api")
    assert d["spec"]["replicas"] == 1
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    await eventually(lambda: running(api, "/prod/api", 1), "1 task")
    await eventually(lambda: _no_deployments(api), "rollout finished")

    status, body, _ = await api.call("POST", "/v2/apps/prod/api/restart")
    assert status == 200 and set(body) == {"deploymentId", "version"}
    d = await api.cluster.get(DEPLOYMENTS, "marathon", "prod-api")
    assert m.RESTARTED_AT in d["spec"]["template"]["metadata"]["annotations"]

    status, body, _ = await api.call("DELETE", "/v2/apps/prod/api")
    assert status == 200 and set(body) == {"deploymentId", "version"}
    status, body, _ = await api.call("GET", "/v2/apps/prod/api")
    assert (status, body) == (404, {"message": "App '/prod/api' does not exist"})
    await eventually(lambda: gone(api.cluster, SERVICES, "marathon", "prod-api"), "service removed")


async def _no_deployments(api: Api) -> bool:
    status, body, _ = await api.call("GET", "/v2/deployments")
    return status == 200 and body == []


async def test_put_creates_a_missing_app(api: Api) -> None:
    status, body, headers = await api.call("PUT", "/v2/apps/fresh", {k: v for k, v in app_json().items()
                                                                      if k != "id"})
    assert status == 201 and set(body) == {"deploymentId", "version"}
    assert headers["Location"] == "/v2/apps/fresh"
    assert (await api.cluster.get(DEPLOYMENTS, "marathon", "fresh"))["spec"]["replicas"] == 2


@pytest.mark.parametrize(("method", "path", "body", "status", "expected"), [
    pytest.param("POST", "/v2/apps", {"instances": 1}, 422,
                 {"message": "Object is not valid", "details": [{"path": "/id", "errors": ["error.path.missing"]}]},
                 id="missing-id"),
    pytest.param("POST", "/v2/apps", [1], 422,
                 {"message": "Object is not valid", "details": [{"path": "/", "errors": ["error.expected.jsobject"]}]},
                 id="not-an-object"),
    pytest.param("GET", "/v2/apps/nope", None, 404, {"message": "App '/nope' does not exist"}, id="unknown-app"),
    pytest.param("DELETE", "/v2/apps/nope", None, 404, {"message": "App '/nope' does not exist"}, id="delete-unknown"),
    pytest.param("PATCH", "/v2/apps/nope", {"instances": 1}, 404, {"message": "App '/nope' does not exist"},
                 id="patch-unknown"),
    pytest.param("DELETE", "/v2/deployments/x", None, 404, {"message": "DeploymentPlan x does not exist"},
                 id="unknown-deployment"),
])
async def test_errors(api: Api, method: str, path: str, body: Any, status: int, expected: Obj) -> None:
    got, answer, _ = await api.call(method, path, body)
    assert (got, answer) == (status, expected)


async def test_invalid_field_is_422_with_its_path(api: Api) -> None:
    app = app_json()
    app["instances"] = "three"
    status, body, _ = await api.call("POST", "/v2/apps", app)
    assert status == 422
    assert body["message"] == "Object is not valid"
    assert body["details"][0]["path"] == "/instances"
    assert await gone(api.cluster, DEPLOYMENTS, "marathon", "web")


async def test_bad_json_is_400(api: Api) -> None:
    status, body, _ = await api.call("POST", "/v2/apps", raw=b"{not json")
    assert status == 400
    assert body["message"] == "Invalid JSON"


async def test_authentication_is_required(api: Api) -> None:
    status, body, _ = await api.call("GET", "/v2/apps", token="wrong")
    assert (status, body) == (401, {"message": "Invalid username or password."})
    status, body, _ = await api.call("POST", "/v2/apps", app_json(), token="wrong")
    assert status == 401
    assert await gone(api.cluster, DEPLOYMENTS, "marathon", "web")


async def test_ping_and_info(api: Api) -> None:
    status, body, _ = await api.call("GET", "/v2/ping")
    assert (status, body) == (200, "pong")
    status, body, _ = await api.call("GET", "/v2/info")
    assert status == 200 and body["name"] == "marathon" and body["version"] == m.MARATHON_VERSION


async def test_groups_deploy_every_app(api: Api) -> None:
    group = {"id": "/shop", "apps": [app_json("/shop/front", 1), app_json("/shop/back", 1)]}
    status, body, headers = await api.call("POST", "/v2/groups", group)
    assert status == 201 and headers["Marathon-Deployment-Id"] == body["deploymentId"]
    for app_id in ("/shop/front", "/shop/back"):
        await eventually(lambda app_id=app_id: running(api, app_id, 1), f"{app_id} running")
