"""Locally built images for real: imported into a private containerd and run with runc, pushed to a
docker-registry with htpasswd auth and pulled back (by HTTP and by containerd)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from skiff.agent.images import import_archive
from skiff.agent.images.builtin import PAUSE_IMAGE, BusyboxNotFound, find_busybox
from skiff.agent.images.oci import OCI_MANIFEST, read_archive
from skiff.agent.images.testimages import NONROOT_IMAGE, SHELL_IMAGE, WEB_IMAGE, build_test_images
from skiff.testing import free_port

from .registry import LocalRegistry, PrivateContainerd, missing_binaries

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    try:
        find_busybox()
    except BusyboxNotFound as e:
        pytest.skip(str(e))
    return build_test_images(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    if missing := missing_binaries("docker-registry", "htpasswd"):
        pytest.skip(f"needs {', '.join(missing)} (apt packages docker-registry, apache2-utils)")
    reg = LocalRegistry(tmp_path_factory.mktemp("registry")).start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateContainerd]:
    if os.geteuid() != 0:
        pytest.skip("containerd and runc need root")
    if missing := missing_binaries("containerd", "ctr", "runc", "containerd-shim-runc-v2"):
        pytest.skip(f"needs {', '.join(missing)} (apt packages containerd, runc)")
    ctd = PrivateContainerd(tmp_path_factory.mktemp("containerd")).start()
    try:
        yield ctd
    finally:
        ctd.stop()


# --- registry --------------------------------------------------------------------------------------------


def test_push_needs_the_password(registry: LocalRegistry, images: dict[str, Path]) -> None:
    wrong = LocalRegistry(registry.dir, user=registry.user, password="wrong", port=registry.port)
    with pytest.raises(RuntimeError, match="401"):
        wrong.push(images[WEB_IMAGE], repository="test/denied")


def test_pushed_manifest_reads_back_only_with_credentials(
    registry: LocalRegistry, images: dict[str, Path]
) -> None:
    image = read_archive(images[WEB_IMAGE])
    ref = registry.push(images[WEB_IMAGE])
    assert ref == f"{registry.host}/test/web:1"

    accept = {"Accept": OCI_MANIFEST}
    got = registry.request("GET", "/v2/test/web/manifests/1", headers=accept)
    assert got.status == 200
    assert got.body == image.manifest.data
    assert got.headers["docker-content-digest"] == image.manifest.digest
    assert got.headers["content-type"] == OCI_MANIFEST
    by_digest = registry.request("GET", f"/v2/test/web/manifests/{image.manifest.digest}", headers=accept)
    assert by_digest.status == 200
    config = registry.request("GET", f"/v2/test/web/blobs/{image.config.digest}")
    assert config.status == 200 and config.body == image.config.data

    anonymous = registry.request("GET", "/v2/test/web/manifests/1", headers=accept, auth=False)
    assert anonymous.status == 401
    assert anonymous.headers["www-authenticate"].startswith('Basic realm="skiff-test"')
    wrong = registry.request("GET", "/v2/test/web/manifests/1", headers=accept, auth=(registry.user, "nope"))
    assert wrong.status == 401


def test_pushing_twice_keeps_the_digest(registry: LocalRegistry, images: dict[str, Path]) -> None:
    first = registry.push(images[SHELL_IMAGE], tag="a")
    second = registry.push(images[SHELL_IMAGE], tag="b")
    a = registry.request("HEAD", "/v2/test/shell/manifests/a", headers={"Accept": OCI_MANIFEST})
    b = registry.request("HEAD", "/v2/test/shell/manifests/b", headers={"Accept": OCI_MANIFEST})
    assert (first, second) == (f"{registry.host}/test/shell:a", f"{registry.host}/test/shell:b")
    assert a.headers["docker-content-digest"] == b.headers["docker-content-digest"]


# --- containerd ------------------------------------------------------------------------------------------


async def test_import_lists_every_image(containerd: PrivateContainerd, images: dict[str, Path]) -> None:
    imported = []
    for archive in images.values():
        imported += await import_archive(containerd.socket, archive)
    assert sorted(imported) == sorted([PAUSE_IMAGE, SHELL_IMAGE, WEB_IMAGE, NONROOT_IMAGE])
    listed = containerd.ctr("images", "ls", "-q").stdout.split()
    assert set(imported) <= set(listed)
    # Again: idempotent, same references.
    assert await import_archive(containerd.socket, images[PAUSE_IMAGE]) == [PAUSE_IMAGE]


@pytest.mark.parametrize(
    ("image", "argv", "out"),
    [
        pytest.param(SHELL_IMAGE, ["echo", "hi"], "hi", id="shell-echo"),
        pytest.param(SHELL_IMAGE, ["id", "-u"], "0", id="shell-runs-as-root"),
        pytest.param(NONROOT_IMAGE, ["id", "-u"], "1000", id="nonroot-runs-as-1000"),
        pytest.param(WEB_IMAGE, ["cat", "/www/health"], "ok", id="web-health-file"),
    ],
)
async def test_run_with_runc(
    containerd: PrivateContainerd,
    images: dict[str, Path],
    image: str,
    argv: list[str],
    out: str,
    request: pytest.FixtureRequest,
) -> None:
    await import_archive(containerd.socket, images[image])
    name = "run-" + request.node.callspec.id
    res = containerd.ctr("run", "--rm", image, name, *argv)
    assert res.stdout.strip() == out


def _task_status(containerd: PrivateContainerd, task: str) -> str:
    for line in containerd.ctr("tasks", "ls", check=False).stdout.splitlines()[1:]:
        cols = line.split()
        if len(cols) == 3 and cols[0] == task:
            return cols[2]
    return ""


def _wait_running(containerd: PrivateContainerd, task: str) -> None:
    deadline = time.monotonic() + 60
    while _task_status(containerd, task) != "RUNNING":
        assert time.monotonic() < deadline, f"task {task} never started"
        time.sleep(0.1)


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(PAUSE_IMAGE, id="pause"),
        pytest.param(WEB_IMAGE, id="web"),
    ],
)
async def test_pid1_exits_zero_on_sigterm(
    containerd: PrivateContainerd, images: dict[str, Path], image: str, request: pytest.FixtureRequest
) -> None:
    await import_archive(containerd.socket, images[image])
    task = "term-" + request.node.callspec.id
    proc = containerd.ctr_popen("run", "--rm", image, task)
    try:
        _wait_running(containerd, task)
        containerd.ctr("tasks", "kill", "-s", "SIGTERM", task)
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_web_serves_port_and_readiness_flips(
    containerd: PrivateContainerd, images: dict[str, Path]
) -> None:
    await import_archive(containerd.socket, images[WEB_IMAGE])
    # Host network, so PORT must be a free loopback port; requests go through the image's own wget.
    port = free_port()
    containerd.ctr("run", "-d", "--net-host", "--env", f"PORT={port}", WEB_IMAGE, "web-probe")
    try:
        _wait_running(containerd, "web-probe")

        def get(path: str) -> subprocess.CompletedProcess[str]:
            return containerd.ctr(
                "tasks",
                "exec",
                "--exec-id",
                f"get{time.monotonic_ns()}",
                "web-probe",
                "wget",
                "-q",
                "-O",
                "-",
                f"http://127.0.0.1:{port}{path}",
                check=False,
            )

        deadline = time.monotonic() + 60
        while (health := get("/health")).returncode != 0:
            assert time.monotonic() < deadline, health.stderr
            time.sleep(0.1)
        assert health.stdout == "ok"
        assert get("/ready").stdout == "ok"
        containerd.ctr("tasks", "exec", "--exec-id", "unready", "web-probe", "rm", "/www/ready")
        assert get("/ready").returncode != 0
        assert get("/health").stdout == "ok"
    finally:
        containerd.ctr("tasks", "kill", "-s", "SIGKILL", "web-probe", check=False)
        containerd.ctr("tasks", "delete", "-f", "web-probe", check=False)
        containerd.ctr("containers", "delete", "web-probe", check=False)


def test_containerd_pulls_from_the_registry_with_auth(
    containerd: PrivateContainerd, registry: LocalRegistry, images: dict[str, Path]
) -> None:
    ref = registry.push(images[NONROOT_IMAGE], repository="pulled/nonroot")
    denied = containerd.ctr("images", "pull", "--plain-http", ref, check=False)
    assert denied.returncode != 0
    containerd.ctr("images", "pull", "--plain-http", "--user", f"{registry.user}:{registry.password}", ref)
    assert ref in containerd.ctr("images", "ls", "-q").stdout.split()
    assert containerd.ctr("run", "--rm", ref, "pulled", "id", "-u").stdout.strip() == "1000"
