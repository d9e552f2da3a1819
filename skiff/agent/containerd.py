"""skiff's own containerd: its config (pure) and the child process that runs it (as k3s does).

Unless the agent is pointed at a running CRI socket, it starts `containerd --config <data>/containerd/
config.toml` with root, state, sockets, CNI config and registry hosts all under the skiff data dir, so
everything it leaves on the host can be found and removed there. Containers run in containerd's `k8s.io`
namespace (the CRI plugin's). The process is started in its own session and recorded in a pid file: an
agent that restarts adopts the running containerd instead of restarting it, and `stop()` ends it by PID
(SIGTERM, then SIGKILL). Pod containers outlive a containerd restart anyway (their shims are separate
processes), but adoption avoids the gap in which the runtime does not answer.

Left outside the data dir by containerd 1.6 itself (not configurable there): shim sockets under
/run/containerd/s, network namespaces under /var/run/netns (cni-<uuid>, removed with their sandbox) and
libcni's result cache under /var/lib/cni.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import signal
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skiff.agent.cri.client import CRIClient, CRIError
from skiff.util.fs import write_atomic

log = logging.getLogger(__name__)

SANDBOX_IMAGE = "skiff.local/pause:3.10"
CNI_BIN_DIR = "/usr/lib/cni"
CRI_PLUGIN = "io.containerd.grpc.v1.cri"
# sockaddr_un.sun_path is 108 bytes including the terminating NUL.
UNIX_PATH_MAX = 108
TTRPC_SUFFIX = ".ttrpc"  # containerd's default ttrpc address is the gRPC address plus this
# Snapshotters that cannot work here (or need setup skiff does not do); disabling them keeps startup quiet.
DISABLED_PLUGINS = (
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
)


class ContainerdError(RuntimeError):
    """containerd did not start, did not answer, or could not be stopped."""


def socket_path_for(data_dir: Path, fallback_root: Path = Path("/run")) -> Path:
    """`<data-dir>/containerd/containerd.sock`, or `/run/skiff-<hash>/containerd.sock` when that is too long.

    The check includes the `.ttrpc` socket containerd puts next to it. The hash is of the data dir, so
    one data dir always maps to the same short path and two never share one.
    """
    preferred = data_dir / "containerd" / "containerd.sock"
    if len(os.fsencode(str(preferred) + TTRPC_SUFFIX)) < UNIX_PATH_MAX:
        return preferred
    digest = hashlib.sha256(os.fsencode(str(data_dir))).hexdigest()[:12]
    return fallback_root / f"skiff-{digest}" / "containerd.sock"


def apparmor_available(sys_root: Path = Path("/sys")) -> bool:
    """Whether the kernel has AppArmor enabled; without it the CRI plugin must not apply profiles."""
    try:
        return (sys_root / "module" / "apparmor" / "parameters" / "enabled").read_text().strip() == "Y"
    except OSError:
        return False


CAP_SYS_RESOURCE = 24


def effective_capabilities(proc_status: str) -> int:
    """The CapEff bit set from /proc/<pid>/status text (0 when absent)."""
    for line in proc_status.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split(":", 1)[1].strip(), 16)
    return 0


def can_lower_oom_score(proc_status: Path = Path("/proc/self/status")) -> bool:
    """Whether we may set a negative oom_score_adj, as CRI does for sandboxes (-998): needs CAP_SYS_RESOURCE.

    Some sandboxed CI machines run root without it; runc then dies with "can't get final child's PID".
    """
    try:
        return bool(effective_capabilities(proc_status.read_text()) >> CAP_SYS_RESOURCE & 1)
    except OSError:
        return False


@dataclass(frozen=True)
class ContainerdConfig:
    """Everything skiff's containerd is configured with; all paths derive from `data_dir`."""

    data_dir: Path
    sandbox_image: str = SANDBOX_IMAGE
    snapshotter: str = "overlayfs"
    # cgroupfs: the platform runs cgroup v1 (hybrid) without systemd managing pod cgroups.
    systemd_cgroup: bool = False
    cni_bin_dir: str = CNI_BIN_DIR
    apparmor: bool = False
    # Clamp containers' oom_score_adj to containerd's own (the CRI plugin's rootless option) where the
    # host denies lowering it.
    restrict_oom_score_adj: bool = False
    stream_server_address: str = "127.0.0.1"
    # 0: an ephemeral port; containerd puts the real one into the URLs it returns.
    stream_server_port: int = 0
    runc_binary: str = ""  # "" finds runc on PATH
    log_level: str = "info"
    disabled_plugins: tuple[str, ...] = DISABLED_PLUGINS
    socket_fallback_root: Path = field(default=Path("/run"))

    @classmethod
    def for_host(cls, data_dir: Path, **overrides: Any) -> ContainerdConfig:
        """A config for this machine: AppArmor and OOM-score rights as the host has them, the rest as given."""
        overrides.setdefault("apparmor", apparmor_available())
        overrides.setdefault("restrict_oom_score_adj", not can_lower_oom_score())
        return cls(data_dir=data_dir.resolve(), **overrides)

    @property
    def base_dir(self) -> Path:
        return self.data_dir / "containerd"

    @property
    def root(self) -> Path:
        return self.base_dir / "root"

    @property
    def state(self) -> Path:
        return self.base_dir / "state"

    @property
    def config_path(self) -> Path:
        return self.base_dir / "config.toml"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "containerd.log"

    @property
    def pid_path(self) -> Path:
        return self.base_dir / "containerd.pid"

    @property
    def socket_path(self) -> Path:
        return socket_path_for(self.data_dir, self.socket_fallback_root)

    @property
    def ttrpc_socket_path(self) -> Path:
        return Path(str(self.socket_path) + TTRPC_SUFFIX)

    @property
    def runc_root(self) -> Path:
        return self.state / "runc"

    @property
    def cni_conf_dir(self) -> Path:
        """Where the pod network writes its conflist; containerd loads the first one by name."""
        return self.data_dir / "cni" / "net.d"

    @property
    def registry_config_dir(self) -> Path:
        """containerd's `config_path`: one `<host[:port]>/hosts.toml` per registry."""
        return self.base_dir / "certs.d"

    def directories(self) -> list[Path]:
        return [
            self.base_dir,
            self.root,
            self.state,
            self.socket_path.parent,
            self.cni_conf_dir,
            self.registry_config_dir,
        ]


