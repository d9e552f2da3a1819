"""Each plugin's filter and score against small hand-built nodes and pods (upstream reasons and codes)."""

from __future__ import annotations

from typing import Any

import pytest
from sched_helpers import node, pod, snapshot, taint

from skiff.scheduler.framework import Code, CycleState, Status
from skiff.scheduler.plugins.inter_pod_affinity import InterPodAffinity
from skiff.scheduler.plugins.node_affinity import NodeAffinity
from skiff.scheduler.plugins.node_name import NodeName
from skiff.scheduler.plugins.node_resources_balanced_allocation import NodeResourcesBalancedAllocation
from skiff.scheduler.plugins.node_resources_fit import NodeResourcesFit
from skiff.scheduler.plugins.node_unschedulable import NodeUnschedulable
from skiff.scheduler.plugins.pod_topology_spread import PodTopologySpread
from skiff.scheduler.plugins.taint_toleration import TaintToleration
from skiff.scheduler.snapshot import PodInfo, Snapshot, pod_requests

Obj = dict[str, Any]
OK = (Code.SUCCESS, ())
U = Code.UNSCHEDULABLE
UU = Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def run_filter(plugin: Any, p: Obj, s: Snapshot, node_name: str) -> tuple[Code, tuple[str, ...]]:
    state = CycleState()
    info = PodInfo(p)
    if hasattr(plugin, "pre_filter"):
        st: Status = plugin.pre_filter(state, info, s)
        if st.code == Code.SKIP:
            return OK
        assert st.ok
    res = plugin.filter(state, info, s.nodes[node_name])
    return res.code, res.reasons


# ---- pod requests --------------------------------------------------------------------------------


def _c(cpu: str, restart: str | None = None) -> Obj:
    c: Obj = {"name": "x", "resources": {"requests": {"cpu": cpu}}}
    if restart:
        c["restartPolicy"] = restart
    return c


@pytest.mark.parametrize(
    "spec,want",
    [
        pytest.param({"containers": [_c("100m"), _c("200m")]}, 300, id="containers-sum"),
        pytest.param(
            {"containers": [_c("100m")], "initContainers": [_c("1"), _c("500m")]}, 1000, id="init-max-wins"
        ),
        pytest.param({"containers": [_c("2")], "initContainers": [_c("1")]}, 2000, id="containers-sum-wins"),
        pytest.param(
            {"containers": [_c("1")], "initContainers": [_c("500m", "Always"), _c("1")]},
            1500,
            id="sidecar-adds-to-sum-and-later-init",
        ),
        pytest.param({"containers": [_c("100m")], "overhead": {"cpu": "250m"}}, 350, id="overhead"),
        pytest.param({"containers": [{"name": "x"}]}, 0, id="no-requests"),
    ],
)
def test_pod_requests_cpu(spec: Obj, want: int) -> None:
    assert pod_requests(spec).get("cpu", 0) == want


def test_non_zero_requests_default_for_scoring() -> None:
    r = pod_requests({"containers": [{"name": "x"}, _c("50m")]}, non_zero=True)
    assert r == {"cpu": 150, "memory": 2 * 200 * 1024 * 1024}


# ---- NodeName / NodeUnschedulable ----------------------------------------------------------------


@pytest.mark.parametrize(
    "p,want",
    [
        pytest.param(pod("p"), OK, id="no-node-name"),
        pytest.param(pod("p", node_name="n1"), OK, id="same-node"),
        pytest.param(
            pod("p", node_name="n2"), (UU, ("node(s) didn't match the requested node name",)), id="other"
        ),
    ],
)
def test_node_name(p: Obj, want: Any) -> None:
    assert run_filter(NodeName(), p, snapshot([node("n1")]), "n1") == want


@pytest.mark.parametrize(
    "cordoned,tolerations,want",
    [
        pytest.param(False, [], OK, id="schedulable"),
        pytest.param(True, [], (UU, ("node(s) were unschedulable",)), id="cordoned"),
        pytest.param(
            True,
            [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}],
            OK,
            id="cordoned-tolerated",
        ),
        pytest.param(True, [{"operator": "Exists"}], OK, id="tolerate-everything"),
    ],
)
def test_node_unschedulable(cordoned: bool, tolerations: list[Obj], want: Any) -> None:
    s = snapshot([node("n1", unschedulable=cordoned)])
    assert run_filter(NodeUnschedulable(), pod("p", tolerations=tolerations), s, "n1") == want


