"""AtomicWriter: `..data` swaps, user-visible links, idempotence and refusal of hostile paths (upstream atomic_writer.go)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from skiff.agent.atomic_writer import (
    DATA_DIR_NAME,
    AtomicWriter,
    AtomicWriterError,
    FileProjection,
    validate_path,
)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        pytest.param("config.yaml", None, id="plain"),
        pytest.param("dir/sub/file", None, id="nested"),
        pytest.param("..", "invalid path: must not contain '..': ..", id="double-dot-alone"),
        pytest.param("a..b", None, id="dots-inside-a-name"),
        pytest.param("", "invalid path: must not be empty", id="empty"),
        pytest.param("/etc/passwd", "invalid path: must be relative path: /etc/passwd", id="absolute"),
        pytest.param("../x", "invalid path: must not contain '..': ../x", id="backstep-first"),
        pytest.param("a/../../x", "invalid path: must not contain '..': a/../../x", id="backstep-inside"),
        pytest.param("..data", "invalid path: must not start with '..': ..data", id="shadows-data-link"),
        pytest.param("..2024_01_01/x", "invalid path: must not start with '..'", id="shadows-version-dir"),
        pytest.param("x" * 256, "invalid path: must be less than or equal to 255 characters", id="long-name"),
        pytest.param("a/" * 2049, "invalid path: must be less than or equal to 4096 characters", id="long-path"),
    ],
)
def test_validate_path(path: str, error: str | None) -> None:
    if error is None:
        validate_path(path)
    else:
        with pytest.raises(AtomicWriterError) as info:
            validate_path(path)
        assert str(info.value).startswith(error)


def _visible(target: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, _, files in os.walk(target, followlinks=True):
        rel_dir = os.path.relpath(dirpath, target)
        if rel_dir.split("/")[0].startswith(".."):
            continue
        for name in files:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if not rel.startswith(".."):
                out[rel] = (Path(dirpath) / name).read_bytes()
    return out


def test_first_write_builds_the_data_link_and_visible_symlinks(tmp_path: Path) -> None:
    writer = AtomicWriter(tmp_path)
    assert writer.write({"a": FileProjection(b"1", 0o600), "d/b": FileProjection(b"2", 0o644)}) is True
    version = os.readlink(tmp_path / DATA_DIR_NAME)
    assert version.startswith("..") and (tmp_path / version).is_dir()
    assert os.readlink(tmp_path / "a") == "..data/a" and os.readlink(tmp_path / "d") == "..data/d"
    assert _visible(tmp_path) == {"a": b"1", "d/b": b"2"}
    assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / version).st_mode) == 0o755


def test_an_identical_payload_writes_nothing(tmp_path: Path) -> None:
    writer = AtomicWriter(tmp_path)
    writer.write({"a": FileProjection(b"1")})
    before = os.readlink(tmp_path / DATA_DIR_NAME)
    assert writer.write({"a": FileProjection(b"1")}) is False
    assert os.readlink(tmp_path / DATA_DIR_NAME) == before


def test_an_update_swaps_versions_drops_stale_keys_and_the_old_version(tmp_path: Path) -> None:
    writer = AtomicWriter(tmp_path)
    writer.write({"a": FileProjection(b"1"), "gone": FileProjection(b"x"), "d/b": FileProjection(b"2")})
    old = os.readlink(tmp_path / DATA_DIR_NAME)
    assert writer.write({"a": FileProjection(b"new"), "d/b": FileProjection(b"2")}) is True
    new = os.readlink(tmp_path / DATA_DIR_NAME)
    assert new != old and not os.path.lexists(tmp_path / old)
    assert not os.path.lexists(tmp_path / "gone")
    assert _visible(tmp_path) == {"a": b"new", "d/b": b"2"}
    assert sorted(os.listdir(tmp_path)) == sorted([DATA_DIR_NAME, new, "a", "d"])


def test_set_perms_sees_the_new_version_before_it_becomes_visible(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    def set_perms(version: Path) -> None:
        current = os.readlink(tmp_path / DATA_DIR_NAME) if os.path.lexists(tmp_path / DATA_DIR_NAME) else ""
        seen.append((version.name, current))

    AtomicWriter(tmp_path).write({"a": FileProjection(b"1")}, set_perms)
    assert len(seen) == 1 and seen[0][1] == "" and seen[0][0] == os.readlink(tmp_path / DATA_DIR_NAME)


def test_a_hostile_key_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    target.mkdir()
    with pytest.raises(AtomicWriterError, match=re.escape("must not contain '..': ../x")):
        AtomicWriter(target).write({"ok": FileProjection(b"1"), "../x": FileProjection(b"pwned")})
    assert not (tmp_path / "x").exists()
    assert os.listdir(target) == []


def test_a_data_link_pointing_outside_is_neither_read_nor_cleaned_but_replaced(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    target = tmp_path / "vol"
    target.mkdir()
    os.symlink(str(outside), target / DATA_DIR_NAME)
    assert AtomicWriter(target).write({"keep": FileProjection(b"1")}) is True
    assert (outside / "keep").read_text() == "precious"
    assert os.readlink(target / DATA_DIR_NAME).startswith("..") and _visible(target) == {"keep": b"1"}


def test_empty_payload_still_creates_a_version(tmp_path: Path) -> None:
    assert AtomicWriter(tmp_path).write({}) is True
    assert os.path.islink(tmp_path / DATA_DIR_NAME) and _visible(tmp_path) == {}