def config_document(cfg: ContainerdConfig) -> dict[str, Any]:
    """The config as data, in containerd's version-2 schema (containerd 1.6 `config.toml`)."""
    runc_options: dict[str, Any] = {"SystemdCgroup": cfg.systemd_cgroup, "Root": str(cfg.runc_root)}
    if cfg.runc_binary:
        runc_options["BinaryName"] = cfg.runc_binary
    return {
        "version": 2,
        "root": str(cfg.root),
        "state": str(cfg.state),
        "disabled_plugins": list(cfg.disabled_plugins),
        "grpc": {"address": str(cfg.socket_path)},
        "ttrpc": {"address": str(cfg.ttrpc_socket_path)},
        "debug": {"level": cfg.log_level},
        "plugins": {
            "io.containerd.internal.v1.opt": {"path": str(cfg.base_dir / "opt")},
            CRI_PLUGIN: {
                "sandbox_image": cfg.sandbox_image,
                "stream_server_address": cfg.stream_server_address,
                "stream_server_port": str(cfg.stream_server_port),
                "disable_apparmor": not cfg.apparmor,
                "enable_selinux": False,
                "restrict_oom_score_adj": cfg.restrict_oom_score_adj,
                "containerd": {
                    "snapshotter": cfg.snapshotter,
                    "default_runtime_name": "runc",
                    "runtimes": {
                        "runc": {"runtime_type": "io.containerd.runc.v2", "options": runc_options},
                    },
                },
                "cni": {"bin_dir": cfg.cni_bin_dir, "conf_dir": str(cfg.cni_conf_dir), "max_conf_num": 1},
                "registry": {"config_path": str(cfg.registry_config_dir)},
            },
        },
    }


def render_config(cfg: ContainerdConfig) -> str:
    """`config.toml` text for `cfg`. Pure; the same config always renders the same text."""
    return "# Written by skiff; regenerated on every agent start.\n" + dump_toml(config_document(cfg))