# ---- NodeResourcesFit ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "existing,p,want",
    [
        pytest.param([], pod("p", "1", "1Gi"), OK, id="fits"),
        pytest.param(
            [pod("a", "3500m", node_name="n1")], pod("p", "1"), (U, ("Insufficient cpu",)), id="cpu-used-up"
        ),
        pytest.param([], pod("p", "5"), (UU, ("Insufficient cpu",)), id="cpu-above-allocatable-unresolvable"),
        pytest.param(
            [pod("a", memory="7Gi", node_name="n1")],
            pod("p", "1", "2Gi"),
            (U, ("Insufficient memory",)),
            id="memory",
        ),
        pytest.param(
            [pod("a", "4", "8Gi", node_name="n1")],
            pod("p", "1", "1Gi"),
            (U, ("Insufficient cpu", "Insufficient memory")),
            id="cpu-and-memory",
        ),
        pytest.param(
            [pod("a", node_name="n1"), pod("b", node_name="n1")],
            pod("p"),
            (U, ("Too many pods",)),
            id="too-many-pods-even-without-requests",
        ),
        pytest.param(
            [pod("a", node_name="n1"), pod("b", node_name="n1")],
            pod("p", "5"),
            (UU, ("Too many pods", "Insufficient cpu")),
            id="pods-then-cpu",
        ),
        pytest.param(
            [],
            pod("p", resources_override={"example.com/gpu": "1"}),
            (UU, ("Insufficient example.com/gpu",)),
            id="extended-resource-absent",
        ),
        pytest.param(
            [pod("a", "3", node_name="n1", phase_succeeded=True)],
            pod("p", "2"),
            OK,
            id="terminal-pods-hold-nothing",
        ),
    ],
)
def test_node_resources_fit(existing: list[Obj], p: Obj, want: Any) -> None:
    for e in existing:
        if e["spec"].pop("phase_succeeded", False):
            e["status"] = {"phase": "Succeeded"}
    ext = p["spec"].pop("resources_override", None)
    if ext:
        p["spec"]["containers"][0]["resources"] = {"requests": ext}
    s = snapshot([node("n1", cpu="4", memory="8Gi", pods="2")], existing)
    assert run_filter(NodeResourcesFit(), p, s, "n1") == want


def test_extended_resource_fits_when_offered() -> None:
    p = pod("p")
    p["spec"]["containers"][0]["resources"] = {"requests": {"example.com/gpu": "2"}}
    s = snapshot([node("n1", extended={"example.com/gpu": "2"})])
    assert run_filter(NodeResourcesFit(), p, s, "n1") == OK


