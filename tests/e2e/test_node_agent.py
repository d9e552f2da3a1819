"""Real pods on containerd, driven by the real kubectl: `skiff server` with its embedded node agent.

Skipped (with the reason) where the agent cannot run: no root, no containerd/runc/CNI plugins or busybox.
The images are built locally from busybox-static and preloaded; one is pushed to a local registry with
htpasswd auth to exercise the real pull path. Everything the agent put on the host is removed at the end
(`skiff uninstall`).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from skiff.testing import ServerProcess, agent_prerequisites, free_port, have_kubectl

from .registry import LocalRegistry

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    why = agent_prerequisites()
    if why:
        pytest.skip(why)
    if not have_kubectl():
        pytest.skip("kubectl is not installed (the README's test command installs it)")
    from skiff.agent.images.testimages import build_test_images

    tmp = tmp_path_factory.mktemp("agent")
    (tmp / "home").mkdir()
    images = build_test_images(tmp / "images", with_pause=False)
    preload = [a for p in images.values() for a in ("--preload-image", str(p))]
    srv = ServerProcess(tmp / "data", free_port(), agent=True,
                        extra_args=("--kubelet-port", str(free_port()), *preload))
    try:
        srv.start(timeout=120)
        wait_for(lambda: " Ready " in srv.kubectl("get", "nodes", "--no-headers", check=False).stdout,
                 "the node to be Ready", 120)
        yield srv
    finally:
        srv.stop(timeout=30)
        srv.uninstall()


def wait_for(cond: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def apply(srv: ServerProcess, text: str) -> None:
    srv.kubectl("apply", "-f", "-", input=text)


def pod(srv: ServerProcess, name: str) -> dict[str, Any]:
    return json.loads(srv.kubectl("get", "pod", name, "-o", "json").stdout)  # type: ignore[no-any-return]


def container_status(srv: ServerProcess, name: str) -> dict[str, Any]:
    statuses = pod(srv, name).get("status", {}).get("containerStatuses") or [{}]
    return statuses[0]  # type: ignore[no-any-return]


def ready(srv: ServerProcess, name: str) -> bool:
    conds = {c["type"]: c["status"] for c in pod(srv, name).get("status", {}).get("conditions") or []}
    return conds.get("Ready") == "True"


WEB = """\
apiVersion: v1
kind: Pod
metadata: {name: %(name)s, labels: {app: %(name)s}}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: web
    image: skiff.local/test/web:1
    imagePullPolicy: IfNotPresent
    env: [{name: PORT, value: "8080"}]
    ports: [{containerPort: 8080, name: http}]
    readinessProbe: {httpGet: {path: /ready, port: http}, periodSeconds: 1, failureThreshold: 1}
    resources: {limits: {cpu: 200m, memory: 64Mi}}
"""


def test_pod_runs_with_an_ip_and_serves(cluster: ServerProcess) -> None:
    apply(cluster, WEB % {"name": "web"})
    wait_for(lambda: ready(cluster, "web"), "web to be Ready")
    wide = cluster.kubectl("get", "pods", "-o", "wide").stdout
    ip = pod(cluster, "web")["status"]["podIP"]
    assert ip.startswith("10.42.") and ip in wide
    st = container_status(cluster, "web")
    assert st["containerID"].startswith("containerd://") and st["imageID"] and st["started"] is True


def test_readiness_probe_flips_ready(cluster: ServerProcess) -> None:
    apply(cluster, WEB % {"name": "flip"})
    wait_for(lambda: ready(cluster, "flip"), "Ready")
    cluster.kubectl("exec", "flip", "--", "rm", "/www/ready")
    wait_for(lambda: not ready(cluster, "flip"), "not Ready after the probe fails")
    cluster.kubectl("exec", "flip", "--", "sh", "-c", "echo ok > /www/ready")
    wait_for(lambda: ready(cluster, "flip"), "Ready again")
    cluster.kubectl("delete", "pod", "flip", "--wait=false")


def test_configmap_and_secret_reach_the_container(cluster: ServerProcess) -> None:
    apply(cluster, """\
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: hello, app.conf: "mode=fast\\n"}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {password: s3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: conf}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: skiff.local/test/shell:1
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'echo "$GREETING $PASSWORD"; cat /etc/app/app.conf; cat /etc/sec/password; echo']
    env:
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: sec, key: password}}}
    volumeMounts: [{name: cfg, mountPath: /etc/app}, {name: sec, mountPath: /etc/sec}]
  volumes:
  - {name: cfg, configMap: {name: cfg}}
  - {name: sec, secret: {secretName: sec}}
