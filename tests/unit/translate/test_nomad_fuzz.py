"""Fuzzing the Nomad translator: whatever the document (random text, random HCL trees, the examples and an API
job with a wrong type, a missing key or an unknown key anywhere), it returns a `Translation` or raises
`TranslateError` naming the file, and never anything else."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skiff.translate.model import TranslateError, Translation
from skiff.translate.nomad import translate_nomad

F = "fuzz.nomad.hcl"
EXAMPLES = sorted(Path("/work/shared/examples/nomad").glob("*.hcl"))
FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Keys of the job specification, so random trees reach deep code rather than only "unknown key".
KEYS = [
    "job", "group", "task", "type", "count", "driver", "config", "image", "args", "command", "entrypoint",
    "ports", "port_map", "volumes", "mount", "network", "port", "static", "to", "mode", "mbits", "service",
    "name", "tags", "check", "interval", "timeout", "path", "protocol", "check_restart", "limit", "grace",
    "resources", "cpu", "cores", "memory", "memory_max", "env", "user", "meta", "constraint", "affinity",
    "spread", "attribute", "operator", "value", "weight", "target", "percent", "update", "max_parallel",
    "min_healthy_time", "progress_deadline", "healthy_deadline", "canary", "auto_revert", "stagger", "restart",
    "attempts", "delay", "reschedule", "periodic", "cron", "crons", "prohibit_overlap", "time_zone", "enabled",
    "parameterized", "template", "data", "destination", "perms", "change_mode", "lifecycle", "hook", "sidecar",
    "kill_timeout", "kill_signal", "leader", "artifact", "volume", "volume_mount", "source", "read_only",
    "ephemeral_disk", "size", "namespace", "datacenters", "region", "priority", "variable", "default", "locals",
    "work_dir", "privileged", "cap_add", "network_mode", "tmpfs_options", "distinct_hosts", "task_dir",
]
IDENT = st.one_of(st.sampled_from(KEYS), st.from_regex(r"[a-z_][a-z0-9_-]{0,8}", fullmatch=True))

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=24),
    st.sampled_from(["10s", "1m30s", "${var.x}", "${NOMAD_PORT_http}", "${attr.kernel.name}", "docker",
                     "exec", "java", "http", "tcp", "script", "grpc", "service", "batch", "system", "sysbatch",
                     "=", "!=", "regexp", "distinct_hosts", "prestart", "poststart", "poststop", "host", "csi",
                     "local/x.conf", "{{ key \"x\" }}", "$${x}", "%{ if true }x%{ endif }", "nginx:1.25"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(IDENT, inner, max_size=4)),
    max_leaves=10,
)


@dataclass
class Block:
    name: str
    labels: list[str]
    items: list[Any] = field(default_factory=list)  # Attr | Block


@dataclass
class Attr:
    key: str
    value: Any


def hcl_value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(hcl_value(x) for x in v) + "]"
    return "{\n" + "\n".join(f"{json.dumps(str(k))} = {hcl_value(x)}" for k, x in v.items()) + "\n}"


def hcl_text(items: list[Any]) -> str:
    out = []
    for it in items:
        if isinstance(it, Attr):
            out.append(f"{it.key} = {hcl_value(it.value)}")
        else:
            labels = "".join(f" {json.dumps(label)}" for label in it.labels)
            out.append(f"{it.name}{labels} {{\n{hcl_text(it.items)}\n}}")
    return "\n".join(out)


BLOCKS: st.SearchStrategy[Block] = st.deferred(lambda: st.builds(
    Block, IDENT, st.lists(st.text(min_size=1, max_size=8), max_size=2),
    st.lists(st.one_of(st.builds(Attr, IDENT, VALUES), BLOCKS), max_size=5)))


def tree_of(raw: dict[str, Any]) -> list[Any]:
    """python-hcl2's output (unquoted strings, explicit blocks) as an emitter tree."""
    items: list[Any] = []
    for k, v in raw.items():
        if k.startswith("__"):
            continue
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v) and all(is_block(x) for x in v):
            items.extend(block_of(k, x, []) for x in v)
        else:
            items.append(Attr(k, v))
    return items


def is_block(d: dict[str, Any]) -> bool:
    return d.get("__is_block__") is True or (len(d) == 1 and isinstance(next(iter(d.values())), dict)
                                             and is_block(next(iter(d.values()))))


def block_of(name: str, d: dict[str, Any], labels: list[str]) -> Block:
    if d.get("__is_block__") is True:
        return Block(name, labels, tree_of(d))
    ((label, inner),) = d.items()
    return block_of(name, inner, [*labels, label])


def example_trees() -> list[list[Any]]:
    opts = SerializationOptions(with_comments=False, strip_string_quotes=True, preserve_heredocs=False)
    return [tree_of(hcl2.loads(p.read_text(), serialization_options=opts)) for p in EXAMPLES]


def all_slots(items: list[Any]) -> list[tuple[list[Any], int]]:
    """Every (container list, index) in the tree: the places a mutation can hit."""
    out = []
    for i, it in enumerate(items):
        out.append((items, i))
        if isinstance(it, Block):
            out.extend(all_slots(it.items))
    return out


