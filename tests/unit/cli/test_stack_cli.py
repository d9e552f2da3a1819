"""`skiff stack` / `skiff service`: Docker's formats by tables, and the commands against an in-process cluster."""

from __future__ import annotations

import argparse
import datetime as dt
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_deploy import EXAMPLES, all_running, gone, running_cluster

from skiff.cli import deploy, stack
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import DEPLOYMENTS, NAMESPACES, PODS, Client
from skiff.translate.model import LABEL_STACK, LABEL_WORKLOAD

Obj = dict[str, Any]
WEB_REDIS = EXAMPLES / "compose" / "001-swarm-web-redis.compose.yml"
NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skiff")
    stack.add_parsers(p.add_subparsers(dest="command", required=True))
    return p


async def run(client: Client, *argv: str) -> tuple[int, str, str]:
    args = parser().parse_args(list(argv))
    out, err = io.StringIO(), io.StringIO()
    code = await args.handler(client, args, out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[InProcessClient]:
    async with running_cluster(tmp_path) as client:
        yield client


# --- pure formatting ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "text"), [
    pytest.param(0.5, "Less than a second", id="sub-second"),
    pytest.param(1, "1 second", id="one-second"),
    pytest.param(42, "42 seconds", id="seconds"),
    pytest.param(80, "About a minute", id="about-a-minute"),
    pytest.param(600, "10 minutes", id="minutes"),
    pytest.param(3700, "About an hour", id="about-an-hour"),
    pytest.param(5 * 3600, "5 hours", id="hours"),
    pytest.param(3 * 86400, "3 days", id="days"),
    pytest.param(21 * 86400, "3 weeks", id="weeks"),
    pytest.param(90 * 86400, "3 months", id="months"),
    pytest.param(800 * 86400, "2 years", id="years"),
])
def test_docker_duration(seconds: float, text: str) -> None:
    assert stack.docker_duration(seconds) == text


def test_table_pads_like_docker() -> None:
    assert deploy.table(("NAME", "SERVICES"), [["demo", "2"], ["a-much-longer-name", "10"]]) == (
        "NAME                 SERVICES\n"
        "demo                 2\n"
        "a-much-longer-name   10\n")
    assert deploy.table(("ID", "X"), [["1", "y"]]) == "ID        X\n1         y\n"


