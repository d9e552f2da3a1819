"""Standard cron schedules as the CronJob API validates them (`robfig/cron/v3` ParseStandard).

Five fields (minute hour day-of-month month day-of-week), `*`/`?`, ranges, steps, lists, month and
weekday names, the descriptors `@yearly @annually @monthly @weekly @daily @midnight @hourly` and
`@every <duration>`, and an optional `TZ=`/`CRON_TZ=` prefix. Errors carry robfig's messages, which
upstream puts verbatim into the field error. The parse result is the set of allowed values per field,
enough for a controller to compute next run times.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass


class CronError(ValueError):
    pass


@dataclass(frozen=True)
class Bounds:
    lo: int
    hi: int
    names: tuple[tuple[str, int], ...] = ()


MINUTES = Bounds(0, 59)
HOURS = Bounds(0, 23)
DOM = Bounds(1, 31)
MONTHS = Bounds(
    1,
    12,
    tuple(
        (m, i + 1)
        for i, m in enumerate(
            ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
        )
    ),
)
DOW = Bounds(0, 6, tuple((d, i) for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))))

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_GO_DURATION = re.compile(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$")


@dataclass(frozen=True)
class Schedule:
    """Allowed values per field; `every` is set (seconds) for `@every` schedules instead."""

    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days_of_month: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    days_of_week: frozenset[int] = frozenset()
    dom_star: bool = False
    dow_star: bool = False
    every: float | None = None
    location: str | None = None


def _go_fields(fields: list[str]) -> str:
    return "[" + " ".join(fields) + "]"


def _parse_int(expr: str) -> int:
    """robfig `mustParseInt`, with Go's strconv.Atoi error text."""
    if not re.fullmatch(r"[+-]?\d+", expr):
        raise CronError(f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": invalid syntax')
    num = int(expr)
    if num < 0:
        raise CronError(f"negative number ({num}) not allowed: {expr}")
    return num


def _int_or_name(expr: str, b: Bounds) -> int:
    for name, value in b.names:
        if expr.lower() == name:
            return value
    return _parse_int(expr)


def _range(expr: str, b: Bounds) -> tuple[set[int], bool]:
    """One comma-separated term: `*`, `a`, `a-b`, with an optional `/step`. Returns (values, star)."""
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    single = len(low_high) == 1
    star = False
    if low_high[0] in ("*", "?"):
        start, end, star = b.lo, b.hi, True
    else:
        start = _int_or_name(low_high[0], b)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _int_or_name(low_high[1], b)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _parse_int(range_and_step[1])
        if single:
            end = b.hi
        if step > 1:
            star = False
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < b.lo:
        raise CronError(f"beginning of range ({start}) below minimum ({b.lo}): {expr}")
    if end > b.hi:
        raise CronError(f"end of range ({end}) above maximum ({b.hi}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step)), star


def _field(text: str, b: Bounds) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    star = False
    for term in (t for t in text.split(",") if t):
        got, is_star = _range(term, b)
        values |= got
        star = star or is_star
    return frozenset(values), star


def parse_standard(spec: str) -> Schedule:
    """Parse a CronJob schedule; raises CronError with robfig/cron's message when invalid."""
    if not spec:
        raise CronError("empty spec string")
    location: str | None = None
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space = spec.find(" ")
        eq = spec.find("=")
        name = spec[eq + 1 : space] if space >= 0 else spec[eq + 1 :]
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise CronError(f"provided bad location {name}: unknown time zone {name}") from None
        location = name
        spec = spec[space:].strip() if space >= 0 else ""
    if spec.startswith("@"):
        if spec.startswith("@every "):
            text = spec[len("@every ") :]
            if not _GO_DURATION.match(text):
                raise CronError(f'failed to parse duration {spec}: time: invalid duration "{text}"')
            return Schedule(every=_duration_seconds(text), location=location)
        if spec not in DESCRIPTORS:
            raise CronError(f"unrecognized descriptor: {spec}")
        spec = DESCRIPTORS[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: {_go_fields(fields)}")
    minutes, _ = _field(fields[0], MINUTES)
    hours, _ = _field(fields[1], HOURS)
    dom, dom_star = _field(fields[2], DOM)
    months, _ = _field(fields[3], MONTHS)
    dow, dow_star = _field(fields[4], DOW)
    return Schedule(minutes, hours, dom, months, dow, dom_star, dow_star, None, location)


def _duration_seconds(text: str) -> float:
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    sign = -1.0 if text.startswith("-") else 1.0
    total = 0.0
    for num, unit in re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)", text):
        total += float(num) * units[unit]
    return sign * total
