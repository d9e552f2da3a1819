"""PDB math and eviction rules (skiff.api.disruption), table-driven against upstream behaviour."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from skiff.api import disruption as d
from skiff.api.meta import Obj, rfc3339

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def pod(
    name: str,
    ready: bool = True,
    phase: str = "Running",
    labels: dict[str, str] | None = None,
    deleting: bool = False,
) -> Obj:
    md: Obj = {"name": name, "namespace": "ns", "labels": {"app": "a"} if labels is None else labels}
    if deleting:
        md["deletionTimestamp"] = rfc3339(NOW)
    return {
        "metadata": md,
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def pdb(
    name: str = "p", generation: int = 1, selector: Any = None, status: Obj | None = None, **spec: Any
) -> Obj:
    spec["selector"] = {"matchLabels": {"app": "a"}} if selector is None else selector
    return {
        "metadata": {"name": name, "namespace": "ns", "generation": generation},
        "spec": spec,
        "status": status if status is not None else {},
    }


@pytest.mark.parametrize(
    ("value", "total", "up", "want"),
    [
        pytest.param(3, 10, True, 3, id="int"),
        pytest.param("50%", 5, True, 3, id="percent-up"),
        pytest.param("50%", 5, False, 2, id="percent-down"),
        pytest.param("100%", 0, True, 0, id="percent-of-zero"),
        pytest.param("0%", 7, True, 0, id="zero-percent"),
    ],
)
def test_scaled_value(value: int | str, total: int, up: bool, want: int) -> None:
    assert d.scaled_value(value, total, up) == want


@pytest.mark.parametrize("value", [pytest.param("5", id="no-percent"), pytest.param("x%", id="not-number")])
def test_scaled_value_rejects(value: str) -> None:
    with pytest.raises(d.PercentError):
        d.scaled_value(value, 10, True)


THREE_READY = [pod("a"), pod("b"), pod("c")]


@pytest.mark.parametrize(
    ("budget", "pods", "scale", "want"),
    [
        pytest.param(
            pdb(minAvailable=2),
            THREE_READY,
            None,
            {"currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3, "disruptionsAllowed": 1},
            id="min-available-int",
        ),
        pytest.param(
            pdb(minAvailable=3),
            THREE_READY,
            None,
            {"currentHealthy": 3, "desiredHealthy": 3, "expectedPods": 3, "disruptionsAllowed": 0},
            id="min-available-all",
        ),
        pytest.param(
            pdb(minAvailable=1),
            [pod("a", ready=False), pod("b")],
            None,
            {"currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 2, "disruptionsAllowed": 0},
            id="unready-not-healthy",
        ),
        pytest.param(
            pdb(minAvailable="50%"),
            THREE_READY,
            4,
            {"currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 4, "disruptionsAllowed": 1},
            id="min-available-percent-of-scale",
        ),
        pytest.param(
            pdb(maxUnavailable=1),
            THREE_READY,
            3,
            {"currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3, "disruptionsAllowed": 1},
            id="max-unavailable-int",
        ),
        pytest.param(
            pdb(maxUnavailable="34%"),
            THREE_READY,
            3,
            {"currentHealthy": 3, "desiredHealthy": 1, "expectedPods": 3, "disruptionsAllowed": 2},
            id="max-unavailable-percent-rounds-up",
        ),
        pytest.param(
            pdb(maxUnavailable=5),
            THREE_READY,
            3,
            {"currentHealthy": 3, "desiredHealthy": 0, "expectedPods": 3, "disruptionsAllowed": 3},
            id="max-unavailable-above-scale",
        ),
        pytest.param(
            pdb(minAvailable=0),
            [],
            None,
            {"currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0, "disruptionsAllowed": 0},
            id="nothing-expected-is-safe",
        ),
        pytest.param(
            pdb(minAvailable=1),
            [pod("a", deleting=True), pod("b")],
            None,
            {"currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 2, "disruptionsAllowed": 0},
            id="terminating-not-healthy",
        ),
        pytest.param(
            pdb(minAvailable=1, status={"disruptedPods": {"b": rfc3339(NOW - dt.timedelta(seconds=30))}}),
            THREE_READY,
            None,
            {"currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 3, "disruptionsAllowed": 1},
            id="recently-evicted-not-healthy",
        ),
        pytest.param(
            pdb(minAvailable=1, status={"disruptedPods": {"b": rfc3339(NOW - dt.timedelta(minutes=3))}}),
            THREE_READY,
            None,
            {"currentHealthy": 3, "desiredHealthy": 1, "expectedPods": 3, "disruptionsAllowed": 2},
            id="stale-eviction-expires",
        ),
    ],
)
def test_pdb_status_counters(budget: Obj, pods: list[Obj], scale: int | None, want: dict[str, int]) -> None:
    status = d.pdb_status(budget, pods, scale, NOW)
    assert {k: status[k] for k in want} == want
    assert status["observedGeneration"] == 1
    assert d.allowed_disruptions(budget, pods, scale, NOW) == want["disruptionsAllowed"]


@pytest.mark.parametrize(
    ("pods", "want_status", "want_reason"),
    [
        pytest.param(THREE_READY, "True", "SufficientPods", id="sufficient"),
        pytest.param([pod("a")], "False", "InsufficientPods", id="insufficient"),
    ],
)
def test_pdb_status_condition(pods: list[Obj], want_status: str, want_reason: str) -> None:
    status = d.pdb_status(pdb(minAvailable=1), pods, None, NOW)
    assert status["conditions"] == [
        {
            "type": "DisruptionAllowed",
            "status": want_status,
            "reason": want_reason,
            "message": "",
            "observedGeneration": 1,
            "lastTransitionTime": rfc3339(NOW),
        }
    ]


def test_condition_transition_time_kept_when_status_unchanged() -> None:
    earlier = rfc3339(NOW - dt.timedelta(hours=1))
    old = pdb(
        minAvailable=1,
        status={
            "conditions": [
                {
                    "type": "DisruptionAllowed",
                    "status": "True",
                    "reason": "SufficientPods",
                    "lastTransitionTime": earlier,
                }
            ]
        },
    )
    status = d.pdb_status(old, THREE_READY, None, NOW)
    assert status["conditions"][0]["lastTransitionTime"] == earlier
    assert old["status"]["conditions"][0].get("observedGeneration") is None  # input not mutated


def test_disrupted_pods_recheck_is_earliest_expiry() -> None:
    t1, t2 = NOW - dt.timedelta(seconds=90), NOW - dt.timedelta(seconds=30)
    budget = pdb(
        minAvailable=1, status={"disruptedPods": {"a": rfc3339(t1), "b": rfc3339(t2), "gone": rfc3339(t2)}}
    )
    kept, recheck = d.disrupted_pods(budget, THREE_READY, NOW)
    assert kept == {"a": rfc3339(t1), "b": rfc3339(t2)}
    assert recheck == t1 + d.DELETION_TIMEOUT


@pytest.mark.parametrize(
    ("status", "generation", "want"),
    [
        pytest.param(
            {
                "currentHealthy": 3,
                "desiredHealthy": 2,
                "expectedPods": 3,
                "disruptionsAllowed": 1,
                "observedGeneration": 1,
                "conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods"}],
            },
            1,
            True,
            id="same",
        ),
        pytest.param(
            {
                "currentHealthy": 3,
                "desiredHealthy": 2,
                "expectedPods": 3,
                "disruptionsAllowed": 1,
                "observedGeneration": 1,
            },
            1,
            False,
            id="no-condition",
        ),
        pytest.param(
            {
                "currentHealthy": 3,
                "desiredHealthy": 2,
                "expectedPods": 3,
                "disruptionsAllowed": 1,
                "observedGeneration": 1,
                "conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods"}],
            },
            2,
            False,
            id="new-generation",
        ),
        pytest.param(
            {
                "currentHealthy": 2,
                "desiredHealthy": 2,
                "expectedPods": 3,
                "disruptionsAllowed": 0,
                "observedGeneration": 1,
                "conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods"}],
            },
            1,
            False,
            id="counters-changed",
        ),
    ],
)
def test_status_up_to_date(status: Obj, generation: int, want: bool) -> None:
    budget = pdb(minAvailable=2, generation=generation, status=status)
    assert d.status_up_to_date(budget, d.pdb_status(budget, THREE_READY, None, NOW)) is want


def test_failed_status() -> None:
    status = d.failed_status(pdb(status={"disruptionsAllowed": 2, "observedGeneration": 1}), "boom", NOW)
    assert status["disruptionsAllowed"] == 0
    assert status["conditions"] == [
        {
            "type": "DisruptionAllowed",
            "status": "False",
            "reason": "SyncFailed",
            "message": "boom",
            "observedGeneration": 1,
            "lastTransitionTime": rfc3339(NOW),
        }
    ]


HEALTHY_BUDGET = {
    "disruptionsAllowed": 1,
    "currentHealthy": 3,
    "desiredHealthy": 2,
    "expectedPods": 3,
    "observedGeneration": 1,
}
SPENT_BUDGET = {
    "disruptionsAllowed": 0,
    "currentHealthy": 2,
    "desiredHealthy": 2,
    "expectedPods": 3,
    "observedGeneration": 1,
}


@pytest.mark.parametrize(
    ("target", "budgets", "want_code", "want_update", "want_enforce"),
    [
        pytest.param(
            pod("a", phase="Succeeded"),
            [pdb(status=SPENT_BUDGET)],
            None,
            False,
            False,
            id="terminal-ignores-pdb",
        ),
        pytest.param(
            pod("a", phase="Pending"), [pdb(status=SPENT_BUDGET)], None, False, True, id="pending-ignores-pdb"
        ),
        pytest.param(
            pod("a", deleting=True),
            [pdb(status=SPENT_BUDGET)],
            None,
            False,
            False,
            id="terminating-ignores-pdb",
        ),
        pytest.param(pod("a"), [], None, False, False, id="no-pdb"),
        pytest.param(
            pod("a"),
            [pdb(status=SPENT_BUDGET, selector={})],
            None,
            False,
            False,
            id="empty-selector-matches-nothing",
        ),
        pytest.param(
            pod("a", labels={"app": "other"}),
            [pdb(status=SPENT_BUDGET)],
            None,
            False,
            False,
            id="selector-mismatch",
        ),
        pytest.param(
            pod("a"),
            [pdb("p1", status=HEALTHY_BUDGET), pdb("p2", status=HEALTHY_BUDGET)],
            500,
            False,
            False,
            id="multiple-pdbs",
        ),
        pytest.param(pod("a"), [pdb(status=HEALTHY_BUDGET)], None, True, False, id="budget-allows"),
        pytest.param(pod("a"), [pdb(status=SPENT_BUDGET)], 429, False, False, id="budget-spent"),
        pytest.param(
            pod("a"), [pdb(generation=2, status=HEALTHY_BUDGET)], 429, False, False, id="status-behind"
        ),
        pytest.param(
            pod("a"),
            [pdb(status={**HEALTHY_BUDGET, "disruptionsAllowed": -1})],
            403,
            False,
            False,
            id="negative-budget",
        ),
        pytest.param(
            pod("a", ready=False),
            [pdb(status={**SPENT_BUDGET, "currentHealthy": 2})],
            None,
            False,
            True,
            id="unhealthy-pod-healthy-budget",
        ),
        pytest.param(
            pod("a", ready=False),
            [pdb(status={**SPENT_BUDGET, "currentHealthy": 1})],
            429,
            False,
            False,
            id="unhealthy-pod-unhealthy-budget",
        ),
        pytest.param(
            pod("a", ready=False),
            [pdb(status={**SPENT_BUDGET, "currentHealthy": 1}, unhealthyPodEvictionPolicy="AlwaysAllow")],
            None,
            False,
            True,
            id="unhealthy-pod-always-allow",
        ),
    ],
)
def test_plan_eviction(
    target: Obj, budgets: list[Obj], want_code: int | None, want_update: bool, want_enforce: bool
) -> None:
    decision = d.plan_eviction(target, budgets, NOW)
    assert (decision.error.code if decision.error else None) == want_code
    assert decision.allowed is (want_code is None)
    assert (decision.pdb_update is not None) is want_update
    assert decision.enforce_resource_version is want_enforce


def test_eviction_refusal_matches_upstream_status() -> None:
    decision = d.plan_eviction(pod("a"), [pdb("web", status=SPENT_BUDGET)], NOW)
    assert decision.error is not None
    assert decision.error.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Cannot evict pod as it would violate the pod's disruption budget.",
        "reason": "TooManyRequests",
        "code": 429,
        "details": {
            "causes": [
                {
                    "reason": "DisruptionBudget",
                    "message": "The disruption budget web needs 2 healthy pods and has 2 currently",
                }
            ]
        },
    }
    assert decision.error.headers == {}


def test_eviction_status_behind_asks_to_retry() -> None:
    decision = d.plan_eviction(pod("a"), [pdb("web", generation=3, status=HEALTHY_BUDGET)], NOW)
    assert decision.error is not None
    assert decision.error.headers == {"Retry-After": "10"}
    assert decision.error.details == {
        "retryAfterSeconds": 10,
        "causes": [
            {
                "reason": "DisruptionBudget",
                "message": "The disruption budget web is still being processed by the server.",
            }
        ],
    }


def test_multiple_pdbs_message() -> None:
    decision = d.plan_eviction(pod("a"), [pdb("p1"), pdb("p2")], NOW)
    assert decision.error is not None
    assert decision.error.message == (
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    )


@pytest.mark.parametrize(
    ("allowed_before", "want_condition"),
    [
        pytest.param(2, None, id="still-allowed"),
        pytest.param(1, ("False", "InsufficientPods"), id="last-one"),
    ],
)
def test_eviction_decrements_and_records(allowed_before: int, want_condition: tuple[str, str] | None) -> None:
    budget = pdb(
        status={
            **HEALTHY_BUDGET,
            "disruptionsAllowed": allowed_before,
            "conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods"}],
        }
    )
    decision = d.plan_eviction(pod("a"), [budget], NOW)
    assert decision.pdb_update is not None
    status = decision.pdb_update["status"]
    assert status["disruptionsAllowed"] == allowed_before - 1
    assert status["disruptedPods"] == {"a": rfc3339(NOW)}
    cond = status["conditions"][0]
    assert (cond["status"], cond["reason"]) == (want_condition or ("True", "SufficientPods"))
    assert budget["status"]["disruptionsAllowed"] == allowed_before  # input not mutated


def test_dry_run_eviction_writes_nothing() -> None:
    decision = d.plan_eviction(pod("a"), [pdb(status=HEALTHY_BUDGET)], NOW, dry_run=True)
    assert decision.allowed and decision.pdb_update is None
