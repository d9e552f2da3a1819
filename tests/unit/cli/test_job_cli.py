"""`skiff job`: Nomad's plan diff and status by tables, and run/plan/status/stop against an in-process cluster."""

from __future__ import annotations

import argparse
import copy
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_deploy import EXAMPLES, all_running, gone, running_cluster

from skiff.cli import jobcmd
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import DEPLOYMENTS, SERVICES, Client
from skiff.testing import eventually
from skiff.translate.model import LABEL_NOMAD_JOB, LABEL_WORKLOAD

Obj = dict[str, Any]
WEB_APP = EXAMPLES / "nomad" / "001-web-app.nomad.hcl"
SELECTOR = f"{LABEL_NOMAD_JOB}=web-app"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skiff")
    jobcmd.add_parsers(p.add_subparsers(dest="command", required=True))
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


# --- pure ---------------------------------------------------------------------------------------------------------


def _group(name: str, replicas: int = 3, image: str = "nginx", kind: str = "Deployment") -> Obj:
    spec: Obj = {"template": {"spec": {"containers": [{"name": "nginx", "image": image}]}}}
    if kind == "Deployment":
        spec["replicas"] = replicas
    return {"kind": kind, "metadata": {"name": f"job-{name}", "labels": {LABEL_WORKLOAD: f"job-{name}"}},
            "spec": spec}


