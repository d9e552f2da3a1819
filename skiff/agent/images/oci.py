"""Image archives without a registry or a builder: write and read single-image OCI archives.

The node agent has no network to pull from, so the pause image and the test images are assembled here from
host files. One archive holds both the OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`) and a
docker-save `manifest.json` pointing at the same blobs, the combination `docker save` writes since Docker 25:
`ctr images import` (containerd 1.6) reads it, `docker load` reads it, and a registry accepts the manifest as is.

Everything is deterministic (sorted entries, fixed mtimes, uid/gid 0 unless asked, gzip without a timestamp),
so the same inputs give the same digests: a cache key and a reproducible test fixture at once.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import posixpath
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"

# Annotation keys on the index.json descriptor: containerd's importer names the image after the first
# (full reference); the OCI image-layout spec only knows the second (usually just the tag).
CONTAINERD_IMAGE_NAME = "io.containerd.image.name"
OCI_REF_NAME = "org.opencontainers.image.ref.name"

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_EPOCH = "1970-01-01T00:00:00Z"
_GZIP_MAGIC = b"\x1f\x8b"

# Python's platform.machine() -> GOARCH (+ variant), the names image configs and registries use.
_GOARCH: dict[str, tuple[str, str]] = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}


class ImageArchiveError(Exception):
    """The root error of image archives: a malformed archive, a missing blob, a digest that does not match."""


def host_platform(machine: str | None = None) -> tuple[str, str]:
    """(architecture, variant) of this host in the OCI/Go spelling; variant is "" where Go has none."""
    m = (machine or platform.machine()).lower()
    return _GOARCH.get(m, (m, ""))


# --- layer entries ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class File:
    """A regular file at `path` in the image, with its bytes given inline or copied from a host file."""

    path: str
    source: bytes | Path
    mode: int = 0o644
    uid: int = 0
    gid: int = 0

    def data(self) -> bytes:
        return self.source if isinstance(self.source, bytes) else self.source.read_bytes()


@dataclass(frozen=True)
class Dir:
    path: str
    mode: int = 0o755
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Symlink:
    path: str
    target: str


Entry = File | Dir | Symlink


def _clean(path: str) -> str:
    """The tar member name for an absolute or relative image path; refuses anything escaping the root."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ImageArchiveError(f"invalid path in image: {path!r}")
    return "/".join(parts)


def _with_parents(entries: Iterable[Entry]) -> dict[str, Entry]:
    """Entries by tar name, plus a 0755 root-owned directory for every parent nobody listed."""
    by_name: dict[str, Entry] = {}
    for entry in entries:
        name = _clean(entry.path)
        if name in by_name:
            raise ImageArchiveError(f"path listed twice in layer: /{name}")
        by_name[name] = entry
    for name in list(by_name):
        parent = posixpath.dirname(name)
        while parent and parent not in by_name:
            by_name[parent] = Dir(parent)
            parent = posixpath.dirname(parent)
    return by_name


def build_layer(entries: Iterable[Entry]) -> tuple[bytes, str]:
    """One gzip'd layer tar from `entries`; returns (compressed bytes, diff_id of the uncompressed tar).

    Deterministic: members sorted by name (parents first), mtime 0, numeric owners only, PAX format,
    gzip header without a timestamp or file name.
    """
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, entry in sorted(_with_parents(entries).items()):
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uname = info.gname = ""
            payload: bytes | None = None
            if isinstance(entry, Symlink):
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.target, 0o777
            elif isinstance(entry, Dir):
                info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, entry.mode, entry.uid, entry.gid
            else:
                payload = entry.data()
                info.type, info.mode, info.uid, info.gid = tarfile.REGTYPE, entry.mode, entry.uid, entry.gid
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    uncompressed = raw.getvalue()
    return gzip.compress(uncompressed, compresslevel=9, mtime=0), _sha256(uncompressed)


