"""Lease strategy: validation of durations/transitions, create-on-update, Holder column."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.coordination.leases import LeaseStrategy

S = LeaseStrategy()
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def lease(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "node-1",
            "namespace": "kube-node-lease",
            "creationTimestamp": "2025-12-31T23:00:00Z",
        },
        "spec": spec,
    }


def test_info() -> None:
    assert S.allow_create_on_update and not S.tracks_generation
    assert (S.info.group, S.info.plural, S.info.namespaced) == ("coordination.k8s.io", "leases", True)


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        pytest.param(
            {"holderIdentity": "node-1", "leaseDurationSeconds": 40, "leaseTransitions": 0}, [], id="valid"
        ),
        pytest.param(
            {"leaseDurationSeconds": 0},
            ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"],
            id="duration",
        ),
        pytest.param(
            {"leaseTransitions": -1},
            ["spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"],
            id="transitions",
        ),
        pytest.param(
            {"strategy": "Random"},
            ['spec.strategy: Unsupported value: "Random": supported values: "OldestEmulationVersion"'],
            id="strategy",
        ),
    ],
)
def test_validate(spec: dict[str, Any], want: list[str]) -> None:
    assert [e.text() for e in S.validate(lease(**spec))] == want


@pytest.mark.parametrize(
    ("spec", "holder"),
    [pytest.param({"holderIdentity": "node-1"}, "node-1", id="held"), pytest.param({}, "", id="unheld")],
)
def test_row(spec: dict[str, Any], holder: str) -> None:
    assert [c.name for c in S.columns()] == ["Name", "Holder", "Age"]
    assert S.row(lease(**spec), NOW) == ["node-1", holder, "60m"]
