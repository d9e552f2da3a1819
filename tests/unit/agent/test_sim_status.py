"""The pure half of the simulated nodes: node/lease objects, pod statuses and the per-pod decision."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from skiff.agent import sim_status as s

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
T0S = "2026-01-02T03:04:05Z"


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def pod(
    *,
    phase: str = "Pending",
    restart: str = "Always",
    owner: str = "",
    annotations: dict[str, str] | None = None,
    deleting: int | None = None,
    start: str = "",
    container_statuses: bool = False,
    init: int = 0,
    sidecar: bool = False,
    gates: list[str] | None = None,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    md: dict[str, Any] = {"name": "p", "namespace": "default", "uid": "uid-1", "resourceVersion": "5"}
    if owner:
        md["ownerReferences"] = [
            {"apiVersion": "batch/v1", "kind": owner, "name": "j", "uid": "j1", "controller": True}
        ]
    if annotations:
        md["annotations"] = annotations
    if deleting is not None:
        md["deletionTimestamp"] = T0S
        md["deletionGracePeriodSeconds"] = deleting
    inits = [{"name": f"init{i}", "image": "busybox:1.36"} for i in range(init)]
    if sidecar:
        inits.append({"name": "side", "image": "envoy", "restartPolicy": "Always"})
    spec: dict[str, Any] = {
        "nodeName": "sim-node-0",
        "restartPolicy": restart,
        "containers": [
            {"name": "app", "image": "nginx:1.25"},
            {"name": "log", "image": "reg.io/a/b@sha256:ab"},
        ],
    }
    if inits:
        spec["initContainers"] = inits
    if gates:
        spec["readinessGates"] = [{"conditionType": g} for g in gates]
    status: dict[str, Any] = {"phase": phase, "qosClass": "BestEffort"}
    if start:
        status["startTime"] = start
    if container_statuses:
        status["containerStatuses"] = [{"name": "app"}]
    if conditions is not None:
        status["conditions"] = conditions
    return {"metadata": md, "spec": spec, "status": status}


# --- addresses and nodes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "ip", "cidr"),
    [
        pytest.param(0, "198.18.0.1", "10.128.0.0/24", id="first"),
        pytest.param(1, "198.18.0.2", "10.128.1.0/24", id="second"),
        pytest.param(255, "198.18.1.0", "10.128.255.0/24", id="crosses-octet"),
        pytest.param(999, "198.18.3.232", "10.131.231.0/24", id="thousandth"),
        pytest.param(32767, "198.18.128.0", "10.255.255.0/24", id="last-cidr"),
    ],
)
def test_node_addresses_are_unique_test_ranges(index: int, ip: str, cidr: str) -> None:
    assert s.node_internal_ip(index) == ip
    assert s.node_pod_cidr(index) == cidr


@pytest.mark.parametrize("index", [pytest.param(-1, id="negative"), pytest.param(32768, id="past-cidrs")])
def test_node_index_out_of_range(index: int) -> None:
    with pytest.raises(ValueError):
        s.node_pod_cidr(index)


@pytest.mark.parametrize(
    ("count", "zones", "expected"),
    [
        pytest.param(3, 3, ["zone-0", "zone-1", "zone-2"], id="one-per-zone"),
        pytest.param(5, 2, ["zone-0", "zone-1", "zone-0", "zone-1", "zone-0"], id="round-robin"),
        pytest.param(2, 0, ["zone-0", "zone-0"], id="zero-zones-means-one"),
    ],
)
def test_plan_nodes_spreads_zones(count: int, zones: int, expected: list[str]) -> None:
    plan = s.plan_nodes("n-", count, zones, "4", "8Gi", 50)
    assert [p.zone for p in plan] == expected
    assert [p.name for p in plan] == [f"n-{i}" for i in range(count)]
    assert len({p.internal_ip for p in plan}) == count
    assert len({p.pod_cidr for p in plan}) == count


def test_node_object_is_a_registered_ready_node() -> None:
    p = s.plan_nodes("sim-node-", 2, 3, "8", "32Gi", 110)[1]
    node = s.node_object(p, T0)
    assert node["metadata"]["name"] == "sim-node-1"
    assert node["metadata"]["labels"] == {
        "kubernetes.io/hostname": "sim-node-1",
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/zone": "zone-1",
        "node.kubernetes.io/instance-type": "skiff-sim",
        "type": "sim",
    }
    assert node["spec"] == {"podCIDR": "10.128.1.0/24", "podCIDRs": ["10.128.1.0/24"]}
    st = node["status"]
    assert st["capacity"] == {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    assert st["allocatable"] == st["capacity"] and st["allocatable"] is not st["capacity"]
    assert st["addresses"] == [
        {"type": "InternalIP", "address": "198.18.0.2"},
        {"type": "Hostname", "address": "sim-node-1"},
    ]
    info = st["nodeInfo"]
    assert (info["kubeletVersion"], info["containerRuntimeVersion"]) == ("v1.32.0-skiff-sim", "sim://1.0")
    assert (info["operatingSystem"], info["architecture"]) == ("linux", "amd64")
    assert info["osImage"]
    assert [(c["type"], c["status"], c["reason"]) for c in st["conditions"]] == [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID"),
        ("Ready", "True", "KubeletReady"),
    ]
    assert {c["lastHeartbeatTime"] for c in st["conditions"]} == {T0S}


@pytest.mark.parametrize(
    ("previous_ready", "transition"),
    [
        pytest.param(None, "2026-01-02T03:05:05Z", id="first-report"),
        pytest.param("True", "2020-01-01T00:00:00Z", id="unchanged-keeps-transition"),
        pytest.param("Unknown", "2026-01-02T03:05:05Z", id="back-from-unknown-flips"),
    ],
)
def test_node_conditions_heartbeat(previous_ready: str | None, transition: str) -> None:
    previous = None
    if previous_ready is not None:
        previous = [
            {
                "type": "Ready",
                "status": previous_ready,
                "lastTransitionTime": "2020-01-01T00:00:00Z",
                "lastHeartbeatTime": "2020-01-01T00:00:00Z",
                "reason": "NodeStatusUnknown",
            }
        ]
    frozen = copy.deepcopy(previous)
    conds = s.node_conditions(previous, at(60))
    ready = next(c for c in conds if c["type"] == "Ready")
    assert ready == {
        "type": "Ready",
        "status": "True",
        "lastHeartbeatTime": "2026-01-02T03:05:05Z",
        "lastTransitionTime": transition,
        "reason": "KubeletReady",
        "message": "kubelet is posting ready status",
    }
    assert previous == frozen


def test_lease_is_held_by_its_node_and_owned_by_it() -> None:
    lease = s.lease_object("sim-node-0", "node-uid", T0)
    assert lease["metadata"] == {
        "name": "sim-node-0",
        "namespace": "kube-node-lease",
        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "sim-node-0", "uid": "node-uid"}],
    }
    assert lease["spec"] == {
        "holderIdentity": "sim-node-0",
        "leaseDurationSeconds": 40,
        "renewTime": "2026-01-02T03:04:05.000000Z",
    }


def test_renewed_lease_keeps_resource_version_and_does_not_mutate() -> None:
    lease = s.lease_object("sim-node-0", "u", T0)
    lease["metadata"]["resourceVersion"] = "42"
    frozen = copy.deepcopy(lease)
    renewed = s.renewed_lease(lease, "sim-node-0", at(10.5))
    assert renewed["metadata"]["resourceVersion"] == "42"
    assert renewed["spec"]["renewTime"] == "2026-01-02T03:04:15.500000Z"
    assert lease == frozen


# --- pod IPs ---------------------------------------------------------------------------------------


def test_pod_ip_pool_unique_stable_and_reused_after_release() -> None:
    pool = s.PodIPPool("10.128.0.0/24")
    a, b = pool.allocate("a"), pool.allocate("b")
    assert (a, b) == ("10.128.0.2", "10.128.0.3")
    assert pool.allocate("a") == a
    pool.release("a")
    assert pool.allocate("c") == "10.128.0.4"  # round-robin: a released IP is not reused at once
    pool.claim("d", "10.128.0.5")
    assert pool.allocate("e") == "10.128.0.6"


def test_pod_ip_pool_exhausts_then_recovers() -> None:
    pool = s.PodIPPool("10.0.0.0/29")  # .2 … .6: five pod IPs
    ips = [pool.allocate(str(i)) for i in range(5)]
    assert len(set(ips)) == 5
    with pytest.raises(s.PoolExhausted):
        pool.allocate("x")
    pool.release("2")
    assert pool.allocate("x") == ips[2]


# --- run time ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, None, id="plain-pod-runs-forever"),
        pytest.param({"restart": "Never", "owner": "Job"}, 1.0, id="job-pod-default-1s"),
        pytest.param(
            {"restart": "OnFailure", "owner": "Job", "annotations": {s.RUN_SECONDS_ANNOTATION: "3.5"}},
            3.5,
            id="job-pod-annotated",
        ),
        pytest.param(
            {"restart": "Never", "annotations": {s.RUN_SECONDS_ANNOTATION: "0"}},
            0.0,
            id="annotated-never-pod",
        ),
        pytest.param({"restart": "Never"}, None, id="never-pod-without-annotation"),
        pytest.param(
            {"restart": "Always", "annotations": {s.RUN_SECONDS_ANNOTATION: "2"}},
            None,
            id="always-pod-ignores-annotation",
        ),
        pytest.param(
            {"restart": "Never", "owner": "Job", "annotations": {s.RUN_SECONDS_ANNOTATION: "soon"}},
            1.0,
            id="bad-annotation-job-default",
        ),
        pytest.param(
            {"restart": "Never", "annotations": {s.RUN_SECONDS_ANNOTATION: "-1"}},
            None,
            id="negative-annotation-ignored",
        ),
        pytest.param(
            {"restart": "Never", "annotations": {s.RUN_SECONDS_ANNOTATION: "nan"}},
            None,
            id="nan-annotation-ignored",
        ),
        pytest.param({"restart": "Never", "owner": "ReplicaSet"}, None, id="other-owner"),
    ],
)
def test_run_seconds(kwargs: dict[str, Any], expected: float | None) -> None:
    assert s.run_seconds(pod(**kwargs)) == expected


# --- decisions ---------------------------------------------------------------------------------------


READY = [{"type": "Ready", "status": "True"}]
RUNNING = {"phase": "Running", "start": T0S, "container_statuses": True, "conditions": READY}
GATE_TRUE = [{"type": "Ready", "status": "False"}, {"type": "example.com/lb", "status": "True"}]


@pytest.mark.parametrize(
    ("kwargs", "now", "seen", "expected"),
    [
        pytest.param({}, 0, None, s.Decision(s.START), id="pending-starts"),
        pytest.param(
            {"phase": "Running", "start": T0S},
            0,
            None,
            s.Decision(s.START),
            id="running-without-container-statuses-starts",
        ),
        pytest.param(RUNNING, 5, None, s.Decision(s.NOTHING), id="running-forever"),
        pytest.param(
            {**RUNNING, "restart": "Never", "owner": "Job"},
            0.5,
            None,
            s.Decision(s.COMPLETE, at(1)),
            id="job-completes-1s-after-start",
        ),
        pytest.param(
            {**RUNNING, "restart": "Never", "owner": "Job", "annotations": {s.RUN_SECONDS_ANNOTATION: "30"}},
            0,
            None,
            s.Decision(s.COMPLETE, at(30)),
            id="annotated-run-time",
        ),
        pytest.param(
            {"phase": "Succeeded", "restart": "Never", "owner": "Job"},
            9,
            None,
            s.Decision(s.NOTHING),
            id="succeeded-stays",
        ),
        pytest.param({"phase": "Failed"}, 9, None, s.Decision(s.NOTHING), id="failed-stays"),
        pytest.param(
            {**RUNNING, "deleting": 30},
            2,
            at(2),
            s.Decision(s.KILL, at(3)),
            id="deleting-running-killed-after-1s",
        ),
        pytest.param(
            {**RUNNING, "deleting": 0}, 2, at(2), s.Decision(s.KILL, at(2)), id="grace-zero-at-once"
        ),
        pytest.param({"deleting": 30}, 2, None, s.Decision(s.KILL, at(3)), id="deleting-pending-seen-now"),
        pytest.param(
            {"phase": "Failed", "deleting": 30},
            4,
            at(2),
            s.Decision(s.DELETE, at(3)),
            id="deleting-terminal-confirmed",
        ),
    ],
)
def test_decide(kwargs: dict[str, Any], now: float, seen: dt.datetime | None, expected: s.Decision) -> None:
    p = pod(**kwargs)
    frozen = copy.deepcopy(p)
    d = s.decide(p, at(now), seen)
    assert d == expected
    assert p == frozen


@pytest.mark.parametrize(
    ("decision", "now", "due"),
    [
        pytest.param(s.Decision(s.START), 0, True, id="no-time-is-now"),
        pytest.param(s.Decision(s.COMPLETE, at(1)), 0.5, False, id="future"),
        pytest.param(s.Decision(s.COMPLETE, at(1)), 1, True, id="exactly-due"),
    ],
)
def test_decision_due(decision: s.Decision, now: float, due: bool) -> None:
    assert decision.due(at(now)) is due


# --- statuses ----------------------------------------------------------------------------------------


def cond(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c.get("reason", "")) for c in status["conditions"]}


def test_running_status_is_running_and_ready() -> None:
    p = pod(init=1)
    frozen = copy.deepcopy(p)
    st = s.running_status(p, "198.18.0.1", "10.128.0.2", T0)
    assert p == frozen
    assert st["phase"] == "Running"
    assert (st["hostIP"], st["podIP"], st["startTime"]) == ("198.18.0.1", "10.128.0.2", T0S)
    assert st["hostIPs"] == [{"ip": "198.18.0.1"}] and st["podIPs"] == [{"ip": "10.128.0.2"}]
    assert st["qosClass"] == "BestEffort"
    assert [c["type"] for c in st["conditions"]] == [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    assert {c["status"] for c in st["conditions"]} == {"True"}
    app, log = st["containerStatuses"]
    assert app == {
        "name": "app",
        "state": {"running": {"startedAt": T0S}},
        "lastState": {},
        "ready": True,
        "restartCount": 0,
        "image": "nginx:1.25",
        "imageID": app["imageID"],
        "containerID": app["containerID"],
        "started": True,
    }
    assert app["imageID"].startswith("nginx@sha256:") and len(app["imageID"]) == len("nginx@sha256:") + 64
    assert log["imageID"] == "reg.io/a/b@sha256:ab"
    assert app["containerID"].startswith("sim://") and app["containerID"] != log["containerID"]
    (init,) = st["initContainerStatuses"]
    assert init["state"]["terminated"]["reason"] == "Completed"
    assert init["state"]["terminated"]["exitCode"] == 0
    assert (init["ready"], init["started"]) == (True, False)


@pytest.mark.parametrize(
    ("kwargs", "ready", "message"),
    [
        pytest.param({}, ("True", ""), None, id="no-gates"),
        pytest.param(
            {"gates": ["example.com/lb"]},
            ("False", "ReadinessGatesNotReady"),
            'corresponding condition of pod readiness gate "example.com/lb" does not exist.',
            id="gate-unset",
        ),
        pytest.param(
            {"gates": ["example.com/lb"], "conditions": [{"type": "example.com/lb", "status": "False"}]},
            ("False", "ReadinessGatesNotReady"),
            'the status of pod readiness gate "example.com/lb" is not "True", but False',
            id="gate-false",
        ),
        pytest.param(
            {"gates": ["example.com/lb"], "conditions": [{"type": "example.com/lb", "status": "True"}]},
            ("True", ""),
            None,
            id="gate-true",
        ),
    ],
)
def test_running_status_respects_readiness_gates(
    kwargs: dict[str, Any], ready: tuple[str, str], message: str | None
) -> None:
    st = s.running_status(pod(**kwargs), "h", "p", T0)
    assert cond(st)["Ready"] == ready
    assert next(c for c in st["conditions"] if c["type"] == "Ready").get("message") == message
    assert cond(st)["ContainersReady"] == ("True", "")


def test_running_status_keeps_start_time_scheduler_condition_and_foreign_conditions() -> None:
    scheduled = {
        "type": "PodScheduled",
        "status": "True",
        "lastProbeTime": None,
        "lastTransitionTime": "2020-01-01T00:00:00Z",
    }
    foreign = {"type": "example.com/x", "status": "False"}
    p = pod(start="2025-12-31T00:00:00Z", conditions=[foreign, scheduled])
    st = s.running_status(p, "h", "p", T0)
    assert st["startTime"] == "2025-12-31T00:00:00Z"
    by_type = {c["type"]: c for c in st["conditions"]}
    assert by_type["PodScheduled"]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert st["conditions"][-1] == foreign


def test_running_status_sidecar_keeps_running() -> None:
    st = s.running_status(pod(init=1, sidecar=True), "h", "p", T0)
    first, side = st["initContainerStatuses"]
    assert "terminated" in first["state"]
    assert side["state"] == {"running": {"startedAt": T0S}}
    assert (side["ready"], side["started"]) == (True, True)


@pytest.mark.parametrize(
    ("succeeded", "phase", "exit_code", "reason", "ready_reason"),
    [
        pytest.param(True, "Succeeded", 0, "Completed", "PodCompleted", id="completed"),
        pytest.param(False, "Failed", 137, "Error", "PodFailed", id="killed-on-delete"),
    ],
)
def test_terminated_status(
    succeeded: bool, phase: str, exit_code: int, reason: str, ready_reason: str
) -> None:
    running = pod(init=1, sidecar=True, restart="Never", owner="Job")
    running["status"] = s.running_status(running, "198.18.0.1", "10.128.0.2", T0)
    st = s.terminated_status(running, "198.18.0.1", "10.128.0.2", at(2), succeeded=succeeded)
    assert st["phase"] == phase
    assert (st["podIP"], st["startTime"]) == ("10.128.0.2", T0S)
    for cs in st["containerStatuses"]:
        term = cs["state"]["terminated"]
        assert (term["exitCode"], term["reason"]) == (exit_code, reason)
        assert (term["startedAt"], term["finishedAt"]) == (T0S, "2026-01-02T03:04:07Z")
        assert (cs["ready"], cs["started"]) == (False, False)
        assert term["containerID"] == cs["containerID"]
    init, side = st["initContainerStatuses"]
    assert init["state"]["terminated"]["reason"] == "Completed"
    assert side["state"]["terminated"]["exitCode"] == exit_code
    c = cond(st)
    assert c["Ready"] == ("False", ready_reason)
    assert c["ContainersReady"] == ("False", ready_reason)
    assert c["PodReadyToStartContainers"] == ("False", "")
    assert c["Initialized"][0] == "True" and c["PodScheduled"] == ("True", "")
    scheduled = next(x for x in st["conditions"] if x["type"] == "PodScheduled")
    assert scheduled["lastTransitionTime"] == T0S  # unchanged since the pod started


def test_status_patch_carries_uid() -> None:
    p = pod()
    assert s.status_patch(p, {"phase": "Running"}) == {
        "status": {"phase": "Running"},
        "metadata": {"uid": "uid-1"},
    }


def test_simulated_nodes_advertise_no_agent_endpoint() -> None:
    """Their addresses are never dialled: the proxy and the metrics scraper see no endpoint."""
    from skiff.apiserver.proxy import agent_endpoint

    p = s.plan_nodes("sim-", 1, 1, "8", "32Gi", 110)[0]
    node = s.node_object(p, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert agent_endpoint(node) is None
