"""API benchmark: writes, reads and watch delivery through HTTPS and in-process; start-to-ready and idle memory.

Run: `python bench/bench_api.py [--seconds 3] [--concurrency 1,10,100]`. Everything runs against a fresh
server on loopback with a temporary data dir; the load is bounded in time and count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skiff.apiserver.certs import bootstrap
from skiff.apiserver.registry.generic import ListOptions, WriteOptions
from skiff.apiserver.server import ControlPlane
from skiff.storage.sqlite import SQLiteStore
from skiff.testing import ServerProcess, free_port

MAX_OPS = 20000


def pct(lat: list[float], p: float) -> float:
    if not lat:
        return 0.0
    lat = sorted(lat)
    return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000


async def run_load(concurrency: int, seconds: float, op: Any) -> tuple[int, list[float], float]:
    lat: list[float] = []
    count = 0
    stop_at = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal count
        i = 0
        while time.perf_counter() < stop_at and count < MAX_OPS:
            t0 = time.perf_counter()
            await op(w, i)
            lat.append(time.perf_counter() - t0)
            count += 1
            i += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return count, lat, time.perf_counter() - t0


def row(label: str, conc: int, n: int, lat: list[float], elapsed: float) -> str:
    return f"{label:<28} {conc:>5} {n / elapsed:>10.0f} {pct(lat, 50):>9.2f} {pct(lat, 99):>9.2f}"


async def bench_https(srv: ServerProcess, concs: list[int], seconds: float) -> list[str]:
    ctx = ssl.create_default_context(cafile=str(srv.ca_file))
    headers = {"Authorization": f"Bearer {srv.token}", "Content-Type": "application/json"}
    out = []
    conn = aiohttp.TCPConnector(ssl=ctx, limit=0)
    async with aiohttp.ClientSession(srv.url, connector=conn, headers=headers) as http:
        for c in concs:
            # Open the c connections first: TLS handshakes are not request latency.
            async def warm() -> None:
                async with http.get("/version") as r:
                    await r.read()

            await asyncio.gather(*(warm() for _ in range(c)))

            async def create(w: int, i: int, c: int = c) -> None:
                body = {"metadata": {"name": f"h{c}-{w}-{i}"}, "data": {"k": "v"}}
                async with http.post("/api/v1/namespaces/default/configmaps", data=json.dumps(body)) as r:
                    assert r.status == 201, await r.text()
                    await r.read()

            n, lat, el = await run_load(c, seconds, create)
            out.append(row("https create configmap", c, n, lat, el))

            async def get(w: int, i: int, c: int = c) -> None:
                async with http.get(f"/api/v1/namespaces/default/configmaps/h{c}-{w}-0") as r:
                    await r.read()

            n, lat, el = await run_load(c, seconds, get)
            out.append(row("https get configmap", c, n, lat, el))
        t0 = time.perf_counter()
        async with http.get("/api/v1/namespaces/default/configmaps") as r:
            items = (await r.json())["items"]
        out.append(f"{'https list all configmaps':<28} {len(items):>5} items in {(time.perf_counter() - t0) * 1000:.1f} ms")
    return out


async def bench_watch(srv: ServerProcess, events: int = 2000) -> str:
    ctx = ssl.create_default_context(cafile=str(srv.ca_file))
    headers = {"Authorization": f"Bearer {srv.token}", "Content-Type": "application/json"}
    conn = aiohttp.TCPConnector(ssl=ctx, limit=0)
    async with aiohttp.ClientSession(srv.url, connector=conn, headers=headers) as http:
        async with http.get("/api/v1/namespaces/default/configmaps?limit=1") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        seen = 0
        first_at = 0.0

        async def watcher() -> None:
            nonlocal seen, first_at
            async with http.get(f"/api/v1/namespaces/kube-public/configmaps?watch=1&resourceVersion={rv}") as r:
                async for _line in r.content:
                    if seen == 0:
                        first_at = time.perf_counter()
                    seen += 1
                    if seen >= events:
                        return

        task = asyncio.create_task(watcher())
        t0 = time.perf_counter()
        sem = asyncio.Semaphore(50)

        async def create(i: int) -> None:
            async with sem, http.post("/api/v1/namespaces/kube-public/configmaps",
                                      data=json.dumps({"metadata": {"name": f"w{i}"}})) as r:
                await r.read()

        await asyncio.gather(*(create(i) for i in range(events)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 30)
        el = time.perf_counter() - t0
    return f"{'https watch delivery':<28} {seen} events in {el:.2f} s = {seen / el:.0f} events/s (while writing)"


async def bench_inprocess(concs: list[int], seconds: float) -> list[str]:
    tmp = Path(tempfile.mkdtemp(prefix="skiff-bench-"))
    try:
        creds = bootstrap(tmp, "127.0.0.1", free_port())
        store = SQLiteStore(str(tmp / "state.db"))
        await store.start()
        plane = ControlPlane(store, creds)
        await plane.seed()
        reg = plane.registries[("", "configmaps")]
        out = []
        for c in concs:
            async def create(w: int, i: int, c: int = c) -> None:
                await reg.create("default", {"metadata": {"name": f"p{c}-{w}-{i}"}, "data": {"k": "v"}},
                                 WriteOptions(field_manager="bench"))

            n, lat, el = await run_load(c, seconds, create)
            out.append(row("in-process create", c, n, lat, el))

            async def get(w: int, i: int, c: int = c) -> None:
                await reg.get("default", f"p{c}-{w}-0")

            n, lat, el = await run_load(c, seconds, get)
            out.append(row("in-process get", c, n, lat, el))
        t0 = time.perf_counter()
        lst = await reg.list("default", ListOptions())
        out.append(f"{'in-process list':<28} {len(lst['items']):>5} items in {(time.perf_counter() - t0) * 1000:.1f} ms")
        await store.close()
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--concurrency", default="1,10,100")
    args = ap.parse_args()
    concs = [int(c) for c in args.concurrency.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="skiff-bench-"))
    try:
        (tmp / "home").mkdir()
        t0 = time.perf_counter()
        srv = ServerProcess(tmp / "data", free_port()).start()
        first_start = time.perf_counter() - t0
        srv.stop()
        t0 = time.perf_counter()
        srv.start()
        ready = time.perf_counter() - t0
        time.sleep(1.0)
        assert srv.proc is not None
        idle = rss_kib(srv.proc.pid)
        print(f"start-to-ready: first start {first_start:.2f} s (creates CA and certs), restart {ready:.2f} s")
        print(f"idle server RSS: {idle / 1024:.1f} MiB")
        print(f"{'operation':<28} {'conc':>5} {'ops/s':>10} {'p50 ms':>9} {'p99 ms':>9}")
        for line in asyncio.run(bench_https(srv, concs, args.seconds)):
            print(line)
        print(asyncio.run(bench_watch(srv)))
        srv.stop()
        for line in asyncio.run(bench_inprocess(concs, args.seconds)):
            print(line)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
