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
        try:
            ev, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            break  # the last document was cut when the watch was terminated

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


def apply(srv: ServerProcess, tmp: Path, name: str, text: str) -> None:
    path = tmp / name
    path.write_text(text)
    srv.kubectl("apply", "-f", str(path))


def test_statefulset_comes_up_in_order_with_claims(cluster: ServerProcess, tmp_path: Path) -> None:
    apply(cluster, tmp_path, "sts.yaml", """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: busybox, volumeMounts: [{name: data, mountPath: /data}]}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
""")
    cluster.kubectl("rollout", "status", "statefulset/db", "--timeout=90s")
    ps = sorted(pods(cluster, "app=db"), key=lambda p: p["metadata"]["name"])
    assert [p["metadata"]["name"] for p in ps] == ["db-0", "db-1", "db-2"]
    started = [p["status"]["startTime"] for p in ps]
    assert started == sorted(started)  # OrderedReady: each after the previous was Ready
    claims = json.loads(cluster.kubectl("get", "pvc", "-o", "json").stdout)["items"]
    assert {c["metadata"]["name"] for c in claims} >= {"data-db-0", "data-db-1", "data-db-2"}


def test_daemonset_skips_tainted_node(cluster: ServerProcess, tmp_path: Path) -> None:
    cluster.kubectl("taint", "node", "sim-node-2", "dedicated=db:NoSchedule")
    try:
        apply(cluster, tmp_path, "ds.yaml", """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: a, image: busybox}]}
""")
        cluster.kubectl("rollout", "status", "daemonset/agent", "--timeout=90s")
        nodes = sorted(p["spec"].get("nodeName") for p in pods(cluster, "app=agent"))
        assert nodes == ["sim-node-0", "sim-node-1"]
    finally:
        cluster.kubectl("taint", "node", "sim-node-2", "dedicated-")
        cluster.kubectl("delete", "daemonset", "agent")


def test_parallel_job_with_completions(cluster: ServerProcess, tmp_path: Path) -> None:
    apply(cluster, tmp_path, "job.yaml", """\
apiVersion: batch/v1
kind: Job
metadata: {name: five}
spec:
  parallelism: 2
  completions: 5
  template:
    spec:
      restartPolicy: Never
      containers: [{name: w, image: busybox}]
""")
    cluster.kubectl("wait", "--for=condition=Complete", "job/five", "--timeout=120s")
    job = json.loads(cluster.kubectl("get", "job", "five", "-o", "json").stdout)
    assert job["status"]["succeeded"] == 5


def test_anti_affinity_spreads_over_hostnames(cluster: ServerProcess, tmp_path: Path) -> None:
    apply(cluster, tmp_path, "spread.yaml", """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 3
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: spread}}
            topologyKey: kubernetes.io/hostname
      containers: [{name: s, image: busybox}]
""")
    cluster.kubectl("rollout", "status", "deployment/spread", "--timeout=90s")
    assert len({p["spec"]["nodeName"] for p in pods(cluster, "app=spread")}) == 3
    cluster.kubectl("scale", "deployment/spread", "--replicas=4")

    def fourth_pending() -> bool:
        pending = [p for p in pods(cluster, "app=spread") if not p["spec"].get("nodeName")]
        return len(pending) == 1
    wait_for(fourth_pending, "a fourth replica left Pending")
    cluster.kubectl("delete", "deployment", "spread")


def test_unschedulable_pod_reports_reasons(cluster: ServerProcess, tmp_path: Path) -> None:
    apply(cluster, tmp_path, "big.yaml", """\
apiVersion: v1
kind: Pod
metadata: {name: huge}
spec:
  containers: [{name: h, image: busybox, resources: {requests: {cpu: "1000"}}}]
""")

    def failed_event() -> str:
        evs = json.loads(cluster.kubectl("get", "events", "--field-selector",
                                         "involvedObject.name=huge,reason=FailedScheduling", "-o", "json").stdout)
        return " ".join(e["message"] for e in evs["items"])
    wait_for(lambda: "Insufficient cpu" in failed_event(), "a FailedScheduling event")
    assert "0/3 nodes are available: 3 Insufficient cpu." in failed_event()
    pod = json.loads(cluster.kubectl("get", "pod", "huge", "-o", "json").stdout)
    assert pod["status"]["phase"] == "Pending"
    cluster.kubectl("delete", "pod", "huge")


def test_cordon_drain_uncordon_honours_the_disruption_budget(cluster: ServerProcess, tmp_path: Path) -> None:
    apply(cluster, tmp_path, "drain.yaml", """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: drainme}
spec:
  replicas: 3
  selector: {matchLabels: {app: drainme}}
  template:
    metadata: {labels: {app: drainme}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: c, image: busybox}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: drainme}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: drainme}}
""")
    cluster.kubectl("rollout", "status", "deployment/drainme", "--timeout=90s")
    wait_for(lambda: cluster.kubectl_json("get", "pdb", "drainme")["status"].get("disruptionsAllowed") == 1,
             "the budget to allow one disruption")
    node = pods(cluster, "app=drainme")[0]["spec"]["nodeName"]
    try:
        cluster.kubectl("cordon", node)
        assert "SchedulingDisabled" in cluster.kubectl("get", "node", node).stdout
        out = cluster.kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--force",
                              "--timeout=120s", timeout=150).stdout
        assert f"node/{node} drained" in out
        # Evictions went through the budget: never fewer than minAvailable ready, and the node is empty of them.
        cluster.kubectl("rollout", "status", "deployment/drainme", "--timeout=90s")
        live = [p for p in pods(cluster, "app=drainme") if not p["metadata"].get("deletionTimestamp")]
        assert len(live) == 3 and all(p["spec"]["nodeName"] != node for p in live)
        # A direct eviction that would break the budget is refused with 429, as `kubectl drain` relies on.
        cluster.kubectl("scale", "deployment/drainme", "--replicas=2")
        wait_for(lambda: len([p for p in pods(cluster, "app=drainme")
                              if not p["metadata"].get("deletionTimestamp")]) == 2, "two replicas")
        wait_for(lambda: cluster.kubectl_json("get", "pdb", "drainme")["status"].get("disruptionsAllowed") == 0,
                 "the budget to allow no disruption")
        # A live pod: evicting one already being deleted is allowed whatever the budget (upstream canIgnorePDB).
        victim = next(p for p in pods(cluster, "app=drainme") if not p["metadata"].get("deletionTimestamp"))["metadata"]["name"]
        status, body = cluster.request("POST", f"/api/v1/namespaces/default/pods/{victim}/eviction",
                                       {"apiVersion": "policy/v1", "kind": "Eviction",
                                        "metadata": {"name": victim, "namespace": "default"}})
        assert status == 429, body
        assert "Cannot evict pod as it would violate the pod's disruption budget." in body["message"]
    finally:
        cluster.kubectl("uncordon", node)
    node_obj = cluster.kubectl_json("get", "node", node)
    assert not node_obj["spec"].get("unschedulable")
    cluster.kubectl("delete", "deployment", "drainme")
    cluster.kubectl("delete", "pdb", "drainme")
