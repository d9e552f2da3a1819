"""RBAC strategies: rules, aggregation, bindings (defaults, subjects, immutable roleRef), tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.rbac.clusterrolebindings import ClusterRoleBindingStrategy
from skiff.apiserver.registry.rbac.clusterroles import ClusterRoleStrategy
from skiff.apiserver.registry.rbac.rolebindings import RoleBindingStrategy
from skiff.apiserver.registry.rbac.roles import RoleStrategy

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
META = {"name": "r", "namespace": "default", "creationTimestamp": "2025-12-31T22:00:00Z"}
RB, CRB = RoleBindingStrategy(), ClusterRoleBindingStrategy()


@pytest.mark.parametrize(
    ("strategy", "rules", "want"),
    [
        pytest.param(
            RoleStrategy(), [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}], [], id="valid"
        ),
        pytest.param(
            RoleStrategy(),
            [{"apiGroups": [""], "resources": ["pods"]}],
            ["rules[0].verbs: Required value: verbs must contain at least one value"],
            id="verbs-required",
        ),
        pytest.param(
            RoleStrategy(),
            [{"verbs": ["get"]}],
            [
                "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[0].resources: Required value: resource rules must supply at least one resource",
            ],
            id="resource-rule-needs-groups-and-resources",
        ),
        pytest.param(
            RoleStrategy(),
            [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}],
            [
                'rules[0].nonResourceURLs: Invalid value: ["/healthz"]: namespaced rules cannot apply to non-resource URLs'
            ],
            id="role-non-resource-urls",
        ),
        pytest.param(
            ClusterRoleStrategy(),
            [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}],
            [],
            id="clusterrole-non-resource-urls",
        ),
        pytest.param(
            ClusterRoleStrategy(),
            [{"nonResourceURLs": ["/healthz"], "resources": ["pods"], "verbs": ["get"]}],
            [
                'rules[0].nonResourceURLs: Invalid value: ["/healthz"]: rules cannot apply to both regular resources and non-resource URLs'
            ],
            id="mixed-rule",
        ),
    ],
)
def test_rules(
    strategy: RoleStrategy | ClusterRoleStrategy, rules: list[dict[str, Any]], want: list[str]
) -> None:
    assert [e.text() for e in strategy.validate({"metadata": META, "rules": rules})] == want


@pytest.mark.parametrize(
    ("agg", "want"),
    [
        pytest.param(
            {"clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate": "true"}}]},
            [],
            id="valid",
        ),
        pytest.param(
            {"clusterRoleSelectors": []},
            [
                "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil"
            ],
            id="needs-selector",
        ),
        pytest.param(
            {"clusterRoleSelectors": [{"matchExpressions": [{"key": "a", "operator": "Bogus"}]}]},
            [
                'aggregationRule.clusterRoleSelectors[0].matchExpressions[0].operator: Invalid value: "Bogus": not a valid selector operator'
            ],
            id="bad-selector",
        ),
    ],
)
def test_aggregation_rule(agg: dict[str, Any], want: list[str]) -> None:
    assert [
        e.text() for e in ClusterRoleStrategy().validate({"metadata": META, "aggregationRule": agg})
    ] == want


def test_rbac_names_are_path_segments() -> None:
    assert RoleStrategy().name_rule("system:controller:x") == []
    assert RoleStrategy().name_rule("a/b") == ["may not contain '/'"]


def binding(ref: dict[str, Any], subjects: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": dict(META), "roleRef": ref, "subjects": subjects}


def test_binding_defaults() -> None:
    obj = binding(
        {"kind": "Role", "name": "r"},
        [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}],
    )
    RB.defaults(obj)
    assert obj["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    # The ServiceAccount default is the core group "", which Go's omitempty never serializes.
    assert [s.get("apiGroup") for s in obj["subjects"]] == ["rbac.authorization.k8s.io", None]


G = "rbac.authorization.k8s.io"


@pytest.mark.parametrize(
    ("strategy", "obj", "want"),
    [
        pytest.param(
            RB,
            binding(
                {"apiGroup": G, "kind": "ClusterRole", "name": "view"},
                [{"kind": "Group", "name": "g", "apiGroup": G}],
            ),
            [],
            id="valid",
        ),
        pytest.param(
            CRB,
            binding({"apiGroup": G, "kind": "Role", "name": "r"}, []),
            ['roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"'],
            id="crb-needs-clusterrole",
        ),
        pytest.param(
            RB,
            binding({"apiGroup": "example.com", "kind": "Role", "name": ""}, []),
            [
                'roleRef.apiGroup: Unsupported value: "example.com": supported values: "rbac.authorization.k8s.io"',
                "roleRef.name: Required value",
            ],
            id="roleref-group-and-name",
        ),
        pytest.param(
            CRB,
            binding(
                {"apiGroup": G, "kind": "ClusterRole", "name": "x"},
                [{"kind": "ServiceAccount", "name": "sa"}],
            ),
            ["subjects[0].namespace: Required value"],
            id="crb-sa-needs-namespace",
        ),
        pytest.param(
            RB,
            binding({"apiGroup": G, "kind": "Role", "name": "x"}, [{"kind": "Robot", "name": "r"}]),
            [
                'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"'
            ],
            id="subject-kind",
        ),
        pytest.param(
            RB,
            binding(
                {"apiGroup": G, "kind": "Role", "name": "x"}, [{"kind": "User", "name": "", "apiGroup": "x"}]
            ),
            [
                "subjects[0].name: Required value",
                'subjects[0].apiGroup: Unsupported value: "x": supported values: "rbac.authorization.k8s.io"',
            ],
            id="user-subject",
        ),
    ],
)
def test_bindings(
    strategy: RoleBindingStrategy | ClusterRoleBindingStrategy, obj: dict[str, Any], want: list[str]
) -> None:
    assert [e.text() for e in strategy.validate(obj)] == want


def test_role_ref_is_immutable() -> None:
    old = binding({"apiGroup": G, "kind": "Role", "name": "a"}, [])
    new = binding({"apiGroup": G, "kind": "Role", "name": "b"}, [])
    errs = RB.validate_update(new, old)
    assert [e.field for e in errs] == ["roleRef"]
    assert errs[0].text().endswith(": cannot change roleRef")


def test_role_table() -> None:
    s = RoleStrategy()
    assert [(c.name, c.type) for c in s.columns()] == [("Name", "string"), ("Created At", "date")]
    assert s.row({"metadata": META}, NOW) == ["r", "2025-12-31T22:00:00Z"]


def test_binding_table() -> None:
    obj = binding(
        {"apiGroup": G, "kind": "ClusterRole", "name": "admin"},
        [
            {"kind": "User", "name": "alice"},
            {"kind": "User", "name": "bob"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "ci", "namespace": "build"},
        ],
    )
    cols = RB.columns()
    assert [(c.name, c.priority) for c in cols] == [
        ("Name", 0),
        ("Role", 0),
        ("Age", 0),
        ("Users", 1),
        ("Groups", 1),
        ("ServiceAccounts", 1),
    ]
    assert RB.row(obj, NOW) == ["r", "ClusterRole/admin", "120m", "alice, bob", "devs", "build/ci"]


@pytest.mark.parametrize(
    ("strategy", "kind", "plural", "namespaced"),
    [
        pytest.param(RoleStrategy(), "Role", "roles", True, id="roles"),
        pytest.param(ClusterRoleStrategy(), "ClusterRole", "clusterroles", False, id="clusterroles"),
        pytest.param(RB, "RoleBinding", "rolebindings", True, id="rolebindings"),
        pytest.param(CRB, "ClusterRoleBinding", "clusterrolebindings", False, id="clusterrolebindings"),
    ],
)
def test_info(strategy: Any, kind: str, plural: str, namespaced: bool) -> None:
    info = strategy.info
    assert (info.group, info.version, info.kind, info.plural, info.namespaced) == (
        G,
        "v1",
        kind,
        plural,
        namespaced,
    )
    assert info.short_names == () and not strategy.tracks_generation
