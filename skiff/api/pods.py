"""Pod facts several components need (upstream `podutil`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    """`podutil.IsPodReady`: the pod's Ready condition is True."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False
