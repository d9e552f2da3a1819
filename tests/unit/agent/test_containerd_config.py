"""skiff's containerd: config.toml (pure), socket path limit, registry hosts, TOML writer, mounts; and
ManagedContainerd's start/adopt/stop against a fake CRI server process (no root, no containerd needed)."""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from skiff.agent.containerd import (
    SANDBOX_IMAGE,
    UNIX_PATH_MAX,
    ContainerdConfig,
    ContainerdError,
    ManagedContainerd,
    apparmor_available,
    can_lower_oom_score,
    dump_toml,
    effective_capabilities,
    hosts_toml,
    mounts_under,
    render_config,
    socket_path_for,
    write_registry_host,
)
from skiff.agent.cri.client import CRIError

CRI = "io.containerd.grpc.v1.cri"
DATA = Path("/var/lib/skiff")


def parsed(cfg: ContainerdConfig) -> dict[str, Any]:
    return tomllib.loads(render_config(cfg))


def dig(doc: dict[str, Any], *path: str) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(("version",), 2, id="schema-version-2"),
        pytest.param(("root",), "/var/lib/skiff/containerd/root", id="root-under-data-dir"),
        pytest.param(("state",), "/var/lib/skiff/containerd/state", id="state-under-data-dir"),
        pytest.param(("grpc", "address"), "/var/lib/skiff/containerd/containerd.sock", id="grpc-socket"),
        pytest.param(
            ("ttrpc", "address"), "/var/lib/skiff/containerd/containerd.sock.ttrpc", id="ttrpc-socket"
        ),
        pytest.param(
            ("plugins", "io.containerd.internal.v1.opt", "path"),
            "/var/lib/skiff/containerd/opt",
            id="opt-not-in-slash-opt",
        ),
        pytest.param(("plugins", CRI, "sandbox_image"), "skiff.local/pause:3.10", id="local-pause-image"),
        pytest.param(("plugins", CRI, "containerd", "snapshotter"), "overlayfs", id="overlayfs"),
        pytest.param(("plugins", CRI, "containerd", "default_runtime_name"), "runc", id="runc-default"),
        pytest.param(
            ("plugins", CRI, "containerd", "runtimes", "runc", "runtime_type"),
            "io.containerd.runc.v2",
            id="runc-v2-shim",
        ),
        pytest.param(
            ("plugins", CRI, "containerd", "runtimes", "runc", "options", "SystemdCgroup"),
            False,
            id="cgroupfs-driver",
        ),
        pytest.param(
            ("plugins", CRI, "containerd", "runtimes", "runc", "options", "Root"),
            "/var/lib/skiff/containerd/state/runc",
            id="runc-state-under-data-dir",
        ),
        pytest.param(("plugins", CRI, "cni", "bin_dir"), "/usr/lib/cni", id="debian-cni-plugins"),
        pytest.param(
            ("plugins", CRI, "cni", "conf_dir"), "/var/lib/skiff/cni/net.d", id="cni-conf-under-data-dir"
        ),
        pytest.param(
            ("plugins", CRI, "registry", "config_path"),
            "/var/lib/skiff/containerd/certs.d",
            id="registry-hosts-dir",
        ),
        pytest.param(("plugins", CRI, "stream_server_address"), "127.0.0.1", id="stream-server-loopback"),
        pytest.param(("plugins", CRI, "stream_server_port"), "0", id="stream-server-ephemeral-port"),
        pytest.param(("plugins", CRI, "disable_apparmor"), True, id="no-apparmor-by-default"),
        pytest.param(
            ("plugins", CRI, "restrict_oom_score_adj"), False, id="oom-score-unrestricted-by-default"
        ),
    ],
)
def test_config_toml(path: tuple[str, ...], expected: Any) -> None:
    assert dig(parsed(ContainerdConfig(DATA)), *path) == expected


