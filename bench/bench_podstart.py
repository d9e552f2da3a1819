"""Pod start benchmark: create → Ready on real containerd, beside bare `ctr run` and Docker Swarm.

Run: `python bench/bench_podstart.py [--pods 20] [--replicas 50] [--with-docker]` (root, containerd, runc, CNI
plugins, busybox). One `skiff server` with its embedded node agent on loopback and a temporary data dir,
the test web image preloaded. Measured, each after one unmeasured warm-up:

- skiff, one pod at a time: POST → the pod's Ready condition True, seen on a watch opened before the POST;
- skiff, a Deployment of `--replicas`: POST → `status.readyReplicas` == replicas, seen on a watch;
- bare `ctr run -d --net-host` of the same image on the agent's own containerd: process start → `/ready` 200
  (polled every 10 ms). Host networking skips CNI, so this figure is a lower bound for a pod;
- Docker Swarm (when `dockerd` exists, or `--with-docker` installs Debian's docker.io): `docker service create
  --replicas N` → `docker service ls` shows N/N (polled every 100 ms).

Prints one JSON line of figures and the goal checks (p50 within 1.3x of ctr, N replicas faster than Swarm).
Waits for no other node agent (`skiff0` absent) first; removes everything it created, also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _docker import HostSnapshot, PrivateSwarm, dockerd_available

from skiff.agent.containerd import ContainerdConfig
from skiff.agent.images.testimages import WEB_IMAGE, build_test_images
from skiff.testing import ServerProcess, agent_prerequisites, free_port

NAMESPACE = "default"
CTR_NAMESPACE = "k8s.io"


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (with 20 samples, p99 is the slowest one)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def wait_for_no_agent(timeout: float) -> None:
    """Only one node agent fits on this machine (one skiff0 bridge): wait until nobody else runs one."""
    deadline = time.monotonic() + timeout
    while subprocess.run(["ip", "link", "show", "skiff0"], capture_output=True).returncode == 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"another node agent still holds skiff0 after {timeout}s")
        time.sleep(2)


class Watch:
    """A Kubernetes watch over one HTTPS connection; `events()` yields decoded objects as they arrive.

    Opened before the write it observes, so an event is read at most one TCP read after the server sends it.
    """

    def __init__(self, srv: ServerProcess, path: str, field_selector: str, timeout: float) -> None:
        ctx = ssl.create_default_context(cafile=str(srv.ca_file))
        self.conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=timeout)
        query = urllib.parse.urlencode({"watch": "true", "fieldSelector": field_selector})
        self.conn.request("GET", f"{path}?{query}", headers={"Authorization": f"Bearer {srv.token}"})
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise RuntimeError(f"watch {path}: HTTP {self.resp.status} {self.resp.read()[:300]!r}")

    def until(self, done: Callable[[str, dict[str, Any]], bool], deadline: float) -> float:
        """Read events until `done(type, object)`; returns the monotonic time the deciding event was read."""
        while time.monotonic() < deadline:
            line = self.resp.readline()
            if not line:
                raise RuntimeError("watch closed by the server")
            if not line.strip():
                continue
            event = json.loads(line)
            if done(event["type"], event["object"]):
                return time.monotonic()
        raise TimeoutError("watch deadline passed")

    def close(self) -> None:
        self.conn.close()


def pod_ready(kind: str, pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return kind != "DELETED" and any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def web_container() -> dict[str, Any]:
    """The web image as in tests/e2e, without resource limits (50 x 200m would not fit on 2 cores)."""
    return {
        "name": "web", "image": WEB_IMAGE, "imagePullPolicy": "IfNotPresent",
        "env": [{"name": "PORT", "value": "8080"}],
        "ports": [{"containerPort": 8080, "name": "http"}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1},
    }


def pod_manifest(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "podstart"}},
            "spec": {"terminationGracePeriodSeconds": 5, "containers": [web_container()]}}


def time_one_pod(srv: ServerProcess, name: str, timeout: float) -> float:
    """Seconds from the POST to Ready True; then deletes the pod and waits until it is gone."""
    base = f"/api/v1/namespaces/{NAMESPACE}/pods"
    watch = Watch(srv, base, f"metadata.name={name}", timeout)
    try:
        t0 = time.monotonic()
        status, body = srv.request("POST", base, pod_manifest(name))
        if status != 201:
            raise RuntimeError(f"create pod {name}: {status} {body}")
        t_ready = watch.until(pod_ready, t0 + timeout)
        srv.request("DELETE", f"{base}/{name}")
        watch.until(lambda kind, _: kind == "DELETED", time.monotonic() + timeout)
        return t_ready - t0
    finally:
        watch.close()


def _condition_time(kind: str) -> Callable[[dict[str, Any]], str | None]:
    def when(pod: dict[str, Any]) -> str | None:
        for c in (pod.get("status") or {}).get("conditions") or []:
            if c.get("type") == kind and c.get("status") == "True":
                return c.get("lastTransitionTime")  # type: ignore[no-any-return]
        return None
    return when


def _started_time(pod: dict[str, Any]) -> str | None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return ((statuses[0].get("state") or {}).get("running") or {}).get("startedAt")


# Where a replica's time goes, in order: the ReplicaSet creates it, the scheduler binds it, the agent starts
# its container, the readiness probe passes.
MILESTONES: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "created": lambda pod: pod["metadata"].get("creationTimestamp"),
    "scheduled": _condition_time("PodScheduled"),
    "started": _started_time,
    "ready": _condition_time("Ready"),
}


def per_second(created: str, pods: list[dict[str, Any]], when: Callable[[dict[str, Any]], str | None]) -> list[int]:
    """How many pods reached a milestone in each whole second after `created` (API timestamps have 1 s resolution).

    A flat histogram means pods get there one after another; a spike means they get there together.
    """
    start = datetime.fromisoformat(created.replace("Z", "+00:00"))
    offsets = []
    for pod in pods:
        if at := when(pod):
            seconds = (datetime.fromisoformat(at.replace("Z", "+00:00")) - start).total_seconds()
            offsets.append(max(0, int(seconds)))
    counts = [0] * (max(offsets, default=-1) + 1)
    for offset in offsets:
        counts[offset] += 1
    return counts


def time_deployment(srv: ServerProcess, replicas: int, timeout: float) -> tuple[float, dict[str, list[int]]]:
    """Seconds from the POST of a Deployment to `readyReplicas == replicas`, and `per_second` per milestone.

    Deletes the Deployment and waits for its pods to go afterwards.
    """
    base = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
    labels = {"app": "bench-web"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench-web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"terminationGracePeriodSeconds": 5, "containers": [web_container()]}}},
    }
    watch = Watch(srv, base, "metadata.name=bench-web", timeout)
    try:
        t0 = time.monotonic()
        status, body = srv.request("POST", base, deployment)
        if status != 201:
            raise RuntimeError(f"create deployment: {status} {body}")
        t_ready = watch.until(
            lambda kind, d: kind != "DELETED" and int((d.get("status") or {}).get("readyReplicas") or 0) >= replicas,
            t0 + timeout)
    finally:
        watch.close()
    _, pods = srv.request("GET", f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app%3Dbench-web")
    items = pods.get("items") or []
    histogram = {name: per_second(body["metadata"]["creationTimestamp"], items, when)
                 for name, when in MILESTONES.items()}
    srv.request("DELETE", f"{base}/bench-web")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, pods = srv.request("GET", f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app%3Dbench-web")
        if isinstance(pods, dict) and not pods.get("items"):
            break
        time.sleep(0.5)
    return t_ready - t0, histogram


class Ctr:
    """`ctr` against the agent's containerd; remembers every container it made so cleanup finds them all."""

    def __init__(self, socket: Path) -> None:
        self.base = ["ctr", "-a", str(socket), "-n", CTR_NAMESPACE]
        self.made: list[str] = []

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=60)
        if check and res.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)}: {res.stderr.strip()}")
        return res

    def time_one(self, name: str, timeout: float) -> float:
        """Seconds from starting `ctr run -d --net-host` to `/ready` answering 200 (polled every 10 ms).

        `--rm` cannot go with `-d` in ctr, so the container is removed explicitly afterwards.
        """
        port = free_port()
        url = f"http://127.0.0.1:{port}/ready"
        t0 = time.monotonic()
        self.made.append(name)
        self.run("run", "-d", "--net-host", "--env", f"PORT={port}", WEB_IMAGE, name)
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        elapsed = time.monotonic() - t0
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"{name} never served /ready")
            time.sleep(0.01)
        self.remove(name)
        return elapsed

    def remove(self, name: str) -> None:
        self.run("task", "kill", "-s", "SIGKILL", name, check=False)
        for _ in range(50):
            if self.run("task", "rm", "-f", name, check=False).returncode != 0:
                break  # no task left
            time.sleep(0.1)
        self.run("containers", "rm", name, check=False)
        if name in self.made:
            self.made.remove(name)

    def cleanup(self) -> None:
        for name in list(self.made):
            self.remove(name)


