"""CustomResourceDefinition strategy: defaults, validation messages, initial status, update rules."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from skiff.apiserver.registry.apiextensions.customresourcedefinitions import CustomResourceDefinitionStrategy

S = CustomResourceDefinitionStrategy()


def crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object"}}}
                    },
                },
            ],
        },
    }


def defaulted(mutate: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    obj = crd()
    if mutate:
        mutate(obj)
    S.defaults(obj)
    return obj


def test_info() -> None:
    info = S.info
    assert (info.group, info.version, info.plural, info.namespaced) == (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        False,
    )
    assert info.short_names == ("crd", "crds")
    assert info.categories == ("api-extensions",)
    assert S.status_subresource


def test_defaults() -> None:
    obj = defaulted()
    assert obj["spec"]["names"]["singular"] == "widget"
    assert obj["spec"]["names"]["listKind"] == "WidgetList"
    assert obj["spec"]["conversion"] == {"strategy": "None"}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(obj: dict[str, Any]) -> None:
        cur: Any = obj
        parts = path.split(".")
        for p in parts[:-1]:
            cur = cur[int(p)] if p.isdigit() else cur[p]
        last = parts[-1]
        if value is _DELETE:
            del cur[last]
        elif last.isdigit():
            cur[int(last)] = value
        else:
            cur[last] = value

    return apply


_DELETE = object()
V0 = "spec.versions.0"


@pytest.mark.parametrize(
    ("mutate", "want"),
    [
        pytest.param(None, [], id="valid"),
        pytest.param(
            _set("metadata.name", "gadgets.example.com"),
            ['metadata.name: Invalid value: "gadgets.example.com": must be spec.names.plural+"."+spec.group'],
            id="name-must-match",
        ),
        pytest.param(
            _set("spec.group", "example"),
            [
                'metadata.name: Invalid value: "widgets.example.com": must be spec.names.plural+"."+spec.group',
                'spec.group: Invalid value: "example": should be a domain with at least one dot',
            ],
            id="group-needs-dot",
        ),
        pytest.param(
            _set("spec.scope", "Global"),
            ['spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"'],
            id="scope",
        ),
        pytest.param(
            _set(f"{V0}.storage", False),
            [
                "spec.versions: Invalid value: "
                + '[{"name":"v1","served":true,"storage":false,"schema":{"openAPIV3Schema":{"type":"object","properties":{"spec":{"type":"object"}}}}}]'
                + ": must have exactly one version marked as storage version"
            ],
            id="no-storage-version",
        ),
        pytest.param(
            _set(f"{V0}.served", False),
            [
                "spec.versions: Invalid value: "
                + '[{"name":"v1","served":false,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","properties":{"spec":{"type":"object"}}}}}]'
                + ": must have at least one version marked as served"
            ],
            id="none-served",
        ),
        pytest.param(
            _set(f"{V0}.schema", _DELETE),
            ["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"],
            id="schema-required",
        ),
        pytest.param(
            _set(f"{V0}.schema.openAPIV3Schema.type", "string"),
            [
                'spec.versions[0].schema.openAPIV3Schema.type: Invalid value: "string": must be object at the root'
            ],
            id="root-must-be-object",
        ),
        pytest.param(
            _set(f"{V0}.schema.openAPIV3Schema.properties.spec", {"properties": {}}),
            [
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"
            ],
            id="untyped-field",
        ),
        pytest.param(
            _set(f"{V0}.name", "V1"),
            [
                'spec.versions[0].name: Invalid value: "V1": a DNS-1035 label must consist of lower case alphanumeric '
                "characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. "
                "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
            ],
            id="version-name",
        ),
        pytest.param(
            _set(
                "spec.names",
                {"plural": "widgets", "singular": "widget", "kind": "Widget_X", "listKind": "WidgetList"},
            ),
            [
                'spec.names.kind: Invalid value: "Widget_X": may have mixed case, but should otherwise match: a DNS-1035 '
                "label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, "
                "and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
                "'[a-z]([-a-z0-9]*[a-z0-9])?')",
            ],
            id="kind-format",
        ),
        pytest.param(
            _set("spec.names.listKind", "Widget"),
            ['spec.names.listKind: Invalid value: "Widget": kind and listKind may not be the same'],
            id="listkind-equals-kind",
        ),
        pytest.param(
            _set(
                f"{V0}.subresources",
                {"scale": {"specReplicasPath": ".status.replicas", "statusReplicasPath": "status.x"}},
            ),
            [
                'spec.versions[0].subresources.scale.specReplicasPath: Invalid value: ".status.replicas": should be a json path under .spec',
                'spec.versions[0].subresources.scale.statusReplicasPath: Invalid value: "status.x": must be a simple json path starting with .',
            ],
            id="scale-paths",
        ),
        pytest.param(
            _set(
                f"{V0}.additionalPrinterColumns",
                [{"name": "X", "type": "text", "jsonPath": ".spec.x"}, {"name": "Y", "type": "string"}],
            ),
            [
                'spec.versions[0].additionalPrinterColumns[0].type: Invalid value: "text": must be one of boolean,date,integer,number,string',
                "spec.versions[0].additionalPrinterColumns[1].jsonPath: Required value",
            ],
            id="printer-columns",
        ),
        pytest.param(
            _set("spec.preserveUnknownFields", True),
            [
                "spec.preserveUnknownFields: Invalid value: true: cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"
            ],
            id="preserve-unknown-fields",
        ),
    ],
)
def test_validate(mutate: Callable[[dict[str, Any]], None] | None, want: list[str]) -> None:
    assert [e.text() for e in S.validate(defaulted(mutate))] == want


def test_missing_names_are_required() -> None:
    obj = crd()
    obj["spec"]["names"] = {}
    obj["metadata"]["name"] = ".example.com"
    fields = [
        e.field
        for e in S.validate(obj)
        if e.type == "FieldValueRequired" and e.field.startswith("spec.names")
    ]
    assert fields == ["spec.names.plural", "spec.names.singular", "spec.names.kind", "spec.names.listKind"]


def test_prepare_for_create_sets_established_status() -> None:
    obj = defaulted()
    obj["status"] = {"bogus": True}
    S.prepare_for_create(obj)
    status = obj["status"]
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["NamesAccepted"]["status"] == "True"
    assert (conds["NamesAccepted"]["reason"], conds["NamesAccepted"]["message"]) == (
        "NoConflicts",
        "no conflicts found",
    )
    assert (conds["Established"]["reason"], conds["Established"]["message"]) == (
        "InitialNamesAccepted",
        "the initial names have been accepted",
    )
    assert status["acceptedNames"] == obj["spec"]["names"]
    assert status["storedVersions"] == ["v1"]
    assert "bogus" not in status


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        pytest.param("spec.group", "other.com", "spec.group", id="group"),
        pytest.param("spec.scope", "Cluster", "spec.scope", id="scope"),
        pytest.param("spec.names.kind", "Gadget", "spec.names.kind", id="kind"),
        pytest.param("spec.names.plural", "gadgets", "spec.names.plural", id="plural"),
    ],
)
def test_immutable_on_update(path: str, value: Any, field: str) -> None:
    old = defaulted()
    S.prepare_for_create(old)
    new = copy.deepcopy(old)
    _set(path, value)(new)
    errs = S.validate_update(new, old)
    assert any(e.field == field and "field is immutable" in e.text() for e in errs)


def test_new_storage_version_is_recorded_without_touching_old() -> None:
    old = defaulted()
    S.prepare_for_create(old)
    new = copy.deepcopy(old)
    new["spec"]["versions"][0]["storage"] = False
    new["spec"]["versions"].append(
        {"name": "v2", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object"}}}
    )
    S.prepare_for_update(new, old)
    assert new["status"]["storedVersions"] == ["v1", "v2"]
    assert old["status"]["storedVersions"] == ["v1"]
    assert S.validate_update(new, old) == []


def test_removing_a_stored_version_is_invalid() -> None:
    old = defaulted()
    S.prepare_for_create(old)
    new = copy.deepcopy(old)
    new["spec"]["versions"][0]["name"] = "v2"
    errs = S.validate_update(new, old)
    assert 'status.storedVersions[0]: Invalid value: "v1": must appear in spec.versions' in [
        e.text() for e in errs
    ]


def test_table() -> None:
    assert [c.name for c in S.columns()] == ["Name", "Created At"]
    assert S.columns()[1].type == "date"
    assert S.row(crd(), dt.datetime(2026, 2, 1, tzinfo=dt.UTC)) == [
        "widgets.example.com",
        "2026-01-01T00:00:00Z",
    ]


def test_schema_defaults_must_match_their_schema() -> None:
    def bad_default(obj: dict[str, Any]) -> None:
        obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = {
            "type": "object",
            "properties": {"replicas": {"type": "integer", "default": "one"}},
        }

    errs = S.validate(defaulted(bad_default))
    assert [e.field for e in errs] == [
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[replicas].default"
    ]


def test_changed_names_are_accepted_on_update() -> None:
    old = defaulted()
    S.prepare_for_create(old)
    new = copy.deepcopy(old)
    new["spec"]["names"]["shortNames"] = ["wd"]
    S.prepare_for_update(new, old)
    assert new["status"]["acceptedNames"]["shortNames"] == ["wd"]
    assert "shortNames" not in old["status"]["acceptedNames"]
