"""VolumeManager and its pure halves: payloads, downward API values, subPath safety, hostPath types, PVCs, teardown."""

from __future__ import annotations

import base64
import os
import socket
import stat
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skiff.agent.atomic_writer import FileProjection
from skiff.agent.volumes import (
    CONFIGMAPS,
    PVS,
    SECRETS,
    PayloadError,
    VolumeError,
    VolumeManager,
    check_host_path_type,
    configmap_payload,
    downward_payload,
    expand_subpath_expr,
    format_map,
    memory_volume_size,
    mounts_under,
    node_affinity_matches,
    resource_value,
    secret_payload,
)
from skiff.apiserver.local import LocalBackend
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import PVCS, Client, Obj
from skiff.testing import eventually, start_control_plane

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="mount(2) needs root")

CM: Obj = {"metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}, "binaryData": {"bin": base64.b64encode(b"\x00\xff").decode()}}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- pure payload builders ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "configmap", "expected"),
    [
        pytest.param({"name": "cfg"}, CM, {"a": (b"1", 0o644), "b": (b"2", 0o644), "bin": (b"\x00\xff", 0o644)},
                     id="all-keys-with-default-mode"),
        pytest.param({"name": "cfg", "items": [{"key": "a", "path": "dir/a.conf", "mode": 0o400}, {"key": "b", "path": "b"}]},
                     CM, {"dir/a.conf": (b"1", 0o400), "b": (b"2", 0o644)}, id="items-with-per-item-mode"),
        pytest.param({"name": "cfg", "optional": True}, None, {}, id="optional-missing-object-is-empty"),
        pytest.param({"name": "cfg", "optional": True, "items": [{"key": "nope", "path": "x"}, {"key": "a", "path": "a"}]},
                     CM, {"a": (b"1", 0o644)}, id="optional-missing-key-is-skipped"),
        pytest.param({"name": "cfg"}, None, 'configmap "cfg" not found', id="missing-object"),
        pytest.param({"name": "cfg", "items": [{"key": "nope", "path": "x"}]}, CM,
                     "configmap references non-existent config key: nope", id="missing-key"),
    ],
)
def test_configmap_payload(source: Obj, configmap: Obj | None, expected: dict[str, tuple[bytes, int]] | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(PayloadError, match=expected):
            configmap_payload(source, configmap, 0o644)
    else:
        got = configmap_payload(source, configmap, 0o644)
        assert {k: (v.data, v.mode) for k, v in got.items()} == expected


@pytest.mark.parametrize(
    ("source", "secret", "projected", "expected"),
    [
        pytest.param({"secretName": "s"}, {"data": {"user": b64("admin")}}, False, {"user": (b"admin", 0o640)},
                     id="decoded-with-default-mode"),
        pytest.param({"name": "s", "items": [{"key": "user", "path": "u"}]}, {"data": {"user": b64("x")}}, True,
                     {"u": (b"x", 0o640)}, id="projection-uses-name"),
        pytest.param({"secretName": "s"}, None, False, 'secret "s" not found', id="missing"),
        pytest.param({"secretName": "s", "items": [{"key": "k", "path": "k"}]}, {"data": {}}, False,
                     "references non-existent secret key: k", id="missing-key"),
        pytest.param({"secretName": "s", "optional": True}, None, False, {}, id="optional-missing"),
    ],
)
def test_secret_payload(source: Obj, secret: Obj | None, projected: bool,
                        expected: dict[str, tuple[bytes, int]] | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(PayloadError, match=expected):
            secret_payload(source, secret, 0o640, projected=projected)
    else:
        got = secret_payload(source, secret, 0o640, projected=projected)
        assert {k: (v.data, v.mode) for k, v in got.items()} == expected


def test_labels_are_sorted_go_quoted_lines_without_trailing_newline() -> None:
    assert format_map({"b": 'say "hi"', "a": "x\ny", "c": "ünï"}) == 'a="x\\ny"\nb="say \\"hi\\""\nc="ünï"'
    assert format_map({}) == ""


POD: Obj = {
    "metadata": {"name": "web", "namespace": "prod", "uid": "u-1", "labels": {"app": "web", "tier": "fe"},
                 "annotations": {"note": "x"}},
    "spec": {"containers": [
        {"name": "app", "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}}},
        {"name": "side"},
    ]},
}
NODE_ALLOC = {"cpu": "4", "memory": "8Gi", "ephemeral-storage": "10Gi"}


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        pytest.param({"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}, "web", id="name"),
        pytest.param({"path": "n", "fieldRef": {"fieldPath": "metadata.namespace"}}, "prod", id="namespace"),
        pytest.param({"path": "n", "fieldRef": {"fieldPath": "metadata.uid"}}, "u-1", id="uid"),
        pytest.param({"path": "n", "fieldRef": {"fieldPath": "metadata.labels"}}, 'app="web"\ntier="fe"', id="labels"),
        pytest.param({"path": "n", "fieldRef": {"fieldPath": "metadata.labels['tier']"}}, "fe", id="one-label"),
        pytest.param({"path": "n", "fieldRef": {"fieldPath": "metadata.annotations"}}, 'note="x"', id="annotations"),
        pytest.param({"path": "n", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu"}}, "1",
                     id="cpu-rounds-up-to-cores"),
        pytest.param({"path": "n", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu",
                                                        "divisor": "1m"}}, "500", id="cpu-in-millicores"),
        pytest.param({"path": "n", "resourceFieldRef": {"containerName": "app", "resource": "requests.cpu",
                                                        "divisor": "1m"}}, "250", id="cpu-request"),
        pytest.param({"path": "n", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory",
                                                        "divisor": "1Mi"}}, "128", id="memory-in-mebibytes"),
        pytest.param({"path": "n", "resourceFieldRef": {"containerName": "side", "resource": "limits.memory",
                                                        "divisor": "1Gi"}}, "8", id="no-limit-is-node-allocatable"),
        pytest.param({"path": "n", "resourceFieldRef": {"containerName": "side", "resource": "requests.memory"}}, "0",
                     id="no-request-is-zero"),
        pytest.param({"path": "n", "fieldRef": {"fieldPath": "spec.nodeName"}}, "unsupported fieldPath: spec.nodeName",
                     id="non-metadata-field"),
        pytest.param({"path": "n", "resourceFieldRef": {"containerName": "nope", "resource": "limits.cpu"}},
                     "no container with name nope found", id="unknown-container"),
        pytest.param({"path": "n", "resourceFieldRef": {"containerName": "app", "resource": "limits.gpu"}},
                     "unsupported container resource : limits.gpu", id="unknown-resource"),
    ],
)
def test_downward_api_values(item: Obj, expected: str) -> None:
    if expected.startswith(("unsupported", "no container")):
        with pytest.raises(PayloadError) as info:
            downward_payload([item], POD, 0o644, NODE_ALLOC)
        assert str(info.value) == expected
    else:
        assert downward_payload([item], POD, 0o644, NODE_ALLOC) == {"n": FileProjection(expected.encode(), 0o644)}


def test_downward_api_reports_every_failing_item_at_once() -> None:
    items = [{"path": "a", "fieldRef": {"fieldPath": "spec.x"}}, {"path": "b", "fieldRef": {"fieldPath": "status.y"}}]
    with pytest.raises(PayloadError) as info:
        downward_payload(items, POD, 0o644, NODE_ALLOC)
    assert str(info.value) == "[unsupported fieldPath: spec.x, unsupported fieldPath: status.y]"


def test_resource_value_is_independent_of_the_item_path() -> None:
    ref = {"containerName": "app", "resource": "limits.ephemeral-storage", "divisor": "1Gi"}
    assert resource_value(POD, ref, NODE_ALLOC) == "10"


@pytest.mark.parametrize(
    ("expr", "env", "expected"),
    [
        pytest.param("$(POD_NAME)/logs", {"POD_NAME": "web-1"}, "web-1/logs", id="variable"),
        pytest.param("a$$(POD_NAME)", {"POD_NAME": "x"}, "a$(POD_NAME)", id="escaped-operator"),
        pytest.param("a$(POD", {}, "a$(POD", id="incomplete-reference-kept"),
        pytest.param("$x/$", {}, "$x/$", id="lone-operators-kept"),
        pytest.param("$(A)-$(B)", {"A": ""}, "missing value for A, B", id="unset-and-empty-are-missing"),
    ],
)
def test_expand_subpath_expr(expr: str, env: dict[str, str], expected: str) -> None:
    if expected.startswith("missing"):
        with pytest.raises(PayloadError, match=expected):
            expand_subpath_expr(expr, env)
    else:
        assert expand_subpath_expr(expr, env) == expected


def _pod_with_limits(*limits: str | None) -> Obj:
    containers = [{"name": f"c{i}", "resources": {"limits": {"memory": m}} if m else {}} for i, m in enumerate(limits)]
    return {"spec": {"containers": containers}}


@pytest.mark.parametrize(
    ("pod", "size_limit", "expected"),
    [
        pytest.param(_pod_with_limits(None), None, 8 << 30, id="unbounded-pod-gets-node-allocatable"),
        pytest.param(_pod_with_limits("1Gi", "1Gi"), None, 2 << 30, id="pod-limit-sum"),
        pytest.param(_pod_with_limits("1Gi", None), None, 8 << 30, id="one-container-without-limit-unbounds"),
        pytest.param(_pod_with_limits("1Gi"), "64Mi", 64 << 20, id="smaller-size-limit-wins"),
        pytest.param(_pod_with_limits("1Gi"), "4Gi", 1 << 30, id="larger-size-limit-ignored"),
        pytest.param(_pod_with_limits("16Gi"), None, 8 << 30, id="pod-limit-above-node-ignored"),
    ],
)
def test_memory_volume_size(pod: Obj, size_limit: str | None, expected: int) -> None:
    assert memory_volume_size(pod, size_limit, 8 << 30) == expected


NODE: Obj = {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1", "disks": "3"}}}


@pytest.mark.parametrize(
    ("affinity", "expected"),
    [
        pytest.param(None, True, id="no-affinity"),
        pytest.param({"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}, True, id="hostname-in"),
        pytest.param({"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n2"]}]}]}}, False, id="other-host"),
        pytest.param({"required": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "x", "operator": "Exists"}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}, True,
            id="terms-are-ored"),
        pytest.param({"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "disks", "operator": "Gt", "values": ["2"]},
            {"key": "gpu", "operator": "DoesNotExist"}]}]}}, True, id="expressions-anded"),
        pytest.param({"required": {"nodeSelectorTerms": [{}]}}, False, id="empty-term-matches-nothing"),
    ],
)
def test_node_affinity_matches(affinity: Obj | None, expected: bool) -> None:
    assert node_affinity_matches(affinity, NODE) is expected


