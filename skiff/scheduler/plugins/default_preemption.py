"""DefaultPreemption (`plugins/defaultpreemption`, `framework/preemption/preemption.go`): when a pod fits
nowhere, find a node where evicting lower-priority pods would make it fit, with as few and as
unimportant victims as possible.

Pure: the dry runs remove and re-add pods in the snapshot and always restore it. The caller acts
on a `Candidate` (sets `status.nominatedNodeName`, deletes the victims). Not modelled: PodDisruption
budgets (every victim counts as not violating one) and the nominated-pods reservation in filters.
"""

from __future__ import annotations

from collections.abc import Mapping

from skiff.scheduler.framework import (
    SUCCESS,
    Code,
    CycleState,
    Framework,
    Nomination,
    Status,
    fit_error_message,
    unresolvable,
)
from skiff.scheduler.snapshot import NodeInfo, PodInfo, Snapshot

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
MIN_CANDIDATE_NODES_PERCENTAGE = 10
MIN_CANDIDATE_NODES_ABSOLUTE = 100


Candidate = Nomination


def _start_time(p: PodInfo) -> str:
    return str(
        (p.obj.get("status") or {}).get("startTime")
        or (p.obj.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def eligible(pod: PodInfo, snapshot: Snapshot) -> str:
    """ "" when the pod may preempt, else upstream's reason (`PodEligibleToPreemptOthers`)."""
    if pod.spec.get("preemptionPolicy") == "Never":
        return "not eligible due to preemptionPolicy=Never."
    nominated = (pod.obj.get("status") or {}).get("nominatedNodeName")
    ni = snapshot.nodes.get(nominated) if nominated else None
    if ni is not None:
        for q in ni.pods.values():
            if q.priority < pod.priority and (q.obj.get("metadata") or {}).get("deletionTimestamp"):
                return "not eligible due to a terminating pod on the nominated node."
    return ""


def _fits(fw: Framework, pod: PodInfo, snapshot: Snapshot, ni: NodeInfo) -> Status:
    state = CycleState()
    for pf in fw.pre_filters:
        st = pf.pre_filter(state, pod, snapshot)
        if st.code == Code.SKIP:
            state.skip_filter.add(pf.name)
        elif not st.ok:
            return st
    return fw.run_filters(state, pod, ni)


def select_victims(
    fw: Framework, pod: PodInfo, snapshot: Snapshot, ni: NodeInfo
) -> tuple[list[PodInfo], Status]:
    """`selectVictimsOnNode`: remove every lower-priority pod; if the pod then fits, add them back
    most important first and keep out only those whose return would make it not fit."""
    lower = [q for q in ni.pods.values() if q.priority < pod.priority]
    if not lower:
        return [], unresolvable(NO_VICTIMS)
    for q in lower:
        snapshot.remove_pod(q.key)
    try:
        st = _fits(fw, pod, snapshot, ni)
        if not st.ok:
            return [], st
        lower.sort(key=lambda q: (-q.priority, _start_time(q)))
        victims = []
        for q in lower:
            snapshot.add_pod(q)
            if not _fits(fw, pod, snapshot, ni).ok:
                snapshot.remove_pod(q.key)
                victims.append(q)
        return victims, SUCCESS
    finally:
        for q in lower:
            if snapshot.get_pod(q.key) is None:
                snapshot.add_pod(q)


def pick_one(candidates: list[Candidate]) -> Candidate:
    """`pickOneNodeForPreemption` without PDBs: lowest top victim priority, then lowest priority sum,
    then fewest victims, then the latest start among the top-priority victims, then the first."""

    def key(c: Candidate) -> tuple[int, int, int, str]:
        top = max(v.priority for v in c.victims)
        earliest_top = min(_start_time(v) for v in c.victims if v.priority == top)
        return top, sum(v.priority + 2**31 for v in c.victims), len(c.victims), _invert(earliest_top)

    return min(candidates, key=key)


def _invert(s: str) -> str:
    """Sorts later timestamps first."""
    return "".join(chr(0x10FFFF - ord(ch)) for ch in s)


class DefaultPreemption:
    name = "DefaultPreemption"

    def post_filter(
        self, fw: Framework, pod: PodInfo, snapshot: Snapshot, statuses: Mapping[str, Status]
    ) -> tuple[Candidate | None, str]:
        """A candidate (message "") or None with the "preemption: …" text for the FitError."""
        why = eligible(pod, snapshot)
        if why:
            return None, f"preemption: {why}"
        nodes = snapshot.node_list()
        num_all = len(nodes)
        pstat: dict[str, Status] = {}
        potential = []
        for ni in nodes:
            st = statuses.get(ni.name)
            if st is not None and st.code == Code.UNSCHEDULABLE:
                potential.append(ni)
            else:
                pstat[ni.name] = unresolvable(NOT_HELPFUL)
        wanted = min(
            len(potential),
            max(len(potential) * MIN_CANDIDATE_NODES_PERCENTAGE // 100, MIN_CANDIDATE_NODES_ABSOLUTE),
        )
        candidates: list[Candidate] = []
        for ni in potential:
            victims, st = select_victims(fw, pod, snapshot, ni)
            if st.ok and victims:
                candidates.append(Candidate(ni.name, victims))
                if len(candidates) >= wanted:
                    break
            elif st.ok:
                pstat[ni.name] = Status(
                    Code.ERROR, (f'expected at least one victim pod on node "{ni.name}"',)
                )
            else:
                pstat[ni.name] = st
        if candidates:
            return pick_one(candidates), ""
        for ni in potential:
            pstat.setdefault(ni.name, unresolvable(NOT_HELPFUL))
        return None, "preemption: " + fit_error_message(num_all, pstat)
