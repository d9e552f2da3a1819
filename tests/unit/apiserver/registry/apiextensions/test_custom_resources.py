"""CustomResourceStrategy: info from the CRD, pruning, defaulting, schema validation, columns, scale."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.custom import CustomResourceStrategy

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["image"],
            "properties": {
                "image": {"type": "string", "minLength": 1, "maxLength": 20, "pattern": "^[a-z0-9./:-]+$"},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
                "mode": {"type": "string", "enum": ["fast", "safe"]},
                "ratio": {"type": "number", "exclusiveMaximum": True, "maximum": 1},
                "port": {"x-kubernetes-int-or-string": True},
                "tags": {"type": "array", "maxItems": 2, "minItems": 1, "items": {"type": "string"}},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "note": {"type": "string", "nullable": True},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {"spec": {"type": "object"}},
                },
                "selector": {
                    "type": "object",
                    "properties": {
                        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}
                    },
                },
                "nested": {
                    "type": "object",
                    "default": {},
                    "properties": {"level": {"type": "string", "default": "info"}},
                },
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer"},
                "selector": {"type": "string"},
                "conditions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"type": {"type": "string"}, "status": {"type": "string"}},
                    },
                },
            },
        },
    },
}

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "listKind": "WidgetList",
            "shortNames": ["wg"],
            "categories": ["all"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": SCHEMA},
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
                "additionalPrinterColumns": [
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                    {
                        "name": "Ready",
                        "type": "string",
                        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                    },
                    {"name": "Image", "type": "string", "jsonPath": ".spec.image", "priority": 1},
                    {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "selectableFields": [{"jsonPath": ".spec.mode"}],
            },
            {
                "name": "v1beta1",
                "served": True,
                "storage": False,
                "schema": {"openAPIV3Schema": {"type": "object"}},
            },
        ],
    },
}


def widget(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default", "creationTimestamp": "2026-01-01T11:00:00Z"},
        "spec": {"image": "nginx", **spec},
    }


@pytest.fixture
def strategy() -> CustomResourceStrategy:
    return CustomResourceStrategy.from_crd(copy.deepcopy(CRD), "v1")


def test_info_from_crd(strategy: CustomResourceStrategy) -> None:
    info = strategy.info
    assert (info.group, info.version, info.kind, info.plural, info.singular) == (
        "example.com",
        "v1",
        "Widget",
        "widgets",
        "widget",
    )
    assert info.namespaced
    assert info.short_names == ("wg",)
    assert info.categories == ("all",)
    assert [s.name for s in info.subresources] == ["scale", "status"]
    scale = info.subresource("scale")
    assert scale is not None and (scale.group, scale.version, scale.kind) == ("autoscaling", "v1", "Scale")
    assert strategy.status_subresource and strategy.scale_subresource


def test_version_without_subresources_or_columns() -> None:
    s = CustomResourceStrategy.from_crd(copy.deepcopy(CRD), "v1beta1")
    assert not s.status_subresource and not s.scale_subresource
    assert [c.name for c in s.columns()] == ["Name", "Age"]
    assert s.row(widget(), NOW) == ["w", "60m"]


def test_unknown_version_raises() -> None:
    with pytest.raises(KeyError):
        CustomResourceStrategy.from_crd(CRD, "v2")


@pytest.mark.parametrize(
    ("obj", "dropped", "kept"),
    [
        pytest.param(widget(bogus=1), ["spec.bogus"], widget(), id="unknown-spec-field"),
        pytest.param({**widget(), "top": 1}, ["top"], widget(), id="unknown-root-field"),
        pytest.param(
            widget(extra={"anything": {"x": 1}}),
            [],
            widget(extra={"anything": {"x": 1}}),
            id="preserve-unknown-fields",
        ),
        pytest.param(widget(env={"A": "1"}), [], widget(env={"A": "1"}), id="additional-properties-map"),
        pytest.param(
            widget(
                template={
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "p", "labels": {"a": "b"}},
                    "spec": {},
                    "junk": 1,
                }
            ),
            ["spec.template.junk"],
            widget(
                template={
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "p", "labels": {"a": "b"}},
                    "spec": {},
                }
            ),
            id="embedded-resource-keeps-type-and-metadata",
        ),
        pytest.param(
            {**widget(), "status": {"conditions": [{"type": "Ready", "status": "True", "why": "x"}]}},
            ["status.conditions[0].why"],
            {**widget(), "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            id="inside-list-items",
        ),
        pytest.param(
            {**widget(), "metadata": {"name": "w", "labels": {"a": "b"}, "annotations": {"x": "y"}}},
            [],
            {**widget(), "metadata": {"name": "w", "labels": {"a": "b"}, "annotations": {"x": "y"}}},
            id="metadata-never-pruned",
        ),
    ],
)
def test_prune(
    strategy: CustomResourceStrategy, obj: dict[str, Any], dropped: list[str], kept: dict[str, Any]
) -> None:
    before = copy.deepcopy(obj)
    assert strategy.unknown_fields(obj) == dropped
    assert obj == before, "unknown_fields must not change the object"
    assert strategy.prune(obj) == dropped
    assert obj == kept


def test_defaults_fill_missing_fields_recursively(strategy: CustomResourceStrategy) -> None:
    obj = widget()
    strategy.defaults(obj)
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["nested"] == {"level": "info"}
    explicit = widget(replicas=4, nested={"level": "debug"})
    strategy.defaults(explicit)
    assert explicit["spec"]["replicas"] == 4 and explicit["spec"]["nested"] == {"level": "debug"}


def test_defaults_are_copies(strategy: CustomResourceStrategy) -> None:
    a, b = widget(), widget()
    strategy.defaults(a)
    strategy.defaults(b)
    a["spec"]["nested"]["level"] = "changed"
    assert b["spec"]["nested"]["level"] == "info"


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        pytest.param({"replicas": 3, "mode": "fast", "port": "http", "tags": ["a"]}, [], id="valid"),
        pytest.param({"port": 8080, "note": None}, [], id="int-or-string-int-and-nullable"),
        pytest.param(
            {"replicas": "three"},
            [
                'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"'
            ],
            id="type",
        ),
        pytest.param(
            {"replicas": 11},
            ["spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"],
            id="maximum",
        ),
        pytest.param(
            {"replicas": -1},
            ["spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"],
            id="minimum",
        ),
        pytest.param(
            {"ratio": 1},
            ["spec.ratio: Invalid value: 1: spec.ratio in body should be less than 1"],
            id="exclusive-maximum",
        ),
        pytest.param(
            {"mode": "slow"},
            ['spec.mode: Unsupported value: "slow": supported values: "fast", "safe"'],
            id="enum",
        ),
        pytest.param(
            {"image": "UPPER"},
            ["spec.image: Invalid value: \"UPPER\": spec.image in body should match '^[a-z0-9./:-]+$'"],
            id="pattern",
        ),
        pytest.param(
            {"image": ""},
            [
                'spec.image: Invalid value: "": spec.image in body should be at least 1 chars long',
                "spec.image: Invalid value: \"\": spec.image in body should match '^[a-z0-9./:-]+$'",
            ],
            id="min-length",
        ),
        pytest.param(
            {"tags": []},
            ["spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"],
            id="min-items",
        ),
        pytest.param(
            {"tags": ["a", 1]},
            [
                'spec.tags[1]: Invalid value: "integer": spec.tags[1] in body must be of type string: "integer"'
            ],
            id="item-type",
        ),
        pytest.param(
            {"env": {"A": 1}},
            ['spec.env.A: Invalid value: "integer": spec.env.A in body must be of type string: "integer"'],
            id="additional-properties-type",
        ),
        pytest.param(
            {"port": True},
            [
                'spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"'
            ],
            id="int-or-string-bool",
        ),
        pytest.param(
            {"mode": None},
            ['spec.mode: Invalid value: "null": spec.mode in body must be of type string: "null"'],
            id="null-not-nullable",
        ),
        pytest.param(
            {"template": {"spec": {}}},
            ["spec.template.apiVersion: Required value", "spec.template.kind: Required value"],
            id="embedded-resource-needs-apiVersion-and-kind",
        ),
    ],
)
def test_validate(strategy: CustomResourceStrategy, spec: dict[str, Any], want: list[str]) -> None:
    assert [e.text() for e in strategy.validate(widget(**spec))] == want


def test_validate_max_length_and_items(strategy: CustomResourceStrategy) -> None:
    """Too long / too many: asserted by type and detail; the rendering belongs to skiff.api.validation."""
    (long,) = strategy.validate(widget(image="x" * 21))
    assert (long.type, long.field) == ("FieldValueTooLong", "spec.image")
    assert "20" in long.detail
    (many,) = strategy.validate(widget(tags=["a", "b", "c"]))
    assert (many.type, many.field, many.value, many.detail) == (
        "FieldValueTooMany",
        "spec.tags",
        3,
        "must have at most 2 items",
    )


def test_validate_required(strategy: CustomResourceStrategy) -> None:
    obj = widget()
    del obj["spec"]["image"]
    assert [e.text() for e in strategy.validate(obj)] == ["spec.image: Required value"]


def test_status_update_is_validated(strategy: CustomResourceStrategy) -> None:
    new = {**widget(), "status": {"replicas": "x"}}
    errs = strategy.validate_status_update(new, widget())
    assert [e.field for e in errs] == ["status.replicas"]


def test_columns(strategy: CustomResourceStrategy) -> None:
    cols = strategy.columns()
    assert [(c.name, c.type, c.priority) for c in cols] == [
        ("Name", "string", 0),
        ("Replicas", "integer", 0),
        ("Ready", "string", 0),
        ("Image", "string", 1),
        ("Ratio", "number", 0),
        ("Age", "date", 0),
    ]
    assert cols[0].format == "name"


@pytest.mark.parametrize(
    ("obj", "want"),
    [
        pytest.param(
            {
                **widget(replicas=2, ratio=0.25),
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            },
            ["w", 2, "True", "nginx", 0.25, "60m"],
            id="all-cells",
        ),
        pytest.param(widget(), ["w", None, None, "nginx", None, "60m"], id="missing-values-are-none"),
        pytest.param(
            widget(replicas="2", ratio=True), ["w", None, None, "nginx", None, "60m"], id="wrong-type-is-none"
        ),
        pytest.param(
            {**widget(), "metadata": {"name": "w", "creationTimestamp": "garbage"}},
            ["w", None, None, "nginx", None, "<invalid>"],
            id="bad-date",
        ),
    ],
)
def test_row(strategy: CustomResourceStrategy, obj: dict[str, Any], want: list[Any]) -> None:
    assert strategy.row(obj, NOW) == want


def test_string_column_renders_non_strings() -> None:
    crd = copy.deepcopy(CRD)
    crd["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "Tags", "type": "string", "jsonPath": ".spec.tags"},
        {"name": "Count", "type": "string", "jsonPath": ".spec.replicas"},
    ]
    s = CustomResourceStrategy.from_crd(crd, "v1")
    assert s.row(widget(tags=["a", "b"], replicas=3), NOW) == ["w", '["a","b"]', "3"]


def test_scale(strategy: CustomResourceStrategy) -> None:
    obj = {**widget(replicas=2), "status": {"replicas": 1, "selector": "app=w"}}
    assert strategy.scale_of(obj) == (2, 1, "app=w")
    strategy.set_replicas(obj, 5)
    assert obj["spec"]["replicas"] == 5
    assert strategy.scale_of(widget()) == (0, 0, "")


def test_selectable_fields(strategy: CustomResourceStrategy) -> None:
    assert strategy.fields(widget(mode="fast")) == {"spec.mode": "fast"}
    assert strategy.fields(widget()) == {"spec.mode": ""}


@pytest.mark.parametrize(
    ("schema", "value", "want"),
    [
        pytest.param({"x-kubernetes-list-type": "set"}, ["a", "b"], [], id="set-unique"),
        pytest.param(
            {"x-kubernetes-list-type": "set"},
            ["a", "a"],
            ['spec.l[1]: Duplicate value: "a"'],
            id="set-duplicate",
        ),
        pytest.param(
            {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
            [{"name": "x", "v": 1}, {"name": "x", "v": 2}],
            ['spec.l[1]: Duplicate value: {"name":"x"}'],
            id="map-duplicate-key",
        ),
        pytest.param({"x-kubernetes-list-type": "atomic"}, ["a", "a"], [], id="atomic-allows-duplicates"),
    ],
)
def test_list_types(schema: dict[str, Any], value: list[Any], want: list[str]) -> None:
    crd = copy.deepcopy(CRD)
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["l"] = {
        "type": "array",
        "items": {"type": "object" if value and isinstance(value[0], dict) else "string"},
        **schema,
    }
    s = CustomResourceStrategy.from_crd(crd, "v1")
    assert [e.text() for e in s.validate(widget(l=value))] == want
