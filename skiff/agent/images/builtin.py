"""Images skiff builds itself from host files: the pause (sandbox) image and the busybox base of test images.

Nothing is pulled: containerd's default `registry.k8s.io/pause` is unreachable here, so the CRI config points
`sandbox_image` at `skiff.local/pause:3.10`, built from Debian's statically linked busybox.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
from collections.abc import Iterable
from pathlib import Path

from skiff.agent.images.oci import (
    ArchiveContents,
    Dir,
    Entry,
    File,
    ImageArchiveError,
    ImageConfig,
    Symlink,
    build_image,
    write_archive,
)

PAUSE_IMAGE = "skiff.local/pause:3.10"

# PID 1 of a container gets no default signal dispositions, so a plain `sleep` ignores SIGTERM and the sandbox
# only dies by SIGKILL after StopPodSandbox's timeout. A shell that traps TERM/INT exits at once, and
# `wait` on a background sleep keeps it responsive and reaps what it starts.
PAUSE_SCRIPT = b"""#!/bin/sh
# skiff pause: hold the pod's namespaces; exit 0 on SIGTERM/SIGINT (PID 1 has no default handlers).
trap 'exit 0' TERM INT
while :; do
  sleep 3600 &
  wait $!
done
"""

# Applets get symlinks in /bin; `busybox --list` names more, these are what tests and probes use.
APPLETS = (
    "sh",
    "ash",
    "ls",
    "cat",
    "sleep",
    "echo",
    "env",
    "id",
    "wget",
    "nc",
    "httpd",
    "ps",
    "kill",
    "grep",
    "sed",
    "awk",
    "head",
    "tail",
    "mkdir",
    "rm",
    "cp",
    "mv",
    "touch",
    "date",
    "hostname",
    "ip",
    "ifconfig",
    "nslookup",
    "printf",
    "test",
    "true",
    "false",
    "wc",
    "whoami",
    "uname",
    "mount",
    "df",
    "du",
    "find",
    "chmod",
    "chown",
    "ln",
    "tee",
    "seq",
    "timeout",
    "pwd",
    "stat",
    "top",
    "vi",
    "xargs",
    "yes",
    "dd",
    "tr",
    "cut",
    "sort",
    "uniq",
    "basename",
    "dirname",
    "readlink",
    "nohup",
    "usleep",
    "watch",
    "netstat",
    "tar",  # `kubectl cp` is exec of tar
    "gzip",
    "md5sum",
    "sha256sum",
)
_BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))
_FORMAT = "skiff-builtin-1"  # bump when the layout below changes, so cached archives are rebuilt


class BusyboxNotFound(ImageArchiveError):
    """No statically linked busybox on the host (Debian: `apt-get install busybox-static`)."""


def is_static_elf(path: Path) -> bool:
    """Whether `path` is an ELF executable without a program interpreter (so it runs in an empty rootfs)."""
    with path.open("rb") as f:
        ident = f.read(64)
        if len(ident) < 64 or ident[:4] != b"\x7fELF":
            return False
        endian = "<" if ident[5] == 1 else ">"
        if ident[4] == 2:  # ELFCLASS64: e_phoff at 32 (8 bytes), e_phentsize/e_phnum at 54
            (phoff,), (phentsize, phnum) = (
                struct.unpack_from(endian + "Q", ident, 32),
                struct.unpack_from(endian + "HH", ident, 54),
            )
        else:  # ELFCLASS32: e_phoff at 28 (4 bytes), e_phentsize/e_phnum at 42
            (phoff,), (phentsize, phnum) = (
                struct.unpack_from(endian + "I", ident, 28),
                struct.unpack_from(endian + "HH", ident, 42),
            )
        f.seek(phoff)
        headers = f.read(phentsize * phnum)
    pt_interp = 3
    return all(struct.unpack_from(endian + "I", headers, i * phentsize)[0] != pt_interp for i in range(phnum))


def find_busybox(candidates: Iterable[Path] | None = None) -> Path:
    """The host's static busybox (Debian's busybox-static; default: /bin, /usr/bin, then $PATH).

    A dynamically linked busybox would not start inside an image without libc, so it is refused.
    """
    if candidates is None:
        which = shutil.which("busybox")
        candidates = [*_BUSYBOX_CANDIDATES, *([Path(which)] if which else [])]
    seen: list[str] = []
    for path in candidates:
        if path.is_file():
            if is_static_elf(path.resolve()):
                return path
            seen.append(f"{path} is dynamically linked")
    detail = "; ".join(seen) or "no busybox found"
    raise BusyboxNotFound(f"a statically linked busybox is needed ({detail}); install busybox-static")


def busybox_base(busybox: Path, applets: Iterable[str] = APPLETS) -> list[Entry]:
    """A minimal root: /bin/busybox with applet symlinks, /etc/passwd|group (root, nobody, app=1000), /tmp."""
    entries: list[Entry] = [File("/bin/busybox", busybox, 0o755)]
    entries += [Symlink(f"/bin/{name}", "busybox") for name in sorted(set(applets))]
    entries += [
        File(
            "/etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
            b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        File("/etc/group", b"root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"),
        Dir("/root", 0o700),
        Dir("/home/app", 0o755, uid=1000, gid=1000),
        Dir("/tmp", 0o1777),
        Dir("/proc"),
        Dir("/sys"),
        Dir("/dev"),
        Dir("/etc"),
    ]
    return entries


def pause_image(busybox: Path) -> ArchiveContents:
    """`skiff.local/pause:3.10`: /pause (a busybox sh script; busybox picks its applet from argv[0], so the
    binary itself cannot be /pause) over /bin/busybox with just `sh` and `sleep`."""
    entries: list[Entry] = [
        File("/bin/busybox", busybox, 0o755),
        Symlink("/bin/sh", "busybox"),
        Symlink("/bin/sleep", "busybox"),
        File("/pause", PAUSE_SCRIPT, 0o755),
        Dir("/proc"),
        Dir("/sys"),
        Dir("/dev"),
        Dir("/etc"),
    ]
    # Like registry.k8s.io/pause, it needs no privileges: run as 65535 unless the sandbox says otherwise.
    config = ImageConfig(entrypoint=["/pause"], user="65535:65535", labels={"io.skiff.image": "pause"})
    return build_image(PAUSE_IMAGE, config, entries)


def ensure_pause_archive(data_dir: Path, busybox: Path | None = None) -> Path:
    """The pause image archive under `data_dir/images/`, built only when its inputs changed; idempotent.

    The file name carries a hash of the inputs (busybox bytes, script, layout version), so a busybox upgrade
    yields a new archive and stale ones are removed. Blocking file I/O: call it from an executor.
    """
    bb = busybox or find_busybox()
    key = hashlib.sha256()
    key.update(_FORMAT.encode())
    key.update(PAUSE_SCRIPT)
    key.update(PAUSE_IMAGE.encode())
    key.update(bb.read_bytes())
    images = data_dir / "images"
    path = images / f"pause-{key.hexdigest()[:16]}.tar"
    if path.is_file():
        return path
    write_archive(path, pause_image(bb))
    for stale in images.glob("pause-*.tar"):
        if stale != path:
            stale.unlink(missing_ok=True)
    return path