# --- image config ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageConfig:
    """The runtime part of an OCI image config (`config` in the JSON); field names map to Docker's."""

    entrypoint: Sequence[str] = ()
    cmd: Sequence[str] = ()
    env: Sequence[str] = (DEFAULT_PATH,)
    working_dir: str = ""
    user: str = ""
    exposed_ports: Sequence[str] = ()  # "8080/tcp"
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The `config` object; empty fields are left out as Docker does (an absent Cmd is not `[]`)."""
        out: dict[str, Any] = {}
        if self.user:
            out["User"] = self.user
        if self.exposed_ports:
            out["ExposedPorts"] = {p if "/" in p else f"{p}/tcp": {} for p in self.exposed_ports}
        if self.env:
            out["Env"] = list(self.env)
        if self.entrypoint:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            out["Cmd"] = list(self.cmd)
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.labels:
            out["Labels"] = dict(sorted(self.labels.items()))
        return out


# --- blobs and archives ----------------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Blob:
    """Content with its media type; `annotations` go on the descriptor that points at it."""

    media_type: str
    data: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return _sha256(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        desc: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            desc["annotations"] = dict(self.annotations)
        desc.update(extra)
        return desc

    def json(self) -> Any:
        return json.loads(self.data)


class ArchiveContents(NamedTuple):
    """One image: its manifest (annotated with the image name), its config and its layers, in order."""

    manifest: Blob
    config: Blob
    layers: list[Blob]

    @property
    def name(self) -> str | None:
        """The full image reference the archive was saved under, if it carries one."""
        ann = self.manifest.annotations
        return ann.get(CONTAINERD_IMAGE_NAME) or ann.get(OCI_REF_NAME) or None


def split_reference(ref: str) -> tuple[str, str]:
    """("skiff.local/pause", "3.10") from "skiff.local/pause:3.10"; a missing tag means "latest"."""
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return repo, tag


def build_image(
    name: str, config: ImageConfig, entries: Iterable[Entry], *, machine: str | None = None
) -> ArchiveContents:
    """An in-memory single-layer image named `name` ("registry/repo:tag") for this host's platform."""
    layer_gz, diff_id = build_layer(entries)
    arch, variant = host_platform(machine)
    cfg: dict[str, Any] = {
        "architecture": arch,
        "os": "linux",
        "created": _EPOCH,
        "config": config.to_json(),
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": _EPOCH, "created_by": "skiff (skiff.agent.images.oci)"}],
    }
    if variant:
        cfg["variant"] = variant
    config_blob = Blob(OCI_CONFIG, _canonical(cfg))
    layer = Blob(OCI_LAYER_GZIP, layer_gz)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [layer.descriptor()],
    }
    _, tag = split_reference(name)
    annotations = {CONTAINERD_IMAGE_NAME: name, OCI_REF_NAME: tag}
    return ArchiveContents(Blob(OCI_MANIFEST, _canonical(manifest), annotations), config_blob, [layer])


def _blob_path(blob: Blob) -> str:
    return "blobs/sha256/" + blob.digest.removeprefix("sha256:")


def archive_bytes(image: ArchiveContents) -> bytes:
    """The tar of `image`: OCI layout + docker-save manifest.json over the same blobs, deterministic."""
    arch, _ = host_platform()
    cfg = image.config.json()
    plat = {"architecture": cfg.get("architecture", arch), "os": cfg.get("os", "linux")}
    if cfg.get("variant"):
        plat["variant"] = cfg["variant"]
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [image.manifest.descriptor(platform=plat)],
    }
    docker = [
        {
            "Config": _blob_path(image.config),
            "RepoTags": [image.name] if image.name else [],
            "Layers": [_blob_path(layer) for layer in image.layers],
        }
    ]
    files: dict[str, bytes] = {
        "oci-layout": _canonical({"imageLayoutVersion": "1.0.0"}),
        "index.json": _canonical(index),
        "manifest.json": _canonical(docker),
    }
    for blob in (image.manifest, image.config, *image.layers):
        files[_blob_path(blob)] = blob.data
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[name]))
    return out.getvalue()


