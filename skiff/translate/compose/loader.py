"""Read Compose files into one merged document: YAML, `${VAR}` interpolation, `.env`, merge in order.

What `docker stack deploy -c a.yml -c b.yml` does before it converts anything, as pure functions:

* **YAML** is read the way Compose's Go YAML libraries read it, not as PyYAML's YAML 1.1: `80:80` is a
  string (no base-60 integers), `yes`/`no`/`on`/`off` are strings, dates stay strings, and `0440` is octal
  (file modes), as Go's `ParseInt(s, 0, 64)` reads it.
* **Interpolation** (compose-spec `interpolation.md`): `$VAR`, `${VAR}`, `${VAR:-default}`,
  `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}` (defaults may nest) and
  `$$` for a literal `$`; values come from the environment first, then the `.env` text. An unset variable
  without a default becomes "" with Compose's warning.
* **Merge** (compose-spec `merge.md`): mappings merge key by key; `command`, `entrypoint` and
  `healthcheck.test` are replaced; `environment`, `labels`, `networks`, `depends_on`, `extra_hosts`,
  `sysctls` (list or map syntax) merge by key; `ports` by the port, `volumes` by target, `configs` and
  `secrets` by source; any other sequence is appended without duplicates.

Every key remembers which file set it last (`Ctx.file_of`), so a warning or error names the right file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml

from skiff.translate.model import TranslateError, TranslateWarning

MAX_NODES = 200_000  # after alias expansion: a "billion laughs" document is an error, not an OOM
MAX_DEPTH = 100


@dataclass
class Ctx:
    """Where each key came from, and the warnings collected so far (deduplicated, in order)."""

    files: list[str]
    origin: dict[str, str] = field(default_factory=dict)
    warnings: list[TranslateWarning] = field(default_factory=list)

    def file_of(self, key: str) -> str:
        probe = key
        while probe:
            if probe in self.origin:
                return self.origin[probe]
            probe = probe.rpartition(".")[0]
        return self.files[0] if self.files else "<none>"

    def warn(self, key: str, why: str) -> None:
        w = TranslateWarning(self.file_of(key), key, why)
        if w not in self.warnings:
            self.warnings.append(w)

    def fail(self, key: str, why: str) -> NoReturn:
        raise TranslateError(self.file_of(key), key, why)


# --- YAML ----------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader with the YAML 1.2 core schema's implicit types (what Go's YAML libraries resolve)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                           "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
                              list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body.startswith("0x"):
        return sign * int(body[2:], 16)
    if body.startswith("0o"):
        return sign * int(body[2:], 8)
    if len(body) > 1 and body.startswith("0") and re.fullmatch("[0-7]+", body):
        return sign * int(body, 8)
    return sign * int(body)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_yaml(text: str, file: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(document)"
        raise TranslateError(file, where, f"invalid YAML: {getattr(e, 'problem', None) or e}") from None
    except (ValueError, TypeError, RecursionError, OverflowError) as e:
        raise TranslateError(file, "(document)", f"invalid YAML: {e}") from None


# --- interpolation -------------------------------------------------------------------------------------

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
Lookup = Callable[[str], str | None]


class _Invalid(Exception):
    pass


class _Missing(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(name)
        self.name = name
        self.message = message


def substitute(text: str, lookup: Lookup, unset: Callable[[str], None]) -> str:
    """`text` with every `$` expression replaced; raises `_Invalid` / `_Missing` (mapped by the caller)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            value, i = _braced(text, i + 2, lookup, unset)
            out.append(value)
            continue
        m = _NAME.match(text, i + 1)
        if m is None:
            raise _Invalid
        found = lookup(m.group(0))
        if found is None:
            unset(m.group(0))
        out.append(found or "")
        i = m.end()
    return "".join(out)


def _braced(text: str, start: int, lookup: Lookup, unset: Callable[[str], None]) -> tuple[str, int]:
    m = _NAME.match(text, start)
    if m is None:
        raise _Invalid
    name, i = m.group(0), m.end()
    if text[i : i + 1] == "}":
        value = lookup(name)
        if value is None:
            unset(name)
        return value or "", i + 1
    op = ""
    for candidate in (":-", ":?", ":+", "-", "?", "+"):
        if text.startswith(candidate, i):
            op = candidate
            break
    if not op:
        raise _Invalid
    i += len(op)
    depth, j = 1, i
    while j < len(text):
        if text.startswith("$$", j):
            j += 2
            continue
        if text.startswith("${", j):
            depth += 1
            j += 2
            continue
        if text[j] == "}":
            depth -= 1
            if depth == 0:
                break
        j += 1
    if depth:
        raise _Invalid
    arg = text[i:j]
    value = lookup(name)
    empty = value is None or (op.startswith(":") and value == "")
    if op in (":-", "-"):
        return (substitute(arg, lookup, unset) if empty else value or ""), j + 1
    if op in (":?", "?"):
        if empty:
            raise _Missing(name, substitute(arg, lookup, unset))
        return value or "", j + 1
    return ("" if empty else substitute(arg, lookup, unset)), j + 1


