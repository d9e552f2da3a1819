"""Every Kubernetes example in ../shared/examples applies cleanly once its CRDs exist; kinds that
Kubernetes 1.32 does not serve are refused exactly as upstream refuses them, and nothing is stored."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from skiff.testing import ServerProcess

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "examples" / "kubernetes"
CRDS = Path(__file__).parent / "data" / "third-party-crds.yaml"
# Examples Kubernetes 1.32 refuses too, with the reason it gives: kinds it does not serve, and fragments
# (Deployments without a selector, a StatefulSet mounting a volume it never declares).
REFUSED = {
    "000-ha-cluster-architecture.yaml": 'no matches for kind "Cluster" in version "v1"',
    "000-podsecuritypolicy-restricted.yaml": 'no matches for kind "PodSecurityPolicy" in version "policy/v1beta1"',
    "002-podsecuritypolicy.yaml": 'no matches for kind "PodSecurityPolicy" in version "policy/v1beta1"',
    "000-deployment-probes.yaml": "spec.selector: Required value",
    "000-deployment-resource-limits.yaml": "spec.selector: Required value",
    "000-deployment-restart-lifecycle.yaml": "spec.selector: Required value",
    "002-statefulset-mysql.yaml": 'volumeMounts[1].name: Not found: "mysql-config"',
}


def _docs(path: Path) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _files() -> list[Path]:
    if not EXAMPLES.is_dir():
        return []
    return sorted(EXAMPLES.glob("*.yaml"))


@pytest.fixture(scope="module")
def cluster(kube: ServerProcess) -> ServerProcess:
    kube.kubectl("apply", "-f", str(CRDS))
    kube.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    namespaces = {d.get("metadata", {}).get("namespace") for f in _files() for d in _docs(f)}  # type: ignore[union-attr]
    for ns in sorted(n for n in namespaces if n and n != "default"):
        kube.kubectl("create", "namespace", str(ns), check=False)
    return kube


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_example_applies(cluster: ServerProcess, path: Path) -> None:
    refused = REFUSED.get(path.name)
    deadline = time.monotonic() + 20
    while True:
        res = cluster.kubectl("apply", "-f", str(path), check=False)
        if res.returncode != 0 and "already exists" in res.stderr and time.monotonic() < deadline:
            # A controller created the object (Endpoints of a selector Service) between kubectl's GET and
            # POST; running apply again patches it, as a user would.
            continue        # Discovery of a just-established CRD can lag a moment on the client's cache; retry briefly.
        if res.returncode == 0 or refused or "no matches for kind" not in res.stderr or time.monotonic() > deadline:
            break
        cluster.kubectl("api-resources", check=False)
        time.sleep(0.5)
    if refused:
        assert res.returncode != 0
        assert refused in res.stderr
        return
    assert res.returncode == 0, res.stderr
    again = cluster.kubectl("apply", "-f", str(path)).stdout
    if any((d.get("spec") or {}).get("volumeClaimTemplates") for d in _docs(path)):  # type: ignore[union-attr]
        # The server fills apiVersion/kind/status into the atomic volumeClaimTemplates list, so kubectl's 3-way
        # patch re-sends it and reports "configured", as it does against upstream.
        assert "configured" in again or "unchanged" in again
    else:
        assert "unchanged" in again, again
