"""`meta.k8s.io/v1 Table` responses for `kubectl get` (api-compat.md §3).

Rows carry a PartialObjectMetadata by default (`includeObject=Metadata`), the full object with
`includeObject=Object`, nothing with `None`; kubectl decodes row objects as unstructured data, so
they always have `kind` and `apiVersion`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from skiff.api.meta import Obj, now
from skiff.apiserver.registry.strategy import Strategy


def wants_table(accept: str) -> bool:
    """True when the Accept header asks for a Table first (kubectl get's human output)."""
    for part in accept.split(","):
        part = part.strip()
        if "as=Table" in part.replace(" ", "") and "g=meta.k8s.io" in part.replace(" ", ""):
            return True
        if part.startswith("application/json") or part.startswith("*/*"):
            return False
    return False


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def row(strategy: Strategy, obj: Obj, include: str, at: dt.datetime) -> Obj:
    r: dict[str, Any] = {"cells": strategy.row(obj, at)}
    conditions = getattr(strategy, "row_conditions", None)
    if conditions is not None:
        conds = conditions(obj)
        if conds:
            r["conditions"] = conds  # e.g. Completed for finished pods (upstream printPod)
    o = _row_object(obj, include)
    if o is not None:
        r["object"] = o
    return r


def table(
    strategy: Strategy,
    objs: Iterable[Obj],
    include: str = "Metadata",
    list_meta: Obj | None = None,
    with_columns: bool = True,
) -> Obj:
    at = now()
    out: Obj = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {k: val for k, val in (list_meta or {}).items() if k in ("resourceVersion", "continue", "remainingItemCount")},
        "columnDefinitions": [c.definition() for c in strategy.columns()] if with_columns else [],
        "rows": [row(strategy, o, include, at) for o in objs],
    }
    return out
