"""Helpers shared by the core/v1 strategies: column descriptions, printer formatting, small validators.

Column descriptions come from the `kubernetes` client's model docs, which are upstream's swagger docs —
the same text upstream's printers use (`apiv1.PodSpec{}.SwaggerDoc()["nodeName"]`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import human_duration, parse_time
from skiff.api.quantity import QuantityError, parse_quantity
from skiff.api.schema import model_fields
from skiff.apiserver.registry.strategy import Column

NOT_FOUND = v.NOT_FOUND
not_found = v.not_found
render = v.render_value


def doc(model: str, field: str) -> str:
    """Upstream swagger description of `model.field` (e.g. `V1PodSpec`, `nodeName`)."""
    f = model_fields(model).get(field)
    return f.description if f else ""


def col(
    name: str,
    model: str = "",
    field: str = "",
    *,
    type: str = "string",
    priority: int = 0,
    description: str = "",
    format: str = "",
) -> Column:
    """A column whose description is upstream's swagger doc of `model.field` unless given."""
    return Column(name, type, format, description or (doc(model, field) if model else ""), priority)


def name_col(priority: int = 0) -> Column:
    return Column("Name", "string", "name", doc("V1ObjectMeta", "name"), priority)


def age_col() -> Column:
    return Column("Age", "string", "", doc("V1ObjectMeta", "creationTimestamp"))


def since(value: Any, now: dt.datetime) -> str:
    """`translateTimestampSince`: `<unknown>` for an unset time, else the human duration."""
    t = parse_time(value) if isinstance(value, str) else None
    if t is None:
        return "<unknown>"
    return human_duration((now - t).total_seconds())


def format_labels(labels: Any) -> str:
    """`labels.FormatLabels`: sorted `k=v` joined by `,`; `<none>` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def key_path(path: str, key: str) -> str:
    """`field.Path.Key`: `path[key]`."""
    return f"{path}[{key}]"


_ACCESS_MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def access_modes_string(modes: Any) -> str:
    """`helper.GetAccessModesAsString`: fixed order RWO,ROX,RWX,RWOP, duplicates dropped."""
    have = set(modes or [])
    return ",".join(short for long, short in _ACCESS_MODES if long in have)


def is_ip(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def validate_ip(field: str, value: Any) -> list[v.FieldError]:
    return [] if is_ip(value) else [v.invalid(field, value, IP_MSG)]


def validate_quantity(field: str, value: Any, *, non_negative: bool = True) -> list[v.FieldError]:
    """A resource quantity: parseable and (by default) `must be greater than or equal to 0`."""
    try:
        q = parse_quantity(value)
    except (QuantityError, TypeError) as e:
        return [v.invalid(field, value, str(e))]
    if non_negative and q < 0:
        return [v.invalid(field, value, "must be greater than or equal to 0")]
    return []


def validate_dns1123_label(field: str, value: Any) -> list[v.FieldError]:
    return (
        v.check(field, value, v.dns1123_label(value))
        if isinstance(value, str)
        else [v.type_invalid(field, value, "must be a string")]
    )


def validate_dns1123_subdomain(field: str, value: Any) -> list[v.FieldError]:
    return (
        v.check(field, value, v.dns1123_subdomain(value))
        if isinstance(value, str)
        else [v.type_invalid(field, value, "must be a string")]
    )


def validate_immutable(field: str, new: Any, old: Any) -> list[v.FieldError]:
    """`ValidateImmutableField`: `Invalid value: <new>: field is immutable`."""
    return [] if new == old else [v.invalid(field, new, "field is immutable")]


validate_label_selector = v.label_selector  # one implementation, in skiff.api.validation


def int_field(obj: Any, key: str, default: int = 0) -> int:
    val = (obj or {}).get(key)
    return val if isinstance(val, int) and not isinstance(val, bool) else default
