"""The Job controller: pods for a batch/v1 Job until enough of them succeed, or the Job fails.

Mirrors upstream `pkg/controller/job/job_controller.go` (1.32, with the default feature gates:
JobPodReplacementPolicy, JobSuccessPolicy, JobManagedBy and PodIndexLabel on), `backoff_utils.go`
and `indexed_job_utils.go`, plus the TTL-after-finished controller (`pkg/controller/ttlafterfinished`):

* pods from the template (labels carry job-name/controller-uid from the API server's Job defaulting),
  controller ownerReference, finalizer `batch.kubernetes.io/job-tracking`;
* NonIndexed: active = min(parallelism, completions - succeeded) (parallelism when completions is
  unset, until the first success); Indexed: one pod per pending index with the completion-index
  annotation and label, env JOB_COMPLETION_INDEX, hostname `<job>-<index>`, generateName
  `<job>-<index>-`, `status.completedIndexes`;
* failed-pod accounting through `status.uncountedTerminatedPods` and the tracking finalizer: a
  terminated pod is first recorded by UID in the status, then its finalizer is removed, then it moves
  to `succeeded`/`failed` — a crash between the steps neither loses nor double-counts a pod;
* backoffLimit with exponential pod-creation back-off (10 s doubling, capped at 6 min, reset by a
  success; kept in memory as upstream's backoffStore, so a restart forgets it), restartPolicy
  OnFailure restarts counted against backoffLimit, activeDeadlineSeconds;
* suspend (active pods released from the finalizer and deleted, so not counted as failed; condition
  Suspended; resume resets startTime);
* the interim conditions FailureTarget / SuccessCriteriaMet, then the terminal Failed / Complete
  once no pod is terminating and every terminated pod is counted;
* ttlSecondsAfterFinished: the finished Job is deleted with Background propagation.

Not mirrored (yet): podFailurePolicy, backoffLimitPerIndex/maxFailedIndexes, successPolicy rules,
adoption of orphan pods that match the selector (only pods whose controller ref is the Job count),
the MaxUncountedPods cap on one status write.

`plan_job` is the pure decision; `JobController.sync` feeds it cached state and executes the plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from skiff.api import errors
from skiff.api.meta import Obj, parse_time, rfc3339
from skiff.api.meta import now as wall_now
from skiff.api.pods import is_pod_ready
from skiff.client.interface import JOBS, PODS, DeleteOptions, Informer, Patch
from skiff.controllers.base import Controller, ControllerContext, key_of, split_key
from skiff.controllers.podcontrol import (
    Expectations,
    controller_ref,
    deletion_sort_key,
    is_pod_active,
    pod_from_template,
    slow_start_batches,
)

log = logging.getLogger("skiff.controllers.job")

COMPONENT = "job-controller"
CONTROLLER_NAME = "kubernetes.io/job-controller"  # spec.managedBy value meaning "this controller"
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
DEFAULT_BACKOFF = 10.0  # DefaultJobPodFailureBackOff
MAX_BACKOFF = 360.0  # MaxJobPodFailureBackOff
MAX_POD_CREATE_DELETE_PER_SYNC = 500
MAX_GENERATED_NAME_LENGTH = 58  # names.MaxGeneratedNameLength: 63 - 5 random characters

REASON_BACKOFF_LIMIT = "BackoffLimitExceeded"
REASON_DEADLINE = "DeadlineExceeded"
REASON_COMPLETIONS = "CompletionsReached"
MSG_BACKOFF_LIMIT = "Job has reached the specified backoff limit"
MSG_DEADLINE = "Job was active longer than specified deadline"
MSG_COMPLETIONS = "Reached expected number of succeeded pods"

Event = tuple[str, str, str]  # (type, reason, message)


# ---- small pure helpers ------------------------------------------------------------------------


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def has_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in ((pod.get("metadata") or {}).get("finalizers") or ())


def is_terminating(pod: Obj) -> bool:
    """Being deleted but not terminated yet (upstream CountTerminatingPods)."""
    return bool((pod.get("metadata") or {}).get("deletionTimestamp")) and _phase(pod) not in (
        "Succeeded",
        "Failed",
    )


def find_condition(status: Obj, type_: str) -> Obj | None:
    for c in status.get("conditions") or ():
        if isinstance(c, dict) and c.get("type") == type_:
            return c
    return None


def condition_true(status: Obj, type_: str) -> bool:
    c = find_condition(status, type_)
    return c is not None and c.get("status") == "True"


def is_job_finished(job: Obj) -> bool:
    """Complete or Failed is True (upstream IsJobFinished)."""
    status = job.get("status") or {}
    return condition_true(status, "Complete") or condition_true(status, "Failed")


def new_condition(type_: str, status: str, reason: str, message: str, now: dt.datetime) -> Obj:
    t = rfc3339(now)
    return {
        "type": type_,
        "status": status,
        "lastProbeTime": t,
        "lastTransitionTime": t,
        "reason": reason,
        "message": message,
    }


def ensure_condition(
    conditions: list[Obj], type_: str, status: str, reason: str, message: str, now: dt.datetime
) -> bool:
    """Upstream ensureJobConditionStatus, in place: replace a differing condition of that type; add a
    missing one unless its status is False. Returns whether the list changed."""
    for i, c in enumerate(conditions):
        if c.get("type") == type_:
            if c.get("status") != status or c.get("reason") != reason or c.get("message") != message:
                conditions[i] = new_condition(type_, status, reason, message, now)
                return True
            return False
    if status != "False":
        conditions.append(new_condition(type_, status, reason, message, now))
        return True
    return False


def completion_index(pod: Obj) -> int:
    """The pod's completion index annotation, -1 when absent or invalid (upstream getCompletionIndex)."""
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(COMPLETION_INDEX_ANNOTATION)
    if not isinstance(raw, str) or not raw.isdigit():
        return -1
    return int(raw)


