"""PodDisruptionBudget math, shared by the disruption controller and the API server's eviction subresource.

Everything here is pure: functions take plain dicts and a `now`, never mutate their arguments, and return
new values. Two halves mirror two upstream files:

- the *status* a PDB should have (`pkg/controller/disruption/disruption.go`: `getExpectedPodCount`,
  `buildDisruptedPodMap`, `countHealthyPods`, `updatePdbStatus`, and
  `component-helpers/apps/poddisruptionbudget`: `UpdateDisruptionAllowedCondition`,
  `ConditionsAreUpToDate`): `pdb_status`, `allowed_disruptions`, `status_up_to_date`;
- the *eviction* rules (`pkg/registry/core/pod/storage/eviction.go`: `canIgnorePDB`,
  `getPodDisruptionBudgets`, the unhealthy-pod policy and `checkAndDecrement`): `plan_eviction`.

Selector semantics differ on purpose, as upstream: the controller counts every pod of the namespace an
*empty* selector matches (`metav1.LabelSelectorAsSelector`), while eviction treats a nil or empty
selector as matching nothing ("If a PDB with a nil or empty selector creeps in, it should match
nothing, not everything").
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from skiff.api.errors import ApiError
from skiff.api.meta import Obj, parse_time, rfc3339
from skiff.api.pods import is_pod_ready
from skiff.api.selectors import SelectorError, label_selector_matcher

# `pkg/controller/disruption`: a pod recorded in status.disruptedPods by an eviction is not counted as
# healthy for this long, waiting for its deletion to be observed.
DELETION_TIMEOUT = dt.timedelta(minutes=2)
# `eviction.go` MaxDisruptedPodSize: evictions are refused while the controller has not caught up.
MAX_DISRUPTED_POD_SIZE = 2000

DISRUPTION_ALLOWED = "DisruptionAllowed"  # policy/v1 DisruptionAllowedCondition
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"  # policy/v1 DisruptionBudgetCause

VIOLATION_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE_PDBS_MESSAGE = (
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
)


class PercentError(ValueError):
    """An IntOrString bound that is neither an integer nor `N%`."""


def scaled_value(value: int | str, total: int, round_up: bool) -> int:
    """`intstr.GetScaledValueFromIntOrPercent`: an int as is, `N%` of `total` rounded up or down.

    Raises PercentError for a string that is not a percentage (validation keeps those out of the store).
    """
    if isinstance(value, bool):
        raise PercentError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    if not value.endswith("%"):
        raise PercentError(
            f"invalid value for IntOrString: invalid type: string is not a percentage: {value!r}"
        )
    try:
        percent = int(value[:-1])
    except ValueError as e:
        raise PercentError(f"invalid value for IntOrString: invalid value {value!r}") from e
    scaled = percent * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)




def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    md = obj.get("metadata")
    return md if isinstance(md, dict) else {}


def needs_scale(pdb: Mapping[str, Any]) -> bool:
    """Whether the expected pod count comes from the pods' controllers (maxUnavailable, or a percentage
    minAvailable); an integer minAvailable only counts the matched pods."""
    spec = pdb.get("spec") or {}
    if spec.get("maxUnavailable") is not None:
        return True
    return isinstance(spec.get("minAvailable"), str)


def expected_and_desired(
    pdb: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], scale: int | None
) -> tuple[int, int]:
    """`getExpectedPodCount`: (expectedPods, desiredHealthy).

    `scale` is the sum of the scales of the matched pods' controllers; it is only read when
    `needs_scale(pdb)` (pass None otherwise). A PDB with neither bound expects nothing. Raises
    PercentError for a malformed bound and ValueError when a scale is needed but missing.
    """
    spec = pdb.get("spec") or {}
    max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
    if needs_scale(pdb) and scale is None:
        raise ValueError("the expected pod count needs the scale of the pods' controllers")
    if max_unavailable is not None:
        expected = scale or 0
        desired = max(0, expected - scaled_value(max_unavailable, expected, True))
        return expected, desired
    if isinstance(min_available, str):
        expected = scale or 0
        return expected, scaled_value(min_available, expected, True)
    if isinstance(min_available, int):
        return len(pods), min_available
    return 0, 0


def disrupted_pods(
    pdb: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], now: dt.datetime
) -> tuple[dict[str, str], dt.datetime | None]:
    """`buildDisruptedPodMap`: the entries of status.disruptedPods still awaiting their deletion, and the
    earliest time one of them expires (when the PDB must be synced again), or None.

    Entries of pods that are gone, already terminating, or older than DELETION_TIMEOUT are dropped.
    """
    recorded = (pdb.get("status") or {}).get("disruptedPods") or {}
    kept: dict[str, str] = {}
    recheck: dt.datetime | None = None
    if not recorded:
        return kept, recheck
    for pod in pods:
        md = _md(pod)
        if md.get("deletionTimestamp"):
            continue
        name = str(md.get("name") or "")
        when = parse_time(recorded.get(name))
        if when is None:
            continue
        expires = when + DELETION_TIMEOUT
        if expires < now:
            continue
        kept[name] = recorded[name]
        if recheck is None or expires < recheck:
            recheck = expires
    return kept, recheck


def count_healthy(pods: Sequence[Mapping[str, Any]], disrupted: Mapping[str, str], now: dt.datetime) -> int:
    """`countHealthyPods`: ready pods, not terminating, not recently evicted."""
    healthy = 0
    for pod in pods:
        md = _md(pod)
        if md.get("deletionTimestamp"):
            continue
        when = parse_time(disrupted.get(str(md.get("name") or "")))
        if when is not None and when + DELETION_TIMEOUT > now:
            continue
        if is_pod_ready(pod):
            healthy += 1
    return healthy


def set_condition(conditions: list[Obj], new: Mapping[str, Any], now: dt.datetime) -> None:
    """`apimeta.SetStatusCondition` on `conditions` (mutated; pass a copy): lastTransitionTime moves only
    when the status changes; reason, message and observedGeneration always follow `new`."""
    for cond in conditions:
        if cond.get("type") == new["type"]:
            if cond.get("status") != new["status"]:
                cond["status"] = new["status"]
                cond["lastTransitionTime"] = rfc3339(now)
            for key in ("reason", "message", "observedGeneration"):
                cond[key] = new.get(key, "" if key != "observedGeneration" else 0)
            return
    added: Obj = {
        "type": new["type"],
        "status": new["status"],
        "observedGeneration": new.get("observedGeneration", 0),
        "lastTransitionTime": rfc3339(now),
        "reason": new.get("reason", ""),
        "message": new.get("message", ""),
    }
    conditions.append(added)


def disruption_allowed_condition(status: Mapping[str, Any]) -> Obj:
    """The DisruptionAllowed condition `UpdateDisruptionAllowedCondition` sets for a status."""
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    return {
        "type": DISRUPTION_ALLOWED,
        "status": "True" if allowed else "False",
        "reason": SUFFICIENT_PODS if allowed else INSUFFICIENT_PODS,
        "message": "",
        "observedGeneration": int(status.get("observedGeneration") or 0),
    }


def pdb_status(
    pdb: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    expected_count: int | None,
    now: dt.datetime | None = None,
) -> Obj:
    """The status the disruption controller writes for `pdb` given the pods its selector matches.

    `expected_count` is the summed scale of the pods' controllers (`getExpectedScale`); it is used for
    maxUnavailable and percentage minAvailable and may be None for an integer minAvailable (which expects
    `len(pods)`). disruptionsAllowed = currentHealthy - desiredHealthy, but 0 while nothing is expected
    (a PDB whose pods have not appeared yet is safe). The DisruptionAllowed condition is True/SufficientPods
    or False/InsufficientPods. Returns a new status dict (conditions copied; the PDB is not mutated).
    Raises PercentError/ValueError as `expected_and_desired`.
    """
    now = now or dt.datetime.now(dt.UTC)
    expected, desired = expected_and_desired(pdb, pods, expected_count)
    disrupted, _ = disrupted_pods(pdb, pods, now)
    healthy = count_healthy(pods, disrupted, now)
    allowed = healthy - desired
    if expected <= 0 or allowed <= 0:
        allowed = 0
    old = pdb.get("status") or {}
    status: Obj = {
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "disruptionsAllowed": allowed,
        "observedGeneration": int(_md(pdb).get("generation") or 0),
        "conditions": copy.deepcopy(list(old.get("conditions") or [])),
    }
    if disrupted:
        status["disruptedPods"] = disrupted
    set_condition(status["conditions"], disruption_allowed_condition(status), now)
    return status


def failed_status(pdb: Mapping[str, Any], message: str, now: dt.datetime | None = None) -> Obj:
    """`failSafe`: the status written when the controller cannot compute one (no controller for a pod, a
    bad bound): no disruptions allowed, DisruptionAllowed False with reason SyncFailed and the error."""
    now = now or dt.datetime.now(dt.UTC)
    status = copy.deepcopy(dict(pdb.get("status") or {}))
    status["disruptionsAllowed"] = 0
    conditions = status.setdefault("conditions", [])
    set_condition(
        conditions,
        {
            "type": DISRUPTION_ALLOWED,
            "status": "False",
            "reason": SYNC_FAILED,
            "message": message,
            "observedGeneration": int(status.get("observedGeneration") or 0),
        },
        now,
    )
    return status


def status_up_to_date(pdb: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether writing `status` (from `pdb_status`) would change nothing that matters (`updatePdbStatus`'s
    early return: counters, disruptedPods, observedGeneration, and `ConditionsAreUpToDate`)."""
    old = pdb.get("status") or {}
    for key in (
        "currentHealthy",
        "desiredHealthy",
        "expectedPods",
        "disruptionsAllowed",
        "observedGeneration",
    ):
        if int(old.get(key) or 0) != int(status.get(key) or 0):
            return False
    if (old.get("disruptedPods") or {}) != (status.get("disruptedPods") or {}):
        return False
    if int(old.get("observedGeneration") or 0) != int(_md(pdb).get("generation") or 0):
        return False
    want = disruption_allowed_condition(old)
    for cond in old.get("conditions") or []:
        if cond.get("type") == DISRUPTION_ALLOWED:
            return bool(cond.get("status") == want["status"] and cond.get("reason") == want["reason"])
    return False