@pytest.fixture
def host_paths(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    sock.close()
    return {"dir": str(tmp_path / "dir"), "file": str(tmp_path / "file"), "sock": str(tmp_path / "sock"),
            "missing": str(tmp_path / "missing"), "null": "/dev/null", "base": str(tmp_path)}


@pytest.mark.parametrize(
    ("path", "path_type", "error"),
    [
        pytest.param("missing", "", None, id="no-check"),
        pytest.param("dir", "Directory", None, id="directory"),
        pytest.param("file", "Directory", "hostPath type check failed: {} is not a directory", id="file-is-no-dir"),
        pytest.param("missing", "Directory", "hostPath type check failed: {} is not a directory", id="missing-dir"),
        pytest.param("file", "DirectoryOrCreate", "hostPath type check failed: {} is not a directory",
                     id="or-create-on-a-file"),
        pytest.param("file", "File", None, id="file"),
        pytest.param("dir", "File", "hostPath type check failed: {} is not a file", id="dir-is-no-file"),
        pytest.param("sock", "Socket", None, id="socket"),
        pytest.param("file", "Socket", "hostPath type check failed: {} is not a socket file", id="file-is-no-socket"),
        pytest.param("null", "CharDevice", None, id="char-device"),
        pytest.param("file", "CharDevice", "hostPath type check failed: {} is not a character device", id="no-char"),
        pytest.param("null", "BlockDevice", "hostPath type check failed: {} is not a block device", id="no-block"),
        pytest.param("dir", "Weird", "Weird is an invalid volume type", id="unknown-type"),
    ],
)
def test_host_path_type_checks(host_paths: dict[str, str], path: str, path_type: str, error: str | None) -> None:
    full = host_paths[path]
    if error is None:
        check_host_path_type(full, path_type)
    else:
        with pytest.raises(PayloadError) as info:
            check_host_path_type(full, path_type)
        assert str(info.value) == error.format(full)


@pytest.mark.parametrize(("path_type", "is_dir", "mode"), [
    pytest.param("DirectoryOrCreate", True, 0o755, id="directory"),
    pytest.param("FileOrCreate", False, 0o644, id="file"),
])
def test_host_path_or_create_types_create(host_paths: dict[str, str], path_type: str, is_dir: bool, mode: int) -> None:
    old = os.umask(0)
    try:
        check_host_path_type(host_paths["missing"], path_type)
    finally:
        os.umask(old)
    st = os.stat(host_paths["missing"])
    assert stat.S_ISDIR(st.st_mode) is is_dir and stat.S_IMODE(st.st_mode) == mode


# --- the manager over a real control plane -----------------------------------------------------------------


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    plane = await start_control_plane(tmp_path / "plane")
    c = InProcessClient(LocalBackend(plane))
    try:
        yield c
    finally:
        await c.close()
        await plane.store.close()


def pod(volumes: list[Obj], containers: list[Obj] | None = None, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "uid": "pod-uid-1", "labels": {"app": "web"}},
            "spec": {"volumes": volumes, "containers": containers or [{"name": "app"}], **spec}}


