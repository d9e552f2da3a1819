"""Benchmark the SQLite store: write throughput and latency by concurrency, reads, watch fan-out.

Run: `python bench/bench_storage.py [--dir DIR] [--quick]`. DIR must be on the disk the store will really use
(fsync cost is the point); the default is a fresh temporary directory, removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skiff.storage.interface import Event
from skiff.storage.sqlite import SQLiteStore

VALUE = b"x" * 600  # about a small serialized ConfigMap / Pod without status


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * p))] * 1000


async def timed_ops(
    concurrency: int, total: int, op: Callable[[int, int], Awaitable[object]]
) -> tuple[float, list[float]]:
    """Run `total` ops spread over `concurrency` tasks; op(worker, i). Returns (ops/s, latencies in s)."""
    lat: list[float] = []
    per = total // concurrency

    async def worker(w: int) -> None:
        for i in range(per):
            t = time.perf_counter()
            await op(w, i)
            lat.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for w in range(concurrency):
            tg.create_task(worker(w))
    return len(lat) / (time.perf_counter() - t0), lat


async def bench_writes(store: SQLiteStore, quick: bool) -> list[tuple[str, int, float, float, float]]:
    rows = []
    sizes = {1: 300, 10: 3_000, 100: 10_000, 1000: 20_000}
    for c, total in sizes.items():
        total = max(c, total // (5 if quick else 1))
        tag = f"c{c}"
        revs: dict[tuple[int, int], int] = {}

        async def create(w: int, i: int, tag: str = tag, revs: dict[tuple[int, int], int] = revs) -> None:
            kv = await store.create(f"/bench/{tag}/{w}/{i}", VALUE)
            revs[(w, i)] = kv.mod_revision

        rate, lat = await timed_ops(c, total, create)
        rows.append(("create", c, rate, pct(lat, 0.5), pct(lat, 0.99)))

        async def update(w: int, i: int, tag: str = tag, revs: dict[tuple[int, int], int] = revs) -> None:
            kv = await store.update(f"/bench/{tag}/{w}/{i}", VALUE, revs[(w, i)])
            revs[(w, i)] = kv.mod_revision

        rate, lat = await timed_ops(c, total, update)
        rows.append(("update", c, rate, pct(lat, 0.5), pct(lat, 0.99)))
    return rows


async def bench_reads(store: SQLiteStore, quick: bool) -> list[tuple[str, float]]:
    n = 2_000 if quick else 10_000
    for i in range(1_000):
        if i % 100 == 0:
            await asyncio.gather(*(store.create(f"/read/ns{i // 100}/{j}", VALUE) for j in range(100)))
    old = store.revision
    await asyncio.gather(*(store.create(f"/read/later/{j}", VALUE) for j in range(100)))
    keys = [f"/read/ns{random.randrange(10)}/{random.randrange(100)}" for _ in range(n)]
    out = []

    async def run(name: str, count: int, fn: Callable[[int], Awaitable[object]], conc: int = 10) -> None:
        async def worker(w: int) -> None:
            for i in range(w, count, conc):
                await fn(i)

        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for w in range(conc):
                tg.create_task(worker(w))
        out.append((name, count / (time.perf_counter() - t0)))

    await run("get (latest, memory)", n, lambda i: store.get(keys[i]))
    await run("get (old revision, SQL)", n // 5, lambda i: store.get(keys[i], revision=old))
    await run("list 100 keys (latest, memory)", n // 5, lambda i: store.list(f"/read/ns{i % 10}/"))
    await run(
        "list 100 keys (old revision, SQL)", n // 20, lambda i: store.list(f"/read/ns{i % 10}/", revision=old)
    )
    await run("list page 50 of 1000 (latest)", n // 5, lambda i: store.list("/read/", limit=50))
    return out


async def bench_watch(store: SQLiteStore, quick: bool) -> list[tuple[str, float, float]]:
    out = []
    events = 2_000 if quick else 10_000
    for watchers in (1, 100):
        prefix = f"/watch/{watchers}/"
        start = store.revision
        streams = [store.watch(prefix, start) for _ in range(watchers)]

        async def consume(it: AsyncIterator[Event]) -> None:
            n = 0
            async for _ in it:
                n += 1
                if n == events:
                    break

        async def create(w: int, i: int, prefix: str = prefix) -> None:
            await store.create(f"{prefix}{w}/{i}", VALUE)

        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as tg:  # exits once every watcher has seen every event
            for it in streams:
                tg.create_task(consume(it))
            await asyncio.sleep(0)
            await timed_ops(100, events, create)
        dt = time.perf_counter() - t0
        out.append((f"live, {watchers} watcher(s)", events * watchers / dt, events / dt))
        # replay of the same history from the table (a watch from an old revision)
        t0 = time.perf_counter()
        n = 0
        async for _ in store.watch(prefix, start):
            n += 1
            if n == events:
                break
        out.append(("replay from table, 1 watcher", events / (time.perf_counter() - t0), 0.0))
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", help="directory for the database (default: a temporary one)")
    ap.add_argument("--quick", action="store_true", help="fewer operations")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="skiff-bench-", dir=args.dir)
    try:
        store = SQLiteStore(os.path.join(tmp, "state.db"))
        await store.start()
        try:
            print(f"SQLiteStore benchmark (db in {tmp}, value {len(VALUE)} B, {os.cpu_count()} CPUs)\n")
            print(f"{'write':8} {'conc':>5} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
            for name, c, rate, p50, p99 in await bench_writes(store, args.quick):
                print(f"{name:8} {c:>5} {rate:>9.0f} {p50:>8.2f} {p99:>8.2f}")
            print(f"\n{'read (10 concurrent)':36} {'ops/s':>9}")
            for name, rate in await bench_reads(store, args.quick):
                print(f"{name:36} {rate:>9.0f}")
            print(f"\n{'watch':36} {'deliveries/s':>12} {'events/s':>9}")
            for name, deliveries, rate in await bench_watch(store, args.quick):
                print(
                    f"{name:36} {deliveries:>12.0f} {rate:>9.0f}"
                    if rate
                    else f"{name:36} {deliveries:>12.0f}"
                )
        finally:
            await store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
