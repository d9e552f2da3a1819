"""Shared fixtures: a real skiff server (subprocess, temp data dir, free port)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from skiff.testing import ServerProcess, have_kubectl, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per test module; stopped by PID afterwards, data dir removed with the tmp tree."""
    srv = start_server(tmp_path_factory.mktemp("skiff"))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def kube(server: ServerProcess) -> ServerProcess:
    """The same server, for tests that drive the real kubectl (skipped where kubectl is absent)."""
    if not have_kubectl():
        pytest.skip("kubectl is not installed (the README's test command installs it)")
    return server


@pytest.fixture
def fresh_dir(tmp_path: Path) -> Path:
    return tmp_path
