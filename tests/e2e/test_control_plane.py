"""The control plane acts on workloads as Kubernetes does, on simulated nodes, driven by the real kubectl."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from skiff.testing import ServerProcess, have_kubectl, start_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if not have_kubectl():
        pytest.skip("kubectl is not installed (the README's test command installs it)")
    srv = start_server(tmp_path_factory.mktemp("cp"), extra_args=("--sim-nodes", "3"))
    try:
        yield srv
    finally:
        srv.stop()


def wait_for(cond, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def pods(srv: ServerProcess, selector: str, ns: str = "default") -> list[dict]:  # type: ignore[type-arg]
    return json.loads(srv.kubectl("-n", ns, "get", "pods", "-l", selector, "-o", "json").stdout)["items"]


def test_nodes_register_ready(cluster: ServerProcess) -> None:
    wait_for(lambda: cluster.kubectl("get", "nodes", "--no-headers", check=False).stdout.count(" Ready ") == 3,
             "3 Ready nodes")


def test_deployment_rollout_update_undo_scale_delete(cluster: ServerProcess, tmp_path: Path) -> None:
    cluster.kubectl("create", "deployment", "web", "--image=nginx:1.25", "--replicas=3")
    cluster.kubectl("rollout", "status", "deployment/web", "--timeout=90s")
    assert all(p["status"]["phase"] == "Running" for p in pods(cluster, "app=web"))
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HOME": str(cluster.data_dir.parent / "home")}
    trace = subprocess.Popen(["kubectl", "get", "pods", "-l", "app=web", "-w", "-o", "json", "--output-watch-events"],
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        cluster.kubectl("set", "image", "deployment/web", "nginx=nginx:1.26")
        cluster.kubectl("rollout", "status", "deployment/web", "--timeout=90s")
    finally:
        trace.terminate()
        out, _ = trace.communicate(timeout=10)
    images = {c["image"] for p in pods(cluster, "app=web") if not p["metadata"].get("deletionTimestamp")
              for c in p["spec"]["containers"]}
    assert images == {"nginx:1.26"}
    # Never more than replicas + maxSurge (3 + 1) pods at once, from the watch trace.
    live: set[str] = set()
    peak = 0
    decoder = json.JSONDecoder()
    text, pos = out, 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        ev, pos = decoder.raw_decode(text, pos)
        name = ev["object"]["metadata"]["name"]
        if ev["type"] == "DELETED" or ev["object"]["metadata"].get("deletionTimestamp"):
            live.discard(name)
        else:
            live.add(name)
        peak = max(peak, len(live))
    assert peak <= 4, f"{peak} pods at once"
    cluster.kubectl("rollout", "undo", "deployment/web")
    cluster.kubectl("rollout", "status", "deployment/web", "--timeout=90s")
    d = json.loads(cluster.kubectl("get", "deployment", "web", "-o", "json").stdout)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    cluster.kubectl("scale", "deployment/web", "--replicas=5")
    cluster.kubectl("rollout", "status", "deployment/web", "--timeout=90s")
    assert len([p for p in pods(cluster, "app=web") if not p["metadata"].get("deletionTimestamp")]) == 5
    cluster.kubectl("delete", "deployment", "web")
    wait_for(lambda: not pods(cluster, "app=web") and not json.loads(
        cluster.kubectl("get", "rs", "-l", "app=web", "-o", "json").stdout)["items"], "pods and replicasets gone")


def test_job_completes(cluster: ServerProcess) -> None:
    cluster.kubectl("create", "job", "batch1", "--image=busybox")
    cluster.kubectl("wait", "--for=condition=Complete", "job/batch1", "--timeout=90s")


def test_namespace_deletion_removes_everything(cluster: ServerProcess) -> None:
    cluster.kubectl("create", "namespace", "doomed")
    cluster.kubectl("-n", "doomed", "create", "configmap", "c")
    cluster.kubectl("-n", "doomed", "create", "deployment", "d", "--image=busybox")
    cluster.kubectl("delete", "namespace", "doomed", "--timeout=90s")
    assert cluster.kubectl("get", "namespace", "doomed", check=False).returncode != 0