def parse_indexes(text: str, completions: int) -> set[int]:
    """`status.completedIndexes` ("1,3-5,7") as a set; entries at or above `completions` are dropped
    and malformed ones ignored (upstream parseIndexesFromString)."""
    out: set[int] = set()
    for part in (text or "").split(","):
        lo_s, _, hi_s = part.partition("-")
        try:
            lo = int(lo_s)
            hi = int(hi_s) if hi_s else lo
        except ValueError:
            continue
        out.update(i for i in range(lo, hi + 1) if 0 <= i < completions)
    return out


def format_indexes(indexes: Iterable[int]) -> str:
    """Sorted, compressed intervals: {0,1,2,5} → "0-2,5" (upstream orderedIntervals.String)."""
    parts: list[str] = []
    ordered = sorted(set(indexes))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def first_pending_indexes(completions: int, taken: set[int], count: int) -> list[int]:
    """The `count` lowest indexes in [0, completions) not in `taken` (upstream firstPendingIndexes)."""
    out: list[int] = []
    for i in range(completions):
        if len(out) >= count:
            break
        if i not in taken:
            out.append(i)
    return out


def pod_finished_time(pod: Obj) -> dt.datetime | None:
    """When a terminated pod finished (upstream getFinishedTime): the Ready=False transition, else the
    latest container finishedAt, else the deletion or creation timestamp."""
    st = pod.get("status") or {}
    for c in st.get("conditions") or ():
        if c.get("type") == "Ready" and c.get("status") == "False":
            t = parse_time(c.get("lastTransitionTime"))
            if t is not None:
                return t
    ends = []
    for cs in list(st.get("containerStatuses") or ()) + list(st.get("initContainerStatuses") or ()):
        t = parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if t is not None:
            ends.append(t)
    if ends:
        return max(ends)
    md = pod.get("metadata") or {}
    return parse_time(md.get("deletionTimestamp")) or parse_time(md.get("creationTimestamp"))


# ---- back-off ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackoffRecord:
    """Failures since the last success and when the latest happened (upstream backoffRecord)."""

    failures: int = 0
    last_failure: dt.datetime | None = None


def next_backoff_record(
    prev: BackoffRecord, new_succeeded: Sequence[Obj], new_failed: Sequence[Obj], now: dt.datetime
) -> BackoffRecord:
    """Upstream backoffStore.newBackoffRecord over the pods that finished since the last status flush:
    failures accumulate; a success resets the count to the failures that finished after it."""

    def when(p: Obj) -> dt.datetime:
        return pod_finished_time(p) or now

    failed = sorted(when(p) for p in new_failed)
    if not new_succeeded:
        if not failed:
            return prev
        return BackoffRecord(prev.failures + len(failed), failed[-1])
    last_success = max(when(p) for p in new_succeeded)
    after = [t for t in failed if t > last_success]
    return BackoffRecord(len(after), after[-1] if after else None)


def backoff_remaining(
    record: BackoffRecord, now: dt.datetime, base: float = DEFAULT_BACKOFF, cap: float = MAX_BACKOFF
) -> float:
    """Seconds before pods may be created again: base * 2^(failures-1) capped, minus the time since
    the last failure (upstream getRemainingTimeForFailuresCount); 0 when no wait is needed."""
    if record.failures <= 0 or record.last_failure is None:
        return 0.0
    delay = base
    for _ in range(1, record.failures):
        delay *= 2
        if delay >= cap:
            delay = cap
            break
    elapsed = (now - record.last_failure).total_seconds()
    return 0.0 if delay < elapsed else delay - elapsed


