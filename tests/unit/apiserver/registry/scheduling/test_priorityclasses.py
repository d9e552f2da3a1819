"""PriorityClass strategy: defaults, value rules (reserved names, immutable), globalDefault, row."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.scheduling.priorityclasses import (
    PriorityClassStrategy,
    conflicting_global_default,
)

S = PriorityClassStrategy()
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def pc(name: str = "high", **fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "creationTimestamp": "2025-12-31T23:59:50Z"}, "value": 1000, **fields}


def test_info_and_defaults() -> None:
    assert S.info.short_names == ("pc",)
    obj = pc()
    S.defaults(obj)
    assert obj["preemptionPolicy"] == "PreemptLowerPriority"


@pytest.mark.parametrize(
    ("obj", "want"),
    [
        pytest.param(pc(), [], id="valid"),
        pytest.param(pc("system-node-critical", value=2000001000), [], id="system-class"),
        pytest.param(
            pc("system-mine"),
            ["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved"],
            id="reserved-prefix",
        ),
        pytest.param(
            pc(value=1000000001),
            ["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"],
            id="too-high",
        ),
        pytest.param(
            pc(preemptionPolicy="Sometimes"),
            [
                'preemptionPolicy: Unsupported value: "Sometimes": supported values: "Never", "PreemptLowerPriority"'
            ],
            id="preemption-policy",
        ),
    ],
)
def test_validate(obj: dict[str, Any], want: list[str]) -> None:
    assert [e.text() for e in S.validate(obj)] == want


def test_value_and_policy_are_immutable() -> None:
    old = pc(preemptionPolicy="Never")
    new = pc(value=5, preemptionPolicy="PreemptLowerPriority")
    assert [e.text() for e in S.validate_update(new, old)] == [
        "value: Forbidden: may not be changed in an update.",
        'preemptionPolicy: Invalid value: "PreemptLowerPriority": field is immutable',
    ]


@pytest.mark.parametrize(
    ("new", "existing", "want"),
    [
        pytest.param(pc(globalDefault=True), [pc("other", globalDefault=True)], "other", id="conflict"),
        pytest.param(pc(globalDefault=True), [pc("high", globalDefault=True)], None, id="same-object"),
        pytest.param(pc(), [pc("other", globalDefault=True)], None, id="new-not-default"),
    ],
)
def test_conflicting_global_default(
    new: dict[str, Any], existing: list[dict[str, Any]], want: str | None
) -> None:
    assert conflicting_global_default(new, existing) == want


def test_row() -> None:
    assert [(c.name, c.type) for c in S.columns()] == [
        ("Name", "string"),
        ("Value", "integer"),
        ("Global-Default", "boolean"),
        ("Age", "string"),
        ("PreemptionPolicy", "string"),
    ]
    assert S.row(pc(globalDefault=True, preemptionPolicy="Never"), NOW) == [
        "high",
        1000,
        True,
        "10s",
        "Never",
    ]