@pytest.mark.parametrize(
    "alloc_cpu,used_cpu,p,want",
    [
        pytest.param("4", None, pod("p", "1", "2Gi"), (75 + 75) // 2, id="quarter-used"),
        pytest.param("4", "2", pod("p", "1", "2Gi"), (25 + 75) // 2, id="existing-requests-count"),
        pytest.param(
            "4",
            None,
            pod("p"),
            ((4000 - 100) * 100 // 4000 + (8192 - 200) * 100 // 8192) // 2,
            id="defaults-100m-200Mi",
        ),
        pytest.param("1", None, pod("p", "2", "2Gi"), (0 + 75) // 2, id="over-allocatable-scores-zero"),
    ],
)
def test_least_allocated_score(alloc_cpu: str, used_cpu: str | None, p: Obj, want: int) -> None:
    existing = [pod("a", used_cpu, "0", node_name="n1")] if used_cpu else []
    s = snapshot([node("n1", cpu=alloc_cpu, memory="8Gi")], existing)
    assert NodeResourcesFit().score(CycleState(), PodInfo(p), s.nodes["n1"]) == want


@pytest.mark.parametrize(
    "p,want",
    [
        pytest.param(pod("p", "2", "4Gi"), 100, id="equal-fractions"),
        pytest.param(pod("p", "4", "0"), 50, id="cpu-full-memory-empty"),
        pytest.param(pod("p", "1", "6Gi"), 75, id="quarter-vs-three-quarters"),
    ],
)
def test_balanced_allocation_score(p: Obj, want: int) -> None:
    s = snapshot([node("n1", cpu="4", memory="8Gi")])
    assert NodeResourcesBalancedAllocation().score(CycleState(), PodInfo(p), s.nodes["n1"]) == want


# ---- TaintToleration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "taints,tolerations,want",
    [
        pytest.param([], [], OK, id="no-taints"),
        pytest.param(
            [taint("k", "v")], [], (UU, ("node(s) had untolerated taint {k: v}",)), id="untolerated"
        ),
        pytest.param(
            [taint("k", "v", "NoExecute")],
            [],
            (UU, ("node(s) had untolerated taint {k: v}",)),
            id="no-execute",
        ),
        pytest.param([taint("k", "v", "PreferNoSchedule")], [], OK, id="prefer-is-not-a-filter"),
        pytest.param([taint("k", "v")], [{"key": "k", "value": "v"}], OK, id="equal-default-operator"),
        pytest.param(
            [taint("k", "v")],
            [{"key": "k", "value": "w"}],
            (UU, ("node(s) had untolerated taint {k: v}",)),
            id="value-mismatch",
        ),
        pytest.param([taint("k", "v")], [{"key": "k", "operator": "Exists"}], OK, id="exists"),
        pytest.param(
            [taint("k", "v")],
            [{"key": "k", "operator": "Exists", "effect": "NoExecute"}],
            (UU, ("node(s) had untolerated taint {k: v}",)),
            id="effect-mismatch",
        ),
        pytest.param(
            [taint("a"), taint("b", "x")],
            [{"key": "a", "operator": "Exists"}],
            (UU, ("node(s) had untolerated taint {b: x}",)),
            id="first-untolerated-reported",
        ),
        pytest.param(
            [taint("node-role.kubernetes.io/control-plane")],
            [],
            (UU, ("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",)),
            id="empty-value",
        ),
    ],
)
def test_taint_toleration_filter(taints: list[Obj], tolerations: list[Obj], want: Any) -> None:
    s = snapshot([node("n1", taints=taints)])
    assert run_filter(TaintToleration(), pod("p", tolerations=tolerations), s, "n1") == want


@pytest.mark.parametrize(
    "raw,want",
    [
        pytest.param([0, 1, 2], [100, 50, 0], id="fewer-intolerable-is-better"),
        pytest.param([0, 0], [100, 100], id="none-tainted"),
    ],
)
def test_taint_toleration_normalize(raw: list[int], want: list[int]) -> None:
    TaintToleration().normalize(CycleState(), PodInfo(pod("p")), raw)
    assert raw == want


def test_taint_toleration_score_counts_prefer_no_schedule() -> None:
    s = snapshot(
        [
            node(
                "n1",
                taints=[
                    taint("a", effect="PreferNoSchedule"),
                    taint("b", effect="PreferNoSchedule"),
                    taint("c"),
                ],
            )
        ]
    )
    p = PodInfo(pod("p", tolerations=[{"key": "a", "operator": "Exists"}]))
    assert TaintToleration().score(CycleState(), p, s.nodes["n1"]) == 1


# ---- NodeAffinity --------------------------------------------------------------------------------


def required(*terms: Obj) -> Obj:
    return {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}
    }


def expr(key: str, op: str, *values: str) -> Obj:
    return {"matchExpressions": [{"key": key, "operator": op, "values": list(values)}]}


NA_FAIL = (UU, ("node(s) didn't match Pod's node affinity/selector",))


@pytest.mark.parametrize(
    "spec,want",
    [
        pytest.param({}, OK, id="unconstrained"),
        pytest.param({"nodeSelector": {"zone": "a"}}, OK, id="node-selector-match"),
        pytest.param({"nodeSelector": {"zone": "b"}}, NA_FAIL, id="node-selector-mismatch"),
        pytest.param({"affinity": required(expr("zone", "In", "a", "b"))}, OK, id="in"),
        pytest.param({"affinity": required(expr("zone", "NotIn", "a"))}, NA_FAIL, id="not-in"),
        pytest.param({"affinity": required(expr("gpu", "DoesNotExist"))}, OK, id="does-not-exist"),
        pytest.param({"affinity": required(expr("cores", "Gt", "8"))}, OK, id="gt"),
        pytest.param({"affinity": required(expr("cores", "Lt", "8"))}, NA_FAIL, id="lt"),
        pytest.param(
            {"affinity": required(expr("zone", "In", "b"), expr("zone", "In", "a"))}, OK, id="terms-are-ored"
        ),
        pytest.param(
            {
                "affinity": required(
                    {
                        "matchExpressions": [
                            {"key": "zone", "operator": "In", "values": ["a"]},
                            {"key": "cores", "operator": "Lt", "values": ["2"]},
                        ]
                    }
                )
            },
            NA_FAIL,
            id="expressions-are-anded",
        ),
        pytest.param({"affinity": required({})}, NA_FAIL, id="empty-term-matches-nothing"),
        pytest.param(
            {
                "affinity": required(
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
                )
            },
            OK,
            id="match-fields-name",
        ),
        pytest.param(
            {"nodeSelector": {"zone": "b"}, "affinity": required(expr("zone", "In", "a"))},
            NA_FAIL,
            id="selector-and-affinity-both-needed",
        ),
    ],
)
def test_node_affinity_filter(spec: Obj, want: Any) -> None:
    s = snapshot([node("n1", labels={"zone": "a", "cores": "16"})])
    assert run_filter(NodeAffinity(), pod("p", **spec), s, "n1") == want


def test_node_affinity_preferred_score_normalized() -> None:
    pref = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": expr("zone", "In", "a")},
                {"weight": 30, "preference": expr("disk", "In", "ssd")},
            ]
        }
    }
    s = snapshot(
        [node("n1", labels={"zone": "a"}), node("n2", labels={"zone": "a", "disk": "ssd"}), node("n3")]
    )
    pl, state, info = NodeAffinity(), CycleState(), PodInfo(pod("p", affinity=pref))
    nodes = s.node_list()
    assert pl.pre_score(state, info, s, nodes).ok
    raw = [pl.score(state, info, n) for n in nodes]
    assert raw == [10, 40, 0]
    pl.normalize(state, info, raw)
    assert raw == [25, 100, 0]