def write_archive(path: Path, image: ArchiveContents) -> Path:
    """Write `image` to `path` atomically (a reader never sees half an archive); returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it 0600; the archive holds nothing secret
        with os.fdopen(fd, "wb") as f:
            f.write(archive_bytes(image))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --- reading ---------------------------------------------------------------------------------------------


class _Members:
    """Regular files of an archive by normalised name, read on demand."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self._tar = tar
        self._by_name = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def read(self, name: str) -> bytes:
        member = self._by_name.get(name.removeprefix("./"))
        f = self._tar.extractfile(member) if member is not None else None
        if f is None:
            raise ImageArchiveError(f"archive has no file {name!r}")
        with f:
            return f.read()

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as e:
            raise ImageArchiveError(f"{name} in archive is not JSON: {e}") from e

    def blob(self, desc: Mapping[str, Any], annotations: Mapping[str, str] | None = None) -> Blob:
        """The blob a descriptor points at, checked against the descriptor's digest."""
        digest = str(desc.get("digest", ""))
        algo, _, hexpart = digest.partition(":")
        if algo != "sha256" or not hexpart:
            raise ImageArchiveError(f"unsupported digest {digest!r}")
        blob = Blob(str(desc.get("mediaType", "")), self.read(f"blobs/sha256/{hexpart}"), annotations or {})
        if blob.digest != digest:
            raise ImageArchiveError(f"blob {digest} has digest {blob.digest}")
        return blob


def _platform_matches(desc: Mapping[str, Any]) -> bool:
    plat = desc.get("platform")
    if not isinstance(plat, Mapping):
        return True
    arch, _ = host_platform()
    return bool(plat.get("os", "linux") == "linux" and plat.get("architecture", arch) == arch)


def _read_oci(members: _Members) -> ArchiveContents:
    index = members.json("index.json")
    annotations: dict[str, str] = {}
    descs: list[Mapping[str, Any]] = list(index.get("manifests") or [])
    # Follow nested indexes (multi-platform images) down to this host's manifest; the name annotations
    # sit on the outermost descriptor.
    for _ in range(4):
        chosen = next((d for d in descs if _platform_matches(d)), None)
        if chosen is None:
            raise ImageArchiveError("archive has no image for this platform")
        annotations = annotations or dict(chosen.get("annotations") or {})
        if chosen.get("mediaType") not in (OCI_INDEX, DOCKER_MANIFEST_LIST):
            manifest = members.blob(chosen, annotations)
            break
        descs = list(members.blob(chosen).json().get("manifests") or [])
    else:
        raise ImageArchiveError("image index nested too deeply")
    body = manifest.json()
    if not manifest.media_type:
        manifest = Blob(str(body.get("mediaType", OCI_MANIFEST)), manifest.data, annotations)
    config = members.blob(body["config"])
    return ArchiveContents(manifest, config, [members.blob(d) for d in body.get("layers", [])])


def _read_docker_save(members: _Members) -> ArchiveContents:
    """A classic `docker save` archive: synthesise the registry manifest Docker would push."""
    entries = members.json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise ImageArchiveError("manifest.json lists no image")
    entry = entries[0]
    config = Blob(DOCKER_CONFIG, members.read(entry["Config"]))
    layers = []
    for name in entry.get("Layers", []):
        data = members.read(name)
        layers.append(Blob(DOCKER_LAYER_GZIP if data[:2] == _GZIP_MAGIC else DOCKER_LAYER_TAR, data))
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    tags = entry.get("RepoTags") or []
    annotations = {CONTAINERD_IMAGE_NAME: tags[0]} if tags else {}
    return ArchiveContents(Blob(DOCKER_MANIFEST, _canonical(manifest), annotations), config, layers)


def read_archive(path: Path) -> ArchiveContents:
    """(manifest, config, layers) of the image in an archive (ours, an OCI layout, or a `docker save`).

    Every blob is checked against its digest; with several images or platforms, the first one for this
    host is taken. Raises `ImageArchiveError` for anything unreadable.
    """
    try:
        with tarfile.open(path, mode="r:*") as tar:
            members = _Members(tar)
            if "index.json" in members:
                return _read_oci(members)
            if "manifest.json" in members:
                return _read_docker_save(members)
    except (tarfile.TarError, OSError, KeyError, TypeError, AttributeError) as e:
        raise ImageArchiveError(f"cannot read image archive {path}: {e}") from e
    raise ImageArchiveError(f"{path} is neither an OCI image layout nor a docker-save archive")
