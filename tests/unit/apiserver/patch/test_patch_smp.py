"""Strategic merge patch. Expected results were cross-checked against kubectl 1.32's own strategicpatch
(`kubectl patch --local --type strategic`) on the same object."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from skiff.api.errors import ApiError
from skiff.apiserver.patch.smp import apply_strategic_merge_patch

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "finalizers": ["a", "b"]},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "nginx",
                        "image": "nginx:1.25",
                        "ports": [{"containerPort": 80}],
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    },
                    {"name": "side", "image": "busybox", "args": ["sleep", "1"]},
                ]
            },
        },
    },
}

NGINX = DEPLOYMENT["spec"]["template"]["spec"]["containers"][0]
SIDE = DEPLOYMENT["spec"]["template"]["spec"]["containers"][1]
CONTAINERS = ("spec", "template", "spec", "containers")
ROLLING = DEPLOYMENT["spec"]["strategy"]

# (patch, path of the fragment to check, expected fragment)
CASES = [
    pytest.param(
        {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}},
        CONTAINERS,
        [{**NGINX, "image": "nginx:1.27"}, SIDE],
        id="set-image-merges-by-name",
    ),
    pytest.param(
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "nginx"}],
                        "containers": [{"$patch": "delete", "name": "side"}],
                    }
                }
            }
        },
        CONTAINERS,
        [NGINX],
        id="apply-removes-container",
    ),
    pytest.param(
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "nginx"}, {"name": "side"}],
                        "containers": [
                            {
                                "$setElementOrder/env": [{"name": "A"}],
                                "env": [{"$patch": "delete", "name": "B"}],
                                "name": "nginx",
                            }
                        ],
                    }
                }
            }
        },
        CONTAINERS,
        [{**NGINX, "env": [{"name": "A", "value": "1"}]}, SIDE],
        id="apply-removes-env-var",
    ),
    pytest.param(
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "nginx"}, {"name": "side"}],
                        "containers": [
                            {
                                "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 443}],
                                "name": "nginx",
                                "ports": [{"containerPort": 443}],
                            }
                        ],
                    }
                }
            }
        },
        (*CONTAINERS, 0, "ports"),
        [{"containerPort": 80}, {"containerPort": 443}],
        id="apply-adds-port",
    ),
    pytest.param(
        {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"}}},
        ("spec", "strategy"),
        {"type": "Recreate"},
        id="apply-strategy-recreate",
    ),
    pytest.param(
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        ("spec", "strategy"),
        {"type": "Recreate"},
        id="retainKeys-drops-unlisted",
    ),
    pytest.param(
        {"spec": {"strategy": {"type": "Recreate"}}},
        ("spec", "strategy"),
        {**ROLLING, "type": "Recreate"},
        id="without-retainKeys-keeps-rollingUpdate",
    ),
    pytest.param(
        {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-22T04:00:00Z"}}
                }
            }
        },
        ("spec", "template", "metadata"),
        {
            "labels": {"app": "web"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-22T04:00:00Z"},
        },
        id="rollout-restart",
    ),
    pytest.param({"spec": {"paused": True}}, ("spec", "paused"), True, id="rollout-pause"),
    pytest.param(
        {"metadata": {"finalizers": ["c"]}},
        ("metadata", "finalizers"),
        ["c", "a", "b"],
        id="finalizers-set-merge",
    ),
    pytest.param(
        {"metadata": {"finalizers": ["b", "c"]}},
        ("metadata", "finalizers"),
        ["a", "b", "c"],
        id="finalizers-keep-live-order",
    ),
    pytest.param(
        {"metadata": {"finalizers": ["c", "c"]}},
        ("metadata", "finalizers"),
        ["c", "a", "b"],
        id="finalizers-dedupe",
    ),
    pytest.param(
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["c"]}},
        ("metadata", "finalizers"),
        ["c", "b"],
        id="deleteFromPrimitiveList",
    ),
    pytest.param(
        {"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"], "finalizers": ["c"]}},
        ("metadata", "finalizers"),
        ["c", "b", "a"],
        id="setElementOrder-primitive",
    ),
    pytest.param(
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "new", "image": "x"}, {"name": "nginx", "image": "y"}]}
                }
            }
        },
        (*CONTAINERS, slice(None), "name"),
        ["new", "nginx", "side"],
        id="patch-order-wins-for-patched-items",
    ),
    pytest.param(
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "side"}, {"name": "new"}, {"name": "nginx"}],
                        "containers": [{"name": "new", "image": "x"}],
                    }
                }
            }
        },
        (*CONTAINERS, slice(None), "name"),
        ["side", "new", "nginx"],
        id="setElementOrder-reorders",
    ),
    pytest.param(
        {
            "spec": {
                "template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "z"}]}}
            }
        },
        CONTAINERS,
        [{"name": "only", "image": "z"}],
        id="list-patch-replace",
    ),
    pytest.param(
        {"spec": {"template": {"spec": {"containers": [{"name": "side", "args": ["a"]}]}}}},
        (*CONTAINERS, 1, "args"),
        ["a"],
        id="atomic-list-replaced",
    ),
    pytest.param(
        {"spec": {"selector": {"$patch": "replace", "matchLabels": {"x": "y"}}}},
        ("spec", "selector"),
        {"matchLabels": {"x": "y"}},
        id="map-patch-replace",
    ),
    pytest.param(
        {"spec": {"strategy": {"$patch": "delete"}}}, ("spec", "strategy"), {}, id="map-patch-delete"
    ),
    pytest.param(
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "nginx",
                                "env": [{"name": "C", "value": "3"}, {"name": "A", "value": None}],
                            }
                        ]
                    }
                }
            }
        },
        (*CONTAINERS, 0, "env"),
        [{"name": "C", "value": "3"}, {"name": "A"}, {"name": "B", "value": "2"}],
        id="null-inside-keyed-item",
    ),
    pytest.param({"spec": {"replicas": None}}, ("spec",), "no-replicas", id="null-deletes"),
    pytest.param(
        {"metadata": {"finalizers": []}}, ("metadata", "finalizers"), ["a", "b"], id="empty-merge-list-no-op"
    ),
    pytest.param(
        {
            "spec": {
                "template": {
                    "spec": {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "gone", "$patch": "delete"}]}
                }
            }
        },
        ("spec", "template", "spec", "volumes"),
        [{"name": "v", "emptyDir": {}}],
        id="new-list-drops-directives",
    ),
]


def _fragment(obj: Any, path: tuple[Any, ...]) -> Any:
    for i, part in enumerate(path):
        if isinstance(part, slice):
            return [_fragment(item, path[i + 1 :]) for item in obj[part]]
        obj = obj[part]
    return obj


@pytest.mark.parametrize(("patch", "path", "expected"), CASES)
def test_strategic_merge_patch(patch: dict[str, Any], path: tuple[Any, ...], expected: Any) -> None:
    before = copy.deepcopy(DEPLOYMENT)
    out = apply_strategic_merge_patch(DEPLOYMENT, patch, "V1Deployment")
    if expected == "no-replicas":
        assert "replicas" not in out["spec"]
    else:
        assert _fragment(out, path) == expected
    assert before == DEPLOYMENT, "input must not be mutated"


def test_cordon_sets_unschedulable() -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n1"},
        "spec": {"podCIDR": "10.0.0.0/24"},
    }
    out = apply_strategic_merge_patch(node, {"spec": {"unschedulable": True}}, "V1Node")
    assert out["spec"] == {"podCIDR": "10.0.0.0/24", "unschedulable": True}


def test_service_ports_merge_by_port() -> None:
    svc = {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}
    out = apply_strategic_merge_patch(
        svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}, "V1Service"
    )
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 443}]


def test_unknown_model_merges_maps_and_replaces_lists() -> None:
    cr = {"spec": {"a": {"b": 1}, "l": [1, 2]}}
    out = apply_strategic_merge_patch(cr, {"spec": {"a": {"c": 2}, "l": [3]}}, "NoSuchModel")
    assert out == {"spec": {"a": {"b": 1, "c": 2}, "l": [3]}}


@pytest.mark.parametrize(
    ("patch", "code", "message"),
    [
        pytest.param(
            {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}},
            400,
            "invalid patch format of retainKeys",
            id="retainKeys-mismatch",
        ),
        pytest.param(
            {"spec": {"strategy": {"$retainKeys": "type"}}},
            400,
            "invalid patch format of retainKeys",
            id="retainKeys-not-list",
        ),
        pytest.param(
            {
                "spec": {
                    "template": {
                        "spec": {
                            "$setElementOrder/containers": [{"name": "side"}],
                            "containers": [{"name": "nginx", "image": "x"}],
                        }
                    }
                }
            },
            500,
            "Internal error occurred: The order in patch list:\n[map[image:x name:nginx]]\n doesn't match $setElementOrder list:\n[map[name:side]]\n",
            id="setElementOrder-missing-item",
        ),
        pytest.param(
            {"spec": {"$patch": "frob"}},
            500,
            "unknown patch type: frob in map: map[$patch:frob]",
            id="bad-directive",
        ),
        pytest.param(
            {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
            500,
            "map: map[image:x] does not contain declared merge key: name",
            id="missing-merge-key",
        ),
    ],
)
def test_strategic_merge_patch_errors(patch: dict[str, Any], code: int, message: str) -> None:
    with pytest.raises(ApiError) as err:
        apply_strategic_merge_patch(DEPLOYMENT, patch, "V1Deployment")
    assert err.value.code == code
    assert message in err.value.message


def test_volume_retain_keys_switches_source() -> None:
    pod = {"spec": {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}]}}
    patch = {
        "spec": {
            "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}, "name": "v"}]
        }
    }
    out = apply_strategic_merge_patch(pod, patch, "V1Pod")
    assert out["spec"]["volumes"] == [
        {"name": "v", "configMap": {"name": "cm"}},
        {"name": "w", "emptyDir": {}},
    ]


def test_job_conditions_merge_by_type() -> None:
    job = {"status": {"conditions": [{"type": "Suspended", "status": "True"}]}}
    patch = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    out = apply_strategic_merge_patch(job, patch, "V1Job")
    assert [c["type"] for c in out["status"]["conditions"]] == ["Complete", "Suspended"]