# ---- InterPodAffinity ----------------------------------------------------------------------------

ZONES = [
    node("n1", labels={"zone": "a"}),
    node("n2", labels={"zone": "a"}),
    node("n3", labels={"zone": "b"}),
    node("n4"),
]


def term(labels: dict[str, str], key: str = "zone", **extra: Any) -> Obj:
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key, **extra}


def pod_aff(*terms: Obj) -> Obj:
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def pod_anti(*terms: Obj) -> Obj:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


AFF = "node(s) didn't match pod affinity rules"
ANTI = "node(s) didn't match pod anti-affinity rules"
EXISTING = "node(s) didn't satisfy existing pods anti-affinity rules"
DB_ON_N1 = pod("db", labels={"app": "db"}, node_name="n1")


@pytest.mark.parametrize(
    "existing,p,on,want",
    [
        pytest.param(
            [DB_ON_N1], pod("web", affinity=pod_aff(term({"app": "db"}))), "n2", OK, id="affinity-same-zone"
        ),
        pytest.param(
            [DB_ON_N1],
            pod("web", affinity=pod_aff(term({"app": "db"}))),
            "n3",
            (UU, (AFF,)),
            id="affinity-other-zone",
        ),
        pytest.param(
            [DB_ON_N1],
            pod("web", affinity=pod_aff(term({"app": "db"}))),
            "n4",
            (UU, (AFF,)),
            id="affinity-node-without-topology-label",
        ),
        pytest.param(
            [],
            pod("web", labels={"app": "web"}, affinity=pod_aff(term({"app": "web"}))),
            "n3",
            OK,
            id="first-pod-of-self-affine-group",
        ),
        pytest.param(
            [],
            pod("web", labels={"app": "x"}, affinity=pod_aff(term({"app": "web"}))),
            "n3",
            (UU, (AFF,)),
            id="no-match-and-not-self-affine",
        ),
        pytest.param(
            [pod("db", ns="other", labels={"app": "db"}, node_name="n1")],
            pod("web", affinity=pod_aff(term({"app": "db"}))),
            "n2",
            (UU, (AFF,)),
            id="affinity-namespace-defaults-to-own",
        ),
        pytest.param(
            [pod("db", ns="other", labels={"app": "db"}, node_name="n1")],
            pod("web", affinity=pod_aff(term({"app": "db"}, namespaces=["other"]))),
            "n2",
            OK,
            id="affinity-explicit-namespaces",
        ),
        pytest.param(
            [DB_ON_N1],
            pod("web", affinity=pod_anti(term({"app": "db"}))),
            "n2",
            (U, (ANTI,)),
            id="anti-affinity-same-zone",
        ),
        pytest.param(
            [DB_ON_N1],
            pod("web", affinity=pod_anti(term({"app": "db"}))),
            "n3",
            OK,
            id="anti-affinity-other-zone",
        ),
        pytest.param(
            [DB_ON_N1],
            pod("web", affinity=pod_anti(term({"app": "db"}, "kubernetes.io/hostname"))),
            "n2",
            OK,
            id="anti-affinity-by-hostname",
        ),
        pytest.param(
            [pod("db", labels={"app": "db"}, node_name="n1", affinity=pod_anti(term({"app": "web"})))],
            pod("web", labels={"app": "web"}),
            "n2",
            (U, (EXISTING,)),
            id="existing-anti-affinity",
        ),
        pytest.param(
            [pod("db", labels={"app": "db"}, node_name="n1", affinity=pod_anti(term({"app": "web"})))],
            pod("web", labels={"app": "web"}),
            "n3",
            OK,
            id="existing-anti-affinity-other-zone",
        ),
    ],
)
def test_inter_pod_affinity_filter(existing: list[Obj], p: Obj, on: str, want: Any) -> None:
    assert run_filter(InterPodAffinity(), p, snapshot(ZONES, existing), on) == want


