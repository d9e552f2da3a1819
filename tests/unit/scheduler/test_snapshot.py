"""Snapshot bookkeeping: sums follow pod adds/updates/removes, generations move, placeholders."""

from __future__ import annotations

from sched_helpers import node, pod, snapshot

from skiff.scheduler.snapshot import PodInfo, Snapshot


def test_requested_sums_follow_pods() -> None:
    s = snapshot([node("a")], [pod("p1", "500m", "1Gi", node_name="a"), pod("p2", "250m", node_name="a")])
    ni = s.nodes["a"]
    assert ni.requested == {"cpu": 750, "memory": 1 << 30}
    assert ni.non_zero_requested == {"cpu": 750, "memory": (1 << 30) + 200 * 1024 * 1024}
    assert len(ni.pods) == 2
    s.update_pod(pod("p2", "1", node_name="a"))
    assert ni.requested["cpu"] == 1500 and len(ni.pods) == 2
    s.remove_pod("default/p1")
    assert ni.requested == {"cpu": 1000, "memory": 0}
    s.remove_pod("default/p1")  # idempotent
    assert ni.requested["cpu"] == 1000


def test_generation_changes_on_every_node_change() -> None:
    s = snapshot([node("a"), node("b")])
    a, b = s.nodes["a"], s.nodes["b"]
    ga, gb = a.generation, b.generation
    s.add_pod(pod("p", "1", node_name="a"))
    assert a.generation > ga and b.generation == gb
    ga = a.generation
    s.update_node(node("a", cpu="8"))
    assert a.generation > ga and a.allocatable["cpu"] == 8000


def test_pod_before_node_waits_on_placeholder() -> None:
    s = Snapshot()
    s.add_pod(pod("p", "1", node_name="late"))
    assert s.node_list() == []
    s.add_node(node("late"))
    assert [n.name for n in s.node_list()] == ["late"]
    assert s.nodes["late"].requested["cpu"] == 1000


def test_removed_node_with_pods_is_hidden_until_pods_go() -> None:
    s = snapshot([node("a")], [pod("p", node_name="a")])
    s.remove_node("a")
    assert s.node_list() == [] and "a" in s.nodes
    s.remove_pod("default/p")
    assert "a" not in s.nodes


def test_terminal_and_pending_pods_hold_nothing() -> None:
    done = pod("done", "1", node_name="a")
    done["status"] = {"phase": "Failed"}
    s = snapshot([node("a")], [done, pod("pending", "1")])
    assert s.nodes["a"].requested == {} and s.nodes["a"].pods == {}


def test_assume_then_confirm_counts_once() -> None:
    s = snapshot([node("a")])
    info = PodInfo(pod("p", "1"))
    s.assume(info, "a")
    s.update_pod(pod("p", "1", node_name="a"))  # the bound version arrives from the informer
    assert s.nodes["a"].requested["cpu"] == 1000 and len(s.nodes["a"].pods) == 1


def test_affinity_indexes() -> None:
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    s = snapshot([node("a")], [pod("p", node_name="a", affinity=anti), pod("q", node_name="a")])
    assert list(s.nodes["a"].pods_with_required_anti_affinity) == ["default/p"]
    assert s.have_pods_with_affinity == 1
    s.remove_pod("default/p")
    assert s.have_pods_with_affinity == 0 and not s.nodes["a"].pods_with_affinity
