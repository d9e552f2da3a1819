"""HTTPSClient specifics: URL paths, error mapping, kubeconfig credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from skiff.api.errors import ApiError
from skiff.client.https import HTTPSClient, KubeconfigError, error_from_response, resource_path
from skiff.client.interface import DEPLOYMENTS, LEASES, NAMESPACES, NODES, PODS, Resource


@pytest.mark.parametrize(
    ("res", "ns", "name", "sub", "want"),
    [
        pytest.param(PODS, "", "", "", "/api/v1/pods", id="core-all-namespaces"),
        pytest.param(
            PODS, "default", "p", "status", "/api/v1/namespaces/default/pods/p/status", id="core-status"
        ),
        pytest.param(NODES, "", "n1", "", "/api/v1/nodes/n1", id="cluster-scoped"),
        pytest.param(
            NAMESPACES, "", "kube-system", "", "/api/v1/namespaces/kube-system", id="namespace-object"
        ),
        pytest.param(
            DEPLOYMENTS, "ns", "d", "scale", "/apis/apps/v1/namespaces/ns/deployments/d/scale", id="group"
        ),
        pytest.param(
            LEASES,
            "kube-node-lease",
            "",
            "",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            id="dotted-group-collection",
        ),
        pytest.param(
            Resource("", "v1", "configmaps"),
            "ns",
            "a b",
            "",
            "/api/v1/namespaces/ns/configmaps/a%20b",
            id="name-quoted",
        ),
    ],
)
def test_resource_path(res: Resource, ns: str, name: str, sub: str, want: str) -> None:
    assert resource_path(res, ns, name, sub) == want


@pytest.mark.parametrize(
    ("code", "body", "want"),
    [
        pytest.param(
            404,
            b'{"kind":"Status","code":404,"reason":"NotFound","message":"pods \\"x\\" not found",'
            b'"details":{"name":"x","kind":"pods"}}',
            (404, "NotFound", 'pods "x" not found'),
            id="status",
        ),
        pytest.param(503, b"upstream down", (503, "ServiceUnavailable", "upstream down"), id="plain-text"),
        pytest.param(418, b"", (418, "Unknown", "the server responded with status 418"), id="empty-unknown"),
    ],
)
def test_error_from_response(code: int, body: bytes, want: tuple[int, str, str]) -> None:
    e = error_from_response(code, body)
    assert (e.code, e.reason, e.message) == want


def rewrite(kubeconfig: Path, out: Path, drop: str) -> Path:
    doc = yaml.safe_load(kubeconfig.read_text())
    for u in doc["users"]:
        for k in [k for k in u["user"] if k.startswith(drop)]:
            del u["user"][k]
    out.write_text(yaml.safe_dump(doc))
    return out


@pytest.mark.parametrize(
    "drop", [pytest.param("token", id="client-cert-only"), pytest.param("client-", id="token-only")]
)
async def test_either_credential_authenticates(https_kubeconfig: Path, tmp_path: Path, drop: str) -> None:
    client = HTTPSClient.from_kubeconfig(rewrite(https_kubeconfig, tmp_path / "kc.yaml", drop))
    try:
        ns = await client.get(NAMESPACES, "", "default")
        assert ns["metadata"]["name"] == "default"
    finally:
        await client.close()


async def test_no_credentials_is_401(https_kubeconfig: Path, tmp_path: Path) -> None:
    kc = rewrite(rewrite(https_kubeconfig, tmp_path / "a.yaml", "token"), tmp_path / "b.yaml", "client-")
    client = HTTPSClient.from_kubeconfig(kc)
    try:
        with pytest.raises(ApiError) as e:
            await client.get(NAMESPACES, "", "default")
        assert (e.value.code, e.value.reason) == (401, "Unauthorized")
    finally:
        await client.close()


def test_kubeconfig_without_the_context_is_an_error(tmp_path: Path) -> None:
    kc = tmp_path / "kc.yaml"
    kc.write_text(yaml.safe_dump({"current-context": "nope", "contexts": [], "clusters": [], "users": []}))
    with pytest.raises(KubeconfigError):
        HTTPSClient.from_kubeconfig(kc)
