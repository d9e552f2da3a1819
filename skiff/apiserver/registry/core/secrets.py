"""Secret: type defaulting, stringData folding, base64 data, per-type required keys, Type/Data columns.

Mirrors `SetDefaults_Secret` (type Opaque), the v1 conversion that folds `stringData` into `data`,
ValidateSecret/ValidateSecretUpdate (pkg/apis/core/validation/validation.go) and `printSecret`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, name_of
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.core.common import age_col, col, key_path, name_col, since, validate_immutable
from skiff.apiserver.registry.core.configmaps import validate_data_keys
from skiff.apiserver.registry.strategy import Column, Strategy

MAX_SECRET_SIZE = 1024 * 1024
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
REDACTED = "<secret contents redacted>"


def decode_data(data: Any) -> tuple[dict[str, bytes], list[v.FieldError]]:
    """Decode `data` values (base64 strings, as `[]byte` in JSON). Errors name the key."""
    out: dict[str, bytes] = {}
    errs: list[v.FieldError] = []
    if not isinstance(data, dict):
        return out, []
    for k, val in data.items():
        if not isinstance(val, str):
            errs.append(v.type_invalid(key_path("data", k), val, "must be a base64-encoded string"))
            continue
        try:
            out[k] = base64.b64decode(val, validate=True)
        except (binascii.Error, ValueError) as e:
            errs.append(v.invalid(key_path("data", k), REDACTED, f"illegal base64 data: {e}"))
    return out, errs


def _json_ok(raw: bytes) -> str | None:
    try:
        parsed = json.loads(raw)
    except ValueError as e:
        return str(e)
    return (
        None
        if isinstance(parsed, dict)
        else "json: cannot unmarshal into Go value of type map[string]interface {}"
    )


def validate_secret(obj: Obj) -> list[v.FieldError]:
    data, errs = decode_data(obj.get("data"))
    errs = validate_data_keys("data", obj.get("data")) + errs
    if sum(len(b) for b in data.values()) > MAX_SECRET_SIZE:
        errs.append(v.too_long("data", MAX_SECRET_SIZE))
    kind = obj.get("type") or "Opaque"
    if kind == "kubernetes.io/service-account-token":
        if not ((obj.get("metadata") or {}).get("annotations") or {}).get(SA_NAME_ANNOTATION):
            errs.append(v.required(key_path("metadata.annotations", SA_NAME_ANNOTATION)))
    elif kind in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if kind == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in data:
            if key not in (obj.get("data") or {}):
                errs.append(v.required(key_path("data", key)))
        else:
            problem = _json_ok(data[key])
            if problem:
                errs.append(v.invalid(key_path("data", key), REDACTED, problem))
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs.append(v.required(key_path("data", "username")))
            errs.append(v.required(key_path("data", "password")))
    elif kind == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            errs.append(v.required(key_path("data", "ssh-privatekey")))
    elif kind == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in (obj.get("data") or {}):
                errs.append(v.required(key_path("data", key)))
    return errs


class SecretStrategy(Strategy):
    info = ResourceInfo("", "v1", "Secret", "secrets", "secret", True)
    tracks_generation = False

    def defaults(self, obj: Obj) -> None:
        """Type Opaque; `stringData` entries are base64-encoded into `data` (overriding) and dropped."""
        if not obj.get("type"):
            obj["type"] = "Opaque"
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict) and string_data:
            data = obj.get("data")
            if not isinstance(data, dict):
                data = obj["data"] = {}
            for k, val in string_data.items():
                data[k] = base64.b64encode(str(val).encode()).decode()

    def validate(self, obj: Obj) -> list[v.FieldError]:
        return validate_secret(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        errs = self.validate(new)
        errs += validate_immutable("type", new.get("type") or "Opaque", old.get("type") or "Opaque")
        if old.get("immutable"):
            if not new.get("immutable"):
                errs.append(v.forbidden("immutable", "field is immutable when `immutable` is set"))
            if new.get("data") != old.get("data"):
                errs.append(v.forbidden("data", "field is immutable when `immutable` is set"))
        return errs

    def columns(self) -> list[Column]:
        return [name_col(), col("Type", "V1Secret", "type"), col("Data", "V1Secret", "data"), age_col()]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        return [
            name_of(obj),
            obj.get("type") or "",
            len(obj.get("data") or {}),
            since((obj.get("metadata") or {}).get("creationTimestamp"), now),
        ]

    def fields(self, obj: Obj) -> dict[str, str]:
        return {"type": obj.get("type") or ""}
