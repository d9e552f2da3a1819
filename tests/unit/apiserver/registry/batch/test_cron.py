"""The cron schedule parser: robfig/cron ParseStandard semantics and error messages."""

from __future__ import annotations

import pytest

from skiff.apiserver.registry.batch.cron import CronError, parse_standard


@pytest.mark.parametrize(
    ("spec", "minutes", "hours", "dow"),
    [
        pytest.param("*/15 * * * *", {0, 15, 30, 45}, set(range(24)), set(range(7)), id="step"),
        pytest.param("5 1-3 * * mon-wed", {5}, {1, 2, 3}, {1, 2, 3}, id="ranges-and-names"),
        pytest.param("0,30 9 * * SUN", {0, 30}, {9}, {0}, id="list-and-upper-name"),
        pytest.param("10/20 * * * *", {10, 30, 50}, set(range(24)), set(range(7)), id="start-step"),
        pytest.param("@hourly", {0}, set(range(24)), set(range(7)), id="hourly"),
        pytest.param("@weekly", {0}, {0}, {0}, id="weekly"),
        pytest.param("TZ=UTC 0 12 * * *", {0}, {12}, set(range(7)), id="tz-prefix"),
    ],
)
def test_parses(spec: str, minutes: set[int], hours: set[int], dow: set[int]) -> None:
    s = parse_standard(spec)
    assert (set(s.minutes), set(s.hours), set(s.days_of_week)) == (minutes, hours, dow)


def test_every() -> None:
    assert parse_standard("@every 1h30m").every == 5400


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("", "empty spec string", id="empty"),
        pytest.param("* * * *", "expected exactly 5 fields, found 4: [* * * *]", id="too-few"),
        pytest.param("0 0 0 * * *", "expected exactly 5 fields, found 6: [0 0 0 * * *]", id="seconds-field"),
        pytest.param("61 * * * *", "end of range (61) above maximum (59): 61", id="minute-range"),
        pytest.param("* * 0 * *", "beginning of range (0) below minimum (1): 0", id="dom-zero"),
        pytest.param("* * * * 7", "end of range (7) above maximum (6): 7", id="dow-seven"),
        pytest.param("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1", id="backwards"),
        pytest.param("*/0 * * * *", "step of range should be a positive number: */0", id="zero-step"),
        pytest.param(
            "x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax', id="not-int"
        ),
        pytest.param("1-2-3 * * * *", "too many hyphens: 1-2-3", id="hyphens"),
        pytest.param("1/2/3 * * * *", "too many slashes: 1/2/3", id="slashes"),
        pytest.param("@fortnightly", "unrecognized descriptor: @fortnightly", id="descriptor"),
        pytest.param(
            "@every soon", 'failed to parse duration @every soon: time: invalid duration "soon"', id="every"
        ),
        pytest.param(
            "TZ=Mars/Base * * * * *",
            "provided bad location Mars/Base: unknown time zone Mars/Base",
            id="bad-tz",
        ),
    ],
)
def test_errors(spec: str, message: str) -> None:
    with pytest.raises(CronError) as exc:
        parse_standard(spec)
    assert str(exc.value) == message
