"""Pod status generation (`generateAPIPodStatus`, `getPhase`, the kubelet's conditions) and the status patch."""

from __future__ import annotations

import datetime as dt

import pytest

from skiff.agent.podactions import Waiting
from skiff.agent.podstatus import pod_status, status_patch, two_way_patch
from skiff.agent.runtime.interface import (
    ANNOTATION_RESTART_COUNT,
    LABEL_CONTAINER_NAME,
    ContainerState,
    ContainerStatus,
    SandboxState,
    SandboxStatus,
)
from skiff.api.meta import Obj

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
T0 = int(dt.datetime(2026, 1, 2, 3, 0, 0, tzinfo=dt.UTC).timestamp() * 1e9)
SANDBOX = SandboxStatus(id="s1", name="web", namespace="default", uid="u1", attempt=0, state=SandboxState.READY,
                        ip="10.88.0.2")


def make_pod(restart: str = "Always", apps: tuple[str, ...] = ("app",), inits: tuple[str, ...] = (),
             status: Obj | None = None, gates: tuple[str, ...] = ()) -> Obj:
    spec: Obj = {"restartPolicy": restart, "containers": [{"name": n, "image": "img:1"} for n in apps]}
    if inits:
        spec["initContainers"] = [{"name": n, "image": "img:1"} for n in inits]
    if gates:
        spec["readinessGates"] = [{"conditionType": g} for g in gates]
    return {"metadata": {"name": "web", "namespace": "default", "uid": "u1"}, "spec": spec,
            "status": status or {"phase": "Pending", "qosClass": "BestEffort",
                                 "conditions": [{"type": "PodScheduled", "status": "True"}]}}


def ctr(name: str, state: str = "running", exit_code: int = 0, restarts: int = 0, reason: str = "") -> ContainerStatus:
    return ContainerStatus(id=f"{name}-{restarts}", sandbox_id="s1", name=name, attempt=restarts,
                           state=ContainerState[state.upper()], image="img:1", image_ref="sha256:abc",
                           created_at_ns=T0 + restarts, started_at_ns=T0 + restarts * 10**9,
                           finished_at_ns=T0 + (restarts + 1) * 10**9 if state == "exited" else 0,
                           exit_code=exit_code, reason=reason, labels={LABEL_CONTAINER_NAME: name},
                           annotations={ANNOTATION_RESTART_COUNT: str(restarts)})


def status_of(pod: Obj, containers: list[ContainerStatus], *, waiting: dict[str, Waiting] | None = None,
              ready: bool = True, sandbox: SandboxStatus | None = SANDBOX, terminal: bool = False) -> Obj:
    return pod_status(pod, sandbox, containers, ready=lambda _n: ready, started=lambda _n: True,
                      waiting=waiting or {}, host_ip="192.0.2.10", now=NOW, terminal=terminal)


def cond(status: Obj, type_: str) -> tuple[str, str]:
    c = next(c for c in status["conditions"] if c["type"] == type_)
    return c["status"], c.get("reason", "")


CRASH = {"app": Waiting("CrashLoopBackOff", "back-off 10s restarting failed container=app pod=web_default(u1)")}


@pytest.mark.parametrize(
    ("pod", "containers", "waiting", "phase"),
    [
        pytest.param(make_pod(), [], {}, "Pending", id="nothing-started"),
        pytest.param(make_pod(), [ctr("app")], {}, "Running", id="running"),
        pytest.param(make_pod(), [ctr("app", "exited", 1)], CRASH, "Running", id="always-crash-looping"),
        pytest.param(make_pod(), [ctr("app", "exited", 0)], {}, "Running", id="always-exited-restarting"),
        pytest.param(make_pod("Never"), [ctr("app", "exited", 0)], {}, "Succeeded", id="never-exit-0"),
        pytest.param(make_pod("Never"), [ctr("app", "exited", 2)], {}, "Failed", id="never-exit-2"),
        pytest.param(make_pod("OnFailure"), [ctr("app", "exited", 0)], {}, "Succeeded", id="onfailure-exit-0"),
        pytest.param(make_pod("OnFailure"), [ctr("app", "exited", 2)], {}, "Running", id="onfailure-restarting"),
        pytest.param(make_pod(apps=("a", "b")), [ctr("a")], {}, "Pending", id="one-still-creating"),
        pytest.param(make_pod(inits=("init",)), [ctr("init")], {}, "Pending", id="initializing"),
        pytest.param(make_pod("Never", inits=("init",)), [ctr("init", "exited", 1)], {}, "Failed",
                     id="init-failed-never"),
        pytest.param(make_pod(inits=("init",)), [ctr("init", "exited", 1)],
                     {"init": Waiting("CrashLoopBackOff", "")}, "Pending", id="init-failed-retrying"),
        pytest.param(make_pod(inits=("init",)), [ctr("init", "exited", 0), ctr("app")], {}, "Running",
                     id="initialized-running"),
        pytest.param(make_pod(status={"phase": "Succeeded"}), [], {}, "Succeeded", id="terminal-phase-kept"),
    ],
)
def test_phase(pod: Obj, containers: list[ContainerStatus], waiting: dict[str, Waiting], phase: str) -> None:
    assert status_of(pod, containers, waiting=waiting)["phase"] == phase


