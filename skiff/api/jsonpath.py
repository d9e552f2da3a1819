"""The JSONPath subset of kubectl and the API server (`k8s.io/client-go/util/jsonpath`).

Used for CRD `additionalPrinterColumns`, the `scale` subresource paths and `selectableFields`. Supported:
`.a.b`, `['a.b']`, `[0]`, `[-1]`, `[1:3]`, `[*]`, `.*`, `..name` (recursive descent), unions `[0,2]` /
`['a','b']`, and filters `[?(@.type=="Ready")]` (`==`, `!=`, `<`, `<=`, `>`, `>=`, or bare existence
`[?(@.x)]`). An optional surrounding `{...}` is accepted, as in kubectl's `-o jsonpath={.a}`.

Like upstream with `AllowMissingKeys(true)` (which the API server uses for printer columns), a missing
key or index yields no result rather than an error. Parsing errors raise `JSONPathError`.
Evaluation never mutates the input.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson


class JSONPathError(ValueError):
    """The expression is not valid JSONPath (message as a user would read it)."""


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Wildcard:
    pass


@dataclass(frozen=True)
class Recursive:
    pass


@dataclass(frozen=True)
class Index:
    indexes: tuple[int, ...]


@dataclass(frozen=True)
class Slice:
    start: int | None
    end: int | None
    step: int | None


@dataclass(frozen=True)
class Union:
    names: tuple[str, ...]


@dataclass(frozen=True)
class Filter:
    left: tuple[Step, ...]
    op: str  # "exists" | "==" | "!=" | "<" | "<=" | ">" | ">="
    right: Any = None
    right_path: tuple[Step, ...] | None = None


Step = Field | Wildcard | Recursive | Index | Slice | Union | Filter

_IDENT = re.compile(r"[A-Za-z0-9_\-$/:]+")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


class _Parser:
    """Recursive-descent parser over one expression; `pos` walks `text`."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> JSONPathError:
        return JSONPathError(f"invalid JSONPath {self.text!r}: {why} at position {self.pos}")

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def parse_steps(self, stop: str = "") -> tuple[Step, ...]:
        steps: list[Step] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if stop and ch in stop:
                break
            if self.peek(2) == "..":
                self.pos += 1  # leave the second '.' to start the following field
                steps.append(Recursive())
                continue
            if ch == ".":
                self.pos += 1
                if self.peek() == "*":
                    self.pos += 1
                    steps.append(Wildcard())
                    continue
                if self.peek() in ("", "[") or (stop and self.peek() in stop):
                    continue  # "." alone is the current object
                m = _IDENT.match(self.text, self.pos)
                if not m:
                    raise self.fail("expected a field name")
                self.pos = m.end()
                steps.append(Field(m.group(0)))
                continue
            if ch == "[":
                steps.append(self.parse_bracket())
                continue
            if ch == "@" and not steps:
                self.pos += 1
                continue
            m = _IDENT.match(self.text, self.pos)
            if m and not steps:  # relaxed leading field: `spec.replicas`
                self.pos = m.end()
                steps.append(Field(m.group(0)))
                continue
            raise self.fail(f"unexpected {ch!r}")
        if steps and isinstance(steps[-1], Recursive):
            raise self.fail("'..' must be followed by a field or subscript")
        return tuple(steps)

    def parse_bracket(self) -> Step:
        end = self._matching_bracket(self.pos)
        inner = self.text[self.pos + 1 : end].strip()
        start = self.pos
        self.pos = end + 1
        if inner == "*":
            return Wildcard()
        if inner.startswith("?"):
            return self._parse_filter(inner[1:].strip(), start)
        if inner and inner[0] in "'\"":
            names = [self._unquote(p.strip()) for p in _split_top(inner, ",")]
            return Field(names[0]) if len(names) == 1 else Union(tuple(names))
        if ":" in inner:
            parts = inner.split(":")
            if len(parts) > 3:
                raise self.fail("invalid slice")
            vals: list[int | None] = []
            for p in parts:
                p = p.strip()
                if p and not re.fullmatch(r"-?\d+", p):
                    raise self.fail(f"invalid array index {p!r}")
                vals.append(int(p) if p else None)
            while len(vals) < 3:
                vals.append(None)
            return Slice(vals[0], vals[1], vals[2])
        idx = []
        for p in inner.split(","):
            p = p.strip()
            if not re.fullmatch(r"-?\d+", p):
                raise self.fail(f"invalid array index {p!r}")
            idx.append(int(p))
        return Index(tuple(idx))

    def _matching_bracket(self, at: int) -> int:
        depth = 0
        quote = ""
        i = at
        while i < len(self.text):
            c = self.text[i]
            if quote:
                if c == "\\":
                    i += 2
                    continue
                if c == quote:
                    quote = ""
            elif c in "'\"":
                quote = c
            elif c == "[":
                depth += 1
            elif c == "]":
                depth -= 1
                if depth == 0:
                    return i
            i += 1
        raise self.fail("unclosed '['")

    def _unquote(self, s: str) -> str:
        if len(s) < 2 or s[0] != s[-1] or s[0] not in "'\"":
            raise self.fail(f"invalid quoted name {s!r}")
        return s[1:-1].replace("\\" + s[0], s[0])

    def _parse_filter(self, body: str, start: int) -> Filter:
        if not (body.startswith("(") and body.endswith(")")):
            raise JSONPathError(f"invalid JSONPath {self.text!r}: filter must be ?(...) at position {start}")
        expr = body[1:-1].strip()
        m = re.search(r"(==|!=|<=|>=|<|>)", _mask_quotes(expr))
        if not m:
            return Filter(_Parser(expr).parse_steps(), "exists")
        left_text, right_text = expr[: m.start()].strip(), expr[m.end() :].strip()
        left = _Parser(left_text).parse_steps()
        if right_text.startswith("@") or right_text.startswith("."):
            return Filter(left, m.group(1), right_path=_Parser(right_text).parse_steps())
        return Filter(left, m.group(1), right=_literal(right_text, self))


