"""ConfigMap: data/binaryData keys, the Data column (`printConfigMap`), `immutable`."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, age, name_of
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.core.common import age_col, col, name_col
from skiff.apiserver.registry.strategy import Column, Strategy

_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")


def config_key_problems(key: str) -> list[str]:
    """`IsConfigMapKey`: at most 253 characters of `[-._a-zA-Z0-9]`, not `.`/`..`, no leading `..`."""
    errs = []
    if len(key) > 253:
        errs.append("must be no more than 253 characters")
    if not _KEY_RE.match(key):
        errs.append(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
            "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
        )
    if key == ".":
        errs.append("must not be '.'")
    elif key == "..":
        errs.append("must not be '..'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def validate_data_keys(field: str, data: Any) -> list[v.FieldError]:
    """ConfigMap/Secret keys, each error at `<field>[<key>]` as upstream's `field.NewPath(...).Key(key)`."""
    if data is None:
        return []
    if not isinstance(data, dict):
        return [v.type_invalid(field, data, "must be a map of string keys to string values")]
    errs: list[v.FieldError] = []
    for k in data:
        errs += v.check(f"{field}[{k}]", k, config_key_problems(k))
    return errs


class ConfigMapStrategy(Strategy):
    info = ResourceInfo("", "v1", "ConfigMap", "configmaps", "configmap", True, ("cm",))
    tracks_generation = False

    def validate(self, obj: Obj) -> list[v.FieldError]:
        errs = validate_data_keys("data", obj.get("data")) + validate_data_keys(
            "binaryData", obj.get("binaryData")
        )
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
        return [name_col(), col("Data", "V1ConfigMap", "data"), age_col()]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        n = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
        return [name_of(obj), n, age(obj, now)]
