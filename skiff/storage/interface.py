"""The storage seam: an etcd-shaped, revisioned key-value store with watch.

Every write gets the next global revision, which becomes the object's `metadata.resourceVersion`.
Values are opaque bytes (serialized objects *without* resourceVersion: the API layer sets it from the
revision on read, as upstream's etcd3 store does). Backends: `sqlite.SQLiteStore` (default), etcd (HA).

Contract (every backend, checked by tests/unit/storage):
- `create` fails with `KeyExists` if the key is live; `update`/`delete` take the expected revision and
  fail with `RevisionMismatch` (carrying the current KV) when it differs, `KeyNotFound` when absent.
- A call returns only after the write is durable (acknowledged = survives `kill -9`).
- `list` reads a consistent snapshot at one revision; `watch(prefix, rev)` yields every event with
  revision > rev for keys under prefix, exactly once and in revision order, then follows live writes.
- `compact(rev)` drops history below rev; reads/watches below it raise `Compacted`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


class StorageError(Exception):
    """Root of storage failures; the API layer maps each subclass to a Status."""


class KeyExists(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFound(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class RevisionMismatch(StorageError):
    """The key's current revision is not the expected one; `current` is the live KV (None if deleted)."""

    def __init__(self, key: str, current: KV | None) -> None:
        super().__init__(f"revision mismatch on {key}")
        self.key = key
        self.current = current


class Compacted(StorageError):
    """The requested revision is below the compact revision (HTTP 410 Expired)."""

    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(f"too old resource version: {requested} ({compact_revision})")
        self.requested = requested
        self.compact_revision = compact_revision


class FutureRevision(StorageError):
    """A read at a revision the store has not reached (upstream: 'Too large resource version')."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"Too large resource version: {requested}, current: {current}")
        self.requested = requested
        self.current = current


@dataclass(frozen=True, slots=True)
class KV:
    key: str
    value: bytes
    mod_revision: int  # revision of the write that produced this value (= resourceVersion)
    create_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # "PUT" (create or update) or "DELETE"
    kv: KV  # for DELETE: the last live value, with mod_revision = the delete's revision
    prev: KV | None  # previous value for updates and deletes, None for creates
    revision: int  # the event's revision (== kv.mod_revision)

    @property
    def is_create(self) -> bool:
        return self.type == "PUT" and self.prev is None


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KV]  # ordered by key
    revision: int  # the snapshot revision the list was read at
    more: bool  # True when `limit` cut the list; continue after items[-1].key at `revision`
    remaining: int | None = None  # items left after this page, when cheap to know


class Store(Protocol):
    async def start(self) -> None:
        """Open the backend (create schema, recover, start writer/watch machinery)."""

    async def close(self) -> None:
        """Flush and stop; pending writes are completed or failed, never lost once acknowledged."""

    @property
    def revision(self) -> int:
        """The latest committed revision."""

    @property
    def compact_revision(self) -> int: ...

    async def get(self, key: str, revision: int | None = None) -> KV | None:
        """The live value at `revision` (latest when None); None when absent or deleted."""

    async def list(
        self,
        prefix: str,
        revision: int | None = None,
        limit: int | None = None,
        start_after: str | None = None,
    ) -> ListResult:
        """Live keys under `prefix` (sorted) at `revision` (latest when None), after `start_after`."""

    async def count(self, prefix: str) -> int: ...

    async def create(self, key: str, value: bytes) -> KV: ...

    async def update(self, key: str, value: bytes, expected_revision: int) -> KV: ...

    async def delete(self, key: str, expected_revision: int | None = None) -> KV:
        """Delete; returns the last live KV with mod_revision set to the delete's revision."""

    def watch(self, prefix: str, from_revision: int) -> AsyncIterator[Event]:
        """Events with revision > from_revision under prefix; raises Compacted if from_revision is too old.

        The iterator runs until the consumer stops iterating (aclose) or the store closes.
        """

    async def compact(self, revision: int) -> None: ...