def manager(tmp_path: Path, client: Client, privileged: bool = False) -> VolumeManager:
    return VolumeManager(tmp_path / "pods", client, "node-1", privileged=privileged, refresh_seconds=0.05)


async def test_setup_projects_every_api_volume(tmp_path: Path, client: Client) -> None:
    await client.create(CONFIGMAPS, "default", {"metadata": {"name": "cfg"}, "data": {"app.conf": "port=80"}})
    await client.create(SECRETS, "default", {"metadata": {"name": "creds"}, "data": {"password": b64("s3cret")}})
    p = pod([
        {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 0o640}},
        {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}},
        {"name": "info", "downwardAPI": {"defaultMode": 0o644, "items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "all", "projected": {"defaultMode": 0o644, "sources": [
            {"configMap": {"name": "cfg"}}, {"secret": {"name": "creds", "items": [{"key": "password", "path": "pw"}]}},
            {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
        {"name": "scratch", "emptyDir": {}},
    ])
    paths = await manager(tmp_path, client).setup(p)
    base = tmp_path / "pods" / "pod-uid-1" / "volumes"
    assert paths["cfg"] == str(base / "kubernetes.io~configmap" / "cfg")
    assert (Path(paths["cfg"]) / "app.conf").read_text() == "port=80"
    assert stat.S_IMODE(os.stat(Path(paths["cfg"]) / "app.conf").st_mode) == 0o640
    assert (Path(paths["creds"]) / "password").read_bytes() == b"s3cret"
    assert stat.S_IMODE(os.stat(Path(paths["creds"]) / "password").st_mode) == 0o400
    assert (Path(paths["info"]) / "labels").read_text() == 'app="web"'
    assert {n: (Path(paths["all"]) / n).read_text() for n in ("app.conf", "pw", "name")} == {
        "app.conf": "port=80", "pw": "s3cret", "name": "web"}
    assert paths["scratch"] == str(base / "kubernetes.io~empty-dir" / "scratch")
    assert stat.S_IMODE(os.stat(paths["scratch"]).st_mode) == 0o777


@pytest.mark.parametrize(
    ("volume", "reason", "message"),
    [
        pytest.param({"name": "cfg", "configMap": {"name": "x", "defaultMode": 420}}, "FailedMount",
                     'MountVolume.SetUp failed for volume "cfg" : configmap "x" not found', id="configmap"),
        pytest.param({"name": "s", "secret": {"secretName": "x", "defaultMode": 420}}, "FailedMount",
                     'MountVolume.SetUp failed for volume "s" : secret "x" not found', id="secret"),
        pytest.param({"name": "t", "projected": {"defaultMode": 420, "sources": [
            {"configMap": {"name": "a"}}, {"secret": {"name": "b"}}]}}, "FailedMount",
            'MountVolume.SetUp failed for volume "t" : [configmap "a" not found, secret "b" not found]',
            id="projected-aggregates"),
        pytest.param({"name": "t", "projected": {"defaultMode": 420, "sources": [
            {"clusterTrustBundle": {"name": "b", "path": "ca.crt"}}]}}, "FailedMount",
            "clusterTrustBundle projections are not supported", id="cluster-trust-bundle"),
        pytest.param({"name": "t", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"path": "token"}}]}}, "FailedMount",
            'MountVolume.SetUp failed for volume "t" : failed to fetch token', id="service-account-token"),
        pytest.param({"name": "n", "nfs": {"server": "x", "path": "/"}}, "FailedMount",
                     "no volume plugin matched (nfs volumes are not supported by skiff)", id="unsupported-plugin"),
        pytest.param({"name": "d", "persistentVolumeClaim": {"claimName": "nope"}}, "FailedMount",
                     "error processing PVC default/nope: failed to fetch PVC from API server: "
                     'persistentvolumeclaims "nope" not found', id="claim-not-found"),
    ],
)
async def test_setup_failures_carry_upstream_text(tmp_path: Path, client: Client, volume: Obj, reason: str,
                                                  message: str) -> None:
    with pytest.raises(VolumeError) as info:
        await manager(tmp_path, client).setup(pod([volume]))
    assert info.value.reason == reason
    assert message in info.value.message
    assert info.value.volume == volume["name"]


