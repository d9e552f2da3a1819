"""Node loss and schedules, with simulated nodes in separate processes the test can freeze."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from skiff.testing import ServerProcess, have_kubectl, start_server

pytestmark = pytest.mark.e2e


def wait_for(cond, what: str, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, subprocess.Popen[bytes]]]]:
    if not have_kubectl():
        pytest.skip("kubectl is not installed (the README's test command installs it)")
    tmp = tmp_path_factory.mktemp("loss")
    srv = start_server(tmp)
    sims: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for prefix in ("keep-", "lose-"):
            log = open(tmp / f"sim-{prefix}.log", "wb")  # noqa: SIM115 - owned by the child
            sims[prefix] = subprocess.Popen(
                [sys.executable, "-m", "skiff.cli.main", "sim-nodes", "--kubeconfig", str(srv.kubeconfig),
                 "--count", "1", "--prefix", prefix], stdout=log, stderr=subprocess.STDOUT)
            log.close()
        wait_for(lambda: srv.kubectl("get", "nodes", "--no-headers", check=False).stdout.count(" Ready ") == 2,
                 "2 Ready nodes")
        yield srv, sims
    finally:
        for p in sims.values():  # end only what we started, by PID
            p.send_signal(signal.SIGCONT)
            p.kill()
            p.wait()
        srv.stop()


def test_lost_node_pods_are_recreated_elsewhere(cluster: tuple[ServerProcess, dict[str, subprocess.Popen[bytes]]],
                                               tmp_path: Path) -> None:
    srv, sims = cluster
    spec = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: survivor}
spec:
  replicas: 4
  selector: {matchLabels: {app: survivor}}
  template:
    metadata: {labels: {app: survivor}}
    spec:
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      containers: [{name: s, image: busybox}]
"""
    (tmp_path / "d.yaml").write_text(spec)
    srv.kubectl("apply", "-f", str(tmp_path / "d.yaml"))
    srv.kubectl("rollout", "status", "deployment/survivor", "--timeout=90s")

    def placement() -> dict[str, int]:
        items = json.loads(srv.kubectl("get", "pods", "-l", "app=survivor", "-o", "json").stdout)["items"]
        out: dict[str, int] = {}
        for p in items:
            if not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") == "Running":
                out[p["spec"]["nodeName"]] = out.get(p["spec"]["nodeName"], 0) + 1
        return out

    assert placement().get("lose-0", 0) > 0, placement()
    sims["lose-"].send_signal(signal.SIGSTOP)  # the node goes silent: no lease renewals, no status
    wait_for(lambda: "Unknown" in srv.kubectl("get", "node", "lose-0", "-o",
                                              "jsonpath={.status.conditions[?(@.type=='Ready')].status}").stdout,
             "lose-0 Ready=Unknown", timeout=120)
    taints = srv.kubectl("get", "node", "lose-0", "-o", "jsonpath={.spec.taints[*].key}").stdout
    assert "node.kubernetes.io/unreachable" in taints
    wait_for(lambda: placement() == {"keep-0": 4}, "all 4 replicas running on keep-0", timeout=120)


def test_cronjob_creates_jobs_on_schedule(cluster: tuple[ServerProcess, dict[str, subprocess.Popen[bytes]]]) -> None:
    srv, _ = cluster
    srv.kubectl("create", "cronjob", "tick", "--image=busybox", "--schedule=* * * * *")

    def jobs() -> list[dict]:  # type: ignore[type-arg]
        items = json.loads(srv.kubectl("get", "jobs", "-o", "json").stdout)["items"]
        return [j for j in items if any(o.get("name") == "tick" for o in j["metadata"].get("ownerReferences", []))]
    wait_for(lambda: len(jobs()) >= 1, "a Job from the CronJob", timeout=130)
    cj = json.loads(srv.kubectl("get", "cronjob", "tick", "-o", "json").stdout)
    assert cj["status"].get("lastScheduleTime")
    assert jobs()[0]["metadata"]["name"].startswith("tick-")
