"""kill -9 of the server during a write storm loses no acknowledged write; revisions never go backwards."""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from skiff.testing import ServerProcess, free_port, start_server

pytestmark = pytest.mark.e2e


def _post(srv: ServerProcess, ctx: ssl.SSLContext, token: str, name: str) -> int | None:
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": name}}).encode()
    req = urllib.request.Request(f"{srv.url}/api/v1/namespaces/default/configmaps", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return int(json.loads(r.read())["metadata"]["resourceVersion"])
    except (urllib.error.URLError, OSError, ValueError):
        return None


def test_kill9_during_write_storm_keeps_acknowledged_writes(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    token = srv.token
    ctx = ssl.create_default_context(cafile=str(srv.ca_file))
    acked: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w: int) -> None:
        i = 0
        while not stop.is_set() and i < 2000:
            name = f"w{w}-{i}"
            rv = _post(srv, ctx, token, name)
            if rv is not None:
                with lock:
                    acked[name] = rv
            i += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.kill9()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 50, "too few writes acknowledged before the kill"
    max_acked = max(acked.values())

    again = ServerProcess(srv.data_dir, free_port()).start()
    try:
        status, lst = again.request("GET", "/api/v1/namespaces/default/configmaps")
        assert status == 200
        stored = {i["metadata"]["name"]: int(i["metadata"]["resourceVersion"]) for i in lst["items"]}
        missing = [n for n in acked if n not in stored]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
        assert all(stored[n] == rv for n, rv in acked.items())
        status, created = again.request("POST", "/api/v1/namespaces/default/configmaps",
                                        {"metadata": {"name": "after-restart"}})
        assert status == 201
        assert int(created["metadata"]["resourceVersion"]) > max_acked
    finally:
        again.stop()


def test_restart_continues_objects_and_revisions(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    status, created = srv.request("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "keep"}})
    assert status == 201
    assert srv.stop() == 0  # SIGTERM shuts down cleanly
    again = ServerProcess(srv.data_dir, free_port()).start()
    try:
        status, got = again.request("GET", "/api/v1/namespaces/default/configmaps/keep")
        assert status == 200
        assert got["metadata"]["uid"] == created["metadata"]["uid"]
        assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    finally:
        again.stop()


def test_unauthenticated_requests_get_401(server: ServerProcess) -> None:
    status, body = server.request("GET", "/api/v1/namespaces", token="wrong")
    assert status == 401 and body["reason"] == "Unauthorized"
    status, body = server.request("GET", "/readyz", token="wrong")
    assert status == 200
