"""`skiff uninstall` finds skiff's cgroup trees under every cgroup mount, v1 and v2."""

from __future__ import annotations

from pathlib import Path

from skiff.agent.uninstall import cgroup_dirs

MOUNTINFO = """\
22 21 0:19 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
23 22 0:20 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
24 22 0:21 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
25 22 0:22 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
26 21 8:1 / /data rw,relatime shared:1 - ext4 /dev/sda1 rw
"""


def test_cgroup_dirs_lists_skiff_under_each_cgroup_mount() -> None:
    assert cgroup_dirs(MOUNTINFO) == [Path("/sys/fs/cgroup/cpu/skiff"), Path("/sys/fs/cgroup/memory/skiff"),
                                      Path("/sys/fs/cgroup/unified/skiff")]
