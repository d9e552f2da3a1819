"""Test support for image tests: a private docker-registry and a private containerd, children of the test.

`LocalRegistry` runs Debian's `docker-registry` (distribution 2.8) on a free loopback port, plain HTTP, with
htpasswd (bcrypt) auth and its storage under a temp dir, and pushes image archives into it over the registry
v2 API (pure Python, basic auth: htpasswd needs no token service). `PrivateContainerd` runs a containerd
with root, state and socket under a temp dir and the CRI plugin off. Both are stopped by PID and leave nothing
behind but what the caller's temp dir holds.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from skiff.agent.images.oci import read_archive, split_reference
from skiff.testing import free_port


def missing_binaries(*names: str) -> list[str]:
    return [n for n in names if shutil.which(n) is None]


def _wait(cond: object, what: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Poll `cond()` until true; the timeout only turns a hang (or an early exit) into an error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}"
            )
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout}s:\n{log.read_text(errors='replace')[-4000:]}")


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 20.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Response:
    """Status, headers (names lower-cased: HTTP names are case-insensitive, Go sends `Www-Authenticate`)."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalRegistry:
    """docker-registry on 127.0.0.1 with one htpasswd user; `push` returns the pullable reference."""

    dir: Path
    user: str = "skiff"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    _opener: urllib.request.OpenerDirector = field(
        default_factory=lambda: urllib.request.build_opener(urllib.request.ProxyHandler({}))
    )

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def log_path(self) -> Path:
        return self.dir / "registry.log"

    def start(self, timeout: float = 30.0) -> LocalRegistry:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        htpasswd = subprocess.run(
            ["htpasswd", "-Bbn", self.user, self.password], check=True, capture_output=True, text=True
        ).stdout
        (self.dir / "htpasswd").write_text(htpasswd)
        config = self.dir / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: info, formatter: text}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.dir / 'storage'}}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: '{self.host}', secret: {secrets.token_hex(16)}}}\n"
            f"auth: {{htpasswd: {{realm: skiff-test, path: {self.dir / 'htpasswd'}}}}}\n"
        )
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        _wait(
            lambda: self.request("GET", "/v2/", auth=False).status == 401,
            "docker-registry",
            self.proc,
            self.log_path,
            timeout,
        )
        return self

    def stop(self) -> None:
        _stop(self.proc)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool | tuple[str, str] = True,
    ) -> Response:
        """One HTTP request; `auth` True uses our user, a (user, password) pair another, False none."""
        req = urllib.request.Request(urllib.parse.urljoin(self.url, path), data=body, method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        if auth:
            user, password = auth if isinstance(auth, tuple) else (self.user, self.password)
            req.add_header(
                "Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            )
        try:
            with self._opener.open(req, timeout=30) as r:
                return Response(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())
        except (urllib.error.URLError, OSError):
            return Response(0, {}, b"")

    def push(self, archive: Path, repository: str | None = None, tag: str | None = None) -> str:
        """Push the image of `archive` (blobs first, then the manifest); returns "127.0.0.1:PORT/repo:tag".

        The repository defaults to the archive's image name without its registry host
        ("skiff.local/test/web:1" -> "test/web:1"), so containerd can pull it from this registry.
        """
        image = read_archive(archive)
        name_repo, name_tag = split_reference(image.name or "image:latest")
        repo = repository or (name_repo.split("/", 1)[1] if "/" in name_repo else name_repo)
        tag = tag or name_tag
        for blob in (image.config, *image.layers):
            if self.request("HEAD", f"/v2/{repo}/blobs/{blob.digest}").status == 200:
                continue
            started = self.request("POST", f"/v2/{repo}/blobs/uploads/", body=b"")
            if started.status != 202:
                raise RuntimeError(f"blob upload for {repo} refused: {started.status} {started.body!r}")
            location = started.headers["location"]
            sep = "&" if "?" in location else "?"
            done = self.request(
                "PUT",
                f"{location}{sep}digest={urllib.parse.quote(blob.digest)}",
                body=blob.data,
                headers={"Content-Type": "application/octet-stream"},
            )
            if done.status != 201:
                raise RuntimeError(f"blob {blob.digest} upload failed: {done.status} {done.body!r}")
        put = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{tag}",
            body=image.manifest.data,
            headers={"Content-Type": image.manifest.media_type},
        )
        if put.status != 201:
            raise RuntimeError(f"manifest push for {repo}:{tag} failed: {put.status} {put.body!r}")
        return f"{self.host}/{repo}:{tag}"


@dataclass
class PrivateContainerd:
    """containerd with everything (root, state, sockets, opt) under `dir`, CRI off; `ctr` talks to it."""

    dir: Path
    namespace: str = "k8s.io"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.dir / "containerd.sock"

    @property
    def log_path(self) -> Path:
        return self.dir / "containerd.log"

    def start(self, timeout: float = 30.0) -> PrivateContainerd:
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "config.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{self.dir / "root"}"\n'
            f'state = "{self.dir / "state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.socket}"\n'
            f'[ttrpc]\n  address = "{self.socket}.ttrpc"\n'
            '[debug]\n  address = ""\n'
            '[metrics]\n  address = ""\n'
            f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{self.dir / "opt"}"\n'
        )
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                ["containerd", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        _wait(
            lambda: self.socket.exists() and self.ctr("version", check=False).returncode == 0,
            "containerd",
            self.proc,
            self.log_path,
            timeout,
        )
        return self

    def _argv(self, args: tuple[str, ...]) -> list[str]:
        """`ctr` argv; `run` and `tasks exec` get their FIFOs and runc state under `dir` instead of
        /run/containerd (only the shims' socket dir, /run/containerd/s, is fixed in containerd 1.6)."""
        local = ["--fifo-dir", str(self.dir / "fifo")]
        if args[:1] == ("run",):
            args = ("run", *local, "--runc-root", str(self.dir / "runc"), *args[1:])
        elif args[:2] == ("tasks", "exec"):
            args = ("tasks", "exec", *local, *args[2:])
        return ["ctr", "--address", str(self.socket), "--namespace", self.namespace, *args]

    def ctr(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            self._argv(args),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and res.returncode != 0:
            raise AssertionError(
                f"ctr {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
            )
        return res

    def ctr_popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self._argv(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> None:
        """Kill what tests left running (their shims would outlive containerd), stop it, remove `dir`."""
        if self.proc is not None and self.proc.poll() is None:
            for task in self.ctr("tasks", "ls", "-q", check=False).stdout.split():
                self.ctr("tasks", "kill", "-s", "SIGKILL", task, check=False)
                self.ctr("tasks", "delete", "-f", task, check=False)
            for container in self.ctr("containers", "ls", "-q", check=False).stdout.split():
                self.ctr("containers", "delete", container, check=False)
        _stop(self.proc)
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)
