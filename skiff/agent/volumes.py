"""The agent's volume manager: every volume of a pod made ready on the host before its containers start.

Upstream is the spec: `pkg/volume/{emptydir,configmap,secret,downwardapi,projected,hostpath,local}`,
`pkg/volume/util/subpath/subpath_linux.go`, the kubelet's `makeMounts` and the desired-state populator's PVC
handling. A pod's volumes live under `<root>/<pod uid>/volumes/<plugin>/<name>` with upstream's plugin
directory names (`kubernetes.io~configmap`, ...); hostPath and PV-backed volumes are used in place.

What lives where:
- pure payload builders (ConfigMap/Secret/downwardAPI/projected → `FileProjection`s), subPathExpr expansion,
  the tmpfs size rule and node-affinity matching are plain functions (table-tested);
- `VolumeManager` does the I/O: API reads through the `Client`, file writes through `AtomicWriter` in an
  executor, mounts (tmpfs, subPath bind mounts) through the `mount(2)` syscall.

Deliberate limits (the README says so): an on-disk emptyDir's `sizeLimit` is recorded (`disk_size_limits`)
but nothing evicts a pod that exceeds it; PVCs must already be Bound to a `hostPath` or `local` PV (no dynamic
provisioning, no attach/detach of network disks); `serviceAccountToken` projections need the TokenRequest API
(`serviceaccounts/<name>/token`), and fail with a clear message when the API server does not serve it;
`clusterTrustBundle` projections are refused. Mounting (tmpfs, subPath bind mounts) needs CAP_SYS_ADMIN:
without it memory-backed volumes fail, Secret/downwardAPI/projected volumes fall back to disk and subPaths are
handed to the runtime as checked paths instead of pinned bind mounts.
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import errno
import logging
import math
import os
import stat
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from skiff.agent.atomic_writer import AtomicWriter, AtomicWriterError, FileProjection
from skiff.agent.runtime.interface import Mount
from skiff.api.errors import ApiError
from skiff.api.quantity import QuantityError, parse_quantity
from skiff.api.selectors import Requirement
from skiff.client.interface import NODES, PVCS, SERVICEACCOUNTS, Client, ListOptions, Obj, Resource

log = logging.getLogger("skiff.agent.volumes")

CONFIGMAPS = Resource("", "v1", "configmaps")
SECRETS = Resource("", "v1", "secrets")
PVS = Resource("", "v1", "persistentvolumes")

# Upstream plugin directory names under pods/<uid>/volumes/ (plugin name with "/" escaped as "~").
PLUGIN_DIRS = {
    "emptyDir": "kubernetes.io~empty-dir",
    "configMap": "kubernetes.io~configmap",
    "secret": "kubernetes.io~secret",
    "downwardAPI": "kubernetes.io~downward-api",
    "projected": "kubernetes.io~projected",
}
API_VOLUMES = ("configMap", "secret", "downwardAPI", "projected")  # always mounted read-only (since 1.10)
# Upstream wraps these in a memory-medium emptyDir so their contents never reach a disk (ConfigMaps do not).
MEMORY_BACKED = ("secret", "downwardAPI", "projected")
KNOWN_SOURCES = ("emptyDir", *API_VOLUMES, "hostPath", "persistentVolumeClaim")
DEFAULT_MODE = 0o644
DEFAULT_REFRESH_SECONDS = 10.0

_RW_MASK, _RO_MASK, _EXEC_MASK = 0o660, 0o440, 0o110  # upstream SetVolumeOwnership masks
_MS_BIND = 4096
_MNT_DETACH = 2
_PROPAGATION = {None: "private", "None": "private", "HostToContainer": "host_to_container",
                "Bidirectional": "bidirectional"}


class VolumeError(Exception):
    """A volume could not be made ready (or mounted into a container).

    `reason` is what the kubelet reports: `FailedMount` / `FailedAttachVolume` for `setup` (the event
    reason), `CreateContainerConfigError` for `container_mounts` (the container's waiting reason, as
    upstream's makeMounts errors surface). `message` is the complete upstream-style text, ready for the event
    (`MountVolume.SetUp failed for volume "cfg" : configmap "x" not found`); `cause` is the inner part.
    """

    def __init__(self, reason: str, message: str, *, volume: str = "", cause: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.volume = volume
        self.cause = cause or message


def _setup_failed(volume: str, cause: str, reason: str = "FailedMount") -> VolumeError:
    return VolumeError(reason, f'MountVolume.SetUp failed for volume "{volume}" : {cause}', volume=volume, cause=cause)


def _process_failed(volume: str, cause: str) -> VolumeError:
    """The desired-state populator's text for a volume it could not even resolve (PVC problems)."""
    message = (f"Unable to attach or mount volumes: unmounted volumes=[{volume}], unattached volumes=[], "
               f"failed to process volumes=[{volume}]: {cause}")
    return VolumeError("FailedMount", message, volume=volume, cause=cause)


class PayloadError(Exception):
    """A payload could not be built; the message is the upstream cause text."""


def _aggregate(errors: list[str]) -> str:
    """apimachinery's NewAggregate formatting: one error as is, several as `[a, b]`."""
    return errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"


# --- pure payload builders -------------------------------------------------------------------------------------


def _decode_b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def configmap_payload(source: Obj, configmap: Obj | None, default_mode: int | None) -> dict[str, FileProjection]:
    """Files of a configMap volume (or projection) source; `configmap` None = not found.

    Mirrors configmap.MakePayload: `items` select keys (per-item `mode` over `defaultMode`), no items = every
    key of data and binaryData; `optional` turns a missing object or key into nothing instead of an error.
    """
    name = str(source.get("name") or "")
    optional = bool(source.get("optional"))
    if configmap is None:
        if optional:
            return {}
        raise PayloadError(f'configmap "{name}" not found')
    data: dict[str, bytes] = {k: str(v).encode() for k, v in (configmap.get("data") or {}).items()}
    for k, v in (configmap.get("binaryData") or {}).items():
        data[k] = _decode_b64(str(v))
    return _select_items(source, data, default_mode, optional, "configmap references non-existent config key: {}")


def secret_payload(source: Obj, secret: Obj | None, default_mode: int | None, *, projected: bool = False) -> dict[str, FileProjection]:
    """Files of a secret volume (`secretName`) or projection (`name`) source; `secret` None = not found."""
    name = str(source.get("name" if projected else "secretName") or "")
    optional = bool(source.get("optional"))
    if secret is None:
        if optional:
            return {}
        raise PayloadError(f'secret "{name}" not found')
    data = {k: _decode_b64(str(v)) for k, v in (secret.get("data") or {}).items()}
    return _select_items(source, data, default_mode, optional, "references non-existent secret key: {}")


def _select_items(source: Obj, data: Mapping[str, bytes], default_mode: int | None, optional: bool,
                  missing_key: str) -> dict[str, FileProjection]:
    if default_mode is None:
        raise PayloadError("no defaultMode used, not even the default value for it")
    items = source.get("items") or []
    if not items:
        return {k: FileProjection(v, default_mode) for k, v in data.items()}
    out: dict[str, FileProjection] = {}
    for item in items:
        key = str(item.get("key") or "")
        if key not in data:
            if optional:
                continue
            raise PayloadError(missing_key.format(key))
        mode = item.get("mode")
        out[str(item.get("path") or key)] = FileProjection(data[key], default_mode if mode is None else int(mode))
    return out


def go_quote(value: str) -> str:
    """Go's `%q` of a string (strconv.Quote): what upstream writes for label/annotation values."""
    escapes = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               "\\": "\\\\", '"': '\\"'}
    out = []
    for ch in value:
        code = ord(ch)
        if ch in escapes:
            out.append(escapes[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def format_map(values: Mapping[str, str]) -> str:
    """`key="value"` lines sorted by key, no trailing newline (upstream fieldpath.FormatMap)."""
    return "\n".join(f"{k}={go_quote(values[k])}" for k in sorted(values))


def field_value(pod: Obj, field_path: str) -> str:
    """A downward API volume `fieldRef` (only metadata fields are valid in volumes: ExtractFieldPathAsString)."""
    meta = pod.get("metadata") or {}
    for prefix, key in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        if field_path == prefix:
            return format_map(meta.get(key) or {})
        if field_path.startswith(prefix + "['") and field_path.endswith("']"):
            return str((meta.get(key) or {}).get(field_path[len(prefix) + 2:-2], ""))
    simple = {"metadata.name": "name", "metadata.namespace": "namespace", "metadata.uid": "uid"}
    if field_path in simple:
        return str(meta.get(simple[field_path]) or "")
    raise PayloadError(f"unsupported fieldPath: {field_path}")


def _find_container(pod: Obj, name: str) -> Obj | None:
    spec = pod.get("spec") or {}
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        if c.get("name") == name:
            return dict(c)
    return None


def _quantity(value: Any) -> Decimal:
    try:
        return parse_quantity(value)
    except QuantityError as e:
        raise PayloadError(str(e)) from e


def resource_value(pod: Obj, ref: Obj, node_allocatable: Mapping[str, Any]) -> str:
    """A downward API `resourceFieldRef` value (upstream ExtractResourceValueByContainerNameAndNodeAllocatable):
    missing cpu/memory/ephemeral-storage limits default to the node's allocatable; the value is divided by the
    divisor (default 1) and rounded up (cpu compared in millicores, as upstream)."""
    container_name = str(ref.get("containerName") or "")
    container = _find_container(pod, container_name)
    if container is None:
        raise PayloadError(f"no container with name {container_name} found")
    resources = container.get("resources") or {}
    limits = dict(resources.get("limits") or {})
    requests = resources.get("requests") or {}
    for name in ("cpu", "memory", "ephemeral-storage"):
        if name not in limits and name in node_allocatable:
            limits[name] = node_allocatable[name]
    resource = str(ref.get("resource") or "")
    kind, _, name = resource.partition(".")
    source = {"limits": limits, "requests": requests}.get(kind)
    if source is None or not (name in ("cpu", "memory", "ephemeral-storage") or name.startswith("hugepages-")):
        raise PayloadError(f"unsupported container resource : {resource}")
    divisor = _quantity(ref.get("divisor") or "1")
    if divisor == 0:
        divisor = Decimal(1)
    value = _quantity(source.get(name, "0"))
    if name == "cpu":
        millis, div_millis = math.ceil(value * 1000), math.ceil(divisor * 1000)
        return str(math.ceil(Decimal(millis) / Decimal(div_millis)))
    return str(math.ceil(Decimal(math.ceil(value)) / Decimal(math.ceil(divisor))))


def downward_payload(items: list[Obj], pod: Obj, default_mode: int | None,
                     node_allocatable: Mapping[str, Any]) -> dict[str, FileProjection]:
    """Files of a downwardAPI volume or projection; every failing item is reported (aggregated)."""
    if default_mode is None:
        raise PayloadError("no defaultMode used, not even the default value for it")
    out: dict[str, FileProjection] = {}
    errors: list[str] = []
    for item in items:
        mode = item.get("mode")
        try:
            if item.get("fieldRef") is not None:
                text = field_value(pod, str((item["fieldRef"] or {}).get("fieldPath") or ""))
            elif item.get("resourceFieldRef") is not None:
                text = resource_value(pod, item["resourceFieldRef"] or {}, node_allocatable)
            else:
                continue
        except PayloadError as e:
            errors.append(str(e))
            continue
        out[str(item.get("path") or "")] = FileProjection(text.encode(), default_mode if mode is None else int(mode))
    if errors:
        raise PayloadError(_aggregate(errors))
    return out


def expand_subpath_expr(expr: str, env: Mapping[str, str]) -> str:
    """`$(VAR)` expansion of a subPathExpr with the container's env (upstream ExpandContainerVolumeMounts over
    the forked `expansion.Expand`): `$$` is a literal `$`, an incomplete `$(` stays as is, and a variable that
    is unset or empty is an error."""
    out: list[str] = []
    missing: set[str] = set()
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch != "$" or i + 1 >= len(expr):
            out.append(ch)
            i += 1
            continue
        nxt = expr[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = expr.find(")", i + 2)
            if close == -1:
                out.append("$(")
                i += 2
                continue
            name = expr[i + 2:close]
            value = env.get(name, "")
            if not value:
                missing.add(name)
            out.append(value)
            i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    if missing:
        raise PayloadError("missing value for " + ", ".join(sorted(missing)))
    return "".join(out)


def pod_memory_limit(pod: Obj) -> int | None:
    """The pod's memory limit when every app container declares one (max with the largest init container),
    as cm.ResourceConfigForPod computes it for the pod cgroup; None when the pod is unbounded."""
    spec = pod.get("spec") or {}
    total = Decimal(0)
    for c in spec.get("containers") or []:
        limit = ((c.get("resources") or {}).get("limits") or {}).get("memory")
        if limit is None or _quantity(limit) == 0:
            return None
        total += _quantity(limit)
    for c in spec.get("initContainers") or []:
        limit = ((c.get("resources") or {}).get("limits") or {}).get("memory")
        if limit is not None:
            total = max(total, _quantity(limit))
    return math.ceil(total) if total > 0 else None


def memory_volume_size(pod: Obj, size_limit: Any, node_memory: int) -> int:
    """tmpfs size of a memory-backed volume (upstream calculateEmptyDirMemorySize): the node's allocatable
    memory, lowered to the pod's memory limit and then to the volume's sizeLimit when those are smaller."""
    size = node_memory
    pod_limit = pod_memory_limit(pod)
    if pod_limit is not None and 0 < pod_limit <= size:
        size = pod_limit
    if size_limit is not None:
        volume_limit = math.ceil(_quantity(size_limit))
        if 0 < volume_limit <= size:
            size = volume_limit
    return size


_NODE_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!", "Gt": "gt", "Lt": "lt"}


def node_affinity_matches(affinity: Obj | None, node: Obj) -> bool:
    """Whether a PV's `nodeAffinity.required` admits the node: terms are ORed, the expressions and fields of
    one term ANDed, an empty term matches nothing (upstream NodeSelector semantics)."""
    required = (affinity or {}).get("required")
    if not required:
        return True
    labels = (node.get("metadata") or {}).get("labels") or {}
    fields = {"metadata.name": str((node.get("metadata") or {}).get("name") or "")}
    for term in required.get("nodeSelectorTerms") or []:
        exprs = [(e, labels) for e in term.get("matchExpressions") or []]
        exprs += [(e, fields) for e in term.get("matchFields") or []]
        if not exprs:
            continue
        ok = True
        for expr, against in exprs:
            op = _NODE_OPS.get(str(expr.get("operator")))
            if op is None or not Requirement(str(expr.get("key")), op, tuple(expr.get("values") or ())).matches(against):
                ok = False
                break
        if ok:
            return True
    return False


def check_host_path_type(path: str, path_type: str) -> None:
    """Upstream hostPath `checkType` (follows symlinks, as stat does); creates for the *OrCreate types.
    Raises PayloadError with upstream's message."""
    def exists() -> bool:
        return os.path.exists(path)

    def mode() -> int | None:
        try:
            return os.stat(path).st_mode
        except OSError:
            return None

    if path_type in ("", None):
        return
    if path_type == "DirectoryOrCreate" and not exists():
        os.makedirs(path, mode=0o755, exist_ok=True)
        return
    if path_type in ("DirectoryOrCreate", "Directory"):
        m = mode()
        if m is None or not stat.S_ISDIR(m):
            raise PayloadError(f"hostPath type check failed: {path} is not a directory")
        return
    if path_type == "FileOrCreate" and not exists():
        try:
            os.close(os.open(path, os.O_CREAT | os.O_RDONLY, 0o644))
        except OSError as e:
            raise PayloadError(f"hostPath type check failed: {path}: {e.strerror}") from e
        return
    checks: dict[str, tuple[Callable[[int], bool], str]] = {
        "FileOrCreate": (lambda m: not stat.S_ISDIR(m), "is not a file"),
        "File": (lambda m: not stat.S_ISDIR(m), "is not a file"),
        "Socket": (stat.S_ISSOCK, "is not a socket file"),
        "CharDevice": (stat.S_ISCHR, "is not a character device"),
        "BlockDevice": (stat.S_ISBLK, "is not a block device"),
    }
    if path_type not in checks:
        raise PayloadError(f"{path_type} is an invalid volume type")
    check, what = checks[path_type]
    m = mode()
    if m is None or not check(m):
        raise PayloadError(f"hostPath type check failed: {path} {what}")


def set_volume_ownership(directory: Path, fs_group: int, read_only: bool, policy: str = "") -> None:
    """Group-own everything under `directory` by fsGroup: files get g+rw (g+r when read-only), directories
    also g+x and setgid so new files inherit the group (upstream volume.SetVolumeOwnership). Symlinks are
    lchown'd, never followed. `OnRootMismatch` skips the walk when the root already fits."""
    mask = _RO_MASK if read_only else _RW_MASK
    dir_mask = mask | _EXEC_MASK | stat.S_ISGID
    if policy == "OnRootMismatch":
        st = os.lstat(directory)
        if st.st_gid == fs_group and st.st_mode & dir_mask == dir_mask:
            return

    def own(path: str) -> None:
        st = os.lstat(path)
        os.lchown(path, -1, fs_group)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(path, stat.S_IMODE(st.st_mode) | (dir_mask if stat.S_ISDIR(st.st_mode) else mask))

    own(str(directory))
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=False):
        for name in (*dirnames, *filenames):
            own(os.path.join(dirpath, name))


# --- safe subPath handling (upstream subpath_linux.go) ------------------------------------------------------


def _within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def _components(path: str, base: str) -> list[str]:
    rel = os.path.relpath(path, base)
    return [] if rel == "." else rel.split("/")


def safe_open(path: str, base: str, flags: int = os.O_PATH) -> int:
    """An fd for `path` (already symlink-free and inside `base`) opened one component at a time relative to
    its parent, refusing any symlink on the way (upstream doSafeOpen): a concurrent swap of a component for a
    symlink cannot redirect it outside `base`."""
    if not _within(path, base):
        raise PayloadError(f"path {path} is outside of allowed base {base}")
    fd = os.open(base, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    current = base
    try:
        parts = _components(path, base)
        for i, part in enumerate(parts):
            current = os.path.join(current, part)
            last = i == len(parts) - 1
            try:
                child = os.open(part, (flags if last else os.O_PATH) | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError as e:
                raise PayloadError(f"cannot open {current}: {e.strerror}") from e
            os.close(fd)
            fd = child
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise PayloadError(f"unexpected symlink found {current}")
        return fd
    except BaseException:
        os.close(fd)
        raise


def safe_make_dir(subpath: str, base: str, perm: int) -> None:
    """Create `base/subpath` without ever following a symlink out of `base` (upstream doSafeMakeDir): the
    existing prefix is resolved and checked, the rest is created with mkdirat/openat(O_NOFOLLOW)."""
    base = os.path.realpath(base)
    target = os.path.join(base, subpath)
    parts = _components(os.path.normpath(target), base)
    existing = base
    index = 0
    while index < len(parts) and os.path.lexists(os.path.join(existing, parts[index])):
        existing = os.path.join(existing, parts[index])
        index += 1
    resolved = os.path.realpath(existing)
    if not _within(resolved, base):
        raise PayloadError(f"path {resolved} is outside of allowed base {base}")
    if index == len(parts):
        if not os.path.isdir(resolved):
            raise PayloadError(f"mkdir {target}: not a directory")
        return
    fd = safe_open(resolved, base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[index:]:
            with suppress(FileExistsError):
                os.mkdir(part, perm, dir_fd=fd)
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = child
            os.fchmod(fd, perm)  # the umask must not narrow it
    except OSError as e:
        raise PayloadError(f"cannot create directory {target}: {e.strerror}") from e
    finally:
        os.close(fd)


# --- mounts ------------------------------------------------------------------------------------------------


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    res = _libc().mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                        ctypes.c_ulong(flags), data.encode() if data else None)
    if res != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def _umount(target: str) -> None:
    if _libc().umount2(target.encode(), 0) != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):  # not a mount point (any more)
            return
        if err == errno.EBUSY and _libc().umount2(target.encode(), _MNT_DETACH) == 0:
            return
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def _unescape_mountinfo(field_text: str) -> str:
    out, i = [], 0
    while i < len(field_text):
        if field_text[i] == "\\" and i + 3 < len(field_text) and field_text[i + 1:i + 4].isdigit():
            out.append(chr(int(field_text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field_text[i])
            i += 1
    return "".join(out)


def mounts_under(directory: str) -> list[tuple[str, str]]:
    """(mount point, fstype) of every mount at or below `directory`, from /proc/self/mountinfo."""
    base = os.path.realpath(directory)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            point = _unescape_mountinfo(fields[4])
            if _within(point, base):
                found.append((point, fields[sep + 1]))
    return found


def _host_allocatable() -> dict[str, Any]:
    """What the host offers when the Node object has no allocatable (cpu count, MemTotal, root fs size)."""
    memory = 0
    with suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    fs = os.statvfs("/")
    return {"cpu": str(os.cpu_count() or 1), "memory": str(memory), "ephemeral-storage": str(fs.f_blocks * fs.f_frsize)}


# --- the manager -------------------------------------------------------------------------------------------


def _uid(pod: Obj) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def _namespace(pod: Obj) -> str:
    return str((pod.get("metadata") or {}).get("namespace") or "default")


def volume_source(volume: Obj) -> str:
    """The volume's source kind (the first source field it sets), "" when it has none skiff knows."""
    for kind in KNOWN_SOURCES:
        if volume.get(kind) is not None:
            return kind
    return next((k for k in volume if k != "name"), "")


@dataclass
class _Tracked:
    pod: Obj
    refs: set[tuple[str, str, str]] = field(default_factory=set)  # (plural, namespace, name) the pod reads


class VolumeManager:
    """Makes a pod's volumes ready, hands out the container mounts, keeps API volumes current, tears down.

    Idempotent throughout: `setup` is called on every pod sync and only writes what changed; `teardown` of an
    unknown pod is a no-op. `privileged` (default: running as root) says whether mount(2) may be used.
    """

    def __init__(self, root: Path, client: Client, node_name: str, *, privileged: bool | None = None,
                 refresh_seconds: float = DEFAULT_REFRESH_SECONDS) -> None:
        self.root = root
        self.client = client
        self.node_name = node_name
        self.privileged = os.geteuid() == 0 if privileged is None else privileged
        self.refresh_seconds = refresh_seconds
        self._pods: dict[str, _Tracked] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._disk_limits: dict[str, dict[str, int]] = {}
        self._wake = asyncio.Event()

    # --- public seam ---

    async def setup(self, pod: Obj) -> dict[str, str]:
        """Make every volume of the pod ready; returns volume name → host path. Raises VolumeError for the
        first volume (in spec order) that cannot be set up."""
        uid = _uid(pod)
        async with self._lock(uid):
            refs: set[tuple[str, str, str]] = set()
            paths = {}
            for volume in (pod.get("spec") or {}).get("volumes") or []:
                paths[str(volume.get("name"))] = await self._setup_volume(pod, volume, refs)
            self._pods[uid] = _Tracked(pod, refs)
            return paths

    def container_mounts(self, pod: Obj, container: Obj, paths: Mapping[str, str], *,
                         env: Mapping[str, str] | None = None) -> list[Mount]:
        """The runtime mounts for one container's volumeMounts (upstream kubelet makeMounts). `env` expands
        `subPathExpr`. SubPaths are created if missing and resolved without letting a symlink lead out of the
        volume; when privileged, the checked path is pinned with a bind mount under `volume-subpaths/`.
        Raises VolumeError (reason CreateContainerConfigError)."""
        spec_volumes = {str(v.get("name")): v for v in (pod.get("spec") or {}).get("volumes") or []}
        cname = str(container.get("name") or "")
        mounts = []
        for index, vm in enumerate(container.get("volumeMounts") or []):
            name = str(vm.get("name") or "")
            if name not in paths:
                raise self._config_error(f'cannot find volume "{name}" to mount into container "{cname}"')
            host_path = paths[name]
            sub = str(vm.get("subPath") or "")
            if vm.get("subPathExpr"):
                try:
                    sub = expand_subpath_expr(str(vm["subPathExpr"]), env or {})
                except PayloadError as e:
                    raise self._config_error(str(e)) from e
            if sub:
                host_path = self._prepare_subpath(pod, name, cname, index, host_path, sub, vm)
            container_path = str(vm.get("mountPath") or "")
            if not container_path.startswith("/"):
                container_path = "/" + container_path
            volume = spec_volumes.get(name, {})
            kind = volume_source(volume)
            read_only = bool(vm.get("readOnly")) or kind in API_VOLUMES or (
                kind == "persistentVolumeClaim" and bool((volume.get(kind) or {}).get("readOnly")))
            propagation = _PROPAGATION.get(vm.get("mountPropagation"), "private")
            mounts.append(Mount(host_path=host_path, container_path=container_path, read_only=read_only,
                                propagation=propagation))
        return mounts

    async def teardown(self, pod_uid: str) -> None:
        """Unmount and remove everything of a pod under the root (after its containers are gone). hostPath and
        PV directories are never under it, and removal refuses to cross into any mount still present."""
        async with self._lock(pod_uid):
            self._pods.pop(pod_uid, None)
            self._disk_limits.pop(pod_uid, None)
            pod_dir = self.root / pod_uid
            if pod_uid and os.path.isdir(pod_dir):
                await asyncio.to_thread(self._remove_pod_dir, pod_dir)
        self._locks.pop(pod_uid, None)

    async def run(self) -> None:
        """Refresh mounted ConfigMap/Secret/projected/downwardAPI volumes every `refresh_seconds` and soon after
        a watched ConfigMap or Secret that some pod reads changes. Cancel to stop."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._watch(CONFIGMAPS))
            tg.create_task(self._watch(SECRETS))
            while True:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.refresh_seconds)
                self._wake.clear()
                await self.refresh()

    # --- extras for the kubelet ---

    def disk_size_limits(self, pod_uid: str) -> dict[str, int]:
        """emptyDir name → sizeLimit bytes of the pod's on-disk emptyDirs (for an eviction manager; skiff has none)."""
        return dict(self._disk_limits.get(pod_uid, {}))

    async def refresh(self) -> None:
        """Rewrite the API volumes of every set-up pod from the current objects (no-op when unchanged)."""
        for uid, tracked in list(self._pods.items()):
            async with self._lock(uid):
                if self._pods.get(uid) is not tracked:
                    continue
                try:
                    for volume in (tracked.pod.get("spec") or {}).get("volumes") or []:
                        if volume_source(volume) in API_VOLUMES:
                            await self._setup_volume(tracked.pod, volume, set())
                except VolumeError as e:
                    log.warning("refreshing volumes of pod %s: %s", uid, e.message)

    # --- setup of one volume ---

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    def _volume_dir(self, pod: Obj, kind: str, name: str) -> Path:
        return self.root / _uid(pod) / "volumes" / PLUGIN_DIRS[kind] / name

    async def _setup_volume(self, pod: Obj, volume: Obj, refs: set[tuple[str, str, str]]) -> str:
        name = str(volume.get("name") or "")
        kind = volume_source(volume)
        source = volume.get(kind) or {}
        try:
            if kind == "emptyDir":
                return await self._setup_empty_dir(pod, name, source)
            if kind in API_VOLUMES:
                return await self._setup_api_volume(pod, name, kind, source, refs)
            if kind == "hostPath":
                path = str(source.get("path") or "")
                await asyncio.to_thread(check_host_path_type, path, str(source.get("type") or ""))
                return path
            if kind == "persistentVolumeClaim":
                return await self._setup_claim(pod, name, source)
        except PayloadError as e:
            raise _setup_failed(name, str(e)) from e
        except AtomicWriterError as e:
            raise _setup_failed(name, str(e)) from e
        except OSError as e:
            raise _setup_failed(name, str(e)) from e
        raise _setup_failed(name, f'failed to get Plugin from volumeSpec for volume "{name}" err=no volume plugin '
                                  f"matched ({kind or 'no source'} volumes are not supported by skiff)")

    async def _setup_empty_dir(self, pod: Obj, name: str, source: Obj) -> str:
        directory = self._volume_dir(pod, "emptyDir", name)
        medium = str(source.get("medium") or "")
        created = await asyncio.to_thread(self._make_volume_dir, directory)
        if medium == "Memory":
            if not self.privileged:
                raise PayloadError("emptyDir with medium Memory needs a privileged agent (mount(2) of tmpfs)")
            size = memory_volume_size(pod, source.get("sizeLimit"), await self._node_memory())
            await asyncio.to_thread(self._ensure_tmpfs, directory, size)
        elif medium:
            raise PayloadError(f"unknown storage medium {medium!r}")
        elif source.get("sizeLimit") is not None:
            self._disk_limits.setdefault(_uid(pod), {})[name] = math.ceil(_quantity(source["sizeLimit"]))
        fs_group = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
        if created and fs_group is not None:
            await asyncio.to_thread(set_volume_ownership, directory, int(fs_group), False)
        return str(directory)

    async def _setup_api_volume(self, pod: Obj, name: str, kind: str, source: Obj,
                                refs: set[tuple[str, str, str]]) -> str:
        directory = self._volume_dir(pod, kind, name)
        payload = await self._payload(pod, kind, source, refs)
        await asyncio.to_thread(self._make_volume_dir, directory)
        if kind in MEMORY_BACKED and self.privileged:
            await asyncio.to_thread(self._ensure_tmpfs, directory, memory_volume_size(pod, None, await self._node_memory()))
        security = (pod.get("spec") or {}).get("securityContext") or {}
        fs_group = security.get("fsGroup")
        policy = str(security.get("fsGroupChangePolicy") or "")

        def set_perms(_: Path) -> None:
            if fs_group is not None:
                set_volume_ownership(directory, int(fs_group), True, policy)

        await asyncio.to_thread(AtomicWriter(directory).write, payload, set_perms)
        return str(directory)

    async def _payload(self, pod: Obj, kind: str, source: Obj,
                       refs: set[tuple[str, str, str]]) -> dict[str, FileProjection]:
        namespace = _namespace(pod)
        default_mode = source.get("defaultMode", DEFAULT_MODE)
        if kind == "configMap":
            return configmap_payload(source, await self._get_ref(CONFIGMAPS, namespace, source.get("name"), refs),
                                     default_mode)
        if kind == "secret":
            return secret_payload(source, await self._get_ref(SECRETS, namespace, source.get("secretName"), refs),
                                  default_mode)
        if kind == "downwardAPI":
            return downward_payload(source.get("items") or [], pod, default_mode, await self._allocatable())
        payload: dict[str, FileProjection] = {}
        errors: list[str] = []
        for projection in source.get("sources") or []:
            try:
                payload.update(await self._projection(pod, projection, default_mode, refs))
            except PayloadError as e:
                errors.append(str(e))
        if errors:
            raise PayloadError(_aggregate(errors))
        return payload

    async def _projection(self, pod: Obj, projection: Obj, default_mode: int | None,
                          refs: set[tuple[str, str, str]]) -> dict[str, FileProjection]:
        """One `projected.sources[]` entry (upstream projected.collectData)."""
        namespace = _namespace(pod)
        if projection.get("configMap") is not None:
            src = projection["configMap"]
            return configmap_payload(src, await self._get_ref(CONFIGMAPS, namespace, src.get("name"), refs),
                                     default_mode)
        if projection.get("secret") is not None:
            src = projection["secret"]
            return secret_payload(src, await self._get_ref(SECRETS, namespace, src.get("name"), refs), default_mode,
                                  projected=True)
        if projection.get("downwardAPI") is not None:
            return downward_payload(projection["downwardAPI"].get("items") or [], pod, default_mode,
                                    await self._allocatable())
        if projection.get("serviceAccountToken") is not None:
            src = projection["serviceAccountToken"]
            token = await self._service_account_token(pod, src)
            return {str(src.get("path")): FileProjection(token.encode(), default_mode or DEFAULT_MODE)}
        if projection.get("clusterTrustBundle") is not None:
            raise PayloadError("clusterTrustBundle projections are not supported: skiff does not serve "
                               "certificates.k8s.io ClusterTrustBundles")
        return {}

    async def _service_account_token(self, pod: Obj, source: Obj) -> str:
        """A pod-bound token from the TokenRequest API (`serviceaccounts/<name>/token`), as upstream's token manager."""
        meta = pod.get("metadata") or {}
        account = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
        request: Obj = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [source["audience"]] if source.get("audience") else [],
                "expirationSeconds": int(source.get("expirationSeconds") or 3600),
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta.get("name"), "uid": meta.get("uid")},
            },
        }
        try:
            answer = await self.client.create(SERVICEACCOUNTS, _namespace(pod), request, subresource="token",
                                              name=account)
        except ApiError as e:
            raise PayloadError(f"failed to fetch token: {e.message} (the API server does not serve the TokenRequest "
                               f"API serviceaccounts/{account}/token)" if e.code in (404, 405) else
                               f"failed to fetch token: {e.message}") from e
        token = (answer.get("status") or {}).get("token")
        if not token:
            raise PayloadError("failed to fetch token: the TokenRequest answer carries no token")
        return str(token)

    async def _get_ref(self, res: Resource, namespace: str, name: Any, refs: set[tuple[str, str, str]]) -> Obj | None:
        refs.add((res.plural, namespace, str(name or "")))
        return await self._get(res, namespace, str(name or ""))

    async def _get(self, res: Resource, namespace: str, name: str) -> Obj | None:
        """The object, None when it does not exist; any other API failure is a PayloadError."""
        if not name:
            return None
        try:
            return await self.client.get(res, namespace, name)
        except ApiError as e:
            if e.code == 404:
                return None
            raise PayloadError(e.message) from e

    async def _setup_claim(self, pod: Obj, name: str, source: Obj) -> str:
        """The path of the hostPath/local PV the claim is bound to (upstream getPVCExtractPV + plugin)."""
        namespace = _namespace(pod)
        claim_name = str(source.get("claimName") or "")
        prefix = f"error processing PVC {namespace}/{claim_name}: "
        try:
            claim = await self.client.get(PVCS, namespace, claim_name)
        except ApiError as e:
            raise _process_failed(name, prefix + f"failed to fetch PVC from API server: {e.message}") from e
        if (claim.get("status") or {}).get("phase") != "Bound":
            raise _process_failed(name, prefix + "PVC is not bound")
        pv_name = str((claim.get("spec") or {}).get("volumeName") or "")
        try:
            pv = await self.client.get(PVS, "", pv_name)
        except ApiError as e:
            raise _process_failed(name, prefix + f"failed to fetch PV {pv_name} from API server: {e.message}") from e
        claim_ref = (pv.get("spec") or {}).get("claimRef")
        claim_uid = (claim.get("metadata") or {}).get("uid")
        if claim_ref is None:
            raise _process_failed(name, prefix + f"found PV object {pv_name} but it has a nil pv.Spec.ClaimRef "
                                                 "indicating it is not yet bound to the claim")
        if claim_ref.get("uid") != claim_uid:
            raise _process_failed(name, prefix + f"found PV object {pv_name} but its pv.Spec.ClaimRef.UID "
                                                 f"({claim_ref.get('uid')}) does not point to claim.UID ({claim_uid})")
        spec = pv.get("spec") or {}
        if spec.get("hostPath") is not None:
            path = str(spec["hostPath"].get("path") or "")
            await asyncio.to_thread(check_host_path_type, path, str(spec["hostPath"].get("type") or ""))
            return path
        if spec.get("local") is not None:
            node = await self._node()
            if not node_affinity_matches(spec.get("nodeAffinity"), node):
                raise VolumeError("FailedAttachVolume", f'volume node affinity conflict: PersistentVolume "{pv_name}" '
                                  f'is not available on node "{self.node_name}"', volume=name)
            path = str(spec["local"].get("path") or "")
            if not os.path.exists(path):
                raise _setup_failed(name, f'MountVolume.NewMounter initialization failed for volume "{pv_name}" : '
                                          f'path "{path}" does not exist')
            return path
        kinds = [k for k in spec if isinstance(spec[k], dict) and k not in ("claimRef", "nodeAffinity", "capacity")]
        raise _setup_failed(name, f'PersistentVolume "{pv_name}" has a source skiff cannot mount '
                                  f"({', '.join(kinds) or 'none'}): only hostPath and local are supported")

    async def _node(self) -> Obj:
        try:
            return await self.client.get(NODES, "", self.node_name)
        except ApiError as e:
            if e.code == 404:
                return {"metadata": {"name": self.node_name}}
            raise PayloadError(e.message) from e

    async def _allocatable(self) -> dict[str, Any]:
        allocatable = dict(((await self._node()).get("status") or {}).get("allocatable") or {})
        return allocatable or _host_allocatable()

    async def _node_memory(self) -> int:
        return math.ceil(_quantity((await self._allocatable()).get("memory") or _host_allocatable()["memory"]))

    # --- blocking helpers (run in an executor) ---

    @staticmethod
    def _make_volume_dir(directory: Path) -> bool:
        """Create the volume dir 0777 like upstream's emptyDir setupDir; True when it was created now."""
        if directory.is_symlink():
            raise PayloadError(f"volume directory {directory} is a symlink")
        if directory.is_dir():
            return False
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o777)
        return True

    @staticmethod
    def _ensure_tmpfs(directory: Path, size: int) -> None:
        """Mount a tmpfs of `size` bytes on the directory unless one is there already (idempotent)."""
        real = os.path.realpath(directory)
        if any(point == real and fstype == "tmpfs" for point, fstype in mounts_under(real)):
            return
        _mount("tmpfs", real, "tmpfs", 0, f"size={size}" if size > 0 else None)

    def _remove_pod_dir(self, pod_dir: Path) -> None:
        points = sorted((p for p, _ in mounts_under(str(pod_dir))), key=len, reverse=True)
        if points and not self.privileged:
            raise VolumeError("FailedMount", f"cannot unmount {points[0]}: the agent is not privileged")
        for point in points:
            _umount(point)
        remaining = mounts_under(str(pod_dir))
        if remaining:
            raise VolumeError("FailedMount", f"{remaining[0][0]} is still mounted; refusing to remove {pod_dir}")
        for sub in ("volumes", "volume-subpaths"):
            if os.path.lexists(pod_dir / sub):
                _remove_tree(str(pod_dir / sub), os.lstat(pod_dir).st_dev)
        with suppress(OSError):
            os.rmdir(pod_dir)  # only when nothing else (the kubelet's own files) is left

    def _prepare_subpath(self, pod: Obj, volume: str, container: str, index: int, volume_path: str, sub: str,
                         vm: Obj) -> str:
        if os.path.isabs(sub):
            raise self._config_error(f"error SubPath `{sub}` must not be an absolute path")
        if ".." in sub.split("/"):
            raise self._config_error(f"unable to provision SubPath `{sub}`: must not contain '..'")
        full = os.path.join(volume_path, sub)
        try:
            if not os.path.exists(full):
                safe_make_dir(sub, volume_path, stat.S_IMODE(os.stat(volume_path).st_mode))
        except (PayloadError, OSError) as e:
            log.warning("creating subPath %s of volume %s for container %s: %s", sub, volume, container, e)
            raise self._config_error(
                f'failed to create subPath directory for volumeMount "{vm.get("name")}" of container "{container}"',
                str(e)) from e
        try:
            return self._bind_subpath(pod, volume, container, index, volume_path, full)
        except (PayloadError, OSError) as e:
            # Upstream keeps host details out of the user-visible text; they go to the log (and `.cause`).
            log.warning("preparing subPath %s of volume %s for container %s: %s", sub, volume, container, e)
            raise self._config_error(
                f'failed to prepare subPath for volumeMount "{vm.get("name")}" of container "{container}"',
                str(e)) from e

    def _bind_subpath(self, pod: Obj, volume: str, container: str, index: int, volume_path: str, full: str) -> str:
        """Resolve, check and (when privileged) pin the subPath (upstream doBindSubPath)."""
        try:
            base = os.path.realpath(volume_path, strict=True)
            resolved = os.path.realpath(full, strict=True)
        except OSError as e:
            raise PayloadError(f"error resolving symlinks in {full!r}: {e.strerror}") from e
        if not _within(resolved, base):
            raise PayloadError(f"subpath {resolved!r} not within volume path {base!r}")
        fd = safe_open(resolved, base)
        try:
            if not self.privileged:
                return resolved
            target = self.root / _uid(pod) / "volume-subpaths" / volume / container / str(index)
            is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
            self._prepare_bind_target(target, is_dir, fd)
            if not os.path.ismount(target):
                _mount(f"/proc/self/fd/{fd}", str(target), None, _MS_BIND, None)
            return str(target)
        finally:
            os.close(fd)

    @staticmethod
    def _prepare_bind_target(target: Path, is_dir: bool, fd: int) -> None:
        """An empty file/dir to bind onto; an existing bind of the same inode is kept (container restarts)."""
        if os.path.ismount(target):
            pinned, wanted = os.stat(target), os.fstat(fd)
            if (pinned.st_dev, pinned.st_ino) == (wanted.st_dev, wanted.st_ino):
                return
            _umount(str(target))
        target.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        if os.path.lexists(target) and (target.is_symlink() or target.is_dir() != is_dir):
            if target.is_dir() and not target.is_symlink():
                os.rmdir(target)
            else:
                os.unlink(target)
        if is_dir:
            target.mkdir(mode=0o750, exist_ok=True)
        elif not os.path.lexists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o640))

    @staticmethod
    def _config_error(message: str, cause: str = "") -> VolumeError:
        return VolumeError("CreateContainerConfigError", message, cause=cause)

    # --- watching the objects pods read ---

    async def _watch(self, res: Resource) -> None:
        """Wake the refresh loop when an object some pod reads changes. A 403 (an agent not allowed to watch
        every object of the kind) leaves the periodic refresh alone to do the work."""
        delay = 1.0
        while True:
            try:
                listed = await self.client.list(res, "", ListOptions(limit=1))
                rv = str((listed.get("metadata") or {}).get("resourceVersion") or "")
                async for event in self.client.watch(res, "", ListOptions(resource_version=rv)):
                    delay = 1.0
                    if event.type == "ERROR":  # e.g. 410 Expired: relist after a pause
                        await asyncio.sleep(delay)
                        break
                    meta = event.object.get("metadata") or {}
                    key = (res.plural, str(meta.get("namespace") or ""), str(meta.get("name") or ""))
                    if any(key in tracked.refs for tracked in self._pods.values()):
                        self._wake.set()
            except ApiError as e:
                if e.code == 403:
                    log.info("not allowed to watch %s (%s); volumes refresh every %.0fs", res.plural, e.message,
                             self.refresh_seconds)
                    return
                log.warning("watching %s: %s", res.plural, e.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)


def _remove_tree(path: str, device: int) -> None:
    """rm -r that never follows a symlink and refuses to enter another filesystem (a mount left behind)."""
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    if st.st_dev != device:
        raise VolumeError("FailedMount", f"{path} is on another filesystem; refusing to remove it")
    for entry in _scandir(path):
        _remove_tree(entry, device)
    os.rmdir(path)


def _scandir(path: str) -> list[str]:
    with os.scandir(path) as it:
        return [entry.path for entry in it]
