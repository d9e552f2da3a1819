"""The other core/v1 kinds: discovery facts, defaults, validation messages, selectable fields, rows."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.core import STRATEGIES
from skiff.apiserver.registry.core.configmaps import ConfigMapStrategy
from skiff.apiserver.registry.core.endpoints import EndpointsStrategy, format_endpoints
from skiff.apiserver.registry.core.events import EventStrategy
from skiff.apiserver.registry.core.limitranges import LimitRangeStrategy
from skiff.apiserver.registry.core.namespaces import NamespaceStrategy
from skiff.apiserver.registry.core.nodes import NodeStrategy
from skiff.apiserver.registry.core.persistentvolumeclaims import PersistentVolumeClaimStrategy
from skiff.apiserver.registry.core.persistentvolumes import PersistentVolumeStrategy
from skiff.apiserver.registry.core.replicationcontrollers import ReplicationControllerStrategy
from skiff.apiserver.registry.core.resourcequotas import ResourceQuotaStrategy
from skiff.apiserver.registry.core.secrets import SecretStrategy
from skiff.apiserver.registry.core.serviceaccounts import ServiceAccountStrategy
from skiff.apiserver.registry.strategy import Strategy

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
CREATED = "2026-01-01T11:59:30Z"  # 30s before NOW
BY_PLURAL = {s.info.plural: s for s in STRATEGIES}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def texts(errs: list[Any]) -> list[str]:
    return [e.text() for e in errs]


# --- discovery -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plural", "kind", "namespaced", "short", "categories"),
    [
        pytest.param("pods", "Pod", True, ("po",), ("all",), id="pods"),
        pytest.param("services", "Service", True, ("svc",), ("all",), id="services"),
        pytest.param("replicationcontrollers", "ReplicationController", True, ("rc",), ("all",), id="rc"),
        pytest.param("namespaces", "Namespace", False, ("ns",), (), id="namespaces"),
        pytest.param("nodes", "Node", False, ("no",), (), id="nodes"),
        pytest.param("endpoints", "Endpoints", True, ("ep",), (), id="endpoints"),
        pytest.param("events", "Event", True, ("ev",), (), id="events"),
        pytest.param("configmaps", "ConfigMap", True, ("cm",), (), id="configmaps"),
        pytest.param("secrets", "Secret", True, (), (), id="secrets"),
        pytest.param("serviceaccounts", "ServiceAccount", True, ("sa",), (), id="serviceaccounts"),
        pytest.param("persistentvolumes", "PersistentVolume", False, ("pv",), (), id="pv"),
        pytest.param("persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",), (), id="pvc"),
        pytest.param("resourcequotas", "ResourceQuota", True, ("quota",), (), id="quota"),
        pytest.param("limitranges", "LimitRange", True, ("limits",), (), id="limits"),
    ],
)
def test_resource_info(
    plural: str, kind: str, namespaced: bool, short: tuple[str, ...], categories: tuple[str, ...]
) -> None:
    info = BY_PLURAL[plural].info
    assert (info.group, info.version, info.kind, info.namespaced) == ("", "v1", kind, namespaced)
    assert info.short_names == short and info.categories == categories


@pytest.mark.parametrize(
    ("plural", "sub", "gvk", "verbs"),
    [
        pytest.param("pods", "eviction", ("policy", "v1", "Eviction"), ("create",), id="pods-eviction"),
        pytest.param("pods", "binding", ("", "v1", "Binding"), ("create",), id="pods-binding"),
        pytest.param("pods", "log", ("", "v1", "Pod"), ("get",), id="pods-log"),
        pytest.param("pods", "exec", ("", "v1", "PodExecOptions"), ("create", "get"), id="pods-exec"),
        pytest.param("pods", "status", ("", "v1", "Pod"), ("get", "patch", "update"), id="pods-status"),
        pytest.param(
            "replicationcontrollers",
            "scale",
            ("autoscaling", "v1", "Scale"),
            ("get", "patch", "update"),
            id="rc-scale",
        ),
        pytest.param("namespaces", "finalize", ("", "v1", "Namespace"), ("update",), id="ns-finalize"),
        pytest.param(
            "serviceaccounts",
            "token",
            ("authentication.k8s.io", "v1", "TokenRequest"),
            ("create",),
            id="sa-token",
        ),
        pytest.param(
            "nodes",
            "proxy",
            ("", "v1", "NodeProxyOptions"),
            ("create", "delete", "get", "patch", "update"),
            id="nodes-proxy",
        ),
    ],
)
def test_subresources(plural: str, sub: str, gvk: tuple[str, str, str], verbs: tuple[str, ...]) -> None:
    s = BY_PLURAL[plural].info.subresource(sub)
    assert s is not None
    assert (s.group, s.version, s.kind, s.verbs) == (*gvk, verbs)


def test_namespace_verbs_have_no_deletecollection() -> None:
    assert "deletecollection" not in BY_PLURAL["namespaces"].info.verbs
    assert "deletecollection" in BY_PLURAL["events"].info.verbs


@pytest.mark.parametrize("strategy", [pytest.param(s, id=s.info.plural) for s in STRATEGIES])
def test_row_has_one_cell_per_column(strategy: Strategy) -> None:
    obj: dict[str, Any] = {
        "metadata": {"name": "x", "namespace": "default", "creationTimestamp": CREATED},
        "spec": {},
        "status": {},
    }
    assert len(strategy.row(obj, NOW)) == len(strategy.columns())
    assert all(c.description for c in strategy.columns()), [
        c.name for c in strategy.columns() if not c.description
    ]


# --- namespaces ------------------------------------------------------------------------------------------


def test_namespace_create() -> None:
    s = NamespaceStrategy()
    ns: dict[str, Any] = {"metadata": {"name": "team"}, "status": {"phase": "Terminating"}}
    s.prepare_for_create(ns)
    s.defaults(ns)
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
    assert s.fields(ns) == {"status.phase": "Active"}
    assert s.row({**ns, "metadata": {**ns["metadata"], "creationTimestamp": CREATED}}, NOW) == [
        "team",
        "Active",
        "30s",
    ]


def test_namespace_update_keeps_finalizers_and_finalize_changes_them() -> None:
    s = NamespaceStrategy()
    old = {
        "metadata": {"name": "team"},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }
    new: dict[str, Any] = {
        "metadata": {"name": "team"},
        "spec": {"finalizers": []},
        "status": {"phase": "Terminating"},
    }
    s.prepare_for_update(new, old)
    assert new["spec"]["finalizers"] == ["kubernetes"] and new["status"] == {"phase": "Active"}
    fin = {"metadata": {"name": "other"}, "spec": {"finalizers": []}}
    s.prepare_for_finalize_update(fin, old)
    assert fin == {"metadata": {"name": "team"}, "spec": {"finalizers": []}, "status": {"phase": "Active"}}


def test_namespace_deletion_waits_for_spec_finalizers() -> None:
    s = NamespaceStrategy()
    ns: dict[str, Any] = {
        "metadata": {"name": "team"},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }
    assert s.blocks_deletion(ns)
    s.prepare_for_delete(ns)
    assert ns["status"]["phase"] == "Terminating"
    assert not s.blocks_deletion({"metadata": {"name": "team"}, "spec": {}})


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        pytest.param("team-a", True, id="label"),
        pytest.param("team.a", False, id="dots"),
        pytest.param("Team", False, id="upper"),
    ],
)
def test_namespace_name_rule(name: str, ok: bool) -> None:
    assert (NamespaceStrategy().name_rule(name) == []) is ok


def test_namespace_finalizer_names() -> None:
    errs = NamespaceStrategy().validate({"spec": {"finalizers": ["kubernetes", "custom", "example.com/x"]}})
    assert texts(errs) == [
        'spec.finalizers[1]: Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified'
    ]


# --- secrets / configmaps / serviceaccounts --------------------------------------------------------------


def test_secret_defaults_fold_string_data() -> None:
    s = SecretStrategy()
    sec: dict[str, Any] = {
        "metadata": {"name": "s"},
        "data": {"a": b64("1")},
        "stringData": {"a": "2", "b": "3"},
    }
    s.defaults(sec)
    assert sec == {"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": b64("2"), "b": b64("3")}}


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        pytest.param(
            {"type": "kubernetes.io/dockerconfigjson", "data": {}},
            ["data[.dockerconfigjson]: Required value"],
            id="dockerconfigjson-missing",
        ),
        pytest.param(
            {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64("not json")}},
            ['data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": '],
            id="dockerconfigjson-bad-json",
        ),
        pytest.param(
            {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64('{"auths":{}}')}},
            [],
            id="dockerconfigjson-ok",
        ),
        pytest.param(
            {"type": "kubernetes.io/tls", "data": {"tls.crt": b64("c")}},
            ["data[tls.key]: Required value"],
            id="tls-key",
        ),
        pytest.param(
            {"type": "kubernetes.io/basic-auth", "data": {}},
            ["data[username]: Required value", "data[password]: Required value"],
            id="basic-auth",
        ),
        pytest.param(
            {"type": "kubernetes.io/ssh-auth", "data": {}},
            ["data[ssh-privatekey]: Required value"],
            id="ssh-auth",
        ),
        pytest.param(
            {"type": "kubernetes.io/service-account-token"},
            ["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
            id="sa-token",
        ),
        pytest.param(
            {"type": "Opaque", "data": {"k": "%%%"}},
            ['data[k]: Invalid value: "<secret contents redacted>": illegal base64 data'],
            id="bad-base64",
        ),
        pytest.param(
            {"type": "Opaque", "data": {"bad key": b64("x")}},
            ['data[bad key]: Invalid value: "bad key": a valid config key'],
            id="bad-key",
        ),
    ],
)
def test_secret_validation(secret: dict[str, Any], expected: list[str]) -> None:
    got = texts(SecretStrategy().validate({"metadata": {"name": "s"}, **secret}))
    assert len(got) == len(expected), got
    for g, e in zip(got, expected, strict=True):
        assert g.startswith(e), got


def test_secret_type_immutable_and_row() -> None:
    s = SecretStrategy()
    old = {"metadata": {"name": "s", "creationTimestamp": CREATED}, "type": "Opaque", "data": {"a": b64("1")}}
    new = {**old, "type": "kubernetes.io/basic-auth", "data": {"username": b64("u")}}
    assert 'type: Invalid value: "kubernetes.io/basic-auth": field is immutable' in texts(
        s.validate_update(new, old)
    )
    assert s.row(old, NOW) == ["s", "Opaque", 1, "30s"]
    assert s.fields(old) == {"type": "Opaque"}
    assert [c.name for c in s.columns()] == ["Name", "Type", "Data", "Age"]


def test_configmap_row_and_serviceaccount_row() -> None:
    cm = {
        "metadata": {"name": "c", "creationTimestamp": CREATED},
        "data": {"a": "1"},
        "binaryData": {"b": b64("x")},
    }
    assert ConfigMapStrategy().row(cm, NOW) == ["c", 2, "30s"]
    sa = {"metadata": {"name": "default", "creationTimestamp": CREATED}, "secrets": [{"name": "t"}]}
    assert ServiceAccountStrategy().row(sa, NOW) == ["default", 1, "30s"]
    assert [c.name for c in ServiceAccountStrategy().columns()] == ["Name", "Secrets", "Age"]


# --- nodes -----------------------------------------------------------------------------------------------


def node(**over: Any) -> dict[str, Any]:
    n: dict[str, Any] = {
        "metadata": {
            "name": "n1",
            "creationTimestamp": CREATED,
            "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "edge"},
        },
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0",
                "osImage": "Debian",
                "kernelVersion": "6.1",
                "containerRuntimeVersion": "containerd://1.7",
            },
        },
    }
    n.update(over)
    return n


@pytest.mark.parametrize(
    ("obj", "status"),
    [
        pytest.param(node(), "Ready", id="ready"),
        pytest.param(node(spec={"unschedulable": True}), "Ready,SchedulingDisabled", id="cordoned"),
        pytest.param(
            node(status={"conditions": [{"type": "Ready", "status": "False"}]}), "NotReady", id="notready"
        ),
        pytest.param(node(status={}), "Unknown", id="unknown"),
    ],
)
def test_node_status_cell(obj: dict[str, Any], status: str) -> None:
    assert NodeStrategy().row(obj, NOW)[1] == status


def test_node_row_and_fields() -> None:
    s = NodeStrategy()
    assert s.row(node(), NOW) == [
        "n1",
        "Ready",
        "control-plane,edge",
        "30s",
        "v1.32.0",
        "192.168.1.10",
        "<none>",
        "Debian",
        "6.1",
        "containerd://1.7",
    ]
    bare = {"metadata": {"name": "n2", "creationTimestamp": CREATED}}
    assert s.row(bare, NOW) == [
        "n2",
        "Unknown",
        "<none>",
        "30s",
        "",
        "<none>",
        "<none>",
        "<unknown>",
        "<unknown>",
        "<unknown>",
    ]
    assert s.fields(node(spec={"unschedulable": True})) == {"spec.unschedulable": "true"}


def test_node_keeps_status_on_create_and_defaults_allocatable() -> None:
    s = NodeStrategy()
    n = node()
    n["status"]["capacity"] = {"cpu": "4"}
    s.prepare_for_create(n)
    s.defaults(n)
    assert n["status"]["allocatable"] == {"cpu": "4"}


@pytest.mark.parametrize(
    ("taints", "expected"),
    [
        pytest.param(
            [{"key": "k", "effect": "NoSchedule"}, {"key": "k", "effect": "NoSchedule"}],
            "spec.taints[1]: Duplicate value",
            id="duplicate",
        ),
        pytest.param([{"key": "k"}], "spec.taints[0].effect: Required value", id="effect-required"),
        pytest.param(
            [{"key": "k", "effect": "Never"}],
            'spec.taints[0].effect: Unsupported value: "Never"',
            id="effect-enum",
        ),
    ],
)
def test_node_taints(taints: list[dict[str, Any]], expected: str) -> None:
    got = texts(NodeStrategy().validate({"spec": {"taints": taints}}))
    assert any(t.startswith(expected) for t in got), got


# --- events ----------------------------------------------------------------------------------------------


def event(**over: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "metadata": {"name": "web.17a", "namespace": "default"},
        "involvedObject": {
            "kind": "Pod",
            "name": "web",
            "namespace": "default",
            "uid": "u1",
            "apiVersion": "v1",
            "fieldPath": "spec.containers{a}",
        },
        "reason": "Pulled",
        "message": " Pulled image \n",
        "type": "Normal",
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": "2026-01-01T11:50:00Z",
        "lastTimestamp": "2026-01-01T11:59:00Z",
        "count": 3,
    }
    ev.update(over)
    return ev


@pytest.mark.parametrize(
    ("obj", "cells"),
    [
        pytest.param(
            event(),
            [
                "60s",
                "Normal",
                "Pulled",
                "pod/web",
                "spec.containers{a}",
                "kubelet, n1",
                "Pulled image",
                "10m",
                3,
                "web.17a",
            ],
            id="classic",
        ),
        pytest.param(
            event(
                firstTimestamp=None,
                lastTimestamp=None,
                count=None,
                eventTime="2026-01-01T11:59:50.000000Z",
                source={},
                reportingComponent="sched",
                reportingInstance="s1",
            ),
            [
                "10s",
                "Normal",
                "Pulled",
                "pod/web",
                "spec.containers{a}",
                "sched, s1",
                "Pulled image",
                "10s",
                1,
                "web.17a",
            ],
            id="new-style",
        ),
        pytest.param(
            event(series={"count": 7, "lastObservedTime": "2026-01-01T11:59:55.000000Z"}),
            [
                "5s",
                "Normal",
                "Pulled",
                "pod/web",
                "spec.containers{a}",
                "kubelet, n1",
                "Pulled image",
                "10m",
                7,
                "web.17a",
            ],
            id="series",
        ),
        pytest.param(
            event(involvedObject={"kind": "Node"}),
            ["60s", "Normal", "Pulled", "node", "", "kubelet, n1", "Pulled image", "10m", 3, "web.17a"],
            id="no-name",
        ),
    ],
)
def test_event_row(obj: dict[str, Any], cells: list[Any]) -> None:
    assert EventStrategy().row(obj, NOW) == cells


def test_event_columns_and_fields() -> None:
    s = EventStrategy()
    assert [(c.name, c.priority) for c in s.columns()] == [
        ("Last Seen", 0),
        ("Type", 0),
        ("Reason", 0),
        ("Object", 0),
        ("Subobject", 1),
        ("Source", 1),
        ("Message", 0),
        ("First Seen", 1),
        ("Count", 1),
        ("Name", 1),
    ]
    f = s.fields(event())
    assert (
        f["involvedObject.kind"] == "Pod"
        and f["involvedObject.uid"] == "u1"
        and f["involvedObject.fieldPath"] == "spec.containers{a}"
    )
    assert f["source"] == "kubelet" and f["reason"] == "Pulled" and f["type"] == "Normal"


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            event(involvedObject={"kind": "Pod", "name": "p", "namespace": "other"}),
            ['involvedObject.namespace: Invalid value: "other": does not match event.namespace'],
            id="ns-mismatch",
        ),
        pytest.param(
            event(eventTime="2026-01-01T11:59:50.000000Z"),
            [
                "reportingComponent: Required value",
                "reportingInstance: Required value",
                "action: Required value",
            ],
            id="new-style-required",
        ),
        pytest.param(event(), [], id="valid"),
    ],
)
def test_event_validation(obj: dict[str, Any], expected: list[str]) -> None:
    got = texts(EventStrategy().validate(obj))
    for e in expected:
        assert any(g.startswith(e) for g in got), got
    if not expected:
        assert got == []


# --- endpoints -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subsets", "text"),
    [
        pytest.param([], "<none>", id="none"),
        pytest.param([{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}], "10.0.0.1:80", id="one"),
        pytest.param(
            [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}], "10.0.0.1,10.0.0.2", id="no-ports"
        ),
        pytest.param(
            [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 6)], "ports": [{"port": 80}]}],
            "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more...",
            id="more",
        ),
        pytest.param(
            [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}], "[fd00::1]:80", id="ipv6"
        ),
    ],
)
def test_format_endpoints(subsets: list[dict[str, Any]], text: str) -> None:
    assert format_endpoints({"subsets": subsets}) == text


def test_endpoints_validation_and_create_on_update() -> None:
    s = EndpointsStrategy()
    assert s.allow_create_on_update
    ep = {"subsets": [{"addresses": [{"ip": "nope"}], "ports": [{"port": 80}, {"port": 81}]}]}
    s.defaults(ep)
    got = texts(s.validate(ep))
    assert (
        'subsets[0].addresses[0].ip: Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'
        in got
    )
    assert "subsets[0].ports[0].name: Required value" in got


# --- volumes ---------------------------------------------------------------------------------------------


def test_pv_defaults_validation_row() -> None:
    s = PersistentVolumeStrategy()
    pv: dict[str, Any] = {
        "metadata": {"name": "pv1", "creationTimestamp": CREATED},
        "spec": {
            "capacity": {"storage": "5Gi"},
            "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
            "hostPath": {"path": "/d"},
            "claimRef": {"namespace": "default", "name": "data"},
            "storageClassName": "local",
        },
    }
    s.defaults(pv)
    s.prepare_for_create(pv)
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain" and pv["status"] == {"phase": "Pending"}
    assert s.validate(pv) == []
    assert s.row(pv, NOW) == [
        "pv1",
        "5Gi",
        "RWO,RWX",
        "Retain",
        "Pending",
        "default/data",
        "local",
        "<unset>",
        "",
        "30s",
        "Filesystem",
    ]
    assert texts(s.validate({"spec": {"persistentVolumeReclaimPolicy": "Retain"}})) == [
        "spec.accessModes: Required value",
        "spec.capacity: Required value",
        "spec: Required value: must specify a volume type",
    ]


def test_pvc_validation_update_row() -> None:
    s = PersistentVolumeClaimStrategy()
    pvc: dict[str, Any] = {
        "metadata": {"name": "data", "creationTimestamp": CREATED},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    s.defaults(pvc)
    s.prepare_for_create(pvc)
    assert s.validate(pvc) == [] and pvc["status"] == {"phase": "Pending"}
    assert s.row(pvc, NOW) == ["data", "Pending", "", "", "", "", "<unset>", "30s", "Filesystem"]
    bound = {
        **pvc,
        "spec": {**pvc["spec"], "volumeName": "pv1"},
        "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]},
    }
    assert s.row(bound, NOW)[:5] == ["data", "Bound", "pv1", "1Gi", "RWO"]
    assert s.validate_update(bound, pvc) == []
    grown = {**bound, "spec": {**bound["spec"], "resources": {"requests": {"storage": "2Gi"}}}}
    assert s.validate_update(grown, bound) == []
    changed = {**bound, "spec": {**bound["spec"], "accessModes": ["ReadWriteMany"]}}
    assert any(
        t.startswith("spec: Forbidden: spec is immutable after creation")
        for t in texts(s.validate_update(changed, bound))
    )
    assert texts(s.validate({"spec": {"resources": {}}})) == [
        "spec.accessModes: Required value: at least 1 access mode is required",
        "spec.resources[storage]: Required value",
    ]


# --- quotas and limits -----------------------------------------------------------------------------------


def test_resource_quota_row() -> None:
    rq = {
        "metadata": {"name": "q", "creationTimestamp": CREATED},
        "spec": {"hard": {"pods": "10", "requests.cpu": "4", "limits.memory": "8Gi"}},
        "status": {"used": {"pods": "2"}},
    }
    assert ResourceQuotaStrategy().row(rq, NOW) == [
        "q",
        "30s",
        "pods: 2/10, requests.cpu: 0/4",
        "limits.memory: 0/8Gi",
    ]
    assert [c.name for c in ResourceQuotaStrategy().columns()] == ["Name", "Age", "Request", "Limit"]


def test_limit_range_defaults_and_validation() -> None:
    s = LimitRangeStrategy()
    lr: dict[str, Any] = {
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]}
    }
    s.defaults(lr)
    item = lr["spec"]["limits"][0]
    assert item["default"] == {"cpu": "2"} and item["defaultRequest"] == {"cpu": "2", "memory": "64Mi"}
    bad = {"spec": {"limits": [{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]}}
    assert 'spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1' in texts(
        s.validate(bad)
    )
    pod_item = {"spec": {"limits": [{"type": "Pod", "default": {"cpu": "1"}}]}}
    assert "spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'" in texts(
        s.validate(pod_item)
    )
    assert s.row({"metadata": {"name": "l", "creationTimestamp": CREATED}}, NOW) == ["l", CREATED]


# --- replication controllers -----------------------------------------------------------------------------


def rc() -> dict[str, Any]:
    return {
        "metadata": {"name": "rc1", "creationTimestamp": CREATED},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            }
        },
    }


def test_rc_defaults_scale_row() -> None:
    s = ReplicationControllerStrategy()
    obj = rc()
    s.defaults(obj)
    assert (
        obj["spec"]["selector"] == {"app": "x"}
        and obj["spec"]["replicas"] == 1
        and obj["metadata"]["labels"] == {"app": "x"}
    )
    assert s.validate(obj) == []
    assert s.scale_of(obj) == (1, 0, "app=x")
    s.set_replicas(obj, 3)
    obj["status"] = {"replicas": 2, "readyReplicas": 1}
    assert s.row(obj, NOW) == ["rc1", 3, 2, 1, "30s", "c", "nginx", "app=x"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda o: o["spec"].update(selector={"app": "y"}),
            "spec.template.metadata.labels: Invalid value",
            id="selector-mismatch",
        ),
        pytest.param(
            lambda o: o["spec"]["template"]["spec"].update(restartPolicy="Never"),
            'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
            id="restart-policy",
        ),
        pytest.param(
            lambda o: o["spec"].update(replicas=-1),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            id="replicas",
        ),
        pytest.param(
            lambda o: o["spec"]["template"]["spec"]["containers"][0].pop("image"),
            "spec.template.spec.containers[0].image: Required value",
            id="template-image",
        ),
    ],
)
def test_rc_validation(mutate: Any, expected: str) -> None:
    s = ReplicationControllerStrategy()
    obj = rc()
    s.defaults(obj)
    mutate(obj)
    got = texts(s.validate(obj))
    assert any(t.startswith(expected) for t in got), got


def test_pod_template_row_and_validation() -> None:
    from skiff.apiserver.registry.core.podtemplates import PodTemplateStrategy

    s = PodTemplateStrategy()
    pt: dict[str, Any] = {
        "metadata": {"name": "t"},
        "template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        },
    }
    s.defaults(pt)
    assert s.validate(pt) == []
    assert s.row(pt, NOW) == ["t", "c", "nginx", "app=x"]
    pt["template"]["spec"]["containers"] = []
    assert texts(s.validate(pt)) == ["template.spec.containers: Required value"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param({"ok.key": "1"}, [], id="ok"),
        pytest.param(
            {"..hidden": "1"},
            ["data[..hidden]: Invalid value: \"..hidden\": must not start with '..'"],
            id="dotdot-prefix",
        ),
        pytest.param({".": "1"}, ["data[.]: Invalid value: \".\": must not be '.'"], id="dot"),
    ],
)
def test_configmap_keys(data: dict[str, str], expected: list[str]) -> None:
    assert texts(ConfigMapStrategy().validate({"data": data})) == expected