def check(text: str, variables: dict[str, str] | None = None) -> None:
    try:
        t = translate_nomad(F, text, variables or {})
    except TranslateError as e:
        assert e.file == F and e.key
        return
    assert isinstance(t, Translation)
    json.dumps(t.objects)  # plain data, ready for the API
    for o in t.objects:
        assert o["metadata"]["name"] and o["metadata"]["namespace"]
    for w in t.warnings:
        assert w.file == F and w.key and w.why


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    check(text)


ITEMS = st.lists(st.one_of(st.builds(Attr, IDENT, VALUES), BLOCKS), max_size=4)


@FUZZ
@given(st.lists(BLOCKS, max_size=3), st.dictionaries(IDENT, st.text(max_size=8), max_size=2))
def test_random_hcl_trees(blocks: list[Block], variables: dict[str, str]) -> None:
    check(hcl_text(blocks), variables)


@FUZZ
@given(ITEMS, ITEMS, ITEMS, ITEMS)
def test_random_keys_inside_a_job(job: list[Any], group: list[Any], task: list[Any], config: list[Any]) -> None:
    """Random attributes and blocks at every level of an otherwise valid job."""
    tree = [Block("job", ["j"], [*job, Block("group", ["g"], [*group, Block("task", ["t"], [
        Attr("driver", "docker"), Block("config", [], [Attr("image", "x"), *config]), *task])])])]
    check(hcl_text(tree))


@FUZZ
@given(st.data())
def test_examples_with_one_key_broken(data: st.DataObject) -> None:
    tree = copy.deepcopy(data.draw(st.sampled_from(example_trees())))
    slots = all_slots(tree)
    container, index = data.draw(st.sampled_from(slots))
    action = data.draw(st.sampled_from(["replace", "delete", "add-unknown", "to-attribute", "duplicate"]))
    target = container[index]
    if action == "replace" and isinstance(target, Attr):
        container[index] = Attr(target.key, data.draw(VALUES))
    elif action == "replace":
        container[index] = data.draw(BLOCKS)
    elif action == "delete":
        del container[index]
    elif action == "add-unknown":
        container.insert(index, Attr(data.draw(IDENT), data.draw(VALUES)))
    elif action == "to-attribute":
        name = target.key if isinstance(target, Attr) else target.name
        container[index] = Attr(name, data.draw(VALUES))
    else:
        container.insert(index, copy.deepcopy(target))
    check(hcl_text(tree))


API_JOB: dict[str, Any] = {"Job": {
    "ID": "web", "Type": "service", "Datacenters": ["dc1"], "Namespace": "default",
    "Periodic": None, "Update": {"MaxParallel": 1, "Stagger": 30_000_000_000},
    "Constraints": [{"LTarget": "${attr.kernel.name}", "RTarget": "linux", "Operand": "="}],
    "TaskGroups": [{
        "Name": "g", "Count": 2,
        "Networks": [{"Mode": "bridge", "ReservedPorts": [{"Label": "http", "Value": 8080, "To": 80}]}],
        "Services": [{"Name": "web", "PortLabel": "http", "Tags": ["a"], "Checks": [
            {"Type": "http", "Path": "/", "Interval": 10_000_000_000, "Timeout": 2_000_000_000,
             "CheckRestart": {"Limit": 3, "Grace": 1_000_000_000}}]}],
        "RestartPolicy": {"Attempts": 2, "Interval": 1_800_000_000_000, "Delay": 15_000_000_000, "Mode": "fail"},
        "Volumes": {"data": {"Type": "host", "Source": "data"}},
        "Tasks": [{
            "Name": "t", "Driver": "docker", "Config": {"image": "nginx", "ports": ["http"], "args": ["-x"]},
            "Env": {"A": "1"}, "Resources": {"CPU": 500, "MemoryMB": 256},
            "VolumeMounts": [{"Volume": "data", "Destination": "/data"}],
            "Templates": [{"EmbeddedTmpl": "x=1", "DestPath": "local/x.conf"}],
            "Lifecycle": None, "KillTimeout": 5_000_000_000,
        }],
    }],
}}


def json_slots(v: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    if isinstance(v, dict):
        for k, x in v.items():
            out.extend(json_slots(x, (*path, k)))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out.extend(json_slots(x, (*path, i)))
    return out


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)


@FUZZ
@given(st.data())
def test_api_job_with_one_key_broken(data: st.DataObject) -> None:
    doc = copy.deepcopy(API_JOB)
    path = data.draw(st.sampled_from(json_slots(doc)))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    action = data.draw(st.sampled_from(["replace", "delete", "add-unknown"]))
    if action == "replace":
        parent[path[-1]] = data.draw(JSON_VALUES)
    elif action == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(max_size=10))] = data.draw(JSON_VALUES)
    else:
        parent.append(data.draw(JSON_VALUES))
    check(json.dumps(doc))


def test_unbroken_seeds_translate() -> None:
    """The fuzzers start from documents that translate, so they probe the edges of valid input."""
    assert translate_nomad(F, json.dumps(API_JOB)).objects
    for tree in example_trees():
        assert translate_nomad(F, hcl_text(tree)).objects
