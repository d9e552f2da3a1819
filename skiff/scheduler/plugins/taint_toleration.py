"""TaintToleration (`plugins/tainttoleration`): NoSchedule/NoExecute taints must be tolerated;
untolerated PreferNoSchedule taints lower the score (normalized in reverse)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from skiff.api.taints import tolerates
from skiff.scheduler.framework import SUCCESS, CycleState, Status, default_normalize, unresolvable
from skiff.scheduler.snapshot import NodeInfo, PodInfo


def first_untolerated(
    taints: Iterable[Mapping[str, Any]], tolerations: Iterable[Mapping[str, Any]], effects: tuple[str, ...]
) -> Mapping[str, Any] | None:
    tols = list(tolerations)
    for taint in taints:
        if taint.get("effect") in effects and not any(tolerates(t, taint) for t in tols):
            return taint
    return None


class TaintToleration:
    name = "TaintToleration"
    node_local = True

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        if not node.taints:
            return SUCCESS
        taint = first_untolerated(node.taints, pod.tolerations, ("NoSchedule", "NoExecute"))
        if taint is None:
            return SUCCESS
        return unresolvable(
            f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"
        )

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        """Raw score: how many PreferNoSchedule taints the pod does not tolerate."""
        if not node.taints:
            return 0
        tols = [t for t in pod.tolerations if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"]
        return sum(
            1
            for taint in node.taints
            if taint.get("effect") == "PreferNoSchedule" and not any(tolerates(t, taint) for t in tols)
        )

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        default_normalize(scores, reverse=True)