def interpolate(doc: Any, file: str, lookup: Lookup, ctx: Ctx) -> Any:
    """A copy of `doc` with every string interpolated and every mapping key a string."""
    count = 0

    def unset_warning(path: str) -> Callable[[str], None]:
        def warn(name: str) -> None:
            w = TranslateWarning(file, path, f'The "{name}" variable is not set. Defaulting to a blank string.')
            if w not in ctx.warnings:
                ctx.warnings.append(w)
        return warn

    def walk(v: Any, path: str, depth: int) -> Any:
        nonlocal count
        count += 1
        if count > MAX_NODES or depth > MAX_DEPTH:
            raise TranslateError(file, path or "(document)", "document too large or too deeply nested")
        if isinstance(v, dict):
            out: dict[str, Any] = {}
            for k, item in v.items():
                if k is None or isinstance(k, (dict, list)):
                    raise TranslateError(file, path or "(document)", f"invalid mapping key {k!r}")
                key = ("true" if k else "false") if isinstance(k, bool) else str(k)
                out[key] = walk(item, f"{path}.{key}" if path else key, depth + 1)
            return out
        if isinstance(v, list):
            return [walk(item, path, depth + 1) for item in v]
        if isinstance(v, str):
            try:
                return substitute(v, lookup, unset_warning(path))
            except _Invalid:
                raise TranslateError(file, path, f'invalid interpolation format: "{v}". '
                                     "You may need to escape any $ with another $.") from None
            except _Missing as e:
                raise TranslateError(file, path, f"required variable {e.name} is missing a value: {e.message}") from None
        if isinstance(v, (int, float, bool)) or v is None:
            return v
        return str(v)  # bytes and other odd YAML scalars read as text

    return walk(doc, "", 0)


def parse_dotenv(text: str, file: str, lookup: Lookup) -> dict[str, str]:
    """A Compose `.env` file: `KEY=VALUE` lines, `export`, quotes, `#` comments, `${VAR}` in values."""
    values: dict[str, str] = {}

    def chained(name: str) -> str | None:
        found = lookup(name)
        return found if found is not None else values.get(name)

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, eq, rest = line.partition("=")
        key = key.strip()
        if not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", key):
            raise TranslateError(file, f"line {number}", f"unexpected character in variable name {key!r}")
        if not eq:
            found = lookup(key)
            if found is not None:
                values[key] = found
            continue
        rest = rest.strip()
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            end = rest.find(quote, 1)
            while quote == '"' and end > 0 and rest[end - 1] == "\\":
                end = rest.find(quote, end + 1)
            if end < 0:
                raise TranslateError(file, f"line {number}", f"unterminated quoted value for {key}")
            body = rest[1:end]
            if quote == "'":
                values[key] = body
                continue
            body = body.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        else:
            body = re.split(r"\s+#", rest, maxsplit=1)[0].rstrip()
        try:
            values[key] = substitute(body, chained, lambda _n: None)
        except (_Invalid, _Missing):
            raise TranslateError(file, f"line {number}", f"invalid interpolation format in value of {key}") from None
    return values


