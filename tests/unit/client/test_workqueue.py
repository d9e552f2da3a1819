"""RateLimitingQueue: upstream workqueue semantics (dedupe, one-at-a-time per key, delays, back-off)."""

from __future__ import annotations

import asyncio

import pytest

from skiff.client.workqueue import ItemExponentialRateLimiter, RateLimitingQueue

GUARD = 10.0  # only keeps a broken queue from hanging the run; no test asserts on durations


async def next_key(q: RateLimitingQueue) -> str | None:
    return await asyncio.wait_for(q.get(), GUARD)


@pytest.mark.parametrize(
    ("failures", "delay"),
    [
        pytest.param(0, 0.005, id="first-retry-5ms"),
        pytest.param(1, 0.010, id="second-doubles"),
        pytest.param(4, 0.080, id="fifth"),
        pytest.param(17, 655.36, id="just-under-cap"),
        pytest.param(18, 1000.0, id="capped-at-1000s"),
        pytest.param(200, 1000.0, id="huge-count-stays-capped"),
    ],
)
def test_item_exponential_backoff(failures: int, delay: float) -> None:
    rl = ItemExponentialRateLimiter()
    for _ in range(failures):
        rl.when("k")
    assert rl.when("k") == pytest.approx(delay)
    assert rl.num_requeues("k") == failures + 1


def test_backoff_is_per_key_and_forget_resets() -> None:
    rl = ItemExponentialRateLimiter()
    rl.when("a")
    rl.when("a")
    assert rl.when("b") == pytest.approx(0.005)
    rl.forget("a")
    assert rl.num_requeues("a") == 0
    assert rl.when("a") == pytest.approx(0.005)


async def test_adds_are_deduplicated_and_fifo() -> None:
    q = RateLimitingQueue("t")
    for k in ("a", "b", "a", "c", "b"):
        q.add(k)
    assert len(q) == 3
    assert [await next_key(q) for _ in range(3)] == ["a", "b", "c"]
    assert len(q) == 0


async def test_key_in_processing_is_not_handed_out_until_done() -> None:
    q = RateLimitingQueue("t")
    q.add("a")
    assert await next_key(q) == "a"
    q.add("a")  # changed while a worker syncs it
    q.add("a")
    assert len(q) == 0  # not handed to a second worker
    q.done("a")
    assert len(q) == 1
    assert await next_key(q) == "a"
    q.done("a")
    assert len(q) == 0


async def test_done_without_readd_does_not_requeue() -> None:
    q = RateLimitingQueue("t")
    q.add("a")
    assert await next_key(q) == "a"
    q.done("a")
    assert len(q) == 0


async def test_waiting_get_is_woken_by_add() -> None:
    q = RateLimitingQueue("t")
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add("x")
    assert await asyncio.wait_for(getter, GUARD) == "x"


async def test_shutdown_wakes_getters_with_none_and_ignores_adds() -> None:
    q = RateLimitingQueue("t")
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.shutdown()
    assert await asyncio.wait_for(asyncio.gather(*getters), GUARD) == [None, None, None]
    q.add("a")
    assert len(q) == 0
    assert await next_key(q) is None


async def test_add_after_holds_the_key_until_its_time() -> None:
    q = RateLimitingQueue("t")
    q.add_after("a", 0.02)
    assert len(q) == 0
    assert await next_key(q) == "a"


async def test_add_after_keeps_the_earliest_time() -> None:
    q = RateLimitingQueue("t")
    q.add_after("a", 3600)
    q.add_after("a", 0.01)  # earlier: replaces the hour-long wait
    q.add_after("a", 3600)  # later: ignored
    assert await next_key(q) == "a"
    q.shutdown()


async def test_add_after_zero_is_add() -> None:
    q = RateLimitingQueue("t")
    q.add_after("a", 0)
    assert len(q) == 1


async def test_rate_limited_adds_back_off_until_forget() -> None:
    q = RateLimitingQueue("t")
    q.add_rate_limited("a")
    q.add_rate_limited("a")
    assert q.num_requeues("a") == 2
    assert len(q) == 0
    assert await next_key(q) == "a"
    q.forget("a")
    assert q.num_requeues("a") == 0


async def test_shutdown_cancels_delayed_adds() -> None:
    q = RateLimitingQueue("t")
    q.add_after("a", 0.01)
    q.shutdown()
    await asyncio.sleep(0.05)
    assert len(q) == 0
