"""core/v1 Event: namespace agreement, new-style (eventTime) required fields, selectable fields, row.

Mirrors `ValidateEventCreate` (pkg/apis/core/validation/events.go), `ToSelectableFields` in
`pkg/registry/core/event/strategy.go` and `printEvent` (columns: Last Seen, Type, Reason, Object,
Subobject, Source, Message, First Seen, Count, Name — Name last and wide, as upstream).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, name_of
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.core.common import col, since
from skiff.apiserver.registry.strategy import Column, Strategy

REPORTING_INSTANCE_LIMIT = 128
ACTION_LIMIT = 128
REASON_LIMIT = 128
NOTE_LIMIT = 1024


def event_source(ev: Obj) -> str:
    """`formatEventSource`: component (or reportingController), `, host` (or reportingInstance)."""
    src = ev.get("source") or {}
    component = src.get("component") or ev.get("reportingComponent") or ""
    host = src.get("host") or ev.get("reportingInstance") or ""
    return f"{component}, {host}" if host else component


def validate_event(ev: Obj) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    ns = (ev.get("metadata") or {}).get("namespace") or ""
    io = ev.get("involvedObject") or {}
    io_ns = io.get("namespace") or ""
    if not ev.get("eventTime"):
        if not io_ns:
            if ns not in ("", "default"):
                errs.append(v.invalid("involvedObject.namespace", io_ns, "does not match event.namespace"))
        elif ns != io_ns:
            errs.append(v.invalid("involvedObject.namespace", io_ns, "does not match event.namespace"))
    else:
        if not io_ns and ns not in ("default", "kube-system"):
            errs.append(v.invalid("involvedObject.namespace", io_ns, "does not match event.namespace"))
        controller = ev.get("reportingComponent") or ""
        if not controller:
            errs.append(v.required("reportingComponent"))
        errs += v.check("reportingComponent", controller, v.qualified_name(controller))
        instance = ev.get("reportingInstance") or ""
        if not instance:
            errs.append(v.required("reportingInstance"))
        if len(instance) > REPORTING_INSTANCE_LIMIT:
            errs.append(
                v.invalid("reportingInstance", "", f"can have at most {REPORTING_INSTANCE_LIMIT} characters")
            )
        action = ev.get("action") or ""
        if not action:
            errs.append(v.required("action"))
        if len(action) > ACTION_LIMIT:
            errs.append(v.invalid("action", "", f"can have at most {ACTION_LIMIT} characters"))
        reason = ev.get("reason") or ""
        if not reason:
            errs.append(v.required("reason"))
        if len(reason) > REASON_LIMIT:
            errs.append(v.invalid("reason", "", f"can have at most {REASON_LIMIT} characters"))
        if len(ev.get("message") or "") > NOTE_LIMIT:
            errs.append(v.invalid("message", "", f"can have at most {NOTE_LIMIT} characters"))
    if ns:
        errs += v.check("namespace", ns, v.dns1123_subdomain(ns))
    return errs


class EventStrategy(Strategy):
    info = ResourceInfo("", "v1", "Event", "events", "event", True, ("ev",))
    tracks_generation = False

    def validate(self, obj: Obj) -> list[v.FieldError]:
        return validate_event(obj)

    def columns(self) -> list[Column]:
        return [
            col("Last Seen", "CoreV1Event", "lastTimestamp"),
            col("Type", "CoreV1Event", "type"),
            col("Reason", "CoreV1Event", "reason"),
            col("Object", description="The object that this event is about."),
            col("Subobject", "V1ObjectReference", "fieldPath", priority=1),
            col(
                "Source",
                description="The component reporting this event. Should be a short, machine understandable string.",
                priority=1,
            ),
            col("Message", "CoreV1Event", "message"),
            col("First Seen", "CoreV1Event", "firstTimestamp", priority=1),
            col("Count", "CoreV1Event", "count", priority=1),
            col("Name", "V1ObjectMeta", "name", priority=1, format="name"),
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        first = (
            since(obj.get("firstTimestamp"), now)
            if obj.get("firstTimestamp")
            else since(obj.get("eventTime"), now)
        )
        last = since(obj.get("lastTimestamp"), now) if obj.get("lastTimestamp") else first
        count = obj.get("count") or 0
        series = obj.get("series")
        if isinstance(series, dict):
            last = since(series.get("lastObservedTime"), now)
            count = series.get("count") or 0
        elif not count:
            count = 1
        io = obj.get("involvedObject") or {}
        kind = str(io.get("kind") or "").lower()
        target = f"{kind}/{io['name']}" if io.get("name") else kind
        return [
            last,
            obj.get("type") or "",
            obj.get("reason") or "",
            target,
            io.get("fieldPath") or "",
            event_source(obj),
            str(obj.get("message") or "").strip(),
            first,
            count,
            name_of(obj),
        ]

    def fields(self, obj: Obj) -> dict[str, str]:
        io = obj.get("involvedObject") or {}
        source = (obj.get("source") or {}).get("component") or obj.get("reportingComponent") or ""
        return {
            "involvedObject.kind": io.get("kind") or "",
            "involvedObject.namespace": io.get("namespace") or "",
            "involvedObject.name": io.get("name") or "",
            "involvedObject.uid": io.get("uid") or "",
            "involvedObject.apiVersion": io.get("apiVersion") or "",
            "involvedObject.resourceVersion": io.get("resourceVersion") or "",
            "involvedObject.fieldPath": io.get("fieldPath") or "",
            "reason": obj.get("reason") or "",
            "reportingComponent": obj.get("reportingComponent") or "",
            "source": source,
            "type": obj.get("type") or "",
        }
