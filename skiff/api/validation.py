"""Field-pathed validation errors and the common validators (names, labels, quantities).

Messages mirror `apimachinery/pkg/util/validation` so kubectl prints what users know:
`* metadata.name: Invalid value: "Foo": a lowercase RFC 1123 subdomain must consist of ...`.
Validators never raise; they return a list of `FieldError` (empty when valid).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TYPE_INVALID = "FieldValueTypeInvalid"
NOT_FOUND = "FieldValueNotFound"

_MISSING = object()


def render_value(value: Any) -> str:
    """Go's `%#v`-ish rendering used in messages: strings quoted, others as JSON."""
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value, default=str).decode()


@dataclass(frozen=True)
class FieldError:
    type: str
    field: str
    detail: str = ""
    value: Any = _MISSING

    def body(self) -> str:
        """The cause message without the field, as in upstream `Error.ErrorBody()`."""
        if self.type == REQUIRED:
            head = "Required value"
        elif self.type == FORBIDDEN:
            head = "Forbidden"
        elif self.type == TOO_LONG:
            head = "Too long"
        elif self.type == NOT_SUPPORTED:
            head = f"Unsupported value: {render_value(self.value)}"
        elif self.type == DUPLICATE:
            head = f"Duplicate value: {render_value(self.value)}"
        elif self.type == NOT_FOUND:
            head = f"Not found: {render_value(self.value)}"
        elif self.type == TYPE_INVALID:
            head = f"Invalid value: {render_value(self.value)}"
        else:
            head = "Invalid value" if self.value is _MISSING else f"Invalid value: {render_value(self.value)}"
        return f"{head}: {self.detail}" if self.detail else head

    def text(self) -> str:
        return f"{self.field}: {self.body()}"

    def cause(self) -> dict[str, str]:
        return {"reason": self.type, "message": self.body(), "field": self.field}


def required(field: str, detail: str = "") -> FieldError:
    return FieldError(REQUIRED, field, detail)


def invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError(INVALID, field, detail, value)


def not_supported(field: str, value: Any, supported: Iterable[str]) -> FieldError:
    opts = ", ".join(orjson.dumps(s).decode() for s in supported)
    return FieldError(NOT_SUPPORTED, field, f"supported values: {opts}", value)


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError(DUPLICATE, field, "", value)


def not_found(field: str, value: Any) -> FieldError:
    return FieldError(NOT_FOUND, field, "", value)


def forbidden(field: str, detail: str) -> FieldError:
    return FieldError(FORBIDDEN, field, detail)


def too_long(field: str, max_len: int) -> FieldError:
    return FieldError(TOO_LONG, field, f"may not be more than {max_len} bytes")


def type_invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError(TYPE_INVALID, field, detail, value)


# --- names ------------------------------------------------------------------------------------------

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile(f"^{_DNS1123_LABEL}$")
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + r"(\." + _DNS1123_LABEL + ")*"
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN}$")
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_RE = re.compile(f"^{_DNS1035_LABEL}$")
_QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_RE = re.compile(f"^{_QUALIFIED_NAME}$")
_LABEL_VALUE = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE}$")
_C_IDENTIFIER_RE = re.compile("^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_VAR_NAME_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def dns1123_label(value: str) -> list[str]:
    """Problems with `value` as an RFC 1123 label (namespace names, container names, port names...)."""
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1123_LABEL_RE.match(value):
        errs.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
            "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
            f"validation is '{_DNS1123_LABEL}')"
        )
    return errs


def dns1123_subdomain(value: str) -> list[str]:
    """Problems with `value` as an RFC 1123 subdomain (the name rule of most kinds)."""
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            f"validation is '{_DNS1123_SUBDOMAIN}')"
        )
    return errs


def dns1035_label(value: str) -> list[str]:
    """Problems with `value` as an RFC 1035 label (Service names)."""
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1035_LABEL_RE.match(value):
        errs.append(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
            "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
            f"regex used for validation is '{_DNS1035_LABEL}')"
        )
    return errs


def path_segment_name(value: str) -> list[str]:
    """Names that only need to be a safe URL path segment (RBAC objects)."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    for bad in ("/", "%"):
        if bad in value:
            return [f"may not contain '{bad}'"]
    return []


def qualified_name(value: str) -> list[str]:
    """Problems with a label/annotation key: `[prefix/]name`, prefix a DNS subdomain."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            f"validation is '{_QUALIFIED_NAME}') with an optional DNS subdomain prefix and '/' (e.g. "
            "'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if name and not _QUALIFIED_NAME_RE.match(name):
        errs.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            f"'{_QUALIFIED_NAME}')"
        )
    return errs


