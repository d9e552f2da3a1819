"""ConfigMap: data/binaryData keys, the Data column, `immutable`."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, age, name_of
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column, Strategy

_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")


def validate_data_keys(field: str, data: Any) -> list[v.FieldError]:
    """ConfigMap/Secret keys: `[-._a-zA-Z0-9]+`, at most 253 characters (upstream IsConfigMapKey)."""
    if data is None:
        return []
    if not isinstance(data, dict):
        return [v.type_invalid(field, data, "must be a map of string keys to string values")]
    errs = []
    for k in data:
        if len(k) > 253:
            errs.append(v.invalid(field, k, "must be no more than 253 characters"))
        if not _KEY_RE.match(k):
            errs.append(v.invalid(field, k, "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"))
    return errs


class ConfigMapStrategy(Strategy):
    info = ResourceInfo("", "v1", "ConfigMap", "configmaps", "configmap", True, ("cm",))
    tracks_generation = False

    def validate(self, obj: Obj) -> list[v.FieldError]:
        errs = validate_data_keys("data", obj.get("data")) + validate_data_keys("binaryData", obj.get("binaryData"))
        for k in set(obj.get("data") or {}) & set(obj.get("binaryData") or {}):
            errs.append(v.invalid("data", k, "duplicate of key present in binaryData"))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        errs = self.validate(new)
        if old.get("immutable"):
            if new.get("data") != old.get("data") or new.get("binaryData") != old.get("binaryData"):
                errs.append(v.forbidden("data", "field is immutable when `immutable` is set"))
            if not new.get("immutable"):
                errs.append(v.forbidden("immutable", "field is immutable when `immutable` is set"))
        return errs

    def columns(self) -> list[Column]:
        return [NAME_COLUMN, Column("Data", "integer", "", "Number of data entries"), AGE_COLUMN]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        n = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
        return [name_of(obj), n, age(obj, now)]
