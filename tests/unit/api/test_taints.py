"""`tolerates` follows upstream `Toleration.ToleratesTaint`."""

from __future__ import annotations

from typing import Any

import pytest

from skiff.api.taints import tolerates

TAINT = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("toleration", "expected"),
    [
        pytest.param({"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}, True, id="exact"),
        pytest.param({"key": "dedicated", "value": "db"}, True, id="operator-defaults-to-equal"),
        pytest.param({"key": "dedicated", "value": "web"}, False, id="other-value"),
        pytest.param({"key": "dedicated", "operator": "Exists"}, True, id="exists-ignores-value"),
        pytest.param({"operator": "Exists"}, True, id="empty-key-exists-matches-all"),
        pytest.param({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}, False, id="other-effect"),
        pytest.param({"key": "other", "operator": "Exists"}, False, id="other-key"),
        pytest.param({"key": "dedicated", "operator": "Gt", "value": "db"}, False, id="unknown-operator"),
    ],
)
def test_tolerates(toleration: dict[str, Any], expected: bool) -> None:
    assert tolerates(toleration, TAINT) is expected
