"""Atomic projection of a set of files into a volume directory, as upstream's `pkg/volume/util/atomic_writer.go`.

ConfigMap, Secret, downwardAPI and projected volumes are rewritten while containers read them. A reader must
never see a half-written file or a mix of old and new keys, so every version of the payload lives in its own
timestamped directory and a single `rename(2)` of the `..data` symlink switches all of them at once:

    <target>/..2024_05_01_10_00_00.123456/<path>   the files of one version (real files)
    <target>/..data -> ..2024_05_01_10_00_00.123456
    <target>/<top-level name> -> ..data/<top-level name>   what the container sees

Paths come from users (ConfigMap keys, `items[].path`), so they are validated before anything touches the
disk: relative, no `..` component, not starting with `..` (which would collide with the writer's own names).
Nothing the writer removes is ever followed through a symlink.

All methods block (file I/O): callers on the event loop run them in an executor.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_NAME = "..data"
_DATA_DIR_TMP_NAME = "..data_tmp"
MAX_PATH_LENGTH = 4096  # upstream maxPathLength
MAX_FILE_NAME_LENGTH = 255  # upstream maxFileNameLength


class AtomicWriterError(Exception):
    """The payload is invalid or could not be written; the message is upstream's text where it has one."""


@dataclass(frozen=True)
class FileProjection:
    """One file of a payload: its bytes, permission bits and (optionally) the owning user (upstream FileProjection)."""

    data: bytes
    mode: int = 0o644
    fs_user: int | None = None


def validate_path(path: str) -> None:
    """Refuse a user-supplied payload path that could leave the target or shadow the writer's own names
    (upstream `validatePath`, same messages)."""
    if not path:
        raise AtomicWriterError("invalid path: must not be empty: " + repr(path))
    if len(path) > MAX_PATH_LENGTH:
        raise AtomicWriterError(f"invalid path: must be less than or equal to {MAX_PATH_LENGTH} characters")
    if os.path.isabs(path):
        raise AtomicWriterError(f"invalid path: must be relative path: {path}")
    items = path.split("/")
    if len(items[0]) > MAX_FILE_NAME_LENGTH:
        raise AtomicWriterError(f"invalid path: must be less than or equal to {MAX_FILE_NAME_LENGTH} characters")
    for item in items:
        if item == "..":
            raise AtomicWriterError(f"invalid path: must not contain '..': {path}")
    if items[0].startswith("..") and len(items[0]) > 2:
        raise AtomicWriterError(f"invalid path: must not start with '..': {path}")
    if "\x00" in path:
        raise AtomicWriterError(f"invalid path: must not contain NUL: {path!r}")


def validate_payload(payload: Mapping[str, FileProjection]) -> dict[str, FileProjection]:
    """The payload keyed by normalized paths (`a//b/` → `a/b`), every path validated first."""
    clean: dict[str, FileProjection] = {}
    for path, projection in payload.items():
        validate_path(path)
        normalized = os.path.normpath(path)
        if normalized in (".", "") or normalized.startswith("/"):
            raise AtomicWriterError(f"invalid path: must name a file: {path}")
        clean[normalized] = projection
    return clean


def _is_own_version_dir(name: str) -> bool:
    """True for a name the writer could have created itself: one component inside the target, starting with `..`."""
    return bool(name) and "/" not in name and name.startswith("..") and name not in ("..", DATA_DIR_NAME)


