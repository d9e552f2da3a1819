"""Taints and tolerations, shared by the scheduler, the DaemonSet controller and taint eviction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """`v1.Toleration.ToleratesTaint`: an empty effect or key matches any; `Exists` ignores the value;
    `Equal` (also the empty operator) compares values; any other operator tolerates nothing."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    return op == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")
