"""Label and field selectors: the query string syntax and `metav1.LabelSelector` objects.

Parsing follows `apimachinery/pkg/labels/selector.go` (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`)
and `apimachinery/pkg/fields` (terms joined by `,` with `=`, `==`, `!=`). A selector compiles once to a
matcher function so hot paths (lists, informers, the scheduler) do not reparse.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Matcher = Callable[[Mapping[str, str]], bool]


class SelectorError(ValueError):
    pass


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!":
            return self.key not in labels
        if self.op in ("=", "in"):
            return self.key in labels and labels[self.key] in self.values
        if self.op in ("!=", "notin"):
            return self.key not in labels or labels[self.key] not in self.values
        if self.op in ("gt", "lt"):
            if self.key not in labels:
                return False
            try:
                have, want = int(labels[self.key]), int(self.values[0])
            except ValueError:
                return False
            return have > want if self.op == "gt" else have < want
        raise SelectorError(f"unknown operator {self.op}")


_TOKEN = re.compile(r"\s*(!=|==|=|\(|\)|,|!|[^\s!=(),]+)")


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            if text[pos:].strip() == "":
                break
            raise SelectorError(f"unable to parse requirement: invalid label selector {text!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse `a=b,c!=d,e in (f,g),!h`; raises SelectorError on bad syntax."""
    toks = _tokens(text or "")
    reqs: list[Requirement] = []
    i = 0

    def expect_value(j: int) -> str:
        if j >= len(toks) or toks[j] in ("(", ")", ",", "!", "=", "==", "!="):
            raise SelectorError(f"unable to parse requirement: found '{toks[j] if j < len(toks) else ''}', expected: identifier")
        return toks[j]

    while i < len(toks):
        if toks[i] == "!":
            key = expect_value(i + 1)
            reqs.append(Requirement(key, "!"))
            i += 2
        else:
            key = toks[i]
            nxt = toks[i + 1] if i + 1 < len(toks) else ","
            if nxt == ",":
                reqs.append(Requirement(key, "exists"))
                i += 1
            elif nxt in ("=", "=="):
                val = toks[i + 2] if i + 2 < len(toks) and toks[i + 2] != "," else ""
                reqs.append(Requirement(key, "=", (val,)))
                i += 3 if val else 2
            elif nxt == "!=":
                val = toks[i + 2] if i + 2 < len(toks) and toks[i + 2] != "," else ""
                reqs.append(Requirement(key, "!=", (val,)))
                i += 3 if val else 2
            elif nxt in ("in", "notin"):
                if i + 2 >= len(toks) or toks[i + 2] != "(":
                    raise SelectorError("unable to parse requirement: found '', expected: '('")
                j, vals = i + 3, []
                while j < len(toks) and toks[j] != ")":
                    if toks[j] != ",":
                        vals.append(toks[j])
                    j += 1
                if j >= len(toks):
                    raise SelectorError("unable to parse requirement: found '', expected: ')'")
                reqs.append(Requirement(key, nxt, tuple(vals)))
                i = j + 1
            else:
                raise SelectorError(f"unable to parse requirement: found '{nxt}', expected: in, notin, =, ==, !=, gt, lt")
        if i < len(toks):
            if toks[i] != ",":
                raise SelectorError(f"found '{toks[i]}', expected: ',' or 'end of string'")
            i += 1
    return reqs


def compile_requirements(reqs: list[Requirement]) -> Matcher:
    if not reqs:
        return lambda labels: True
    return lambda labels: all(r.matches(labels) for r in reqs)


def label_matcher(text: str | None) -> Matcher:
    return compile_requirements(parse_label_selector(text or ""))


def selector_requirements(sel: Mapping[str, Any] | None) -> list[Requirement]:
    """Requirements of a `metav1.LabelSelector` (matchLabels + matchExpressions)."""
    if sel is None:
        return []
    reqs = [Requirement(k, "=", (v,)) for k, v in (sel.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in sel.get("matchExpressions") or []:
        op = ops.get(expr.get("operator", ""))
        if op is None:
            raise SelectorError(f"{expr.get('operator')!r} is not a valid label selector operator")
        reqs.append(Requirement(expr["key"], op, tuple(expr.get("values") or ())))
    return reqs


def label_selector_matcher(sel: Mapping[str, Any] | None) -> Matcher:
    """Matcher for a LabelSelector object. A null selector matches nothing; an empty one matches all."""
    if sel is None:
        return lambda labels: False
    return compile_requirements(selector_requirements(sel))


def selector_to_string(sel: Mapping[str, Any] | None) -> str:
    """String form of a LabelSelector (`app=x,tier in (a,b)`), as in Scale.status.selector."""
    parts = []
    for r in sorted(selector_requirements(sel), key=lambda r: r.key):
        if r.op == "=":
            parts.append(f"{r.key}={r.values[0]}")
        elif r.op in ("in", "notin"):
            parts.append(f"{r.key} {r.op} ({','.join(sorted(r.values))})")
        elif r.op == "exists":
            parts.append(r.key)
        elif r.op == "!":
            parts.append(f"!{r.key}")
    return ",".join(parts)


@dataclass(frozen=True)
class FieldTerm:
    field: str
    op: str  # "=" or "!="
    value: str


def parse_field_selector(text: str | None) -> list[FieldTerm]:
    terms = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        for op in ("!=", "==", "="):
            if op in part:
                field, value = part.split(op, 1)
                terms.append(FieldTerm(field.strip(), "!=" if op == "!=" else "=", value.strip()))
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
    return terms


def field_matcher(terms: list[FieldTerm]) -> Callable[[Mapping[str, str]], bool]:
    def match(fields: Mapping[str, str]) -> bool:
        for t in terms:
            have = fields.get(t.field, "")
            if (have == t.value) != (t.op == "="):
                return False
        return True

    return match