@pytest.mark.parametrize(("services", "template", "ports"), [
    pytest.param([{"spec": {"type": "LoadBalancer", "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]}}],
                 {}, ["*:80->80/tcp"], id="routing-mesh-lb"),
    pytest.param([{"spec": {"type": "NodePort", "ports": [{"port": 8080, "nodePort": 30080, "targetPort": 8080,
                                                          "protocol": "UDP"}]}}],
                 {}, ["*:30080->8080/udp"], id="nodeport"),
    pytest.param([{"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}}], {}, [], id="cluster-only"),
    pytest.param([], {"spec": {"containers": [{"ports": [{"containerPort": 80, "hostPort": 8080}]}]}},
                 ["*:8080->80/tcp"], id="host-mode"),
])
def test_published_ports(services: list[Obj], template: Obj, ports: list[str]) -> None:
    assert stack.published_ports(services, template) == ports


@pytest.mark.parametrize(("kind", "obj", "text"), [
    pytest.param("Deployment", {"spec": {"replicas": 3}, "status": {"readyReplicas": 2}}, "2/3", id="replicated"),
    pytest.param("Deployment", {"spec": {"replicas": 0}}, "0/0", id="scaled-down"),
    pytest.param("DaemonSet", {"status": {"numberReady": 3, "desiredNumberScheduled": 3}}, "3/3", id="global"),
    pytest.param("Job", {"spec": {"parallelism": 2, "completions": 4}, "status": {"active": 2, "succeeded": 1}},
                 "2/2 (1/4 completed)", id="job"),
])
def test_replicas_column(kind: str, obj: Obj, text: str) -> None:
    assert stack.replicas_column(kind, obj) == text


def _pod(phase: str, node: str = "n1", deleting: bool = False, waiting: str = "", exit_code: int = 0) -> Obj:
    state: Obj = {}
    if waiting:
        state = {"waiting": {"reason": waiting, "message": "pull failed"}}
    elif exit_code:
        state = {"terminated": {"exitCode": exit_code}}
    md: Obj = {"name": "p", "uid": "0123456789abcdef", "creationTimestamp": "2026-01-01T11:58:00Z"}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    return {"metadata": md, "spec": {"nodeName": node, "containers": [{"image": "nginx"}]},
            "status": {"phase": phase, "startTime": "2026-01-01T11:59:00Z", "containerStatuses": [{"state": state}]}}


@pytest.mark.parametrize(("pod", "expected"), [
    pytest.param(_pod("Running"), ("Running", "Running about a minute ago", ""), id="running"),
    pytest.param(_pod("Pending", node=""), ("Running", "Pending about a minute ago", ""), id="unscheduled"),
    pytest.param(_pod("Pending"), ("Running", "Preparing about a minute ago", ""), id="preparing"),
    pytest.param(_pod("Pending", waiting="ErrImagePull"),
                 ("Running", "Preparing about a minute ago", '"ErrImagePull: pull failed"'), id="pull-error"),
    pytest.param(_pod("Failed", exit_code=3),
                 ("Running", "Failed about a minute ago", '"task: non-zero exit (3)"'), id="failed"),
    pytest.param(_pod("Succeeded"), ("Complete", "Complete about a minute ago", ""), id="complete"),
    pytest.param(_pod("Running", deleting=True), ("Shutdown", "Shutdown about a minute ago", ""), id="shutdown"),
])
def test_task_state(pod: Obj, expected: tuple[str, str, str]) -> None:
    assert stack.task_state(pod, NOW) == expected


def test_task_rows_number_slots_by_age() -> None:
    a, b = _pod("Running", "n1"), _pod("Running", "n2")
    a["metadata"].update(name="b", creationTimestamp="2026-01-01T11:00:00Z")
    b["metadata"].update(name="a", creationTimestamp="2026-01-01T11:30:00Z")
    rows = stack.task_rows("demo_web", [b, a], NOW, global_mode=False)
    assert [(r[1], r[3]) for r in rows] == [("demo_web.1", "n1"), ("demo_web.2", "n2")]
    rows = stack.task_rows("demo_agent", [b, a], NOW, global_mode=True)
    assert [r[1] for r in rows] == ["demo_agent.n1", "demo_agent.n2"]


def _rs(revision: int, image: str) -> Obj:
    return {"metadata": {"annotations": {stack.REVISION: str(revision)}},
            "spec": {"template": {"metadata": {"labels": {"app": "x", stack.HASH_LABEL: f"h{revision}"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


@pytest.mark.parametrize(("rss", "current", "image"), [
    pytest.param([_rs(1, "a"), _rs(2, "b")], 2, "a", id="one-back"),
    pytest.param([_rs(1, "a"), _rs(3, "c"), _rs(2, "b")], 3, "b", id="newest-older"),
    pytest.param([_rs(1, "a")], 1, None, id="no-history"),
])
def test_previous_template(rss: list[Obj], current: int, image: str | None) -> None:
    template = stack.previous_template(rss, current)
    if image is None:
        assert template is None
        return
    assert template is not None
    assert template["spec"]["containers"][0]["image"] == image
    assert template["metadata"]["labels"] == {"app": "x"}


def test_referenced_paths() -> None:
    text = yaml.safe_dump({"services": {"a": {"env_file": ["a.env", {"path": "b.env"}]}, "b": {"env_file": "c.env"}},
                           "configs": {"x": {"file": "./x.conf"}}, "secrets": {"s": {"external": True}}})
    assert stack._referenced_paths(text) == ["a.env", "b.env", "c.env", "./x.conf"]


# --- against a cluster --------------------------------------------------------------------------------------------


async def test_deploy_prints_like_docker_and_warns(cluster: InProcessClient) -> None:
    code, out, err = await run(cluster, "stack", "deploy", "-c", str(WEB_REDIS), "demo")
    assert code == 0
    assert out.splitlines() == ["Creating network demo_webnet", "Creating service demo_web",
                                "Creating service demo_redis"]
    assert err.splitlines()[0].startswith(f"WARNING: {WEB_REDIS}: services.web.deploy.restart_policy.condition: ")
    code, out, _ = await run(cluster, "stack", "deploy", "-c", str(WEB_REDIS), "demo")
    assert code == 0
    web = await cluster.get(DEPLOYMENTS, "demo", "web")
    assert f"Updating service demo_web (id: {stack.short_id(web)})" in out.splitlines()
    assert not any(line.startswith("Creating") for line in out.splitlines())


async def test_services_ls_and_ps(cluster: InProcessClient) -> None:
    await run(cluster, "stack", "deploy", "-c", str(WEB_REDIS), "demo")
    await all_ready(cluster)
    code, out, _ = await run(cluster, "stack", "ls")
    assert (code, out) == (0, "NAME      SERVICES\ndemo      2\n")
    code, out, _ = await run(cluster, "stack", "services", "demo")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]
    rows = {line.split()[1]: line.split()[2:] for line in lines[1:]}
    assert rows == {"demo_redis": ["replicated", "1/1", "redis:alpine"],
                    "demo_web": ["replicated", "3/3", "nginx:latest", "*:80->80/tcp"]}
    code, out, _ = await run(cluster, "service", "ls")
    assert len(out.splitlines()) == 3
    code, out, _ = await run(cluster, "stack", "ps", "demo")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ID", "NAME", "IMAGE", "NODE"]
    names = sorted(line.split()[1] for line in lines[1:])
    assert names == ["demo_redis.1", "demo_web.1", "demo_web.2", "demo_web.3"]
    assert all("Running" in line.split()[4] for line in lines[1:])
    code, out, _ = await run(cluster, "service", "ps", "demo_redis")
    assert [line.split()[1] for line in out.splitlines()[1:]] == ["demo_redis.1"]


async def all_ready(client: Client) -> None:
    from skiff.testing import eventually

    async def ready() -> bool:
        ws = await stack.workloads(client, "demo")
        return bool(ws) and all(stack.replicas_column(k, o).split("/")[0] == str(o["spec"].get("replicas"))
                                for k, o in ws) and await all_running(client, "demo", LABEL_STACK, 4)

    await eventually(ready, "the stack's services ready")


async def test_scale_update_rollback(cluster: InProcessClient) -> None:
    from skiff.testing import eventually

    await run(cluster, "stack", "deploy", "-c", str(WEB_REDIS), "demo")
    code, out, _ = await run(cluster, "service", "scale", "demo_web=5")
    assert (code, out) == (0, "demo_web scaled to 5\n")
    await eventually(lambda: all_running(cluster, "demo", f"{LABEL_WORKLOAD}=web", 5), "5 web tasks")

    async def revision(n: int) -> bool:
        d = await cluster.get(DEPLOYMENTS, "demo", "web")
        return (d["metadata"].get("annotations") or {}).get(stack.REVISION) == str(n)

    await eventually(lambda: revision(1), "first revision recorded")
    code, out, _ = await run(cluster, "service", "update", "--image", "nginx:1.27", "demo_web")
    assert (code, out) == (0, "demo_web\n")
    image = (await cluster.get(DEPLOYMENTS, "demo", "web"))["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "nginx:1.27"
    await eventually(lambda: revision(2), "second revision recorded")
    code, out, _ = await run(cluster, "service", "rollback", "demo_web")
    assert (code, out) == (0, "demo_web\nrollback: manually requested rollback\n")
    image = (await cluster.get(DEPLOYMENTS, "demo", "web"))["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "nginx:latest"


@pytest.mark.parametrize(("argv", "message"), [
    pytest.param(("service", "scale", "demo_nope=2"), "Error: No such service: demo_nope", id="unknown-service"),
    pytest.param(("service", "scale", "demo_web"), "Error: invalid scale specifier 'demo_web'.", id="bad-spec"),
    pytest.param(("service", "rollback", "demo_web"), "rollback: service does not have a previous spec",
                 id="no-previous"),
    pytest.param(("service", "logs", "demo_web"), "Error response from daemon: logs are read over HTTPS only",
                 id="logs-need-https"),
])
async def test_service_errors(cluster: InProcessClient, argv: tuple[str, ...], message: str) -> None:
    await run(cluster, "stack", "deploy", "-c", str(WEB_REDIS), "demo")
    from skiff.testing import eventually

    await eventually(lambda: all_running(cluster, "demo", LABEL_STACK, 4), "tasks running")
    code, _, err = await run(cluster, *argv)
    assert code == 1
    assert message in err


async def test_rm_removes_everything(cluster: InProcessClient) -> None:
    from skiff.testing import eventually

    await run(cluster, "stack", "deploy", "-c", str(WEB_REDIS), "demo")
    await eventually(lambda: all_running(cluster, "demo", LABEL_STACK, 4), "tasks running")
    code, out, _ = await run(cluster, "stack", "rm", "demo")
    assert code == 0
    assert out.splitlines() == ["Removing service demo_redis", "Removing service demo_web",
                                "Removing network demo_webnet"]
    await eventually(lambda: gone(cluster, NAMESPACES, "", "demo"), "namespace removed")
    assert (await cluster.list(PODS, "demo"))["items"] == []
    code, out, _ = await run(cluster, "stack", "ls")
    assert out == "NAME      SERVICES\n"
    code, _, err = await run(cluster, "stack", "rm", "demo")
    assert (code, err) == (0, "Nothing found in stack: demo\n")


async def test_bad_file_deploys_nothing(cluster: InProcessClient, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("services:\n  web:\n    image: [not, a, string]\n")
    code, out, err = await run(cluster, "stack", "deploy", "-c", str(bad), "demo")
    assert code == 1 and out == ""
    assert err.startswith(f"Error: {bad}: services.web.image: ")
    assert await gone(cluster, NAMESPACES, "", "demo")


async def test_dry_run_prints_yaml_and_creates_nothing(cluster: InProcessClient) -> None:
    code, out, err = await run(cluster, "stack", "deploy", "--dry-run", "-c", str(WEB_REDIS), "demo")
    assert code == 0
    kinds = [d["kind"] for d in yaml.safe_load_all(out)]
    assert kinds[0] == "Namespace" and "Deployment" in kinds
    assert "WARNING: " in err
    assert await gone(cluster, NAMESPACES, "", "demo")


async def test_prune_flag_removes_a_dropped_service(cluster: InProcessClient, tmp_path: Path) -> None:
    await run(cluster, "stack", "deploy", "-c", str(WEB_REDIS), "demo")
    text = WEB_REDIS.read_text()
    smaller = tmp_path / "stack.yml"
    smaller.write_text(text[: text.index("  redis:")] + text[text.index("networks:\n  webnet:"):])
    code, out, _ = await run(cluster, "stack", "deploy", "-c", str(smaller), "demo")
    assert code == 0
    assert "Removing service demo_redis" not in out
    assert not await gone(cluster, DEPLOYMENTS, "demo", "redis")
    code, out, _ = await run(cluster, "stack", "deploy", "--prune", "-c", str(smaller), "demo")
    assert code == 0
    assert "Removing service demo_redis" in out.splitlines()
    assert await gone(cluster, DEPLOYMENTS, "demo", "redis")


async def test_compose_files_merge_in_order(cluster: InProcessClient, tmp_path: Path) -> None:
    override = tmp_path / "override.yml"
    override.write_text("services:\n  web:\n    deploy:\n      replicas: 1\n")
    code, _, _ = await run(cluster, "stack", "deploy", "-c", str(WEB_REDIS), "-c", str(override), "demo")
    assert code == 0
    assert (await cluster.get(DEPLOYMENTS, "demo", "web"))["spec"]["replicas"] == 1
