"""Subprocess for the kill -9 durability test: write as fast as possible, print every acknowledged write.

Usage: python storm_writer.py DB_PATH WRITERS
Each writer task creates `/storm/<w>/<n>` and then updates it once; after each acknowledgement it prints
`<key> <revision> <value>` on one line and flushes, so every printed line is a write the store acknowledged.
"""

from __future__ import annotations

import asyncio
import sys

from skiff.storage.sqlite import SQLiteStore


async def writer(store: SQLiteStore, w: int) -> None:
    n = 0
    out = sys.stdout
    while True:
        key = f"/storm/{w}/{n}"
        kv = await store.create(key, b"c%d" % n)
        out.write(f"{key} {kv.mod_revision} c{n}\n")
        out.flush()
        kv = await store.update(key, b"u%d" % n, kv.mod_revision)
        out.write(f"{key} {kv.mod_revision} u{n}\n")
        out.flush()
        n += 1


async def main(path: str, writers: int) -> None:
    store = SQLiteStore(path)
    await store.start()
    print("ready", flush=True)
    async with asyncio.TaskGroup() as tg:
        for w in range(writers):
            tg.create_task(writer(store, w))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