""")
    wait_for(lambda: pod(cluster, "conf")["status"].get("phase") == "Succeeded", "the pod to complete")
    assert cluster.kubectl("logs", "conf").stdout.split() == ["hello", "s3cret", "mode=fast", "s3cret"]


def test_failing_liveness_probe_restarts_with_back_off(cluster: ServerProcess) -> None:
    apply(cluster, """\
apiVersion: v1
kind: Pod
metadata: {name: sick}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: skiff.local/test/shell:1
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
    livenessProbe: {exec: {command: ["false"]}, periodSeconds: 1, failureThreshold: 1}
""")
    wait_for(lambda: container_status(cluster, "sick").get("restartCount", 0) >= 2, "two restarts", 120)

    def reasons() -> set[str]:
        out = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=sick", "-o", "json").stdout
        return {e["reason"] for e in json.loads(out)["items"]}
    assert {"Unhealthy", "Killing"} <= reasons()
    # As upstream (kuberuntime doBackOff): the back-off holds from the third start on, 10 s doubling.
    wait_for(lambda: "BackOff" in reasons(), "a BackOff event", 60)
    cluster.kubectl("delete", "pod", "sick", "--wait=false")


def test_memory_hog_is_oom_killed(cluster: ServerProcess) -> None:
    apply(cluster, """\
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: skiff.local/test/shell:1
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'x=$(head -c 67108864 /dev/zero | tr "\\0" a); echo done']
    resources: {limits: {memory: 16Mi}}
""")
    def terminated() -> dict[str, Any] | None:
        return container_status(cluster, "hog").get("state", {}).get("terminated")  # type: ignore[no-any-return]
    t = wait_for(terminated, "the hog to be killed")
    assert t["reason"] == "OOMKilled" and t["exitCode"] == 137
    assert pod(cluster, "hog")["status"]["phase"] == "Failed"


def test_run_as_non_root_with_a_root_image_is_refused(cluster: ServerProcess) -> None:
    apply(cluster, """\
apiVersion: v1
kind: Pod
metadata: {name: rootless}
spec:
  securityContext: {runAsNonRoot: true}
  containers: [{name: c, image: skiff.local/test/shell:1, imagePullPolicy: IfNotPresent, command: [sleep, "60"]}]
""")
    def waiting() -> dict[str, Any] | None:
        return container_status(cluster, "rootless").get("state", {}).get("waiting")  # type: ignore[no-any-return]
    w = wait_for(lambda: (w := waiting()) and w.get("reason") == "CreateContainerConfigError" and w, "the refusal")
    assert w["message"] == "container has runAsNonRoot and image will run as root " \
        f'(pod: "rootless_default({pod(cluster, "rootless")["metadata"]["uid"]})", container: c)'
    cluster.kubectl("delete", "pod", "rootless", "--wait=false")


def test_pre_stop_hook_runs_before_sigterm(cluster: ServerProcess, tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    trace.mkdir()
    apply(cluster, f"""\
apiVersion: v1
kind: Pod
metadata: {{name: graceful}}
spec:
  terminationGracePeriodSeconds: 10
  containers:
  - name: c
    image: skiff.local/test/shell:1
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'trap "echo TERM >> /trace/log; exit 0" TERM; while true; do sleep 0.2; done']
    lifecycle: {{preStop: {{exec: {{command: [sh, -c, "echo PRESTOP >> /trace/log"]}}}}}}
    volumeMounts: [{{name: t, mountPath: /trace}}]
  volumes: [{{name: t, hostPath: {{path: {trace}, type: Directory}}}}]
""")
    wait_for(lambda: container_status(cluster, "graceful").get("state", {}).get("running"), "running")
    cluster.kubectl("delete", "pod", "graceful", timeout=60)
    assert (trace / "log").read_text().split() == ["PRESTOP", "TERM"]


def test_logs_exec_cp_and_port_forward(cluster: ServerProcess, tmp_path: Path) -> None:
    apply(cluster, """\
