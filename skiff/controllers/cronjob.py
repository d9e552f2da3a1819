"""The CronJob controller: a Job per scheduled time of a batch/v1 CronJob.

Mirrors upstream `pkg/controller/cronjob/cronjob_controllerv2.go` and `utils.go` (1.32):
Job names `<cronjob>-<scheduled time in minutes since the epoch>` (the name is the lock against
creating a run twice), annotation `batch.kubernetes.io/cronjob-scheduled-timestamp`, the most recent
unmet schedule time (more than 100 missed → warning TooManyMissedTimes), startingDeadlineSeconds
(MissSchedule), concurrencyPolicy Allow/Forbid/Replace, suspend, timeZone, the history limits, and
`status.active`/`lastScheduleTime`/`lastSuccessfulTime`.

Schedules are parsed here (robfig/cron's standard syntax as the API validates it) and evaluated in
wall-clock time of the CronJob's zone; without `timeZone` (or a `TZ=` prefix) skiff uses UTC where
upstream uses the controller manager's local zone. Not mirrored: the UnexpectedJob event.

`plan_cronjob` is the pure decision; `CronJobController.sync` feeds it cached state and executes it.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from skiff.api import errors
from skiff.api.meta import Obj, parse_time, rfc3339
from skiff.api.meta import now as wall_now
from skiff.client.interface import CRONJOBS, JOBS, DeleteOptions, Informer
from skiff.controllers.base import Controller, ControllerContext, key_of, split_key
from skiff.controllers.podcontrol import controller_ref, owner_reference

log = logging.getLogger("skiff.controllers.cronjob")

COMPONENT = "cronjob-controller"
SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
NEXT_SCHEDULE_DELTA = 0.1  # requeue 100 ms after the next schedule time, as upstream
MANY_MISSED = 100

Event = tuple[str, str, str]  # (type, reason, message)


# ---- cron schedules ------------------------------------------------------------------------------


class CronError(ValueError):
    pass


_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS: tuple[tuple[int, int, dict[str, int]], ...] = (  # (lo, hi, names → value)
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    (0, 6, {d: i for i, d in enumerate(_DAYS)}),
)
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SEARCH_YEARS = 5  # robfig gives up (zero time) after five years without a match


@dataclass(frozen=True)
class CronSchedule:
    """A parsed standard schedule: allowed values per field (robfig SpecSchedule), or a fixed
    `every` interval in seconds (ConstantDelaySchedule); `zone` from a `TZ=`/`CRON_TZ=` prefix."""

    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    dom: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    dow: frozenset[int] = frozenset()
    day_star: bool = False  # dom or dow was `*`/`?`: both must match, else either
    every: float | None = None
    zone: str | None = None

    def next(self, t: dt.datetime, tz: dt.tzinfo) -> dt.datetime | None:
        """The first activation strictly after `t` (aware), in zone `tz` (robfig Next); None when
        nothing matches within five years (e.g. `0 0 30 2 *`)."""
        if self.every is not None:
            return t.replace(microsecond=0) + dt.timedelta(seconds=self.every)
        local = t.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0) + dt.timedelta(minutes=1)
        limit = local.year + _SEARCH_YEARS
        while local.year <= limit:
            if local.month not in self.months:
                year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
                local = dt.datetime(year, month, 1)
                continue
            if not self._day_matches(local):
                local = dt.datetime(local.year, local.month, local.day) + dt.timedelta(days=1)
                continue
            if local.hour not in self.hours:
                local = local.replace(minute=0) + dt.timedelta(hours=1)
                continue
            if local.minute not in self.minutes:
                local += dt.timedelta(minutes=1)
                continue
            aware = local.replace(tzinfo=tz)
            if aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) != local:
                local += dt.timedelta(minutes=1)  # a wall time skipped by a DST jump: not a real instant
                continue
            return aware.astimezone(dt.UTC)
        return None

    def _day_matches(self, t: dt.datetime) -> bool:
        dom_ok = t.day in self.dom
        dow_ok = (t.isoweekday() % 7) in self.dow
        return (dom_ok and dow_ok) if self.day_star else (dom_ok or dow_ok)


def _value(text: str, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise CronError(f"failed to parse int from {text}")
    return int(text)


def _parse_field(text: str, index: int) -> tuple[frozenset[int], bool]:
    lo, hi, names = _FIELDS[index]
    values: set[int] = set()
    star = False
    for term in (t for t in text.split(",") if t):
        rng, _, step_s = term.partition("/")
        step = _value(step_s, {}) if step_s else 1
        if rng in ("*", "?"):
            start, end = lo, hi
            star = star or step == 1
        else:
            a, _, b = rng.partition("-")
            start = _value(a, names)
            end = _value(b, names) if b else (hi if step_s else start)
        if start < lo or end > hi or start > end or step == 0:
            raise CronError(f"invalid range: {term}")
        values.update(range(start, end + 1, step))
    return frozenset(values), star


def parse_schedule(spec: str) -> CronSchedule:
    """robfig/cron ParseStandard: 5 fields, descriptors, `@every <duration>`, optional TZ prefix."""
    zone: str | None = None
    spec = spec.strip()
    if spec.startswith(("TZ=", "CRON_TZ=")):
        head, _, spec = spec.partition(" ")
        zone = head.split("=", 1)[1]
        load_zone(zone)
        spec = spec.strip()
    if spec.startswith("@every "):
        text = spec[len("@every ") :].strip()
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise CronError(f"failed to parse duration {spec}")
        every = sum(float(n) * _UNITS[u] for n, u in parts)
        return CronSchedule(every=max(1.0, float(round(every))), zone=zone)
    spec = _DESCRIPTORS.get(spec, spec)
    if spec.startswith("@"):
        raise CronError(f"unrecognized descriptor: {spec}")
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    minutes, _ = _parse_field(fields[0], 0)
    hours, _ = _parse_field(fields[1], 1)
    dom, dom_star = _parse_field(fields[2], 2)
    months, _ = _parse_field(fields[3], 3)
    dow, dow_star = _parse_field(fields[4], 4)
    return CronSchedule(minutes, hours, dom, months, dow, dom_star or dow_star, None, zone)


def load_zone(name: str | None) -> dt.tzinfo:
    """The zone of a CronJob (`spec.timeZone`); UTC when unset. Raises CronError for unknown zones."""
    if not name:
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
        raise CronError(f"unknown time zone {name}") from e


# ---- schedule arithmetic (upstream utils.go) -----------------------------------------------------


@dataclass(frozen=True)
class ScheduleTimes:
    earliest: dt.datetime
    most_recent: dt.datetime | None  # the latest unmet schedule time not after now
    missed: int  # 0: none, 1: few, 2: many (>100)


def most_recent_schedule_time(
    cj: Obj, now: dt.datetime, sched: CronSchedule, tz: dt.tzinfo, with_deadline: bool
) -> ScheduleTimes:
    """Upstream mostRecentScheduleTime. Raises CronError when two runs are less than 1 s apart
    (impossible schedules such as `59 23 31 2 *`)."""
    md = cj.get("metadata") or {}
    status = cj.get("status") or {}
    earliest = parse_time(status.get("lastScheduleTime")) or parse_time(md.get("creationTimestamp")) or now
    deadline = (cj.get("spec") or {}).get("startingDeadlineSeconds")
    if with_deadline and isinstance(deadline, int):
        floor = now - dt.timedelta(seconds=deadline)
        if floor > earliest:
            earliest = floor
    t1 = sched.next(earliest, tz)
    t2 = sched.next(t1, tz) if t1 is not None else None
    if t1 is not None and now < t1:
        return ScheduleTimes(earliest, None, 0)
    if t1 is not None and t2 is not None and now < t2:
        return ScheduleTimes(earliest, t1, 0)
    if t1 is None or t2 is None or round((t2 - t1).total_seconds()) < 1:
        raise CronError("time difference between two schedules is less than 1 second")
    between = round((t2 - t1).total_seconds())
    missed = int((now - t1).total_seconds()) // between + 1
    recent: dt.datetime | None = None
    t: dt.datetime | None = sched.next(t1 + dt.timedelta(seconds=(missed - 2) * between), tz)
    while t is not None and t <= now:
        recent = t
        t = sched.next(t, tz)
    return ScheduleTimes(earliest, recent, 2 if missed > MANY_MISSED else 1 if missed > 0 else 0)


def next_requeue(cj: Obj, now: dt.datetime, sched: CronSchedule, tz: dt.tzinfo) -> float | None:
    """Seconds until the sync after the next schedule time (upstream nextScheduleTimeDuration)."""
    try:
        times = most_recent_schedule_time(cj, now, sched, tz, False)
        base = times.most_recent or (times.earliest if times.missed == 0 else now)
    except CronError:
        base = now
    nxt = sched.next(base, tz)
    if nxt is None:
        return None
    return (nxt - now).total_seconds() + NEXT_SCHEDULE_DELTA


def job_name(cj: Obj, scheduled: dt.datetime) -> str:
    """`<cronjob>-<minutes since the epoch>` (upstream getJobName)."""
    return f"{(cj.get('metadata') or {}).get('name', '')}-{int(scheduled.timestamp()) // 60}"


def _go_rfc3339(t: dt.datetime) -> str:
    """Go's time.RFC3339: `Z` for UTC, else the numeric offset."""
    s = t.replace(microsecond=0).isoformat()
    return s[:-6] + "Z" if s.endswith("+00:00") else s


