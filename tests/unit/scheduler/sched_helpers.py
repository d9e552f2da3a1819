"""Builders of the node and pod dicts the scheduler tests use."""

from __future__ import annotations

from typing import Any

from skiff.scheduler.snapshot import Snapshot

Obj = dict[str, Any]


def node(
    name: str,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
    unschedulable: bool = False,
    extended: dict[str, str] | None = None,
) -> Obj:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or [], **({"unschedulable": True} if unschedulable else {})},
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods, **(extended or {})}},
    }


def pod(
    name: str,
    cpu: str | None = None,
    memory: str | None = None,
    ns: str = "default",
    labels: dict[str, str] | None = None,
    node_name: str = "",
    **spec: Any,
) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: Obj = {"name": "c", "image": "busybox"}
    if requests:
        container["resources"] = {"requests": requests}
    return {
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}, "uid": f"uid-{name}"},
        "spec": {"containers": [container], **({"nodeName": node_name} if node_name else {}), **spec},
    }


def snapshot(nodes: list[Obj], pods: list[Obj] = ()) -> Snapshot:  # type: ignore[assignment]
    s = Snapshot()
    for n in nodes:
        s.add_node(n)
    for p in pods:
        s.add_pod(p)
    return s


def taint(key: str, value: str = "", effect: str = "NoSchedule") -> Obj:
    return {"key": key, "value": value, "effect": effect}
