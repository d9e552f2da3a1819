"""ServiceAccounts controller planner (pkg/controller/serviceaccount)."""

from __future__ import annotations

import pytest

from skiff.api.meta import Obj
from skiff.controllers.serviceaccount import missing_service_accounts


def ns(phase: str = "Active", deleting: bool = False) -> Obj:
    md: Obj = {"name": "demo"}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": md, "status": {"phase": phase}}


@pytest.mark.parametrize(
    ("namespace", "existing", "wanted", "expected"),
    [
        pytest.param(ns(), set(), ("default",), ["default"], id="missing"),
        pytest.param(ns(), {"default"}, ("default",), [], id="present"),
        pytest.param(ns(), {"builder"}, ("default", "builder"), ["default"], id="several-wanted"),
        pytest.param(ns("Terminating", deleting=True), set(), ("default",), [], id="terminating"),
        pytest.param(ns(deleting=True), set(), ("default",), [], id="deleting-before-phase-update"),
        pytest.param(None, set(), ("default",), [], id="namespace-gone"),
        pytest.param({"metadata": {"name": "demo"}}, set(), ("default",), ["default"], id="no-status-yet"),
    ],
)
def test_missing_service_accounts(
    namespace: Obj | None, existing: set[str], wanted: tuple[str, ...], expected: list[str]
) -> None:
    assert missing_service_accounts(namespace, existing, wanted) == expected
