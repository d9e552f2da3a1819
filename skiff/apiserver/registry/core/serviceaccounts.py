"""ServiceAccount: secret references, image pull secrets, the Secrets column and the `token` subresource.

Mirrors `pkg/registry/core/serviceaccount` (no status, no generation) and `printServiceAccount`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, name_of
from skiff.api.resources import ALL_VERBS, ResourceInfo, Subresource
from skiff.apiserver.registry.core.common import age_col, col, name_col, since
from skiff.apiserver.registry.strategy import Column, Strategy


class ServiceAccountStrategy(Strategy):
    info = ResourceInfo(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        True,
        ("sa",),
        (),
        ALL_VERBS,
        (Subresource("token", "authentication.k8s.io", "v1", "TokenRequest", ("create",)),),
    )
    tracks_generation = False

    def validate(self, obj: Obj) -> list[v.FieldError]:
        errs: list[v.FieldError] = []
        for key in ("secrets", "imagePullSecrets"):
            for i, ref in enumerate(obj.get(key) or []):
                if not isinstance(ref, dict):
                    errs.append(v.type_invalid(f"{key}[{i}]", ref, "must be an object"))
        auto = obj.get("automountServiceAccountToken")
        if auto is not None and not isinstance(auto, bool):
            errs.append(v.type_invalid("automountServiceAccountToken", auto, "must be a boolean"))
        return errs

    def columns(self) -> list[Column]:
        return [name_col(), col("Secrets", "V1ServiceAccount", "secrets"), age_col()]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        return [
            name_of(obj),
            len(obj.get("secrets") or []),
            since((obj.get("metadata") or {}).get("creationTimestamp"), now),
        ]