class AtomicWriter:
    """Writes payloads into `target_dir` (which must exist); one writer per volume directory, not thread-safe."""

    def __init__(self, target_dir: Path) -> None:
        self.target_dir = target_dir

    def write(self, payload: Mapping[str, FileProjection],
              set_perms: Callable[[Path], None] | None = None) -> bool:
        """Make the visible files exactly `payload`; returns False when nothing had to change.

        `set_perms(new_version_dir)` runs after the new files are written and before they become visible
        (fsGroup ownership). Idempotent: an identical payload does not create a new version.
        """
        clean = validate_payload(payload)
        data_link = self.target_dir / DATA_DIR_NAME
        old_version = self._current_version()
        old_dir = self.target_dir / old_version if old_version else None
        to_remove = self._paths_to_remove(old_dir, clean) if old_dir else set()
        if old_dir is not None and not to_remove and not self._payload_differs(old_dir, clean):
            return False

        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
        new_dir = Path(tempfile.mkdtemp(prefix=stamp, dir=self.target_dir))
        try:
            os.chmod(new_dir, 0o755)  # mkdtemp makes 0700; group/other must be able to traverse
            self._write_files(new_dir, clean)
            if set_perms is not None:
                set_perms(new_dir)
            tmp_link = self.target_dir / _DATA_DIR_TMP_NAME
            if os.path.lexists(tmp_link):
                os.unlink(tmp_link)
            os.symlink(new_dir.name, tmp_link)
            os.rename(tmp_link, data_link)  # the atomic switch
        except BaseException:
            shutil.rmtree(new_dir, ignore_errors=True)
            raise

        self._create_user_visible(clean)
        self._remove_user_visible(to_remove)
        if old_dir is not None and old_dir.name != new_dir.name:
            shutil.rmtree(old_dir, ignore_errors=False)
        return True

    def _current_version(self) -> str:
        """The version dir `..data` points at, or "" when there is none (or it points anywhere but a sibling)."""
        try:
            target = os.readlink(self.target_dir / DATA_DIR_NAME)
        except OSError:
            return ""
        if not _is_own_version_dir(target):
            return ""
        version = self.target_dir / target
        try:
            st = os.lstat(version)
        except FileNotFoundError:
            return ""
        return target if stat.S_ISDIR(st.st_mode) else ""

    @staticmethod
    def _paths_to_remove(old_dir: Path, clean: Mapping[str, FileProjection]) -> set[str]:
        """Paths of the old version that the new payload no longer has (parents of new paths are kept)."""
        old: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(old_dir, followlinks=False):
            rel_dir = os.path.relpath(dirpath, old_dir)
            for name in (*dirnames, *filenames):
                old.add(name if rel_dir == "." else f"{rel_dir}/{name}")
        new: set[str] = set()
        for path in clean:
            while path:
                new.add(path)
                path = os.path.dirname(path)
        return old - new

    @staticmethod
    def _payload_differs(old_dir: Path, clean: Mapping[str, FileProjection]) -> bool:
        """True when some file of the payload is missing from the old version or has other content (upstream
        compares content only: modes are fixed by the pod spec, and fsGroup may have widened them)."""
        for path, projection in clean.items():
            try:
                fd = os.open(old_dir / path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                return True
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return True
                with os.fdopen(fd, "rb", closefd=False) as f:
                    if f.read() != projection.data:
                        return True
            finally:
                os.close(fd)
        return False

    @staticmethod
    def _write_files(new_dir: Path, clean: Mapping[str, FileProjection]) -> None:
        for path, projection in sorted(clean.items()):
            full = new_dir / path
            parent = full.parent
            if parent != new_dir:
                parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                view = memoryview(projection.data)
                while view:
                    view = view[os.write(fd, view):]
                os.fchmod(fd, projection.mode)  # explicit: the umask must not narrow the requested mode
                if projection.fs_user is not None:
                    os.fchown(fd, projection.fs_user, -1)
            finally:
                os.close(fd)

    def _create_user_visible(self, clean: Mapping[str, FileProjection]) -> None:
        """`<target>/<top>` → `..data/<top>` for every top-level name (left alone when already present)."""
        for top in sorted({path.split("/", 1)[0] for path in clean}):
            visible = self.target_dir / top
            if not os.path.lexists(visible):
                os.symlink(f"{DATA_DIR_NAME}/{top}", visible)

    def _remove_user_visible(self, to_remove: set[str]) -> None:
        """Drop the links of top-level names that disappeared; only symlinks are ever removed here."""
        for path in to_remove:
            if "/" in path:
                continue
            visible = self.target_dir / path
            try:
                if stat.S_ISLNK(os.lstat(visible).st_mode):
                    os.unlink(visible)
            except FileNotFoundError:
                pass