def hosts_toml(
    endpoint: str, *, skip_verify: bool = True, capabilities: Iterable[str] = ("pull", "resolve")
) -> str:
    """A registry's `hosts.toml` sending pulls to `endpoint` (e.g. "http://127.0.0.1:5000").

    `skip_verify` accepts a self-signed certificate on an https endpoint; an http:// endpoint is plain HTTP.
    """
    return dump_toml(
        {
            "server": endpoint,
            "host": {endpoint: {"capabilities": list(capabilities), "skip_verify": skip_verify}},
        }
    )


def write_registry_host(
    cfg: ContainerdConfig, registry: str, endpoint: str, *, skip_verify: bool = True
) -> Path:
    """Writes `<registry_config_dir>/<registry>/hosts.toml`; containerd reads it on the next pull."""
    if not registry or "/" in registry or registry in (".", ".."):
        raise ValueError(f"not a registry host[:port]: {registry!r}")
    path = cfg.registry_config_dir / registry / "hosts.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, hosts_toml(endpoint, skip_verify=skip_verify).encode(), 0o644)
    return path


# ---- a TOML writer for the few value types containerd's config needs ----

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def dump_toml(doc: Mapping[str, Any], _prefix: tuple[str, ...] = ()) -> str:
    """TOML text for nested mappings of bools, ints, strings and lists of those; tables after keys."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in doc.items():
        if isinstance(value, Mapping):
            tables.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for key, table in tables:
        path = (*_prefix, key)
        has_scalars = any(not isinstance(v, Mapping) for v in table.values())
        if has_scalars or not table:
            out += f"\n[{'.'.join(_toml_key(k) for k in path)}]\n"
        out += dump_toml(table, path)
    return out


# ---- mounts left under a directory (for cleanup) ----


def _unescape_mountinfo(text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def mounts_under(root: Path, mountinfo: str) -> list[Path]:
    """Mount points at or below `root` in /proc/self/mountinfo text, deepest first (the unmount order)."""
    prefix = str(root).rstrip("/")
    found = []
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        point = _unescape_mountinfo(fields[4])
        if point == prefix or point.startswith(prefix + "/"):
            found.append(Path(point))
    return sorted(set(found), key=lambda p: (-len(p.parts), str(p)))


def unmount_under(root: Path) -> list[Path]:
    """Lazily unmounts everything left mounted under `root` (sandbox shm, container rootfs after a crash).

    Returns what it unmounted. Run only once containerd and its shims are gone; blocking (umount runs as a
    subprocess), so call it from an executor.
    """
    done = []
    for point in mounts_under(root, Path("/proc/self/mountinfo").read_text()):
        if subprocess.run(["umount", "-l", str(point)], capture_output=True).returncode == 0:
            done.append(point)
    return done


# ---- the child process ----


def _pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not count; one that is our child is reaped here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    if state in ("Z", "X"):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return False
    return True


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [os.fsdecode(a) for a in raw.split(b"\0") if a]


class ManagedContainerd:
    """Starts (or adopts) skiff's containerd for one data dir and stops it by PID.

    Not thread-safe; one instance per agent. `start()` is idempotent while the process runs.
    """

    def __init__(
        self, config: ContainerdConfig, *, binary: str = "containerd", start_timeout: float = 60.0
    ) -> None:
        self.config = config
        self.binary = binary
        self.start_timeout = start_timeout
        self.pid: int | None = None
        self.adopted = False
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.config.socket_path

    def client(self, **kwargs: Any) -> CRIClient:
        """A new CRI client on this containerd's socket; the caller closes it."""
        return CRIClient(self.socket_path, **kwargs)

    def running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self.pid is not None and _pid_alive(self.pid)

    async def start(self) -> None:
        """Adopt our containerd if its pid file names one running with the same config, else start one.

        Returns once it answers CRI Version; raises ContainerdError (with the log's tail) otherwise.
        """
        if self.running():
            return
        text = render_config(self.config)
        previous = await asyncio.to_thread(self._prepare, text)
        candidate = self._our_pid()
        if candidate is not None:
            if previous == text and await self._answers(timeout=min(10.0, self.start_timeout)):
                self.pid, self.adopted = candidate, True
                log.info("adopted containerd pid %d on %s", candidate, self.socket_path)
                return
            log.info("restarting containerd pid %d (config changed or not answering)", candidate)
            await self._terminate(candidate, grace=10.0)
        await asyncio.to_thread(self._write_config, text)
        self._spawn()
        await self._wait_ready()

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; idempotent. Containers keep running in their shims.
        Also stops our containerd left by an earlier run (found by its pid file), for `skiff uninstall`."""
        pid = self._proc.pid if self._proc is not None else (self.pid or self._our_pid())
        if pid is None:
            return
        await self._terminate(pid, grace)
        self._proc, self.pid, self.adopted = None, None, False
        # With the process gone its sockets are dead files; a fallback socket dir outside the data dir
        # (see socket_path_for) goes too, so nothing is left in /run.
        for stale in (self.config.pid_path, self.config.socket_path, self.config.ttrpc_socket_path):
            stale.unlink(missing_ok=True)
        sock_dir = self.config.socket_path.parent
        if not sock_dir.is_relative_to(self.config.data_dir):
            try:
                sock_dir.rmdir()
            except OSError:
                pass

    # ---- internals ----

    def _prepare(self, text: str) -> str | None:
        """Creates the directories; returns the config text currently on disk (None if there is none)."""
        for d in self.config.directories():
            d.mkdir(parents=True, exist_ok=True)
        try:
            return self.config.config_path.read_text()
        except FileNotFoundError:
            return None

    def _write_config(self, text: str) -> None:
        write_atomic(self.config.config_path, text.encode(), 0o644)

    def _our_pid(self) -> int | None:
        """The pid from the pid file if that process is a containerd running our config file."""
        try:
            pid = int(self.config.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        argv = _cmdline(pid)
        # The binary is argv[0], or argv[1] behind an interpreter when it is a script.
        if not _pid_alive(pid) or Path(self.binary).name not in {Path(a).name for a in argv[:2]}:
            return None
        return pid if str(self.config.config_path) in argv else None

    def _spawn(self) -> None:
        env = dict(os.environ)
        # runc, the shims and the CNI plugins' iptables live in sbin directories a service PATH may lack.
        path = env.get("PATH", "")
        for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
            if d not in path.split(":"):
                path = f"{path}:{d}" if path else d
        env["PATH"] = path
        with open(self.config.log_path, "ab") as logfile:
            self._proc = subprocess.Popen(
                [self.binary, "--config", str(self.config.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # survives the agent (adoption) and its terminal's signals
            )
        self.pid, self.adopted = self._proc.pid, False
        write_atomic(self.config.pid_path, f"{self._proc.pid}\n".encode(), 0o644)
        log.info("started containerd pid %d on %s", self._proc.pid, self.socket_path)

    async def _answers(self, timeout: float) -> bool:
        if not self.socket_path.exists():
            return False
        async with CRIClient(self.socket_path, timeout=timeout) as client:
            try:
                await client.version()
            except CRIError:
                return False
        return True

    async def _wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        last_error = "socket not created"
        while loop.time() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc, self.pid = None, None
                raise ContainerdError(f"containerd exited with {code}:\n{self._log_tail()}")
            if self.socket_path.exists():
                async with CRIClient(self.socket_path, timeout=2.0) as client:
                    try:
                        await client.version()
                        return
                    except CRIError as e:
                        last_error = str(e)
            await asyncio.sleep(0.1)
        await self.stop()
        raise ContainerdError(
            f"containerd did not answer CRI Version in {self.start_timeout}s "
            f"({last_error}):\n{self._log_tail()}"
        )

    async def _terminate(self, pid: int, grace: float) -> None:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            if await self._exited(pid, wait):
                break
        else:
            raise ContainerdError(f"containerd pid {pid} survived SIGKILL")

    async def _exited(self, pid: int, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            gone = (
                (self._proc.poll() is not None)
                if (self._proc is not None and self._proc.pid == pid)
                else not _pid_alive(pid)
            )
            if gone:
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)

    def _log_tail(self, limit: int = 4000) -> str:
        try:
            return self.config.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""
