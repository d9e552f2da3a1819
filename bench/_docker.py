"""A private, throw-away Docker Swarm for the pod start benchmark: how long `docker service create --replicas N` takes.

The daemon gets its own data root, exec root, pid file and socket under a temp dir, no default bridge, no
iptables rules, no masquerading and no ip_forward change, so it touches the host network as little as Swarm
allows. Images are loaded from an archive and never pulled (`--no-resolve-image`,
`DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1`): nothing leaves the machine. Everything the daemon leaves on the host
(`docker_gwbridge`, `docker0`, `DOCKER*` chains, /etc/docker/key.json, /run/docker) is removed afterwards when
it was not there before.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BRIDGES = ("docker0", "docker_gwbridge")
IPTABLES_TABLES = ("filter", "nat", "mangle")
# Files dockerd 20.10 writes outside --data-root/--exec-root (the trust key, the plugin socket dir).
HOST_PATHS = (Path("/etc/docker/key.json"), Path("/run/docker"))


def dockerd_available(install: bool) -> str | None:
    """None when `dockerd` can run here, else why not; installs Debian's docker.io only when `install`."""
    if os.geteuid() != 0:
        return "dockerd needs root"
    if shutil.which("dockerd") is None:
        if not install:
            return "dockerd is not installed (pass --with-docker to apt-get install docker.io)"
        res = subprocess.run(["apt-get", "install", "-y", "docker.io"], capture_output=True, text=True,
                             timeout=900, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if res.returncode != 0 or shutil.which("dockerd") is None:
            return f"apt-get install docker.io failed: {res.stderr.strip()[-300:]}"
    if docker_cli() is None:
        return "no docker CLI found"
    return None


def docker_cli() -> str | None:
    """The package's CLI first (it matches the daemon's version), else whatever `docker` is on PATH."""
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else shutil.which("docker")


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def _chains(table: str) -> set[str]:
    res = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True)
    return {line.split()[1] for line in res.stdout.splitlines() if line.startswith("-N ")}


@dataclass
class HostSnapshot:
    """What of Docker's footprint existed before we started, so cleanup removes only what we added."""

    links: set[str]
    chains: dict[str, set[str]]
    paths: set[Path]

    @classmethod
    def take(cls) -> HostSnapshot:
        return cls(_links(), {t: _chains(t) for t in IPTABLES_TABLES}, {p for p in HOST_PATHS if p.exists()})

    def remove_additions(self) -> list[str]:
        """Delete the bridges, DOCKER* chains and host files that appeared since `take`; returns what it removed."""
        removed: list[str] = []
        for bridge in BRIDGES:
            if bridge in _links() and bridge not in self.links:
                ports = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True,
                                       text=True).stdout
                for line in ports.splitlines():
                    port = line.split(":")[1].strip().split("@")[0]
                    subprocess.run(["ip", "link", "del", port], capture_output=True)
                    removed.append(f"link {port}")
                subprocess.run(["ip", "link", "del", bridge], capture_output=True)
                removed.append(f"link {bridge}")
        for table in IPTABLES_TABLES:
            new = {c for c in _chains(table) - self.chains[table] if c.startswith("DOCKER")}
            if not new:
                continue
            rules = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True).stdout
            for rule in rules.splitlines():
                words = rule.split()
                if words[:1] == ["-A"] and "-j" in words and words[words.index("-j") + 1] in new:
                    subprocess.run(["iptables", "-t", table, "-D", *words[1:]], capture_output=True)
            for chain in new:
                subprocess.run(["iptables", "-t", table, "-F", chain], capture_output=True)
            for chain in new:
                subprocess.run(["iptables", "-t", table, "-X", chain], capture_output=True)
                removed.append(f"iptables -t {table} chain {chain}")
        for path in HOST_PATHS:
            if path.exists() and path not in self.paths:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(str(path))
        return removed


def _mounts_under(root: Path) -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(root) or point.startswith(f"{root}/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


@dataclass
class PrivateSwarm:
    """One dockerd we start and end by PID, initialised as a single-node swarm on loopback."""

    listen_port: int
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="skiff-swarm-")))
    proc: subprocess.Popen[bytes] | None = None
    cli: str = "docker"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.tmp}/docker.sock", "DOCKER_CONFIG": str(self.tmp / "cli")}

    def docker(self, *args: str, timeout: float = 60) -> str:
        """Run the CLI against our daemon; raises with its stderr on failure."""
        res = subprocess.run([self.cli, *args], capture_output=True, text=True, timeout=timeout, env=self.env)
        if res.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)}: {res.stderr.strip()}")
        return res.stdout

    def start(self, timeout: float = 60) -> None:
        self.cli = docker_cli() or "docker"
        (self.tmp / "cli").mkdir(parents=True, exist_ok=True)
        log = open(self.tmp / "dockerd.log", "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            ["dockerd", "--data-root", str(self.tmp / "root"), "--exec-root", str(self.tmp / "exec"),
             "--pidfile", str(self.tmp / "docker.pid"), "-H", f"unix://{self.tmp}/docker.sock",
             "--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false",
             "--userland-proxy=false", "--log-level=warn"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE": "1"},
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited: {self.log_tail()}")
            try:
                self.docker("version", timeout=5)
                break
            except (RuntimeError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dockerd not up after {timeout}s: {self.log_tail()}") from None
                time.sleep(0.2)
        # Keep Swarm's own address pool off 10.0.0.0/8, where skiff's cluster CIDR lives.
        self.docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr",
                    f"127.0.0.1:{self.listen_port}", "--default-addr-pool", "172.30.0.0/16")

    def log_tail(self) -> str:
        try:
            return (self.tmp / "dockerd.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def converge(self, image: str, replicas: int, env: dict[str, str], health_cmd: str | None,
                 timeout: float) -> float:
        """Seconds from `docker service create` to `docker service ls` showing `replicas/replicas` (100 ms polls)."""
        extra: list[str] = []
        if health_cmd:
            extra = ["--health-cmd", health_cmd, "--health-interval", "1s", "--health-timeout", "1s",
                     "--health-retries", "1"]
        env_args = [a for k, v in env.items() for a in ("--env", f"{k}={v}")]
        t0 = time.monotonic()
        self.docker("service", "create", "--detach", "--no-resolve-image", "--replicas", str(replicas),
                    "--name", "web", *env_args, *extra, image)
        want = f"{replicas}/{replicas}"
        while time.monotonic() - t0 < timeout:
            if self.docker("service", "ls", "--filter", "name=web", "--format", "{{.Replicas}}").strip() == want:
                return time.monotonic() - t0
            time.sleep(0.1)
        raise TimeoutError(f"swarm did not reach {want} in {timeout}s")

    def stop(self) -> None:
        """Remove the service, leave the swarm, end dockerd by PID and delete its directories. Idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.docker("service", "rm", "web", timeout=30)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if not self.docker("ps", "-aq", timeout=10).strip():
                        break
                except (RuntimeError, subprocess.TimeoutExpired):
                    break
                time.sleep(0.3)
            try:
                self.docker("swarm", "leave", "--force", timeout=30)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._end_leftover_processes()
        for point in _mounts_under(self.tmp):
            subprocess.run(["umount", "-l", point], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _end_leftover_processes(self) -> None:
        """The daemon's containerd and shims carry our temp dir in their arguments: end any that outlived it."""
        for proc_dir in Path("/proc").iterdir():
            if not proc_dir.name.isdigit():
                continue
            try:
                cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(self.tmp) in cmdline:
                try:
                    os.kill(int(proc_dir.name), signal.SIGKILL)
                except ProcessLookupError:
                    pass
