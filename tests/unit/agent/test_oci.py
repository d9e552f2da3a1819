"""Image archives: deterministic layers and configs, the OCI + docker-save layout, reading them back, the
pause and test images, and the `ctr` import wrapper (against a stand-in `ctr`)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import stat
import struct
import tarfile
from pathlib import Path
from typing import Any

import pytest

from skiff.agent.images import ImageImportError, import_archive
from skiff.agent.images.builtin import (
    PAUSE_IMAGE,
    PAUSE_SCRIPT,
    BusyboxNotFound,
    ensure_pause_archive,
    find_busybox,
    is_static_elf,
    pause_image,
)
from skiff.agent.images.oci import (
    CONTAINERD_IMAGE_NAME,
    DOCKER_LAYER_TAR,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    OCI_REF_NAME,
    ArchiveContents,
    Blob,
    Dir,
    Entry,
    File,
    ImageArchiveError,
    ImageConfig,
    Symlink,
    archive_bytes,
    build_image,
    build_layer,
    host_platform,
    read_archive,
    split_reference,
    write_archive,
)
from skiff.agent.images.testimages import (
    NONROOT_IMAGE,
    SHELL_IMAGE,
    WEB_IMAGE,
    build_test_images,
    nonroot_image,
    shell_image,
    web_image,
)


def elf(*, static: bool, bits: int = 64) -> bytes:
    """A minimal ELF header with two program headers (LOAD, and INTERP unless static)."""
    types = [1] if static else [1, 3]
    if bits == 64:
        ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
        header = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 64, 0, 0, 64, 56, len(types), 0, 0, 0)
        phdrs = b"".join(struct.pack("<II", t, 0) + bytes(48) for t in types)
    else:
        ident = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
        header = ident + struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, 0, 64, 0, 0, 52, 32, len(types), 0, 0, 0)
        header = header.ljust(64, b"\0")
        phdrs = b"".join(struct.pack("<I", t) + bytes(28) for t in types)
    return header + phdrs


@pytest.fixture
def busybox(tmp_path: Path) -> Path:
    """A stand-in busybox: the images only copy it, so any static-looking ELF will do."""
    path = tmp_path / "busybox"
    path.write_bytes(elf(static=True) + b"busybox payload")
    return path


def layer_members(layer: Blob | bytes) -> dict[str, tarfile.TarInfo]:
    data = layer.data if isinstance(layer, Blob) else layer
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        return {m.name: m for m in tar.getmembers()}


def layer_file(layer: Blob, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.data))) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


# --- pure pieces -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        pytest.param("x86_64", ("amd64", ""), id="x86_64"),
        pytest.param("aarch64", ("arm64", "v8"), id="aarch64"),
        pytest.param("armv7l", ("arm", "v7"), id="armv7"),
        pytest.param("riscv64", ("riscv64", ""), id="riscv64"),
        pytest.param("mips64", ("mips64", ""), id="unknown-passes-through"),
    ],
)
def test_host_platform_uses_go_names(machine: str, expected: tuple[str, str]) -> None:
    assert host_platform(machine) == expected


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        pytest.param("skiff.local/pause:3.10", ("skiff.local/pause", "3.10"), id="tagged"),
        pytest.param("skiff.local/test/web", ("skiff.local/test/web", "latest"), id="untagged"),
        pytest.param(
            "127.0.0.1:5000/test/web", ("127.0.0.1:5000/test/web", "latest"), id="port-is-not-a-tag"
        ),
        pytest.param("127.0.0.1:5000/test/web:1", ("127.0.0.1:5000/test/web", "1"), id="port-and-tag"),
    ],
)
def test_split_reference(ref: str, expected: tuple[str, str]) -> None:
    assert split_reference(ref) == expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param(
            ImageConfig(),
            {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
            id="defaults-only-path",
        ),
        pytest.param(
            ImageConfig(
                entrypoint=["/web.sh"],
                cmd=["-v"],
                env=["A=1"],
                working_dir="/www",
                user="1000",
                exposed_ports=["8080", "53/udp"],
                labels={"b": "2", "a": "1"},
            ),
            {
                "Entrypoint": ["/web.sh"],
                "Cmd": ["-v"],
                "Env": ["A=1"],
                "WorkingDir": "/www",
                "User": "1000",
                "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
                "Labels": {"a": "1", "b": "2"},
            },
            id="every-field",
        ),
        pytest.param(ImageConfig(env=()), {}, id="no-env"),
    ],
)
def test_image_config_uses_docker_field_names(config: ImageConfig, expected: dict[str, Any]) -> None:
    assert config.to_json() == expected


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/", id="root"),
        pytest.param("../etc/passwd", id="escapes-upwards"),
        pytest.param("", id="empty"),
    ],
)
def test_layer_refuses_paths_outside_the_root(path: str) -> None:
    with pytest.raises(ImageArchiveError):
        build_layer([File(path, b"x")])


def test_layer_refuses_a_path_listed_twice() -> None:
    with pytest.raises(ImageArchiveError, match="twice"):
        build_layer([File("/a", b"1"), Symlink("a", "b")])


def test_layer_is_sorted_root_owned_and_timeless_with_parents_added() -> None:
    entries: list[Entry] = [
        Symlink("/usr/bin/sh", "busybox"),
        File("/usr/bin/busybox", b"\x7fELF", 0o755),
        Dir("/home/app", 0o700, uid=1000, gid=1000),
        File("/etc/motd", b"hi"),
    ]
    gz, diff_id = build_layer(entries)
    members = layer_members(gz)
    assert list(members) == sorted(members)
    assert set(members) == {
        "etc",
        "etc/motd",
        "home",
        "home/app",
        "usr",
        "usr/bin",
        "usr/bin/busybox",
        "usr/bin/sh",
    }
    assert {m.mtime for m in members.values()} == {0}
    assert members["usr"].isdir() and stat.S_IMODE(members["usr"].mode) == 0o755 and members["usr"].uid == 0
    assert members["usr/bin/sh"].issym() and members["usr/bin/sh"].linkname == "busybox"
    assert stat.S_IMODE(members["usr/bin/busybox"].mode) == 0o755
    assert (members["home/app"].uid, members["home/app"].gid) == (1000, 1000)
    assert members["etc/motd"].uid == 0 and members["etc/motd"].uname == ""
    assert diff_id == "sha256:" + hashlib.sha256(gzip.decompress(gz)).hexdigest()
    # Same entries in another order: byte-identical, so digests are stable cache keys.
    assert build_layer(reversed(entries)) == (gz, diff_id)


def test_image_config_and_manifest_point_at_each_other() -> None:
    image = build_image("skiff.local/x:2", ImageConfig(cmd=["sh"]), [File("/f", b"1")], machine="aarch64")
    config, manifest = image.config.json(), image.manifest.json()
    assert (config["architecture"], config["variant"], config["os"]) == ("arm64", "v8", "linux")
    assert config["config"]["Cmd"] == ["sh"]
    assert config["rootfs"] == {"type": "layers", "diff_ids": [build_layer([File("/f", b"1")])[1]]}
    assert manifest["mediaType"] == OCI_MANIFEST and manifest["schemaVersion"] == 2
    assert manifest["config"] == {
        "mediaType": image.config.media_type,
        "digest": image.config.digest,
        "size": image.config.size,
    }
    assert manifest["layers"] == [
        {"mediaType": OCI_LAYER_GZIP, "digest": image.layers[0].digest, "size": image.layers[0].size}
    ]
    assert image.name == "skiff.local/x:2"
    assert image.manifest.annotations == {CONTAINERD_IMAGE_NAME: "skiff.local/x:2", OCI_REF_NAME: "2"}


# --- archives --------------------------------------------------------------------------------------------


def small_image(name: str = "skiff.local/small:1") -> ArchiveContents:
    return build_image(name, ImageConfig(entrypoint=["/bin/true"]), [File("/bin/true", b"x", 0o755)])


def test_archive_holds_oci_layout_and_docker_save_manifest_over_the_same_blobs(tmp_path: Path) -> None:
    image = small_image()
    path = write_archive(tmp_path / "a.tar", image)
    with tarfile.open(path) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    assert index["mediaType"] == OCI_INDEX
    [desc] = index["manifests"]
    assert desc["digest"] == image.manifest.digest
    assert desc["annotations"][CONTAINERD_IMAGE_NAME] == "skiff.local/small:1"
    assert desc["platform"]["os"] == "linux"
    [docker] = json.loads(files["manifest.json"])
    assert docker["RepoTags"] == ["skiff.local/small:1"]
    assert docker["Config"] == "blobs/sha256/" + image.config.digest.removeprefix("sha256:")
    for blob_path in (docker["Config"], *docker["Layers"]):
        assert (
            "sha256:" + hashlib.sha256(files[blob_path]).hexdigest()
            == "sha256:" + blob_path.rsplit("/", 1)[1]
        )
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert archive_bytes(small_image()) == path.read_bytes()


def test_read_archive_returns_what_was_written(tmp_path: Path) -> None:
    image = small_image()
    manifest, config, layers = read_archive(write_archive(tmp_path / "a.tar", image))
    assert (manifest.data, manifest.media_type) == (image.manifest.data, OCI_MANIFEST)
    assert config.data == image.config.data
    assert [layer.data for layer in layers] == [layer.data for layer in image.layers]
    assert read_archive(tmp_path / "a.tar").name == "skiff.local/small:1"


def write_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_read_archive_accepts_a_classic_docker_save(tmp_path: Path) -> None:
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("empty"))
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
    path = write_tar(
        tmp_path / "save.tar",
        {
            "abc.json": config,
            "0123/layer.tar": layer.getvalue(),
            "manifest.json": json.dumps(
                [{"Config": "abc.json", "RepoTags": ["example.com/app:v1"], "Layers": ["0123/layer.tar"]}]
            ).encode(),
        },
    )
    image = read_archive(path)
    assert image.name == "example.com/app:v1"
    assert image.manifest.media_type == DOCKER_MANIFEST
    assert [layer.media_type for layer in image.layers] == [DOCKER_LAYER_TAR]
    assert image.manifest.json()["config"]["digest"] == image.config.digest
    assert image.config.data == config


def test_read_archive_picks_this_platform_from_a_nested_index(tmp_path: Path) -> None:
    here, _ = host_platform()
    mine, other = small_image(), build_image("x:1", ImageConfig(), [File("/other", b"o")])
    nested = Blob(
        OCI_INDEX,
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    other.manifest.descriptor(platform={"architecture": "not-" + here, "os": "linux"}),
                    mine.manifest.descriptor(platform={"architecture": here, "os": "linux"}),
                ],
            }
        ).encode(),
    )
    files = {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [nested.descriptor(annotations={CONTAINERD_IMAGE_NAME: "example.com/multi:1"})],
            }
        ).encode(),
    }
    for blob in (
        nested,
        mine.manifest,
        mine.config,
        *mine.layers,
        other.manifest,
        other.config,
        *other.layers,
    ):
        files["blobs/sha256/" + blob.digest.removeprefix("sha256:")] = blob.data
    image = read_archive(write_tar(tmp_path / "multi.tar", files))
    assert image.manifest.data == mine.manifest.data
    assert image.name == "example.com/multi:1"


def tamper(files: dict[str, bytes], digest: str) -> None:
    files["blobs/sha256/" + digest.removeprefix("sha256:")] += b"!"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            lambda f, img: tamper(f, img.layers[0].digest), "has digest", id="layer-digest-mismatch"
        ),
        pytest.param(
            lambda f, img: f.pop("blobs/sha256/" + img.config.digest.removeprefix("sha256:")),
            "no file",
            id="missing-config",
        ),
        pytest.param(lambda f, img: f.update({"index.json": b"{not json"}), "not JSON", id="bad-index"),
        pytest.param(
            lambda f, img: [f.pop("index.json"), f.pop("manifest.json")], "neither", id="no-manifests"
        ),
    ],
)
def test_read_archive_rejects_broken_archives(tmp_path: Path, change: Any, message: str) -> None:
    image = small_image()
    with tarfile.open(fileobj=io.BytesIO(archive_bytes(image))) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    change(files, image)
    with pytest.raises(ImageArchiveError, match=message):
        read_archive(write_tar(tmp_path / "broken.tar", files))


def test_read_archive_rejects_a_file_that_is_no_tar(tmp_path: Path) -> None:
    (tmp_path / "x.tar").write_bytes(b"definitely not a tar" * 100)
    with pytest.raises(ImageArchiveError, match="cannot read"):
        read_archive(tmp_path / "x.tar")


# --- builtin images --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "static"),
    [
        pytest.param(elf(static=True), True, id="static-64"),
        pytest.param(elf(static=False), False, id="dynamic-64"),
        pytest.param(elf(static=True, bits=32), True, id="static-32"),
        pytest.param(elf(static=False, bits=32), False, id="dynamic-32"),
        pytest.param(b"#!/bin/sh\necho not elf\n" * 4, False, id="script"),
        pytest.param(b"\x7fELF", False, id="truncated"),
    ],
)
def test_is_static_elf(tmp_path: Path, content: bytes, static: bool) -> None:
    (tmp_path / "bin").write_bytes(content)
    assert is_static_elf(tmp_path / "bin") is static


def test_find_busybox_refuses_a_dynamic_one(tmp_path: Path) -> None:
    (tmp_path / "dyn").write_bytes(elf(static=False))
    (tmp_path / "static").write_bytes(elf(static=True))
    assert find_busybox([tmp_path / "missing", tmp_path / "static"]) == tmp_path / "static"
    with pytest.raises(BusyboxNotFound, match=r"dyn is dynamically linked.*busybox-static"):
        find_busybox([tmp_path / "dyn"])


def test_pause_image_runs_a_trapping_shell(busybox: Path) -> None:
    image = pause_image(busybox)
    config = image.config.json()["config"]
    assert image.name == PAUSE_IMAGE
    assert config["Entrypoint"] == ["/pause"]
    assert config["User"] == "65535:65535"
    members = layer_members(image.layers[0])
    assert stat.S_IMODE(members["pause"].mode) == 0o755
    assert layer_file(image.layers[0], "pause") == PAUSE_SCRIPT
    assert b"trap 'exit 0' TERM INT" in PAUSE_SCRIPT
    assert layer_file(image.layers[0], "bin/busybox") == busybox.read_bytes()
    assert {members["bin/sh"].linkname, members["bin/sleep"].linkname} == {"busybox"}


def test_ensure_pause_archive_builds_once_per_busybox(tmp_path: Path, busybox: Path) -> None:
    data = tmp_path / "data"
    first = ensure_pause_archive(data, busybox)
    assert first.parent == data / "images"
    assert read_archive(first).name == PAUSE_IMAGE
    before = first.stat().st_mtime_ns
    assert ensure_pause_archive(data, busybox) == first
    assert first.stat().st_mtime_ns == before
    busybox.write_bytes(busybox.read_bytes() + b" upgraded")
    second = ensure_pause_archive(data, busybox)
    assert second != first
    assert sorted((data / "images").iterdir()) == [second]


def test_test_images(tmp_path: Path, busybox: Path) -> None:
    web, shell, nonroot = web_image(busybox), shell_image(busybox), nonroot_image(busybox)
    web_cfg = web.config.json()["config"]
    assert web_cfg["Entrypoint"] == ["/web.sh"] and web_cfg["ExposedPorts"] == {"8080/tcp": {}}
    assert "User" not in web_cfg and "User" not in shell.config.json()["config"]
    assert nonroot.config.json()["config"]["User"] == "1000"
    assert shell.config.json()["config"]["Cmd"] == ["sh"]
    assert layer_file(web.layers[0], "www/health") == b"ok"
    assert layer_file(web.layers[0], "www/ready") == b"ok"
    assert b'httpd -f -p "${PORT:-8080}" -h /www' in layer_file(web.layers[0], "web.sh")
    members = layer_members(shell.layers[0])
    for applet in ("sh", "ls", "cat", "sleep", "echo", "env", "id", "wget", "nc", "httpd"):
        assert members[f"bin/{applet}"].linkname == "busybox"
    assert b"app:x:1000:1000" in layer_file(nonroot.layers[0], "etc/passwd")
    built = build_test_images(tmp_path / "out", busybox)
    assert set(built) == {SHELL_IMAGE, WEB_IMAGE, NONROOT_IMAGE, PAUSE_IMAGE}
    assert {ref: read_archive(path).name for ref, path in built.items()} == {ref: ref for ref in built}


# --- import through ctr ----------------------------------------------------------------------------------


def fake_ctr(tmp_path: Path, stdout: str, rc: int = 0) -> Path:
    """A stand-in `ctr` that records its argv and prints what ctr 1.6 would."""
    script = tmp_path / "ctr"
    script.write_text(
        f'#!/bin/sh\necho "$@" > "{tmp_path}/argv"\nprintf %s \'{stdout}\'\necho "ctr: boom" >&2\nexit {rc}\n'
    )
    script.chmod(0o755)
    return script


@pytest.mark.parametrize(
    ("stdout", "refs"),
    [
        pytest.param(
            "unpacking skiff.local/small:1 (sha256:" + "a" * 64 + ")...done\n",
            ["skiff.local/small:1"],
            id="ctr-1.6-output",
        ),
        pytest.param(
            "unpacking a:1 (sha256:"
            + "a" * 64
            + ")...done\nunpacking b:2 (sha256:"
            + "b" * 64
            + ")...done\n",
            ["a:1", "b:2"],
            id="several-images",
        ),
        pytest.param("", ["skiff.local/small:1"], id="silent-ctr-falls-back-to-archive-name"),
    ],
)
async def test_import_archive_reports_refs(tmp_path: Path, stdout: str, refs: list[str]) -> None:
    archive = write_archive(tmp_path / "a.tar", small_image())
    ctr = fake_ctr(tmp_path, stdout)
    assert await import_archive(tmp_path / "c.sock", archive, ctr=str(ctr)) == refs
    assert (tmp_path / "argv").read_text().split() == [
        "--address",
        str(tmp_path / "c.sock"),
        "--namespace",
        "k8s.io",
        "images",
        "import",
        str(archive),
    ]


async def test_import_archive_failure_carries_ctr_output(tmp_path: Path) -> None:
    archive = write_archive(tmp_path / "a.tar", small_image())
    with pytest.raises(ImageImportError, match="ctr: boom"):
        await import_archive(tmp_path / "c.sock", archive, "skiff", ctr=str(fake_ctr(tmp_path, "", rc=1)))


async def test_import_archive_checks_the_archive_before_ctr(tmp_path: Path) -> None:
    (tmp_path / "bad.tar").write_bytes(b"nope" * 200)
    with pytest.raises(ImageArchiveError):
        await import_archive(tmp_path / "c.sock", tmp_path / "bad.tar", ctr=str(fake_ctr(tmp_path, "")))
    assert not (tmp_path / "argv").exists()
