"""SQLite backend: kine's append-only revision log (`k3s-io/kine`, pkg/drivers/sqlite + pkg/logstructured).

Layout. One table `kine`: every create, update and delete *inserts* a row whose autoincrement `id` is the
global revision; `prev_revision` links to the key's previous row, `create_revision` is carried forward,
deletes write a tombstone (`deleted=1`) holding the last live value, `old_value` feeds etcd's prev_kv. The
row named `compact_rev_key` keeps the compact revision in its `prev_revision` column, as kine does.

Writes. One writer thread owns the only writing connection and does group commit: it takes every pending
op (up to `MAX_BATCH`), checks each one's CAS against the latest state *including earlier ops of the same
batch* (a failing op fails only itself), inserts the rows in one transaction, commits (WAL +
synchronous=FULL: the commit is fsynced), and only then hands the batch back to the event loop, which
updates the in-memory index, publishes the events and resolves the callers' futures. So an acknowledged
write survives `kill -9`, and revisions are assigned and published strictly in order (no gaps, unlike
kine's multi-writer setup that must fill them).

Reads. The latest state lives in a `LatestIndex` updated on the loop together with `revision`, so `get`,
`list` and `count` at the latest revision are snapshot-consistent and never touch SQLite. Reads at an
older revision run kine's `MAX(id) per name WHERE id <= rev` query on a small reader thread pool.

Watch. Subscribe to the in-process fan-out first, remember the revision R it starts at, replay rows
`from_revision < id <= R` from the table, then stream live events with revision > R: no gap, no duplicate.
A watcher more than `watch_buffer` events behind ends with `fanout.WatchOverflow` (map to 410).

Compaction runs in the writer thread in chunks of `COMPACT_CHUNK` revisions between write batches; the
compact revision is raised before any row goes, so no read or watch can see a half-compacted past.

A fresh store is at revision 1 (the `compact_rev_key` row), like a fresh etcd; the first write gets 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from skiff.storage.fanout import DEFAULT_BUFFER, WatchHub
from skiff.storage.index import LatestIndex, prefix_end
from skiff.storage.interface import (
    KV,
    Compacted,
    Event,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    ListResult,
    RevisionMismatch,
    StorageError,
)

T = TypeVar("T")

COMPACT_REV_KEY = "compact_rev_key"
MAX_BATCH = 500  # ops per group-commit transaction
COMPACT_CHUNK = 5_000  # revisions examined per compaction transaction, so writers interleave
REPLAY_CHUNK = 1_000  # rows per watch-replay query

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS kine (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        created INTEGER NOT NULL,
        deleted INTEGER NOT NULL,
        create_revision INTEGER NOT NULL,
        prev_revision INTEGER NOT NULL,
        lease INTEGER NOT NULL DEFAULT 0,
        value BLOB,
        old_value BLOB
    )""",
    "CREATE INDEX IF NOT EXISTS kine_name_index ON kine (name)",
    "CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name, id)",
    "CREATE INDEX IF NOT EXISTS kine_id_deleted_index ON kine (id, deleted)",
    "CREATE INDEX IF NOT EXISTS kine_prev_revision_index ON kine (prev_revision)",
    "CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision)",
)

