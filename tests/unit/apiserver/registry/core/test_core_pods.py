"""Pod strategy: create preparation, QoS, update rules, selectable fields and `printPod` rows."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.core.pods import PodStrategy, qos_class

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
CREATED = "2026-01-01T11:55:00Z"  # 5m before NOW
S = PodStrategy()


def pod(**status: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": CREATED},
        "spec": {"containers": [{"name": "a", "image": "nginx"}]},
        "status": {"phase": "Running", **status},
    }
    return p


def running(ready: bool = True, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "name": "a",
        "ready": ready,
        "restartCount": restarts,
        "state": {"running": {"startedAt": CREATED}},
        **extra,
    }


def waiting(reason: str, restarts: int = 0) -> dict[str, Any]:
    return {"name": "a", "ready": False, "restartCount": restarts, "state": {"waiting": {"reason": reason}}}


def terminated(reason: str = "", exit_code: int = 0, signal: int = 0) -> dict[str, Any]:
    term: dict[str, Any] = {"exitCode": exit_code}
    if reason:
        term["reason"] = reason
    if signal:
        term["signal"] = signal
    return {"name": "a", "ready": False, "restartCount": 0, "state": {"terminated": term}}


def with_init(p: dict[str, Any], *statuses: dict[str, Any], n: int = 2) -> dict[str, Any]:
    p["spec"]["initContainers"] = [{"name": f"i{k}", "image": "busybox"} for k in range(n)]
    p["status"]["initContainerStatuses"] = list(statuses)
    return p


@pytest.mark.parametrize(
    ("obj", "ready", "status", "restarts"),
    [
        pytest.param(pod(containerStatuses=[running()]), "1/1", "Running", "0", id="running"),
        pytest.param(pod(phase="Pending"), "0/1", "Pending", "0", id="pending-no-status"),
        pytest.param(
            pod(phase="Pending", containerStatuses=[waiting("ContainerCreating")]),
            "0/1",
            "ContainerCreating",
            "0",
            id="creating",
        ),
        pytest.param(
            pod(containerStatuses=[waiting("CrashLoopBackOff", 3)]),
            "0/1",
            "CrashLoopBackOff",
            "3",
            id="crashloop",
        ),
        pytest.param(
            pod(phase="Succeeded", containerStatuses=[terminated("Completed")]),
            "0/1",
            "Completed",
            "0",
            id="completed",
        ),
        pytest.param(
            pod(phase="Failed", containerStatuses=[terminated("Error", 1)]), "0/1", "Error", "0", id="error"
        ),
        pytest.param(
            pod(phase="Failed", containerStatuses=[terminated(exit_code=2)]),
            "0/1",
            "ExitCode:2",
            "0",
            id="exitcode",
        ),
        pytest.param(
            pod(phase="Failed", containerStatuses=[terminated(exit_code=137, signal=9)]),
            "0/1",
            "Signal:9",
            "0",
            id="signal",
        ),
        pytest.param(pod(phase="Failed", reason="Evicted"), "0/1", "Evicted", "0", id="status-reason"),
        pytest.param(
            with_init(pod(phase="Pending"), waiting("PodInitializing")),
            "0/1",
            "Init:0/2",
            "0",
            id="init-0-of-2",
        ),
        pytest.param(
            with_init(
                pod(phase="Pending"),
                terminated("Completed"),
                {"name": "i1", "restartCount": 0, "state": {"running": {}}},
            ),
            "0/1",
            "Init:1/2",
            "0",
            id="init-1-of-2",
        ),
        pytest.param(
            with_init(pod(phase="Pending"), {**terminated(exit_code=1), "name": "i0"}),
            "0/1",
            "Init:ExitCode:1",
            "0",
            id="init-exitcode",
        ),
        pytest.param(
            with_init(pod(phase="Pending"), {**terminated("Error", 1), "name": "i0"}),
            "0/1",
            "Init:Error",
            "0",
            id="init-error-reason",
        ),
        pytest.param(
            with_init(pod(phase="Pending"), {**waiting("ImagePullBackOff"), "name": "i0"}),
            "0/1",
            "Init:ImagePullBackOff",
            "0",
            id="init-waiting",
        ),
        pytest.param(
            pod(
                phase="Pending",
                conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
            ),
            "0/1",
            "SchedulingGated",
            "0",
            id="scheduling-gated",
        ),
    ],
)
def test_pod_row_status(obj: dict[str, Any], ready: str, status: str, restarts: str) -> None:
    row = S.row(obj, NOW)
    assert row[:5] == ["web", ready, status, restarts, "5m"]


def test_terminating_unless_terminal() -> None:
    p = pod(containerStatuses=[running()])
    p["metadata"]["deletionTimestamp"] = CREATED
    assert S.row(p, NOW)[2] == "Terminating"
    done = pod(phase="Succeeded", containerStatuses=[terminated("Completed")])
    done["metadata"]["deletionTimestamp"] = CREATED
    assert S.row(done, NOW)[2] == "Completed"


def test_completed_with_running_container_reads_running_or_notready() -> None:
    p = pod(containerStatuses=[running(), {**terminated("Completed"), "name": "b"}])
    p["spec"]["containers"].append({"name": "b", "image": "x"})
    assert S.row(p, NOW)[2] == "NotReady"
    p["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    assert S.row(p, NOW)[2] == "Running"


def test_restarts_show_last_restart_age() -> None:
    cs = running(restarts=2, lastState={"terminated": {"exitCode": 1, "finishedAt": "2026-01-01T11:58:00Z"}})
    assert S.row(pod(containerStatuses=[cs]), NOW)[3] == "2 (2m ago)"


def test_sidecar_counts_in_ready_total() -> None:
    p = pod(containerStatuses=[running()], conditions=[{"type": "Initialized", "status": "True"}])
    p["spec"]["initContainers"] = [{"name": "side", "image": "x", "restartPolicy": "Always"}]
    p["status"]["initContainerStatuses"] = [
        {"name": "side", "ready": True, "started": True, "restartCount": 0, "state": {"running": {}}}
    ]
    assert S.row(p, NOW)[1:3] == ["2/2", "Running"]


@pytest.mark.parametrize(
    ("status", "spec_extra", "wide"),
    [
        pytest.param({}, {}, ["<none>", "<none>", "<none>", "<none>"], id="unset"),
        pytest.param(
            {"podIPs": [{"ip": "10.0.0.5"}], "nominatedNodeName": "n2"},
            {"nodeName": "n1"},
            ["10.0.0.5", "n1", "n2", "<none>"],
            id="set",
        ),
        pytest.param(
            {"conditions": [{"type": "example.com/gate", "status": "True"}]},
            {"readinessGates": [{"conditionType": "example.com/gate"}, {"conditionType": "other"}]},
            ["<none>", "<none>", "<none>", "1/2"],
            id="readiness-gates",
        ),
    ],
)
def test_pod_wide_cells(status: dict[str, Any], spec_extra: dict[str, Any], wide: list[str]) -> None:
    p = pod(**status)
    p["spec"].update(spec_extra)
    row = S.row(p, NOW)
    assert len(row) == len(S.columns())
    assert row[5:] == wide


def test_columns_match_upstream() -> None:
    cols = S.columns()
    assert [c.name for c in cols] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
        "IP",
        "Node",
        "Nominated Node",
        "Readiness Gates",
    ]
    assert [c.priority for c in cols] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert cols[0].format == "name"


@pytest.mark.parametrize(
    ("phase", "reason"),
    [
        pytest.param("Succeeded", "Succeeded", id="succeeded"),
        pytest.param("Failed", "Failed", id="failed"),
        pytest.param("Running", None, id="running"),
    ],
)
def test_row_conditions(phase: str, reason: str | None) -> None:
    conds = S.row_conditions(pod(phase=phase))
    assert [c["reason"] for c in conds] == ([reason] if reason else [])


def test_fields() -> None:
    p = pod(podIPs=[{"ip": "10.1.1.1"}], nominatedNodeName="n9")
    p["spec"].update(nodeName="n1", restartPolicy="Never", schedulerName="s", serviceAccountName="sa")
    assert S.fields(p) == {
        "spec.nodeName": "n1",
        "spec.restartPolicy": "Never",
        "spec.schedulerName": "s",
        "spec.serviceAccountName": "sa",
        "spec.hostNetwork": "false",
        "status.phase": "Running",
        "status.podIP": "10.1.1.1",
        "status.nominatedNodeName": "n9",
    }


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        pytest.param([{}], "BestEffort", id="besteffort"),
        pytest.param(
            [{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}],
            "Guaranteed",
            id="guaranteed",
        ),
        pytest.param([{"requests": {"cpu": "100m"}}], "Burstable", id="burstable-requests"),
        pytest.param(
            [{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}}],
            "Burstable",
            id="burstable-unequal",
        ),
        pytest.param(
            [{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}, {}],
            "Burstable",
            id="burstable-mixed",
        ),
    ],
)
def test_qos_class(resources: list[dict[str, Any]], qos: str) -> None:
    spec = {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(resources)]}
    assert qos_class(spec) == qos


def test_create_defaults_and_status() -> None:
    p: dict[str, Any] = {
        "metadata": {"name": "p"},
        "spec": {
            "containers": [
                {"name": "a", "image": "nginx", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
            ]
        },
        "status": {"phase": "Running"},
    }
    S.prepare_for_create(p)  # the generic store runs this before defaults()
    S.defaults(p)
    spec = p["spec"]
    assert spec["enableServiceLinks"] is True
    assert "priority" not in spec and "preemptionPolicy" not in spec  # set by the Priority admission plugin
    assert spec["containers"][0]["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert p["status"] == {"phase": "Pending", "qosClass": "Guaranteed"}


def _defaulted() -> dict[str, Any]:
    p: dict[str, Any] = {
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "a", "image": "nginx:1"}],
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "activeDeadlineSeconds": 100,
        },
    }
    S.defaults(p)
    return p


def _update(change: Any) -> list[str]:
    old = _defaulted()
    new = copy.deepcopy(old)
    change(new["spec"])
    return [e.text() for e in S.validate_update(new, old)]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(lambda s: s["containers"][0].update(image="nginx:2"), None, id="image-ok"),
        pytest.param(lambda s: s.update(activeDeadlineSeconds=50), None, id="deadline-lower-ok"),
        pytest.param(
            lambda s: s["tolerations"].append({"key": "x", "operator": "Exists"}),
            None,
            id="toleration-added-ok",
        ),
        pytest.param(
            lambda s: s.update(activeDeadlineSeconds=200),
            "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value",
            id="deadline-raise",
        ),
        pytest.param(
            lambda s: s.pop("activeDeadlineSeconds"),
            "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value",
            id="deadline-unset",
        ),
        pytest.param(
            lambda s: s.update(tolerations=[]),
            "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds",
            id="toleration-removed",
        ),
        pytest.param(
            lambda s: s["containers"][0].update(env=[{"name": "A", "value": "b"}]),
            "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            id="env-forbidden",
        ),
        pytest.param(
            lambda s: s.update(nodeName="n2"),
            "spec: Forbidden: pod updates may not change fields other than",
            id="nodename-forbidden",
        ),
    ],
)
def test_pod_update_rules(change: Any, expected: str | None) -> None:
    texts = _update(change)
    if expected is None:
        assert texts == []
    else:
        assert any(t.startswith(expected) for t in texts), texts


def test_forbidden_update_message_names_the_changed_field() -> None:
    texts = _update(lambda s: s["containers"][0].update(env=[{"name": "A", "value": "b"}]))
    assert texts[0].endswith('\n+ spec.containers[0].env: [{"name":"A","value":"b"}]'), texts


@pytest.mark.parametrize(
    ("restart_policy", "old_cs", "new_cs", "expected"),
    [
        pytest.param(
            "Never",
            terminated("Completed"),
            running(),
            ["status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state"],
            id="never-restart",
        ),
        pytest.param("Always", terminated("Completed"), running(), [], id="always-may-restart"),
        pytest.param("OnFailure", terminated("Error", 1), running(), [], id="onfailure-failed-may-restart"),
        pytest.param(
            "OnFailure",
            terminated("Completed"),
            running(),
            ["status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state"],
            id="onfailure-success-final",
        ),
    ],
)
def test_pod_status_update_state_transitions(
    restart_policy: str, old_cs: dict[str, Any], new_cs: dict[str, Any], expected: list[str]
) -> None:
    old = pod(containerStatuses=[old_cs])
    old["spec"]["restartPolicy"] = restart_policy
    new = copy.deepcopy(old)
    new["status"]["containerStatuses"] = [new_cs]
    assert [e.text() for e in S.validate_status_update(new, old)] == expected


def test_pod_status_update_ips_and_conditions() -> None:
    old = pod()
    new = pod(podIPs=[{"ip": "10.0.0.300"}], conditions=[{"type": "Ready", "status": "Yes"}])
    assert [e.text() for e in S.validate_status_update(new, old)] == [
        'status.conditions[0].status: Unsupported value: "Yes": supported values: "True", "False", "Unknown"',
        'status.podIPs[0].ip: Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
    ]
