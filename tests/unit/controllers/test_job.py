"""The Job controller's pure planner (skiff.controllers.job.plan_job) and its helpers, table-driven."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skiff.api.errors import ApiError
from skiff.api.meta import rfc3339
from skiff.apiserver.local import LocalBackend
from skiff.client.factory import InformerFactory
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import JOBS, PODS, DeleteOptions, ListOptions, Patch
from skiff.controllers.base import ControllerContext
from skiff.controllers.job import (
    COMPLETION_INDEX_ANNOTATION,
    TRACKING_FINALIZER,
    BackoffRecord,
    JobController,
    JobPlan,
    backoff_remaining,
    first_pending_indexes,
    format_indexes,
    next_backoff_record,
    orphaned_tracked_pods,
    parse_indexes,
    plan_job,
    pod_for_job,
)
from skiff.testing import eventually, start_control_plane

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
Obj = dict[str, Any]


def ago(seconds: float) -> str:
    return rfc3339(NOW - dt.timedelta(seconds=seconds))


def job(status: Obj | None = None, deleting: bool = False, **spec: Any) -> Obj:
    base: Obj = {
        "completions": 1,
        "parallelism": 1,
        "backoffLimit": 6,
        "completionMode": "NonIndexed",
        "suspend": False,
        "podReplacementPolicy": "TerminatedOrFailed",
        "template": {
            "metadata": {"labels": {"batch.kubernetes.io/job-name": "pi", "job-name": "pi"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]},
        },
    }
    base.update(spec)
    md: Obj = {"name": "pi", "namespace": "default", "uid": "job-uid", "creationTimestamp": ago(600)}
    if deleting:
        md["deletionTimestamp"] = ago(1)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": md, "spec": base, "status": status or {}}


def pod(
    name: str,
    phase: str = "Running",
    *,
    ready: bool = False,
    finalizer: bool = True,
    index: int | None = None,
    finished: float | None = None,
    deleting: bool = False,
    restarts: int = 0,
    node: str = "n1",
) -> Obj:
    md: Obj = {
        "name": name,
        "namespace": "default",
        "uid": f"uid-{name}",
        "creationTimestamp": ago(300),
        "ownerReferences": [
            {"apiVersion": "batch/v1", "kind": "Job", "name": "pi", "uid": "job-uid", "controller": True}
        ],
    }
    if finalizer:
        md["finalizers"] = [TRACKING_FINALIZER]
    if index is not None:
        md["annotations"] = {COMPLETION_INDEX_ANNOTATION: str(index)}
    if deleting:
        md["deletionTimestamp"] = ago(1)
    status: Obj = {
        "phase": phase,
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "lastTransitionTime": ago(finished if finished else 200),
            }
        ],
    }
    status["containerStatuses"] = [{"name": "c", "restartCount": restarts}]
    return {"metadata": md, "spec": {"nodeName": node}, "status": status}


def cond(type_: str, reason: str = "", status: str = "True") -> Obj:
    return {"type": type_, "status": status, "reason": reason, "message": "m", "lastTransitionTime": ago(30)}


def summarize(plan: JobPlan, j: Obj) -> dict[str, Any]:
    final = plan.final_status or plan.status or j["status"]
    first = plan.status or j["status"]
    events = [e[1] for e in plan.events] + ([plan.finished_event[1]] if plan.finished_event else [])
    return {
        "create": len(plan.create),
        "indexes": [
            p["metadata"].get("annotations", {}).get(COMPLETION_INDEX_ANNOTATION) for p in plan.create
        ],
        "delete": sorted(p["metadata"]["name"] for p in plan.delete),
        "release": plan.release_before_delete,
        "strip": sorted(p["metadata"]["name"] for p in plan.remove_finalizers),
        "uncounted": first.get("uncountedTerminatedPods"),
        "first_conditions": [
            (c["type"], c["status"], c.get("reason")) for c in first.get("conditions") or ()
        ],
        "conditions": [(c["type"], c["status"], c.get("reason")) for c in final.get("conditions") or ()],
        "counts": {k: final.get(k) for k in ("active", "succeeded", "failed", "ready", "terminating")},
        "requeue": plan.requeue_after,
        "events": events,
        "startTime": final.get("startTime"),
        "completionTime": final.get("completionTime"),
        "completedIndexes": final.get("completedIndexes"),
        "delete_job": plan.delete_job,
        "writes": (plan.status is not None, plan.final_status is not None),
    }


def counts(
    active: int | None = None,
    succeeded: int | None = None,
    failed: int | None = None,
    ready: int = 0,
    terminating: int = 0,
) -> dict[str, int | None]:
    return {
        "active": active,
        "succeeded": succeeded,
        "failed": failed,
        "ready": ready,
        "terminating": terminating,
    }


FINISHED_OK = {
    "conditions": [cond("SuccessCriteriaMet", "CompletionsReached"), cond("Complete", "CompletionsReached")],
    "completionTime": ago(100),
    "succeeded": 1,
    "startTime": ago(200),
}

CASES: list[Any] = [
    pytest.param(
        job(),
        [],
        {},
        {
            "create": 1,
            "counts": counts(active=1),
            "startTime": rfc3339(NOW),
            "uncounted": {},
            "conditions": [],
        },
        id="new-job-creates-one-pod-and-sets-startTime",
    ),
    pytest.param(
        job(completions=5, parallelism=3, status={"succeeded": 4, "startTime": ago(60)}),
        [],
        {},
        {"create": 1, "counts": counts(active=1, succeeded=4)},
        id="active-capped-by-remaining-completions",
    ),
    pytest.param(
        job(completions=None, parallelism=3), [], {}, {"create": 3}, id="no-completions-runs-parallelism-pods"
    ),
    pytest.param(
        job(completions=None, parallelism=3, status={"startTime": ago(60)}),
        [pod("a", "Succeeded"), pod("b")],
        {},
        {
            "create": 0,
            "strip": ["a"],
            "uncounted": {"succeeded": ["uid-a"]},
            "counts": counts(active=1, succeeded=1),
        },
        id="no-completions-after-a-success-starts-no-more",
    ),
    pytest.param(
        job(completions=None, parallelism=2, status={"startTime": ago(60), "succeeded": 1}),
        [],
        {},
        {
            "create": 0,
            "conditions": [
                ("SuccessCriteriaMet", "True", "CompletionsReached"),
                ("Complete", "True", "CompletionsReached"),
            ],
        },
        id="no-completions-completes-when-one-succeeded-and-none-active",
    ),
    pytest.param(
        job(parallelism=1, completions=3, status={"startTime": ago(60)}),
        [pod("ready", ready=True), pod("slow")],
        {},
        {
            "delete": ["slow"],
            "release": True,
            "create": 0,
            "counts": counts(active=1, ready=1, terminating=1),
        },
        id="too-many-active-deletes-the-not-ready-one",
    ),
    pytest.param(
        job(status={"startTime": ago(60)}),
        [pod("a", "Succeeded")],
        {},
        {
            "strip": ["a"],
            "uncounted": {"succeeded": ["uid-a"]},
            "first_conditions": [("SuccessCriteriaMet", "True", "CompletionsReached")],
            "conditions": [
                ("SuccessCriteriaMet", "True", "CompletionsReached"),
                ("Complete", "True", "CompletionsReached"),
            ],
            "counts": counts(succeeded=1),
            "completionTime": rfc3339(NOW),
            "events": ["Completed"],
            "writes": (True, True),
        },
        id="last-success-records-uid-then-counts-and-completes",
    ),
    pytest.param(
        job(status={"startTime": ago(60), "uncountedTerminatedPods": {"succeeded": ["uid-gone"]}}),
        [],
        {},
        {
            "counts": counts(succeeded=1),
            "uncounted": {},
            "create": 0,
            "conditions": [
                ("SuccessCriteriaMet", "True", "CompletionsReached"),
                ("Complete", "True", "CompletionsReached"),
            ],
        },
        id="uncounted-uid-without-finalizer-is-counted",
    ),
    pytest.param(
        job(completions=2, status={"startTime": ago(60), "succeeded": 1}),
        [pod("a", "Succeeded")],
        {"expected_rm_finalizers": {"uid-a"}},
        {"strip": [], "counts": counts(succeeded=1, active=1), "create": 1},
        id="finalizer-removal-in-flight-is-not-counted-twice",
    ),
    pytest.param(
        job(backoffLimit=0, status={"startTime": ago(60)}),
        [pod("a", "Failed", finished=5)],
        {},
        {
            "create": 0,
            "strip": ["a"],
            "uncounted": {"failed": ["uid-a"]},
            "first_conditions": [("FailureTarget", "True", "BackoffLimitExceeded")],
            "conditions": [
                ("FailureTarget", "True", "BackoffLimitExceeded"),
                ("Failed", "True", "BackoffLimitExceeded"),
            ],
            "counts": counts(failed=1),
            "completionTime": None,
            "events": ["BackoffLimitExceeded"],
        },
        id="failure-beyond-backoffLimit-fails-the-job",
    ),
    pytest.param(
        job(backoffLimit=6, status={"startTime": ago(60)}),
        [pod("a", "Failed", finished=3)],
        {},
        {"create": 0, "requeue": pytest.approx(7.0), "conditions": [], "counts": counts(failed=1)},
        id="failure-within-limit-waits-10s-back-off",
    ),
    pytest.param(
        job(backoffLimit=6, status={"startTime": ago(60), "failed": 2}),
        [pod("a", "Failed", finished=3)],
        {"backoff": BackoffRecord(2, NOW - dt.timedelta(seconds=30))},
        {"create": 0, "requeue": pytest.approx(37.0), "counts": counts(failed=3)},
        id="third-failure-waits-40s",
    ),
    pytest.param(
        job(backoffLimit=6, status={"startTime": ago(60), "failed": 1}),
        [],
        {"backoff": BackoffRecord(1, NOW - dt.timedelta(seconds=11))},
        {"create": 1, "requeue": None},
        id="back-off-elapsed-creates-again",
    ),
    pytest.param(
        job(
            backoffLimit=2,
            status={"startTime": ago(60)},
            template={"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c"}]}},
        ),
        [pod("a", restarts=2)],
        {},
        {
            "delete": ["a"],
            "first_conditions": [("FailureTarget", "True", "BackoffLimitExceeded")],
            "conditions": [("FailureTarget", "True", "BackoffLimitExceeded")],
        },
        id="onfailure-restarts-count-against-backoffLimit",
    ),
    pytest.param(
        job(activeDeadlineSeconds=10, status={"startTime": ago(20)}),
        [pod("a", ready=True)],
        {},
        {
            "delete": ["a"],
            "release": False,
            "strip": ["a"],
            "first_conditions": [("FailureTarget", "True", "DeadlineExceeded")],
            "conditions": [("FailureTarget", "True", "DeadlineExceeded")],
            "counts": counts(failed=1, terminating=1),
        },
        id="deadline-exceeded-kills-pods-and-waits-for-termination",
    ),
    pytest.param(
        job(
            activeDeadlineSeconds=10,
            status={
                "startTime": ago(60),
                "conditions": [cond("FailureTarget", "DeadlineExceeded")],
                "failed": 1,
            },
        ),
        [],
        {},
        {
            "conditions": [
                ("FailureTarget", "True", "DeadlineExceeded"),
                ("Failed", "True", "DeadlineExceeded"),
            ],
            "events": ["DeadlineExceeded"],
        },
        id="failure-target-becomes-failed-when-nothing-terminates",
    ),
    pytest.param(
        job(status={"startTime": ago(60), "conditions": [cond("FailureTarget", "BackoffLimitExceeded")]}),
        [pod("t", deleting=True, finalizer=False)],
        {},
        {"conditions": [("FailureTarget", "True", "BackoffLimitExceeded")], "counts": counts(terminating=1)},
        id="terminal-condition-waits-for-terminating-pods",
    ),
    pytest.param(
        job(activeDeadlineSeconds=100, status={"startTime": ago(40)}),
        [pod("a")],
        {},
        {"requeue": pytest.approx(60.0), "delete": [], "conditions": []},
        id="deadline-pending-requeues-at-deadline",
    ),
    pytest.param(
        job(suspend=True),
        [],
        {},
        {
            "create": 0,
            "startTime": None,
            "conditions": [("Suspended", "True", "JobSuspended")],
            "events": ["Suspended"],
        },
        id="created-suspended-starts-nothing",
    ),
    pytest.param(
        job(suspend=True, status={"startTime": ago(60)}),
        [pod("a", ready=True), pod("b")],
        {},
        {
            "delete": ["a", "b"],
            "release": True,
            "strip": [],
            "counts": counts(terminating=2),
            "conditions": [("Suspended", "True", "JobSuspended")],
        },
        id="suspend-deletes-active-pods",
    ),
    pytest.param(
        job(status={"startTime": ago(600), "conditions": [cond("Suspended", "JobSuspended")]}),
        [],
        {},
        {
            "create": 1,
            "conditions": [("Suspended", "False", "JobResumed")],
            "startTime": rfc3339(NOW),
            "events": ["Resumed"],
        },
        id="resume-resets-startTime-and-creates",
    ),
    pytest.param(
        job(),
        [],
        {"expectations_satisfied": False},
        {"create": 0},
        id="unsatisfied-expectations-create-nothing",
    ),
    pytest.param(
        job(managedBy="example.com/other"),
        [],
        {},
        {"create": 0, "writes": (False, False)},
        id="managed-by-another-controller-is-skipped",
    ),
    pytest.param(
        job(status={"startTime": ago(60)}, deleting=True),
        [pod("a", "Succeeded")],
        {},
        {"create": 0, "strip": ["a"]},
        id="deleting-job-only-releases-pods",
    ),
    pytest.param(
        job(completionMode="Indexed", completions=3, parallelism=2),
        [],
        {},
        {"indexes": ["0", "1"], "counts": counts(active=2)},
        id="indexed-creates-lowest-indexes",
    ),
    pytest.param(
        job(
            completionMode="Indexed",
            completions=3,
            parallelism=2,
            status={"startTime": ago(60), "completedIndexes": "0", "succeeded": 1},
        ),
        [pod("one", index=1)],
        {},
        {"indexes": ["2"]},
        id="indexed-skips-completed-and-running",
    ),
    pytest.param(
        job(completionMode="Indexed", completions=3, parallelism=1, status={"startTime": ago(60)}),
        [pod("one", "Succeeded", index=1)],
        {},
        {
            "completedIndexes": "1",
            "counts": counts(succeeded=1, active=1),
            "indexes": ["0"],
            "strip": ["one"],
            "uncounted": {},
        },
        id="indexed-success-recorded-as-completed-index",
    ),
    pytest.param(
        job(completionMode="Indexed", completions=2, parallelism=2, status={"startTime": ago(60)}),
        [pod("a", index=0, ready=True), pod("b", index=0), pod("c", index=7)],
        {},
        {"delete": ["b", "c"], "release": True, "create": 0},
        id="indexed-removes-duplicate-and-out-of-range-indexes",
    ),
    pytest.param(
        job(status=FINISHED_OK),
        [pod("a", "Succeeded")],
        {},
        {"strip": ["a"], "writes": (False, False), "create": 0},
        id="finished-job-releases-leftover-finalizers",
    ),
    pytest.param(
        job(status=FINISHED_OK, ttlSecondsAfterFinished=60),
        [],
        {},
        {"delete_job": True},
        id="ttl-expired-deletes-job",
    ),
    pytest.param(
        job(status=FINISHED_OK, ttlSecondsAfterFinished=300),
        [],
        {},
        {"delete_job": False, "requeue": pytest.approx(200.0)},
        id="ttl-pending-requeues",
    ),
    pytest.param(
        job(status={"startTime": ago(60)}, ttlSecondsAfterFinished=30),
        [pod("a", "Succeeded")],
        {},
        {"requeue": 30.0, "events": ["Completed"]},
        id="finishing-with-ttl-requeues-at-ttl",
    ),
]


@pytest.mark.parametrize(("j", "pods", "kwargs", "expect"), CASES)
def test_plan_job(j: Obj, pods: list[Obj], kwargs: dict[str, Any], expect: dict[str, Any]) -> None:
    before = repr((j, pods))
    plan = plan_job(j, pods, NOW, **kwargs)
    got = summarize(plan, j)
    assert {k: got[k] for k in expect} == expect
    assert repr((j, pods)) == before, "the planner must not mutate its inputs"


def test_indexed_pod_shape() -> None:
    j = job(completionMode="Indexed", completions=3, parallelism=1)
    p = pod_for_job(j, 2)
    md = p["metadata"]
    assert md["generateName"] == "pi-2-"
    assert md["annotations"][COMPLETION_INDEX_ANNOTATION] == "2"
    assert md["labels"]["batch.kubernetes.io/job-completion-index"] == "2"
    assert md["labels"]["job-name"] == "pi"
    assert md["finalizers"] == [TRACKING_FINALIZER]
    assert md["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": "pi",
            "uid": "job-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert p["spec"]["hostname"] == "pi-2"
    assert p["spec"]["containers"][0]["env"] == [
        {
            "name": "JOB_COMPLETION_INDEX",
            "valueFrom": {
                "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
            },
        }
    ]
    assert "env" not in j["spec"]["template"]["spec"]["containers"][0]


def test_non_indexed_pod_shape() -> None:
    p = pod_for_job(job(), None)
    assert p["metadata"]["generateName"] == "pi-"
    assert "hostname" not in p["spec"] and "annotations" not in p["metadata"]


def test_long_job_name_keeps_index_in_generate_name() -> None:
    j = job()
    j["metadata"]["name"] = "x" * 63
    assert pod_for_job(j, 12)["metadata"]["generateName"] == "x" * (58 - 4) + "-12-"


@pytest.mark.parametrize(
    ("indexes", "text"),
    [
        pytest.param([], "", id="empty"),
        pytest.param([3], "3", id="single"),
        pytest.param([0, 1, 2, 5, 7, 8], "0-2,5,7-8", id="intervals"),
        pytest.param([5, 1, 2], "1-2,5", id="unordered"),
    ],
)
def test_format_and_parse_indexes(indexes: list[int], text: str) -> None:
    assert format_indexes(indexes) == text
    assert parse_indexes(text, 100) == set(indexes)


def test_parse_indexes_drops_out_of_range() -> None:
    assert parse_indexes("1-4,9", 3) == {1, 2}


@pytest.mark.parametrize(
    ("completions", "taken", "count", "want"),
    [
        pytest.param(3, set(), 2, [0, 1], id="lowest-first"),
        pytest.param(5, {0, 2}, 5, [1, 3, 4], id="skips-taken"),
        pytest.param(2, {0, 1}, 1, [], id="none-left"),
    ],
)
def test_first_pending_indexes(completions: int, taken: set[int], count: int, want: list[int]) -> None:
    assert first_pending_indexes(completions, taken, count) == want


@pytest.mark.parametrize(
    ("failures", "since_last", "want"),
    [
        pytest.param(0, 0.0, 0.0, id="no-failures"),
        pytest.param(1, 0.0, 10.0, id="first-failure-10s"),
        pytest.param(2, 5.0, 15.0, id="second-failure-20s"),
        pytest.param(6, 0.0, 320.0, id="doubling"),
        pytest.param(7, 0.0, 360.0, id="capped-at-6-minutes"),
        pytest.param(30, 100.0, 260.0, id="capped-minus-elapsed"),
        pytest.param(1, 11.0, 0.0, id="elapsed"),
    ],
)
def test_backoff_remaining(failures: int, since_last: float, want: float) -> None:
    record = BackoffRecord(failures, NOW - dt.timedelta(seconds=since_last))
    assert backoff_remaining(record, NOW) == pytest.approx(want)


@pytest.mark.parametrize(
    ("prev", "succeeded", "failed", "want"),
    [
        pytest.param(BackoffRecord(), [], [], BackoffRecord(), id="nothing-new"),
        pytest.param(
            BackoffRecord(1, NOW),
            [],
            [pod("f", "Failed", finished=5)],
            BackoffRecord(2, NOW - dt.timedelta(seconds=5)),
            id="failures-accumulate",
        ),
        pytest.param(
            BackoffRecord(3, NOW),
            [pod("s", "Succeeded", finished=5)],
            [],
            BackoffRecord(),
            id="success-resets",
        ),
        pytest.param(
            BackoffRecord(3, NOW),
            [pod("s", "Succeeded", finished=10)],
            [pod("f1", "Failed", finished=20), pod("f2", "Failed", finished=5)],
            BackoffRecord(1, NOW - dt.timedelta(seconds=5)),
            id="only-failures-after-last-success-count",
        ),
    ],
)
def test_next_backoff_record(
    prev: BackoffRecord, succeeded: list[Obj], failed: list[Obj], want: BackoffRecord
) -> None:
    assert next_backoff_record(prev, succeeded, failed, NOW) == want


def test_orphaned_tracked_pods() -> None:
    mine, stale, released = pod("mine"), pod("stale"), pod("released", finalizer=False)
    stale["metadata"]["ownerReferences"][0]["uid"] = "old-uid"
    released["metadata"]["ownerReferences"][0]["uid"] = "old-uid"
    assert orphaned_tracked_pods([mine, stale, released], "pi", "job-uid") == [stale]
    assert orphaned_tracked_pods([mine, stale], "pi", None) == [mine, stale]


# --- integration: the controller over a real ControlPlane (temporary SQLite) through the in-process client ---





@pytest.fixture
async def job_client(tmp_path: Path) -> AsyncIterator[InProcessClient]:
    plane = await start_control_plane(tmp_path)
    store = plane.store
    client = InProcessClient(LocalBackend(plane))
    factory = InformerFactory(client)
    controller = JobController(ControllerContext(client, factory, factory.new_queue))
    controller.setup()
    task = asyncio.create_task(controller.run())
    try:
        yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await factory.stop()
        await client.close()
        await store.close()


def new_job(name: str, **spec: Any) -> Obj:
    body: Obj = {
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}
    }
    body.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": body}


async def job_pods(client: InProcessClient, name: str) -> list[Obj]:
    lst = await client.list(
        PODS, "default", ListOptions(label_selector=f"batch.kubernetes.io/job-name={name}")
    )
    return sorted(lst["items"], key=lambda p: p["metadata"]["name"])


async def finish_pod(client: InProcessClient, p: Obj, phase: str) -> None:
    """Play the node agent: the pod ran to completion."""
    fresh = await client.get(PODS, "default", p["metadata"]["name"])
    fresh["status"] = {**(fresh.get("status") or {}), "phase": phase}
    await client.update(PODS, "default", fresh, subresource="status")


def condition_types(j: Obj) -> list[str]:
    return [c["type"] for c in (j.get("status") or {}).get("conditions") or () if c.get("status") == "True"]


async def test_job_runs_pods_until_completions(job_client: InProcessClient) -> None:
    c = job_client
    await c.create(JOBS, "default", new_job("two", completions=2, parallelism=1))
    for n in (1, 2):

        async def running(n: int = n) -> list[Obj]:
            pods = [
                p for p in await job_pods(c, "two") if (p.get("status") or {}).get("phase") != "Succeeded"
            ]
            return pods if len(await job_pods(c, "two")) == n else []

        (p,) = await eventually(running, f"pod {n} of the Job")
        assert p["metadata"]["finalizers"] == [TRACKING_FINALIZER]
        assert p["metadata"]["ownerReferences"][0]["kind"] == "Job"
        await finish_pod(c, p, "Succeeded")

    async def complete() -> Obj | None:
        j = await c.get(JOBS, "default", "two")
        return j if "Complete" in condition_types(j) else None

    j = await eventually(complete, "the Job completes")
    assert condition_types(j) == ["SuccessCriteriaMet", "Complete"]
    st = j["status"]
    assert (st["succeeded"], st.get("active"), st.get("failed"), st["ready"], st["terminating"]) == (
        2,
        None,
        None,
        0,
        0,
    )
    assert st["uncountedTerminatedPods"] == {} and st["completionTime"] and st["startTime"]

    async def released() -> bool:
        return all(not p["metadata"].get("finalizers") for p in await job_pods(c, "two"))

    await eventually(released, "finalizers removed from finished pods")
    assert len(await job_pods(c, "two")) == 2


async def test_indexed_job_records_completed_indexes(job_client: InProcessClient) -> None:
    c = job_client
    await c.create(JOBS, "default", new_job("ix", completions=2, parallelism=2, completionMode="Indexed"))

    async def two() -> list[Obj]:
        pods = await job_pods(c, "ix")
        return pods if len(pods) == 2 else []

    pods = await eventually(two, "one pod per index")
    assert sorted(p["spec"]["hostname"] for p in pods) == ["ix-0", "ix-1"]
    assert sorted(p["metadata"]["name"][:5] for p in pods) == ["ix-0-", "ix-1-"]
    for p in pods:
        await finish_pod(c, p, "Succeeded")

    async def complete() -> Obj | None:
        j = await c.get(JOBS, "default", "ix")
        return j if "Complete" in condition_types(j) else None

    j = await eventually(complete, "the Indexed Job completes")
    assert (j["status"]["completedIndexes"], j["status"]["succeeded"]) == ("0-1", 2)


async def test_job_fails_past_backoff_limit(job_client: InProcessClient) -> None:
    c = job_client
    await c.create(JOBS, "default", new_job("bad", backoffLimit=0))

    async def one() -> list[Obj]:
        return await job_pods(c, "bad")

    (p,) = await eventually(one, "the Job's pod")
    await finish_pod(c, p, "Failed")

    async def failed() -> Obj | None:
        j = await c.get(JOBS, "default", "bad")
        return j if "Failed" in condition_types(j) else None

    j = await eventually(failed, "the Job fails")
    assert condition_types(j) == ["FailureTarget", "Failed"]
    assert j["status"]["conditions"][-1]["reason"] == "BackoffLimitExceeded"
    assert j["status"]["failed"] == 1 and "completionTime" not in j["status"]
    assert len(await job_pods(c, "bad")) == 1, "no replacement pod after the limit"


async def test_suspend_deletes_pods_without_counting_failures(job_client: InProcessClient) -> None:
    c = job_client
    await c.create(JOBS, "default", new_job("sus", completions=2, parallelism=2))

    async def two() -> list[Obj]:
        pods = await job_pods(c, "sus")
        return pods if len(pods) == 2 else []

    await eventually(two, "two pods")
    await c.patch(JOBS, "default", "sus", Patch("merge", {"spec": {"suspend": True}}))

    async def suspended() -> Obj | None:
        j = await c.get(JOBS, "default", "sus")
        pods = [p for p in await job_pods(c, "sus") if not p["metadata"].get("deletionTimestamp")]
        return j if "Suspended" in condition_types(j) and not pods and not j["status"].get("active") else None

    j = await eventually(suspended, "the Job suspended with no active pods")
    assert "failed" not in j["status"], "pods removed by suspension are not failures"


async def test_ttl_after_finished_deletes_the_job(job_client: InProcessClient) -> None:
    c = job_client
    await c.create(JOBS, "default", new_job("short", ttlSecondsAfterFinished=0))

    async def one() -> list[Obj]:
        return await job_pods(c, "short")

    (p,) = await eventually(one, "the Job's pod")
    await finish_pod(c, p, "Succeeded")

    async def gone() -> bool:
        try:
            await c.get(JOBS, "default", "short")
        except ApiError as e:
            return e.code == 404
        return False

    await eventually(gone, "the finished Job deleted after its TTL")


async def test_deleted_job_releases_its_pods(job_client: InProcessClient) -> None:
    c = job_client
    await c.create(JOBS, "default", new_job("gone"))

    async def one() -> list[Obj]:
        return await job_pods(c, "gone")

    (p,) = await eventually(one, "the Job's pod")
    assert p["metadata"]["finalizers"] == [TRACKING_FINALIZER]
    await c.delete(JOBS, "default", "gone", DeleteOptions(propagation_policy="Background"))

    async def released() -> bool:
        (fresh,) = await job_pods(c, "gone")
        return not fresh["metadata"].get("finalizers")

    await eventually(released, "the orphaned pod loses the tracking finalizer")
