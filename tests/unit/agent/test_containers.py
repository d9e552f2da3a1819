"""Sandbox and container configs from pod specs, checked against upstream kubelet behaviour."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from skiff.agent.containers import (
    CONFIGMAPS,
    SECRETS,
    ContainerConfigError,
    DNSSettings,
    container_config,
    container_hash,
    container_resources,
    etc_hosts,
    expand,
    make_env,
    milli_cpu_to_quota,
    milli_cpu_to_shares,
    oom_score_adj,
    pod_dns,
    pod_full_name,
    pod_log_dir,
    qos_class,
    sandbox_config,
    security_context,
    termination_message_host_path,
    verify_run_as_non_root,
)
from skiff.agent.runtime.interface import (
    ANNOTATION_HASH,
    ANNOTATION_RESTART_COUNT,
    LABEL_CONTAINER_NAME,
    LABEL_POD_UID,
    ImageInfo,
    Mount,
    PortMapping,
)
from skiff.api.meta import Obj
from skiff.client.interface import SERVICES, Resource

GiB = 2**30


class Lookup:
    """An in-memory ObjectLookup."""

    def __init__(self, *objs: tuple[Resource, Obj]) -> None:
        self.objs = {(res, o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for res, o in objs}

    async def get(self, res: Resource, namespace: str, name: str) -> Obj | None:
        return self.objs.get((res, namespace, name))

    async def list(self, res: Resource, namespace: str) -> list[Obj]:
        return [o for (r, ns, _), o in self.objs.items() if r == res and ns == namespace]


def pod(containers: list[Obj] | None = None, ns: str = "default", **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": ns, "uid": "uid-1", "labels": {"app": "web", "tier": "front"},
                         "annotations": {"note": 'say "hi"'}},
            "spec": {"nodeName": "node-1", "serviceAccountName": "default",
                     "containers": containers or [{"name": "app", "image": "busybox"}], **spec}}


def cm(name: str, data: dict[str, str], ns: str = "default") -> tuple[Resource, Obj]:
    return CONFIGMAPS, {"metadata": {"name": name, "namespace": ns}, "data": data}


def secret(name: str, data: dict[str, str], ns: str = "default") -> tuple[Resource, Obj]:
    return SECRETS, {"metadata": {"name": name, "namespace": ns},
                     "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def svc(name: str, ip: str, ports: list[Obj], ns: str = "default") -> tuple[Resource, Obj]:
    return SERVICES, {"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip, "ports": ports}}


# ------------------------------------------------------------------------------------------------ expansion


@pytest.mark.parametrize("value, want", [
    pytest.param("$(A)-$(B)", "a-b", id="two-vars"),
    pytest.param("$$(A)", "$(A)", id="escaped"),
    pytest.param("$$$(A)", "$a", id="escaped-dollar-then-var"),
    pytest.param("$(MISSING)", "$(MISSING)", id="unknown-kept"),
    pytest.param("$(A", "$(A", id="unterminated"),
    pytest.param("cost $5", "cost $5", id="dollar-digit"),
    pytest.param("end$", "end$", id="trailing-dollar"),
    pytest.param("$()", "$()", id="empty-name"),
])
def test_expand_follows_upstream_expansion(value: str, want: str) -> None:
    assert expand(value, {"A": "a"}, {"B": "b"}) == want


# ------------------------------------------------------------------------------------------------ environment

ENV_CASES = [
    pytest.param(
        {"env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "$(X)-2"}, {"name": "Z", "value": "$$(X)"}]},
        [], [("X", "1"), ("Y", "1-2"), ("Z", "$(X)")], id="value-expansion-of-earlier-vars"),
    pytest.param(
        {"env": [{"name": "Y", "value": "$(X)"}, {"name": "X", "value": "1"}]},
        [], [("Y", "$(X)"), ("X", "1")], id="later-vars-not-expanded"),
    pytest.param(
        {"envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "P_"}], "env": [{"name": "Q", "value": "$(P_a)"}]},
        [cm("cfg", {"a": "1", "b": "2"})], [("P_a", "1"), ("P_b", "2"), ("Q", "1")], id="envfrom-prefix"),
    pytest.param(
        {"envFrom": [{"secretRef": {"name": "s"}}]},
        [secret("s", {"user": "admin", "pass": "p@ss"})], [("user", "admin"), ("pass", "p@ss")], id="envfrom-secret"),
    pytest.param(
        {"envFrom": [{"configMapRef": {"name": "cfg"}}], "env": [{"name": "a", "value": "override"}]},
        [cm("cfg", {"a": "1"})], [("a", "override")], id="env-overrides-envfrom"),
    pytest.param(
        {"envFrom": [{"configMapRef": {"name": "nope", "optional": True}}]}, [], [], id="envfrom-optional-missing"),
    pytest.param(
        {"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
                 {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
        [cm("cfg", {"k": "from-cm"}), secret("s", {"k": "from-secret"})],
        [("A", "from-cm"), ("B", "from-secret")], id="key-refs"),
    pytest.param(
        {"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nokey", "optional": True}}},
                 {"name": "B", "valueFrom": {"secretKeyRef": {"name": "nos", "key": "k", "optional": True}}}]},
        [cm("cfg", {"k": "v"})], [], id="optional-key-refs-skipped"),
    pytest.param(
        {"env": [{"name": n, "valueFrom": {"fieldRef": {"fieldPath": p}}} for n, p in [
            ("NAME", "metadata.name"), ("NS", "metadata.namespace"), ("UID", "metadata.uid"),
            ("APP", "metadata.labels['app']"), ("NOTE", "metadata.annotations['note']"),
            ("NODE", "spec.nodeName"), ("SA", "spec.serviceAccountName"), ("HOST", "status.hostIP"),
            ("HOSTS", "status.hostIPs"), ("IP", "status.podIP"), ("IPS", "status.podIPs"),
            ("LABELS", "metadata.labels")]]},
        [], [("NAME", "web"), ("NS", "default"), ("UID", "uid-1"), ("APP", "web"), ("NOTE", 'say "hi"'),
             ("NODE", "node-1"), ("SA", "default"), ("HOST", "192.168.1.5"), ("HOSTS", "192.168.1.5"),
             ("IP", "10.88.0.7"), ("IPS", "10.88.0.7,fd00::7"), ("LABELS", 'app="web"\ntier="front"')],
        id="field-refs"),
    pytest.param(
        {"resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
         "env": [{"name": n, "valueFrom": {"resourceFieldRef": r}} for n, r in [
             ("CPU_LIMIT", {"resource": "limits.cpu"}),
             ("CPU_LIMIT_M", {"resource": "limits.cpu", "divisor": "1m"}),
             ("CPU_REQ_M", {"resource": "requests.cpu", "divisor": "1m"}),
             ("MEM_LIMIT_MI", {"resource": "limits.memory", "divisor": "1Mi"}),
             ("MEM_REQ", {"resource": "requests.memory"}),
             ("EPH_LIMIT_GI", {"resource": "limits.ephemeral-storage", "divisor": "1Gi"})]]},
        [], [("CPU_LIMIT", "1"), ("CPU_LIMIT_M", "500"), ("CPU_REQ_M", "250"), ("MEM_LIMIT_MI", "128"),
             ("MEM_REQ", "0"), ("EPH_LIMIT_GI", "20")],
        id="resource-field-refs-with-divisor-and-allocatable-default"),
]


@pytest.mark.parametrize("container, objs, want", ENV_CASES)
async def test_environment(container: Obj, objs: list[tuple[Resource, Obj]], want: list[tuple[str, str]]) -> None:
    c = {"name": "app", "image": "busybox", **container}
    env = await make_env(pod([c], enableServiceLinks=False), c, Lookup(*objs), pod_ip="10.88.0.7",
                         pod_ips=["10.88.0.7", "fd00::7"], host_ip="192.168.1.5",
                         allocatable={"cpu": "4", "memory": "8Gi", "ephemeral-storage": "20Gi"})
    assert env == want


@pytest.mark.parametrize("container, objs, message", [
    pytest.param({"envFrom": [{"configMapRef": {"name": "cfg"}}]}, [], 'configmap "cfg" not found', id="envfrom-cm"),
    pytest.param({"envFrom": [{"secretRef": {"name": "s"}}]}, [], 'secret "s" not found', id="envfrom-secret"),
    pytest.param({"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]}, [],
                 'configmap "cfg" not found', id="keyref-cm"),
    pytest.param({"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]},
                 [cm("cfg", {})], "couldn't find key k in ConfigMap default/cfg", id="keyref-cm-key"),
    pytest.param({"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
                 [secret("s", {})], "couldn't find key k in Secret default/s", id="keyref-secret-key"),
    pytest.param({"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.hostname"}}}]}, [],
                 "unsupported fieldPath: spec.hostname", id="bad-field-path"),
])
async def test_missing_sources_are_config_errors(container: Obj, objs: list[tuple[Resource, Obj]],
                                                 message: str) -> None:
    c = {"name": "app", "image": "busybox", **container}
    with pytest.raises(ContainerConfigError) as e:
        await make_env(pod([c]), c, Lookup(*objs), pod_ip="", pod_ips=[], host_ip="")
    assert e.value.reason == "CreateContainerConfigError"
    assert e.value.message == message


async def test_invalid_envfrom_keys_are_skipped_with_a_warning() -> None:
    c = {"name": "app", "image": "busybox", "envFrom": [{"configMapRef": {"name": "cfg"}}]}
    warnings: list[tuple[str, str]] = []
    env = await make_env(pod([c]), c, Lookup(cm("cfg", {"ok": "1", "1bad": "2", "a=b": "3"})), pod_ip="",
                         pod_ips=[], host_ip="", warn=lambda r, m: warnings.append((r, m)))
    assert env == [("ok", "1")]
    assert warnings == [("InvalidEnvironmentVariableNames",
                         "Keys [1bad, a=b] from the EnvFrom configMap default/cfg were skipped since they are "
                         "considered invalid environment variable names.")]


KUBERNETES_SVC = svc("kubernetes", "10.96.0.1", [{"name": "https", "port": 443, "protocol": "TCP"}])
REDIS_SVC = svc("redis-master", "10.96.0.20", [{"port": 6379}, {"name": "metrics", "port": 9121, "protocol": "TCP"}],
                ns="shop")
HEADLESS_SVC = svc("headless", "None", [{"port": 80}], ns="shop")


@pytest.mark.parametrize("links, want_redis", [
    pytest.param(None, True, id="links-default-on"),
    pytest.param(False, False, id="links-off-keeps-kubernetes"),
])
async def test_service_link_variables(links: bool | None, want_redis: bool) -> None:
    c = {"name": "app", "image": "busybox", "env": [{"name": "URL", "value": "$(KUBERNETES_SERVICE_HOST):1"}]}
    spec = {} if links is None else {"enableServiceLinks": links}
    env = dict(await make_env(pod([c], ns="shop", **spec), c, Lookup(KUBERNETES_SVC, REDIS_SVC, HEADLESS_SVC),
                              pod_ip="", pod_ips=[], host_ip=""))
    assert env["URL"] == "10.96.0.1:1"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT"] == "tcp://10.96.0.1:443"
    assert env["KUBERNETES_PORT_443_TCP_ADDR"] == "10.96.0.1"
    assert not any(k.startswith("HEADLESS") for k in env)
    redis = {k: v for k, v in env.items() if k.startswith("REDIS_MASTER")}
    if not want_redis:
        assert redis == {}
        return
    assert redis == {
        "REDIS_MASTER_SERVICE_HOST": "10.96.0.20", "REDIS_MASTER_SERVICE_PORT": "6379",
        "REDIS_MASTER_SERVICE_PORT_METRICS": "9121", "REDIS_MASTER_PORT": "tcp://10.96.0.20:6379",
        "REDIS_MASTER_PORT_6379_TCP": "tcp://10.96.0.20:6379", "REDIS_MASTER_PORT_6379_TCP_PROTO": "tcp",
        "REDIS_MASTER_PORT_6379_TCP_PORT": "6379", "REDIS_MASTER_PORT_6379_TCP_ADDR": "10.96.0.20",
        "REDIS_MASTER_PORT_9121_TCP": "tcp://10.96.0.20:9121", "REDIS_MASTER_PORT_9121_TCP_PROTO": "tcp",
        "REDIS_MASTER_PORT_9121_TCP_PORT": "9121", "REDIS_MASTER_PORT_9121_TCP_ADDR": "10.96.0.20",
    }


async def test_explicit_env_wins_over_service_links() -> None:
    c = {"name": "app", "image": "busybox", "env": [{"name": "KUBERNETES_SERVICE_HOST", "value": "mine"}]}
    env = await make_env(pod([c]), c, Lookup(KUBERNETES_SVC), pod_ip="", pod_ips=[], host_ip="")
    assert [v for k, v in env if k == "KUBERNETES_SERVICE_HOST"] == ["mine"]


# ------------------------------------------------------------------------------------------------ DNS

HOST_RESOLV = "# host file\nnameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch corp.example. lab.example\noptions edns0 ndots:2\n"


@pytest.fixture
def resolv(tmp_path: Path) -> Path:
    p = tmp_path / "resolv.conf"
    p.write_text(HOST_RESOLV)
    return p


@pytest.mark.parametrize("spec, cluster_dns, want, warned", [
    pytest.param({}, ["10.96.0.10"],
                 (["10.96.0.10"], ["default.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example",
                                   "lab.example"], ["ndots:5"]), [], id="cluster-first"),
    pytest.param({}, [], (["192.168.1.1", "192.168.1.2"], ["corp.example", "lab.example"], ["edns0", "ndots:2"]),
                 ["MissingClusterDNS"], id="cluster-first-falls-back-without-cluster-dns"),
    pytest.param({"hostNetwork": True}, ["10.96.0.10"],
                 (["192.168.1.1", "192.168.1.2"], ["corp.example", "lab.example"], ["edns0", "ndots:2"]), [],
                 id="cluster-first-on-host-network-is-default"),
    pytest.param({"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"}, ["10.96.0.10"],
                 (["10.96.0.10"], ["default.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example",
                                   "lab.example"], ["ndots:5"]), [], id="cluster-first-with-host-net"),
    pytest.param({"dnsPolicy": "Default"}, ["10.96.0.10"],
                 (["192.168.1.1", "192.168.1.2"], ["corp.example", "lab.example"], ["edns0", "ndots:2"]), [],
                 id="default"),
    pytest.param({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["a.example"],
                                                     "options": [{"name": "ndots", "value": "1"}, {"name": "rotate"}]}},
                 ["10.96.0.10"], (["1.1.1.1"], ["a.example"], ["ndots:1", "rotate"]), [], id="none-with-dns-config"),
    pytest.param({"dnsConfig": {"nameservers": ["10.96.0.10", "8.8.8.8"], "searches": ["cluster.local", "x.example"],
                                "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}},
                 ["10.96.0.10"],
                 (["10.96.0.10", "8.8.8.8"], ["default.svc.cluster.local", "svc.cluster.local", "cluster.local",
                                              "corp.example", "lab.example", "x.example"], ["ndots:2", "edns0"]),
                 [], id="dns-config-appended-deduplicated-options-merged"),
    pytest.param({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"]}},
                 [], (["1.1.1.1", "1.1.1.2", "1.1.1.3"], [], []), ["DNSConfigForming"], id="three-nameservers-max"),
    pytest.param({"dnsPolicy": "None", "dnsConfig": {"searches": [f"d{i}.example" for i in range(40)]}},
                 [], ([], [f"d{i}.example" for i in range(32)], []), ["DNSConfigForming"], id="32-searches-max"),
])
def test_pod_dns(resolv: Path, spec: Obj, cluster_dns: list[str], want: tuple[list[str], list[str], list[str]],
                 warned: list[str]) -> None:
    warnings: list[tuple[str, str]] = []
    cfg = pod_dns(pod(**spec), DNSSettings(cluster_dns=cluster_dns, resolv_conf=resolv),
                  lambda r, m: warnings.append((r, m)))
    assert (cfg.servers, cfg.searches, cfg.options) == want
    assert [r for r, _ in warnings] == warned


def test_missing_cluster_dns_warning_text(resolv: Path) -> None:
    warnings: list[str] = []
    pod_dns(pod(), DNSSettings(resolv_conf=resolv), lambda r, m: warnings.append(m))
    assert warnings == ['pod: "web_default(uid-1)". kubelet does not have ClusterDNS IP configured and cannot create '
                        'Pod using "ClusterFirst" policy. Falling back to "Default" policy.']


# ------------------------------------------------------------------------------------------------ resources


@pytest.mark.parametrize("milli, shares, quota", [
    pytest.param(0, 2, 0, id="none"),
    pytest.param(1, 2, 1000, id="tiny-clamped"),
    pytest.param(250, 256, 25000, id="quarter"),
    pytest.param(1000, 1024, 100000, id="one-core"),
    pytest.param(1500, 1536, 150000, id="one-and-a-half"),
    pytest.param(300_000, 262144, 30_000_000, id="max-shares"),
])
def test_cpu_math(milli: int, shares: int, quota: int) -> None:
    assert milli_cpu_to_shares(milli) == shares
    assert milli_cpu_to_quota(milli) == quota


def res(requests: dict[str, str] | None = None, limits: dict[str, str] | None = None) -> Obj:
    return {"name": "app", "image": "busybox", "resources": {"requests": requests or {}, "limits": limits or {}}}


@pytest.mark.parametrize("container, shares, quota, memory", [
    pytest.param(res(), 2, 0, 0, id="best-effort"),
    pytest.param(res({"cpu": "250m"}), 256, 0, 0, id="request-only"),
    pytest.param(res(limits={"cpu": "500m", "memory": "64Mi"}), 512, 50000, 64 * 2**20, id="limit-only-shares-from-limit"),
    pytest.param(res({"cpu": "100m"}, {"cpu": "2"}), 102, 200000, 0, id="request-and-limit"),
    pytest.param(res({"cpu": "0.1m"}, {"memory": "1G"}), 2, 0, 10**9, id="rounded-up-millicores"),
])
def test_container_resources(container: Obj, shares: int, quota: int, memory: int) -> None:
    r = container_resources(pod([container]), container, 4 * GiB)
    assert (r.cpu_shares, r.cpu_quota, r.cpu_period, r.memory_limit_bytes) == (shares, quota, 100_000, memory)


@pytest.mark.parametrize("containers, qos, adj", [
    pytest.param([res()], "BestEffort", 1000, id="best-effort"),
    pytest.param([res(limits={"cpu": "1", "memory": "1Gi"})], "Guaranteed", -997, id="guaranteed-by-limits"),
    pytest.param([res({"cpu": "1", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"})], "Guaranteed", -997,
                 id="guaranteed-equal"),
    pytest.param([res({"memory": "1Gi"})], "Burstable", 750, id="burstable-quarter-of-memory"),
    pytest.param([res({"cpu": "100m"})], "Burstable", 999, id="burstable-no-memory-request"),
    pytest.param([res({"memory": "4Gi"})], "Burstable", 3, id="burstable-all-memory-floor"),
    pytest.param([res({"cpu": "1", "memory": "1Gi"}, {"cpu": "2", "memory": "1Gi"})], "Burstable", 750,
                 id="burstable-unequal"),
    pytest.param([res(limits={"cpu": "1", "memory": "1Gi"}), res()], "Burstable", 750,
                 id="burstable-one-of-two-containers"),
])
def test_qos_and_oom_score(containers: list[Obj], qos: str, adj: int) -> None:
    p = pod(containers)
    assert qos_class(p) == qos
    assert oom_score_adj(p, containers[0], 4 * GiB) == adj


def test_node_critical_pods_get_the_guaranteed_score() -> None:
    c = res({"memory": "1Gi"})
    p = pod([c], priorityClassName="system-node-critical", priority=2_000_001_000)
    assert oom_score_adj(p, c, 4 * GiB) == -997


# ------------------------------------------------------------------------------------------------ security

ROOT = ImageInfo(id="sha256:1", uid=0)
NOUSER = ImageInfo(id="sha256:1")
NONROOT = ImageInfo(id="sha256:2", uid=65532)
NAMED = ImageInfo(id="sha256:3", username="nginx")
WHERE = '(pod: "web_default(uid-1)", container: app)'


@pytest.mark.parametrize("pod_sc, container_sc, image, message", [
    pytest.param({"runAsNonRoot": True}, {}, ROOT,
                 f"container has runAsNonRoot and image will run as root {WHERE}", id="image-root"),
    pytest.param({}, {"runAsNonRoot": True}, NOUSER,
                 f"container has runAsNonRoot and image will run as root {WHERE}", id="image-without-user-is-root"),
    pytest.param({"runAsNonRoot": True}, {}, NAMED,
                 f"container has runAsNonRoot and image has non-numeric user (nginx), cannot verify user is "
                 f"non-root {WHERE}", id="image-named-user"),
    pytest.param({"runAsNonRoot": True, "runAsUser": 1000}, {"runAsUser": 0}, NONROOT,
                 f"container's runAsUser breaks non-root policy {WHERE}", id="explicit-uid-0"),
    pytest.param({"runAsNonRoot": True}, {}, NONROOT, None, id="image-nonroot-ok"),
    pytest.param({"runAsNonRoot": True}, {"runAsUser": 1000}, ROOT, None, id="explicit-uid-overrides-image"),
    pytest.param({"runAsNonRoot": True}, {"runAsNonRoot": False}, ROOT, None, id="container-allows-root"),
    pytest.param({}, {}, ROOT, None, id="no-policy"),
])
def test_run_as_non_root(pod_sc: Obj, container_sc: Obj, image: ImageInfo, message: str | None) -> None:
    c = {"name": "app", "image": "x", "securityContext": container_sc}
    p = pod([c], securityContext=pod_sc)
    if message is None:
        verify_run_as_non_root(p, c, image)
        return
    with pytest.raises(ContainerConfigError) as e:
        verify_run_as_non_root(p, c, image)
    assert (e.value.reason, e.value.message) == ("CreateContainerConfigError", message)


def test_security_context_merges_pod_and_container() -> None:
    c = {"name": "app", "image": "x", "securityContext": {
        "runAsGroup": 3000, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}, "seccompProfile": {"type": "Unconfined"}}}
    p = pod([c], securityContext={"runAsUser": 1000, "runAsGroup": 2000, "fsGroup": 4000, "supplementalGroups": [5000],
                                  "seccompProfile": {"type": "RuntimeDefault"}})
    sc = security_context(p, c, NAMED)
    assert (sc.run_as_user, sc.run_as_group, sc.run_as_username) == (1000, 3000, "")
    assert sc.supplemental_groups == [4000, 5000]
    assert sc.read_only_rootfs and sc.no_new_privs and not sc.privileged
    assert (sc.add_capabilities, sc.drop_capabilities) == (["NET_ADMIN"], ["ALL"])
    assert (sc.seccomp_runtime_default, sc.seccomp_unconfined) == (False, True)


@pytest.mark.parametrize("image, uid, username", [
    pytest.param(NONROOT, 65532, "", id="numeric-image-user"),
    pytest.param(NAMED, None, "nginx", id="named-image-user"),
])
def test_image_user_applies_when_unset(image: ImageInfo, uid: int | None, username: str) -> None:
    c = {"name": "app", "image": "x"}
    sc = security_context(pod([c]), c, image)
    assert (sc.run_as_user, sc.run_as_username, sc.no_new_privs) == (uid, username, False)


# ------------------------------------------------------------------------------------------------ hash, hosts, sandbox


@pytest.mark.parametrize("change, same", [
    pytest.param({"env": [{"name": "A", "value": "1"}]}, True, id="env-change-keeps-hash"),
    pytest.param({"resources": {"limits": {"cpu": "1"}}}, True, id="resources-change-keeps-hash"),
    pytest.param({"image": "nginx:1.27"}, False, id="image-change"),
    pytest.param({"name": "other"}, False, id="name-change"),
])
def test_container_hash(change: Obj, same: bool) -> None:
    base = {"name": "app", "image": "nginx:1.25"}
    h = container_hash(base)
    assert h == container_hash(dict(base))
    assert int(h, 16) < 2**32
    assert (container_hash({**base, **change}) == h) is same


@pytest.mark.parametrize("spec, ips, want", [
    pytest.param({}, ["10.88.0.7"], "10.88.0.7\tweb\n", id="plain"),
    pytest.param({"hostname": "db-0", "subdomain": "db"}, ["10.88.0.7", "fd00::7"],
                 "10.88.0.7\tdb-0.db.default.svc.cluster.local\tdb-0\nfd00::7\tdb-0.db.default.svc.cluster.local\tdb-0\n",
                 id="subdomain-and-dual-stack"),
    pytest.param({"hostAliases": [{"ip": "1.2.3.4", "hostnames": ["foo.local", "bar.local"]}]}, ["10.88.0.7"],
                 "10.88.0.7\tweb\n\n# Entries added by HostAliases.\n1.2.3.4\tfoo.local\tbar.local\n", id="aliases"),
])
def test_etc_hosts(spec: Obj, ips: list[str], want: str) -> None:
    head = ("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
    assert etc_hosts(pod(**spec), ips) == head + want


def test_etc_hosts_on_host_network_is_the_nodes_file(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n")
    text = etc_hosts(pod(hostNetwork=True, hostAliases=[{"ip": "1.2.3.4", "hostnames": ["x"]}]), ["192.168.1.5"],
                     host_file=hosts)
    assert text == ("# Kubernetes-managed hosts file (host network).\n127.0.0.1\tlocalhost\n"
                    "\n# Entries added by HostAliases.\n1.2.3.4\tx\n")


@pytest.mark.parametrize("spec, hostname, cgroup", [
    pytest.param({}, "web", "/skiff/besteffort/poduid-1", id="plain-besteffort"),
    pytest.param({"hostname": "db-0", "subdomain": "db", "setHostnameAsFQDN": True},
                 "db-0.db.default.svc.cluster.local", "/skiff/besteffort/poduid-1", id="fqdn"),
    pytest.param({"hostNetwork": True}, "node-1", "/skiff/besteffort/poduid-1", id="host-network-node-name"),
    pytest.param({"containers": [res(limits={"cpu": "1", "memory": "1Gi"})]}, "web", "/skiff/poduid-1",
                 id="guaranteed"),
    pytest.param({"containers": [res({"cpu": "1"})]}, "web", "/skiff/burstable/poduid-1", id="burstable"),
])
def test_sandbox_identity(resolv: Path, spec: Obj, hostname: str, cgroup: str) -> None:
    cfg = sandbox_config(pod(**spec), node_name="node-1", log_root=Path("/data/logs/pods"),
                         dns=DNSSettings(cluster_dns=["10.96.0.10"], resolv_conf=resolv), attempt=2)
    assert (cfg.hostname, cfg.cgroup_parent, cfg.attempt) == (hostname, cgroup, 2)
    assert cfg.log_directory == "/data/logs/pods/default_web_uid-1"


def test_sandbox_config_carries_ports_labels_and_pod_security(resolv: Path) -> None:
    c = {"name": "app", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080},
                                               {"containerPort": 53, "hostPort": 5353, "protocol": "UDP",
                                                "hostIP": "127.0.0.1"},
                                               {"containerPort": 9090}]}
    p = pod([c], hostPID=True, securityContext={"runAsUser": 1000, "runAsGroup": 1000, "supplementalGroups": [7],
                                                "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}],
                                                "seccompProfile": {"type": "RuntimeDefault"}})
    cfg = sandbox_config(p, node_name="n", log_root=Path("/l"), dns=DNSSettings(resolv_conf=resolv), attempt=0)
    assert cfg.port_mappings == [PortMapping(80, 8080, "", "TCP"), PortMapping(53, 5353, "127.0.0.1", "UDP")]
    assert cfg.labels == {"app": "web", "tier": "front", "io.kubernetes.pod.name": "web",
                          "io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": "uid-1"}
    assert cfg.annotations == {"note": 'say "hi"'}
    assert (cfg.host_pid, cfg.host_network, cfg.host_ipc) == (True, False, False)
    assert cfg.sysctls == {"net.core.somaxconn": "1024"}
    assert (cfg.run_as_user, cfg.run_as_group, cfg.supplemental_groups, cfg.seccomp_runtime_default) == \
        (1000, 1000, [7], True)


def test_names() -> None:
    assert pod_full_name(pod()) == "web_default(uid-1)"
    assert pod_log_dir(Path("/d/logs/pods"), pod()) == Path("/d/logs/pods/default_web_uid-1")


# ------------------------------------------------------------------------------------------------ container config


async def test_container_config_end_to_end(tmp_path: Path) -> None:
    c = {"name": "app", "image": "skiff.local/test/shell:1", "command": ["sh", "-c"],
         "args": ["echo $(GREETING) $$(HOME) $(UNSET)"], "workingDir": "/work", "tty": True, "stdin": True,
         "env": [{"name": "GREETING", "value": "hello"}],
         "terminationMessagePath": "/tmp/term",
         "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "sleep 1"]}}},
         "resources": {"limits": {"cpu": "1", "memory": "256Mi"}}}
    p = pod([c], terminationGracePeriodSeconds=45)
    vol = Mount(host_path="/data/pods/uid-1/volumes/x", container_path="/data")
    cfg = await container_config(p, c, restart_count=3, image=NONROOT, mounts=[vol], lookup=Lookup(), pod_ip="10.88.0.7",
                                 pod_ips=["10.88.0.7"], host_ip="192.168.1.5", node_name="node-1",
                                 etc_hosts_path="/data/pods/uid-1/etc-hosts", pod_dir=tmp_path / "uid-1",
                                 memory_capacity=4 * GiB)
    assert (cfg.name, cfg.image, cfg.attempt, cfg.log_path) == ("app", "skiff.local/test/shell:1", 3, "app/3.log")
    assert cfg.command == ["sh", "-c"] and cfg.args == ["echo hello $(HOME) $(UNSET)"]
    assert (cfg.working_dir, cfg.tty, cfg.stdin) == ("/work", True, True)
    term = termination_message_host_path(tmp_path / "uid-1", "app", 3)
    assert term.exists() and (term.stat().st_mode & 0o777) == 0o666
    assert cfg.mounts == [vol, Mount("/data/pods/uid-1/etc-hosts", "/etc/hosts"), Mount(str(term), "/tmp/term")]
    assert cfg.labels[LABEL_CONTAINER_NAME] == "app" and cfg.labels[LABEL_POD_UID] == "uid-1"
    assert cfg.annotations[ANNOTATION_RESTART_COUNT] == "3"
    assert cfg.annotations[ANNOTATION_HASH] == container_hash(c)
    assert cfg.annotations["io.kubernetes.pod.terminationGracePeriod"] == "45"
    assert cfg.annotations["io.kubernetes.container.terminationMessagePath"] == "/tmp/term"
    assert '"sleep 1"' in cfg.annotations["io.kubernetes.container.preStopHandler"]
    assert (cfg.resources.cpu_quota, cfg.resources.memory_limit_bytes) == (100_000, 256 * 2**20)
    assert cfg.security.run_as_user == 65532


async def test_container_mounting_etc_hosts_itself_keeps_its_own() -> None:
    c = {"name": "app", "image": "busybox"}
    own = Mount(host_path="/somewhere/hosts", container_path="/etc/hosts")
    cfg = await container_config(pod([c]), c, restart_count=0, image=ROOT, mounts=[own], lookup=Lookup(), pod_ip="",
                                 pod_ips=[], host_ip="", node_name="n", etc_hosts_path="/managed", memory_capacity=GiB)
    assert cfg.mounts == [own]


@pytest.mark.parametrize("image", [
    pytest.param("Nginx:1", id="uppercase-name"),
    pytest.param("", id="empty"),
    pytest.param("nginx:", id="empty-tag"),
    pytest.param("a b", id="space"),
])
async def test_invalid_image_names(image: str) -> None:
    c = {"name": "app", "image": image}
    with pytest.raises(ContainerConfigError) as e:
        await container_config(pod([c]), c, restart_count=0, image=ROOT, mounts=[], lookup=Lookup(), pod_ip="",
                               pod_ips=[], host_ip="", node_name="n", etc_hosts_path=None, memory_capacity=GiB)
    assert e.value.reason == "InvalidImageName"


@pytest.mark.parametrize("image", ["busybox", "nginx:1.27", "localhost:5000/team/app:v1",
                                   "registry.k8s.io/pause:3.9", "skiff.local/test/shell:1",
                                   "alpine@sha256:" + "a" * 64])
async def test_valid_image_names(image: str) -> None:
    c = {"name": "app", "image": image}
    cfg = await container_config(pod([c]), c, restart_count=0, image=ROOT, mounts=[], lookup=Lookup(), pod_ip="",
                                 pod_ips=[], host_ip="", node_name="n", etc_hosts_path=None, memory_capacity=GiB)
    assert cfg.image == image


@pytest.mark.parametrize(
    ("spec", "privileged", "shared_pid"),
    [
        pytest.param({"containers": [{"name": "a", "image": "x"}]}, False, False, id="plain"),
        pytest.param({"containers": [{"name": "a", "image": "x", "securityContext": {"privileged": True}}]},
                     True, False, id="privileged-container"),
        pytest.param({"initContainers": [{"name": "i", "image": "x", "securityContext": {"privileged": True}}],
                      "containers": [{"name": "a", "image": "x"}]}, True, False, id="privileged-init"),
        pytest.param({"shareProcessNamespace": True, "containers": [{"name": "a", "image": "x"}]},
                     False, True, id="shared-pid"),
    ],
)
def test_sandbox_is_privileged_when_any_container_is(spec: dict, privileged: bool, shared_pid: bool) -> None:  # type: ignore[type-arg]
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": spec}
    cfg = sandbox_config(pod, node_name="n", log_root=Path("/logs"), dns=DNSSettings(), attempt=0)
    assert (cfg.privileged, cfg.share_process_namespace) == (privileged, shared_pid)
