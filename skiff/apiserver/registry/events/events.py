"""events.k8s.io/v1 Event, stored as core/v1 Event (same key prefix `/registry/core/events/`).

`core_to_events_v1` / `events_v1_to_core` mirror `pkg/apis/events/v1/conversion.go` (via the internal
core Event): note↔message, regarding↔involvedObject, reportingController↔reportingComponent,
deprecatedSource/FirstTimestamp/LastTimestamp/Count ↔ source/firstTimestamp/lastTimestamp/count.
Validation is the events/v1 branch of `pkg/apis/core/validation/events.go` ValidateEventCreate, on the
events.k8s.io shape. Rows are upstream's `printEvent` (the API server always prints wide).
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, human_duration, parse_time
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.strategy import Column, Strategy

EVENTS_API_VERSION = "events.k8s.io/v1"
# (events.k8s.io/v1 field, core/v1 field); both sides copied as-is when present.
_RENAMES = (
    ("note", "message"),
    ("regarding", "involvedObject"),
    ("related", "related"),
    ("reportingController", "reportingComponent"),
    ("reportingInstance", "reportingInstance"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("eventTime", "eventTime"),
    ("action", "action"),
    ("reason", "reason"),
    ("type", "type"),
)
_LENGTH_LIMIT = 128
_NOTE_LIMIT = 1024


def _series(series: Any) -> Any:
    """Series keep `count` and `lastObservedTime`; core's deprecated `state` has no events/v1 field."""
    if not isinstance(series, dict):
        return series
    return {k: copy.deepcopy(val) for k, val in series.items() if k in ("count", "lastObservedTime")}


def core_to_events_v1(obj: Obj) -> Obj:
    """A core/v1 Event as events.k8s.io/v1 (pure: returns a new dict; unset/null fields stay unset)."""
    out: Obj = {
        "apiVersion": EVENTS_API_VERSION,
        "kind": "Event",
        "metadata": copy.deepcopy(obj.get("metadata") or {}),
    }
    for new, old in _RENAMES:
        value = obj.get(old)
        if value is None or (old == "count" and value == 0) or (old == "source" and not value):
            continue
        out[new] = copy.deepcopy(value)
    if obj.get("series") is not None:
        out["series"] = _series(obj["series"])
    return out


def events_v1_to_core(obj: Obj) -> Obj:
    """An events.k8s.io/v1 Event as core/v1 (pure: returns a new dict)."""
    out: Obj = {"apiVersion": "v1", "kind": "Event", "metadata": copy.deepcopy(obj.get("metadata") or {})}
    for new, old in _RENAMES:
        value = obj.get(new)
        if value is None:
            continue
        out[old] = copy.deepcopy(value)
    if obj.get("series") is not None:
        out["series"] = _series(obj["series"])
    return out


def _as_core(obj: Obj) -> Obj:
    return events_v1_to_core(obj) if obj.get("apiVersion") == EVENTS_API_VERSION else obj


def _since(value: Any, now: dt.datetime) -> str:
    t = parse_time(value) if isinstance(value, str) else None
    return "<unknown>" if t is None else human_duration((now - t).total_seconds())


