"""Resource usage of the node and of its containers: what the kubelet's `/metrics/resource` reports.

Node figures follow the kubelet's summary provider (cAdvisor's root container, `pkg/kubelet/stats`):

* CPU: cumulative core-nanoseconds of the root cgroup (`cpuacct.usage` on cgroup v1, `usage_usec` of the root
  `cpu.stat` on v2), else the busy jiffies of `/proc/stat`.
* Memory working set: `usage - inactive_file` of the root memory cgroup (`memory.usage_in_bytes` and
  `total_inactive_file` on v1; on v2 `memory.current`, which the root lacks, so `MemTotal - MemFree` as
  libcontainer does, minus `inactive_file`), else `MemTotal - MemAvailable`.

Cgroup mounts come from `/proc/self/mountinfo`, never from fixed paths: the machines skiff is built on mount
`cpu` and `cpuacct` separately (platform.md). Container figures come from the runtime (CRI
ListContainerStats: `usage_core_nano_seconds`, `working_set_bytes`).

The parsers are pure (tested on fixture text); `NodeStatsReader.read` does the blocking file reads and
`node_usage` runs it in a thread so the event loop never waits on sysfs.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from skiff.agent.runtime.interface import (
    LABEL_CONTAINER_NAME,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    ContainerState,
    Runtime,
)

# /proc/stat columns that count busy time (guest time is already inside user/nice).
_BUSY_COLUMNS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal


@dataclass(frozen=True)
class CgroupLayout:
    """Where the controllers the node stats need are mounted (absolute mount points, "" when absent)."""

    cpuacct: str = ""  # cgroup v1 hierarchy carrying the cpuacct controller
    memory: str = ""  # cgroup v1 hierarchy carrying the memory controller
    unified: str = ""  # the cgroup2 mount (on a hybrid host it has no controllers; v1 wins there)

    @property
    def version(self) -> int:
        """1 when a v1 controller we read is mounted, 2 for a pure v2 host, 0 without cgroups."""
        if self.cpuacct or self.memory:
            return 1
        return 2 if self.unified else 0


@dataclass(frozen=True)
class NodeUsage:
    timestamp_ns: int  # wall clock (Unix ns) of the reading
    cpu_core_ns: int | None  # cumulative core-nanoseconds; None when unreadable
    memory_working_set_bytes: int | None


@dataclass(frozen=True)
class ContainerUsage:
    namespace: str
    pod: str
    container: str
    start_time_ns: int  # Unix ns the container started; 0 when unknown
    timestamp_ns: int  # when the runtime measured it
    cpu_core_ns: int
    memory_working_set_bytes: int


# ------------------------------------------------------------------------------------------- pure parsers


def _unescape_mount(path: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as `\\ooo` octal."""
    if "\\" not in path:
        return path
    out, i = [], 0
    while i < len(path):
        if path[i] == "\\" and i + 4 <= len(path) and path[i + 1:i + 4].isdigit():
            out.append(chr(int(path[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> CgroupLayout:
    """The cgroup mounts of a `/proc/<pid>/mountinfo` (proc(5)): `id parent maj:min root mountpoint opts
    [optional...] - fstype source superopts`. v1 controllers are named in the super options."""
    cpuacct = memory = unified = ""
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        if sep < 5 or len(fields) < sep + 4:
            continue
        mount_point = _unescape_mount(fields[4])
        fstype, superopts = fields[sep + 1], fields[sep + 3].split(",")
        if fstype == "cgroup":
            if "cpuacct" in superopts and not cpuacct:
                cpuacct = mount_point
            if "memory" in superopts and not memory:
                memory = mount_point
        elif fstype == "cgroup2" and not unified:
            unified = mount_point
    return CgroupLayout(cpuacct=cpuacct, memory=memory, unified=unified)


def parse_proc_stat_cpu_ns(text: str, user_hz: int) -> int:
    """Busy core-nanoseconds since boot from the aggregate `cpu` line of /proc/stat (in USER_HZ ticks)."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            ticks = [int(v) for v in fields[1:]]
            busy = sum(ticks[i] for i in _BUSY_COLUMNS if i < len(ticks))
            return busy * 1_000_000_000 // user_hz
    raise ValueError("no aggregate cpu line in /proc/stat")


def parse_flat_keyed(text: str) -> dict[str, int]:
    """`key value` lines (memory.stat, cpu.stat); lines that are not integers are skipped."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo in bytes (`MemTotal:  24683656 kB` → 25276063744)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if not parts or not parts[0].isdigit():
            continue
        scale = 1024 if len(parts) > 1 and parts[1] == "kB" else 1
        out[key.strip()] = int(parts[0]) * scale
    return out


def working_set(usage: int, inactive_file: int) -> int:
    """cAdvisor's working set: usage minus the inactive file cache, never negative."""
    return max(0, usage - inactive_file)


def v1_memory_working_set(usage_in_bytes: int, stat: Mapping[str, int]) -> int:
    """cgroup v1: `memory.usage_in_bytes - total_inactive_file` (hierarchical, as the root needs)."""
    return working_set(usage_in_bytes, stat.get("total_inactive_file", 0))


def v2_memory_working_set(current: int | None, stat: Mapping[str, int], meminfo: Mapping[str, int]) -> int:
    """cgroup v2: `memory.current - inactive_file`; the root has no memory.current, so its usage is
    `MemTotal - MemFree` (libcontainer's root fallback) and its inactive file pages come from the root
    memory.stat or, when that is missing too, from meminfo's `Inactive(file)`."""
    if current is None:
        current = meminfo.get("MemTotal", 0) - meminfo.get("MemFree", 0)
    inactive = stat["inactive_file"] if "inactive_file" in stat else meminfo.get("Inactive(file)", 0)
    return working_set(current, inactive)


def meminfo_working_set(meminfo: Mapping[str, int]) -> int:
    """No memory cgroup at all: `MemTotal - MemAvailable`."""
    return max(0, meminfo.get("MemTotal", 0) - meminfo.get("MemAvailable", 0))


# ------------------------------------------------------------------------------------------- node reader


class NodeStatsReader:
    """Reads node CPU and memory from the host's files under `root` (a test passes a fixture tree).

    Mount points found in mountinfo are taken relative to `root`. The cgroup layout is looked up once,
    on the first read. `read` blocks (file I/O); use `node_usage` from async code."""

    def __init__(self, root: Path = Path("/"), user_hz: int | None = None) -> None:
        self.root = root
        self.user_hz = user_hz or os.sysconf("SC_CLK_TCK")
        self._layout: CgroupLayout | None = None

    def _path(self, absolute: str, *names: str) -> Path:
        return self.root.joinpath(absolute.lstrip("/"), *names)

    def _text(self, path: Path) -> str | None:
        try:
            return path.read_text()
        except OSError:
            return None

    def layout(self) -> CgroupLayout:
        if self._layout is None:
            text = self._text(self.root / "proc/self/mountinfo") or ""
            self._layout = parse_mountinfo(text)
        return self._layout

    def _cpu_ns(self, layout: CgroupLayout) -> int | None:
        if layout.cpuacct:
            text = self._text(self._path(layout.cpuacct, "cpuacct.usage"))
            if text is not None and text.strip().isdigit():
                return int(text.strip())
        if layout.version == 2:
            text = self._text(self._path(layout.unified, "cpu.stat"))
            if text is not None and "usage_usec" in (stat := parse_flat_keyed(text)):
                return stat["usage_usec"] * 1000
        text = self._text(self.root / "proc/stat")
        if text is None:
            return None
        try:
            return parse_proc_stat_cpu_ns(text, self.user_hz)
        except ValueError:
            return None

    def _memory(self, layout: CgroupLayout) -> int | None:
        meminfo_text = self._text(self.root / "proc/meminfo")
        meminfo = parse_meminfo(meminfo_text or "")
        if layout.memory:
            usage = self._text(self._path(layout.memory, "memory.usage_in_bytes"))
            stat = self._text(self._path(layout.memory, "memory.stat"))
            if usage is not None and usage.strip().isdigit() and stat is not None:
                return v1_memory_working_set(int(usage.strip()), parse_flat_keyed(stat))
        elif layout.version == 2:
            current = self._text(self._path(layout.unified, "memory.current"))
            stat = self._text(self._path(layout.unified, "memory.stat"))
            cur = int(current.strip()) if current is not None and current.strip().isdigit() else None
            if cur is not None or meminfo:
                return v2_memory_working_set(cur, parse_flat_keyed(stat or ""), meminfo)
        if meminfo_text is None:
            return None
        return meminfo_working_set(meminfo)

    def read(self) -> NodeUsage:
        layout = self.layout()
        now = time.time_ns()
        return NodeUsage(timestamp_ns=now, cpu_core_ns=self._cpu_ns(layout), memory_working_set_bytes=self._memory(layout))

    async def node_usage(self) -> NodeUsage:
        return await asyncio.to_thread(self.read)


# ------------------------------------------------------------------------------------------- containers


async def container_usage(runtime: Runtime) -> list[ContainerUsage]:
    """Usage of every running pod container the runtime knows, named by the kubelet's labels.

    Containers without pod labels (not ours) and exited ones are left out, as the kubelet reports only
    live containers. Raises the runtime's `RuntimeError_` when listing or the stats call fails."""
    running = [c for c in await runtime.list_containers()
               if c.state is ContainerState.RUNNING and LABEL_POD_NAME in c.labels]
    if not running:
        return []
    by_id = {c.id: c for c in running}
    out: list[ContainerUsage] = []
    now = time.time_ns()
    for s in await runtime.container_stats(list(by_id)):
        c = by_id.get(s.container_id)
        if c is None:
            continue
        out.append(ContainerUsage(
            namespace=c.labels.get(LABEL_POD_NAMESPACE, ""),
            pod=c.labels[LABEL_POD_NAME],
            container=c.labels.get(LABEL_CONTAINER_NAME, c.name),
            start_time_ns=c.started_at_ns,
            timestamp_ns=s.timestamp_ns or now,
            cpu_core_ns=s.cpu_usage_core_nanoseconds,
            memory_working_set_bytes=s.memory_working_set_bytes,
        ))
    out.sort(key=lambda u: (u.namespace, u.pod, u.container))
    return out