@pytest.mark.parametrize(
    ("containers", "waiting", "state", "last_state"),
    [
        pytest.param([], {}, {"waiting": {"reason": "ContainerCreating"}}, {}, id="not-created"),
        pytest.param([], {"app": Waiting("ErrImagePull", 'Failed to pull image "img:1": boom')},
                     {"waiting": {"reason": "ErrImagePull", "message": 'Failed to pull image "img:1": boom'}}, {},
                     id="pull-error"),
        pytest.param([ctr("app")], {}, {"running": {"startedAt": "2026-01-02T03:00:00Z"}}, {}, id="running"),
        pytest.param([ctr("app", "exited", 1, restarts=1), ctr("app", "exited", 1)], CRASH,
                     {"waiting": {"reason": "CrashLoopBackOff", "message": CRASH["app"].message}},
                     {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": "2026-01-02T03:00:01Z",
                                     "finishedAt": "2026-01-02T03:00:02Z", "containerID": "containerd://app-1"}},
                     id="crash-loop"),
        pytest.param([ctr("app", restarts=1), ctr("app", "exited", 137, reason="OOMKilled")], {},
                     {"running": {"startedAt": "2026-01-02T03:00:01Z"}},
                     {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": "2026-01-02T03:00:00Z",
                                     "finishedAt": "2026-01-02T03:00:01Z", "containerID": "containerd://app-0"}},
                     id="restarted-after-oom"),
        pytest.param([ctr("app", "exited", 0)], {},
                     {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "2026-01-02T03:00:00Z",
                                     "finishedAt": "2026-01-02T03:00:01Z", "containerID": "containerd://app-0"}},
                     {}, id="completed"),
    ],
)
def test_container_states(containers: list[ContainerStatus], waiting: dict[str, Waiting], state: Obj,
                          last_state: Obj) -> None:
    app = status_of(make_pod(), containers, waiting=waiting)["containerStatuses"][0]
    assert app["state"] == state
    assert app["lastState"] == last_state


def test_a_running_container_status_carries_ids_and_counts() -> None:
    app = status_of(make_pod(), [ctr("app", restarts=3)])["containerStatuses"][0]
    assert app == {"name": "app", "image": "img:1", "imageID": "sha256:abc", "containerID": "containerd://app-3",
                   "restartCount": 3, "ready": True, "started": True,
                   "state": {"running": {"startedAt": "2026-01-02T03:00:03Z"}}, "lastState": {}}


def test_app_containers_of_an_uninitialized_pod_wait_with_pod_initializing() -> None:
    status = status_of(make_pod(inits=("init",)), [ctr("init")])
    assert status["initContainerStatuses"][0]["state"]["running"]
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    c = next(c for c in status["conditions"] if c["type"] == "Initialized")
    assert (c["status"], c["reason"], c["message"]) == (
        "False", "ContainersNotInitialized", "containers with incomplete status: [init]")


