"""SQLiteStore against the storage contract in skiff/storage/interface.py."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from skiff.storage.fanout import WatchOverflow
from skiff.storage.interface import (
    KV,
    Compacted,
    Event,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    RevisionMismatch,
    StorageError,
)
from skiff.storage.sqlite import SQLiteStore, StoreClosed

REPO = Path(__file__).resolve().parents[3]
HANG_GUARD = 60.0  # seconds; turns a missed event (a hang) into a failure, never asserts speed


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(str(tmp_path / "state.db"))
    await s.start()
    yield s
    await s.close()


async def collect(it: AsyncIterator[Event], n: int) -> list[Event]:
    """The next `n` events (fewer if the stream ends)."""
    out: list[Event] = []
    async with asyncio.timeout(HANG_GUARD):
        async for ev in it:
            out.append(ev)
            if len(out) == n:
                break
    return out


async def next_event(it: AsyncIterator[Event]) -> Event:
    async with asyncio.timeout(HANG_GUARD):
        return await anext(it)


# --- CRUD and errors -------------------------------------------------------------------------------------


async def test_crud_round_trip(store: SQLiteStore) -> None:
    base = store.revision
    created = await store.create("/r/cm/ns/a", b"v1")
    assert created == KV("/r/cm/ns/a", b"v1", base + 1, base + 1)
    assert store.revision == base + 1
    assert await store.get("/r/cm/ns/a") == created

    updated = await store.update("/r/cm/ns/a", b"v2", created.mod_revision)
    assert updated == KV("/r/cm/ns/a", b"v2", base + 2, base + 1)
    assert await store.get("/r/cm/ns/a", revision=base + 1) == created  # history is readable

    deleted = await store.delete("/r/cm/ns/a", updated.mod_revision)
    assert deleted == KV("/r/cm/ns/a", b"v2", base + 3, base + 1)  # last live value, delete's revision
    assert await store.get("/r/cm/ns/a") is None
    assert await store.get("/r/cm/ns/a", revision=base + 2) == updated

    again = await store.create("/r/cm/ns/a", b"v3")
    assert again == KV("/r/cm/ns/a", b"v3", base + 4, base + 4)  # a new incarnation
    assert await store.count("/r/cm/") == 1


async def _seed(store: SQLiteStore) -> dict[str, KV]:
    live1 = await store.create("/k/live", b"1")
    live2 = await store.update("/k/live", b"2", live1.mod_revision)
    gone = await store.create("/k/gone", b"g")
    gone_del = await store.delete("/k/gone")
    return {"live1": live1, "live2": live2, "gone": gone, "gone_del": gone_del}


ErrCase = Callable[[SQLiteStore, dict[str, KV]], Awaitable[KV]]


@pytest.mark.parametrize(
    ("op", "error"),
    [
        pytest.param(lambda s, kv: s.create("/k/live", b"x"), KeyExists, id="create-live-key"),
        pytest.param(lambda s, kv: s.update("/k/missing", b"x", 1), KeyNotFound, id="update-missing"),
        pytest.param(
            lambda s, kv: s.update("/k/gone", b"x", kv["gone"].mod_revision), KeyNotFound, id="update-deleted"
        ),
        pytest.param(
            lambda s, kv: s.update("/k/live", b"x", kv["live1"].mod_revision),
            RevisionMismatch,
            id="update-stale",
        ),
        pytest.param(
            lambda s, kv: s.delete("/k/live", kv["live1"].mod_revision), RevisionMismatch, id="delete-stale"
        ),
        pytest.param(lambda s, kv: s.delete("/k/missing"), KeyNotFound, id="delete-missing"),
        pytest.param(lambda s, kv: s.delete("/k/gone"), KeyNotFound, id="delete-deleted"),
    ],
)
async def test_write_errors(store: SQLiteStore, op: ErrCase, error: type[StorageError]) -> None:
    kvs = await _seed(store)
    before = store.revision
    with pytest.raises(error) as exc:
        await op(store, kvs)
    assert store.revision == before  # a failed write takes no revision
    if isinstance(exc.value, RevisionMismatch):
        assert exc.value.current == kvs["live2"]
    assert await store.get("/k/live") == kvs["live2"]


async def test_failing_op_in_a_batch_fails_only_itself(store: SQLiteStore) -> None:
    base = store.revision
    same = [store.create("/b/same", b"%d" % i) for i in range(20)]
    distinct = [store.create(f"/b/k{i}", b"x") for i in range(20)]
    results = await asyncio.gather(*same, *distinct, return_exceptions=True)
    same_ok = [r for r in results[:20] if isinstance(r, KV)]
    assert len(same_ok) == 1
    assert all(isinstance(r, KeyExists) for r in results[:20] if not isinstance(r, KV))
    assert all(isinstance(r, KV) for r in results[20:])
    revs = sorted(r.mod_revision for r in results if isinstance(r, KV))
    assert revs == list(range(base + 1, base + 22))  # contiguous: failures consumed none
    assert await store.count("/b/") == 21


async def test_concurrent_read_modify_write_loses_no_update(store: SQLiteStore) -> None:
    await store.create("/cas/counter", b"0")
    workers, per_worker = 20, 25
    conflicts = 0

    async def increment() -> None:
        nonlocal conflicts
        for _ in range(per_worker):
            while True:
                cur = await store.get("/cas/counter")
                assert cur is not None
                try:
                    await store.update("/cas/counter", b"%d" % (int(cur.value) + 1), cur.mod_revision)
                    break
                except RevisionMismatch as e:
                    conflicts += 1
                    assert e.current is not None and e.current.mod_revision > cur.mod_revision

    await asyncio.gather(*(increment() for _ in range(workers)))
    final = await store.get("/cas/counter")
    assert final is not None and int(final.value) == workers * per_worker
    assert conflicts > 0  # the test really raced


# --- list ------------------------------------------------------------------------------------------------


async def test_list_pagination_at_fixed_revision_while_writes_continue(store: SQLiteStore) -> None:
    for i in range(50):
        await store.create(f"/p/{i:03d}", b"orig")
    snapshot = await store.list("/p/")
    assert len(snapshot.items) == 50 and snapshot.remaining == 0 and not snapshot.more

    page = await store.list("/p/", limit=7)
    rev, seen = page.revision, list(page.items)
    assert page.more and page.remaining == 43
    n = 0
    while page.more:
        # writes between pages: update, delete and create keys inside the listed range
        await store.update(f"/p/{n:03d}", b"changed", (await store.get(f"/p/{n:03d}")).mod_revision)  # type: ignore[union-attr]
        await store.delete(f"/p/{49 - n:03d}")
        await store.create(f"/p/{n:03d}x", b"new")
        n += 1
        page = await store.list("/p/", revision=rev, limit=7, start_after=seen[-1].key)
        assert page.revision == rev
        seen.extend(page.items)
        assert page.remaining == 50 - len(seen) and page.more == (page.remaining > 0)
    assert seen == snapshot.items
    latest = await store.list("/p/")
    assert latest.revision == store.revision > rev and len(latest.items) == 50


async def test_list_excludes_sibling_prefixes_at_old_revision(store: SQLiteStore) -> None:
    await store.create("/r/a/1", b"x")
    await store.create("/r/ab/1", b"x")
    await store.create("/r/a/2", b"x")
    rev = store.revision
    await store.delete("/r/a/1")
    old = await store.list("/r/a/", revision=rev)
    assert [kv.key for kv in old.items] == ["/r/a/1", "/r/a/2"]
    assert [kv.key for kv in (await store.list("/r/a/")).items] == ["/r/a/2"]


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda s, rev: s.get("/f/a", revision=rev), id="get"),
        pytest.param(lambda s, rev: s.list("/f/", revision=rev), id="list"),
    ],
)
async def test_reads_beyond_the_current_revision_are_refused(
    store: SQLiteStore, read: Callable[[SQLiteStore, int], Awaitable[object]]
) -> None:
    await store.create("/f/a", b"x")
    with pytest.raises(FutureRevision) as exc:
        await read(store, store.revision + 5)
    assert exc.value.current == store.revision


# --- watch -----------------------------------------------------------------------------------------------


async def test_watch_from_old_revision_delivers_every_event_once_in_order(store: SQLiteStore) -> None:
    for i in range(30):
        await store.create(f"/w/{i}", b"a")
    start = store.revision
    for i in range(30):
        await store.update(f"/w/{i}", b"b", (await store.get(f"/w/{i}")).mod_revision)  # type: ignore[union-attr]
        await store.create(f"/other/{i}", b"a")  # outside the prefix: never delivered

    async def keep_writing() -> None:
        for i in range(30):
            await store.delete(f"/w/{i}")
            await asyncio.sleep(0)

    watch = store.watch("/w/", start)
    writer = asyncio.create_task(keep_writing())
    got = await collect(watch, 60)
    await writer
    await watch.aclose()  # type: ignore[attr-defined]

    expected = [("PUT", f"/w/{i}", b"b") for i in range(30)] + [
        ("DELETE", f"/w/{i}", b"b") for i in range(30)
    ]
    assert [(e.type, e.kv.key, e.kv.value) for e in got] == expected
    revs = [e.revision for e in got]
    assert revs == sorted(set(revs)) and revs[0] > start
    assert all(e.prev is not None and e.prev.value == b"a" for e in got[:30])


async def test_delete_event_carries_the_last_live_value(store: SQLiteStore) -> None:
    kv = await store.create("/d/x", b"v1")
    kv = await store.update("/d/x", b"v2", kv.mod_revision)
    watch = store.watch("/d/", kv.mod_revision)
    task = asyncio.create_task(collect(watch, 1))
    await asyncio.sleep(0)
    gone = await store.delete("/d/x")
    (ev,) = await task
    assert ev == Event("DELETE", gone, kv, gone.mod_revision)
    assert ev.kv.value == b"v2" and not ev.is_create


async def test_watch_resumes_from_the_last_seen_revision(store: SQLiteStore) -> None:
    for i in range(10):
        await store.create(f"/res/{i}", b"x")
    first = store.watch("/res/", 0)
    part = await collect(first, 4)
    await first.aclose()  # type: ignore[attr-defined]
    for i in range(10, 15):
        await store.create(f"/res/{i}", b"x")
    rest = await collect(store.watch("/res/", part[-1].revision), 11)
    keys = [e.kv.key for e in part + rest]
    assert keys == [f"/res/{i}" for i in range(15)]


async def test_watch_below_compact_revision_raises_before_any_event(store: SQLiteStore) -> None:
    for i in range(5):
        await store.create(f"/c/{i}", b"x")
    await store.compact(store.revision - 1)
    with pytest.raises(Compacted) as exc:
        await next_event(store.watch("/c/", store.revision - 3))
    assert exc.value.compact_revision == store.revision - 1
    # at the compact revision itself, the watch works
    evs = await collect(store.watch("/c/", store.compact_revision), 1)
    assert [e.kv.key for e in evs] == ["/c/4"]


async def test_slow_watcher_overflows_without_blocking_writers(tmp_path: Path) -> None:
    s = SQLiteStore(str(tmp_path / "db"), watch_buffer=10)
    await s.start()
    try:
        watch = s.watch("/slow/", s.revision)
        first = asyncio.create_task(next_event(watch))
        await asyncio.sleep(0)
        await s.create("/slow/0", b"x")
        assert (await first).kv.key == "/slow/0"
        for i in range(1, 50):  # the watcher consumes nothing meanwhile; writes still complete
            await s.create(f"/slow/{i}", b"x")
        assert await s.count("/slow/") == 50
        with pytest.raises(WatchOverflow):
            await next_event(watch)
    finally:
        await s.close()


async def test_close_ends_watches_and_refuses_writes(tmp_path: Path) -> None:
    s = SQLiteStore(str(tmp_path / "db"))
    await s.start()
    await s.create("/z/a", b"x")
    watch = s.watch("/z/", 0)
    got = await collect(watch, 1)
    pending = asyncio.create_task(collect(watch, 10))
    await asyncio.sleep(0)
    await s.close()
    assert got[0].kv.key == "/z/a" and await pending == []
    with pytest.raises(StoreClosed):
        await s.create("/z/b", b"x")


# --- compaction ------------------------------------------------------------------------------------------


def _rows(path: str) -> int:
    with sqlite3.connect(path) as c:
        return int(c.execute("SELECT COUNT(*) FROM kine WHERE name != 'compact_rev_key'").fetchone()[0])


async def test_compaction_drops_history_and_refuses_old_reads(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    s = SQLiteStore(path)
    await s.start()
    kv = await s.create("/cp/a", b"0")
    for i in range(1, 10):
        kv = await s.update("/cp/a", b"%d" % i, kv.mod_revision)
    await s.create("/cp/gone", b"x")
    await s.delete("/cp/gone")
    before_compact = kv.mod_revision
    target = s.revision
    await s.create("/cp/b", b"b")  # after the target: kept
    assert _rows(path) == 13

    await s.compact(target)
    assert s.compact_revision == target
    assert _rows(path) == 2  # /cp/a's latest row and /cp/b; the tombstone and superseded rows are gone
    with pytest.raises(Compacted):
        await s.get("/cp/a", revision=before_compact - 1)
    with pytest.raises(Compacted):
        await s.list("/cp/", revision=target - 1)
    at_target = await s.list("/cp/", revision=target)
    assert [(k.key, k.value) for k in at_target.items] == [("/cp/a", b"9")]
    assert await s.get("/cp/a") == kv
    await s.create("/cp/gone", b"again")  # a key whose tombstone was compacted starts over
    await s.compact(target - 3)  # at or below the compact revision: no-op
    with pytest.raises(FutureRevision):
        await s.compact(s.revision + 1)
    await s.close()

    s = SQLiteStore(path)
    await s.start()
    try:
        assert s.compact_revision == target
        with pytest.raises(Compacted):
            await s.get("/cp/a", revision=target - 1)
        assert [k.key for k in (await s.list("/cp/")).items] == ["/cp/a", "/cp/b", "/cp/gone"]
    finally:
        await s.close()


# --- persistence -----------------------------------------------------------------------------------------


async def test_restart_continues_keys_and_revisions(tmp_path: Path) -> None:
    path = str(tmp_path / "data" / "db" / "state.db")  # missing parent directories are created
    s = SQLiteStore(path)
    await s.start()
    a = await s.create("/rs/a", b"1")
    a = await s.update("/rs/a", b"2", a.mod_revision)
    b = await s.create("/rs/b", b"1")
    gone = await s.delete("/rs/b")
    last = s.revision
    await s.close()

    s = SQLiteStore(path)
    await s.start()
    try:
        assert s.revision == last
        assert await s.get("/rs/a") == a
        assert await s.get("/rs/b") is None
        assert await s.get("/rs/b", revision=b.mod_revision) == b
        history = await collect(s.watch("/rs/", 0), 4)
        assert [(e.type, e.revision) for e in history][-1] == ("DELETE", gone.mod_revision)
        c = await s.update("/rs/a", b"3", a.mod_revision)  # CAS state survived too
        assert c.mod_revision == last + 1 and c.create_revision == a.create_revision
        await s.create("/rs/b", b"again")  # the tombstone is honoured
    finally:
        await s.close()


async def test_revisions_never_go_backwards_after_the_newest_rows_are_compacted(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    s = SQLiteStore(path)
    await s.start()
    await s.create("/nb/a", b"x")
    await s.delete("/nb/a")
    top = s.revision
    await s.compact(top)  # removes every row, including the newest (the tombstone)
    await s.close()
    s = SQLiteStore(path)
    await s.start()
    try:
        assert s.revision == top
        assert (await s.create("/nb/a", b"y")).mod_revision == top + 1
    finally:
        await s.close()


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    path = str(tmp_path / "storm.db")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("storm_writer.py")),
        path,
        "50",
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    assert await proc.stdout.readline() == b"ready\n"
    lines: list[bytes] = []
    while len(lines) < 3000:
        line = await proc.stdout.readline()
        assert line, "writer died early"
        lines.append(line)
    proc.send_signal(signal.SIGKILL)
    tail = await proc.stdout.read()
    await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    lines.extend(tail.splitlines(keepends=True))
    acks = [ln.decode().split() for ln in lines if ln.endswith(b"\n")]

    s = SQLiteStore(path)
    await s.start()
    try:
        top = 0
        for key, rev, value in acks:
            kv = await s.get(key, revision=int(rev))
            assert kv is not None and kv.mod_revision == int(rev) and kv.value == value.encode(), key
            top = max(top, int(rev))
        assert len({rev for _, rev, _ in acks}) == len(acks)
        assert s.revision >= top
        assert (await s.create("/after/kill", b"x")).mod_revision > top
    finally:
        await s.close()


# --- batching, chunking, failures ------------------------------------------------------------------------


async def test_compaction_in_chunks_interleaves_with_writes(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("skiff.storage.sqlite.COMPACT_CHUNK", 7)
    kvs = [await store.create(f"/ci/{i}", b"0") for i in range(20)]
    for round_ in range(1, 4):
        kvs = [await store.update(kv.key, b"%d" % round_, kv.mod_revision) for kv in kvs]
    await store.delete("/ci/0")
    target = store.revision
    snapshot = await store.list("/ci/")

    async def keep_writing() -> list[KV]:
        return [await store.create(f"/ci/new{i}", b"n") for i in range(40)]

    writes = asyncio.create_task(keep_writing())
    await store.compact(target)
    created = await writes
    assert (await store.list("/ci/", revision=target)).items == snapshot.items
    latest = await store.list("/ci/")
    assert latest.items == sorted(snapshot.items + created, key=lambda kv: kv.key)


async def test_watch_replays_in_chunks_and_then_follows_live(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("skiff.storage.sqlite.REPLAY_CHUNK", 3)
    for i in range(10):
        await store.create(f"/rc/{i}", b"x")
        await store.create(f"/rc-sibling/{i}", b"x")  # same range start, other prefix: filtered by SQL
    watch = store.watch("/rc/", 0)
    got = await collect(watch, 10)
    live = asyncio.create_task(collect(watch, 1))
    await asyncio.sleep(0)
    await store.create("/rc/live", b"x")
    got += await live
    assert [e.kv.key for e in got] == [f"/rc/{i}" for i in range(10)] + ["/rc/live"]


async def test_compaction_overtaking_a_replay_ends_the_watch_with_compacted(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("skiff.storage.sqlite.REPLAY_CHUNK", 2)
    for i in range(10):
        await store.create(f"/ov/{i}", b"x")
    watch = store.watch("/ov/", 0)
    first = await collect(watch, 2)
    await store.compact(store.revision)
    with pytest.raises(Compacted):
        await next_event(watch)
    assert [e.kv.key for e in first] == ["/ov/0", "/ov/1"]


async def test_watch_from_a_future_revision_skips_up_to_it(store: SQLiteStore) -> None:
    base = store.revision
    watch = store.watch("/fu/", base + 2)
    task = asyncio.create_task(collect(watch, 1))
    await asyncio.sleep(0)
    for i in range(3):
        await store.create(f"/fu/{i}", b"x")
    assert [e.kv.key for e in await task] == ["/fu/2"]


async def test_a_failed_commit_fails_its_callers_and_the_store_recovers(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok = await store.create("/fail/a", b"1")
    monkeypatch.setattr(
        "skiff.storage.sqlite._INSERT", "INSERT INTO no_such_table VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    results = await asyncio.gather(
        store.update("/fail/a", b"2", ok.mod_revision), store.create("/fail/b", b"1"), return_exceptions=True
    )
    assert all(type(r) is StorageError and "commit failed" in str(r) for r in results)
    assert store.revision == ok.mod_revision
    monkeypatch.undo()
    again = await store.update("/fail/a", b"2", ok.mod_revision)  # the failed update left no trace
    assert again.mod_revision == ok.mod_revision + 1
    assert await store.get("/fail/b") is None


async def test_close_commits_writes_already_submitted(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    s = SQLiteStore(path)
    await s.start()
    tasks = [asyncio.create_task(s.create(f"/cl/{i}", b"x")) for i in range(200)]
    await asyncio.sleep(0)  # every task has queued its write
    await s.close()
    kvs = await asyncio.gather(*tasks)
    s = SQLiteStore(path)
    await s.start()
    try:
        assert [kv.key for kv in (await s.list("/cl/")).items] == sorted(kv.key for kv in kvs)
    finally:
        await s.close()


async def test_state_rebuilt_from_list_and_watch_matches_the_store(store: SQLiteStore) -> None:
    """The informer contract: list at R + watch from R reproduces the store, under random concurrent churn."""
    rng = random.Random(7)
    for i in range(30):
        await store.create(f"/inf/{i}", b"0")
    listed = await store.list("/inf/")
    mirror = {kv.key: kv for kv in listed.items}
    watch = store.watch("/inf/", listed.revision)

    async def churn(worker: int) -> None:
        for step in range(40):
            key = f"/inf/{rng.randrange(40)}"
            cur = await store.get(key)
            try:
                if cur is None:
                    await store.create(key, b"%d-%d" % (worker, step))
                elif rng.random() < 0.2:
                    await store.delete(key, cur.mod_revision)
                else:
                    await store.update(key, b"%d-%d" % (worker, step), cur.mod_revision)
            except (KeyExists, KeyNotFound, RevisionMismatch):
                pass

    await asyncio.gather(*(churn(w) for w in range(25)))
    final = store.revision
    async with asyncio.timeout(HANG_GUARD):
        async for ev in watch:
            if ev.type == "DELETE":
                del mirror[ev.kv.key]
            else:
                mirror[ev.kv.key] = ev.kv
            if ev.revision == final:
                break
    assert sorted(mirror.values(), key=lambda kv: kv.key) == (await store.list("/inf/")).items