@pytest.mark.parametrize(
    ("overrides", "path", "expected"),
    [
        pytest.param(
            {"apparmor": True}, ("plugins", CRI, "disable_apparmor"), False, id="apparmor-available"
        ),
        pytest.param(
            {"systemd_cgroup": True},
            ("plugins", CRI, "containerd", "runtimes", "runc", "options", "SystemdCgroup"),
            True,
            id="systemd-driver",
        ),
        pytest.param(
            {"runc_binary": "/usr/sbin/runc"},
            ("plugins", CRI, "containerd", "runtimes", "runc", "options", "BinaryName"),
            "/usr/sbin/runc",
            id="runc-binary",
        ),
        pytest.param(
            {"sandbox_image": "example.test/pause:9"},
            ("plugins", CRI, "sandbox_image"),
            "example.test/pause:9",
            id="other-sandbox-image",
        ),
        pytest.param(
            {"stream_server_port": 10010},
            ("plugins", CRI, "stream_server_port"),
            "10010",
            id="fixed-stream-port-is-a-string",
        ),
        pytest.param({"disabled_plugins": ()}, ("disabled_plugins",), [], id="no-disabled-plugins"),
        pytest.param(
            {"restrict_oom_score_adj": True},
            ("plugins", CRI, "restrict_oom_score_adj"),
            True,
            id="no-cap-sys-resource",
        ),
    ],
)
def test_config_overrides(overrides: dict[str, Any], path: tuple[str, ...], expected: Any) -> None:
    assert dig(parsed(ContainerdConfig(DATA, **overrides)), *path) == expected


def test_runc_binary_is_left_to_path_by_default() -> None:
    options = dig(parsed(ContainerdConfig(DATA)), "plugins", CRI, "containerd", "runtimes", "runc", "options")
    assert "BinaryName" not in options


def test_render_is_deterministic_and_quotes_paths() -> None:
    cfg = ContainerdConfig(Path('/tmp/a "quoted" dir'))
    assert render_config(cfg) == render_config(ContainerdConfig(Path('/tmp/a "quoted" dir')))
    assert parsed(cfg)["root"] == '/tmp/a "quoted" dir/containerd/root'
    assert ContainerdConfig(DATA).sandbox_image == SANDBOX_IMAGE


def test_every_path_is_under_the_data_dir() -> None:
    cfg = ContainerdConfig(DATA)
    for path in [
        *cfg.directories(),
        cfg.config_path,
        cfg.log_path,
        cfg.pid_path,
        cfg.socket_path,
        cfg.runc_root,
    ]:
        assert path.is_relative_to(DATA), path


def _dir_with_socket_length(n: int) -> Path:
    """A data dir whose `<dir>/containerd/containerd.sock.ttrpc` is exactly `n` bytes long."""
    suffix = len("/containerd/containerd.sock.ttrpc")
    return Path("/d" + "x" * (n - suffix - 2))


@pytest.mark.parametrize(
    ("ttrpc_len", "short"),
    [
        pytest.param(40, False, id="short-path-kept"),
        pytest.param(UNIX_PATH_MAX - 1, False, id="107-bytes-fits-with-nul"),
        pytest.param(UNIX_PATH_MAX, True, id="108-bytes-too-long"),
        pytest.param(300, True, id="very-long"),
    ],
)
def test_socket_path_limit(ttrpc_len: int, short: bool) -> None:
    data = _dir_with_socket_length(ttrpc_len)
    assert len(str(data / "containerd" / "containerd.sock.ttrpc")) == ttrpc_len
    sock = socket_path_for(data)
    digest = hashlib.sha256(str(data).encode()).hexdigest()[:12]
    expected = (
        Path(f"/run/skiff-{digest}/containerd.sock") if short else data / "containerd" / "containerd.sock"
    )
    assert sock == expected
    assert len(str(sock) + ".ttrpc") < UNIX_PATH_MAX


def test_fallback_socket_is_stable_per_data_dir_and_distinct_across_them() -> None:
    a, b = _dir_with_socket_length(200), Path(str(_dir_with_socket_length(200)) + "y")
    assert socket_path_for(a) == socket_path_for(a)
    assert socket_path_for(a) != socket_path_for(b)
    cfg = ContainerdConfig(a)
    assert dig(parsed(cfg), "grpc", "address") == str(cfg.socket_path)
    assert cfg.socket_path.parent in cfg.directories()


@pytest.mark.parametrize(
    ("endpoint", "skip_verify"),
    [
        pytest.param("http://127.0.0.1:5000", True, id="local-plain-http"),
        pytest.param("https://registry.test:8443", False, id="https-verified"),
    ],
)
def test_hosts_toml(endpoint: str, skip_verify: bool) -> None:
    doc = tomllib.loads(hosts_toml(endpoint, skip_verify=skip_verify))
    assert doc == {
        "server": endpoint,
        "host": {endpoint: {"capabilities": ["pull", "resolve"], "skip_verify": skip_verify}},
    }


def test_write_registry_host(tmp_path: Path) -> None:
    cfg = ContainerdConfig(tmp_path)
    path = write_registry_host(cfg, "127.0.0.1:5000", "http://127.0.0.1:5000")
    assert path == tmp_path / "containerd" / "certs.d" / "127.0.0.1:5000" / "hosts.toml"
    assert tomllib.loads(path.read_text())["server"] == "http://127.0.0.1:5000"
    assert [p.name for p in path.parent.iterdir()] == ["hosts.toml"]  # no temp file left behind