def label_value(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.match(value):
        errs.append(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
            f"regex used for validation is '{_LABEL_VALUE}')"
        )
    return errs


def env_var_name(value: str) -> list[str]:
    if not _ENV_VAR_NAME_RE.match(value):
        return [
            "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', "
            "and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex "
            "used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
        ]
    return []


def c_identifier(value: str) -> list[str]:
    if not _C_IDENTIFIER_RE.match(value):
        return [
            "a valid C identifier must start with alphabetic character or '_', followed by a string of "
            "alphanumeric characters or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName', regex used for "
            "validation is '[A-Za-z_][A-Za-z0-9_]*')"
        ]
    return []


def port_name(value: str) -> list[str]:
    """IANA_SVC_NAME: at most 15 characters, lowercase alphanumerics and '-', at least one letter."""
    errs = []
    if len(value) > 15:
        errs.append("must be no more than 15 characters")
    if not re.match("^[-a-z0-9]+$", value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if not re.search("[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    if value.startswith("-") or value.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def port_number(value: Any) -> list[str]:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        return ["must be between 1 and 65535, inclusive"]
    return []


# --- helpers for kind validators ----------------------------------------------------------------------


def check(field: str, value: Any, problems: list[str]) -> list[FieldError]:
    """Turn a validator's list of problems into FieldErrors at `field` (one per problem)."""
    return [invalid(field, value, p) for p in problems]


def labels(field: str, value: Any) -> list[FieldError]:
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [type_invalid(field, value, "must be a map of string keys to string values")]
    errs: list[FieldError] = []
    for k, v in value.items():
        errs += check(field, k, qualified_name(k))
        if not isinstance(v, str):
            errs.append(type_invalid(f"{field}[{k}]", v, "must be a string"))
        else:
            errs += check(field, v, label_value(v))
    return errs


def annotation_map(field: str, value: Any) -> list[FieldError]:
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [type_invalid(field, value, "must be a map of string keys to string values")]
    errs: list[FieldError] = []
    total = 0
    for k, v in value.items():
        errs += check(field, k, qualified_name(k.lower()))
        if not isinstance(v, str):
            errs.append(type_invalid(f"{field}[{k}]", v, "must be a string"))
        else:
            total += len(k) + len(v)
    if total > 256 * 1024:
        errs.append(too_long(field, 256 * 1024))
    return errs


def non_negative(field: str, value: Any) -> list[FieldError]:
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return [type_invalid(field, value, "must be an integer")]
    if value < 0:
        return [invalid(field, value, "must be greater than or equal to 0")]
    return []


def positive(field: str, value: Any) -> list[FieldError]:
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return [type_invalid(field, value, "must be an integer")]
    if value <= 0:
        return [invalid(field, value, "must be greater than 0")]
    return []


def one_of(field: str, value: Any, supported: Iterable[str]) -> list[FieldError]:
    supported = list(supported)
    if value is None or value in supported:
        return []
    return [not_supported(field, value, supported)]


def label_selector(field: str, sel: Any) -> list[FieldError]:
    """`metav1 ValidateLabelSelector`: matchLabels as labels; matchExpressions keys, operators and values."""
    if sel is None:
        return []
    if not isinstance(sel, Mapping):
        return [type_invalid(field, sel, "must be a label selector object")]
    errs = labels(f"{field}.matchLabels", sel.get("matchLabels"))
    for i, expr in enumerate(sel.get("matchExpressions") or []):
        p = f"{field}.matchExpressions[{i}]"
        if not isinstance(expr, Mapping):
            errs.append(type_invalid(p, expr, "must be a label selector requirement"))
            continue
        op, values = expr.get("operator"), expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errs.append(required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(forbidden(f"{p}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(invalid(f"{p}.operator", op, "not a valid selector operator"))
        key = expr.get("key") or ""
        errs += check(f"{p}.key", key, qualified_name(key))
        for j, val in enumerate(values):
            if isinstance(val, str):
                errs += check(f"{p}.values[{j}]", val, label_value(val))
    return errs