@pytest.mark.parametrize(
    ("pod", "containers", "ready", "expected"),
    [
        pytest.param(make_pod(), [ctr("app")], True,
                     {"PodReadyToStartContainers": ("True", ""), "Initialized": ("True", ""),
                      "Ready": ("True", ""), "ContainersReady": ("True", ""), "PodScheduled": ("True", "")},
                     id="all-ready"),
        pytest.param(make_pod(), [ctr("app")], False,
                     {"PodReadyToStartContainers": ("True", ""), "Initialized": ("True", ""),
                      "Ready": ("False", "ContainersNotReady"), "ContainersReady": ("False", "ContainersNotReady"),
                      "PodScheduled": ("True", "")}, id="readiness-failing"),
        pytest.param(make_pod(gates=("example.com/gate",)), [ctr("app")], True,
                     {"PodReadyToStartContainers": ("True", ""), "Initialized": ("True", ""),
                      "Ready": ("False", "ReadinessGatesNotReady"), "ContainersReady": ("True", ""),
                      "PodScheduled": ("True", "")}, id="readiness-gate-missing"),
        pytest.param(make_pod("Never"), [ctr("app", "exited", 0)], True,
                     {"PodReadyToStartContainers": ("False", ""), "Initialized": ("True", "PodCompleted"),
                      "Ready": ("False", "PodCompleted"), "ContainersReady": ("False", "PodCompleted"),
                      "PodScheduled": ("True", "")}, id="completed"),
    ],
)
def test_conditions(pod: Obj, containers: list[ContainerStatus], ready: bool,
                    expected: dict[str, tuple[str, str]]) -> None:
    status = status_of(pod, containers, ready=ready)
    assert [c["type"] for c in status["conditions"]] == list(expected)
    assert {t: cond(status, t) for t in expected} == expected


def test_unready_message_names_the_containers() -> None:
    status = status_of(make_pod(apps=("a", "b")), [ctr("a"), ctr("b")], ready=False)
    c = next(c for c in status["conditions"] if c["type"] == "ContainersReady")
    assert c["message"] == "containers with unready status: [a b]"


def test_transition_time_kept_while_the_condition_holds() -> None:
    first = status_of(make_pod(), [ctr("app")])
    later = NOW + dt.timedelta(minutes=5)
    again = pod_status(make_pod(status=first), SANDBOX, [ctr("app")], ready=lambda _n: True,
                       started=lambda _n: True, waiting={}, host_ip="192.0.2.10", now=later)
    assert again["conditions"] == first["conditions"]
    flipped = pod_status(make_pod(status=first), SANDBOX, [ctr("app")], ready=lambda _n: False,
                         started=lambda _n: True, waiting={}, host_ip="192.0.2.10", now=later)
    ready = next(c for c in flipped["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2026-01-02T03:09:05Z"


def test_addresses_start_time_and_qos() -> None:
    status = status_of(make_pod(), [ctr("app")])
    assert status["podIP"] == "10.88.0.2" and status["podIPs"] == [{"ip": "10.88.0.2"}]
    assert status["hostIP"] == "192.0.2.10" and status["hostIPs"] == [{"ip": "192.0.2.10"}]
    assert status["startTime"] == "2026-01-02T03:04:05Z" and status["qosClass"] == "BestEffort"
    kept = status_of(make_pod(status={**status, "startTime": "2025-01-01T00:00:00Z"}), [ctr("app")],
                     sandbox=None)
    assert kept["startTime"] == "2025-01-01T00:00:00Z" and kept["podIP"] == "10.88.0.2"


def test_a_lost_running_container_is_reported_unknown() -> None:
    running = status_of(make_pod(), [ctr("app")])
    lost = status_of(make_pod(status=running), [], sandbox=None, terminal=True)
    term = lost["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (137, "ContainerStatusUnknown")
    assert lost["phase"] == "Failed"


@pytest.mark.parametrize(
    ("old", "new", "patch"),
    [
        pytest.param({"a": 1}, {"a": 1}, {}, id="unchanged"),
        pytest.param({"a": 1, "b": 2}, {"a": 1}, {"b": None}, id="removed-key-is-null"),
        pytest.param({"s": {"waiting": {"reason": "X"}}}, {"s": {"running": {"startedAt": "t"}}},
                     {"s": {"waiting": None, "running": {"startedAt": "t"}}}, id="nested-map"),
        pytest.param({"containerStatuses": [{"name": "a", "ready": False}]},
                     {"containerStatuses": [{"name": "a", "ready": True}]},
                     {"containerStatuses": [{"name": "a", "ready": True}]}, id="atomic-list-replaced"),
        pytest.param({"conditions": [{"type": "Ready", "status": "False"}, {"type": "X", "status": "True"}]},
                     {"conditions": [{"type": "Ready", "status": "True"}]},
                     {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "$patch": "delete"}]},
                     id="merge-list-by-key"),
    ],
)
def test_two_way_patch(old: Obj, new: Obj, patch: Obj) -> None:
    assert two_way_patch(old, new) == patch


def test_status_patch_carries_the_uid() -> None:
    assert status_patch("u1", {"phase": "Pending"}, {"phase": "Running"}) == {
        "metadata": {"uid": "u1"}, "status": {"phase": "Running"}}
