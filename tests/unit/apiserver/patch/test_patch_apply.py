"""Server-side apply and managedFields bookkeeping (structured-merge-diff semantics)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from skiff.api.errors import ApiError
from skiff.apiserver.patch.apply import default_field_manager, server_side_apply, update_managed_fields
from skiff.apiserver.patch.fieldpath import decode, encode, path_text

T0 = "2026-11-22T04:00:00Z"
T1 = "2026-11-22T04:01:00Z"
T2 = "2026-11-22T04:02:00Z"


def deployment(**spec: Any) -> dict[str, Any]:
    containers = spec.pop("containers", [{"name": "nginx", "image": "nginx:1.25"}])
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}},
            **spec,
        },
    }


def entries(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


def owned(obj: dict[str, Any], manager: str, operation: str = "Apply") -> set[str]:
    return {path_text(p) for p in decode(entries(obj)[(manager, operation)]["fieldsV1"])}


# --- FieldsV1 encoding -------------------------------------------------------------------------------


def test_apply_records_fieldsv1_like_upstream() -> None:
    obj = server_side_apply(None, deployment(), "kubectl", False, "V1Deployment", T0)
    (entry,) = obj["metadata"]["managedFields"]
    assert {k: v for k, v in entry.items() if k != "fieldsV1"} == {
        "manager": "kubectl",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "time": T0,
        "fieldsType": "FieldsV1",
    }
    assert entry["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {'k:{"name":"nginx"}': {".": {}, "f:image": {}, "f:name": {}}}},
            },
        },
    }


@pytest.mark.parametrize(
    ("obj", "model", "expected"),
    [
        pytest.param(
            {"metadata": {"finalizers": ["a", "b"]}},
            "V1Pod",
            {"f:metadata": {"f:finalizers": {'v:"a"': {}, 'v:"b"': {}}}},
            id="set-items",
        ),
        pytest.param(
            {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}},
            "V1Pod",
            {
                "f:spec": {
                    "f:containers": {
                        'k:{"name":"c"}': {
                            ".": {},
                            "f:name": {},
                            "f:ports": {
                                'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}
                            },
                        }
                    }
                }
            },
            id="map-list-key-default-protocol",
        ),
        pytest.param(
            {"spec": {"tolerations": [{"key": "k"}], "containers": [{"name": "c", "args": ["a"]}]}},
            "V1Pod",
            {
                "f:spec": {
                    "f:containers": {'k:{"name":"c"}': {".": {}, "f:args": {}, "f:name": {}}},
                    "f:tolerations": {},
                }
            },
            id="atomic-lists-are-leaves",
        ),
        pytest.param(
            {"spec": {"items": [1, 2], "deep": {"a": 1}}},
            None,
            {"f:spec": {"f:deep": {"f:a": {}}, "f:items": {}}},
            id="custom-resource-lists-atomic",
        ),
    ],
)
def test_field_sets(obj: dict[str, Any], model: str | None, expected: dict[str, Any]) -> None:
    out = server_side_apply(None, {"apiVersion": "v1", **obj}, "m", False, model, T0)
    assert out["metadata"]["managedFields"][0]["fieldsV1"] == expected


def test_encode_decode_round_trip() -> None:
    tree = {"f:metadata": {"f:labels": {".": {}, "f:a": {}}}, "f:spec": {"f:x": {}}}
    assert encode(decode(tree)) == tree
    assert path_text(("f:spec", 'k:{"containerPort":80,"protocol":"TCP"}', "f:name")) == (
        '.spec[containerPort=80,protocol="TCP"].name'
    )
    assert path_text(("f:metadata", "f:finalizers", 'v:"a"')) == '.metadata.finalizers[="a"]'


# --- apply merge, prune, conflicts -------------------------------------------------------------------


def test_apply_creates_from_nothing_and_keeps_live_only_fields() -> None:
    live = server_side_apply(None, deployment(), "kubectl", False, "V1Deployment", T0)
    live["metadata"]["uid"] = "u1"
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    out = server_side_apply(live, deployment(), "kubectl", False, "V1Deployment", T1)
    assert out["metadata"]["uid"] == "u1"
    assert out["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize(
    ("second", "check"),
    [
        pytest.param(
            deployment(containers=[{"name": "nginx", "image": "nginx:1.27"}]),
            lambda o: (
                o["spec"]["template"]["spec"]["containers"] == [{"name": "nginx", "image": "nginx:1.27"}]
            ),
            id="change-image",
        ),
        pytest.param(
            deployment(containers=[{"name": "nginx", "image": "nginx:1.25"}, {"name": "side", "image": "b"}]),
            lambda o: [c["name"] for c in o["spec"]["template"]["spec"]["containers"]] == ["nginx", "side"],
            id="add-container",
        ),
        pytest.param(
            {k: v for k, v in deployment().items() if k != "spec"}
            | {"spec": {"selector": {"matchLabels": {"app": "web"}}}},
            lambda o: "replicas" not in o["spec"] and "template" not in o["spec"],
            id="omitted-fields-pruned",
        ),
        pytest.param(
            deployment() | {"metadata": {"name": "web", "namespace": "default"}},
            lambda o: "labels" not in o["metadata"],
            id="omitted-label-map-pruned",
        ),
    ],
)
def test_reapply(second: dict[str, Any], check: Any) -> None:
    live = server_side_apply(None, deployment(), "kubectl", False, "V1Deployment", T0)
    out = server_side_apply(live, second, "kubectl", False, "V1Deployment", T1)
    assert check(out)


def test_removing_container_and_env_var() -> None:
    c1 = [
        {"name": "app", "image": "a", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "side", "image": "s"},
    ]
    live = server_side_apply(None, deployment(containers=c1), "kubectl", False, "V1Deployment", T0)
    c2 = [{"name": "app", "image": "a", "env": [{"name": "A", "value": "1"}]}]
    out = server_side_apply(live, deployment(containers=c2), "kubectl", False, "V1Deployment", T1)
    assert out["spec"]["template"]["spec"]["containers"] == c2
    assert '.spec.template.spec.containers[name="side"]' not in owned(out, "kubectl")


def test_field_owned_by_another_applier_is_not_pruned() -> None:
    live = server_side_apply(None, deployment(), "a", False, "V1Deployment", T0)
    live = server_side_apply(live, deployment(), "b", False, "V1Deployment", T1)  # same values: shared
    assert ".spec.replicas" in owned(live, "a") and ".spec.replicas" in owned(live, "b")
    slim = deployment()
    del slim["spec"]["replicas"]
    out = server_side_apply(live, slim, "a", False, "V1Deployment", T2)
    assert out["spec"]["replicas"] == 2
    assert ".spec.replicas" not in owned(out, "a") and ".spec.replicas" in owned(out, "b")


def test_conflict_with_update_manager() -> None:
    live = server_side_apply(None, deployment(), "kubectl", False, "V1Deployment", T0)
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    update_managed_fields(live, scaled, "kubectl-scale", "Update", T1, model="V1Deployment")
    with pytest.raises(ApiError) as err:
        server_side_apply(scaled, deployment(), "kubectl", False, "V1Deployment", T2)
    e = err.value
    assert (e.code, e.reason) == (409, "Conflict")
    assert (
        e.message
        == 'Apply failed with 1 conflict: conflict with "kubectl-scale" using apps/v1: .spec.replicas'
    )
    assert e.details == {
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "kubectl-scale" using apps/v1',
                "field": ".spec.replicas",
            }
        ]
    }


def test_conflict_message_lists_several_conflicts_by_manager() -> None:
    live = server_side_apply(None, deployment(), "other", False, "V1Deployment", T0)
    changed = deployment(replicas=3, containers=[{"name": "nginx", "image": "nginx:2"}])
    with pytest.raises(ApiError) as err:
        server_side_apply(live, changed, "kubectl", False, "V1Deployment", T1)
    assert err.value.message == (
        'Apply failed with 2 conflicts: conflicts with "other":\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="nginx"].image'
    )
    assert len(err.value.details["causes"]) == 2  # type: ignore[index]


def test_force_takes_ownership() -> None:
    live = server_side_apply(None, deployment(), "other", False, "V1Deployment", T0)
    out = server_side_apply(live, deployment(replicas=7), "kubectl", True, "V1Deployment", T1)
    assert out["spec"]["replicas"] == 7
    assert ".spec.replicas" in owned(out, "kubectl")
    assert ".spec.replicas" not in owned(out, "other")
    assert ".spec.selector" in owned(out, "other"), "equal values stay shared"


def test_first_apply_on_untracked_object_conflicts_with_before_first_apply() -> None:
    live = deployment()
    with pytest.raises(ApiError) as err:
        server_side_apply(live, deployment(replicas=4), "kubectl", False, "V1Deployment", T0)
    assert 'conflict with "before-first-apply" using apps/v1: .spec.replicas' in err.value.message


@pytest.mark.parametrize(
    ("live", "applied", "manager", "code", "message"),
    [
        pytest.param(None, deployment(), "", 422, "fieldManager: Required value", id="no-manager"),
        pytest.param(
            None,
            deployment() | {"metadata": {"name": "web", "managedFields": []}},
            "m",
            400,
            "metadata.managedFields must be nil",
            id="managed-fields-in-patch",
        ),
        pytest.param(
            deployment(),
            deployment() | {"apiVersion": "apps/v1beta1"},
            "m",
            400,
            "Incorrect version specified in apply patch. Specified patch version: apps/v1beta1, expected: apps/v1",
            id="version-mismatch",
        ),
    ],
)
def test_apply_rejects(live: Any, applied: dict[str, Any], manager: str, code: int, message: str) -> None:
    with pytest.raises(ApiError) as err:
        server_side_apply(live, applied, manager, False, "V1Deployment", T0)
    assert err.value.code == code and message in err.value.message


def test_ignore_fields_are_not_owned() -> None:
    obj = deployment() | {"status": {"replicas": 1}}
    out = server_side_apply(None, obj, "m", False, "V1Deployment", T0, ignore_fields=("status",))
    assert not any(p.startswith(".status") for p in owned(out, "m"))


def test_custom_resource_lists_replace_atomically() -> None:
    cr = {"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"items": [1, 2]}}
    live = server_side_apply(None, cr, "m", False, None, T0)
    out = server_side_apply(live, cr | {"spec": {"items": [3]}}, "m", False, None, T1)
    assert out["spec"]["items"] == [3]


def test_apply_does_not_mutate_inputs() -> None:
    live = server_side_apply(None, deployment(), "m", False, "V1Deployment", T0)
    snapshot, applied = copy.deepcopy(live), deployment(replicas=9)
    server_side_apply(live, applied, "m", False, "V1Deployment", T1)
    assert live == snapshot and applied == deployment(replicas=9)


# --- update_managed_fields ---------------------------------------------------------------------------


def test_create_records_update_entry_with_dot_for_new_maps() -> None:
    new = deployment()
    update_managed_fields(None, new, "kubectl-create", "Update", T0, model="V1Deployment")
    (entry,) = new["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["apiVersion"], entry["time"]) == (
        "kubectl-create",
        "Update",
        "apps/v1",
        T0,
    )
    fields = entry["fieldsV1"]
    assert fields["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    assert fields["f:spec"]["f:template"]["f:spec"]["f:containers"] == {
        'k:{"name":"nginx"}': {".": {}, "f:image": {}, "f:name": {}}
    }
    assert "f:apiVersion" not in fields and "f:kind" not in fields


def test_update_moves_changed_fields_and_merges_same_manager_entry() -> None:
    old = deployment()
    update_managed_fields(None, old, "kubectl-create", "Update", T0, model="V1Deployment")
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 3
    update_managed_fields(old, new, "kubectl-edit", "Update", T1, model="V1Deployment")
    assert ".spec.replicas" in owned(new, "kubectl-edit", "Update")
    assert ".spec.replicas" not in owned(new, "kubectl-create", "Update")
    newer = copy.deepcopy(new)
    newer["spec"]["paused"] = True
    update_managed_fields(new, newer, "kubectl-edit", "Update", T2, model="V1Deployment")
    edit = entries(newer)[("kubectl-edit", "Update")]
    assert edit["time"] == T2
    assert {".spec.replicas", ".spec.paused"} <= owned(newer, "kubectl-edit", "Update")
    assert [e["manager"] for e in newer["metadata"]["managedFields"]] == ["kubectl-create", "kubectl-edit"]


def test_update_drops_removed_fields_and_empty_entries() -> None:
    old = deployment()
    update_managed_fields(None, old, "a", "Update", T0, model="V1Deployment")
    mid = copy.deepcopy(old)
    mid["spec"]["paused"] = True
    update_managed_fields(old, mid, "b", "Update", T1, model="V1Deployment")
    new = copy.deepcopy(mid)
    del new["spec"]["paused"]
    update_managed_fields(mid, new, "c", "Update", T2, model="V1Deployment")
    assert set(entries(new)) == {("a", "Update")}, "b lost its only field, c changed nothing"


def test_unchanged_write_keeps_time() -> None:
    old = deployment()
    update_managed_fields(None, old, "a", "Update", T0, model="V1Deployment")
    new = copy.deepcopy(old)
    update_managed_fields(old, new, "a", "Update", T1, model="V1Deployment")
    assert new["metadata"]["managedFields"][0]["time"] == T0


def test_client_dropping_managed_fields_does_not_erase_them() -> None:
    old = deployment()
    update_managed_fields(None, old, "a", "Update", T0, model="V1Deployment")
    new = copy.deepcopy(old)
    del new["metadata"]["managedFields"]
    update_managed_fields(old, new, "b", "Update", T1, model="V1Deployment")
    assert ("a", "Update") in entries(new)


def test_subresource_entries_are_separate() -> None:
    old = deployment()
    update_managed_fields(None, old, "a", "Update", T0, model="V1Deployment")
    new = copy.deepcopy(old) | {"status": {"replicas": 2}}
    update_managed_fields(old, new, "kube-controller-manager", "Update", T1, "status", model="V1Deployment")
    entry = entries(new)[("kube-controller-manager", "Update")]
    assert entry["subresource"] == "status"
    # status is a non-pointer struct upstream, so only its members are recorded (no ".").
    assert entry["fieldsV1"] == {"f:status": {"f:replicas": {}}}


def test_sorted_apply_before_update_then_by_time() -> None:
    live = server_side_apply(None, deployment(), "z-applier", False, "V1Deployment", T2)
    new = copy.deepcopy(live)
    new["spec"]["paused"] = True
    update_managed_fields(live, new, "b", "Update", T1, model="V1Deployment")
    newer = copy.deepcopy(new)
    newer["spec"]["minReadySeconds"] = 5
    update_managed_fields(new, newer, "a", "Update", T2, model="V1Deployment")
    order = [(e["operation"], e["manager"]) for e in newer["metadata"]["managedFields"]]
    assert order == [("Apply", "z-applier"), ("Update", "b"), ("Update", "a")]


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        pytest.param("kubectl/v1.32.0 (linux/amd64) kubernetes/abc", "kubectl", id="kubectl"),
        pytest.param("OpenAPI-Generator/32.0.1/python", "OpenAPI-Generator", id="python-client"),
        pytest.param("", "", id="empty"),
        pytest.param("a\x00b/1", "ab", id="non-printable-dropped"),
        pytest.param("x" * 200, "x" * 128, id="truncated-to-128"),
    ],
)
def test_default_field_manager(agent: str, expected: str) -> None:
    assert default_field_manager(agent) == expected


def test_more_than_ten_update_managers_fold_into_ancient_changes() -> None:
    obj = deployment()
    update_managed_fields(None, obj, "m00", "Update", "2026-11-22T04:00:00Z", model="V1Deployment")
    for i in range(1, 12):
        new = copy.deepcopy(obj)
        new["metadata"]["labels"][f"l{i}"] = "x"
        update_managed_fields(
            obj, new, f"m{i:02d}", "Update", f"2026-11-22T04:{i:02d}:00Z", model="V1Deployment"
        )
        obj = new
    managers = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(managers) == 10
    assert "ancient-changes" in managers and "m00" not in managers and "m01" not in managers
    assert "m11" in managers