def allowed_disruptions(
    pdb: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    expected_count: int | None = None,
    now: dt.datetime | None = None,
) -> int:
    """How many of `pods` may be disrupted now: `pdb_status(...)["disruptionsAllowed"]`.

    Note: the eviction subresource does not recompute this; upstream decides from the PDB's *status*
    (see `plan_eviction`), which the controller keeps current.
    """
    return int(pdb_status(pdb, pods, expected_count, now)["disruptionsAllowed"])


# --- eviction -------------------------------------------------------------------------------------------


def can_ignore_pdb(pod: Mapping[str, Any]) -> bool:
    """`canIgnorePDB`: terminal or Pending pods and pods already terminating are deleted without a check
    (they disrupt nothing, or already did)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(_md(pod).get("deletionTimestamp"))


def matching_pdbs(pod: Mapping[str, Any], pdbs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """`getPodDisruptionBudgets`: the PDBs of the pod's namespace whose selector matches its labels. A nil
    or empty selector matches nothing here; an invalid selector matches nothing."""
    ns = _md(pod).get("namespace") or ""
    labels = _md(pod).get("labels") or {}
    out = []
    for pdb in pdbs:
        if (_md(pdb).get("namespace") or "") != ns:
            continue
        sel = (pdb.get("spec") or {}).get("selector")
        if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
            continue
        try:
            if label_selector_matcher(sel)(labels):
                out.append(pdb)
        except SelectorError:
            continue
    return out


@dataclass(frozen=True)
class EvictionDecision:
    """What the eviction subresource does for one pod.

    - `error` set: answer with it (nothing is written).
    - otherwise the eviction is allowed: first, when `pdb_update` is set, write that PDB through the
      `status` subresource with its resourceVersion as precondition (on 409 Conflict re-read the PDB and
      plan again, as upstream's `RetryOnConflict`); then delete the pod (adding the DisruptionTarget
      condition, reason EvictionByEvictionAPI, as upstream's `addConditionAndDeletePod`). When
      `enforce_resource_version` is set and the request carried no resourceVersion precondition, delete
      with the pod's current resourceVersion as precondition (upstream does so for unhealthy pods deleted
      past the budget and for Pending pods, which could become ready meanwhile).
    """

    pdb_update: Obj | None = None
    error: ApiError | None = None
    enforce_resource_version: bool = False

    @property
    def allowed(self) -> bool:
        return self.error is None


def _too_many_requests(cause: str, retry_after: int) -> ApiError:
    details: dict[str, Any] = {"causes": [{"reason": DISRUPTION_BUDGET_CAUSE, "message": cause}]}
    headers: dict[str, str] = {}
    if retry_after > 0:
        details["retryAfterSeconds"] = retry_after
        headers["Retry-After"] = str(retry_after)
    return ApiError(429, "TooManyRequests", VIOLATION_MESSAGE, details, headers)


def _pdb_forbidden(name: str, why: str) -> ApiError:
    # errors.NewForbidden(policy.Resource("poddisruptionbudget"), name, err)
    return ApiError(
        403,
        "Forbidden",
        f'poddisruptionbudget.policy "{name}" is forbidden: {why}',
        {"name": name, "group": "policy", "kind": "poddisruptionbudget"},
    )


def check_and_decrement(
    pdb: Mapping[str, Any], pod_name: str, now: dt.datetime, dry_run: bool = False
) -> EvictionDecision:
    """`checkAndDecrement`: refuse (429/403) unless the PDB's status allows a disruption; otherwise the
    PDB with disruptionsAllowed - 1 (condition turned False/InsufficientPods on reaching 0) and the pod
    recorded in disruptedPods at `now`. With `dry_run` nothing is to be written (pdb_update None)."""
    name = str(_md(pdb).get("name") or "")
    status = pdb.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(_md(pdb).get("generation") or 0):
        return EvictionDecision(
            error=_too_many_requests(
                f"The disruption budget {name} is still being processed by the server.", 10
            )
        )
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        return EvictionDecision(error=_pdb_forbidden(name, "pdb disruptions allowed is negative"))
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_POD_SIZE:
        return EvictionDecision(
            error=_pdb_forbidden(
                name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller"
            )
        )
    if allowed == 0:
        return EvictionDecision(
            error=_too_many_requests(
                f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} healthy pods "
                f"and has {int(status.get('currentHealthy') or 0)} currently",
                0,
            )
        )
    if dry_run:
        return EvictionDecision()
    new = copy.deepcopy(dict(pdb))
    new_status = new.setdefault("status", {})
    new_status["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:
        set_condition(new_status.setdefault("conditions", []), disruption_allowed_condition(new_status), now)
    new_status["disruptedPods"] = {**(new_status.get("disruptedPods") or {}), pod_name: rfc3339(now)}
    return EvictionDecision(pdb_update=new)


def plan_eviction(
    pod: Mapping[str, Any],
    pdbs: Sequence[Mapping[str, Any]],
    now: dt.datetime | None = None,
    *,
    dry_run: bool = False,
) -> EvictionDecision:
    """Decide an eviction of `pod` (as read from the store) given the PDBs of its namespace.

    Mirrors `EvictionREST.Create` (Kubernetes 1.32):
    1. a Pending, Succeeded, Failed or terminating pod is deleted without looking at PDBs;
    2. more than one matching PDB → a 500 Status whose message is MULTIPLE_PDBS_MESSAGE (upstream returns
       a bare `metav1.Status{Code: 500}` with no reason, not an InternalError; `error.reason` is "");
    3. no matching PDB → delete;
    4. an unready pod is deleted without spending the budget when the PDB's unhealthyPodEvictionPolicy is
       AlwaysAllow, or (IfHealthyBudget, the default) when currentHealthy >= desiredHealthy > 0;
    5. otherwise `check_and_decrement`: 429 TooManyRequests "Cannot evict pod as it would violate the
       pod's disruption budget." (cause DisruptionBudget "The disruption budget X needs N healthy pods
       and has M currently"; Retry-After 10 when the PDB's status is behind its generation), 403 for a
       negative budget or an overfull disruptedPods map, else the decremented PDB to write.
    """
    now = now or dt.datetime.now(dt.UTC)
    if can_ignore_pdb(pod):
        # shouldEnforceResourceVersion: a Pending pod could become ready (and protected) meanwhile.
        phase = (pod.get("status") or {}).get("phase")
        return EvictionDecision(
            enforce_resource_version=phase == "Pending" and not _md(pod).get("deletionTimestamp")
        )
    matched = matching_pdbs(pod, pdbs)
    if len(matched) > 1:
        return EvictionDecision(error=ApiError(500, "", MULTIPLE_PDBS_MESSAGE))
    if not matched:
        return EvictionDecision()
    pdb = matched[0]
    if not is_pod_ready(pod):
        spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
        if spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
            return EvictionDecision(enforce_resource_version=True)
        healthy, desired = int(status.get("currentHealthy") or 0), int(status.get("desiredHealthy") or 0)
        if healthy >= desired > 0:
            return EvictionDecision(enforce_resource_version=True)
    return check_and_decrement(pdb, str(_md(pod).get("name") or ""), now, dry_run)