def event_row(obj: Obj, now: dt.datetime) -> list[Any]:
    """Upstream printEvent on a core-shaped event (wide cells: the server always prints all columns)."""
    first = (
        _since(obj.get("firstTimestamp"), now)
        if obj.get("firstTimestamp")
        else _since(obj.get("eventTime"), now)
    )
    last = _since(obj.get("lastTimestamp"), now) if obj.get("lastTimestamp") else first
    count = obj.get("count") or 0
    series = obj.get("series")
    if isinstance(series, dict):
        last = _since(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif count == 0:
        count = 1  # singleton events have no count in the new API
    ref = obj.get("involvedObject") or {}
    kind = str(ref.get("kind") or "").lower()
    target = f"{kind}/{ref['name']}" if ref.get("name") else kind
    source = obj.get("source") or {}
    component = source.get("component") or obj.get("reportingComponent") or ""
    instance = source.get("host") or obj.get("reportingInstance") or ""
    return [
        last,
        obj.get("type", ""),
        obj.get("reason", ""),
        target,
        ref.get("fieldPath", ""),
        f"{component}, {instance}" if instance else component,
        str(obj.get("message") or "").strip(),
        first,
        int(count),
        (obj.get("metadata") or {}).get("name", ""),
    ]


EVENT_COLUMNS = [
    Column(
        "Last Seen", description="The time at which the most recent occurrence of this event was recorded."
    ),
    Column(
        "Type", description="Type of this event (Normal, Warning), new types could be added in the future"
    ),
    Column(
        "Reason",
        description="This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    Column("Object", description="The object that this event is about."),
    Column(
        "Subobject",
        priority=1,
        description="If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.",
    ),
    Column(
        "Source",
        priority=1,
        description="The component reporting this event. Should be a short machine understandable string.",
    ),
    Column("Message", description="A human-readable description of the status of this operation."),
    Column(
        "First Seen",
        priority=1,
        description="The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    ),
    Column("Count", priority=1, description="The number of times this event has occurred."),
    Column("Name", priority=1, format="name", description="Name must be unique within a namespace."),
]


def validate_events_v1(obj: Obj) -> list[v.FieldError]:
    """Create-time rules for an events.k8s.io/v1 Event (upstream ValidateEventCreate, events/v1 branch)."""
    errs: list[v.FieldError] = []
    if not obj.get("eventTime"):
        errs.append(v.required("eventTime"))
    etype = obj.get("type")
    if etype not in ("Normal", "Warning"):
        errs.append(v.invalid("type", "", f"has invalid value: {etype or ''}"))
    for field in ("deprecatedFirstTimestamp", "deprecatedLastTimestamp"):
        if obj.get(field):
            errs.append(v.invalid(field, "", "needs to be unset"))
    if obj.get("deprecatedCount"):
        errs.append(v.invalid("deprecatedCount", "", "needs to be unset"))
    source = obj.get("deprecatedSource") or {}
    if source.get("component") or source.get("host"):
        errs.append(v.invalid("deprecatedSource", "", "needs to be unset"))
    series = obj.get("series")
    if isinstance(series, dict):
        if (series.get("count") or 0) < 2:
            errs.append(v.invalid("series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            errs.append(v.required("series.lastObservedTime"))
    ns = (obj.get("metadata") or {}).get("namespace") or ""
    regarding_ns = (obj.get("regarding") or {}).get("namespace") or ""
    if regarding_ns and ns and regarding_ns != ns:
        errs.append(v.invalid("regarding.namespace", regarding_ns, "does not match event.namespace"))
    controller = obj.get("reportingController") or ""
    if not controller:
        errs.append(v.required("reportingController"))
    else:
        errs += v.check("reportingController", controller, v.qualified_name(controller))
    instance = obj.get("reportingInstance") or ""
    if not instance:
        errs.append(v.required("reportingInstance"))
    elif len(instance) > _LENGTH_LIMIT:
        errs.append(v.invalid("reportingInstance", "", f"can have at most {_LENGTH_LIMIT} characters"))
    for field in ("action", "reason"):
        text = obj.get(field) or ""
        if not text:
            errs.append(v.required(field))
        elif len(text) > _LENGTH_LIMIT:
            errs.append(v.invalid(field, "", f"can have at most {_LENGTH_LIMIT} characters"))
    if len(obj.get("note") or "") > _NOTE_LIMIT:
        errs.append(v.invalid("note", "", f"can have at most {_NOTE_LIMIT} characters"))
    return errs


class EventsV1Strategy(Strategy):
    """events.k8s.io/v1 events over the core events storage; `validate` expects the events/v1 shape."""

    info = ResourceInfo("events.k8s.io", "v1", "Event", "events", "event", True, ("ev",), storage_group="")
    tracks_generation = False

    def validate(self, obj: Obj) -> list[v.FieldError]:
        return validate_events_v1(obj if obj.get("apiVersion") != "v1" else core_to_events_v1(obj))

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        """Upstream ValidateEventUpdate (events/v1): the identifying fields are immutable."""
        n = new if new.get("apiVersion") != "v1" else core_to_events_v1(new)
        o = old if old.get("apiVersion") != "v1" else core_to_events_v1(old)
        errs: list[v.FieldError] = []
        for field in (
            "regarding",
            "related",
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
            "type",
            "note",
            "eventTime",
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "deprecatedCount",
        ):
            if n.get(field) != o.get(field):
                errs.append(v.invalid(field, n.get(field), "field is immutable"))
        return errs

    def columns(self) -> list[Column]:
        return list(EVENT_COLUMNS)

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        return event_row(_as_core(obj), now)

    def fields(self, obj: Obj) -> dict[str, str]:
        """events.k8s.io field selectors as upstream's ToSelectableFields on the core Event."""
        core = _as_core(obj)
        ref = core.get("involvedObject") or {}
        source = core.get("source") or {}
        out = {
            f"involvedObject.{k}": str(ref.get(k) or "")
            for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
        }
        out.update(
            {
                "reason": str(core.get("reason") or ""),
                "reportingComponent": str(core.get("reportingComponent") or ""),
                "source": str(source.get("component") or ""),
                "type": str(core.get("type") or ""),
            }
        )
        return out

    def to_version(self, obj: Obj, info: ResourceInfo) -> Obj:
        """Stored (core/v1) → events.k8s.io/v1; objects already in events/v1 shape pass through."""
        return core_to_events_v1(obj) if obj.get("apiVersion") != EVENTS_API_VERSION else obj

    def from_version(self, obj: Obj, info: ResourceInfo) -> Obj:
        """events.k8s.io/v1 → stored core/v1; core-shaped objects pass through."""
        return events_v1_to_core(obj) if obj.get("apiVersion") == EVENTS_API_VERSION else obj
