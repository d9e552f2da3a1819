"""Fuzzing `translate_compose`: whatever the input, the answer is a `Translation` or a `TranslateError`."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skiff.translate.compose import translate_compose
from skiff.translate.model import TranslateError, Translation

EXAMPLES = sorted(Path("/work/shared/examples/compose").glob("*.yml"))
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SETTINGS = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

SERVICE_KEYS = [
    "image", "command", "entrypoint", "environment", "env_file", "ports", "expose", "networks", "volumes", "tmpfs",
    "configs", "secrets", "healthcheck", "user", "working_dir", "read_only", "cap_add", "cap_drop", "security_opt",
    "labels", "annotations", "deploy", "stop_grace_period", "build", "depends_on", "hostname", "x-ext", "bogus",
]
DEPLOY_KEYS = ["mode", "replicas", "labels", "placement", "resources", "restart_policy", "update_config",
               "rollback_config", "endpoint_mode", "bogus"]
TOP_KEYS = ["version", "name", "networks", "volumes", "configs", "secrets", "x-top", "include"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["80:80", "1m30s", "512M", "0.5", "node.role == manager", "${X:-y}", "$$", "${", "global",
                     "replicated-job", "dnsrr", "CMD-SHELL", "host", "tmpfs", "./rel:/abs:ro", "start-first",
                     "0440", "30000-30002:80-82/udp", "\u00e9\u00e8\U0001f600", "a" * 300]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)


@st.composite
def compose_docs(draw: st.DrawFn) -> Any:
    """Compose-shaped documents with arbitrary values (wrong types included) at the keys that matter."""
    services = {}
    for name in draw(st.lists(st.text(min_size=1, max_size=10), max_size=3, unique=True)):
        svc = {k: draw(values) for k in draw(st.lists(st.sampled_from(SERVICE_KEYS), max_size=6, unique=True))}
        if draw(st.booleans()):
            svc["image"] = draw(st.sampled_from(["nginx", "redis:6"]))
        if draw(st.booleans()):
            svc["deploy"] = {k: draw(values) for k in draw(st.lists(st.sampled_from(DEPLOY_KEYS), max_size=4,
                                                                  unique=True))}
        services[name] = svc
    doc: dict[str, Any] = {"services": services if draw(st.integers(0, 9)) else draw(values)}
    for k in draw(st.lists(st.sampled_from(TOP_KEYS), max_size=4, unique=True)):
        doc[k] = draw(values)
    return doc


def check(files: list[tuple[str, str]], env: dict[str, str] | None = None, dotenv: str | None = None,
          sources: dict[str, str] | None = None) -> None:
    try:
        t = translate_compose(files, "fuzz", env or {}, dotenv, sources)
    except TranslateError as e:
        assert e.file and e.key is not None and str(e)
        return
    assert isinstance(t, Translation)
    for o in t.objects:
        assert DNS_LABEL.match(o["metadata"]["name"]), o["metadata"]["name"]
        json.dumps(o)  # plain data only
    for w in t.warnings:
        assert str(w)


@SETTINGS
@given(compose_docs(), st.booleans())
def test_random_documents(doc: Any, as_json: bool) -> None:
    text = json.dumps(doc) if as_json else yaml.safe_dump(doc, allow_unicode=True)
    check([("fuzz.yml", text)])


@SETTINGS
@given(st.text(max_size=300), st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
       st.one_of(st.none(), st.text(max_size=100)))
def test_random_text(text: str, env: dict[str, str], dotenv: str | None) -> None:
    check([("fuzz.yml", text)], env, dotenv)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, item in node.items():
            out.extend(_paths(item, (*prefix, k)))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            out.extend(_paths(item, (*prefix, i)))
    return out


@SETTINGS
@given(st.sampled_from(EXAMPLES), st.data())
def test_mutated_examples(path: Path, data: st.DataObject) -> None:
    """A real stack with one value anywhere replaced by something arbitrary (wrong type, huge, unicode)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(doc)[1:]
        if not paths:
            break
        target = data.draw(st.sampled_from(paths))
        parent = doc
        for step in target[:-1]:
            parent = parent[step]
        if data.draw(st.booleans()):
            parent[target[-1]] = data.draw(values)
        elif isinstance(parent, dict):
            del parent[target[-1]]
        else:
            parent.pop(target[-1])
    check([(path.name, yaml.safe_dump(doc, allow_unicode=True))])


@SETTINGS
@given(st.sampled_from(EXAMPLES), st.sampled_from(EXAMPLES), compose_docs())
def test_merged_files(a: Path, b: Path, extra: Any) -> None:
    base = yaml.safe_load(a.read_text(encoding="utf-8"))
    check([(a.name, a.read_text(encoding="utf-8")), (b.name, b.read_text(encoding="utf-8")),
           ("extra.yml", yaml.safe_dump(copy.deepcopy(extra), allow_unicode=True)),
           ("again.yml", yaml.safe_dump(base))])


def test_alias_bomb_is_an_error_not_a_hang() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    lines.append("services: {s: {image: x, labels: *a7}}")
    check([("bomb.yml", "\n".join(lines))])


def test_self_referencing_alias_is_an_error() -> None:
    check([("loop.yml", "services: &s {s: {image: x, x-self: *s}}")])
