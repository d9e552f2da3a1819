"""The dialect front ends end to end: a real `skiff server --sim-nodes 3`, driven by `skiff stack|service|job`
as users type them (`python -m skiff.cli.main ...`, kubeconfig in $KUBECONFIG) and by Marathon REST calls on
the server's own port, with kubectl-free checks through the server's API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from skiff.testing import ServerProcess, start_server

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "examples"
WEB_REDIS = EXAMPLES / "compose" / "001-swarm-web-redis.compose.yml"
NOMAD_WEB = EXAMPLES / "nomad" / "001-web-app.nomad.hcl"
MARATHON_WEB = EXAMPLES / "marathon" / "001-web-app.marathon.json"
GIVE_UP = 60.0  # only turns a hang into a failure


def _has_subcommand(name: str) -> bool:
    from skiff.cli.main import build_parser

    parser = build_parser()
    return any(name in (getattr(a, "choices", None) or {}) for a in parser._actions)


needs_stack = pytest.mark.skipif(not _has_subcommand("stack"),
                                 reason="`skiff stack` is not wired into skiff/cli/main.py yet (integrator)")
needs_job = pytest.mark.skipif(not _has_subcommand("job"),
                               reason="`skiff job` is not wired into skiff/cli/main.py yet (integrator)")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("dialects"), extra_args=("--sim-nodes", "3"))
    try:
        yield srv
    finally:
        srv.stop()


def skiff(srv: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(srv.kubeconfig)}
    return subprocess.run([sys.executable, "-m", "skiff.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def until(probe: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + GIVE_UP
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.2)


def running_pods(srv: ServerProcess, namespace: str, selector: str) -> int:
    status, body = srv.request("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}")
    assert status == 200, body
    return sum(1 for p in body["items"] if (p.get("status") or {}).get("phase") == "Running"
               and not p["metadata"].get("deletionTimestamp"))


@needs_stack
def test_stack_lifecycle(cluster: ServerProcess) -> None:
    res = skiff(cluster, "stack", "deploy", "-c", str(WEB_REDIS), "e2e")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["Creating network e2e_webnet", "Creating service e2e_web",
                                       "Creating service e2e_redis"]
    assert "WARNING: " in res.stderr
    until(lambda: running_pods(cluster, "e2e", "skiff.io/stack%3De2e") == 4, "4 tasks running")
    until(lambda: "3/3" in skiff(cluster, "stack", "services", "e2e").stdout, "web 3/3")
    res = skiff(cluster, "stack", "services", "e2e")
    web = next(line for line in res.stdout.splitlines() if " e2e_web " in line)
    assert web.split()[2:] == ["replicated", "3/3", "nginx:latest", "*:80->80/tcp"]
    assert ["e2e", "2"] in [line.split() for line in skiff(cluster, "stack", "ls").stdout.splitlines()]
    ps = skiff(cluster, "stack", "ps", "e2e").stdout.splitlines()
    assert sorted(line.split()[1] for line in ps[1:]) == ["e2e_redis.1", "e2e_web.1", "e2e_web.2", "e2e_web.3"]

    res = skiff(cluster, "service", "scale", "e2e_web=2")
    assert (res.returncode, res.stdout) == (0, "e2e_web scaled to 2\n")
    until(lambda: running_pods(cluster, "e2e", "skiff.io/workload%3Dweb") == 2, "scaled to 2")
    res = skiff(cluster, "service", "logs", "e2e_web")
    assert res.returncode == 0 or "not available" in res.stderr or "Error response from daemon" in res.stderr

    res = skiff(cluster, "stack", "deploy", "-c", str(WEB_REDIS), "e2e")
    assert res.returncode == 0 and "Updating service e2e_web" in res.stdout

    res = skiff(cluster, "stack", "rm", "e2e")
    assert res.returncode == 0 and "Removing service e2e_web" in res.stdout
    until(lambda: cluster.request("GET", "/api/v1/namespaces/e2e")[0] == 404, "stack namespace removed")


@needs_stack
def test_stack_bad_file_deploys_nothing(cluster: ServerProcess, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("services:\n  web:\n    image: [1]\n")
    res = skiff(cluster, "stack", "deploy", "-c", str(bad), "broken")
    assert res.returncode == 1 and res.stderr.startswith("Error: ")
    assert cluster.request("GET", "/api/v1/namespaces/broken")[0] == 404


@needs_job
def test_job_lifecycle(cluster: ServerProcess) -> None:
    res = skiff(cluster, "job", "run", "-detach", str(NOMAD_WEB))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("Job registration successful\nEvaluation ID: ")
    until(lambda: running_pods(cluster, "default", "skiff.io/nomad-job%3Dweb-app") == 3, "3 allocations")
    res = skiff(cluster, "job", "plan", str(NOMAD_WEB))
    assert res.returncode == 0 and res.stdout.startswith('Job: "web-app"\nTask Group: "web" (3 ignore)')
    res = skiff(cluster, "job", "status")
    assert res.stdout.splitlines()[1].split()[:4] == ["web-app", "service", "50", "running"]
    res = skiff(cluster, "job", "stop", "-purge", "web-app")
    assert res.returncode == 0
    until(lambda: running_pods(cluster, "default", "skiff.io/nomad-job%3Dweb-app") == 0, "allocations stopped")


def test_marathon_api(cluster: ServerProcess) -> None:
    status, _ = cluster.request("GET", "/v2/ping")
    if status != 200:
        pytest.skip("the Marathon API is not installed on the server yet (integrator: marathon_api.install)")
    status, body = cluster.request("POST", "/v2/apps", MARATHON_WEB.read_bytes())
    assert status == 201, body
    assert body["id"] == "/web-app"
    until(lambda: cluster.request("GET", "/v2/apps/web-app")[1]["app"]["tasksRunning"] == 3, "3 tasks running")
    status, body = cluster.request("GET", "/v2/apps/web-app/tasks")
    assert [t["state"] for t in body["tasks"]] == ["TASK_RUNNING"] * 3
    status, body = cluster.request("POST", "/v2/apps", MARATHON_WEB.read_bytes())
    assert (status, body["message"]) == (409, "An app with id [/web-app] already exists.")
    status, body = cluster.request("GET", "/v2/apps", token="not-a-token")
    assert status == 401
    status, body = cluster.request("DELETE", "/v2/apps/web-app")
    assert status == 200 and set(body) == {"deploymentId", "version"}
    until(lambda: running_pods(cluster, "marathon", "skiff.io/marathon-app%3Dweb-app") == 0, "tasks gone")
    assert json.loads(json.dumps(cluster.request("GET", "/v2/apps")[1])) == {"apps": []}