# ---- pods ----------------------------------------------------------------------------------------


def pod_for_job(job: Obj, index: int | None) -> Obj:
    """A pod to create for `job` (upstream manageJob + GetPodFromTemplate): the template with the
    tracking finalizer and, for an Indexed Job, the index annotation/label, JOB_COMPLETION_INDEX in
    every container, hostname `<job>-<index>` and generateName `<job>-<index>-`."""
    spec = job.get("spec") or {}
    template = copy.deepcopy(spec.get("template") or {})
    tmd = template.setdefault("metadata", {})
    finalizers = list(tmd.get("finalizers") or ())
    if TRACKING_FINALIZER not in finalizers:
        finalizers.append(TRACKING_FINALIZER)
    tmd["finalizers"] = finalizers
    pod = pod_from_template(template, job, "batch/v1", "Job")
    if index is None:
        return pod
    name = str((job.get("metadata") or {}).get("name") or "")
    md = pod["metadata"]
    md.setdefault("annotations", {})[COMPLETION_INDEX_ANNOTATION] = str(index)
    md.setdefault("labels", {})[COMPLETION_INDEX_LABEL] = str(index)
    suffix = f"-{index}-"
    prefix = name + suffix
    if len(prefix) > MAX_GENERATED_NAME_LENGTH:
        prefix = prefix[: MAX_GENERATED_NAME_LENGTH - len(suffix)] + suffix
    md["generateName"] = prefix
    pspec = pod["spec"]
    pspec["hostname"] = f"{name}-{index}"
    env_ref = {"fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}}
    for key in ("initContainers", "containers"):
        for c in pspec.get(key) or ():
            env = c.setdefault("env", [])
            if not any(e.get("name") == COMPLETION_INDEX_ENV for e in env):
                env.append({"name": COMPLETION_INDEX_ENV, "valueFrom": copy.deepcopy(env_ref)})
    return pod


def pods_for_removal(job: Obj, active: Sequence[Obj], at_least: int, now: dt.datetime) -> list[Obj]:
    """Upstream activePodsForRemoval: for Indexed Jobs every pod with an out-of-range or duplicated
    index first, then the cheapest pods to lose (unscheduled, pending, not ready, newest)."""
    rm: list[Obj] = []
    left: list[Obj] = list(active)
    if is_indexed(job):
        completions = _int((job.get("spec") or {}).get("completions"))
        seen: set[int] = set()
        left = []
        for p in sorted(active, key=lambda p: (completion_index(p), not is_pod_ready(p))):
            ix = completion_index(p)
            if ix < 0 or ix >= completions or ix in seen:
                rm.append(p)
            else:
                seen.add(ix)
                left.append(p)
    if len(rm) < at_least:
        left.sort(key=lambda p: deletion_sort_key(p, 0, now))
        rm += left[: at_least - len(rm)]
    return rm


def is_indexed(job: Obj) -> bool:
    return (job.get("spec") or {}).get("completionMode") == "Indexed"


def is_suspended(job: Obj) -> bool:
    return (job.get("spec") or {}).get("suspend") is True


def only_replace_failed(job: Obj) -> bool:
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_pod_failed(pod: Obj, job: Obj) -> bool:
    """Failed, or (unless only failed pods are replaced) deleted before succeeding (upstream isPodFailed)."""
    if _phase(pod) == "Failed":
        return True
    if only_replace_failed(job):  # also when a podFailurePolicy is set
        return False
    return bool((pod.get("metadata") or {}).get("deletionTimestamp")) and _phase(pod) != "Succeeded"


def past_backoff_limit_on_failure(job: Obj, pods: Sequence[Obj]) -> bool:
    """restartPolicy OnFailure: container restarts of running/pending pods count against backoffLimit."""
    spec = job.get("spec") or {}
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for p in pods:
        if _phase(p) in ("Running", "Pending"):
            st = p.get("status") or {}
            for cs in list(st.get("initContainerStatuses") or ()) + list(st.get("containerStatuses") or ()):
                restarts += _int(cs.get("restartCount"))
    limit = _int(spec.get("backoffLimit"), 6)
    return restarts > 0 if limit == 0 else restarts >= limit


def finish_time(job: Obj) -> dt.datetime | None:
    """When the Job finished: completionTime, else the Complete/Failed transition time."""
    status = job.get("status") or {}
    for type_ in ("Complete", "Failed"):
        c = find_condition(status, type_)
        if c is not None and c.get("status") == "True":
            if type_ == "Complete" and status.get("completionTime"):
                return parse_time(status["completionTime"])
            return parse_time(c.get("lastTransitionTime"))
    return None


def ttl_decision(job: Obj, now: dt.datetime) -> tuple[bool, float | None]:
    """(delete now, else seconds until expiry or None) for a finished Job's ttlSecondsAfterFinished
    (upstream ttlafterfinished processTTL: expired when now >= finish + ttl)."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if (
        not isinstance(ttl, int)
        or not is_job_finished(job)
        or (job.get("metadata") or {}).get("deletionTimestamp")
    ):
        return False, None
    finished = finish_time(job)
    if finished is None:
        return False, None
    remaining = (finished + dt.timedelta(seconds=ttl) - now).total_seconds()
    return (True, None) if remaining <= 0 else (False, remaining)


# ---- the plan ------------------------------------------------------------------------------------


@dataclass
class JobPlan:
    """What one sync of a Job does, in this order: delete `delete` (after stripping their tracking
    finalizer when `release_before_delete`: pods removed by suspend or scale-down are not counted as
    failed, while pods killed because the Job failed keep it and are), create `create`, write `status`
    (when not None), strip the tracking finalizer from `remove_finalizers`, then write
    `final_status` (when not None; it assumes every finalizer removal succeeded), then post `events`
    and `finished_event`, delete the Job (`delete_job`, TTL) and requeue after `requeue_after`."""

    create: list[Obj] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)
    release_before_delete: bool = False
    remove_finalizers: list[Obj] = field(default_factory=list)
    status: Obj | None = None
    final_status: Obj | None = None
    events: list[Event] = field(default_factory=list)
    finished_event: Event | None = None
    requeue_after: float | None = None
    backoff: BackoffRecord = field(default_factory=BackoffRecord)
    delete_job: bool = False


def _min_requeue(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _set_count(status: Obj, key: str, value: int) -> None:
    """int32 counters with omitempty (active, succeeded, failed) disappear at 0, as upstream serializes."""
    if value:
        status[key] = value
    else:
        status.pop(key, None)


def _clean_uncounted(status: Obj, with_finalizer: set[str]) -> None:
    """Upstream cleanUncountedPodsWithoutFinalizers: UIDs whose finalizer is gone move to the counters."""
    unc = status.setdefault("uncountedTerminatedPods", {})
    for key in ("succeeded", "failed"):
        uids = list(unc.get(key) or ())
        keep = [u for u in uids if u in with_finalizer]
        if len(keep) != len(uids):
            _set_count(status, key, _int(status.get(key)) + len(uids) - len(keep))
        if keep:
            unc[key] = keep
        else:
            unc.pop(key, None)


def plan_job(
    job: Obj,
    pods: Sequence[Obj],
    now: dt.datetime,
    *,
    backoff: BackoffRecord | None = None,
    expectations_satisfied: bool = True,
    expected_rm_finalizers: Iterable[str] = (),
) -> JobPlan:
    """Decide one sync of `job` given its pods (those whose controller ref is the Job). Pure: reads
    `job` and `pods` without mutating them; `backoff` is the in-memory record of earlier syncs and
    `expected_rm_finalizers` the pod UIDs whose finalizer removal the cache has not shown yet."""
    plan = JobPlan(backoff=backoff or BackoffRecord())
    md = job.get("metadata") or {}
    spec = job.get("spec") or {}
    managed_by = spec.get("managedBy")
    if managed_by is not None and managed_by != CONTROLLER_NAME:
        return plan
    rm_expected = set(expected_rm_finalizers)
    if is_job_finished(job):
        # Leftover finalizers (orphan cleanup) and the TTL; a finished Job is never re-evaluated.
        plan.remove_finalizers = [p for p in pods if has_finalizer(p) and _uid(p) not in rm_expected]
        plan.delete_job, plan.requeue_after = ttl_decision(job, now)
        return plan
    mode = spec.get("completionMode") or "NonIndexed"
    if mode not in ("NonIndexed", "Indexed"):
        plan.events.append(
            ("Warning", "UnknownCompletionMode", "Skipped Job sync because completion mode is unknown")
        )
        return plan

    status: Obj = copy.deepcopy(job.get("status") or {})
    old_status = copy.deepcopy(status)
    status.setdefault("uncountedTerminatedPods", {})
    conditions: list[Obj] = status.setdefault("conditions", [])
    unc = status["uncountedTerminatedPods"]
    unc_succeeded = set(unc.get("succeeded") or ())
    unc_failed = set(unc.get("failed") or ())
    indexed = mode == "Indexed"
    completions: int | None = spec.get("completions") if isinstance(spec.get("completions"), int) else None
    parallelism = _int(spec.get("parallelism"), 1)
    backoff_limit = _int(spec.get("backoffLimit"), 6)

    def valid_index(p: Obj) -> bool:
        ix = completion_index(p)
        return not indexed or (0 <= ix < (completions or 0))

    def tracked(p: Obj) -> bool:
        return has_finalizer(p) and _uid(p) not in rm_expected

    active_pods = [p for p in pods if is_pod_active(p)]
    terminating = sum(1 for p in pods if is_terminating(p))
    ready = sum(1 for p in active_pods if is_pod_ready(p))
    new_succeeded = [
        p
        for p in pods
        if tracked(p) and valid_index(p) and _uid(p) not in unc_succeeded and _phase(p) == "Succeeded"
    ]
    new_failed = [
        p
        for p in pods
        if tracked(p) and valid_index(p) and _uid(p) not in unc_failed and is_pod_failed(p, job)
    ]
    succeeded = _int(status.get("succeeded")) + len(new_succeeded) + len(unc_succeeded)
    failed = _int(status.get("failed")) + len(new_failed) + len(unc_failed)

    if status.get("startTime") is None and not is_suspended(job):
        status["startTime"] = rfc3339(now)
    plan.backoff = next_backoff_record(plan.backoff, new_succeeded, new_failed, now)

    # Indexed: completed indexes are the record (a pod's index cannot be counted twice).
    prev_indexes: set[int] = set()
    succeeded_indexes: set[int] = set()
    if indexed:
        prev_indexes = parse_indexes(str(status.get("completedIndexes") or ""), completions or 0)
        succeeded_indexes = prev_indexes | {
            completion_index(p)
            for p in pods
            if _phase(p) == "Succeeded" and has_finalizer(p) and valid_index(p)
        }
        succeeded = len(succeeded_indexes)

    # The finished condition: existing interim conditions first, then the failure rules.
    finished: Obj | None = None
    if condition_true(status, "SuccessCriteriaMet"):
        c = find_condition(status, "SuccessCriteriaMet") or {}
        finished = new_condition(
            "SuccessCriteriaMet", "True", str(c.get("reason") or ""), str(c.get("message") or ""), now
        )
    elif condition_true(status, "FailureTarget"):
        c = find_condition(status, "FailureTarget") or {}
        finished = new_condition(
            "FailureTarget", "True", str(c.get("reason") or ""), str(c.get("message") or ""), now
        )
    if finished is None:
        start = parse_time(status.get("startTime"))
        deadline = spec.get("activeDeadlineSeconds")
        if failed > backoff_limit or past_backoff_limit_on_failure(job, pods):
            finished = new_condition("FailureTarget", "True", REASON_BACKOFF_LIMIT, MSG_BACKOFF_LIMIT, now)
        elif isinstance(deadline, int) and start is not None and not is_suspended(job):
            left = deadline - (now - start).total_seconds()
            if left <= 0:
                finished = new_condition("FailureTarget", "True", REASON_DEADLINE, MSG_DEADLINE, now)
            else:
                plan.requeue_after = left

    active = len(active_pods)
    if finished is not None:
        # Terminate whatever still runs; the Job is finished only once those pods are gone.
        plan.delete = list(active_pods)
        active -= len(plan.delete)
        terminating += len(plan.delete)
        ready -= sum(1 for p in plan.delete if is_pod_ready(p))
        if not expectations_satisfied:
            finished = None
    else:
        called = False
        if expectations_satisfied and not md.get("deletionTimestamp"):
            called = True
            active, terminating, ready = _manage(
                job,
                plan,
                active_pods,
                pods,
                succeeded,
                succeeded_indexes,
                terminating,
                ready,
                now,
                completions,
                parallelism,
            )
        if completions is None:
            complete = succeeded > 0 and active == 0
        else:
            complete = succeeded >= completions and active == 0
        if complete:
            finished = new_condition("SuccessCriteriaMet", "True", REASON_COMPLETIONS, MSG_COMPLETIONS, now)
        elif called:
            if is_suspended(job):
                if ensure_condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended", now):
                    plan.events.append(("Normal", "Suspended", "Job suspended"))
            elif ensure_condition(conditions, "Suspended", "False", "JobResumed", "Job resumed", now):
                plan.events.append(("Normal", "Resumed", "Job resumed"))
                status["startTime"] = rfc3339(now)  # activeDeadlineSeconds counts continuous activity

    _set_count(status, "active", active)
    status["ready"] = max(ready, 0)
    status["terminating"] = terminating

    # Record newly terminated pods (by UID, or by index) before their finalizers go.
    with_finalizer = {_uid(p) for p in pods if tracked(p)}
    _clean_uncounted(status, with_finalizer)
    unc = status["uncountedTerminatedPods"]
    finishing_failed = finished is not None and finished["type"] != "SuccessCriteriaMet"
    for p in sorted(pods, key=completion_index) if indexed else pods:
        if not tracked(p):
            continue
        considered_failed = is_pod_failed(p, job)
        if not (
            considered_failed
            or finished is not None
            or _phase(p) == "Succeeded"
            or md.get("deletionTimestamp")
        ):
            continue
        plan.remove_finalizers.append(p)
        uid = _uid(p)
        if _phase(p) == "Succeeded" and uid not in unc_failed:
            if not indexed and uid not in unc_succeeded:
                unc.setdefault("succeeded", []).append(uid)
        elif (considered_failed or finishing_failed) and uid not in unc_failed and valid_index(p):
            unc.setdefault("failed", []).append(uid)
    if indexed:
        status["completedIndexes"] = format_indexes(succeeded_indexes)
        if not status["completedIndexes"]:
            status.pop("completedIndexes")
        _set_count(status, "succeeded", len(succeeded_indexes))
    if finished is not None and finished["type"] in ("FailureTarget", "SuccessCriteriaMet"):
        if not condition_true(status, finished["type"]):
            conditions.append(finished)
        terminal = "Failed" if finished["type"] == "FailureTarget" else "Complete"
        finished = new_condition(terminal, "True", finished["reason"], finished["message"], now)
    if not conditions:
        status.pop("conditions")

    # After the finalizers are gone: count them, and finish when nothing is pending or terminating.
    final = copy.deepcopy(status)
    _clean_uncounted(final, with_finalizer - {_uid(p) for p in plan.remove_finalizers})
    unc_final = final["uncountedTerminatedPods"]
    if (
        finished is not None
        and not unc_final.get("succeeded")
        and not unc_final.get("failed")
        and terminating == 0
    ):
        final_conditions = final.setdefault("conditions", [])
        ensure_condition(
            final_conditions, finished["type"], "True", finished["reason"], finished["message"], now
        )
        if finished["type"] == "Complete":
            final["completionTime"] = rfc3339(now)
            plan.finished_event = ("Normal", "Completed", "Job completed")
        else:
            plan.finished_event = ("Warning", str(finished["reason"]), str(finished["message"]))
        ttl = spec.get("ttlSecondsAfterFinished")
        if isinstance(ttl, int):
            plan.requeue_after = _min_requeue(plan.requeue_after, float(max(ttl, 0)))
    plan.status = status if status != old_status else None
    plan.final_status = final if final != status else None
    return plan


def _manage(
    job: Obj,
    plan: JobPlan,
    active_pods: list[Obj],
    pods: Sequence[Obj],
    succeeded: int,
    succeeded_indexes: set[int],
    terminating: int,
    ready: int,
    now: dt.datetime,
    completions: int | None,
    parallelism: int,
) -> tuple[int, int, int]:
    """Upstream manageJob: pods to delete (suspended, too many) or create (respecting back-off).
    Fills plan.delete/create/requeue_after; returns the new (active, terminating, ready)."""
    active = len(active_pods)
    plan.release_before_delete = True  # upstream deleteJobPods (deleteActivePods keeps finalizers)
    if is_suspended(job):
        plan.delete = list(active_pods)
        return 0, terminating + active, ready - sum(1 for p in active_pods if is_pod_ready(p))
    if completions is None:
        want = active if succeeded > 0 else parallelism
    else:
        want = max(0, min(completions - succeeded, parallelism))
    remove = pods_for_removal(job, active_pods, max(0, active - want), now)[:MAX_POD_CREATE_DELETE_PER_SYNC]
    if remove:
        plan.delete = remove
        return (
            active - len(remove),
            terminating + len(remove),
            ready - sum(1 for p in remove if is_pod_ready(p)),
        )
    busy = terminating if only_replace_failed(job) else 0
    diff = min(want - busy - active, MAX_POD_CREATE_DELETE_PER_SYNC)
    if diff <= 0:
        return active, terminating, ready
    wait = backoff_remaining(plan.backoff, now)
    if wait > 0:
        plan.requeue_after = _min_requeue(plan.requeue_after, wait)
        return active, terminating, ready
    if is_indexed(job):
        taken = set(succeeded_indexes) | {completion_index(p) for p in active_pods}
        if only_replace_failed(job):
            taken |= {completion_index(p) for p in pods if is_terminating(p)}
        plan.create = [pod_for_job(job, ix) for ix in first_pending_indexes(completions or 0, taken, diff)]
    else:
        plan.create = [pod_for_job(job, None) for _ in range(diff)]
    return active + len(plan.create), terminating, ready


# ---- orphans -------------------------------------------------------------------------------------


def orphaned_tracked_pods(pods: Iterable[Obj], job_name: str, live_uid: str | None) -> list[Obj]:
    """Pods that still hold the tracking finalizer while their controlling Job named `job_name` is
    gone (or was replaced by one with another uid): their finalizer must go (upstream orphan queue)."""
    out = []
    for p in pods:
        ref = controller_ref(p)
        if (
            ref is not None
            and ref.get("kind") == "Job"
            and ref.get("name") == job_name
            and ref.get("uid") != live_uid
            and has_finalizer(p)
        ):
            out.append(p)
    return out


# ---- the controller ------------------------------------------------------------------------------


def _job_key_of_pod(pod: Obj) -> str | None:
    ref = controller_ref(pod)
    if ref is None or ref.get("kind") != "Job" or not str(ref.get("apiVersion", "")).startswith("batch/"):
        return None
    ns = (pod.get("metadata") or {}).get("namespace") or ""
    return f"{ns}/{ref.get('name', '')}"


JOB_KEY_INDEX = "job-controller/job-key"  # pods by the `namespace/name` of their controlling Job


def _job_key_index(pod: Obj) -> Sequence[str]:
    key = _job_key_of_pod(pod)
    return (key,) if key is not None else ()


def _pod_key(pod: Obj) -> str:
    return key_of(pod)


REMOVE_FINALIZER_PATCH = Patch(
    "strategic", {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}}
)


class JobController(Controller):
    """batch/v1 Jobs. `now` is the wall clock used for status timestamps, deadlines and back-off
    (ControllerContext.clock is monotonic and only times expectations)."""

    name = "job"
    workers = 5

    def __init__(self, ctx: ControllerContext, now: Callable[[], dt.datetime] = wall_now) -> None:
        super().__init__(ctx)
        self.now = now
        self.jobs: Informer = ctx.informers.informer(JOBS)
        self.pods: Informer = ctx.informers.informer(PODS)
        self.expectations = Expectations(ctx.clock)
        self.backoff: dict[str, BackoffRecord] = {}
        self.rm_finalizers: dict[str, set[str]] = {}  # job key → pod UIDs whose removal is in flight
        with contextlib.suppress(ValueError):  # already registered by another JobController on this factory
            self.pods.add_index(JOB_KEY_INDEX, _job_key_index)

    def informers(self) -> Sequence[Informer]:
        return (self.jobs, self.pods)

    def setup(self) -> None:
        self.jobs.add_handler(self._on_job)
        self.pods.add_handler(self._on_pod)

    def _on_job(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is not None:
            self.queue.add(key_of(obj))

    def _on_pod(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        pod = new if new is not None else old
        if pod is None:
            return
        key = _job_key_of_pod(pod)
        if key is None:
            return
        if type_ == "ADDED":
            self.expectations.creation_observed(key)
        elif type_ == "DELETED" or (new is not None and (new.get("metadata") or {}).get("deletionTimestamp")):
            self.expectations.deletion_observed(key, _pod_key(pod))
        if type_ == "DELETED" or not has_finalizer(pod):
            pending = self.rm_finalizers.get(key)
            if pending is not None:
                pending.discard(_uid(pod))
        self.queue.add(key)

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        now = self.now()
        job = self.jobs.get(ns, name)
        if job is None:
            self.expectations.forget(key)
            self.backoff.pop(key, None)
            await self._strip_finalizers(
                key, orphaned_tracked_pods(self.pods.by_index(JOB_KEY_INDEX, key), name, None)
            )
            self.rm_finalizers.pop(key, None)
            return
        job = {"kind": "Job", "apiVersion": "batch/v1", **job}
        uid = _uid(job)
        orphans = orphaned_tracked_pods(self.pods.by_index(JOB_KEY_INDEX, key), name, uid)
        if orphans:
            await self._strip_finalizers(key, orphans)
        pods = self.pods.by_index("owner", uid)
        plan = plan_job(
            job,
            pods,
            now,
            backoff=self.backoff.get(key),
            expectations_satisfied=self.expectations.satisfied(key),
            expected_rm_finalizers=self.rm_finalizers.get(key, set()),
        )
        await self._execute(key, job, plan)

    async def _execute(self, key: str, job: Obj, plan: JobPlan) -> None:
        ns = (job.get("metadata") or {}).get("namespace") or ""
        for type_, reason, message in plan.events:
            await self.events.record(job, type_, reason, message, COMPONENT)
        failures: list[Exception] = []
        if plan.delete:
            self.expectations.expect(key, deletes=[_pod_key(p) for p in plan.delete])
            failures += await self._delete_pods(key, job, plan.delete, plan.release_before_delete)
        elif plan.create:
            self.expectations.expect(key, adds=len(plan.create))
            failed_creates, errs = await self._create_pods(key, job, plan.create)
            failures += errs
            for st in (plan.status, plan.final_status):
                if st is not None and failed_creates:
                    _set_count(st, "active", _int(st.get("active")) - failed_creates)
        current = job
        if plan.status is not None:
            current = await self.client.update(
                JOBS, ns, {**job, "status": plan.status}, subresource="status", field_manager=COMPONENT
            )
        self.backoff[key] = plan.backoff
        if plan.remove_finalizers:
            failures += await self._strip_finalizers(key, plan.remove_finalizers)
        if plan.final_status is not None and not failures:
            current = await self.client.update(
                JOBS,
                ns,
                {**current, "status": plan.final_status},
                subresource="status",
                field_manager=COMPONENT,
            )
            if plan.finished_event is not None:
                self.backoff.pop(key, None)
                await self.events.record(job, *plan.finished_event, COMPONENT)
        if plan.delete_job:
            try:
                await self.client.delete(
                    JOBS,
                    ns,
                    (job.get("metadata") or {}).get("name", ""),
                    DeleteOptions(propagation_policy="Background", preconditions={"uid": _uid(job)}),
                )
            except errors.ApiError as e:
                if e.code not in (404, 409):
                    raise
        if failures:
            raise failures[0]
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after)

    async def _create_pods(self, key: str, job: Obj, pods: list[Obj]) -> tuple[int, list[Exception]]:
        """Slow-start batches (1, 2, 4, ...): a failing batch skips the rest. Returns (pods not created, errors)."""
        ns = (job.get("metadata") or {}).get("namespace") or ""
        errs: list[Exception] = []
        done = 0
        for size in slow_start_batches(len(pods)):
            batch = pods[done : done + size]
            results = await asyncio.gather(
                *(self.client.create(PODS, ns, p, field_manager=COMPONENT) for p in batch),
                return_exceptions=True,
            )
            done += size
            for r in results:
                if isinstance(r, BaseException):
                    if isinstance(r, asyncio.CancelledError):
                        raise r
                    self.expectations.creation_observed(key)
                    errs.append(r if isinstance(r, Exception) else RuntimeError(str(r)))
                    await self.events.record(job, "Warning", "FailedCreate", f"Error creating: {r}", COMPONENT
                    )
                else:
                    await self.events.record(job,
                        "Normal",
                        "SuccessfulCreate",
                        f"Created pod: {(r.get('metadata') or {}).get('name', '')}",
                        COMPONENT,
                    )
            if errs:
                skipped = len(pods) - done
                for _ in range(skipped):
                    self.expectations.creation_observed(key)
                return skipped + len(errs), errs
        return 0, errs

    async def _delete_pods(self, key: str, job: Obj, pods: list[Obj], release: bool) -> list[Exception]:
        errs: list[Exception] = []
        for p in pods:
            md = p.get("metadata") or {}
            try:
                if release and has_finalizer(p):
                    await self.client.patch(
                        PODS,
                        md.get("namespace", ""),
                        md.get("name", ""),
                        REMOVE_FINALIZER_PATCH,
                        field_manager=COMPONENT,
                    )
                    self.rm_finalizers.setdefault(key, set()).add(_uid(p))
                await self.client.delete(
                    PODS,
                    md.get("namespace", ""),
                    md.get("name", ""),
                    DeleteOptions(preconditions={"uid": md.get("uid", "")}),
                )
                await self.events.record(job,
                    "Normal",
                    "SuccessfulDelete",
                    f"Deleted pod: {md.get('name', '')}",
                    COMPONENT,
                )
            except errors.ApiError as e:
                self.expectations.deletion_observed(key, _pod_key(p))  # the informer will not see it
                if e.code != 404:
                    errs.append(e)
                    await self.events.record(job, "Warning", "FailedDelete", f"Error deleting: {e}", COMPONENT
                    )
        return errs

    async def _strip_finalizers(self, key: str, pods: Iterable[Obj]) -> list[Exception]:
        errs: list[Exception] = []
        for p in pods:
            md = p.get("metadata") or {}
            try:
                await self.client.patch(
                    PODS,
                    md.get("namespace", ""),
                    md.get("name", ""),
                    REMOVE_FINALIZER_PATCH,
                    field_manager=COMPONENT,
                )
                self.rm_finalizers.setdefault(key, set()).add(_uid(p))
            except errors.ApiError as e:
                if e.code != 404:
                    errs.append(e)
        return errs
