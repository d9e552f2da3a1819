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


def readiness_gates_message(pod: Mapping[str, Any]) -> str:
    """`""` when every readiness gate's condition is True, else upstream's `GeneratePodReadyCondition` message."""
    status = {c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or []}
    msgs = []
    for g in (pod.get("spec") or {}).get("readinessGates") or []:
        gate = (g or {}).get("conditionType")
        if gate not in status:
            msgs.append(f'corresponding condition of pod readiness gate "{gate}" does not exist.')
        elif status[gate] != "True":
            msgs.append(f'the status of pod readiness gate "{gate}" is not "True", but {status[gate]}')
    return ", ".join(msgs)