apiVersion: v1
kind: Pod
metadata: {name: talker}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: skiff.local/test/shell:1
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done']
""")
    wait_for(lambda: container_status(cluster, "talker").get("state", {}).get("running"), "running")
    proc = subprocess.Popen(["kubectl", "logs", "-f", "talker"], stdout=subprocess.PIPE, text=True, env=_env(cluster))
    try:
        assert proc.stdout is not None
        first = [proc.stdout.readline().strip() for _ in range(3)]
    finally:
        proc.terminate()
        proc.wait(10)
    assert first == ["line 0", "line 1", "line 2"]
    done = cluster.kubectl("exec", "talker", "--", "sh", "-c", "exit 3", check=False)
    assert done.returncode == 3
    assert cluster.kubectl("exec", "-i", "talker", "--", "cat", input="piped\n").stdout == "piped\n"
    src = tmp_path / "in.txt"
    src.write_text("copy me\n")
    cluster.kubectl("cp", str(src), "talker:/tmp/in.txt")
    cluster.kubectl("cp", "talker:/tmp/in.txt", str(tmp_path / "out.txt"))
    assert (tmp_path / "out.txt").read_text() == "copy me\n"
    cluster.kubectl("delete", "pod", "talker", "--wait=false")

    wait_for(lambda: ready(cluster, "web"), "web Ready")
    port = free_port()
    pf = subprocess.Popen(["kubectl", "port-forward", "pod/web", f"{port}:8080"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=_env(cluster))
    try:
        assert pf.stdout is not None and "Forwarding from" in pf.stdout.readline()
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as r:
            assert r.read().strip() == b"ok"
    finally:
        pf.terminate()
        pf.wait(10)


def test_top_reports_node_and_pod_usage(cluster: ServerProcess) -> None:
    wait_for(lambda: ready(cluster, "web"), "web Ready")
    def top_pods() -> str | None:
        r = cluster.kubectl("top", "pods", check=False)
        names = [line.split()[0] for line in r.stdout.splitlines()[1:] if line.strip()]
        return r.stdout if r.returncode == 0 and "web" in names else None
    out = wait_for(top_pods, "pod metrics", 90)
    assert out.splitlines()[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    nodes = wait_for(lambda: (r := cluster.kubectl("top", "nodes", check=False)).returncode == 0 and r.stdout,
                     "node metrics (two scrapes in a row)", 90)
    assert "MEMORY(bytes)" in nodes and len(nodes.splitlines()) == 2


def test_pull_with_credentials_and_a_wrong_password(cluster: ServerProcess, tmp_path: Path) -> None:
    from skiff.agent.containerd import ContainerdConfig, write_registry_host
    from skiff.agent.images.testimages import build_test_images

    reg = LocalRegistry(tmp_path / "registry").start()
    try:
        archive = build_test_images(tmp_path / "img", with_pause=False)["skiff.local/test/web:1"]
        ref = reg.push(archive, "private/web", "1")
        write_registry_host(ContainerdConfig.for_host(cluster.data_dir / "agent"), reg.host, f"http://{reg.host}")
        for name, password in (("good", reg.password), ("bad", "wrong")):
            auth = json.dumps({"auths": {reg.host: {"username": reg.user, "password": password}}})
            cluster.kubectl("create", "secret", "generic", f"creds-{name}", "--type=kubernetes.io/dockerconfigjson",
                            f"--from-literal=.dockerconfigjson={auth}")
            apply(cluster, f"""\
apiVersion: v1
kind: Pod
metadata: {{name: pulled-{name}}}
spec:
  terminationGracePeriodSeconds: 1
  imagePullSecrets: [{{name: creds-{name}}}]
  containers: [{{name: web, image: "{ref}", imagePullPolicy: Always}}]
""")
        wait_for(lambda: container_status(cluster, "pulled-good").get("state", {}).get("running"), "the pulled pod")
        wait_for(lambda: container_status(cluster, "pulled-bad").get("state", {}).get("waiting", {}).get("reason")
                 == "ImagePullBackOff", "ImagePullBackOff", 120)
    finally:
        for name in ("good", "bad"):
            cluster.kubectl("delete", "pod", f"pulled-{name}", "--wait=false", check=False)
        reg.stop()


def test_agent_restart_restarts_no_container(cluster: ServerProcess) -> None:
    wait_for(lambda: ready(cluster, "web"), "web Ready")
    before = container_status(cluster, "web")
    cluster.kill9()
    cluster.start(timeout=120)
    wait_for(lambda: " Ready " in cluster.kubectl("get", "nodes", "--no-headers", check=False).stdout, "Ready", 120)
    time.sleep(3)  # a few sync rounds of the restarted agent
    after = container_status(cluster, "web")
    assert (after["containerID"], after["restartCount"]) == (before["containerID"], before["restartCount"])
    assert ready(cluster, "web")


def _env(srv: ServerProcess) -> dict[str, str]:
    import os
    return {**os.environ, "KUBECONFIG": str(srv.kubeconfig), "HOME": str(srv.data_dir.parent / "home")}


EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "examples"
LOCAL_IMAGE = "skiff.local/test/web:1"


def _localize(obj: dict[str, Any]) -> dict[str, Any]:
    """The examples name public images (nginx, redis, their own services) that cannot be pulled here: run the
    local web image in their place, one replica, without their commands, probes, resources or placement rules
    (a one-node, two-core test machine), so what is checked is that each translated workload runs as containers."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template = spec.get("template")
    if not isinstance(template, dict):
        return obj
    if "replicas" in spec:
        spec["replicas"] = 1
    for key in ("parallelism", "completions"):
        if key in spec:
            spec[key] = 1
    pspec = template.setdefault("spec", {})
    for key in ("affinity", "nodeSelector", "topologySpreadConstraints", "initContainers"):
        pspec.pop(key, None)
    for c in pspec.get("containers") or []:
        c.update(image=LOCAL_IMAGE, imagePullPolicy="IfNotPresent")
        for key in ("command", "args", "livenessProbe", "readinessProbe", "startupProbe", "resources",
                    "securityContext", "volumeMounts"):
            c.pop(key, None)
    pspec.pop("volumes", None)
    return obj