def job_from_template(cj: Obj, scheduled: dt.datetime, tz: dt.tzinfo) -> Obj:
    """The Job of one run (upstream getJobFromTemplate2): the template's labels, annotations and
    spec, the scheduled-timestamp annotation in the CronJob's zone, a controller ownerReference."""
    template = (cj.get("spec") or {}).get("jobTemplate") or {}
    tmd = template.get("metadata") or {}
    annotations = dict(tmd.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = _go_rfc3339(scheduled.astimezone(tz))
    md: Obj = {
        "name": job_name(cj, scheduled),
        "namespace": (cj.get("metadata") or {}).get("namespace", ""),
        "labels": dict(tmd.get("labels") or {}),
        "annotations": annotations,
        "ownerReferences": [owner_reference(cj, "batch/v1", "CronJob")],
    }
    if not md["labels"]:
        del md["labels"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": md,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def job_ref(job: Obj) -> Obj:
    """An ObjectReference to a Job, as status.active holds them."""
    md = job.get("metadata") or {}
    ref = {
        "kind": "Job",
        "namespace": md.get("namespace", ""),
        "name": md.get("name", ""),
        "uid": md.get("uid", ""),
        "apiVersion": "batch/v1",
        "resourceVersion": md.get("resourceVersion", ""),
    }
    return {k: v for k, v in ref.items() if v}


def finished_type(job: Obj) -> str | None:
    """ "Complete" or "Failed" when that condition is True (upstream getFinishedStatus)."""
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return None


def _start_key(job: Obj) -> tuple[bool, dt.datetime, str]:
    start = parse_time((job.get("status") or {}).get("startTime"))
    return (
        start is None,
        start or dt.datetime.min.replace(tzinfo=dt.UTC),
        (job.get("metadata") or {}).get("name", ""),
    )


def jobs_over_history_limit(cj: Obj, jobs: Iterable[Obj]) -> list[Obj]:
    """Finished Jobs beyond successful/failedJobsHistoryLimit, oldest start first (upstream
    cleanupFinishedJobs with byJobStartTime: no startTime sorts last, ties by name)."""
    spec = cj.get("spec") or {}
    out: list[Obj] = []
    for kind, limit_key in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
        limit = spec.get(limit_key)
        if not isinstance(limit, int):
            continue
        done = sorted((j for j in jobs if finished_type(j) == kind), key=_start_key)
        out += done[: max(0, len(done) - limit)]
    return out


# ---- the plan ------------------------------------------------------------------------------------


@dataclass
class CronPlan:
    """One sync, in order: delete `delete_jobs` (Background; history cleanup, then Replace), create
    `create_job` (then append its reference to `status.active` and set `lastScheduleTime` to
    `scheduled`), write `status` when it differs from the cached one, post `events`, requeue."""

    status: Obj = field(default_factory=dict)
    delete_jobs: list[Obj] = field(default_factory=list)
    create_job: Obj | None = None
    scheduled: dt.datetime | None = None
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None


def plan_cronjob(cj: Obj, jobs: Sequence[Obj], now: dt.datetime, missing: Iterable[str] = ()) -> CronPlan:
    """Decide one sync of `cj` given the Jobs it controls; `missing` are UIDs in status.active the
    API server says no longer exist. Pure; never mutates its arguments."""
    status = copy.deepcopy(cj.get("status") or {})
    plan = CronPlan(status=status)
    active: list[Obj] = status.get("active") or []
    gone = set(missing)
    md = cj.get("metadata") or {}
    spec = cj.get("spec") or {}

    def drop(uid: str) -> None:
        active[:] = [r for r in active if r.get("uid") != uid]

    for job in jobs_over_history_limit(cj, jobs):
        plan.delete_jobs.append(job)
        plan.events.append(
            ("Normal", "SuccessfulDelete", f"Deleted job {(job.get('metadata') or {}).get('name')}")
        )
        drop(str((job.get("metadata") or {}).get("uid") or ""))

    seen = set()
    for job in jobs:
        jmd = job.get("metadata") or {}
        uid = str(jmd.get("uid") or "")
        seen.add(uid)
        found = any(r.get("uid") == uid for r in active)
        done = finished_type(job)
        if found and done:
            drop(uid)
            plan.events.append(
                ("Normal", "SawCompletedJob", f"Saw completed job: {jmd.get('name')}, condition: {done}")
            )
        elif done == "Complete":
            completed = parse_time((job.get("status") or {}).get("completionTime"))
            last = parse_time(status.get("lastSuccessfulTime"))
            if completed is not None and (last is None or completed > last):
                status["lastSuccessfulTime"] = rfc3339(completed)
    for ref in list(active):
        if ref.get("uid") not in seen and ref.get("uid") in gone:
            plan.events.append(("Normal", "MissingJob", f"Active job went missing: {ref.get('name')}"))
            drop(str(ref.get("uid")))

    def finish() -> CronPlan:
        if active:
            status["active"] = active
        else:
            status.pop("active", None)
        return plan

    if md.get("deletionTimestamp"):
        return finish()
    try:
        tz = load_zone(spec.get("timeZone"))
    except CronError as e:
        plan.events.append(("Warning", "UnknownTimeZone", f"invalid timeZone: {spec.get('timeZone')!r}: {e}"))
        return finish()
    if spec.get("suspend") is True:
        return finish()
    schedule = str(spec.get("schedule") or "")
    try:
        sched = parse_schedule(schedule)
        if sched.zone:
            tz = load_zone(sched.zone)
    except CronError as e:
        plan.events.append(("Warning", "UnparseableSchedule", f"unparseable schedule: {schedule!r} : {e}"))
        return finish()
    try:
        times = most_recent_schedule_time(cj, now, sched, tz, True)
    except CronError as e:
        plan.events.append(("Warning", "InvalidSchedule", f"invalid schedule: {schedule} : {e}"))
        return finish()
    scheduled = times.most_recent
    if scheduled is not None and times.missed == 2:
        plan.events.append(
            (
                "Warning",
                "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
            )
        )
    plan.requeue_after = next_requeue(cj, now, sched, tz)
    if scheduled is None or scheduled > now:
        return finish()
    deadline = spec.get("startingDeadlineSeconds")
    if isinstance(deadline, int) and scheduled + dt.timedelta(seconds=deadline) < now:
        when = scheduled.astimezone(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        plan.events.append(("Warning", "MissSchedule", f"Missed scheduled time to start a job: {when}"))
        return finish()
    name = job_name(cj, scheduled)
    if any(r.get("name") == name for r in active) or parse_time(status.get("lastScheduleTime")) == scheduled:
        return finish()
    policy = spec.get("concurrencyPolicy") or "Allow"
    if policy == "Forbid" and active:
        plan.events.append(
            (
                "Normal",
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            )
        )
        return finish()
    if policy == "Replace":
        for ref in active:
            plan.delete_jobs.append(
                {
                    "metadata": {
                        "name": ref.get("name"),
                        "namespace": ref.get("namespace") or md.get("namespace", ""),
                        "uid": ref.get("uid"),
                    }
                }
            )
            plan.events.append(("Normal", "SuccessfulDelete", f"Deleted job {ref.get('name')}"))
        active.clear()
    plan.create_job = job_from_template(cj, scheduled, tz)
    plan.scheduled = scheduled
    after = {**cj, "status": {**status, "lastScheduleTime": rfc3339(scheduled)}}
    plan.requeue_after = next_requeue(after, now, sched, tz)
    return finish()


# ---- the controller ------------------------------------------------------------------------------


def _cronjob_key_of_job(job: Obj) -> str | None:
    ref = controller_ref(job)
    if ref is None or ref.get("kind") != "CronJob":
        return None
    ns = (job.get("metadata") or {}).get("namespace") or ""
    return f"{ns}/{ref.get('name', '')}"


class CronJobController(Controller):
    """batch/v1 CronJobs. `now` is the wall clock schedules are evaluated against."""

    name = "cronjob"
    workers = 2

    def __init__(self, ctx: ControllerContext, now: Callable[[], dt.datetime] = wall_now) -> None:
        super().__init__(ctx)
        self.now = now
        self.cronjobs: Informer = ctx.informers.informer(CRONJOBS)
        self.jobs: Informer = ctx.informers.informer(JOBS)

    def informers(self) -> Sequence[Informer]:
        return (self.cronjobs, self.jobs)

    def setup(self) -> None:
        self.cronjobs.add_handler(self._on_cronjob)
        self.jobs.add_handler(self._on_job)

    def _on_cronjob(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is not None:
            self.queue.add(key_of(obj))

    def _on_job(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        for obj in (old, new):
            key = _cronjob_key_of_job(obj) if obj is not None else None
            if key is not None:
                self.queue.add(key)

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        cached = self.cronjobs.get(ns, name)
        if cached is None:
            return
        cj = {"kind": "CronJob", "apiVersion": "batch/v1", **cached}
        jobs = self.jobs.by_index("owner", str((cj.get("metadata") or {}).get("uid") or ""))
        known = {(j.get("metadata") or {}).get("uid") for j in jobs}
        missing = []
        for ref in (cj.get("status") or {}).get("active") or ():
            if ref.get("uid") in known:
                continue
            try:  # the cache may lag: ask the API server before declaring a Job gone (as upstream)
                await self.client.get(JOBS, ref.get("namespace") or ns, str(ref.get("name") or ""))
            except errors.ApiError as e:
                if e.code != 404:
                    raise
                missing.append(str(ref.get("uid")))
        plan = plan_cronjob(cj, jobs, self.now(), missing)
        await self._execute(key, cj, plan)

    async def _execute(self, key: str, cj: Obj, plan: CronPlan) -> None:
        md = cj.get("metadata") or {}
        ns = md.get("namespace") or ""
        for job in plan.delete_jobs:
            jmd = job.get("metadata") or {}
            try:
                await self.client.delete(
                    JOBS,
                    jmd.get("namespace") or ns,
                    str(jmd.get("name") or ""),
                    DeleteOptions(propagation_policy="Background"),
                )
            except errors.ApiError as e:
                if e.code != 404:
                    await self.events.record(cj, "Warning", "FailedDelete", f"Deleted job: {e}", COMPONENT
                    )
                    raise
        status = plan.status
        failure: Exception | None = None
        if plan.create_job is not None and plan.scheduled is not None:
            created: Obj | None = None
            try:
                created = await self.client.create(JOBS, ns, plan.create_job, field_manager=COMPONENT)
                plan.events.append(
                    (
                        "Normal",
                        "SuccessfulCreate",
                        f"Created job {(created.get('metadata') or {}).get('name')}",
                    )
                )
            except errors.ApiError as e:
                if e.code == 409 and e.reason == "AlreadyExists":
                    existing = await self.client.get(JOBS, ns, plan.create_job["metadata"]["name"])
                    ref = controller_ref(existing)
                    created = existing if ref is not None and ref.get("uid") == md.get("uid") else None
                else:
                    plan.events.append(("Warning", "FailedCreate", f"Error creating job: {e}"))
                    failure = e
            if created is not None:
                status = {
                    **status,
                    "active": [*(status.get("active") or []), job_ref(created)],
                    "lastScheduleTime": rfc3339(plan.scheduled),
                }
        if status != (cj.get("status") or {}):
            await self.client.update(
                CRONJOBS, ns, {**cj, "status": status}, subresource="status", field_manager=COMPONENT
            )
        for type_, reason, message in plan.events:
            await self.events.record(cj, type_, reason, message, COMPONENT)
        if failure is not None:
            raise failure
        if plan.requeue_after is not None:
            self.queue.add_after(key, max(0.0, plan.requeue_after))
