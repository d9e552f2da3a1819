"""Container and image-pull back-off: 10 s doubling to 5 min, upstream's messages and Go duration format."""

from __future__ import annotations

import pytest

from skiff.agent.backoff import (
    Backoff,
    container_key,
    crash_loop_message,
    go_duration,
    image_backoff_message,
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0, "0s", id="zero"),
        pytest.param(10, "10s", id="seconds"),
        pytest.param(80, "1m20s", id="minutes"),
        pytest.param(300, "5m0s", id="whole-minutes"),
        pytest.param(1.5, "1.5s", id="fraction"),
        pytest.param(0.25, "250ms", id="milliseconds"),
        pytest.param(3725, "1h2m5s", id="hours"),
    ],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_delays_double_up_to_five_minutes() -> None:
    b = Backoff()
    delays = [b.next("k", float(i)) for i in range(7)]
    assert delays == [10, 20, 40, 80, 160, 300, 300]


@pytest.mark.parametrize(
    ("failures", "finished_ago", "held"),
    [
        pytest.param(0, 0.0, False, id="never-failed"),
        pytest.param(1, 5.0, True, id="within-first-delay"),
        pytest.param(1, 10.0, False, id="first-delay-over"),
        pytest.param(2, 15.0, True, id="within-doubled-delay"),
        pytest.param(2, 20.0, False, id="doubled-delay-over"),
    ],
)
def test_in_backoff_since_the_container_finished(failures: int, finished_ago: float, held: bool) -> None:
    b = Backoff()
    for _ in range(failures):
        b.next("k", 1000.0)
    assert b.in_backoff_since("k", 1000.0, 1000.0 + finished_ago) is held


def test_an_entry_untouched_for_twice_the_maximum_starts_over() -> None:
    b = Backoff()
    for t in range(4):
        b.next("k", float(t))
    assert b.get("k") == 80
    assert b.next("k", 3.0 + 601.0) == 10


def test_remaining_time_and_forgetting_a_pod() -> None:
    b = Backoff()
    b.next(container_key("uid-1", "app"), 100.0)
    b.next(container_key("uid-2", "app"), 100.0)
    assert b.remaining(container_key("uid-1", "app"), 100.0, 104.0) == 6.0
    b.forget_prefix("uid-1/")
    assert b.get(container_key("uid-1", "app")) == 0 and b.get(container_key("uid-2", "app")) == 10


def test_image_backoff_counts_from_the_last_failure() -> None:
    b = Backoff()
    b.next("img", 50.0)
    assert b.in_backoff_since_update("img", 59.0)
    assert not b.in_backoff_since_update("img", 60.0)


def test_messages_are_worded_as_upstream() -> None:
    assert crash_loop_message(20, "app", "web_default(u1)") == (
        "back-off 20s restarting failed container=app pod=web_default(u1)")
    assert image_backoff_message("nginx:1") == 'Back-off pulling image "nginx:1"'
