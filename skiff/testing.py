"""Test support shared by every test: a real `skiff server` in a subprocess on a temporary data dir.

The fixture starts the server with the real CLI, waits for `/readyz`, hands out the kubeconfig and a
`kubectl` runner, and ends the process it started, by PID (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=Path)
    extra_args: tuple[str, ...] = ()  # e.g. ("--sim-nodes", "3")
    agent: bool = False  # run the embedded node agent (root + containerd); else --no-agent

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig.yaml"

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "tls" / "ca.crt"

    @property
    def token(self) -> str:
        return (self.data_dir / "tls" / "admin.token").read_text().strip()

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "skiff.cli.main", "server", "--data-dir", str(self.data_dir),
             "--port", str(self.port), "--bind", "127.0.0.1",
             *(() if self.agent else ("--no-agent",)), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"skiff server exited with {self.proc.returncode}:\n{self.logs()}")
            if self.ca_file.exists() and self._ready():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"skiff server not ready after {timeout}s:\n{self.logs()}")

    def _ready(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", context=ctx, timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """End the process we started (by PID); returns its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def uninstall(self) -> None:
        """Remove what the embedded agent left on the host (its pods, containerd, mounts, bridge, cgroups)."""
        subprocess.run([sys.executable, "-m", "skiff.cli.main", "uninstall", "--data-dir", str(self.data_dir / "agent")],
                       capture_output=True, timeout=180)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this server; raises with its output when `check` and it fails."""
        full_env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.data_dir.parent / "home"),
                    **(env or {})}
        res = subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True, timeout=timeout, env=full_env)
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                headers: dict[str, str] | None = None, token: str | None = None) -> tuple[int, Any]:
        """A raw HTTPS request with the admin token; returns (status, decoded JSON or text)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token if token is not None else self.token}")
        if data is not None:
            req.add_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
                raw = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")


def have_kubectl() -> bool:
    return shutil.which("kubectl") is not None


def start_server(tmp: Path, port: int | None = None, extra_args: Sequence[str] = ()) -> ServerProcess:
    data = tmp / "data"
    (tmp / "home").mkdir(exist_ok=True)
    return ServerProcess(data, port or free_port(), extra_args=tuple(extra_args)).start()


def agent_prerequisites() -> str | None:
    """Why the node agent cannot run here (None when it can): root, containerd, runc, CNI plugins, busybox."""
    if os.geteuid() != 0:
        return "the node agent needs root (containerd, network namespaces, cgroups)"
    for tool in ("containerd", "runc", "ctr", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (the README's test command installs it)"
    if not Path("/usr/lib/cni/bridge").exists():
        return "the CNI plugins are not installed (containernetworking-plugins)"
    if not any(Path(p).exists() for p in ("/bin/busybox", "/usr/bin/busybox")):
        return "busybox-static is not installed (test images are built from it)"
    return None


def yaml_docs(*docs: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump_all(list(docs), sort_keys=False)


def run(cmd: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, **kw)


async def eventually(probe: Any, what: str, timeout: float = 30.0) -> Any:
    """Poll the async `probe` until it returns something truthy; `timeout` only turns a hang into a failure."""
    import asyncio

    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > give_up:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


async def start_control_plane(tmp: Path) -> Any:
    """A seeded `ControlPlane` over a fresh SQLite store in `tmp` (no HTTP); close `plane.store` when done."""
    from skiff.apiserver.certs import bootstrap
    from skiff.apiserver.server import ControlPlane
    from skiff.storage.sqlite import SQLiteStore

    creds = bootstrap(tmp, "127.0.0.1", free_port())
    store = SQLiteStore(str(tmp / "state.db"))
    await store.start()
    plane = ControlPlane(store, creds)
    await plane.seed()
    return plane
