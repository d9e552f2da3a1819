"""Fuzzing the Marathon translator: any document gives a `Translation` or a `TranslateError`, nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skiff.translate.marathon import app_to_workload, marathon_app_view, render_app, translate_marathon
from skiff.translate.model import TranslateError, Translation

EXAMPLES = Path(__file__).resolve().parents[4] / "shared" / "examples" / "marathon"
APP_KEYS = [
    "id", "cmd", "args", "user", "env", "instances", "cpus", "mem", "disk", "gpus", "container", "constraints",
    "acceptedResourceRoles", "portDefinitions", "ports", "requirePorts", "healthChecks", "readinessChecks",
    "upgradeStrategy", "labels", "secrets", "unreachableStrategy", "killSelection", "networks", "ipAddress",
    "backoffSeconds", "fetch", "dependencies", "residency", "taskKillGracePeriodSeconds",
]
INNER_KEYS = [
    "type", "docker", "image", "network", "portMappings", "parameters", "volumes", "containerPort", "hostPort",
    "servicePort", "protocol", "name", "port", "portIndex", "path", "gracePeriodSeconds", "intervalSeconds",
    "timeoutSeconds", "maxConsecutiveFailures", "command", "value", "key", "secret", "source", "mode",
    "containerPath", "hostPath", "persistent", "size", "minimumHealthCapacity", "maximumOverCapacity",
    "inactiveAfterSeconds", "portName", "httpStatusCodesForReady", "apps", "groups", "id",
]
WORDS = ["HTTP", "TCP", "COMMAND", "MESOS_HTTP", "DOCKER", "MESOS", "BRIDGE", "HOST", "USER", "tcp", "udp,tcp",
         "hostname", "UNIQUE", "CLUSTER", "LIKE", "MAX_PER", "GROUP_BY", "a|b", "/a/b", "..", "disabled",
         "container/bridge", "s0", "*", "RO", "user", "workdir", "cap-add"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(WORDS), st.text(max_size=12),
    st.sampled_from([0, -1, 1e-9, 1e28, 1.7e308, 2**31, 2**63, 65536, "\u00e9\u4e2d\U0001f600", "", " "]),
)
keys = st.one_of(st.sampled_from(APP_KEYS + INNER_KEYS), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=6)),
    max_leaves=30,
)
apps = st.dictionaries(st.sampled_from(APP_KEYS), values, max_size=10).map(
    lambda d: {"id": "/fuzz", "cmd": "x", **d})
groups = st.fixed_dictionaries({"id": st.sampled_from(["/g", "g", "/", "/G"]), "apps": st.lists(apps, max_size=3)})
documents = st.one_of(values, apps, groups, st.lists(apps, max_size=3))


def _check(result: Translation) -> None:
    for obj in result.objects:
        json.dumps(obj)  # plain JSON all the way down
        if obj["kind"] == "Deployment":
            marathon_app_view(obj, None)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_any_document_translates_or_is_refused(doc: Any) -> None:
    try:
        result = translate_marathon("fuzz.json", json.dumps(doc))
    except TranslateError as e:
        assert e.file == "fuzz.json"
        return
    _check(result)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_translates_or_is_refused(text: str) -> None:
    try:
        _check(translate_marathon("fuzz.json", text))
    except TranslateError:
        pass


def _mutations() -> st.SearchStrategy[tuple[Any, list[str | int], Any]]:
    docs = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))] if EXAMPLES.is_dir() else []
    return st.tuples(st.sampled_from(docs or [{"id": "/a", "cmd": "x"}]),
                     st.lists(st.one_of(st.sampled_from(APP_KEYS + INNER_KEYS), st.integers(0, 2)), max_size=4),
                     values)


def _set(doc: Any, path: list[str | int], value: Any) -> Any:
    """`doc` with the value at `path` replaced (following existing keys, creating the last one)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict) and isinstance(head, str):
        return {**doc, head: _set(doc.get(head), rest, value)}
    if isinstance(doc, list) and isinstance(head, int) and head < len(doc):
        return [*doc[:head], _set(doc[head], rest, value), *doc[head + 1:]]
    return doc


@settings(max_examples=400, deadline=None)
@given(_mutations())
def test_examples_with_a_wrong_value_anywhere(case: tuple[Any, list[str | int], Any]) -> None:
    doc, path, value = case
    mutated = _set(doc, path, value)
    try:
        _check(translate_marathon("fuzz.json", json.dumps(mutated)))
    except TranslateError:
        pass
    if isinstance(mutated, dict):
        try:
            w, _extra, _ = app_to_workload(mutated, "fuzz.json", "marathon")
        except TranslateError:
            return
        render_app(w)