def node_ready(srv: ServerProcess) -> bool:
    _, nodes = srv.request("GET", "/api/v1/nodes")
    for node in (nodes.get("items") or []) if isinstance(nodes, dict) else []:
        for c in (node.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Ready" and c.get("status") == "True":
                return True
    return False


def bench_skiff(tmp: Path, web_archive: Path, args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Start the cluster, run the ctr, single-pod and Deployment measurements into `out`, and tear it all down."""
    wait_for_no_agent(args.agent_wait)
    srv = ServerProcess(tmp / "data", free_port(), agent=True,
                        extra_args=("--kubelet-port", str(free_port()), "--preload-image", str(web_archive)))
    ctr: Ctr | None = None
    try:
        srv.start(timeout=120)
        deadline = time.monotonic() + 120
        while not node_ready(srv):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the node never became Ready:\n{srv.logs()}")
            time.sleep(0.2)
        ctr = Ctr(ContainerdConfig.for_host(srv.data_dir / "agent").socket_path)
        tag = f"bench-{int(time.time()) % 100000}"
        ctr.time_one(f"{tag}-warmup", args.timeout)
        ctr_samples = [ctr.time_one(f"{tag}-{i}", args.timeout) for i in range(args.pods)]
        time_one_pod(srv, f"{tag}-warmup", args.timeout)
        pod_samples = [time_one_pod(srv, f"{tag}-{i}", args.timeout) for i in range(args.pods)]
        out.update({
            "skiff_pod_p50_seconds": round(percentile(pod_samples, 50), 3),
            "skiff_pod_p99_seconds": round(percentile(pod_samples, 99), 3),
            "ctr_p50_seconds": round(percentile(ctr_samples, 50), 3),
            "ctr_p99_seconds": round(percentile(ctr_samples, 99), 3),
            "ratio_p50": round(percentile(pod_samples, 50) / percentile(ctr_samples, 50), 2),
        })
        seconds, histogram = time_deployment(srv, args.replicas, args.timeout * 5)
        out["skiff_50_seconds"] = round(seconds, 2)
        out["skiff_50_pods_per_second_since_create"] = histogram
    finally:
        if ctr is not None:
            ctr.cleanup()
        srv.stop(timeout=60)
        srv.uninstall()


def bench_swarm(web_archive: Path, args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Swarm convergence for the same image and replica count, or the reason it was skipped."""
    why = dockerd_available(args.with_docker)
    if why:
        out["swarm_skipped"] = why
        return
    before = HostSnapshot.take()
    swarm = PrivateSwarm(free_port())
    try:
        swarm.start()
        swarm.docker("load", "-i", str(web_archive), timeout=120)
        health = "wget -q -O /dev/null http://127.0.0.1:8080/ready" if args.swarm_health else None
        seconds = swarm.converge(WEB_IMAGE, args.replicas, {"PORT": "8080"}, health, args.timeout * 5)
        out["swarm_50_seconds"] = round(seconds, 2)
        out["swarm_counts"] = "healthy tasks (health-cmd wget /ready, 1 s interval)" if health else \
            "running tasks (no health check)"
    finally:
        swarm.stop()
        out["swarm_host_leftovers_removed"] = before.remove_additions()


@contextlib.contextmanager
def overall_deadline(seconds: int) -> Iterator[None]:
    """Turn SIGALRM (the run's time bound) and SIGTERM into exceptions so every `finally` still cleans up."""
    def stop(signum: int, _frame: FrameType | None) -> None:
        raise TimeoutError(f"stopped by signal {signum} (bound: {seconds}s)")
    old_alarm = signal.signal(signal.SIGALRM, stop)
    old_term = signal.signal(signal.SIGTERM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old_alarm)
        signal.signal(signal.SIGTERM, old_term)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=20, help="sequential single pods (and ctr runs) to time")
    ap.add_argument("--replicas", type=int, default=50, help="Deployment / Swarm service replicas")
    ap.add_argument("--timeout", type=float, default=60.0, help="per pod (x5 for the replica runs)")
    ap.add_argument("--agent-wait", type=float, default=600.0, help="how long to wait for another agent to finish")
    ap.add_argument("--bound", type=int, default=1800, help="hard limit for the whole run, seconds")
    ap.add_argument("--with-docker", action="store_true", help="apt-get install docker.io if dockerd is missing")
    ap.add_argument("--swarm-health", action="store_true",
                    help="give the Swarm service a health-cmd mirroring the readiness probe (50 execs/s)")
    ap.add_argument("--no-skiff", action="store_true", help="measure only Swarm")
    args = ap.parse_args()
    if not args.no_skiff and (why := agent_prerequisites()):
        sys.exit(f"cannot run the node agent here: {why}")
    tmp = Path(tempfile.mkdtemp(prefix="skiff-podstart-"))
    out: dict[str, Any] = {"pods": args.pods, "replicas": args.replicas, "image": WEB_IMAGE}
    try:
        with overall_deadline(args.bound):
            web_archive = build_test_images(tmp / "images", with_pause=False)[WEB_IMAGE]
            if not args.no_skiff:
                bench_skiff(tmp, web_archive, args, out)
            bench_swarm(web_archive, args, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratio, skiff_n, swarm_n = out.get("ratio_p50"), out.get("skiff_50_seconds"), out.get("swarm_50_seconds")
    out["notes"] = ("ctr runs with --net-host (no CNI, no sandbox), so its figure is a lower bound for a pod; "
                    "Swarm runs with --bridge=none, so its tasks get a loopback-only network namespace; "
                    "percentiles are nearest-rank; one unmeasured warm-up precedes each series")
    out["goals"] = {
        "ratio_p50<=1.3": None if ratio is None else ratio <= 1.3,
        "skiff_50_seconds<swarm_50_seconds": None if skiff_n is None or swarm_n is None else skiff_n < swarm_n,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
