"""The scheduling framework: extension-point interfaces, statuses, and one pure scheduling cycle.

Mirrors `pkg/scheduler/framework` (interface.go, cycle_state.go, types.go FitError) and
`pkg/scheduler/schedule_one.go` (findNodesThatFitPod, numFeasibleNodesToFind, prioritizeNodes,
selectHost). Plugins never raise for "does not fit": they return a `Status` whose reasons are the
exact upstream strings, which `fit_error_message` turns into the FailedScheduling event text.

Extension points (a plugin implements one or more; the framework finds them by method name):
  PreFilter  `pre_filter(state, pod, snapshot) -> Status`  — per-pod state, written once into `state`;
             Code.SKIP means "my filter has nothing to check for this pod".
  Filter     `filter(state, pod, node) -> Status`
  PreScore   `pre_score(state, pod, snapshot, nodes) -> Status`  — Code.SKIP skips the score plugin.
  Score      `score(state, pod, node) -> int` in 0..100, times the plugin's weight.
  Normalize  `normalize(state, pod, scores) -> None` rewrites raw scores to 0..100 in place.
A plugin with `node_local = True` reads only the pod and that one node: its results are cached per
pod template and node generation (pods of one ReplicaSet share them).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol

from skiff.scheduler.snapshot import NodeInfo, Obj, PodInfo, Snapshot

MAX_NODE_SCORE = 100
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
DEFAULT_PERCENTAGE_OF_NODES_TO_SCORE = 0  # 0 → adaptive, as upstream


class Code(IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2  # might fit after preemption
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3  # preemption cannot help
    SKIP = 5


@dataclass(frozen=True, slots=True)
class Status:
    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def ok(self) -> bool:
        return self.code == Code.SUCCESS

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)


SUCCESS = Status()
SKIP = Status(Code.SKIP)


def unschedulable(*reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE, reasons)


def unresolvable(*reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons)


class CycleState:
    """Per-pod state of one cycle: each key written once (by its PreFilter/PreScore), read many times."""

    __slots__ = ("_data", "skip_filter", "skip_score")

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()

    def write(self, key: str, value: Any) -> None:
        if key in self._data:
            raise KeyError(f"cycle state {key!r} already written")
        self._data[key] = value

    def read(self, key: str) -> Any:
        return self._data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)


class Plugin(Protocol):
    name: str


class PreFilterPlugin(Plugin, Protocol):
    def pre_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> Status: ...


class FilterPlugin(Plugin, Protocol):
    node_local: bool

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status: ...


class PreScorePlugin(Plugin, Protocol):
    def pre_score(
        self, state: CycleState, pod: PodInfo, snapshot: Snapshot, nodes: Sequence[NodeInfo]
    ) -> Status: ...


class ScorePlugin(Plugin, Protocol):
    node_local: bool

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int: ...


@dataclass
class Nomination:
    """Where a pod may go once `victims` are evicted (the PostFilter's answer)."""

    node: str
    victims: list[PodInfo] = field(default_factory=list)


class PostFilterPlugin(Plugin, Protocol):
    def post_filter(
        self, fw: Framework, pod: PodInfo, snapshot: Snapshot, statuses: Mapping[str, Status]
    ) -> tuple[Nomination | None, str]:
        """A nomination, or None and the message appended to the FitError ("preemption: …")."""
        ...


class NormalizeScorePlugin(Plugin, Protocol):
    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None: ...


def default_normalize(scores: list[int], reverse: bool) -> None:
    """`pkg/scheduler/framework/plugins/helper.DefaultNormalizeScore`."""
    top = max(scores, default=0)
    if top == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for i, s in enumerate(scores):
        s = MAX_NODE_SCORE * s // top
        scores[i] = MAX_NODE_SCORE - s if reverse else s


@dataclass
class ScheduleResult:
    """`node` is the chosen node, or None with `reasons` (reason → node count) and `message`."""

    node: str | None
    reasons: dict[str, int] = field(default_factory=dict)
    message: str = ""
    evaluated_nodes: int = 0
    feasible_nodes: int = 0
    statuses: dict[str, Status] = field(default_factory=dict)
    nomination: Nomination | None = None  # set by preemption when node is None


def num_feasible_nodes_to_find(num_all: int, percentage: int = DEFAULT_PERCENTAGE_OF_NODES_TO_SCORE) -> int:
    """`schedule_one.go numFeasibleNodesToFind`: all nodes below 100, else an adaptive share (≥ 100)."""
    if num_all < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all
    adaptive = percentage
    if adaptive <= 0:
        adaptive = max(50 - num_all // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    n = num_all * adaptive // 100
    return max(n, MIN_FEASIBLE_NODES_TO_FIND)


def fit_error_message(
    num_all: int, statuses: Mapping[str, Status], pre_filter_msg: str = "", post_filter_msg: str = ""
) -> str:
    """`framework.FitError.Error()`: "0/N nodes are available: <count reason, …sorted as strings>."
    followed by the PostFilter (preemption) message."""
    msg = f"0/{num_all} nodes are available:"
    if pre_filter_msg:
        msg += f" {pre_filter_msg}."
    else:
        hist = reason_histogram(statuses)
        if hist:
            msg += " " + ", ".join(sorted(f"{v} {k}" for k, v in hist.items())) + "."
    if post_filter_msg:  # the nested FitError text already ends in "." (1.32 prints it once)
        msg += f" {post_filter_msg.rstrip('.')}."
    return msg


def reason_histogram(statuses: Mapping[str, Status]) -> dict[str, int]:
    hist: dict[str, int] = {}
    for st in statuses.values():
        for r in st.reasons:
            hist[r] = hist.get(r, 0) + 1
    return hist


_Cached = list[Any]  # [node generation, Status of node-local filters, tuple of node-local raw scores | None]


class Framework:
    """A profile: the ordered plugins of each extension point and the score weights.

    Not thread-safe; one instance per scheduling loop. `schedule_one` does not mutate the snapshot
    (the caller assumes the pod on the chosen node).
    """

    def __init__(
        self,
        plugins: Sequence[Plugin],
        weights: Mapping[str, int] | None = None,
        percentage_of_nodes_to_score: int = DEFAULT_PERCENTAGE_OF_NODES_TO_SCORE,
        rng: random.Random | None = None,
    ) -> None:
        weights = weights or {}
        self.plugins = list(plugins)
        self.pre_filters: list[PreFilterPlugin] = [p for p in plugins if hasattr(p, "pre_filter")]  # type: ignore[misc]
        filters: list[FilterPlugin] = [p for p in plugins if hasattr(p, "filter")]  # type: ignore[misc]
        self.local_filters = [p for p in filters if p.node_local]
        self.global_filters = [p for p in filters if not p.node_local]
        self.post_filters: list[PostFilterPlugin] = [p for p in plugins if hasattr(p, "post_filter")]  # type: ignore[misc]
        self.pre_scores: list[PreScorePlugin] = [p for p in plugins if hasattr(p, "pre_score")]  # type: ignore[misc]
        scores: list[ScorePlugin] = [p for p in plugins if hasattr(p, "score")]  # type: ignore[misc]
        self.local_scores = [p for p in scores if p.node_local]
        self.global_scores = [p for p in scores if not p.node_local]
        self.weights = {p.name: weights.get(p.name, 1) for p in scores}
        self.percentage = percentage_of_nodes_to_score
        self.rng = rng or random.Random()
        self.next_start = 0
        self._template_cache: dict[tuple[str, str], dict[str, _Cached]] = {}

    # ---- filtering -------------------------------------------------------------------------------
    def _local_filter(self, state: CycleState, pod: PodInfo, ni: NodeInfo) -> Status:
        for p in self.local_filters:
            if p.name in state.skip_filter:
                continue
            st = p.filter(state, pod, ni)
            if st.code != Code.SUCCESS:
                return Status(st.code, st.reasons, p.name)
        return SUCCESS

    def _global_filter(self, state: CycleState, pod: PodInfo, ni: NodeInfo) -> Status:
        for p in self.global_filters:
            if p.name in state.skip_filter:
                continue
            st = p.filter(state, pod, ni)
            if st.code != Code.SUCCESS:
                return Status(st.code, st.reasons, p.name)
        return SUCCESS

    def run_filters(self, state: CycleState, pod: PodInfo, ni: NodeInfo) -> Status:
        st = self._local_filter(state, pod, ni)
        return st if not st.ok else self._global_filter(state, pod, ni)

    # ---- one cycle -------------------------------------------------------------------------------
    def schedule_one(self, pod: PodInfo | Obj, snapshot: Snapshot) -> ScheduleResult:
        """Filter and score the snapshot's nodes for `pod`; pure apart from the round-robin start index
        and the per-template cache (both derived, never observable in results beyond tie order)."""
        p = pod if isinstance(pod, PodInfo) else PodInfo(pod)
        nodes = snapshot.node_list()
        num_all = len(nodes)
        if num_all == 0:
            return ScheduleResult(None, {}, "no nodes available to schedule pods")
        state = CycleState()
        for pf in self.pre_filters:
            st = pf.pre_filter(state, p, snapshot)
            if st.code == Code.SKIP:
                state.skip_filter.add(pf.name)
            elif not st.ok:
                rejected = {ni.name: Status(st.code, st.reasons, pf.name) for ni in nodes}
                return self._unschedulable(p, snapshot, num_all, rejected, st.message, 0)

        cache: dict[str, _Cached] | None = None
        if p.template_key is not None:
            cache = self._template_cache.get(p.template_key)
            if cache is None:
                if len(self._template_cache) > 512:
                    self._template_cache.clear()
                cache = self._template_cache[p.template_key] = {}

        to_find = num_feasible_nodes_to_find(num_all, self.percentage)
        feasible: list[NodeInfo] = []
        local: list[tuple[int, ...] | None] = []
        statuses: dict[str, Status] = {}
        start = self.next_start % num_all
        processed = 0
        local_filter = self._local_filter
        global_filters = [f for f in self.global_filters if f.name not in state.skip_filter]
        # Hot loop: plugins return the SUCCESS singleton when a node fits, so `is` decides.
        for i in range(num_all):
            j = start + i
            ni = nodes[j - num_all if j >= num_all else j]
            processed += 1
            entry: _Cached | None = None
            if cache is not None:
                entry = cache.get(ni.name)
                if entry is None or entry[0] != ni.generation:
                    entry = cache[ni.name] = [ni.generation, local_filter(state, p, ni), None]
                st = entry[1]
            else:
                st = local_filter(state, p, ni)
            if st is SUCCESS and global_filters:
                for gf in global_filters:
                    st = gf.filter(state, p, ni)
                    if st.code != Code.SUCCESS:
                        st = Status(st.code, st.reasons, gf.name)
                        break
                else:
                    st = SUCCESS
            if st is not SUCCESS and st.code != Code.SUCCESS:
                statuses[ni.name] = st
                continue
            feasible.append(ni)
            local.append(entry[2] if entry is not None else None)
            if len(feasible) >= to_find:
                break
        self.next_start = (start + processed) % num_all

        if not feasible:
            return self._unschedulable(p, snapshot, num_all, statuses, "", processed)
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, {}, "", processed, 1, statuses)

        totals = self._prioritize(state, p, snapshot, feasible, local, cache)
        best = self._select(totals)
        return ScheduleResult(feasible[best].name, {}, "", processed, len(feasible), statuses)

    def _unschedulable(
        self,
        pod: PodInfo,
        snapshot: Snapshot,
        num_all: int,
        statuses: dict[str, Status],
        pre_filter_msg: str,
        processed: int,
    ) -> ScheduleResult:
        """Run the PostFilter plugins (preemption) and build the FitError (`schedule_one.go`)."""
        post_msg = ""
        for pf in self.post_filters:
            nomination, msg = pf.post_filter(self, pod, snapshot, statuses)
            if nomination is not None:
                text = fit_error_message(num_all, statuses, pre_filter_msg)
                return ScheduleResult(
                    None, reason_histogram(statuses), text, processed, 0, statuses, nomination
                )
            post_msg = msg or post_msg
        text = fit_error_message(num_all, statuses, pre_filter_msg, post_msg)
        hist = {pre_filter_msg: num_all} if pre_filter_msg else reason_histogram(statuses)
        return ScheduleResult(None, hist, text, processed, 0, statuses)

    def _prioritize(
        self,
        state: CycleState,
        pod: PodInfo,
        snapshot: Snapshot,
        feasible: list[NodeInfo],
        local: list[tuple[int, ...] | None],
        cache: dict[str, _Cached] | None,
    ) -> list[int]:
        for ps in self.pre_scores:
            if ps.pre_score(state, pod, snapshot, feasible).code == Code.SKIP:
                state.skip_score.add(ps.name)
        n = len(feasible)
        totals = [0] * n
        # Node-local raw scores, cached per template + node generation. Whether a local plugin is
        # skipped depends on the pod spec only, so it is the same for every pod of a template.
        if self.local_scores:
            active = [sp if sp.name not in state.skip_score else None for sp in self.local_scores]
            raws: list[tuple[int, ...]] = []
            for i, ni in enumerate(feasible):
                raw = local[i]
                if raw is None:
                    raw = tuple(0 if sp is None else sp.score(state, pod, ni) for sp in active)
                    if cache is not None:
                        entry = cache.get(ni.name)
                        if entry is not None and entry[0] == ni.generation:
                            entry[2] = raw
                raws.append(raw)
            for sp, col in zip(self.local_scores, zip(*raws, strict=True), strict=True):
                self._accumulate(state, pod, sp, list(col), totals)
        for sp in self.global_scores:
            if sp.name in state.skip_score:
                continue
            self._accumulate(state, pod, sp, [sp.score(state, pod, ni) for ni in feasible], totals)
        return totals

    def _accumulate(
        self, state: CycleState, pod: PodInfo, sp: ScorePlugin, col: list[int], totals: list[int]
    ) -> None:
        if sp.name in state.skip_score:
            return
        norm: Callable[[CycleState, PodInfo, list[int]], None] | None = getattr(sp, "normalize", None)
        if norm is not None:
            norm(state, pod, col)
        w = self.weights[sp.name]
        totals[:] = [t + v * w for t, v in zip(totals, col, strict=True)]

    def _select(self, totals: list[int]) -> int:
        """Highest total; ties broken uniformly at random (the distribution of `selectHost`'s
        reservoir sampling, with one draw)."""
        top = max(totals)
        best = [i for i, s in enumerate(totals) if s == top]
        return best[0] if len(best) == 1 else self.rng.choice(best)
