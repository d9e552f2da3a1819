"""apps/v1 ControllerRevision: immutable `data`, non-negative `revision`, the CONTROLLER column.

Mirrors `ValidateControllerRevision` / `ValidateControllerRevisionUpdate` and `printControllerRevision`
(controller shown as `<kind>.<group>/<name>` in lower case, `<none>` without a controller owner).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, age, name_of
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.apps._workload import IMMUTABLE, as_int, doc
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column, Strategy


def controller_name(obj: Obj) -> str:
    """`formatResourceName(gvk.GroupKind(), ref.Name, true)` of the controller ownerReference."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            api_version = str(ref.get("apiVersion") or "")
            group = api_version.split("/", 1)[0] if "/" in api_version else ""
            kind = str(ref.get("kind") or "")
            if not kind and not group:
                return str(ref.get("name") or "")
            group_kind = f"{kind}.{group}" if group else kind
            return f"{group_kind.lower()}/{ref.get('name') or ''}"
    return "<none>"


class ControllerRevisionStrategy(Strategy):
    info = ResourceInfo("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", True)
    tracks_generation = False

    def validate(self, obj: Obj) -> list[v.FieldError]:
        errs: list[v.FieldError] = []
        if obj.get("data") is None:
            errs.append(v.required("data", "data is mandatory"))
        errs += v.non_negative("revision", obj.get("revision"))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        errs = self.validate(new)
        if new.get("data") != old.get("data"):
            errs.append(v.invalid("data", new.get("data"), IMMUTABLE))
        return errs

    def columns(self) -> list[Column]:
        return [
            NAME_COLUMN,
            Column("Controller", "string", "", "Controller of the object"),
            Column("Revision", "string", "", doc("V1ControllerRevision", "revision")),
            AGE_COLUMN,
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        return [name_of(obj), controller_name(obj), as_int(obj.get("revision")), age(obj, now)]