def test_dialect_examples_run_as_real_containers(cluster: ServerProcess) -> None:
    import asyncio

    from skiff.cli import deploy
    from skiff.client.https import HTTPSClient
    from skiff.translate.compose import translate_compose
    from skiff.translate.marathon import translate_marathon
    from skiff.translate.model import LABEL_MARATHON_APP, LABEL_NOMAD_JOB, LABEL_STACK
    from skiff.translate.nomad import translate_nomad

    if not EXAMPLES.is_dir():
        pytest.skip(f"the shared examples are not at {EXAMPLES}")

    async def run() -> list[tuple[str, str, str]]:
        client = HTTPSClient.from_kubeconfig(cluster.kubeconfig)
        deployed: list[tuple[str, str, str]] = []  # (example, namespace, selector)
        try:
            for i, path in enumerate(sorted((EXAMPLES / "compose").glob("*.yml"))):
                stack = f"ex{i}"
                t = translate_compose([(str(path), path.read_text())], stack, {}, None)
                t.objects = [_localize(o) for o in t.objects]
                await deploy.apply(client, t, owner_kind="Namespace", owner_name=stack, namespace=stack,
                                   prune_label=f"{LABEL_STACK}={stack}", dialect="compose")
                deployed.append((path.name, stack, f"{LABEL_STACK}={stack}"))
            for path in sorted((EXAMPLES / "marathon").glob("*.json")):
                t = translate_marathon(str(path), path.read_text())
                t.objects = [_localize(o) for o in t.objects]
                label = t.objects[0]["metadata"]["labels"][LABEL_MARATHON_APP]
                await deploy.apply(client, t, owner_kind="Workload", owner_name=label, namespace="marathon",
                                   prune_label=f"{LABEL_MARATHON_APP}={label}", dialect="marathon")
                deployed.append((path.name, "marathon", f"{LABEL_MARATHON_APP}={label}"))
            for path in sorted((EXAMPLES / "nomad").glob("*.hcl")):
                t = translate_nomad(str(path), path.read_text(), {})
                t.objects = [_localize(o) for o in t.objects]
                job = t.objects[0]["metadata"]["labels"][LABEL_NOMAD_JOB]
                ns = t.objects[0]["metadata"].get("namespace") or "default"
                await deploy.apply(client, t, owner_kind="Workload", owner_name=job, namespace=ns,
                                   prune_label=f"{LABEL_NOMAD_JOB}={job}", dialect="nomad")
                deployed.append((path.name, ns, f"{LABEL_NOMAD_JOB}={job}"))
            return deployed
        finally:
            await client.close()

    deployed = asyncio.run(run())

    def running(ns: str, selector: str) -> bool:
        pods = json.loads(cluster.kubectl("get", "pods", "-n", ns, "-l", selector, "-o", "json").stdout)["items"]
        return bool(pods) and all(p["status"].get("phase") == "Running" and
                                  all(c.get("state", {}).get("running") for c in p["status"].get("containerStatuses") or [{}])
                                  for p in pods if not p["metadata"].get("deletionTimestamp"))

    for name, ns, selector in deployed:
        wait_for(lambda ns=ns, selector=selector: running(ns, selector), f"the pods of {name} running", 180)
    assert {n for n, _, _ in deployed} >= {p.name for p in (EXAMPLES / "compose").glob("*.yml")}
    for _name, ns, selector in deployed:
        if ns.startswith("ex"):
            cluster.kubectl("delete", "namespace", ns, "--wait=false")
        else:
            cluster.kubectl("delete", "deployments,daemonsets,jobs,cronjobs", "-n", ns, "-l", selector, "--wait=false")