def test_inter_pod_affinity_preferred_scores() -> None:
    pref = {
        "podAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "podAffinityTerm": term({"app": "db"})}
            ]
        },
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": term({"app": "web"}, "kubernetes.io/hostname")}
            ]
        },
    }
    s = snapshot(ZONES, [DB_ON_N1, pod("w1", labels={"app": "web"}, node_name="n2")])
    pl, state, info = (
        InterPodAffinity(),
        CycleState(),
        PodInfo(pod("web", labels={"app": "web"}, affinity=pref)),
    )
    nodes = s.node_list()
    assert pl.pre_score(state, info, s, nodes).ok
    raw = [pl.score(state, info, n) for n in nodes]
    assert raw == [50, -50, 0, 0]
    pl.normalize(state, info, raw)
    assert raw == [100, 0, 50, 50]


# ---- PodTopologySpread ---------------------------------------------------------------------------


def spread(max_skew: int = 1, key: str = "zone", when: str = "DoNotSchedule", **extra: Any) -> Obj:
    return {
        "maxSkew": max_skew,
        "topologyKey": key,
        "whenUnsatisfiable": when,
        "labelSelector": {"matchLabels": {"app": "web"}},
        **extra,
    }


def web(name: str, on: str = "", **spec: Any) -> Obj:
    return pod(name, labels={"app": "web"}, node_name=on, **spec)


SPREAD_FAIL = (U, ("node(s) didn't match pod topology spread constraints",))


@pytest.mark.parametrize(
    "existing,constraint,on,want",
    [
        pytest.param([web("w1", "n1")], spread(), "n2", SPREAD_FAIL, id="skew-2-in-zone-a"),
        pytest.param([web("w1", "n1")], spread(), "n3", OK, id="zone-b-balances"),
        pytest.param([web("w1", "n1")], spread(2), "n2", OK, id="max-skew-2"),
        pytest.param(
            [],
            spread(),
            "n4",
            (UU, ("node(s) didn't match pod topology spread constraints (missing required label)",)),
            id="node-without-key",
        ),
        pytest.param([web("w1", "n1"), web("w2", "n3")], spread(), "n2", OK, id="balanced"),
        pytest.param(
            [web("w1", "n3")], spread(min_domains=3), "n3", SPREAD_FAIL, id="min-domains-forces-min-zero"
        ),
        pytest.param(
            [web("w1", "n3")], spread(when="ScheduleAnyway"), "n3", OK, id="schedule-anyway-never-filters"
        ),
        pytest.param(
            [pod("o1", ns="other", labels={"app": "web"}, node_name="n1")],
            spread(),
            "n2",
            OK,
            id="other-namespaces-not-counted",
        ),
    ],
)
def test_pod_topology_spread_filter(existing: list[Obj], constraint: Obj, on: str, want: Any) -> None:
    p = web("new", topologySpreadConstraints=[constraint])
    assert run_filter(PodTopologySpread(), p, snapshot(ZONES, existing), on) == want


def test_pod_topology_spread_honors_node_affinity() -> None:
    # zone b is excluded by the pod's node selector, so it is not a domain: min over {a} only.
    nodes = [node("n1", labels={"zone": "a", "pool": "x"}), node("n3", labels={"zone": "b"})]
    p = web("new", topologySpreadConstraints=[spread()], nodeSelector={"pool": "x"})
    assert run_filter(PodTopologySpread(), p, snapshot(nodes, [web("w1", "n1")]), "n1") == OK


def test_pod_topology_spread_score_prefers_emptier_domain() -> None:
    s = snapshot(ZONES[:3], [web("w1", "n1"), web("w2", "n2")])
    pl, state = PodTopologySpread(), CycleState()
    info = PodInfo(web("new", topologySpreadConstraints=[spread(when="ScheduleAnyway")]))
    nodes = s.node_list()
    assert pl.pre_score(state, info, s, nodes).ok
    raw = [pl.score(state, info, n) for n in nodes]
    assert raw[0] == raw[1] > raw[2]
    pl.normalize(state, info, raw)
    assert raw[2] == 100 and raw[0] < 100