_INSERT = (
    "INSERT INTO kine (id, name, created, deleted, create_revision, prev_revision, value, old_value) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

_ROW_COLS = "id, name, created, deleted, create_revision, prev_revision, value, old_value"

_Row = tuple[int, str, int, int, int, int, bytes | None, bytes | None]
_KVList = list[KV]  # aliases: inside SQLiteStore, `list` names the method
_EventList = list[Event]


class StoreClosed(StorageError):
    """The store is closed (or closing) and takes no new writes."""

    def __init__(self) -> None:
        super().__init__("storage is closed")


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def _event_from_row(row: _Row) -> Event:
    """Rebuild the event a row recorded (same shape as the writer publishes live)."""
    rid, name, created, deleted, create_rev, prev_rev, value, old_value = row
    kv = KV(name, value or b"", rid, create_rev)
    prev = None if created else KV(name, old_value or b"", prev_rev, create_rev)
    return Event("DELETE" if deleted else "PUT", kv, prev, rid)


# --- writer-side ops -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Write:
    kind: str  # "create" | "update" | "delete"
    key: str
    value: bytes
    expected: int | None
    future: asyncio.Future[KV]


@dataclass(slots=True)
class _Compact:
    revision: int
    future: asyncio.Future[None]
    done_upto: int = 0  # rows with id <= done_upto are compacted


@dataclass(slots=True)
class _Batch:
    """What one commit hands back to the loop: per op either (kv, event) or an error."""

    outcomes: list[tuple[_Write, KV | None, Event | None, StorageError | None]] = field(default_factory=list)
    revision: int = 0


_STOP = object()


class _Writer:
    """The single writer thread: group commit + compaction chunks. Runs off the event loop."""

    def __init__(self, conn: sqlite3.Connection, loop: asyncio.AbstractEventLoop, store: SQLiteStore) -> None:
        self.conn = conn
        self.loop = loop
        self.store = store
        self.queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        # key -> (id of the key's latest row, live KV or None for a tombstone); only this thread touches it.
        self.latest: dict[str, tuple[int, KV | None]] = {}
        self.revision = 0
        self.compact_revision = 0
        self.jobs: list[_Compact] = []
        self.thread = threading.Thread(target=self._run, name="skiff-sqlite-writer", daemon=True)

    def recover(self) -> list[KV]:
        """Create the schema if needed, load the latest row of every key and the revision counters; return
        the live KVs. Runs (off the loop) before the writer thread starts, so nothing else touches the state."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _SCHEMA:
                c.execute(stmt)
            row = c.execute("SELECT prev_revision FROM kine WHERE name = ?", (COMPACT_REV_KEY,)).fetchone()
            if row is None:
                c.execute(
                    "INSERT INTO kine (name, created, deleted, create_revision, prev_revision) VALUES (?, 1, 0, 0, 0)",
                    (COMPACT_REV_KEY,),
                )
                self.compact_revision = 0
            else:
                self.compact_revision = int(row[0])
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        # AUTOINCREMENT keeps the high-water mark even when compaction deletes the newest rows (tombstones),
        # so revisions never go backwards across restarts.
        seq = c.execute("SELECT seq FROM sqlite_sequence WHERE name = 'kine'").fetchone()
        top = c.execute("SELECT MAX(id) FROM kine").fetchone()
        self.revision = max(int(seq[0]) if seq else 0, int(top[0] or 0))
        live: list[KV] = []
        cur = c.execute(
            "SELECT k.id, k.name, k.deleted, k.create_revision, k.value FROM kine k "
            "JOIN (SELECT MAX(id) AS mid FROM kine GROUP BY name) m ON k.id = m.mid WHERE k.name != ?",
            (COMPACT_REV_KEY,),
        )
        for rid, name, deleted, create_rev, value in cur:
            if deleted:
                self.latest[name] = (rid, None)
            else:
                kv = KV(name, value or b"", rid, create_rev)
                self.latest[name] = (rid, kv)
                live.append(kv)
        return live

    def _run(self) -> None:
        stopping = False
        while True:
            if stopping and not self.jobs:
                # drain anything that raced with close() so no caller is left waiting
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    return
            elif self.jobs:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    item = None
            else:
                item = self.queue.get()
            writes: list[_Write] = []
            while item is not None:
                if item is _STOP:
                    stopping = True
                elif isinstance(item, _Compact):
                    self.jobs.append(item)
                elif isinstance(item, _Write):
                    writes.append(item)
                if len(writes) >= MAX_BATCH:
                    break
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    item = None
            try:
                if writes:
                    self._commit(writes)
                if self.jobs:
                    self._compact_step(self.jobs[0])
            except Exception as e:  # a bug here must fail callers, not leave them waiting forever
                err = StorageError(f"sqlite writer failed: {e!r}")
                for op in writes:
                    self.loop.call_soon_threadsafe(_settle, op.future, None, err)

    def _commit(self, writes: list[_Write]) -> None:
        batch = _Batch()
        overlay: dict[str, tuple[int, KV | None]] = {}
        rows: list[_Row] = []
        rev = self.revision
        for op in writes:
            cur = overlay[op.key] if op.key in overlay else self.latest.get(op.key)
            live = cur[1] if cur is not None else None
            err: StorageError | None = None
            if op.kind == "create":
                if live is not None:
                    err = KeyExists(op.key)
            elif live is None:
                err = KeyNotFound(op.key)
            elif op.expected is not None and live.mod_revision != op.expected:
                err = RevisionMismatch(op.key, live)
            if err is not None:
                batch.outcomes.append((op, None, None, err))
                continue
            rev += 1
            prev_id = cur[0] if cur is not None else 0
            if op.kind == "create":
                kv = KV(op.key, op.value, rev, rev)
                rows.append((rev, op.key, 1, 0, rev, prev_id, op.value, None))
                ev = Event("PUT", kv, None, rev)
                overlay[op.key] = (rev, kv)
            else:
                assert live is not None
                if op.kind == "update":
                    kv = KV(op.key, op.value, rev, live.create_revision)
                    rows.append((rev, op.key, 0, 0, live.create_revision, prev_id, op.value, live.value))
                    ev = Event("PUT", kv, live, rev)
                    overlay[op.key] = (rev, kv)
                else:
                    kv = KV(op.key, live.value, rev, live.create_revision)
                    rows.append((rev, op.key, 0, 1, live.create_revision, prev_id, live.value, live.value))
                    ev = Event("DELETE", kv, live, rev)
                    overlay[op.key] = (rev, None)
            batch.outcomes.append((op, kv, ev, None))
        if rows:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.executemany(_INSERT, rows)
                self.conn.execute("COMMIT")
            except Exception as e:  # disk full, I/O error...: nothing of this batch happened
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                failure = StorageError(f"sqlite commit failed: {e}")
                batch.outcomes = [(op, None, None, err or failure) for op, _, _, err in batch.outcomes]
                batch.revision = self.revision
                self.loop.call_soon_threadsafe(self.store._apply, batch)
                return
            self.latest.update(overlay)
            self.revision = rev
        batch.revision = self.revision
        self.loop.call_soon_threadsafe(self.store._apply, batch)

    def _compact_step(self, job: _Compact) -> None:
        """Compact one chunk of revisions (kine's compaction): drop rows superseded at or below the chunk's
        end and tombstones in the chunk, then record the progress in `compact_rev_key`."""
        lo = max(job.done_upto, self.compact_revision)
        hi = min(job.revision, lo + COMPACT_CHUNK)
        c = self.conn
        try:
            c.execute("BEGIN IMMEDIATE")
            if hi > lo:
                c.execute(
                    "DELETE FROM kine WHERE id IN (SELECT prev_revision FROM kine "
                    "WHERE name != ? AND prev_revision != 0 AND id > ? AND id <= ?)",
                    (COMPACT_REV_KEY, lo, hi),
                )
                c.execute("DELETE FROM kine WHERE deleted = 1 AND id > ? AND id <= ?", (lo, hi))
            c.execute(
                "UPDATE kine SET prev_revision = ? WHERE name = ? AND prev_revision < ?",
                (hi, COMPACT_REV_KEY, hi),
            )
            c.execute("COMMIT")
        except Exception as e:
            with contextlib.suppress(sqlite3.Error):
                c.execute("ROLLBACK")
            self.jobs.pop(0)
            self.loop.call_soon_threadsafe(_settle, job.future, None, StorageError(f"compaction failed: {e}"))
            return
        job.done_upto = hi
        self.compact_revision = max(self.compact_revision, hi)
        if hi >= job.revision:
            self.jobs.pop(0)
            # forget tombstones whose rows are gone (their keys start a fresh history with prev_revision 0)
            gone = [k for k, (rid, kv) in self.latest.items() if kv is None and rid <= hi]
            for k in gone:
                del self.latest[k]
            self.loop.call_soon_threadsafe(_settle, job.future, None, None)


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


class SQLiteStore:
    """The default `Store`: kine's append-only log in one SQLite file, single writer with group commit.

    One instance per database file and process. Must be used from one event loop.
    """

    def __init__(self, path: str, *, watch_buffer: int = DEFAULT_BUFFER, read_threads: int = 2) -> None:
        self.path = path
        self._index = LatestIndex()
        self._hub = WatchHub(watch_buffer)
        self._revision = 0
        self._compact_revision = 0
        self._writer: _Writer | None = None
        self._read_threads = read_threads
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = True
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the file (creating the schema), load the latest state, start the writer thread."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._readers = ThreadPoolExecutor(self._read_threads, thread_name_prefix="skiff-sqlite-read")
        conn = await loop.run_in_executor(self._readers, _connect, self.path)
        writer = _Writer(conn, loop, self)
        live = await loop.run_in_executor(self._readers, writer.recover)
        for kv in live:
            self._index.put(kv)
        self._revision = writer.revision
        self._compact_revision = writer.compact_revision
        self._writer = writer
        self._closed = False
        writer.thread.start()

    async def close(self) -> None:
        """Commit what is queued, stop the writer, end every watch, close the connections. Idempotent."""
        if self._closed or self._writer is None:
            return
        self._closed = True
        writer = self._writer
        writer.queue.put(_STOP)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, writer.thread.join)
        await asyncio.sleep(0)  # let the writer's last call_soon_threadsafe callbacks run
        self._hub.close()
        writer.conn.close()
        readers, self._readers = self._readers, None  # new reads now fail fast with StoreClosed
        if readers is not None:
            await loop.run_in_executor(None, readers.shutdown)
        with self._conns_lock:
            for c in self._conns:
                c.close()
            self._conns.clear()

    # --- state ----------------------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def compact_revision(self) -> int:
        return self._compact_revision

    def _apply(self, batch: _Batch) -> None:
        """On the loop: make a committed batch visible (index, revision), then publish and acknowledge."""
        events: list[Event] = []
        index = self._index
        for _op, kv, ev, _err in batch.outcomes:
            if ev is None or kv is None:
                continue
            if ev.type == "DELETE":
                index.remove(kv.key)
            else:
                index.put(kv)
            events.append(ev)
        self._revision = max(self._revision, batch.revision)
        self._hub.publish(events)
        for op, kv, _ev, err in batch.outcomes:
            _settle(op.future, kv, err)

    # --- writes ---------------------------------------------------------------------------------------

    async def _submit(self, kind: str, key: str, value: bytes, expected: int | None) -> KV:
        if self._closed or self._writer is None:
            raise StoreClosed()
        fut: asyncio.Future[KV] = asyncio.get_running_loop().create_future()
        self._writer.queue.put(_Write(kind, key, value, expected, fut))
        return await fut

    async def create(self, key: str, value: bytes) -> KV:
        """Create `key`; `KeyExists` if it is live. Returns once the row is durable."""
        return await self._submit("create", key, value, None)

    async def update(self, key: str, value: bytes, expected_revision: int) -> KV:
        """Compare-and-swap on the key's mod_revision; `RevisionMismatch` carries the current KV."""
        return await self._submit("update", key, value, expected_revision)

    async def delete(self, key: str, expected_revision: int | None = None) -> KV:
        """Write a tombstone; returns the last live KV with mod_revision = the delete's revision."""
        return await self._submit("delete", key, b"", expected_revision)

    async def compact(self, revision: int) -> None:
        """Drop history at or below `revision` (kine's compaction), in chunks between write batches.

        Reads and watches below `revision` raise `Compacted` from this call on (the recorded compact revision
        is raised before rows go, so no reader can observe a half-compacted past). A no-op at or below the
        current compact revision; `FutureRevision` beyond the current revision.
        """
        if self._closed or self._writer is None:
            raise StoreClosed()
        if revision > self._revision:
            raise FutureRevision(revision, self._revision)
        if revision <= self._compact_revision:
            return
        self._compact_revision = revision
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writer.queue.put(_Compact(revision, fut))
        await fut

    # --- reads ----------------------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        if self._readers is None:
            raise StoreClosed()
        return await asyncio.get_running_loop().run_in_executor(self._readers, fn, *args)

    def _check_revision(self, revision: int) -> None:
        if revision < self._compact_revision:
            raise Compacted(revision, self._compact_revision)
        if revision > self._revision:
            raise FutureRevision(revision, self._revision)

    def _check_not_compacted_since(self, revision: int) -> None:
        """After a SQL read at `revision`: a compaction that started meanwhile may have removed rows."""
        if revision < self._compact_revision:
            raise Compacted(revision, self._compact_revision)

    async def get(self, key: str, revision: int | None = None) -> KV | None:
        """Latest reads come from memory; older ones take the key's newest row with id <= revision."""
        if revision is None or revision == self._revision:
            return self._index.get(key)
        self._check_revision(revision)
        kv = await self._read(self._sql_get, key, revision)
        self._check_not_compacted_since(revision)
        return kv

    def _sql_get(self, key: str, revision: int) -> KV | None:
        row = (
            self._conn()
            .execute(
                "SELECT id, deleted, create_revision, value FROM kine WHERE name = ? AND id <= ? "
                "ORDER BY id DESC LIMIT 1",
                (key, revision),
            )
            .fetchone()
        )
        if row is None or row[1]:
            return None
        return KV(key, row[3] or b"", row[0], row[2])

    async def list(
        self,
        prefix: str,
        revision: int | None = None,
        limit: int | None = None,
        start_after: str | None = None,
    ) -> ListResult:
        """A consistent page of live keys under `prefix` at `revision` (latest when None), sorted by key.

        `more` says `limit` cut the list: continue with `start_after=items[-1].key` at `result.revision`;
        `remaining` is the exact number of live keys after this page (upstream's remainingItemCount).
        """
        if limit is not None and limit <= 0:
            limit = None
        if revision is None or revision == self._revision:
            rev = self._revision
            items, left = self._index.range(prefix, limit, start_after)
            return ListResult(items, rev, left > 0, left)
        self._check_revision(revision)
        items, remaining = await self._read(self._sql_list, prefix, revision, limit, start_after)
        self._check_not_compacted_since(revision)
        return ListResult(items, revision, remaining > 0, remaining)

    def _sql_list(
        self, prefix: str, revision: int, limit: int | None, start_after: str | None
    ) -> tuple[_KVList, int]:
        """kine's List: the newest row per name with id <= revision, dropping tombstones; plus how many
        live keys follow the page (a COUNT over the same range, only when the page was cut)."""

        def newest_rows(after: str | None) -> tuple[str, list[Any]]:
            conds = ["name >= ?", "id <= ?", "name != ?"]
            args: list[Any] = [prefix, revision, COMPACT_REV_KEY]
            end = prefix_end(prefix)
            if end is not None:
                conds.append("name < ?")
                args.append(end)
            if after is not None:
                conds.append("name > ?")
                args.append(after)
            sub = f"SELECT MAX(id) AS mid FROM kine WHERE {' AND '.join(conds)} GROUP BY name"
            return f"FROM kine k JOIN ({sub}) m ON k.id = m.mid WHERE k.deleted = 0", args

        conn = self._conn()
        body, args = newest_rows(start_after)
        sql = f"SELECT k.name, k.value, k.id, k.create_revision {body} ORDER BY k.name"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit + 1)
        rows = conn.execute(sql, args).fetchall()
        if limit is None or len(rows) <= limit:
            return [KV(name, value or b"", rid, crev) for name, value, rid, crev in rows], 0
        rows = rows[:limit]
        body, args = newest_rows(rows[-1][0])
        remaining = int(conn.execute(f"SELECT COUNT(*) {body}", args).fetchone()[0])
        return [KV(name, value or b"", rid, crev) for name, value, rid, crev in rows], remaining

    async def count(self, prefix: str) -> int:
        """Live keys under `prefix` at the latest revision."""
        return self._index.count(prefix)

    # --- watch ----------------------------------------------------------------------------------------

    def watch(self, prefix: str, from_revision: int) -> AsyncIterator[Event]:
        """Every event under `prefix` with revision > from_revision, once, in order, then live ones.

        Raises `Compacted` on the first iteration (before any event) when from_revision is below the compact
        revision, or later if a compaction overtakes the replay; ends with `WatchOverflow` when the consumer
        falls more than the buffer behind; ends cleanly when the store closes.
        """
        return self._watch(prefix, from_revision)

    async def _watch(self, prefix: str, from_revision: int) -> AsyncIterator[Event]:
        if from_revision < self._compact_revision:
            raise Compacted(from_revision, self._compact_revision)
        if self._closed:
            raise StoreClosed()
        # Subscribe and read the revision in the same loop step: live events are exactly those > start.
        w = self._hub.subscribe(prefix)
        start = self._revision
        last = from_revision
        try:
            while last < start:
                try:
                    events = await self._read(self._sql_replay, prefix, last, start)
                except StoreClosed:
                    return
                if last < self._compact_revision:
                    raise Compacted(last, self._compact_revision)
                for ev in events:
                    yield ev
                    last = ev.revision
                if len(events) < REPLAY_CHUNK:
                    break
            last = max(last, start)
            while True:
                while w.events:
                    ev = w.events.popleft()
                    if ev.revision > last:
                        last = ev.revision
                        yield ev
                if w.closed:
                    if w.error is not None:
                        raise w.error
                    return
                await w.wait()
        finally:
            self._hub.unsubscribe(w)

    def _sql_replay(self, prefix: str, after: int, upto: int) -> _EventList:
        conds = ["id > ?", "id <= ?", "name >= ?", "name != ?"]
        args: list[Any] = [after, upto, prefix, COMPACT_REV_KEY]
        end = prefix_end(prefix)
        if end is not None:
            conds.append("name < ?")
            args.append(end)
        sql = f"SELECT {_ROW_COLS} FROM kine WHERE {' AND '.join(conds)} ORDER BY id LIMIT {REPLAY_CHUNK}"
        return [_event_from_row(r) for r in self._conn().execute(sql, args)]
