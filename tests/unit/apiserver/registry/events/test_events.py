"""events.k8s.io/v1 over core/v1 storage: conversions both ways, validation, rows, storage key."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.events.events import EventsV1Strategy, core_to_events_v1, events_v1_to_core

S = EventsV1Strategy()
NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
META = {"name": "web.1", "namespace": "default"}
REF = {
    "kind": "Pod",
    "namespace": "default",
    "name": "web",
    "uid": "u1",
    "apiVersion": "v1",
    "fieldPath": "spec.containers{app}",
}

CORE_LEGACY: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Event",
    "metadata": META,
    "involvedObject": REF,
    "reason": "Pulled",
    "message": "Container image pulled",
    "source": {"component": "kubelet", "host": "node-1"},
    "firstTimestamp": "2026-01-01T11:00:00Z",
    "lastTimestamp": "2026-01-01T11:50:00Z",
    "count": 3,
    "type": "Normal",
}
EVENTS_LEGACY: dict[str, Any] = {
    "apiVersion": "events.k8s.io/v1",
    "kind": "Event",
    "metadata": META,
    "regarding": REF,
    "reason": "Pulled",
    "note": "Container image pulled",
    "deprecatedSource": {"component": "kubelet", "host": "node-1"},
    "deprecatedFirstTimestamp": "2026-01-01T11:00:00Z",
    "deprecatedLastTimestamp": "2026-01-01T11:50:00Z",
    "deprecatedCount": 3,
    "type": "Normal",
}
CORE_NEW: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Event",
    "metadata": META,
    "involvedObject": REF,
    "related": {"kind": "Node", "name": "node-1"},
    "reason": "Scheduled",
    "message": "Successfully assigned default/web to node-1",
    "eventTime": "2026-01-01T11:59:00.000000Z",
    "series": {"count": 4, "lastObservedTime": "2026-01-01T11:59:30.000000Z"},
    "reportingComponent": "default-scheduler",
    "reportingInstance": "default-scheduler-node-0",
    "action": "Binding",
    "type": "Normal",
}
EVENTS_NEW: dict[str, Any] = {
    "apiVersion": "events.k8s.io/v1",
    "kind": "Event",
    "metadata": META,
    "regarding": REF,
    "related": {"kind": "Node", "name": "node-1"},
    "reason": "Scheduled",
    "note": "Successfully assigned default/web to node-1",
    "eventTime": "2026-01-01T11:59:00.000000Z",
    "series": {"count": 4, "lastObservedTime": "2026-01-01T11:59:30.000000Z"},
    "reportingController": "default-scheduler",
    "reportingInstance": "default-scheduler-node-0",
    "action": "Binding",
    "type": "Normal",
}


@pytest.mark.parametrize(
    ("core", "events"),
    [
        pytest.param(CORE_LEGACY, EVENTS_LEGACY, id="legacy-event"),
        pytest.param(CORE_NEW, EVENTS_NEW, id="new-api-event"),
    ],
)
def test_conversions(core: dict[str, Any], events: dict[str, Any]) -> None:
    before = copy.deepcopy(core)
    assert core_to_events_v1(core) == events
    assert events_v1_to_core(events) == core
    assert core == before, "conversion must not mutate its input"


def test_core_zero_count_and_empty_source_are_dropped() -> None:
    core = {**CORE_NEW, "count": 0, "source": {}, "firstTimestamp": None, "lastTimestamp": None}
    assert core_to_events_v1(core) == EVENTS_NEW


def test_series_state_is_dropped() -> None:
    core = {
        **CORE_NEW,
        "series": {"count": 2, "lastObservedTime": "2026-01-01T11:59:30.000000Z", "state": "Ongoing"},
    }
    assert core_to_events_v1(core)["series"] == {
        "count": 2,
        "lastObservedTime": "2026-01-01T11:59:30.000000Z",
    }


def test_storage_shares_core_events_prefix() -> None:
    assert S.info.group == "events.k8s.io"
    assert S.info.key_prefix("default") == "/registry/core/events/default/"
    assert S.info.short_names == ("ev",)


def test_version_hooks() -> None:
    assert S.to_version(CORE_NEW, S.info) == EVENTS_NEW
    assert S.from_version(EVENTS_NEW, S.info) == CORE_NEW
    assert S.to_version(EVENTS_NEW, S.info) is EVENTS_NEW
    assert S.from_version(CORE_NEW, S.info) is CORE_NEW


@pytest.mark.parametrize(
    ("change", "want"),
    [
        pytest.param({}, [], id="valid"),
        pytest.param({"eventTime": None}, ["eventTime: Required value"], id="event-time-required"),
        pytest.param({"type": "Info"}, ['type: Invalid value: "": has invalid value: Info'], id="type"),
        pytest.param(
            {"reportingController": None}, ["reportingController: Required value"], id="controller-required"
        ),
        pytest.param(
            {"reportingInstance": "x" * 129},
            ['reportingInstance: Invalid value: "": can have at most 128 characters'],
            id="instance-long",
        ),
        pytest.param({"action": None}, ["action: Required value"], id="action-required"),
        pytest.param(
            {"note": "x" * 1025},
            ['note: Invalid value: "": can have at most 1024 characters'],
            id="note-long",
        ),
        pytest.param(
            {"deprecatedCount": 2},
            ['deprecatedCount: Invalid value: "": needs to be unset'],
            id="deprecated-count",
        ),
        pytest.param(
            {"series": {"count": 1, "lastObservedTime": "2026-01-01T11:59:30.000000Z"}},
            ['series.count: Invalid value: "": should be at least 2'],
            id="series-count",
        ),
        pytest.param(
            {"regarding": {**REF, "namespace": "other"}},
            ['regarding.namespace: Invalid value: "other": does not match event.namespace'],
            id="namespace-mismatch",
        ),
    ],
)
def test_validate(change: dict[str, Any], want: list[str]) -> None:
    obj = {**EVENTS_NEW, **change}
    assert [e.text() for e in S.validate(obj)] == want


def test_update_of_identifying_fields_is_rejected() -> None:
    new = {**EVENTS_NEW, "note": "changed"}
    assert [e.field for e in S.validate_update(new, EVENTS_NEW)] == ["note"]
    series_only = {**EVENTS_NEW, "series": {"count": 5, "lastObservedTime": "2026-01-01T11:59:40.000000Z"}}
    assert S.validate_update(series_only, EVENTS_NEW) == []


@pytest.mark.parametrize(
    ("obj", "want"),
    [
        pytest.param(
            CORE_LEGACY,
            [
                "10m",
                "Normal",
                "Pulled",
                "pod/web",
                "spec.containers{app}",
                "kubelet, node-1",
                "Container image pulled",
                "60m",
                3,
                "web.1",
            ],
            id="legacy",
        ),
        pytest.param(
            EVENTS_NEW,
            [
                "30s",
                "Normal",
                "Scheduled",
                "pod/web",
                "spec.containers{app}",
                "default-scheduler, default-scheduler-node-0",
                "Successfully assigned default/web to node-1",
                "60s",
                4,
                "web.1",
            ],
            id="series-from-events-v1-shape",
        ),
        pytest.param(
            {**CORE_NEW, "series": None, "involvedObject": {"kind": "Node"}},
            [
                "60s",
                "Normal",
                "Scheduled",
                "node",
                "",
                "default-scheduler, default-scheduler-node-0",
                "Successfully assigned default/web to node-1",
                "60s",
                1,
                "web.1",
            ],
            id="singleton-counts-one",
        ),
    ],
)
def test_row(obj: dict[str, Any], want: list[Any]) -> None:
    assert [c.name for c in S.columns()] == [
        "Last Seen",
        "Type",
        "Reason",
        "Object",
        "Subobject",
        "Source",
        "Message",
        "First Seen",
        "Count",
        "Name",
    ]
    assert S.row(obj, NOW) == want


def test_fields() -> None:
    f = S.fields(EVENTS_NEW)
    assert f["involvedObject.name"] == "web"
    assert f["involvedObject.kind"] == "Pod"
    assert f["reason"] == "Scheduled"
    assert f["reportingComponent"] == "default-scheduler"