@pytest.mark.parametrize(
    "registry",
    [
        pytest.param("", id="empty"),
        pytest.param("a/b", id="slash"),
        pytest.param("..", id="parent"),
    ],
)
def test_write_registry_host_rejects_non_hosts(tmp_path: Path, registry: str) -> None:
    with pytest.raises(ValueError, match="registry"):
        write_registry_host(ContainerdConfig(tmp_path), registry, "http://127.0.0.1:5000")


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param({"a": 1, "b": True, "c": "x"}, id="scalars"),
        pytest.param({"s": 'quote " backslash \\ tab \t newline \n é ☃'}, id="string-escapes"),
        pytest.param({"list": ["a", "b"], "ints": [1, 2], "empty": []}, id="arrays"),
        pytest.param({"t": {"u": {"v": 1}}}, id="implicit-parent-tables"),
        pytest.param({"plugins": {"io.containerd.x": {"k": "v"}, "with space": {"k": 1}}}, id="quoted-keys"),
        pytest.param({"top": 1, "t": {"k": 1, "sub": {"k": 2}}, "after": {"k": 3}}, id="keys-before-tables"),
        pytest.param({"empty": {}}, id="empty-table"),
    ],
)
def test_dump_toml_round_trips(doc: dict[str, Any]) -> None:
    assert tomllib.loads(dump_toml(doc)) == doc


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(1.5, id="float"),
        pytest.param(None, id="none"),
    ],
)
def test_dump_toml_rejects_unsupported_values(value: Any) -> None:
    with pytest.raises(TypeError):
        dump_toml({"k": value})


MOUNTINFO = """\
22 1 0:21 / / rw - ext4 /dev/vda rw
100 22 0:50 / /data/skiff/containerd/state/io.containerd.grpc.v1.cri/sandboxes/abc/shm rw - tmpfs shm rw
101 22 0:51 / /data/skiff/containerd/state/io.containerd.runtime.v2.task/k8s.io/abc/rootfs rw - overlay overlay rw
102 101 0:52 / /data/skiff/containerd/state/io.containerd.runtime.v2.task/k8s.io/abc/rootfs/proc rw - proc proc rw
103 22 0:53 / /data/skiff2/other rw - tmpfs tmpfs rw
104 22 0:54 / /data/skiff/with\\040space rw - tmpfs tmpfs rw
105 22 0:55 / /data/skiff rw - tmpfs tmpfs rw
"""


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        pytest.param(
            "/data/skiff",
            [
                "/data/skiff/containerd/state/io.containerd.runtime.v2.task/k8s.io/abc/rootfs/proc",
                "/data/skiff/containerd/state/io.containerd.grpc.v1.cri/sandboxes/abc/shm",
                "/data/skiff/containerd/state/io.containerd.runtime.v2.task/k8s.io/abc/rootfs",
                "/data/skiff/with space",
                "/data/skiff",
            ],
            id="deepest-first-sibling-prefix-excluded",
        ),
        pytest.param(
            "/data/skiff/containerd/state/io.containerd.grpc.v1.cri",
            [
                "/data/skiff/containerd/state/io.containerd.grpc.v1.cri/sandboxes/abc/shm",
            ],
            id="subtree",
        ),
        pytest.param("/elsewhere", [], id="nothing"),
    ],
)
def test_mounts_under(root: str, expected: list[str]) -> None:
    assert mounts_under(Path(root), MOUNTINFO) == [Path(p) for p in expected]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("Y\n", True, id="enabled"),
        pytest.param("N\n", False, id="disabled"),
        pytest.param(None, False, id="module-absent"),
    ],
)
def test_apparmor_available(tmp_path: Path, content: str | None, expected: bool) -> None:
    if content is not None:
        flag = tmp_path / "module" / "apparmor" / "parameters" / "enabled"
        flag.parent.mkdir(parents=True)
        flag.write_text(content)
    assert apparmor_available(tmp_path) is expected
    cfg = ContainerdConfig.for_host(tmp_path / "data", apparmor=expected)
    assert dig(parsed(cfg), "plugins", CRI, "disable_apparmor") is not expected


