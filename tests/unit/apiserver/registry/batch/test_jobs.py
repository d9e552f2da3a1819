"""Job strategy: generated selector and labels, SetDefaults_Job, validation messages, rows, fields."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.batch.jobs import JobStrategy

S = JobStrategy()
NOW = dt.datetime(2026, 1, 1, 0, 10, tzinfo=dt.UTC)
GENERATED = {
    "job-name": "pi",
    "batch.kubernetes.io/job-name": "pi",
    "controller-uid": "U1",
    "batch.kubernetes.io/controller-uid": "U1",
}


def job(restart: str = "Never", **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {
            "name": "pi",
            "namespace": "default",
            "uid": "U1",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {
            "template": {
                "spec": {"restartPolicy": restart, "containers": [{"name": "pi", "image": "perl:5.34"}]}
            }
        },
    }
    obj["spec"].update(spec)
    return obj


def created(obj: dict[str, Any]) -> dict[str, Any]:
    S.prepare_for_create(obj)
    S.defaults(obj)
    return obj


def texts(obj: dict[str, Any]) -> list[str]:
    return [e.text() for e in S.validate(obj)]


def test_generated_selector_and_labels() -> None:
    obj = created(job())
    assert obj["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "U1"}}
    assert obj["spec"]["template"]["metadata"]["labels"] == GENERATED
    assert obj["metadata"]["labels"] == GENERATED
    assert obj["status"] == {}
    assert texts(obj) == []


def test_user_labels_kept_and_job_labels_not_overwritten() -> None:
    obj = job()
    obj["metadata"]["labels"] = {"team": "a"}
    obj["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    created(obj)
    assert obj["metadata"]["labels"] == {"team": "a"}
    assert obj["spec"]["template"]["metadata"]["labels"] == {"app": "pi", **GENERATED}


def test_manual_selector_is_not_generated() -> None:
    obj = job(manualSelector=True, selector={"matchLabels": {"app": "pi"}})
    obj["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    created(obj)
    assert obj["spec"]["selector"] == {"matchLabels": {"app": "pi"}}
    assert obj["spec"]["template"]["metadata"]["labels"] == {"app": "pi"}
    assert texts(obj) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({}, {"completions": 1, "parallelism": 1}, id="both-unset"),
        pytest.param({"parallelism": 4}, {"parallelism": 4}, id="work-queue-keeps-completions-unset"),
        pytest.param({"completions": 5}, {"completions": 5, "parallelism": 1}, id="completions-only"),
    ],
)
def test_completions_parallelism_defaults(spec: dict[str, Any], expected: dict[str, int]) -> None:
    got = created(job(**spec))["spec"]
    assert {k: got[k] for k in ("completions", "parallelism") if k in got} == expected


def test_other_defaults() -> None:
    spec = created(job())["spec"]
    assert (spec["backoffLimit"], spec["completionMode"], spec["suspend"], spec["podReplacementPolicy"]) == (
        6,
        "NonIndexed",
        False,
        "TerminatedOrFailed",
    )
    assert "manualSelector" not in spec


def test_pod_failure_policy_defaults() -> None:
    spec = created(
        job(
            podFailurePolicy={
                "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
            }
        )
    )["spec"]
    assert spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"
    assert spec["podReplacementPolicy"] == "Failed"


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            job(restart="Always"),
            'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"',
            id="restart-always",
        ),
        pytest.param(
            job(parallelism=-1),
            "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
            id="parallelism",
        ),
        pytest.param(
            job(completions=-1),
            "spec.completions: Invalid value: -1: must be greater than or equal to 0",
            id="completions",
        ),
        pytest.param(
            job(backoffLimit=-1),
            "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0",
            id="backoff",
        ),
        pytest.param(
            job(completionMode="Sometimes"),
            'spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"',
            id="mode",
        ),
        pytest.param(
            job(completionMode="Indexed", parallelism=2),
            "spec.completions: Required value: when completion mode is Indexed",
            id="indexed-needs-completions",
        ),
        pytest.param(
            job(backoffLimitPerIndex=1),
            "spec.backoffLimitPerIndex: Forbidden: requires indexed completion mode",
            id="per-index-needs-indexed",
        ),
        pytest.param(
            job(restart="OnFailure", podFailurePolicy={"rules": []}),
            'spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy is specified',
            id="pod-failure-policy-needs-never",
        ),
        pytest.param(
            job(podReplacementPolicy="Sometimes"),
            'spec.podReplacementPolicy: Unsupported value: "Sometimes": supported values: "Failed", "TerminatedOrFailed"',
            id="replacement",
        ),
    ],
)
def test_validation_messages(obj: dict[str, Any], expected: str) -> None:
    assert expected in texts(created(obj))


def test_conflicting_user_label_is_rejected() -> None:
    obj = job()
    obj["spec"]["template"]["metadata"] = {"labels": {"controller-uid": "other"}}
    got = texts(created(obj))
    assert any(
        t.startswith("spec.template.metadata.labels[controller-uid]: Invalid value: map[string]string{")
        and t.endswith(": must be 'U1'")
        for t in got
    )


def test_selector_that_is_not_generated_is_rejected() -> None:
    obj = job(selector={"matchLabels": {"batch.kubernetes.io/controller-uid": "U1", "x": "y"}})
    got = texts(created(obj))
    assert (
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"batch.kubernetes.io/controller-uid":"U1", "x":"y"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` not auto-generated'
        in got
    )


def test_manual_selector_must_match_template() -> None:
    obj = job(manualSelector=True, selector={"matchLabels": {"app": "x"}})
    obj["spec"]["template"]["metadata"] = {"labels": {"app": "y"}}
    assert (
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"y"}: `selector` does not match template `labels`'
        in texts(created(obj))
    )


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda o, s: s["template"]["spec"]["containers"][0].update(image="perl:6"),
            "spec.template",
            id="template",
        ),
        pytest.param(lambda o, s: s.update(completions=3), "spec.completions", id="completions"),
        pytest.param(
            lambda o, s: s.update(completionMode="Indexed"), "spec.completionMode", id="completion-mode"
        ),
        pytest.param(lambda o, s: s["selector"]["matchLabels"].update(x="y"), "spec.selector", id="selector"),
    ],
)
def test_immutable_fields(mutate: Any, expected: str) -> None:
    old = created(job())
    new = copy.deepcopy(old)
    mutate(new, new["spec"])
    assert any(e.field == expected and e.detail == "field is immutable" for e in S.validate_update(new, old))


@pytest.mark.parametrize(
    ("old_suspend", "started", "immutable"),
    [
        pytest.param(True, False, False, id="suspended-unstarted-may-change-node-selector"),
        pytest.param(True, True, True, id="started-job-may-not"),
        pytest.param(False, False, True, id="running-job-may-not"),
    ],
)
def test_scheduling_directives_mutable_while_suspended(
    old_suspend: bool, started: bool, immutable: bool
) -> None:
    old = created(job(suspend=old_suspend))
    if started:
        old["status"] = {"startTime": "2026-01-01T00:00:00Z"}
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "a"}
    assert any(e.field == "spec.template" for e in S.validate_update(new, old)) is immutable


def test_elastic_indexed_completions() -> None:
    old = created(job(completionMode="Indexed", completions=3, parallelism=3))
    new = copy.deepcopy(old)
    new["spec"]["completions"] = 5
    new["spec"]["parallelism"] = 5
    assert [e for e in S.validate_update(new, old) if e.field == "spec.completions"] == []
    new["spec"]["parallelism"] = 4
    assert [e.text() for e in S.validate_update(new, old) if e.field == "spec.completions"] == [
        "spec.completions: Invalid value: 5: can only be modified in tandem with spec.parallelism"
    ]


def condition(kind: str, status: str = "True") -> dict[str, str]:
    return {"type": kind, "status": status}


@pytest.mark.parametrize(
    ("status", "deleting", "cell"),
    [
        pytest.param({}, False, "Running", id="running"),
        pytest.param({"conditions": [condition("Complete")]}, False, "Complete", id="complete"),
        pytest.param(
            {"conditions": [condition("Failed")]}, True, "Failed", id="failed-wins-over-terminating"
        ),
        pytest.param({}, True, "Terminating", id="terminating"),
        pytest.param({"conditions": [condition("Suspended")]}, False, "Suspended", id="suspended"),
        pytest.param({"conditions": [condition("Suspended", "False")]}, False, "Running", id="resumed"),
        pytest.param(
            {"conditions": [condition("FailureTarget")]}, False, "FailureTarget", id="failure-target"
        ),
    ],
)
def test_status_cell(status: dict[str, Any], deleting: bool, cell: str) -> None:
    obj = created(job())
    obj["status"] = status
    if deleting:
        obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:09:00Z"
    assert S.row(obj, NOW)[1] == cell


@pytest.mark.parametrize(
    ("spec", "status", "completions", "duration"),
    [
        pytest.param({}, {}, "0/1", "", id="not-started"),
        pytest.param(
            {"completions": 3},
            {"succeeded": 2, "startTime": "2026-01-01T00:00:00Z"},
            "2/3",
            "10m",
            id="running",
        ),
        pytest.param(
            {"parallelism": 4},
            {"succeeded": 1, "startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:00:42Z"},
            "1/1 of 4",
            "42s",
            id="work-queue-done",
        ),
    ],
)
def test_completions_and_duration(
    spec: dict[str, Any], status: dict[str, Any], completions: str, duration: str
) -> None:
    obj = created(job(**spec))
    obj["status"] = status
    row = S.row(obj, NOW)
    assert row[2:4] == [completions, duration]


def test_columns_row_fields_info() -> None:
    obj = created(job())
    obj["status"] = {"succeeded": 1}
    assert [c.name for c in S.columns()] == [
        "Name",
        "Status",
        "Completions",
        "Duration",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    assert S.row(obj, NOW) == [
        "pi",
        "Running",
        "1/1",
        "",
        "10m",
        "pi",
        "perl:5.34",
        "batch.kubernetes.io/controller-uid=U1",
    ]
    assert S.fields(obj) == {"status.successful": "1"}
    assert (S.info.group, S.info.version, S.info.short_names, S.info.categories) == (
        "batch",
        "v1",
        (),
        ("all",),
    )


def test_status_update_counters() -> None:
    obj = created(job())
    new = dict(obj, status={"active": 1, "failed": -1})
    assert [e.text() for e in S.validate_status_update(new, obj)] == [
        "status.failed: Invalid value: -1: must be greater than or equal to 0"
    ]
