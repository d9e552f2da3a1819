"""DefaultPreemption: victims, reprieve, node choice and the "preemption: …" texts."""

from __future__ import annotations

from typing import Any

import pytest
from sched_helpers import node, pod, snapshot

from skiff.scheduler.plugins import default_framework

Obj = dict[str, Any]


def prio(p: Obj, priority: int) -> Obj:
    p["spec"]["priority"] = priority
    return p


def on(name: str, node_name: str, cpu: str, priority: int = 0, start: str = "2026-01-01T00:00:00Z") -> Obj:
    p = prio(pod(name, cpu, node_name=node_name), priority)
    p["status"] = {"phase": "Running", "startTime": start}
    return p


@pytest.mark.parametrize(
    "nodes,existing,p,node_want,victims_want,message",
    [
        pytest.param(
            [node("a", cpu="2")],
            [on("low", "a", "2")],
            prio(pod("hi", "1"), 10),
            "a",
            ["low"],
            "0/1 nodes are available: 1 Insufficient cpu.",
            id="evicts-lower-priority",
        ),
        pytest.param(
            [node("a", cpu="4")],
            [on("l1", "a", "1"), on("l2", "a", "1"), on("mid", "a", "2", 1)],
            prio(pod("hi", "2"), 10),
            "a",
            ["l1", "l2"],
            "0/1 nodes are available: 1 Insufficient cpu.",
            id="reprieves-more-important-first",
        ),
        pytest.param(
            [node("a", cpu="2")],
            [on("l1", "a", "1500m"), on("l2", "a", "500m")],
            prio(pod("hi", "1"), 10),
            "a",
            ["l1"],
            "0/1 nodes are available: 1 Insufficient cpu.",
            id="minimal-victims",
        ),
        pytest.param(
            [node("a", cpu="1"), node("b", cpu="1")],
            [on("x", "a", "1", 5), on("y", "b", "1", 1)],
            prio(pod("hi", "1"), 10),
            "b",
            ["y"],
            "0/2 nodes are available: 2 Insufficient cpu.",
            id="lowest-victim-priority-node",
        ),
        pytest.param(
            [node("a", cpu="1"), node("b", cpu="2")],
            [on("x", "a", "1"), on("y1", "b", "1"), on("y2", "b", "1")],
            prio(pod("hi", "1"), 10),
            "a",
            ["x"],
            "0/2 nodes are available: 2 Insufficient cpu.",
            id="fewest-victims",
        ),
        pytest.param(
            [node("a", cpu="1")],
            [on("same", "a", "1", 10)],
            prio(pod("hi", "1"), 10),
            None,
            [],
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
            "1 No preemption victims found for incoming pod.",
            id="equal-priority-is-no-victim",
        ),
        pytest.param(
            [node("a", cpu="2")],
            [on("big", "a", "1500m", 20), on("low", "a", "500m")],
            prio(pod("hi", "1"), 10),
            None,
            [],
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
            "1 Insufficient cpu.",
            id="evicting-all-lower-not-enough",
        ),
        pytest.param(
            [node("a", cpu="2")],
            [on("low", "a", "2")],
            prio(pod("hi", "1", preemptionPolicy="Never"), 10),
            None,
            [],
            "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to "
            "preemptionPolicy=Never.",
            id="never",
        ),
        pytest.param(
            [node("a", cpu="2", labels={"x": "y"})],
            [on("low", "a", "2")],
            prio(pod("hi", "1", nodeSelector={"x": "z"}), 10),
            None,
            [],
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 "
            "nodes are available: 1 Preemption is not helpful for scheduling.",
            id="unresolvable-not-helpful",
        ),
    ],
)
def test_preemption(
    nodes: list[Obj],
    existing: list[Obj],
    p: Obj,
    node_want: str | None,
    victims_want: list[str],
    message: str,
) -> None:
    s = snapshot(nodes, existing)
    before = {n.name: dict(n.requested) for n in s.node_list()}
    res = default_framework(seed=0).schedule_one(p, s)
    assert res.node is None
    assert res.message == message
    if node_want is None:
        assert res.nomination is None
    else:
        assert res.nomination is not None
        assert res.nomination.node == node_want
        assert sorted(v.name for v in res.nomination.victims) == victims_want
    assert {n.name: n.requested for n in s.node_list()} == before  # dry runs restore the snapshot


def test_terminating_victim_on_nominated_node_blocks_new_preemption() -> None:
    low = on("low", "a", "2")
    low["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    hi = prio(pod("hi", "1"), 10)
    hi["status"] = {"nominatedNodeName": "a"}
    res = default_framework().schedule_one(hi, snapshot([node("a", cpu="2")], [low]))
    assert res.nomination is None
    assert res.message.endswith("preemption: not eligible due to a terminating pod on the nominated node.")