async def test_optional_missing_configmap_is_an_empty_volume(tmp_path: Path, client: Client) -> None:
    paths = await manager(tmp_path, client).setup(
        pod([{"name": "cfg", "configMap": {"name": "x", "optional": True, "defaultMode": 420}}]))
    entries = os.listdir(paths["cfg"])
    assert "..data" in entries and len(entries) == 2  # the link and one empty version directory
    assert os.listdir(Path(paths["cfg"]) / "..data") == []


async def test_fs_group_owns_api_and_empty_dir_volumes(tmp_path: Path, client: Client) -> None:
    group = os.getgid()
    await client.create(CONFIGMAPS, "default", {"metadata": {"name": "cfg"}, "data": {"k": "v"}})
    paths = await manager(tmp_path, client).setup(pod(
        [{"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 0o600}}, {"name": "e", "emptyDir": {}}],
        securityContext={"fsGroup": group}))
    st = os.stat(Path(paths["cfg"]) / "k")
    assert st.st_gid == group and stat.S_IMODE(st.st_mode) == 0o640  # read-only volume: g+r
    root = os.stat(paths["e"])
    assert root.st_gid == group and root.st_mode & stat.S_ISGID and stat.S_IMODE(root.st_mode) & 0o770 == 0o770


async def test_setup_is_idempotent_and_picks_up_changes(tmp_path: Path, client: Client) -> None:
    cm = await client.create(CONFIGMAPS, "default", {"metadata": {"name": "cfg"}, "data": {"k": "1"}})
    vm = manager(tmp_path, client)
    p = pod([{"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}}])
    paths = await vm.setup(p)
    version = os.readlink(Path(paths["cfg"]) / "..data")
    assert await vm.setup(p) == paths and os.readlink(Path(paths["cfg"]) / "..data") == version
    await client.update(CONFIGMAPS, "default", {**cm, "data": {"k": "2"}})
    await vm.setup(p)
    assert (Path(paths["cfg"]) / "k").read_text() == "2"


async def test_run_refreshes_volumes_when_a_watched_object_changes(tmp_path: Path, client: Client) -> None:
    import asyncio

    cm = await client.create(CONFIGMAPS, "default", {"metadata": {"name": "cfg"}, "data": {"k": "1"}})
    sec = await client.create(SECRETS, "default", {"metadata": {"name": "s"}, "data": {"k": b64("a")}})
    # An hour-long period: only the watch can make this refresh happen in time.
    vm = VolumeManager(tmp_path / "pods", client, "node-1", privileged=False, refresh_seconds=3600)
    paths = await vm.setup(pod([{"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}},
                                {"name": "s", "secret": {"secretName": "s", "defaultMode": 420}}]))
    runner = asyncio.create_task(vm.run())
    try:
        await client.update(CONFIGMAPS, "default", {**cm, "data": {"k": "2", "new": "x"}})
        await client.update(SECRETS, "default", {**sec, "data": {"k": b64("b")}})

        async def updated() -> bool:
            cfg, s = Path(paths["cfg"]), Path(paths["s"])
            return ((cfg / "k").read_text(), (cfg / "new").exists(), (s / "k").read_text()) == ("2", True, "b")

        await eventually(updated, "configMap and secret volumes refreshed")
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner


async def test_host_path_volume_is_used_in_place(tmp_path: Path, client: Client) -> None:
    target = tmp_path / "host" / "data"
    vm = manager(tmp_path, client)
    paths = await vm.setup(pod([{"name": "h", "hostPath": {"path": str(target), "type": "DirectoryOrCreate"}}]))
    assert paths == {"h": str(target)} and target.is_dir()
    with pytest.raises(VolumeError, match="is not a file"):
        await vm.setup(pod([{"name": "h", "hostPath": {"path": str(target), "type": "File"}}]))


async def _bound_claim(client: Client, pv_spec: Obj, phase: str = "Bound") -> None:
    claim = await client.create(PVCS, "default", {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeName": "pv1"}})
    await client.create(PVS, "", {"metadata": {"name": "pv1"}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
        "claimRef": {"namespace": "default", "name": "data", "uid": claim["metadata"]["uid"]}, **pv_spec}})
    await client.update(PVCS, "default", {**claim, "status": {"phase": phase}}, subresource="status")


async def test_claim_bound_to_a_host_path_pv(tmp_path: Path, client: Client) -> None:
    target = tmp_path / "pv"
    await _bound_claim(client, {"hostPath": {"path": str(target), "type": "DirectoryOrCreate"}})
    vm = manager(tmp_path, client)
    p = pod([{"name": "d", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}}],
            [{"name": "app", "volumeMounts": [{"name": "d", "mountPath": "/data"}]}])
    paths = await vm.setup(p)
    assert paths == {"d": str(target)}
    [mount] = vm.container_mounts(p, p["spec"]["containers"][0], paths)
    assert (mount.host_path, mount.container_path, mount.read_only) == (str(target), "/data", True)


async def test_unbound_claim_is_refused(tmp_path: Path, client: Client) -> None:
    await _bound_claim(client, {"hostPath": {"path": str(tmp_path)}}, phase="Pending")
    with pytest.raises(VolumeError, match="error processing PVC default/data: PVC is not bound"):
        await manager(tmp_path, client).setup(pod([{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]))


@pytest.mark.parametrize(("host", "ok"), [pytest.param("node-1", True, id="this-node"),
                                          pytest.param("node-2", False, id="other-node")])
async def test_local_pv_must_be_on_this_node(tmp_path: Path, client: Client, host: str, ok: bool) -> None:
    (tmp_path / "disk").mkdir()
    await _bound_claim(client, {"local": {"path": str(tmp_path / "disk")}, "nodeAffinity": {"required": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [host]}]}]}}})
    setup = manager(tmp_path, client).setup(pod([{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]))
    if ok:
        assert await setup == {"d": str(tmp_path / "disk")}
    else:
        with pytest.raises(VolumeError) as info:
            await setup
        assert info.value.reason == "FailedAttachVolume" and "node affinity conflict" in info.value.message


# --- container mounts and subPath safety -------------------------------------------------------------------


async def test_container_mounts_resolve_sub_paths_and_flags(tmp_path: Path, client: Client) -> None:
    await client.create(CONFIGMAPS, "default", {"metadata": {"name": "cfg"}, "data": {"nginx.conf": "x"}})
    container = {"name": "app", "volumeMounts": [
        {"name": "e", "mountPath": "/work", "subPathExpr": "$(POD_NAME)/logs", "mountPropagation": "HostToContainer"},
        {"name": "cfg", "mountPath": "/etc/nginx/nginx.conf", "subPath": "nginx.conf"},
        {"name": "e", "mountPath": "/ro", "readOnly": True},
    ]}
    p = pod([{"name": "e", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}}],
            [container])
    vm = manager(tmp_path, client)
    paths = await vm.setup(p)
    work, conf, ro = vm.container_mounts(p, container, paths, env={"POD_NAME": "web"})
    assert work.host_path == os.path.join(paths["e"], "web", "logs") and os.path.isdir(work.host_path)
    assert (work.read_only, work.propagation) == (False, "host_to_container")
    assert Path(conf.host_path).read_text() == "x" and conf.read_only  # API volumes are always read-only
    assert conf.host_path.startswith(paths["cfg"] + "/..")  # pinned to the resolved version file
    assert (ro.host_path, ro.read_only, ro.propagation) == (paths["e"], True, "private")


@pytest.mark.parametrize(
    ("sub_path", "message"),
    [
        pytest.param("/etc", "error SubPath `/etc` must not be an absolute path", id="absolute"),
        pytest.param("a/../../etc", "unable to provision SubPath `a/../../etc`: must not contain '..'", id="backsteps"),
        pytest.param("escape", 'failed to prepare subPath for volumeMount "e" of container "app"', id="symlink-out"),
        pytest.param("escape/sub", 'failed to create subPath directory for volumeMount "e" of container "app"',
                     id="create-through-symlink"),
        pytest.param("inner/../escape", "must not contain '..'", id="backstep-to-symlink"),
    ],
)
async def test_sub_path_cannot_leave_the_volume(tmp_path: Path, client: Client, sub_path: str, message: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host data")
    container = {"name": "app", "volumeMounts": [{"name": "e", "mountPath": "/x", "subPath": sub_path}]}
    p = pod([{"name": "e", "emptyDir": {}}], [container])
    vm = manager(tmp_path, client)
    paths = await vm.setup(p)
    (Path(paths["e"]) / "inner").mkdir()
    os.symlink(str(outside), Path(paths["e"]) / "escape")  # what a hostile container can write into its emptyDir
    with pytest.raises(VolumeError) as info:
        vm.container_mounts(p, container, paths)
    assert info.value.reason == "CreateContainerConfigError" and message in info.value.message
    assert sorted(os.listdir(outside)) == ["secret"]


async def test_symlinks_inside_the_volume_are_followed(tmp_path: Path, client: Client) -> None:
    container = {"name": "app", "volumeMounts": [{"name": "e", "mountPath": "/x", "subPath": "link"}]}
    p = pod([{"name": "e", "emptyDir": {}}], [container])
    vm = manager(tmp_path, client)
    paths = await vm.setup(p)
    (Path(paths["e"]) / "real").mkdir()
    os.symlink("real", Path(paths["e"]) / "link")
    [mount] = vm.container_mounts(p, container, paths)
    assert mount.host_path == str(Path(paths["e"]) / "real")


async def test_a_mount_of_an_unknown_volume_is_refused(tmp_path: Path, client: Client) -> None:
    container = {"name": "app", "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}
    with pytest.raises(VolumeError, match='cannot find volume "nope" to mount into container "app"'):
        manager(tmp_path, client).container_mounts(pod([], [container]), container, {})


# --- teardown ----------------------------------------------------------------------------------------------


async def test_teardown_removes_pod_volumes_but_never_host_paths(tmp_path: Path, client: Client) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "keep").write_text("x")
    vm = manager(tmp_path, client)
    paths = await vm.setup(pod([{"name": "e", "emptyDir": {}}, {"name": "h", "hostPath": {"path": str(host)}}]))
    os.symlink(str(host), Path(paths["e"]) / "to-host")  # a link out must be removed, not followed
    await vm.teardown("pod-uid-1")
    assert not (tmp_path / "pods" / "pod-uid-1").exists()
    assert (host / "keep").read_text() == "x"
    await vm.teardown("pod-uid-1")  # idempotent


@needs_root
async def test_memory_volumes_are_tmpfs_with_the_size_limit_and_unmounted_on_teardown(tmp_path: Path,
                                                                                     client: Client) -> None:
    await client.create(SECRETS, "default", {"metadata": {"name": "s"}, "data": {"k": b64("v")}})
    container = {"name": "app", "volumeMounts": [{"name": "m", "mountPath": "/x", "subPath": "dir"}]}
    vm = manager(tmp_path, client, privileged=True)
    p = pod([{"name": "m", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
             {"name": "s", "secret": {"secretName": "s", "defaultMode": 420}}], [container])
    pod_dir = tmp_path / "pods" / "pod-uid-1"
    try:
        paths = await vm.setup(p)
        await vm.setup(p)  # no second mount
        mounts = dict(mounts_under(str(pod_dir)))
        assert mounts == {paths["m"]: "tmpfs", paths["s"]: "tmpfs"}
        fs = os.statvfs(paths["m"])
        assert fs.f_blocks * fs.f_frsize == 16 << 20
        [mount] = vm.container_mounts(p, container, paths)
        assert mount.host_path == str(pod_dir / "volume-subpaths" / "m" / "app" / "0")
        assert os.path.ismount(mount.host_path)
        (Path(paths["m"]) / "dir" / "f").write_text("via the volume")
        assert (Path(mount.host_path) / "f").read_text() == "via the volume"
        await vm.teardown("pod-uid-1")
        assert mounts_under(str(tmp_path)) == [] and not pod_dir.exists()
    finally:
        for point, _ in sorted(mounts_under(str(tmp_path)), key=lambda m: -len(m[0])):
            subprocess.run(["umount", "-l", point], check=False)  # this test's own mounts only


async def test_refresh_keeps_old_contents_when_the_object_disappears(tmp_path: Path, client: Client) -> None:
    cm = await client.create(CONFIGMAPS, "default", {"metadata": {"name": "cfg"}, "data": {"k": "1"}})
    vm = manager(tmp_path, client)
    paths = await vm.setup(pod([{"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}}]))
    await client.update(CONFIGMAPS, "default", {**cm, "data": {"k": "2"}})
    await vm.refresh()
    assert (Path(paths["cfg"]) / "k").read_text() == "2"
    await client.delete(CONFIGMAPS, "default", "cfg")
    await vm.refresh()  # upstream keeps serving the last contents; the failure is logged
    assert (Path(paths["cfg"]) / "k").read_text() == "2"


async def test_on_disk_empty_dir_size_limit_is_recorded(tmp_path: Path, client: Client) -> None:
    vm = manager(tmp_path, client)
    await vm.setup(pod([{"name": "e", "emptyDir": {"sizeLimit": "1Gi"}}, {"name": "f", "emptyDir": {}}]))
    assert vm.disk_size_limits("pod-uid-1") == {"e": 1 << 30}
    await vm.teardown("pod-uid-1")
    assert vm.disk_size_limits("pod-uid-1") == {}