@pytest.mark.parametrize(
    ("status", "caps", "can_lower"),
    [
        pytest.param("Name:\tx\nCapEff:\t000001ffffffffff\n", 0x1FFFFFFFFFF, True, id="full-root"),
        pytest.param("CapEff:\t000001fffeffffff\n", 0x1FFFEFFFFFF, False, id="root-without-sys-resource"),
        pytest.param("Name:\tx\n", 0, False, id="no-capeff-line"),
    ],
)
def test_oom_score_rights(tmp_path: Path, status: str, caps: int, can_lower: bool) -> None:
    assert effective_capabilities(status) == caps
    (tmp_path / "status").write_text(status)
    assert can_lower_oom_score(tmp_path / "status") is can_lower
    assert can_lower_oom_score(tmp_path / "absent") is False


# ---- ManagedContainerd against a fake runtime ----

FAKE_CONTAINERD = """\
import os, signal, sys, threading, tomllib
from concurrent import futures

import grpc

from skiff.agent.cri import api_pb2 as api

if os.environ.get("FAKE_CONTAINERD_EXIT"):
    print("fake containerd: failing on purpose", flush=True)
    sys.exit(3)
args = sys.argv[1:]
with open(args[args.index("--config") + 1], "rb") as f:
    address = tomllib.load(f)["grpc"]["address"]


def version(request, context):
    return api.VersionResponse(version=request.version, runtime_name="fake", runtime_version="0",
                               runtime_api_version="v1")


def container_status(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, f"container {request.container_id!r} not found")


def unary(fn, req, resp):
    return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=req.FromString,
                                               response_serializer=resp.SerializeToString)


handler = grpc.method_handlers_generic_handler("runtime.v1.RuntimeService", {
    "Version": unary(version, api.VersionRequest, api.VersionResponse),
    "ContainerStatus": unary(container_status, api.ContainerStatusRequest, api.ContainerStatusResponse),
})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
server.add_generic_rpc_handlers((handler,))
server.add_insecure_port("unix://" + address)
done = threading.Event()
if os.environ.get("FAKE_CONTAINERD_IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *_: done.set())
server.start()
done.wait()
server.stop(0)
"""


@pytest.fixture
def fake_binary(tmp_path: Path) -> str:
    path = tmp_path / "containerd"
    path.write_text(f"#!{sys.executable}\n{FAKE_CONTAINERD}")
    path.chmod(0o755)
    return str(path)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


async def test_start_adopt_restart_stop(tmp_path: Path, fake_binary: str) -> None:
    cfg = ContainerdConfig(tmp_path / "data")
    first = ManagedContainerd(cfg, binary=fake_binary)
    started: list[int] = []
    try:
        await first.start()
        assert first.pid is not None and not first.adopted
        started.append(first.pid)
        assert cfg.pid_path.read_text().strip() == str(first.pid)
        assert tomllib.loads(cfg.config_path.read_text())["grpc"]["address"] == str(cfg.socket_path)
        async with first.client() as cri:
            assert (await cri.version()).runtime_name == "fake"
            with pytest.raises(CRIError) as err:
                await cri.container_status("nope")
            assert err.value.not_found and "nope" in err.value.message

        # A restarted agent finds the same process through the pid file and keeps it.
        again = ManagedContainerd(cfg, binary=fake_binary)
        await again.start()
        assert (again.adopted, again.pid) == (True, first.pid)

        # A changed config cannot be adopted: the old process is stopped and a new one started.
        changed = ManagedContainerd(
            ContainerdConfig(cfg.data_dir, sandbox_image="other/pause:1"), binary=fake_binary
        )
        await changed.start()
        pid = changed.pid
        assert pid is not None
        started.append(pid)
        assert not changed.adopted and pid != first.pid
        assert _gone(started[0])

        await changed.stop()
        assert _gone(pid)
        assert not cfg.pid_path.exists() and not cfg.socket_path.exists()
        await changed.stop()  # idempotent
    finally:
        for leftover in started:  # only if an assertion failed half-way
            if not _gone(leftover):
                os.kill(leftover, signal.SIGKILL)


async def test_stop_escalates_to_sigkill(
    tmp_path: Path, fake_binary: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CONTAINERD_IGNORE_TERM", "1")
    managed = ManagedContainerd(ContainerdConfig(tmp_path / "data"), binary=fake_binary)
    await managed.start()
    pid = managed.pid
    assert pid is not None
    await managed.stop(grace=0.2)
    assert _gone(pid)


async def test_start_reports_an_early_exit_with_the_log(
    tmp_path: Path, fake_binary: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CONTAINERD_EXIT", "1")
    managed = ManagedContainerd(ContainerdConfig(tmp_path / "data"), binary=fake_binary)
    with pytest.raises(ContainerdError, match=r"exited with 3[\s\S]*failing on purpose"):
        await managed.start()
    assert not managed.running()
