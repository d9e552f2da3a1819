"""CronJob strategy: SetDefaults_CronJob, schedule/timeZone/jobTemplate validation, printer row."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.batch import STRATEGIES
from skiff.apiserver.registry.batch.cronjobs import CronJobStrategy

S = CronJobStrategy()
NOW = dt.datetime(2026, 1, 2, 0, 0, tzinfo=dt.UTC)


def cronjob(name: str = "hello", **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "OnFailure",
                            "containers": [{"name": "hello", "image": "busybox"}],
                        }
                    }
                }
            },
        },
    }
    obj["spec"].update(spec)
    S.prepare_for_create(obj)
    S.defaults(obj)
    return obj


def texts(obj: dict[str, Any]) -> list[str]:
    return [e.text() for e in S.validate(obj)]


def test_defaults() -> None:
    obj = cronjob()
    spec = obj["spec"]
    assert (
        spec["concurrencyPolicy"],
        spec["suspend"],
        spec["successfulJobsHistoryLimit"],
        spec["failedJobsHistoryLimit"],
    ) == ("Allow", False, 3, 1)
    job_spec = spec["jobTemplate"]["spec"]
    assert "completions" not in job_spec and "backoffLimit" not in job_spec  # no Job defaults in the template
    assert job_spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert obj["status"] == {}
    assert texts(obj) == []


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            cronjob(schedule="61 * * * *"),
            'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61',
            id="bad-schedule",
        ),
        pytest.param(cronjob(schedule=""), "spec.schedule: Required value", id="no-schedule"),
        pytest.param(
            cronjob(schedule="TZ=UTC 0 * * * *"),
            'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead',
            id="tz-in-schedule",
        ),
        pytest.param(
            cronjob(timeZone="Mars/Olympus"),
            'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus',
            id="unknown-zone",
        ),
        pytest.param(
            cronjob(timeZone="Local"),
            'spec.timeZone: Invalid value: "Local": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones',
            id="local-zone",
        ),
        pytest.param(
            cronjob(timeZone=""),
            'spec.timeZone: Invalid value: "": timeZone must be nil or non-empty string',
            id="empty-zone",
        ),
        pytest.param(
            cronjob(concurrencyPolicy="Sometimes"),
            'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"',
            id="concurrency",
        ),
        pytest.param(
            cronjob(successfulJobsHistoryLimit=-1),
            "spec.successfulJobsHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
            id="history",
        ),
        pytest.param(
            cronjob(startingDeadlineSeconds=-5),
            "spec.startingDeadlineSeconds: Invalid value: -5: must be greater than or equal to 0",
            id="deadline",
        ),
        pytest.param(
            cronjob(name="c" * 53),
            f'metadata.name: Invalid value: "{"c" * 53}": must be no more than 52 characters',
            id="name-length",
        ),
    ],
)
def test_validation_messages(obj: dict[str, Any], expected: str) -> None:
    assert expected in texts(obj)


def test_valid_time_zone() -> None:
    assert texts(cronjob(timeZone="Europe/Berlin")) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda t: t["spec"].update(selector={"matchLabels": {"a": "b"}}),
            'spec.jobTemplate.spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"a":"b"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` will be auto-generated',
            id="selector",
        ),
        pytest.param(
            lambda t: t["spec"].update(manualSelector=True),
            'spec.jobTemplate.spec.manualSelector: Unsupported value: true: supported values: "nil", "false"',
            id="manual",
        ),
        pytest.param(
            lambda t: t["spec"]["template"]["spec"].update(restartPolicy="Always"),
            'spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"',
            id="restart",
        ),
    ],
)
def test_job_template_validation(mutate: Any, expected: str) -> None:
    obj = cronjob()
    mutate(obj["spec"]["jobTemplate"])
    assert expected in texts(obj)


def test_update_skips_name_length_and_unchanged_zone() -> None:
    old = cronjob(name="c" * 60)
    new = copy.deepcopy(old)
    new["spec"]["suspend"] = True
    assert S.validate_update(new, old) == []


@pytest.mark.parametrize(
    ("spec", "status", "cells"),
    [
        pytest.param({}, {}, ["*/5 * * * *", "<none>", "False", 0, "<none>"], id="fresh"),
        pytest.param(
            {"timeZone": "Etc/UTC", "suspend": True},
            {"active": [{"name": "j1"}, {"name": "j2"}], "lastScheduleTime": "2026-01-01T23:59:00Z"},
            ["*/5 * * * *", "Etc/UTC", "True", 2, "60s"],
            id="active",
        ),
    ],
)
def test_row(spec: dict[str, Any], status: dict[str, Any], cells: list[Any]) -> None:
    obj = cronjob(**spec)
    obj["status"] = status
    row = S.row(obj, NOW)
    assert row[0] == "hello" and row[1:6] == cells and row[6:] == ["24h", "hello", "busybox", "<none>"]
    assert [c.name for c in S.columns()] == [
        "Name",
        "Schedule",
        "Timezone",
        "Suspend",
        "Active",
        "Last Schedule",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]


def test_batch_group() -> None:
    assert [s.info.plural for s in STRATEGIES] == ["jobs", "cronjobs"]
    assert S.info.short_names == ("cj",) and S.info.categories == ("all",)