def _mask_quotes(text: str) -> str:
    """`text` with quoted parts blanked, so operators inside string literals are not split on."""
    out = []
    quote = ""
    for c in text:
        if quote:
            out.append(" ")
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
            out.append(" ")
        else:
            out.append(c)
    return "".join(out)


def _split_top(text: str, sep: str) -> list[str]:
    parts, cur, quote = [], [], ""
    for c in text:
        if quote:
            cur.append(c)
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
            cur.append(c)
        elif c == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return parts


def _literal(text: str, parser: _Parser) -> Any:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if _NUMBER.fullmatch(text):
        return float(text) if "." in text else int(text)
    raise parser.fail(f"unrecognized filter value {text!r}")


@dataclass(frozen=True)
class JSONPath:
    """A compiled expression; `find` returns every matching value, in document order."""

    expr: str
    steps: tuple[Step, ...]

    def find(self, obj: Any) -> list[Any]:
        return list(_walk(self.steps, [obj]))

    def first(self, obj: Any, default: Any = None) -> Any:
        found = self.find(obj)
        return found[0] if found else default


def parse(expr: str) -> JSONPath:
    """Compile `expr` (`.spec.replicas`, `{.status.conditions[?(@.type=="Ready")].status}`)."""
    text = expr.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if not text:
        raise JSONPathError(f"invalid JSONPath {expr!r}: empty expression")
    if text.startswith("$"):
        text = text[1:]
    return JSONPath(expr, _Parser(text).parse_steps())


def find(expr: str, obj: Any) -> list[Any]:
    """All values `expr` selects in `obj` (empty when nothing matches)."""
    return parse(expr).find(obj)


def _walk(steps: tuple[Step, ...], values: list[Any]) -> Iterator[Any]:
    for step in steps:
        values = list(_apply(step, values))
    yield from values


def _descendants(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from _descendants(v)
    elif isinstance(value, list):
        for v in value:
            yield from _descendants(v)


def _apply(step: Step, values: list[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(step, Field):
            if isinstance(value, dict) and step.name in value:
                yield value[step.name]
        elif isinstance(step, Union):
            if isinstance(value, dict):
                yield from (value[n] for n in step.names if n in value)
        elif isinstance(step, Wildcard):
            if isinstance(value, dict):
                yield from value.values()
            elif isinstance(value, list):
                yield from value
        elif isinstance(step, Recursive):
            yield from _descendants(value)
        elif isinstance(step, Index):
            if isinstance(value, list):
                for i in step.indexes:
                    if -len(value) <= i < len(value):
                        yield value[i]
        elif isinstance(step, Slice):
            if isinstance(value, list):
                yield from value[step.start : step.end : step.step]
        elif isinstance(step, Filter) and isinstance(value, list):
            yield from (item for item in value if _keep(step, item))


def _keep(f: Filter, item: Any) -> bool:
    left = list(_walk(f.left, [item]))
    if f.op == "exists":
        return bool(left)
    if not left:
        return False
    if f.right_path is not None:
        right_vals = list(_walk(f.right_path, [item]))
        if not right_vals:
            return False
        right = right_vals[0]
    else:
        right = f.right
    return _compare(left[0], f.op, right)


def _compare(a: Any, op: str, b: Any) -> bool:
    """Upstream compares numbers with numbers and strings with strings; other pairs never order."""
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    if isinstance(a, int | float) and isinstance(b, int | float):
        return _order(float(a), float(b), op)
    if isinstance(a, str) and isinstance(b, str):
        return _order(a, b, op)
    return False


def _order(x: Any, y: Any, op: str) -> bool:
    return bool({"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op])


def format_value(value: Any) -> str:
    """Text of one result as kubectl's jsonpath printer writes it: strings raw, maps/lists as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)
