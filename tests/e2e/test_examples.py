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
# Kinds removed from (or never in) Kubernetes: 1.32 answers `no matches for kind`.
UNSERVED = {("policy/v1beta1", "PodSecurityPolicy"), ("v1", "Cluster")}


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
    docs = _docs(path)
    unserved = [d for d in docs if (d.get("apiVersion"), d.get("kind")) in UNSERVED]
    deadline = time.monotonic() + 20
    while True:
        res = cluster.kubectl("apply", "-f", str(path), check=False)
        # Discovery of a just-established CRD can lag a moment on the client's cache; retry briefly.
        if res.returncode == 0 or unserved or "no matches for kind" not in res.stderr or time.monotonic() > deadline:
            break
        cluster.kubectl("api-resources", check=False)
        time.sleep(0.5)
    if unserved:
        assert res.returncode != 0
        assert "no matches for kind" in res.stderr
        return
    assert res.returncode == 0, res.stderr
    assert "unchanged" in cluster.kubectl("apply", "-f", str(path)).stdout