def _live(*objs: Obj) -> dict[tuple[str, str], Obj]:
    out = {}
    for o in objs:
        o = copy.deepcopy(o)
        o["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
        out[(o["kind"], o["metadata"]["name"])] = o
    return out


@pytest.mark.parametrize(("wanted", "live", "lines", "changes"), [
    pytest.param([_group("web")], {}, ['+ Job: "job"', '+ Task Group: "web" (3 create)',
                                       '  + Task: "nginx" (forces create)'], True, id="new-job"),
    pytest.param([_group("web")], _live(_group("web")), ['Job: "job"', 'Task Group: "web" (3 ignore)',
                                                         '  Task: "nginx"'], False, id="unchanged"),
    pytest.param([_group("web", 5)], _live(_group("web")),
                 ['+/- Job: "job"', '+/- Task Group: "web" (2 create, 3 ignore)', '  Task: "nginx"'], True,
                 id="scale-up"),
    pytest.param([_group("web", 1)], _live(_group("web")),
                 ['+/- Job: "job"', '+/- Task Group: "web" (2 destroy, 1 ignore)', '  Task: "nginx"'], True,
                 id="scale-down"),
    pytest.param([_group("web", 3, "nginx:2")], _live(_group("web")),
                 ['+/- Job: "job"', '+/- Task Group: "web" (3 create/destroy update)',
                  '  +/- Task: "nginx" (forces create/destroy update)'], True, id="new-image"),
    pytest.param([_group("web")], _live(_group("web"), _group("old", 2)),
                 ['+/- Job: "job"', 'Task Group: "web" (3 ignore)', '  Task: "nginx"',
                  '- Task Group: "old" (2 destroy)'], True, id="group-removed"),
])
def test_plan_lines(wanted: list[Obj], live: dict[tuple[str, str], Obj], lines: list[str], changes: bool) -> None:
    assert jobcmd.plan_lines("job", wanted, live) == (lines, changes)


def _pod(phase: str, node: str = "n1", deleting: bool = False) -> Obj:
    md: Obj = {"name": "p"}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": md, "spec": {"nodeName": node}, "status": {"phase": phase}}


@pytest.mark.parametrize(("pods", "counts"), [
    pytest.param([_pod("Running"), _pod("Running")], {"Running": 2}, id="running"),
    pytest.param([_pod("Pending", node="")], {"Queued": 1}, id="queued"),
    pytest.param([_pod("Pending")], {"Starting": 1}, id="starting"),
    pytest.param([_pod("Succeeded"), _pod("Failed"), _pod("Unknown")], {"Complete": 1, "Failed": 1, "Unknown": 1},
                 id="finished"),
])
def test_summary_row(pods: list[Obj], counts: dict[str, int]) -> None:
    expected = {k: 0 for k in ("Queued", "Starting", "Running", "Failed", "Complete", "Lost", "Unknown")}
    assert jobcmd.summary_row(pods) == {**expected, **counts}


def _stopped(o: Obj) -> Obj:
    o = copy.deepcopy(o)
    o["metadata"]["annotations"] = {jobcmd.STOPPED: "true"}
    return o


@pytest.mark.parametrize(("objects", "pods", "status"), [
    pytest.param([_group("web")], [_pod("Running")], "running", id="running"),
    pytest.param([_group("web")], [_pod("Pending")], "pending", id="pending"),
    pytest.param([_group("web")], [], "pending", id="nothing-yet"),
    pytest.param([_stopped(_group("web"))], [_pod("Running", deleting=True)], "dead", id="stopped"),
    pytest.param([_group("b", kind="Job")], [_pod("Succeeded")], "dead", id="batch-done"),
])
def test_status_of(objects: list[Obj], pods: list[Obj], status: str) -> None:
    assert jobcmd.status_of(objects, pods) == status


def test_parse_vars(tmp_path: Path) -> None:
    f = tmp_path / "vars.hcl"
    f.write_text('# comment\nimage = "nginx:1"\ncount = 3\n')
    assert jobcmd.parse_vars(["count=5"], [str(f)]) == {"image": "nginx:1", "count": "5"}
    with pytest.raises(ValueError, match="expected name=value"):
        jobcmd.parse_vars(["oops"], [])


def test_columns_and_key_values() -> None:
    assert jobcmd.columns(("ID", "Type"), [["web-app", "service"]]) == "ID       Type\nweb-app  service\n"
    assert jobcmd.format_kv([("ID", "x"), ("Status", "running")]) == "ID     = x\nStatus = running\n"


# --- against a cluster --------------------------------------------------------------------------------------------


async def test_run_plan_status_stop(cluster: InProcessClient, tmp_path: Path) -> None:
    code, out, err = await run(cluster, "job", "run", "-detach", str(WEB_APP))
    assert code == 0
    assert out.splitlines()[0] == "Job registration successful"
    assert out.splitlines()[1].startswith("Evaluation ID: ")
    assert "WARNING: " in err and "datacenters" in err
    await eventually(lambda: all_running(cluster, "default", SELECTOR, 3), "3 allocations running")
    service = await cluster.get(SERVICES, "default", "web-app")
    owner = await cluster.get(DEPLOYMENTS, "default", "web-app-web")
    assert [r["uid"] for r in service["metadata"]["ownerReferences"]] == [owner["metadata"]["uid"]]

    code, out, _ = await run(cluster, "job", "plan", str(WEB_APP))
    assert code == 0
    assert out.splitlines()[:2] == ['Job: "web-app"', 'Task Group: "web" (3 ignore)']
    assert "Job Warnings:" in out
    bigger = tmp_path / "web.nomad.hcl"
    bigger.write_text(WEB_APP.read_text().replace("count = 3", "count = 5"))
    code, out, _ = await run(cluster, "job", "plan", str(bigger))
    assert code == 1
    assert out.splitlines()[:2] == ['+/- Job: "web-app"', '+/- Task Group: "web" (2 create, 3 ignore)']

    code, out, _ = await run(cluster, "job", "status")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "Type", "Priority", "Status", "Submit", "Date"]
    assert lines[1].split()[:4] == ["web-app", "service", "50", "running"]
    code, out, _ = await run(cluster, "job", "status", "web-app")
    assert "Status        = running" in out
    summary = out.split("Summary\n")[1].splitlines()
    assert summary[1].split() == ["web", "0", "0", "3", "0", "0", "0", "0"]
    assert len(out.split("Allocations\n")[1].splitlines()) == 4

    code, out, _ = await run(cluster, "job", "stop", "web-app")
    assert code == 0 and 'Evaluation triggered by job "web-app"' in out
    await eventually(lambda: all_running(cluster, "default", SELECTOR, 0), "allocations stopped")
    code, out, _ = await run(cluster, "job", "status", "web-app")
    assert "Status        = dead" in out
    code, out, _ = await run(cluster, "job", "plan", str(WEB_APP))
    assert out.splitlines()[1] == '+/- Task Group: "web" (3 create)'

    code, out, _ = await run(cluster, "job", "run", str(WEB_APP))
    assert code == 0
    assert out.splitlines()[-2].startswith("  ✓ Deployment ")
    assert out.count("Allocation ") == 3
    await eventually(lambda: all_running(cluster, "default", SELECTOR, 3), "running again")

    code, out, _ = await run(cluster, "job", "stop", "-purge", "-detach", "web-app")
    assert code == 0
    assert await gone(cluster, DEPLOYMENTS, "default", "web-app-web")
    assert await gone(cluster, SERVICES, "default", "web-app")
    code, out, _ = await run(cluster, "job", "status")
    assert out == "No running jobs\n"


async def test_bad_job_file_deploys_nothing(cluster: InProcessClient, tmp_path: Path) -> None:
    bad = tmp_path / "bad.nomad.hcl"
    bad.write_text('job "x" {\n  group "g" {\n    count = "many"\n  }\n}\n')
    code, out, err = await run(cluster, "job", "run", str(bad))
    assert code == 1 and out == ""
    assert err.startswith(f"Error getting job struct: {bad}: ")
    code, _, _ = await run(cluster, "job", "plan", str(bad))
    assert code == 255
    code, out, _ = await run(cluster, "job", "status")
    assert out == "No running jobs\n"


@pytest.mark.parametrize("argv", [
    pytest.param(("job", "status", "nope"), id="status"),
    pytest.param(("job", "stop", "nope"), id="stop"),
])
async def test_unknown_job(cluster: InProcessClient, argv: tuple[str, ...]) -> None:
    code, _, err = await run(cluster, *argv)
    assert (code, err) == (1, 'No job(s) with prefix or id "nope" found\n')
