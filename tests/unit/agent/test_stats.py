"""Node and container usage: the cgroup/proc parsers on fixture text, the reader on fixture trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from skiff.agent.runtime.interface import (
    LABEL_CONTAINER_NAME,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    RuntimeError_,
)
from skiff.agent.stats import (
    CgroupLayout,
    ContainerUsage,
    NodeStatsReader,
    container_usage,
    meminfo_working_set,
    parse_flat_keyed,
    parse_meminfo,
    parse_mountinfo,
    parse_proc_stat_cpu_ns,
    v1_memory_working_set,
    v2_memory_working_set,
)

# The build machines: cgroup v1 "hybrid", cpu and cpuacct mounted separately, an empty cgroup2 at unified/.
HYBRID_SPLIT = """\
23 1 0:21 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
# The usual systemd v1 layout: cpu and cpuacct share one hierarchy; optional fields before the separator.
V1_JOINED = """\
25 30 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
33 25 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
36 25 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,memory
"""
PURE_V2 = """\
29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""
ESCAPED = r"""40 23 0:40 / /mnt/my\040cgroups rw - cgroup cgroup rw,memory
"""


@pytest.mark.parametrize("text,want", [
    pytest.param(HYBRID_SPLIT, CgroupLayout("/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"),
                 id="hybrid-split-cpu-cpuacct"),
    pytest.param(V1_JOINED, CgroupLayout("/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory", ""), id="v1-joined"),
    pytest.param(PURE_V2, CgroupLayout("", "", "/sys/fs/cgroup"), id="v2"),
    pytest.param(ESCAPED, CgroupLayout("", "/mnt/my cgroups", ""), id="octal-escaped-mount-point"),
    pytest.param("23 1 0:21 / / rw - ext4 /dev/vda rw\n", CgroupLayout(), id="no-cgroups"),
])
def test_parse_mountinfo(text: str, want: CgroupLayout) -> None:
    assert parse_mountinfo(text) == want


@pytest.mark.parametrize("layout,version", [
    pytest.param(CgroupLayout("/a", "/b", "/c"), 1, id="hybrid-is-v1"),
    pytest.param(CgroupLayout("", "", "/c"), 2, id="unified-only"),
    pytest.param(CgroupLayout(), 0, id="none"),
])
def test_layout_version(layout: CgroupLayout, version: int) -> None:
    assert layout.version == version


@pytest.mark.parametrize("text,hz,want", [
    # busy = user + nice + system + irq + softirq + steal (idle and iowait are not)
    pytest.param("cpu  351774 0 63054 2194321 11368 0 4923 882 0 0\ncpu0 1 2 3 4\n", 100,
                 (351774 + 63054 + 4923 + 882) * 10_000_000, id="real-line"),
    pytest.param("cpu  10 20 30 1000 1000 40 50 60\n", 250, 210 * 4_000_000, id="hz-250"),
    pytest.param("cpu  7 0 3 100\n", 100, 10 * 10_000_000, id="old-kernel-short-line"),
])
def test_proc_stat(text: str, hz: int, want: int) -> None:
    assert parse_proc_stat_cpu_ns(text, hz) == want


def test_proc_stat_without_cpu_line() -> None:
    with pytest.raises(ValueError):
        parse_proc_stat_cpu_ns("intr 1 2 3\n", 100)


def test_meminfo_in_bytes() -> None:
    got = parse_meminfo("MemTotal:       24683656 kB\nMemFree:   100 kB\nHugePages_Total:       0\n")
    assert got == {"MemTotal": 24683656 * 1024, "MemFree": 102400, "HugePages_Total": 0}


def test_flat_keyed_skips_non_integers() -> None:
    assert parse_flat_keyed("cache 5\ntotal_inactive_file 128401408\nbogus x\nhierarchical y z\n") == {
        "cache": 5, "total_inactive_file": 128401408}


@pytest.mark.parametrize("usage,stat,want", [
    pytest.param(723664896, {"inactive_file": 8192, "total_inactive_file": 128401408}, 723664896 - 128401408,
                 id="hierarchical-total-not-local"),
    pytest.param(1000, {"total_inactive_file": 5000}, 0, id="never-negative"),
    pytest.param(4096, {}, 4096, id="no-inactive"),
])
def test_v1_working_set(usage: int, stat: dict[str, int], want: int) -> None:
    assert v1_memory_working_set(usage, stat) == want


GiB = 1 << 30


@pytest.mark.parametrize("current,stat,meminfo,want", [
    pytest.param(3 * GiB, {"inactive_file": GiB}, {}, 2 * GiB, id="memory-current"),
    pytest.param(None, {"inactive_file": GiB}, {"MemTotal": 8 * GiB, "MemFree": 4 * GiB}, 3 * GiB,
                 id="root-uses-total-minus-free"),
    pytest.param(None, {}, {"MemTotal": 8 * GiB, "MemFree": 4 * GiB, "Inactive(file)": 2 * GiB}, 2 * GiB,
                 id="root-without-memory-stat"),
])
def test_v2_working_set(current: int | None, stat: dict[str, int], meminfo: dict[str, int], want: int) -> None:
    assert v2_memory_working_set(current, stat, meminfo) == want


def test_meminfo_working_set() -> None:
    assert meminfo_working_set({"MemTotal": 8 * GiB, "MemAvailable": 6 * GiB}) == 2 * GiB


# --- the reader over fixture trees ---------------------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


MEMINFO = "MemTotal: 8388608 kB\nMemFree: 4194304 kB\nMemAvailable: 6291456 kB\nInactive(file): 1048576 kB\n"
PROC_STAT = "cpu  100 0 100 5000 0 0 0 0 0 0\n"


def test_reader_hybrid_v1(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "proc/self/mountinfo": HYBRID_SPLIT, "proc/stat": PROC_STAT, "proc/meminfo": MEMINFO,
        "sys/fs/cgroup/cpuacct/cpuacct.usage": "4221886838433\n",
        "sys/fs/cgroup/memory/memory.usage_in_bytes": "723664896\n",
        "sys/fs/cgroup/memory/memory.stat": "inactive_file 8192\ntotal_inactive_file 128401408\n",
    })
    got = NodeStatsReader(root, user_hz=100).read()
    assert got.cpu_core_ns == 4221886838433
    assert got.memory_working_set_bytes == 723664896 - 128401408
    assert got.timestamp_ns > 0


def test_reader_v2_root(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "proc/self/mountinfo": PURE_V2, "proc/stat": PROC_STAT, "proc/meminfo": MEMINFO,
        "sys/fs/cgroup/cpu.stat": "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n",
        "sys/fs/cgroup/memory.stat": f"anon 1\ninactive_file {GiB // 2}\n",
    })
    got = NodeStatsReader(root, user_hz=100).read()
    assert got.cpu_core_ns == 123456 * 1000
    assert got.memory_working_set_bytes == 4 * GiB - GiB // 2  # (MemTotal - MemFree) - inactive_file


def test_reader_falls_back_to_proc(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"proc/self/mountinfo": "", "proc/stat": PROC_STAT, "proc/meminfo": MEMINFO})
    got = NodeStatsReader(root, user_hz=100).read()
    assert got.cpu_core_ns == 200 * 10_000_000
    assert got.memory_working_set_bytes == 2 * GiB  # MemTotal - MemAvailable


def test_reader_with_nothing_readable(tmp_path: Path) -> None:
    got = NodeStatsReader(tmp_path, user_hz=100).read()
    assert got.cpu_core_ns is None and got.memory_working_set_bytes is None


async def test_reader_on_this_host() -> None:
    """The real files of the machine running the tests: positive, plausible figures."""
    got = await NodeStatsReader().node_usage()
    assert got.cpu_core_ns is not None and got.cpu_core_ns > 0
    assert got.memory_working_set_bytes is not None and got.memory_working_set_bytes > 0


# --- containers from the runtime --------------------------------------------------------------------------


class StubRuntime:
    """Only the two calls container_usage makes."""

    def __init__(self, containers: list[ContainerStatus], stats: list[ContainerStats], fail: bool = False) -> None:
        self.containers = containers
        self.stats = stats
        self.fail = fail
        self.asked: list[str] = []

    async def list_containers(self, sandbox_id: str = "") -> list[ContainerStatus]:
        if self.fail:
            raise RuntimeError_("ListContainersError", "runtime down")
        return self.containers

    async def container_stats(self, container_ids: list[str]) -> list[ContainerStats]:
        self.asked = list(container_ids)
        return [s for s in self.stats if s.container_id in container_ids]


def _container(cid: str, pod: str, name: str, state: ContainerState = ContainerState.RUNNING,
               labelled: bool = True) -> ContainerStatus:
    labels = {LABEL_POD_NAME: pod, LABEL_POD_NAMESPACE: "default", LABEL_CONTAINER_NAME: name} if labelled else {}
    return ContainerStatus(id=cid, sandbox_id="s", name=name, attempt=0, state=state, started_at_ns=1_000 + len(cid),
                           labels=labels)


async def test_container_usage_names_running_pod_containers() -> None:
    rt = StubRuntime(
        [_container("b", "web", "app"), _container("a", "api", "main"),
         _container("x", "web", "old", ContainerState.EXITED), _container("y", "", "foreign", labelled=False)],
        [ContainerStats("a", 5_000, 2_000_000_000, 4096), ContainerStats("b", 0, 7, 8192),
         ContainerStats("x", 1, 1, 1)],
    )
    got = await container_usage(rt)  # type: ignore[arg-type]
    assert sorted(rt.asked) == ["a", "b"]
    assert got[0] == ContainerUsage("default", "api", "main", 1_001, 5_000, 2_000_000_000, 4096)
    assert (got[1].pod, got[1].container, got[1].cpu_core_ns, got[1].memory_working_set_bytes) == ("web", "app", 7, 8192)
    assert got[1].timestamp_ns > 0  # a runtime without a timestamp gets the read time


async def test_container_usage_propagates_runtime_errors() -> None:
    with pytest.raises(RuntimeError_):
        await container_usage(StubRuntime([], [], fail=True))  # type: ignore[arg-type]
