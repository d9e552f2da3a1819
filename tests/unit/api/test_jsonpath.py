"""The kubectl/k8s JSONPath subset (client-go util/jsonpath, with AllowMissingKeys)."""

from __future__ import annotations

from typing import Any

import pytest

from skiff.api import jsonpath

OBJ: dict[str, Any] = {
    "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web"}},
    "spec": {"replicas": 3, "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]},
    "status": {
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "Progressing", "status": "False"},
        ],
        "ratio": 0.5,
    },
}


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        pytest.param(".spec.replicas", [3], id="dotted"),
        pytest.param("{.spec.replicas}", [3], id="braced"),
        pytest.param("$.spec.replicas", [3], id="dollar-root"),
        pytest.param("spec.replicas", [3], id="relaxed-leading-field"),
        pytest.param(".spec.ports[0].port", [80], id="index"),
        pytest.param(".spec.ports[-1].name", ["https"], id="negative-index"),
        pytest.param(".spec.ports[*].port", [80, 443], id="wildcard-list"),
        pytest.param(".spec.ports[0:1].name", ["http"], id="slice"),
        pytest.param(".spec.ports[0,1].port", [80, 443], id="index-union"),
        pytest.param(".spec.*", [3, OBJ["spec"]["ports"]], id="wildcard-map"),
        pytest.param("..port", [80, 443], id="recursive"),
        pytest.param(".metadata.labels['app.kubernetes.io/name']", ["web"], id="quoted-key-with-dots"),
        pytest.param('.metadata["name"]', ["web"], id="double-quoted-key"),
        pytest.param('.status.conditions[?(@.type=="Ready")].status', ["True"], id="filter-eq"),
        pytest.param(".status.conditions[?(@.type!='Ready')].type", ["Progressing"], id="filter-ne"),
        pytest.param(".spec.ports[?(@.port>100)].name", ["https"], id="filter-gt"),
        pytest.param(".spec.ports[?(@.port<=80)].name", ["http"], id="filter-le"),
        pytest.param(".status.conditions[?(@.status)].type", ["Ready", "Progressing"], id="filter-exists"),
        pytest.param(".spec.missing.deeper", [], id="missing-key-is-empty"),
        pytest.param(".spec.ports[5]", [], id="out-of-range-is-empty"),
        pytest.param(".spec.replicas[0]", [], id="index-on-scalar-is-empty"),
        pytest.param(".status.ratio", [0.5], id="float"),
    ],
)
def test_find(expr: str, want: list[Any]) -> None:
    assert jsonpath.find(expr, OBJ) == want


@pytest.mark.parametrize(
    "expr",
    [
        pytest.param("", id="empty"),
        pytest.param(".spec.ports[", id="unclosed-bracket"),
        pytest.param(".spec.ports[x]", id="bad-index"),
        pytest.param(".spec.ports[?(@.port>)]", id="filter-missing-value"),
        pytest.param(".spec.ports[?@.port]", id="filter-without-parens"),
        pytest.param(".spec..", id="dangling-recursive"),
        pytest.param(".spec.#", id="bad-character"),
    ],
)
def test_parse_errors(expr: str) -> None:
    with pytest.raises(jsonpath.JSONPathError):
        jsonpath.parse(expr)


def test_find_does_not_mutate() -> None:
    obj = {"a": [{"b": 1}]}
    jsonpath.find("..b", obj)
    assert obj == {"a": [{"b": 1}]}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param("x", "x", id="string-raw"),
        pytest.param(True, "true", id="bool"),
        pytest.param(3, "3", id="int"),
        pytest.param(2.0, "2", id="integral-float"),
        pytest.param(1.5, "1.5", id="float"),
        pytest.param({"a": 1}, '{"a":1}', id="map-as-json"),
        pytest.param([1, "x"], '[1,"x"]', id="list-as-json"),
        pytest.param(None, "", id="null"),
    ],
)
def test_format_value(value: Any, text: str) -> None:
    assert jsonpath.format_value(value) == text
