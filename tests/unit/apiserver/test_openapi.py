"""OpenAPI documents: shape checks for what kubectl reads, plus the real kubectl against a scaffolding server."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from skiff.api.resources import ResourceInfo, Subresource
from skiff.apiserver.openapi import OpenAPI, crd_definition_name, crd_schema_to_v2, gv_path, model_for_kind
from skiff.apiserver.openapi_schemas import DefinitionNames, required_fields, split_class

POD = ResourceInfo(
    "",
    "v1",
    "Pod",
    "pods",
    "pod",
    True,
    ("po",),
    ("all",),
    subresources=(
        Subresource("status", "", "v1", "Pod"),
        Subresource("log", "", "v1", "Pod", ("get",)),
        Subresource("eviction", "policy", "v1", "Eviction", ("create",)),
        Subresource("exec", "", "v1", "PodExecOptions", ("create", "get")),
    ),
)
NAMESPACE = ResourceInfo("", "v1", "Namespace", "namespaces", "namespace", False, ("ns",))
SERVICE = ResourceInfo("", "v1", "Service", "services", "service", True, ("svc",), ("all",))
DEPLOYMENT = ResourceInfo(
    "apps",
    "v1",
    "Deployment",
    "deployments",
    "deployment",
    True,
    ("deploy",),
    ("all",),
    subresources=(
        Subresource("status", "apps", "v1", "Deployment"),
        Subresource("scale", "autoscaling", "v1", "Scale"),
    ),
)
HPA_V2 = ResourceInfo(
    "autoscaling",
    "v2",
    "HorizontalPodAutoscaler",
    "horizontalpodautoscalers",
    "horizontalpodautoscaler",
    True,
    ("hpa",),
    ("all",),
)
RESOURCES = [POD, NAMESPACE, SERVICE, DEPLOYMENT, HPA_V2]

CRONTAB_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "crontabs.stable.example.com"},
    "spec": {
        "group": "stable.example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "crontabs",
            "singular": "crontab",
            "kind": "CronTab",
            "listKind": "CronTabList",
            "shortNames": ["ct"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "description": "CronTab runs a command on a schedule.",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "description": "Desired schedule.",
                                "required": ["cronSpec"],
                                "properties": {
                                    "cronSpec": {"type": "string", "description": "Cron expression."},
                                    "replicas": {"type": "integer", "description": "How many to run."},
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
    "status": {"conditions": [{"type": "Established", "status": "True"}]},
}


def _doc(api: OpenAPI, path: str) -> dict[str, Any]:
    raw = api.v3_document(path)
    assert raw is not None
    result: dict[str, Any] = orjson.loads(raw)
    return result


def _patch_ops(doc: dict[str, Any], gvk: dict[str, str]) -> list[dict[str, Any]]:
    """PATCH operations for a GVK, found the way cli-runtime's query_param_verifier_v3 scans them."""
    return [
        item["patch"]
        for item in doc["paths"].values()
        if "patch" in item and item["patch"].get("x-kubernetes-group-version-kind") == gvk
    ]


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref` directly or through a single-element `allOf`, as kubectl explain does."""
    ref = schema.get("$ref") or (schema.get("allOf") or [{}])[0].get("$ref")
    if ref:
        resolved: dict[str, Any] = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return resolved
    return schema


# --- names ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        pytest.param("V1Deployment", "io.k8s.api.apps.v1.Deployment", id="kind"),
        pytest.param("V1DeploymentList", "io.k8s.api.apps.v1.DeploymentList", id="list-kind"),
        pytest.param(
            "V1PodTemplateSpec", "io.k8s.api.core.v1.PodTemplateSpec", id="core-type-reached-from-apps"
        ),
        pytest.param(
            "V1RollingUpdateDeployment", "io.k8s.api.apps.v1.RollingUpdateDeployment", id="nested-apps"
        ),
        pytest.param("V1ObjectMeta", "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", id="meta"),
        pytest.param(
            "V1LabelSelector", "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector", id="meta-selector"
        ),
        pytest.param("V1Scale", "io.k8s.api.autoscaling.v1.Scale", id="scale-subresource"),
        pytest.param("V2MetricSpec", "io.k8s.api.autoscaling.v2.MetricSpec", id="v2-nested"),
        pytest.param("CoreV1EndpointPort", "io.k8s.api.core.v1.EndpointPort", id="group-prefixed-class"),
        pytest.param("V1TopologySelectorTerm", "io.k8s.api.core.v1.TopologySelectorTerm", id="override"),
        pytest.param("V1Eviction", "io.k8s.api.policy.v1.Eviction", id="eviction-subresource"),
    ],
)
def test_definition_names(cls: str, expected: str) -> None:
    names = DefinitionNames(
        [
            ("apps", "V1Deployment"),
            ("apps", "V1DeploymentList"),
            ("autoscaling", "V1Scale"),
            ("autoscaling", "V2HorizontalPodAutoscaler"),
            ("policy", "V1Eviction"),
        ]
    )
    assert names.name(cls) == expected


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        pytest.param("V1DeploymentSpec", ("selector", "template"), id="deployment-spec"),
        pytest.param("V1Container", ("name",), id="container"),
        pytest.param("V1PodSpec", ("containers",), id="pod-spec"),
        pytest.param("V1ObjectMeta", (), id="none"),
        pytest.param("V1OwnerReference", ("apiVersion", "kind", "name", "uid"), id="json-names"),
        pytest.param("NoSuchModel", (), id="unknown"),
    ],
)
def test_required_fields(cls: str, expected: tuple[str, ...]) -> None:
    assert required_fields(cls) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("V1Pod", ("", "v1", "Pod"), id="plain"),
        pytest.param("V2beta1Thing", ("", "v2beta1", "Thing"), id="beta"),
        pytest.param("EventsV1EventSeries", ("events", "v1", "EventSeries"), id="prefixed"),
        pytest.param("VersionInfo", None, id="unversioned"),
    ],
)
def test_split_class(value: str, expected: tuple[str, str, str] | None) -> None:
    assert split_class(value) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(("", "v1"), "api/v1", id="core"),
        pytest.param(("apps", "v1"), "apis/apps/v1", id="group"),
    ],
)
def test_gv_path(args: tuple[str, str], expected: str) -> None:
    assert gv_path(*args) == expected


@pytest.mark.parametrize(
    ("gvk", "expected"),
    [
        pytest.param(("apps", "v1", "Deployment"), "V1Deployment", id="plain"),
        pytest.param(
            ("authentication.k8s.io", "v1", "TokenRequest"),
            "AuthenticationV1TokenRequest",
            id="group-prefixed",
        ),
        pytest.param(("events.k8s.io", "v1", "Event"), "EventsV1Event", id="events"),
        pytest.param(("example.com", "v1", "Nope"), None, id="unknown"),
    ],
)
def test_model_for_kind(gvk: tuple[str, str, str], expected: str | None) -> None:
    assert model_for_kind(*gvk) == expected


def test_crd_definition_name_reverses_group() -> None:
    assert crd_definition_name("stable.example.com", "v1", "CronTab") == "com.example.stable.v1.CronTab"


# --- documents ------------------------------------------------------------------------------------------


def test_index_lists_every_group_version_with_hash() -> None:
    api = OpenAPI(RESOURCES)
    paths = api.v3_index()["paths"]
    assert sorted(paths) == ["api/v1", "apis/apps/v1", "apis/autoscaling/v2"]
    assert (
        paths["apis/apps/v1"]["serverRelativeURL"]
        == f"/openapi/v3/apis/apps/v1?hash={api.v3_hash('apis/apps/v1')}"
    )
    assert api.v3_hash("apis/nope/v1") == ""
    assert api.v3_document("apis/nope/v1") is None


@pytest.mark.parametrize(
    ("path", "gvk"),
    [
        pytest.param("api/v1", {"group": "", "kind": "Pod", "version": "v1"}, id="pod"),
        pytest.param("api/v1", {"group": "", "kind": "Namespace", "version": "v1"}, id="namespace"),
        pytest.param(
            "apis/apps/v1", {"group": "apps", "kind": "Deployment", "version": "v1"}, id="deployment"
        ),
        pytest.param("apis/apps/v1", {"group": "autoscaling", "kind": "Scale", "version": "v1"}, id="scale"),
        pytest.param(
            "apis/autoscaling/v2",
            {"group": "autoscaling", "kind": "HorizontalPodAutoscaler", "version": "v2"},
            id="hpa-v2",
        ),
    ],
)
def test_every_patch_op_has_field_validation_and_smp(path: str, gvk: dict[str, str]) -> None:
    doc = _doc(OpenAPI(RESOURCES), path)
    ops = _patch_ops(doc, gvk)
    assert ops, f"no PATCH operation for {gvk}"
    for op in ops:
        params = {p["name"]: p for p in op["parameters"]}
        assert params["fieldValidation"]["in"] == "query"
        assert {"dryRun", "fieldManager", "force"} <= set(params)
        assert "application/strategic-merge-patch+json" in op["requestBody"]["content"]
        assert op["x-kubernetes-action"] == "patch"


def test_item_and_collection_operations_of_a_namespaced_kind() -> None:
    doc = _doc(OpenAPI(RESOURCES), "apis/apps/v1")
    coll = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]
    item = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    actions = {
        m: op["x-kubernetes-action"]
        for m, op in {**coll, **{"i" + k: v for k, v in item.items()}}.items()
        if m not in ("parameters", "iparameters")
    }
    assert actions == {
        "get": "list",
        "post": "post",
        "delete": "deletecollection",
        "iget": "get",
        "iput": "put",
        "ipatch": "patch",
        "idelete": "delete",
    }
    assert item["get"]["operationId"] == "readAppsV1NamespacedDeployment"
    assert coll["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentList"
    }
    assert (
        doc["paths"]["/apis/apps/v1/deployments"]["get"]["operationId"]
        == "listAppsV1DeploymentForAllNamespaces"
    )


def test_cluster_scoped_kind_has_no_namespace_segment() -> None:
    doc = _doc(OpenAPI(RESOURCES), "api/v1")
    assert "/api/v1/namespaces/{name}" in doc["paths"]
    assert doc["paths"]["/api/v1/namespaces/{name}"]["get"]["operationId"] == "readCoreV1Namespace"


@pytest.mark.parametrize(
    ("suffix", "method", "action", "response"),
    [
        pytest.param(
            "status", "patch", "patch", {"$ref": "#/components/schemas/io.k8s.api.core.v1.Pod"}, id="status"
        ),
        pytest.param("log", "get", "get", {"type": "string"}, id="log-is-text"),
        pytest.param("exec", "post", "connect", {"type": "string"}, id="exec-connect"),
        pytest.param(
            "eviction",
            "post",
            "post",
            {"$ref": "#/components/schemas/io.k8s.api.policy.v1.Eviction"},
            id="eviction",
        ),
    ],
)
def test_pod_subresources(suffix: str, method: str, action: str, response: dict[str, str]) -> None:
    doc = _doc(OpenAPI(RESOURCES), "api/v1")
    op = doc["paths"][f"/api/v1/namespaces/{{namespace}}/pods/{{name}}/{suffix}"][method]
    assert op["x-kubernetes-action"] == action
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == response


@pytest.mark.parametrize(
    ("definition", "field", "expected"),
    [
        pytest.param(
            "io.k8s.api.core.v1.PodSpec",
            "containers",
            {
                "x-kubernetes-list-map-keys": ["name"],
                "x-kubernetes-list-type": "map",
                "x-kubernetes-patch-merge-key": "name",
                "x-kubernetes-patch-strategy": "merge",
            },
            id="containers-merge-by-name",
        ),
        pytest.param(
            "io.k8s.api.core.v1.PodSpec",
            "volumes",
            {
                "x-kubernetes-list-map-keys": ["name"],
                "x-kubernetes-list-type": "map",
                "x-kubernetes-patch-merge-key": "name",
                "x-kubernetes-patch-strategy": "merge,retainKeys",
            },
            id="volumes-retain-keys",
        ),
        pytest.param(
            "io.k8s.api.core.v1.Container",
            "ports",
            {
                "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                "x-kubernetes-list-type": "map",
                "x-kubernetes-patch-merge-key": "containerPort",
                "x-kubernetes-patch-strategy": "merge",
            },
            id="ports-two-keys",
        ),
        pytest.param(
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "finalizers",
            {"x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"},
            id="set",
        ),
        pytest.param("io.k8s.api.core.v1.Container", "args", {}, id="atomic-untagged"),
        pytest.param(
            "io.k8s.api.apps.v1.DeploymentSpec",
            "strategy",
            {"x-kubernetes-patch-strategy": "retainKeys"},
            id="retain-keys-map",
        ),
    ],
)
def test_patch_extensions(definition: str, field: str, expected: dict[str, Any]) -> None:
    doc = _doc(OpenAPI(RESOURCES), "apis/apps/v1")
    schema = doc["components"]["schemas"][definition]["properties"][field]
    assert {k: v for k, v in schema.items() if k.startswith("x-kubernetes-")} == expected


@pytest.mark.parametrize(
    ("definition", "field", "ref"),
    [
        pytest.param(
            "io.k8s.api.apps.v1.RollingUpdateDeployment",
            "maxSurge",
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
            id="int-or-string",
        ),
        pytest.param(
            "io.k8s.api.core.v1.ServicePort",
            "targetPort",
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
            id="target-port",
        ),
        pytest.param(
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "creationTimestamp",
            "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
            id="time",
        ),
        pytest.param(
            "io.k8s.api.core.v1.EmptyDirVolumeSource",
            "sizeLimit",
            "io.k8s.apimachinery.pkg.api.resource.Quantity",
            id="quantity",
        ),
        pytest.param(
            "io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry",
            "fieldsV1",
            "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
            id="fields-v1",
        ),
    ],
)
def test_special_scalar_refs(definition: str, field: str, ref: str) -> None:
    doc = _doc(OpenAPI(RESOURCES), "api/v1" if "Service" in definition else "apis/apps/v1")
    schema = doc["components"]["schemas"][definition]["properties"][field]
    assert schema["allOf"] == [{"$ref": f"#/components/schemas/{ref}"}]
    assert ref in doc["components"]["schemas"]


def test_quantity_maps_and_maps_of_strings() -> None:
    doc = _doc(OpenAPI(RESOURCES), "api/v1")
    schemas = doc["components"]["schemas"]
    limits = schemas["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]
    assert limits["additionalProperties"] == {
        "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"
    }
    labels = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["labels"]
    assert labels["type"] == "object" and labels["additionalProperties"] == {"type": "string"}


def test_documents_only_hold_reachable_schemas() -> None:
    doc = _doc(OpenAPI(RESOURCES), "apis/apps/v1")
    names = set(doc["components"]["schemas"])
    assert "io.k8s.api.core.v1.PodSpec" in names
    assert "io.k8s.api.core.v1.Pod" not in names  # not reachable from Deployment
    assert "io.k8s.api.core.v1.ServiceSpec" not in names
    for name, schema in doc["components"]["schemas"].items():
        for ref in _refs(schema):
            assert ref in names, f"{name} refers to missing {ref}"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_kind_schemas_carry_gvk_and_required() -> None:
    doc = _doc(OpenAPI(RESOURCES), "apis/apps/v1")
    schemas = doc["components"]["schemas"]
    assert schemas["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]
    assert schemas["io.k8s.api.apps.v1.DeploymentSpec"]["required"] == ["selector", "template"]


def test_documents_are_cached_and_rebuilt_only_when_crds_change() -> None:
    api = OpenAPI(RESOURCES)
    apps = api.v3_document("apis/apps/v1")
    assert api.v3_document("apis/apps/v1") is apps
    api.set_custom_resources([CRONTAB_CRD])
    assert api.v3_document("apis/apps/v1") is apps
    first_hash = api.v3_hash("apis/stable.example.com/v1")
    crd = orjson.loads(orjson.dumps(CRONTAB_CRD))
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["image"] = {
        "type": "string"
    }
    api.set_custom_resources([crd])
    assert api.v3_hash("apis/stable.example.com/v1") != first_hash
    assert b'"image"' in (api.v3_document("apis/stable.example.com/v1") or b"")
    api.set_custom_resources([])
    assert "apis/stable.example.com/v1" not in api.v3_index()["paths"]


def test_custom_resource_document() -> None:
    api = OpenAPI(RESOURCES)
    api.set_custom_resources([CRONTAB_CRD])
    doc = _doc(api, "apis/stable.example.com/v1")
    gvk = {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}
    ops = _patch_ops(doc, gvk)
    assert len(ops) == 2  # item and status
    for op in ops:
        assert "fieldValidation" in {p["name"] for p in op["parameters"]}
        assert "application/strategic-merge-patch+json" not in op["requestBody"]["content"]
        assert "application/merge-patch+json" in op["requestBody"]["content"]
    schemas = doc["components"]["schemas"]
    crontab = schemas["com.example.stable.v1.CronTab"]
    assert crontab["x-kubernetes-group-version-kind"] == [gvk]
    assert crontab["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    assert crontab["properties"]["spec"]["required"] == ["cronSpec"]
    assert schemas["com.example.stable.v1.CronTabList"]["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/com.example.stable.v1.CronTab"
    }
    assert CRONTAB_CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"].keys() == {"spec"}


def test_v2_document_uses_definitions() -> None:
    api = OpenAPI(RESOURCES)
    api.set_custom_resources([CRONTAB_CRD])
    doc = orjson.loads(api.v2_document())
    assert doc["swagger"] == "2.0"
    spec = doc["definitions"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["template"]
    assert spec == {"$ref": "#/definitions/io.k8s.api.core.v1.PodTemplateSpec"}
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in patch["consumes"]
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert "com.example.stable.v1.CronTab" in doc["definitions"]
    assert doc["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["type"] == "string"


# --- the real kubectl against a scaffolding server ------------------------------------------------------


def _discovery(resources: list[ResourceInfo], crds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Legacy APIResourceLists per group/version (test scaffolding only)."""
    out: dict[str, dict[str, Any]] = {}
    infos = list(resources)
    for crd in crds:
        spec = crd["spec"]
        for ver in spec["versions"]:
            infos.append(
                ResourceInfo(
                    spec["group"],
                    ver["name"],
                    spec["names"]["kind"],
                    spec["names"]["plural"],
                    spec["names"]["singular"],
                    spec["scope"] == "Namespaced",
                )
            )
    for info in infos:
        lst = out.setdefault(
            info.api_version,
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": info.api_version,
                "resources": [],
            },
        )
        lst["resources"].append(
            {
                "name": info.plural,
                "singularName": info.singular,
                "namespaced": info.namespaced,
                "kind": info.kind,
                "verbs": list(info.verbs),
                "shortNames": list(info.short_names),
            }
        )
    return out


@dataclass
class Scaffold:
    env: dict[str, str]  # environment for kubectl (HOME, KUBECONFIG)
    created: list[str]  # "path?query" of every POST the scaffolding server accepted
    patches: list[tuple[str, Any]]  # (content type, body) of every PATCH


@pytest.fixture
async def kubectl_env(tmp_path: Path) -> AsyncIterator[Scaffold]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed")
    api = OpenAPI(RESOURCES)
    api.set_custom_resources([CRONTAB_CRD])
    lists = _discovery(RESOURCES, [CRONTAB_CRD])
    groups: dict[str, list[str]] = {}
    for gv in lists:
        if "/" in gv:
            g, v = gv.split("/")
            groups.setdefault(g, []).append(v)

    async def handle(request: web.Request) -> web.Response:
        if request.path in stored:
            return web.json_response(stored[request.path])
        path = request.path.strip("/")
        if path == "version":
            return web.json_response(
                {"major": "1", "minor": "32", "gitVersion": "v1.32.0", "platform": "linux/amd64"}
            )
        if path == "api":
            return web.json_response(
                {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
            )
        if path == "apis":
            return web.json_response(
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [
                        {
                            "name": g,
                            "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                            "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
                        }
                        for g, vs in groups.items()
                    ],
                }
            )
        if path == "api/v1" or (path.startswith("apis/") and path.count("/") == 2):
            gv = path.removeprefix("api/").removeprefix("apis/")
            if gv in lists:
                return web.json_response(lists[gv])
        if path == "openapi/v3":
            return web.json_response(api.v3_index())
        if path.startswith("openapi/v3/"):
            doc = api.v3_document(path.removeprefix("openapi/v3/"))
            if doc is not None:
                return web.Response(body=doc, content_type="application/json")
        return web.json_response(
            {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404},
            status=404,
        )

    async def create(request: web.Request) -> web.Response:
        """Echo the object back, recording the query kubectl sent (to see which validation it chose)."""
        seen.append(f"{request.path}?{request.query_string}")
        body = await request.json()
        body.setdefault("metadata", {}).update({"namespace": "default", "uid": "u1", "resourceVersion": "1"})
        stored[f"{request.path}/{body['metadata']['name']}"] = body
        return web.json_response(body, status=201)

    async def patch(request: web.Request) -> web.Response:
        """Record the patch kubectl computed; answer with the stored object unchanged."""
        patches.append((request.content_type, await request.json()))
        return web.json_response(stored[request.path])

    seen: list[str] = []
    stored: dict[str, dict[str, Any]] = {}
    patches: list[tuple[str, Any]] = []
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    app.router.add_route("POST", "/{tail:.*}", create)
    app.router.add_route("PATCH", "/{tail:.*}", patch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
        f"clusters:\n- name: t\n  cluster:\n    server: http://127.0.0.1:{port}\n"
        "contexts:\n- name: t\n  context:\n    cluster: t\n    user: u\n"
        "users:\n- name: u\n  user: {}\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig)}
    try:
        yield Scaffold(env, seen, patches)
    finally:
        await runner.cleanup()


async def _kubectl_full(scaffold: Scaffold, *args: str) -> tuple[str, str]:
    proc = await asyncio.create_subprocess_exec(
        "kubectl", *args, env=scaffold.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode(), err.decode()


async def _kubectl(scaffold: Scaffold, *args: str) -> str:
    return (await _kubectl_full(scaffold, *args))[0]


async def test_kubectl_explain_deployment_strategy(kubectl_env: Scaffold) -> None:
    out = await _kubectl(kubectl_env, "explain", "deployment.spec.strategy")
    lines = out.splitlines()
    assert lines[:3] == ["GROUP:      apps", "KIND:       Deployment", "VERSION:    v1"]
    assert "FIELD: strategy <DeploymentStrategy>" in lines
    assert "FIELDS:" in lines
    assert "  rollingUpdate\t<RollingUpdateDeployment>" in lines
    assert "  type\t<string>" in lines
    assert any('Can be "Recreate" or "RollingUpdate"' in line for line in lines)


async def test_kubectl_explain_nested_int_or_string(kubectl_env: Scaffold) -> None:
    out = await _kubectl(kubectl_env, "explain", "deployment.spec.strategy.rollingUpdate")
    assert "  maxSurge\t<IntOrString>" in out.splitlines()


async def test_kubectl_explain_pod_containers(kubectl_env: Scaffold) -> None:
    out = await _kubectl(kubectl_env, "explain", "pods.spec.containers")
    lines = out.splitlines()
    assert lines[:2] == ["KIND:       Pod", "VERSION:    v1"]
    assert "FIELD: containers <[]Container>" in lines
    assert "  name\t<string> -required-" in lines
    assert "  resources\t<ResourceRequirements>" in lines
    assert "  ports\t<[]ContainerPort>" in lines
    assert "  env\t<[]EnvVar>" in lines


async def test_kubectl_explain_pods_top_level(kubectl_env: Scaffold) -> None:
    out = await _kubectl(kubectl_env, "explain", "pods")
    lines = out.splitlines()
    assert "  metadata\t<ObjectMeta>" in lines
    assert "  spec\t<PodSpec>" in lines
    assert "  apiVersion\t<string>" in lines


async def test_kubectl_explain_quantity_map(kubectl_env: Scaffold) -> None:
    out = await _kubectl(kubectl_env, "explain", "pods.spec.containers.resources")
    assert "  limits\t<map[string]Quantity>" in out.splitlines()


async def test_kubectl_explain_custom_resource(kubectl_env: Scaffold) -> None:
    out = await _kubectl(kubectl_env, "explain", "crontab.spec")
    lines = out.splitlines()
    assert lines[:3] == ["GROUP:      stable.example.com", "KIND:       CronTab", "VERSION:    v1"]
    assert "  cronSpec\t<string> -required-" in lines
    assert "  replicas\t<integer>" in lines
    assert "    Cron expression." in lines


@pytest.mark.parametrize(
    ("manifest", "expected_path"),
    [
        pytest.param(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n"
            "    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n"
            "      containers:\n      - name: web\n        image: nginx\n",
            "/apis/apps/v1/namespaces/default/deployments",
            id="deployment",
        ),
        pytest.param(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n"
            "    image: busybox\n",
            "/api/v1/namespaces/default/pods",
            id="pod",
        ),
        pytest.param(
            "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: c\nspec:\n"
            "  cronSpec: '* * * * *'\n",
            "/apis/stable.example.com/v1/namespaces/default/crontabs",
            id="custom-resource",
        ),
    ],
)
async def test_kubectl_create_leaves_validation_to_the_server(
    kubectl_env: Scaffold, tmp_path: Path, manifest: str, expected_path: str
) -> None:
    """With the PATCH op + fieldValidation found in /openapi/v3, kubectl skips client-side validation (which
    would need /openapi/v2, a 404 here) and asks the server for strict validation."""
    (tmp_path / "m.yaml").write_text(manifest)
    await _kubectl(kubectl_env, "create", "-f", str(tmp_path / "m.yaml"), "--namespace", "default")
    (request,) = kubectl_env.created
    path, _, query = request.partition("?")
    assert path == expected_path
    assert "fieldValidation=Strict" in query.split("&")


_DEPLOY_V1 = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n"
    "    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n"
    "      containers:\n      - name: web\n        image: nginx:1\n      - name: side\n        image: busybox\n"
)


async def test_kubectl_apply_computes_strategic_merge_patch_from_v3_schema(
    kubectl_env: Scaffold, tmp_path: Path
) -> None:
    """kubectl apply reads merge keys from the v3 document (`x-kubernetes-patch-merge-key`); a schema it
    cannot use shows up as a warning on stderr and a fallback."""
    manifest = tmp_path / "d.yaml"
    manifest.write_text(_DEPLOY_V1)
    await _kubectl(kubectl_env, "apply", "-f", str(manifest), "--namespace", "default")
    manifest.write_text(_DEPLOY_V1.replace("nginx:1", "nginx:2"))
    out, err = await _kubectl_full(kubectl_env, "apply", "-f", str(manifest), "--namespace", "default")
    assert out.strip() == "deployment.apps/web configured"
    assert "warning" not in err.lower(), err
    ((content_type, body),) = kubectl_env.patches
    assert content_type == "application/strategic-merge-patch+json"
    spec = body["spec"]["template"]["spec"]
    assert spec["$setElementOrder/containers"] == [{"name": "web"}, {"name": "side"}]
    assert spec["containers"] == [{"image": "nginx:2", "name": "web"}]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param({"type": "string", "nullable": True}, {"type": "string"}, id="nullable"),
        pytest.param(
            {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            {"x-kubernetes-int-or-string": True},
            id="any-of",
        ),
        pytest.param(
            {"type": "object", "properties": {"not": {"type": "string", "nullable": True}}},
            {"type": "object", "properties": {"not": {"type": "string"}}},
            id="property-named-like-a-keyword",
        ),
        pytest.param(
            {"type": "array", "items": {"oneOf": [{"type": "string"}], "type": "string"}},
            {"type": "array", "items": {"type": "string"}},
            id="items",
        ),
        pytest.param({"enum": ["not", "oneOf"]}, {"enum": ["not", "oneOf"]}, id="values-untouched"),
    ],
)
def test_crd_schema_to_v2(given: dict[str, Any], expected: dict[str, Any]) -> None:
    assert crd_schema_to_v2(given) == expected
