"""LimitRange: container defaults (`SetDefaults_LimitRangeItem`), ValidateLimitRange, `Created At` column."""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, name_of
from skiff.api.quantity import QuantityError, parse_quantity
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.core.common import col, key_path, name_col, validate_quantity
from skiff.apiserver.registry.strategy import Column, Strategy


def default_limit_item(item: dict[str, Any]) -> None:
    """Container items: default limit ← max, default request ← default limit, then ← min."""
    if item.get("type") != "Container":
        return
    default = dict(item.get("default") or {})
    request = dict(item.get("defaultRequest") or {})
    for k, q in (item.get("max") or {}).items():
        default.setdefault(k, q)
    for k, q in default.items():
        request.setdefault(k, q)
    for k, q in (item.get("min") or {}).items():
        request.setdefault(k, q)
    if default:
        item["default"] = default
    if request:
        item["defaultRequest"] = request


def _parsed(rl: Any) -> dict[str, Any]:
    out = {}
    for k, q in (rl or {}).items():
        try:
            out[k] = parse_quantity(q)
        except (QuantityError, TypeError):
            continue
    return out


def validate_limit_range(obj: Obj) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    seen: set[str] = set()
    for i, item in enumerate((obj.get("spec") or {}).get("limits") or []):
        p = f"spec.limits[{i}]"
        item = item or {}
        kind = item.get("type") or ""
        if not kind:
            errs.append(v.required(f"{p}.type"))
        else:
            errs += v.check(f"{p}.type", kind, v.qualified_name(kind))
            if kind in seen:
                errs.append(v.duplicate(f"{p}.type", kind))
            seen.add(kind)
        for part in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            for k, q in (item.get(part) or {}).items():
                errs += validate_quantity(key_path(f"{p}.{part}", k), q)
        if kind == "Pod":
            for part in ("default", "defaultRequest"):
                if item.get(part):
                    errs.append(v.forbidden(f"{p}.{part}", "may not be specified when `type` is 'Pod'"))
        if (
            kind == "PersistentVolumeClaim"
            and "storage" not in (item.get("min") or {})
            and "storage" not in (item.get("max") or {})
        ):
            errs.append(
                v.required(
                    f"{p}.limits",
                    "either minimum or maximum storage value is required, but neither was provided",
                )
            )
        mx, mn = _parsed(item.get("max")), _parsed(item.get("min"))
        df, dr = _parsed(item.get("default")), _parsed(item.get("defaultRequest"))
        ratio = _parsed(item.get("maxLimitRequestRatio"))
        raw = {
            part: item.get(part) or {}
            for part in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")
        }
        for k in set(mx) | set(mn) | set(df) | set(dr) | set(ratio):
            if k in mn and k in mx and mn[k] > mx[k]:
                errs.append(
                    v.invalid(
                        key_path(f"{p}.min", k),
                        raw["min"][k],
                        f"min value {raw['min'][k]} is greater than max value {raw['max'][k]}",
                    )
                )
            if k in dr and k in mn and mn[k] > dr[k]:
                errs.append(
                    v.invalid(
                        key_path(f"{p}.defaultRequest", k),
                        raw["defaultRequest"][k],
                        f"min value {raw['min'][k]} is greater than default request value {raw['defaultRequest'][k]}",
                    )
                )
            if k in dr and k in mx and dr[k] > mx[k]:
                errs.append(
                    v.invalid(
                        key_path(f"{p}.defaultRequest", k),
                        raw["defaultRequest"][k],
                        f"default request value {raw['defaultRequest'][k]} is greater than max value {raw['max'][k]}",
                    )
                )
            if k in dr and k in df and dr[k] > df[k]:
                errs.append(
                    v.invalid(
                        key_path(f"{p}.defaultRequest", k),
                        raw["defaultRequest"][k],
                        f"default request value {raw['defaultRequest'][k]} is greater than default limit value {raw['default'][k]}",
                    )
                )
            if k in df and k in mn and mn[k] > df[k]:
                errs.append(
                    v.invalid(
                        key_path(f"{p}.default", k),
                        raw["min"][k],
                        f"min value {raw['min'][k]} is greater than default value {raw['default'][k]}",
                    )
                )
            if k in df and k in mx and df[k] > mx[k]:
                errs.append(
                    v.invalid(
                        key_path(f"{p}.default", k),
                        raw["max"][k],
                        f"default value {raw['default'][k]} is greater than max value {raw['max'][k]}",
                    )
                )
            if k in ratio and ratio[k] < 1:
                errs.append(
                    v.invalid(
                        key_path(f"{p}.maxLimitRequestRatio", k),
                        raw["maxLimitRequestRatio"][k],
                        f"ratio {raw['maxLimitRequestRatio'][k]} is less than 1",
                    )
                )
    return errs


class LimitRangeStrategy(Strategy):
    info = ResourceInfo("", "v1", "LimitRange", "limitranges", "limitrange", True, ("limits",))
    tracks_generation = False

    def defaults(self, obj: Obj) -> None:
        for item in (obj.get("spec") or {}).get("limits") or []:
            if isinstance(item, dict):
                default_limit_item(item)

    def validate(self, obj: Obj) -> list[v.FieldError]:
        return validate_limit_range(obj)

    def columns(self) -> list[Column]:
        return [name_col(), col("Created At", "V1ObjectMeta", "creationTimestamp", type="date")]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        return [name_of(obj), (obj.get("metadata") or {}).get("creationTimestamp")]