def parse_env_file(text: str, file: str, lookup: Lookup) -> dict[str, str]:
    """A service `env_file` as Swarm reads it (docker/cli `opts.ParseEnvFile`): values are taken literally."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not key or any(ch.isspace() for ch in key):
            raise TranslateError(file, f"line {number}", f"variable '{key}' contains whitespaces")
        if eq:
            values[key] = value
        else:
            found = lookup(key)
            if found is not None:
                values[key] = found
    return values


# --- canonical form and merge ----------------------------------------------------------------------------

# Service keys whose list syntax becomes a mapping, so files merge them key by key.
_KEYED_LISTS = ("environment", "labels", "annotations", "extra_hosts", "sysctls")


def _mapping(v: Any, file: str, key: str) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise TranslateError(file, key, f"must be a mapping, not {_kind(v)}")
    return v


def _kind(v: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(v), type(v).__name__)


def _key_value_list(v: Any, file: str, key: str, sep: str = "=") -> dict[str, Any]:
    """`["A=1", "B"]` → `{"A": "1", "B": None}`; a mapping is returned as it is."""
    if isinstance(v, dict):
        return v
    if not isinstance(v, list):
        raise TranslateError(file, key, f"must be a list or a mapping, not {_kind(v)}")
    out: dict[str, Any] = {}
    for item in v:
        if not isinstance(item, (str, int, float)) or isinstance(item, bool):
            raise TranslateError(file, key, f"list items must be strings, not {_kind(item)}")
        k, eq, val = str(item).partition(sep)
        out[k] = val if eq else None
    return out


def _entry_key(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)


def canonical_service(svc: Any, file: str, key: str) -> dict[str, Any]:
    """One service with list-or-map keys as mappings (the form files merge in); validates container types."""
    s = dict(_mapping(svc, file, key))
    for k in _KEYED_LISTS:
        if k in s and s[k] is not None:
            s[k] = _key_value_list(s[k], file, f"{key}.{k}", ":" if k == "extra_hosts" else "=")
    if "networks" in s and s["networks"] is not None:
        nets = s["networks"]
        if isinstance(nets, list):
            s["networks"] = {str(_scalar(n, file, f"{key}.networks")): None for n in nets}
        elif not isinstance(nets, dict):
            raise TranslateError(file, f"{key}.networks", f"must be a list or a mapping, not {_kind(nets)}")
    if "depends_on" in s and isinstance(s["depends_on"], list):
        s["depends_on"] = {str(_scalar(n, file, f"{key}.depends_on")): None for n in s["depends_on"]}
    for k, by in (("ports", None), ("volumes", "target"), ("configs", "source"), ("secrets", "source")):
        if k in s and s[k] is not None:
            items = s[k]
            if not isinstance(items, list):
                raise TranslateError(file, f"{key}.{k}", f"must be a list, not {_kind(items)}")
            keyed: dict[str, Any] = {}
            for item in items:
                keyed[_list_key(item, by)] = item
            s[k] = keyed
    if isinstance(s.get("deploy"), dict):
        deploy = dict(s["deploy"])
        if deploy.get("labels") is not None:
            deploy["labels"] = _key_value_list(deploy["labels"], file, f"{key}.deploy.labels")
        s["deploy"] = deploy
    return s


def _scalar(v: Any, file: str, key: str) -> str | int | float:
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise TranslateError(file, key, f"items must be strings, not {_kind(v)}")
    return v


def _list_key(item: Any, by: str | None) -> str:
    """The merge key of a ports/volumes/configs/secrets entry (short or long syntax)."""
    if by is None or not isinstance(item, (str, dict)):
        return _entry_key(item)
    if isinstance(item, dict):
        return str(item.get(by)) if item.get(by) is not None else _entry_key(item)
    if by == "target":
        parts = item.split(":")
        return parts[1] if len(parts) >= 2 else parts[0]
    return item


_REPLACED = {"command", "entrypoint", "test"}


def merge(base: Any, over: Any, path: str, file: str, origin: dict[str, str]) -> Any:
    """`over` merged onto `base` (compose-spec merge rules); records `file` as the origin of every key set."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            sub = f"{path}.{k}" if path else k
            out[k] = merge(base[k], v, sub, file, origin) if k in base else _mark(v, sub, file, origin)
        origin[path] = origin.get(path, file)
        return out
    if (isinstance(base, list) and isinstance(over, list)
            and path.rpartition(".")[2] not in _REPLACED):
        _mark(over, path, file, origin)
        return base + [v for v in over if v not in base]
    return _mark(over, path, file, origin)


def _mark(v: Any, path: str, file: str, origin: dict[str, str]) -> Any:
    origin[path] = file
    if isinstance(v, dict):
        for k, item in v.items():
            _mark(item, f"{path}.{k}" if path else k, file, origin)
    return v


@dataclass
class Loaded:
    doc: dict[str, Any]
    ctx: Ctx
    lookup: Lookup


def load(files: list[tuple[str, str]], env: Mapping[str, str], dotenv: str | None) -> Loaded:
    """Parse, interpolate, canonicalise and merge `files` in order into one document."""
    ctx = Ctx([path for path, _ in files])
    if not files:
        raise TranslateError("<none>", "(files)", "no Compose file given")
    env_values: dict[str, str] = {}
    base_lookup: Lookup = lambda name: env.get(name)  # noqa: E731
    if dotenv is not None:
        env_values = parse_dotenv(dotenv, ".env", base_lookup)

    def lookup(name: str) -> str | None:
        found = env.get(name)
        return found if found is not None else env_values.get(name)

    merged: dict[str, Any] = {}
    for path, text in files:
        raw = load_yaml(text, path)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise TranslateError(path, "(document)", f"Top-level object must be a mapping, not {_kind(raw)}")
        doc = interpolate(raw, path, lookup, ctx)
        services = _mapping(doc.get("services"), path, "services")
        doc["services"] = {name: canonical_service(svc, path, f"services.{name}") for name, svc in services.items()}
        for top in ("networks", "volumes", "configs", "secrets"):
            if top in doc:
                section = _mapping(doc[top], path, top)
                doc[top] = {name: _mapping(v, path, f"{top}.{name}") for name, v in section.items()}
        merged = merge(merged, doc, "", path, ctx.origin)
    return Loaded(merged, ctx, lookup)
