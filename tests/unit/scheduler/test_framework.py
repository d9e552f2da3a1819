"""schedule_one end to end over the default profile: the chosen node and the FailedScheduling text."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sched_helpers import node, pod, snapshot, taint

from skiff.scheduler.framework import (
    Code,
    Framework,
    Status,
    fit_error_message,
    num_feasible_nodes_to_find,
    unresolvable,
    unschedulable,
)
from skiff.scheduler.plugins import default_framework
from skiff.scheduler.snapshot import PodInfo

Obj = dict[str, Any]


def tainted(name: str) -> Obj:
    return node(name, taints=[taint("k", "v")])


@pytest.mark.parametrize(
    "nodes,p,want",
    [
        pytest.param(
            [node("a", cpu="1"), node("b", cpu="1"), tainted("c"), tainted("d"), tainted("e")],
            pod("p", "2"),
            "0/5 nodes are available: 2 Insufficient cpu, 3 node(s) had untolerated taint {k: v}. "
            "preemption: 0/5 nodes are available: 5 Preemption is not helpful for scheduling.",
            id="brief-example",
        ),
        pytest.param(
            [node("a", cpu="1")],
            pod("p", "2", preemptionPolicy="Never"),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to "
            "preemptionPolicy=Never.",
            id="preemption-never",
        ),
        pytest.param(
            [node("a", memory="1Gi", labels={"zone": "y"}), node("b", labels={"zone": "x"})],
            pod("p", memory="2Gi", nodeSelector={"zone": "y"}),
            "0/2 nodes are available: 1 Insufficient memory, 1 node(s) didn't match Pod's node "
            "affinity/selector. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
            id="selector-and-memory",
        ),
        pytest.param(
            [node(f"n{i}", pods="0") for i in range(12)],
            pod("p"),
            "0/12 nodes are available: 12 Too many pods. preemption: 0/12 nodes are available: "
            "12 No preemption victims found for incoming pod.",
            id="resolvable-shortfall",
        ),
        pytest.param(
            [node("a", unschedulable=True), node("b", cpu="1")],
            pod("p", "2"),
            "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) were unschedulable. preemption: 0/2 nodes "
            "are available: 2 Preemption is not helpful for scheduling.",
            id="cordoned",
        ),
    ],
)
def test_failed_scheduling_message(nodes: list[Obj], p: Obj, want: str) -> None:
    res = default_framework(seed=0).schedule_one(p, snapshot(nodes))
    assert res.node is None
    assert res.message == want


def test_no_nodes() -> None:
    res = default_framework().schedule_one(pod("p"), snapshot([]))
    assert res.node is None and res.message == "no nodes available to schedule pods"


def test_reasons_sorted_as_strings_like_upstream() -> None:
    statuses = {f"n{i}": unschedulable("Insufficient cpu") for i in range(10)}
    statuses["x"] = unresolvable("node(s) had untolerated taint {k: v}")
    statuses["y"] = unresolvable("node(s) had untolerated taint {k: v}")
    assert fit_error_message(12, statuses) == (
        "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) had untolerated taint {k: v}."
    )
    statuses = {f"n{i}": unschedulable("b") for i in range(10)} | {"x": unschedulable("a", "c")}
    # "1 a" < "1 c" < "10 b": string order, not by count
    assert fit_error_message(11, statuses) == "0/11 nodes are available: 1 a, 1 c, 10 b."


@pytest.mark.parametrize(
    "nodes,p,want",
    [
        pytest.param([node("a", cpu="4"), node("b", cpu="8")], pod("p", "2"), "b", id="least-allocated"),
        pytest.param(
            [node("a", taints=[taint("k", effect="PreferNoSchedule")]), node("b")],
            pod("p"),
            "b",
            id="prefer-no-schedule-avoided",
        ),
        pytest.param(
            [node("a"), node("b", labels={"disk": "ssd"})],
            pod(
                "p",
                affinity={
                    "nodeAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {
                                "weight": 1,
                                "preference": {
                                    "matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]
                                },
                            }
                        ]
                    }
                },
            ),
            "b",
            id="preferred-affinity",
        ),
        pytest.param(
            [node("a", cpu="1"), node("b", cpu="1"), node("c", cpu="3")],
            pod("p", "2"),
            "c",
            id="only-feasible-node",
        ),
        pytest.param(
            [node("a", cpu="1", taints=[taint("k")]), node("b")],
            pod("p", tolerations=[{"operator": "Exists"}]),
            "b",
            id="tolerated-taint-then-least-allocated",
        ),
    ],
)
def test_chosen_node(nodes: list[Obj], p: Obj, want: str) -> None:
    assert default_framework(seed=0).schedule_one(p, snapshot(nodes)).node == want


def test_ties_are_broken_randomly_among_best() -> None:
    s = snapshot([node(n) for n in "abcd"])
    chosen = {
        Framework(default_framework().plugins, {}, rng=random.Random(i)).schedule_one(pod("p"), s).node
        for i in range(40)
    }
    assert chosen == set("abcd")


@pytest.mark.parametrize(
    "n,want",
    [
        pytest.param(5, 5, id="small"),
        pytest.param(99, 99, id="below-min"),
        pytest.param(100, 100, id="min"),
        pytest.param(1000, 420, id="adaptive-42pct"),
        pytest.param(5000, 500, id="adaptive-10pct"),
        pytest.param(10000, 500, id="floor-5pct"),
    ],
)
def test_num_feasible_nodes_to_find(n: int, want: int) -> None:
    assert num_feasible_nodes_to_find(n) == want


def test_spreads_replicas_and_assumes() -> None:
    """Assuming each placed pod makes the next cycle see it (LeastAllocated spreads them)."""
    s = snapshot([node(n, cpu="2") for n in "abc"])
    fw = default_framework(seed=1)
    placed = []
    for i in range(6):
        info = PodInfo(pod(f"p{i}", "500m"))
        res = fw.schedule_one(info, s)
        assert res.node is not None
        s.assume(info, res.node)
        placed.append(res.node)
    assert sorted(placed) == sorted("aabbcc")
    res = fw.schedule_one(pod("big", "1"), s)
    assert res.node is not None
    res = fw.schedule_one(pod("huge", "2"), s)
    assert res.node is None and "3 Insufficient cpu" in res.message


def rs_pod(name: str, cpu: str) -> Obj:
    p = pod(name, cpu, labels={"app": "web", "pod-template-hash": "abc"})
    p["metadata"]["ownerReferences"] = [
        {"kind": "ReplicaSet", "name": "web-abc", "uid": "rs-1", "controller": True}
    ]
    return p


def test_template_cache_sees_node_changes() -> None:
    """Cached node-local results are reused only while the node's generation is unchanged."""
    s = snapshot([node("a", cpu="1"), node("b", cpu="1")])
    fw = default_framework(seed=0)
    for i in range(2):
        info = PodInfo(rs_pod(f"w{i}", "1"))
        res = fw.schedule_one(info, s)
        assert res.node is not None
        s.assume(info, res.node)
    res = fw.schedule_one(rs_pod("w2", "1"), s)
    assert res.node is None and "2 Insufficient cpu" in res.message
    s.remove_pod("default/w0")
    assert fw.schedule_one(rs_pod("w3", "1"), s).node is not None
    s.assume(PodInfo(rs_pod("w3", "1")), "a" if s.nodes["a"].requested.get("cpu", 0) == 0 else "b")
    assert fw.schedule_one(rs_pod("w4", "1"), s).node is None
    s.add_node(node("c", cpu="1"))
    assert fw.schedule_one(rs_pod("w5", "1"), s).node == "c"


def test_filters_stop_at_first_failure_and_report_plugin() -> None:
    res = default_framework().schedule_one(pod("p", "8", nodeSelector={"x": "y"}), snapshot([node("a")]))
    st = res.statuses["a"]
    assert st == Status(
        Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
        ("node(s) didn't match Pod's node affinity/selector",),
        "NodeAffinity",
    )


def test_percentage_of_nodes_to_score_stops_early_and_rotates() -> None:
    s = snapshot([node(f"n{i:03d}") for i in range(200)])
    fw = default_framework(seed=0)
    res = fw.schedule_one(pod("p"), s)
    assert res.feasible_nodes == 100 and res.evaluated_nodes == 100
    assert fw.next_start == 100
