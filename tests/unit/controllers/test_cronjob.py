"""The CronJob controller's schedule parser, schedule arithmetic and pure planner, table-driven."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skiff.api.meta import rfc3339
from skiff.apiserver.local import LocalBackend
from skiff.client.factory import InformerFactory
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import CRONJOBS, JOBS, PODS
from skiff.controllers.base import ControllerContext
from skiff.controllers.cronjob import (
    SCHEDULED_TIMESTAMP_ANNOTATION,
    CronError,
    CronJobController,
    jobs_over_history_limit,
    load_zone,
    parse_schedule,
    plan_cronjob,
)
from skiff.controllers.job import JobController
from skiff.testing import eventually, start_control_plane

UTC = dt.UTC
NOW = dt.datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC)  # a Thursday
Obj = dict[str, Any]


def t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("schedule", "zone", "after", "want"),
    [
        pytest.param(
            "*/15 * * * *", None, "2026-01-01T12:07:30+00:00", "2026-01-01T12:15:00+00:00", id="step"
        ),
        pytest.param(
            "0 * * * *", None, "2026-01-01T12:00:00+00:00", "2026-01-01T13:00:00+00:00", id="strictly-after"
        ),
        pytest.param("@hourly", None, "2026-01-01T12:59:59+00:00", "2026-01-01T13:00:00+00:00", id="hourly"),
        pytest.param("@daily", None, "2026-01-01T12:00:00+00:00", "2026-01-02T00:00:00+00:00", id="daily"),
        pytest.param(
            "@weekly", None, "2026-01-01T12:00:00+00:00", "2026-01-04T00:00:00+00:00", id="weekly-sunday"
        ),
        pytest.param(
            "@monthly", None, "2026-01-31T12:00:00+00:00", "2026-02-01T00:00:00+00:00", id="monthly"
        ),
        pytest.param("@yearly", None, "2026-01-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00", id="yearly"),
        pytest.param(
            "30 9 * * mon-fri",
            None,
            "2026-01-02T10:00:00+00:00",
            "2026-01-05T09:30:00+00:00",
            id="weekday-names-skip-weekend",
        ),
        pytest.param(
            "0 0 13 * 5",
            None,
            "2026-01-01T12:00:00+00:00",
            "2026-01-02T00:00:00+00:00",
            id="dom-or-dow-when-both-restricted",
        ),
        pytest.param(
            "0 0 13 * *", None, "2026-01-01T12:00:00+00:00", "2026-01-13T00:00:00+00:00", id="dom-only"
        ),
        pytest.param(
            "0 0 * feb *", None, "2026-01-01T12:00:00+00:00", "2026-02-01T00:00:00+00:00", id="month-name"
        ),
        pytest.param(
            "5,10-12 3 * * *", None, "2026-01-01T03:10:30+00:00", "2026-01-01T03:11:00+00:00", id="list-range"
        ),
        pytest.param(
            "0 0 29 2 *", None, "2026-01-01T00:00:00+00:00", "2028-02-29T00:00:00+00:00", id="leap-day"
        ),
        pytest.param(
            "0 9 * * *",
            "Europe/Berlin",
            "2026-01-01T00:00:00+00:00",
            "2026-01-01T08:00:00+00:00",
            id="time-zone-winter",
        ),
        pytest.param(
            "0 9 * * *",
            "Europe/Berlin",
            "2026-07-01T00:00:00+00:00",
            "2026-07-01T07:00:00+00:00",
            id="time-zone-summer",
        ),
        pytest.param(
            "TZ=America/New_York 0 9 * * *",
            None,
            "2026-01-01T00:00:00+00:00",
            "2026-01-01T14:00:00+00:00",
            id="tz-prefix",
        ),
        pytest.param(
            "30 2 * * *",
            "Europe/Berlin",
            "2026-03-29T00:00:00+00:00",
            "2026-03-30T00:30:00+00:00",
            id="wall-time-skipped-by-dst",
        ),
        pytest.param(
            "@every 90m", None, "2026-01-01T12:00:00.5+00:00", "2026-01-01T13:30:00+00:00", id="every"
        ),
        pytest.param("0 0 30 2 *", None, "2026-01-01T00:00:00+00:00", None, id="never"),
    ],
)
def test_next(schedule: str, zone: str | None, after: str, want: str | None) -> None:
    sched = parse_schedule(schedule)
    tz = load_zone(zone or sched.zone)
    got = sched.next(t(after), tz)
    assert got == (t(want) if want else None)


@pytest.mark.parametrize(
    "schedule",
    [
        pytest.param("* * * *", id="four-fields"),
        pytest.param("60 * * * *", id="minute-out-of-range"),
        pytest.param("* * * * 7", id="dow-7"),
        pytest.param("@fortnightly", id="unknown-descriptor"),
        pytest.param("*/0 * * * *", id="zero-step"),
        pytest.param("TZ=Mars/Olympus * * * * *", id="unknown-zone"),
        pytest.param("@every soon", id="bad-duration"),
    ],
)
def test_parse_errors(schedule: str) -> None:
    with pytest.raises(CronError):
        parse_schedule(schedule)


def cronjob(
    status: Obj | None = None, created: str = "2026-01-01T11:30:00Z", deleting: bool = False, **spec: Any
) -> Obj:
    base: Obj = {
        "schedule": "0 * * * *",
        "concurrencyPolicy": "Allow",
        "suspend": False,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 1,
        "jobTemplate": {
            "metadata": {"labels": {"team": "a"}},
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "OnFailure"}
                }
            },
        },
    }
    base.update(spec)
    md: Obj = {"name": "hello", "namespace": "default", "uid": "cj-uid", "creationTimestamp": created}
    if deleting:
        md["deletionTimestamp"] = created
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": md, "spec": base, "status": status or {}}


def job(
    name: str, finished: str | None = None, start: str = "2026-01-01T10:00:00Z", completion: str | None = None
) -> Obj:
    status: Obj = {"startTime": start}
    if finished:
        status["conditions"] = [{"type": finished, "status": "True"}]
    if completion:
        status["completionTime"] = completion
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"uid-{name}",
            "ownerReferences": [{"kind": "CronJob", "name": "hello", "uid": "cj-uid", "controller": True}],
        },
        "status": status,
    }


def ref(name: str) -> Obj:
    return {
        "kind": "Job",
        "apiVersion": "batch/v1",
        "namespace": "default",
        "name": name,
        "uid": f"uid-{name}",
    }


NOON_RUN = f"hello-{int(t('2026-01-01T12:00:00+00:00').timestamp()) // 60}"

CASES: list[Any] = [
    pytest.param(
        cronjob(created="2026-01-01T12:00:01Z"),
        [],
        {},
        {"create": None, "requeue": pytest.approx(3600 - 5 + 0.1), "status": {}},
        id="not-due-requeues-at-next-time",
    ),
    pytest.param(
        cronjob(),
        [],
        {},
        {
            "create": NOON_RUN,
            "scheduled": "2026-01-01T12:00:00Z",
            "requeue": pytest.approx(3595.1),
            "annotation": "2026-01-01T12:00:00Z",
            "events": [],
        },
        id="due-creates-job-named-by-minutes",
    ),
    pytest.param(
        cronjob(status={"lastScheduleTime": "2026-01-01T12:00:00Z"}),
        [],
        {},
        {"create": None, "requeue": pytest.approx(3595.1)},
        id="already-scheduled",
    ),
    pytest.param(
        cronjob(status={"active": [ref(NOON_RUN)]}),
        [job(NOON_RUN)],
        {},
        {"create": None},
        id="run-with-that-name-already-active",
    ),
    pytest.param(
        cronjob(status={"active": [ref("old")]}, concurrencyPolicy="Forbid"),
        [job("old")],
        {},
        {"create": None, "events": ["JobAlreadyActive"], "active": ["old"]},
        id="forbid-with-active",
    ),
    pytest.param(
        cronjob(status={"active": [ref("old")]}, concurrencyPolicy="Replace"),
        [job("old")],
        {},
        {"create": NOON_RUN, "delete": ["old"], "events": ["SuccessfulDelete"], "active": []},
        id="replace-deletes-active",
    ),
    pytest.param(
        cronjob(status={"active": [ref("old")]}),
        [job("old")],
        {},
        {"create": NOON_RUN, "delete": [], "active": ["old"]},
        id="allow-runs-concurrently",
    ),
    pytest.param(cronjob(suspend=True), [], {}, {"create": None, "requeue": None}, id="suspended"),
    pytest.param(cronjob(deleting=True), [], {}, {"create": None}, id="deleting"),
    pytest.param(
        cronjob(created="2026-01-01T11:50:00Z", startingDeadlineSeconds=3),
        [],
        {},
        {"create": None},
        id="run-missed-beyond-starting-deadline",
    ),
    pytest.param(
        cronjob(created="2026-01-01T11:50:00Z", startingDeadlineSeconds=10),
        [],
        {},
        {"create": NOON_RUN},
        id="run-within-starting-deadline",
    ),
    pytest.param(
        cronjob(created="2025-12-20T00:00:00Z"),
        [],
        {},
        {"create": NOON_RUN, "events": ["TooManyMissedTimes"]},
        id="too-many-missed-runs-latest",
    ),
    pytest.param(
        cronjob(created="2026-01-01T09:30:00Z"),
        [],
        {},
        {"create": NOON_RUN, "events": []},
        id="few-missed-runs-latest",
    ),
    pytest.param(
        cronjob(status={"active": [ref("done")], "lastScheduleTime": "2026-01-01T12:00:00Z"}),
        [job("done", "Complete", completion="2026-01-01T11:05:00Z")],
        {},
        {"active": [], "events": ["SawCompletedJob"], "lastSuccessfulTime": None},
        id="finished-active-job-leaves-active",
    ),
    pytest.param(
        cronjob(
            status={"lastScheduleTime": "2026-01-01T12:00:00Z", "lastSuccessfulTime": "2026-01-01T10:05:00Z"}
        ),
        [
            job("done", "Complete", completion="2026-01-01T11:05:00Z"),
            job("older", "Complete", completion="2026-01-01T09:05:00Z"),
        ],
        {},
        {"lastSuccessfulTime": "2026-01-01T11:05:00Z"},
        id="last-successful-time-is-latest",
    ),
    pytest.param(
        cronjob(status={"active": [ref("lost")], "lastScheduleTime": "2026-01-01T12:00:00Z"}),
        [],
        {"missing": ["uid-lost"]},
        {"active": [], "events": ["MissingJob"]},
        id="missing-job-leaves-active",
    ),
    pytest.param(
        cronjob(status={"active": [ref("lagging")], "lastScheduleTime": "2026-01-01T12:00:00Z"}),
        [],
        {},
        {"active": ["lagging"], "events": []},
        id="job-not-cached-but-not-missing-stays",
    ),
    pytest.param(
        cronjob(
            status={"lastScheduleTime": "2026-01-01T12:00:00Z"},
            successfulJobsHistoryLimit=1,
            failedJobsHistoryLimit=0,
        ),
        [
            job("s1", "Complete", start="2026-01-01T09:00:00Z"),
            job("s2", "Complete", start="2026-01-01T11:00:00Z"),
            job("s0", "Complete", start="2026-01-01T08:00:00Z"),
            job("f1", "Failed"),
            job("run"),
        ],
        {},
        {"delete": ["s0", "s1", "f1"]},
        id="history-limits-delete-oldest",
    ),
    pytest.param(
        cronjob(created="2026-01-01T07:30:00Z", timeZone="Europe/Berlin", schedule="0 9 * * *", status={}),
        [],
        {},
        {
            "create": f"hello-{int(t('2026-01-01T08:00:00+00:00').timestamp()) // 60}",
            "annotation": "2026-01-01T09:00:00+01:00",
        },
        id="time-zone-run-annotated-in-zone",
    ),
    pytest.param(
        cronjob(timeZone="Mars/Olympus"),
        [],
        {},
        {"create": None, "events": ["UnknownTimeZone"]},
        id="unknown-time-zone",
    ),
    pytest.param(
        cronjob(schedule="not a schedule"),
        [],
        {},
        {"create": None, "events": ["UnparseableSchedule"]},
        id="unparseable-schedule",
    ),
    pytest.param(
        cronjob(schedule="0 0 30 2 *"),
        [],
        {},
        {"create": None, "events": ["InvalidSchedule"]},
        id="impossible-schedule",
    ),
]


@pytest.mark.parametrize(("cj", "jobs", "kwargs", "expect"), CASES)
def test_plan_cronjob(cj: Obj, jobs: list[Obj], kwargs: dict[str, Any], expect: dict[str, Any]) -> None:
    before = repr((cj, jobs))
    plan = plan_cronjob(cj, jobs, NOW, **kwargs)
    created = plan.create_job
    got = {
        "create": created["metadata"]["name"] if created else None,
        "annotation": created["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION] if created else None,
        "scheduled": rfc3339(plan.scheduled) if plan.scheduled else None,
        "delete": [j["metadata"]["name"] for j in plan.delete_jobs],
        "events": [e[1] for e in plan.events],
        "requeue": plan.requeue_after,
        "active": [r["name"] for r in plan.status.get("active") or ()],
        "lastSuccessfulTime": plan.status.get("lastSuccessfulTime"),
        "status": plan.status,
    }
    assert {k: got[k] for k in expect} == expect
    assert repr((cj, jobs)) == before, "the planner must not mutate its inputs"


def test_job_from_template_shape() -> None:
    plan = plan_cronjob(cronjob(), [], NOW)
    assert plan.create_job == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": NOON_RUN,
            "namespace": "default",
            "labels": {"team": "a"},
            "annotations": {SCHEDULED_TIMESTAMP_ANNOTATION: "2026-01-01T12:00:00Z"},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": "hello",
                    "uid": "cj-uid",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": cronjob()["spec"]["jobTemplate"]["spec"],
    }


def test_history_limit_unset_keeps_everything() -> None:
    cj = cronjob()
    del cj["spec"]["successfulJobsHistoryLimit"], cj["spec"]["failedJobsHistoryLimit"]
    assert jobs_over_history_limit(cj, [job(f"s{i}", "Complete") for i in range(5)]) == []


# --- integration: CronJob + Job controllers over a real ControlPlane (temporary SQLite), in-process client ---





class Clock:
    """A wall clock the test sets by hand."""

    def __init__(self) -> None:
        self.at = dt.datetime.now(UTC)

    def __call__(self) -> dt.datetime:
        return self.at


class CountingCronJobController(CronJobController):
    """Counts finished syncs, so a test can wait for one without sleeping."""

    syncs = 0

    async def sync(self, key: str) -> None:
        await super().sync(key)
        self.syncs += 1


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[InProcessClient, Clock, CountingCronJobController]]:
    plane = await start_control_plane(tmp_path)
    store = plane.store
    client = InProcessClient(LocalBackend(plane))
    factory = InformerFactory(client)
    ctx = ControllerContext(client, factory, factory.new_queue)
    clock = Clock()
    cron = CountingCronJobController(ctx, now=clock)
    controllers = [cron, JobController(ctx)]
    for ctl in controllers:
        ctl.setup()
    tasks = [asyncio.create_task(ctl.run()) for ctl in controllers]
    try:
        yield client, clock, cron
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await factory.stop()
        await client.close()
        await store.close()


async def test_cronjob_runs_a_job_per_schedule_time(
    cluster: tuple[InProcessClient, Clock, CountingCronJobController],
) -> None:
    c, clock, cron = cluster
    body = cronjob()
    body["metadata"] = {"name": "hello"}
    body.pop("status")
    body["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    created = await c.create(CRONJOBS, "default", body)

    async def synced_once() -> bool:
        return cron.syncs > 0

    await eventually(synced_once, "a first sync of the CronJob")
    assert (await c.list(JOBS, "default"))["items"] == [], "not due yet: no Job"

    due = parse_schedule("0 * * * *").next(
        t(created["metadata"]["creationTimestamp"].replace("Z", "+00:00")), UTC
    )
    assert due is not None
    clock.at = due + dt.timedelta(seconds=5)  # the first hourly run after creation is now due
    name = f"hello-{int(due.timestamp()) // 60}"
    cron.queue.add("default/hello")

    async def job_created() -> Obj | None:
        jobs = (await c.list(JOBS, "default"))["items"]
        return jobs[0] if jobs else None

    j = await eventually(job_created, "the scheduled Job")
    assert j["metadata"]["name"] == name
    assert j["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION] == rfc3339(due)
    assert j["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]

    async def active() -> Obj | None:
        cj = await c.get(CRONJOBS, "default", "hello")
        return cj if (cj.get("status") or {}).get("active") else None

    cj = await eventually(active, "the run listed in status.active")
    assert [r["name"] for r in cj["status"]["active"]] == [name]
    assert cj["status"]["lastScheduleTime"] == rfc3339(due)

    async def pod() -> Obj | None:
        pods = (await c.list(PODS, "default"))["items"]
        return pods[0] if pods else None

    p = await eventually(pod, "the Job's pod")
    p["status"] = {**(p.get("status") or {}), "phase": "Succeeded"}
    await c.update(PODS, "default", p, subresource="status")

    async def succeeded() -> Obj | None:
        cj = await c.get(CRONJOBS, "default", "hello")
        st = cj.get("status") or {}
        return cj if not st.get("active") and st.get("lastSuccessfulTime") else None

    cj = await eventually(succeeded, "the finished run leaves status.active and sets lastSuccessfulTime")
    assert len((await c.list(JOBS, "default"))["items"]) == 1, "one Job per schedule time"
