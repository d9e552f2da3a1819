"""Kubernetes resource quantities (`250m`, `512Mi`, `1.5Gi`, `1e3`): parse, compare, format.

Mirrors `apimachinery/pkg/api/resource/quantity.go` for the parts skiff needs: exact decimal values
(never floats) and the canonical suffixes used in status fields.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_RE = re.compile(QUANTITY_PATTERN)

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


class QuantityError(ValueError):
    pass


def parse_quantity(value: str | int | float) -> Decimal:
    """Exact value of a quantity; raises QuantityError with upstream's message when malformed."""
    if isinstance(value, bool):
        raise QuantityError(f"quantities must match the regular expression '{QUANTITY_PATTERN}'")
    if isinstance(value, int | float):
        return Decimal(str(value))
    m = _RE.match(value.strip()) if isinstance(value, str) else None
    if not m:
        raise QuantityError(f"quantities must match the regular expression '{QUANTITY_PATTERN}'")
    number, suffix = m.groups()
    try:
        base = Decimal(number)
    except InvalidOperation as e:
        raise QuantityError("unable to parse quantity's suffix") from e
    if suffix in _BINARY:
        return base * _BINARY[suffix]
    if suffix in _DECIMAL:
        return base * _DECIMAL[suffix]
    if suffix[:1] in ("e", "E"):
        try:
            return base * (Decimal(10) ** int(suffix[1:]))
        except ValueError as e:
            raise QuantityError("unable to parse quantity's suffix") from e
    raise QuantityError("unable to parse quantity's suffix")


def is_quantity(value: object) -> bool:
    try:
        parse_quantity(value)  # type: ignore[arg-type]
    except QuantityError:
        return False
    return True


def format_cpu(cores: Decimal) -> str:
    """CPU in millicores when fractional (`250m`), whole cores otherwise (`2`)."""
    millis = (cores * 1000).to_integral_value()
    return str(int(millis // 1000)) if millis % 1000 == 0 else f"{int(millis)}m"


def format_bytes(n: Decimal) -> str:
    """Bytes with the largest exact binary suffix (`512Mi`), as upstream's BinarySI canonical form."""
    value = int(n)
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = _BINARY[suffix]
        if value and value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(value)
