"""Server-side apply and managedFields bookkeeping over plain dicts.

Mirrors `sigs.k8s.io/structured-merge-diff/v4/merge/update.go` (Updater.Apply / Updater.Update) as wrapped by
`k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager` (managedfields/internal):
- Apply merges the applied configuration into the live object (maps merge, `listType=map` lists merge by
  their keys, `set` lists union, atomic lists and `structType=atomic` structs are replaced), then prunes
  the fields this manager applied last time but omits now, unless another manager owns them;
- a changed or added field owned by another manager is a conflict (409, `FieldManagerConflict` causes)
  unless `force`, which moves ownership to the applier; equal values are shared, not conflicts;
- every write records the fields it changed as owned by its manager (Update operation) and takes them
  away from the other managers; removed fields leave every set; empty entries are dropped;
- apiVersion, kind and the server-set metadata (name, namespace, uid, resourceVersion, generation,
  creationTimestamp, managedFields, selfLink) are never tracked (internal/stripmeta.go);
- entries are sorted by operation, time, manager, apiVersion, subresource (internal/managedfields.go).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from skiff.api.errors import ApiError, bad_request
from skiff.api.meta import json_copy
from skiff.api.schema import TypeRef
from skiff.apiserver.patch._types import Slot, field_slot, item_slot, root
from skiff.apiserver.patch.fieldpath import (
    FieldSet,
    Path,
    compare,
    decode,
    encode,
    is_atomic_map,
    item_element,
    list_kind,
    path_text,
    to_field_set,
)

BEFORE_FIRST_APPLY = "before-first-apply"
ANCIENT_CHANGES = "ancient-changes"
MAX_UPDATE_MANAGERS = 10
FIELD_MANAGER_MAX_LENGTH = 128

_STRIP_EXACT: frozenset[Path] = frozenset({("f:apiVersion",), ("f:kind",), ("f:metadata",)})
_STRIP_PREFIX: tuple[Path, ...] = tuple(
    ("f:metadata", "f:" + name)
    for name in (
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    )
)


def default_field_manager(user_agent: str) -> str:
    """The manager name used when a request has no `fieldManager`: the user agent up to its first `/`,
    printable characters only, at most 128 bytes (handlers/rest.go prefixFromUserAgent). kubectl sends
    explicit names itself (`kubectl-client-side-apply`, `kubectl-edit`, `kubectl-patch`, `kubectl`...)."""
    out = ""
    for ch in user_agent.split("/", 1)[0]:
        if not ch.isprintable() or unicodedata.category(ch) == "Cc":
            continue
        if len((out + ch).encode()) > FIELD_MANAGER_MAX_LENGTH:
            break
        out += ch
    return out


# --- entries -----------------------------------------------------------------------------------------


@dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    time: str | None
    subresource: str = ""
    fields: FieldSet = field(default_factory=set)

    def ident(self) -> tuple[str, str, str, str]:
        # Appliers are identified without their apiVersion (internal BuildManagerIdentifier).
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def printed(self) -> str:
        """How conflict messages name the manager (internal/conflict.go printManager)."""
        text = f'"{self.manager}"'
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text

    def encoded(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = encode(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def _decode_entries(raw: Any) -> list[_Entry]:
    entries: list[_Entry] = []
    if not isinstance(raw, list):
        return entries
    for item in raw:
        if not isinstance(item, dict) or item.get("fieldsType", "FieldsV1") != "FieldsV1":
            continue
        entries.append(
            _Entry(
                manager=str(item.get("manager") or ""),
                operation=str(item.get("operation") or "Update"),
                api_version=str(item.get("apiVersion") or ""),
                time=item.get("time"),
                subresource=str(item.get("subresource") or ""),
                fields=decode(item.get("fieldsV1")),
            )
        )
    return entries


def _cap_update_entries(entries: list[_Entry]) -> list[_Entry]:
    """Keep at most MAX_UPDATE_MANAGERS Update entries: the oldest are folded, per apiVersion, into an
    `ancient-changes` entry (internal/capmanagers.go)."""
    updaters = sorted((e for e in entries if e.operation != "Apply"), key=lambda e: e.time or "")
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return entries
    count = len(updaters)
    first: dict[str, _Entry] = {}
    bucket: dict[str, _Entry] = {}
    dropped: list[_Entry] = []
    for e in updaters:
        if count <= MAX_UPDATE_MANAGERS:
            break
        if e.api_version not in first:
            first[e.api_version] = e
            continue
        if e.api_version not in bucket:
            head = first[e.api_version]
            bucket[e.api_version] = _Entry(
                ANCIENT_CHANGES, "Update", e.api_version, head.time, "", set(head.fields)
            )
            dropped.append(head)
        b = bucket[e.api_version]
        b.fields |= e.fields
        b.time = e.time
        dropped.append(e)
        count -= 1
    kept = [e for e in entries if not any(e is d for d in dropped)]
    return kept + list(bucket.values())


def _store_entries(obj: dict[str, Any], entries: list[_Entry]) -> None:
    live = _cap_update_entries([e for e in entries if e.fields])
    live.sort(key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource))
    meta = obj.setdefault("metadata", {})
    if live:
        meta["managedFields"] = [e.encoded() for e in live]
    else:
        meta.pop("managedFields", None)


def _without_managed_fields(obj: dict[str, Any] | None) -> dict[str, Any]:
    """A read-only view without managedFields (shallow: the comparison never mutates its inputs)."""
    if obj is None:
        return {}
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        return {**obj, "metadata": {k: val for k, val in meta.items() if k != "managedFields"}}
    return obj


def _filter(paths: Iterable[Path], ignore_fields: Collection[str]) -> FieldSet:
    prefixes = set(_STRIP_PREFIX) | {tuple("f:" + p for p in f.split(".")) for f in ignore_fields}
    lengths = sorted({len(pre) for pre in prefixes})
    return {p for p in paths if p not in _STRIP_EXACT and not any(p[:n] in prefixes for n in lengths)}


# --- merge and prune ---------------------------------------------------------------------------------

_MISSING: Any = object()


def _merge_value(live: Any, cfg: Any, slot: Slot) -> Any:
    if isinstance(cfg, dict) and isinstance(live, dict) and not is_atomic_map(slot.ref):
        return _merge_map(live, cfg, slot.ref)
    if isinstance(cfg, list) and isinstance(live, list) and list_kind(slot)[0] != "atomic":
        return _merge_list(live, cfg, slot)
    return json_copy(cfg)


def _merge_map(live: dict[str, Any], cfg: dict[str, Any], ref: TypeRef | None) -> dict[str, Any]:
    out = json_copy(live)
    for key, value in cfg.items():
        out[key] = _merge_value(live.get(key, _MISSING), value, field_slot(ref, key))
    return out


def _merge_list(live: list[Any], cfg: list[Any], slot: Slot) -> list[Any]:
    """Merge associative lists keeping the applied order, live-only items interleaved where they were
    (structured-merge-diff typed/merge.go visitListItems)."""
    islot = item_slot(slot)

    def index(items: list[Any]) -> tuple[list[str], dict[str, Any]]:
        order: list[str] = []
        seen: dict[str, Any] = {}
        for item in items:
            pe = item_element(item, slot)
            if pe not in seen:
                seen[pe] = item
                order.append(pe)
        return order, seen

    l_order, l_items = index(live)
    r_order, r_items = index(cfg)
    shared = [pe for pe in r_order if pe in l_items]
    out: list[Any] = []
    li = ri = 0
    next_shared = shared.pop(0) if shared else None
    while li < len(l_order) or ri < len(r_order):
        if li < len(l_order) and ri < len(r_order):
            pe = l_order[li]
            if pe == r_order[ri]:
                out.append(_merge_value(l_items[pe], r_items[pe], islot))
                li += 1
                ri += 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in r_items and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < len(l_order):
            pe = l_order[li]
            if pe not in r_items:
                out.append(json_copy(l_items[pe]))
                li += 1
                continue
            if ri >= len(r_order):
                li += 1  # shared item already emitted from the applied side
                continue
        if ri < len(r_order):
            pe = r_order[ri]
            out.append(_merge_value(l_items.get(pe, _MISSING), r_items[pe], islot))
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


def _prune(obj: dict[str, Any], ref: TypeRef | None, remove: FieldSet, owned: FieldSet) -> None:
    """Remove `remove` paths from `obj`, keeping anything with an owned descendant; containers emptied by
    the removal go too unless owned themselves."""
    kept_prefixes = {p[:i] for p in owned for i in range(1, len(p))}
    for path in sorted(remove, key=len):
        if path in kept_prefixes or _is_key_field(path):
            continue
        _remove(obj, ref, path, (), owned | kept_prefixes)


def _is_key_field(path: Path) -> bool:
    """A key field of a kept list item is part of the item's identity and stays with it."""
    if len(path) < 2 or not path[-2].startswith("k:"):
        return False
    return path[-1][2:] in json.loads(path[-2][2:])


def _remove(node: dict[str, Any], ref: TypeRef | None, path: Path, at: Path, keep: FieldSet) -> None:
    pe = path[0]
    if not pe.startswith("f:") or pe[2:] not in node:
        return
    name = pe[2:]
    here = (*at, pe)
    if len(path) == 1:
        del node[name]
        return
    slot = field_slot(ref, name)
    child = node[name]
    if isinstance(child, dict):
        _remove(child, slot.ref, path[1:], here, keep)
    elif isinstance(child, list):
        for j, item in enumerate(child):
            if item_element(item, slot) != path[1]:
                continue
            if len(path) == 2:
                del child[j]
            elif isinstance(item, dict):
                _remove(item, item_slot(slot).ref, path[2:], (*here, path[1]), keep)
            break
    if child in ({}, []) and here not in keep:
        del node[name]


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


# --- public API --------------------------------------------------------------------------------------


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    force: bool,
    model: str | None,
    now: str,
    *,
    ignore_fields: Collection[str] = (),
) -> dict[str, Any]:
    """The live object with `applied` merged in and managedFields updated; inputs are not mutated.

    `ignore_fields` are dotted top-level paths the strategy resets and upstream does not track for this
    endpoint (`status` on the main resource; `spec`/`metadata` on `/status`). Raises ApiError 409
    Conflict (reason Conflict, FieldManagerConflict causes) on conflicts without `force`, 400 when the
    patch carries managedFields or another apiVersion, 422 when `manager` is empty.
    """
    if not manager:
        raise ApiError(
            422,
            "Invalid",
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
            {
                "group": "meta.k8s.io",
                "kind": "PatchOptions",
                "causes": [
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value: is required for apply patch",
                        "field": "fieldManager",
                    }
                ],
            },
        )
    if (applied.get("metadata") or {}).get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")
    if live is not None and live.get("apiVersion") and applied.get("apiVersion") != live.get("apiVersion"):
        raise bad_request(
            "Incorrect version specified in apply patch. "
            f"Specified patch version: {applied.get('apiVersion')}, expected: {live.get('apiVersion')}"
        )
    ref = root(model)
    api_version = str(applied.get("apiVersion") or (live or {}).get("apiVersion") or "")
    live_obj = _without_managed_fields(live)
    config = _strip_nulls(applied)

    entries = _decode_entries((live or {}).get("metadata", {}).get("managedFields"))
    if live is not None and not entries:
        # Objects written before any field tracking: their fields belong to one Update manager, so the
        # first apply still sees conflicts (fieldmanager "before-first-apply").
        entries = [
            _Entry(
                BEFORE_FIRST_APPLY,
                "Update",
                api_version,
                now,
                "",
                _filter(to_field_set(live_obj, ref), ignore_fields),
            )
        ]
    mine = _Entry(manager, "Apply", api_version, now, "", _filter(to_field_set(config, ref), ignore_fields))
    previous = next((e for e in entries if e.ident() == mine.ident()), None)
    others = [e for e in entries if e.ident() != mine.ident()]

    merged = _merge_map(live_obj, config, ref)
    if previous is not None:
        owned = set(mine.fields).union(*(e.fields for e in others))
        _prune(merged, ref, previous.fields - owned, owned)

    diff = compare(live_obj, merged, ref)
    changed = _filter(diff.added | diff.modified, ignore_fields)
    conflicts = [(e, p) for e in others for p in sorted(e.fields & changed, key=path_text)]
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for e in others:
        e.fields -= changed
        e.fields -= diff.removed
    _store_entries(merged, [*others, mine])
    return merged


def _conflict_error(conflicts: list[tuple[_Entry, Path]]) -> ApiError:
    """409 as structured-merge-diff reports it (fieldmanager internal/conflict.go NewConflictError)."""
    conflicts.sort(key=lambda c: (c[0].printed(), path_text(c[1])))
    causes = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {e.printed()}", "field": path_text(p)}
        for e, p in conflicts
    ]
    if len(conflicts) == 1:
        e, p = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {e.printed()}: {path_text(p)}"
    else:
        lines: list[str] = []
        last = ""
        for e, p in conflicts:
            if e.printed() != last:
                last = e.printed()
                lines.append(f"conflicts with {last}:")
            lines.append(f"- {path_text(p)}")
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, {"causes": causes})


def update_managed_fields(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    operation: str,
    now: str,
    subresource: str = "",
    *,
    model: str | None = None,
    ignore_fields: Collection[str] = (),
) -> None:
    """Record in `new.metadata.managedFields` the fields this write changed as owned by `manager`.

    Entries come from `new` when the client sent some (not on subresources), else from `old`, so clients
    that drop managedFields cannot erase them (fieldmanager.go Update). Changed fields move to this
    manager's entry for (manager, operation, apiVersion, subresource), whose time becomes `now`; fields
    the write removed leave every entry; entries left empty are dropped. Mutates `new` only.
    """
    ref = root(model)
    sent = (new.get("metadata") or {}).get("managedFields")
    source = sent if sent and not subresource else (old or {}).get("metadata", {}).get("managedFields")
    entries = _decode_entries(source)
    old_obj = _without_managed_fields(old)
    new_obj = _without_managed_fields(new)
    # Top-level fields this write cannot own (status on the main resource, spec on /status) are left out of
    # the comparison rather than filtered from it: a pod's spec is most of the work.
    skip = {f for f in ignore_fields if "." not in f}
    if skip:
        old_obj = {k: val for k, val in old_obj.items() if k not in skip}
        new_obj = {k: val for k, val in new_obj.items() if k not in skip}
    diff = compare(old_obj, new_obj, ref)
    changed = _filter(diff.added | diff.modified, ignore_fields)
    removed = _filter(diff.removed, ignore_fields)
    api_version = str(new.get("apiVersion") or (old or {}).get("apiVersion") or "")
    me = _Entry(manager, operation, api_version, now, subresource)
    for e in entries:
        e.fields -= removed
        if e.ident() != me.ident():
            e.fields -= changed
    current = next((e for e in entries if e.ident() == me.ident()), None)
    if changed:
        if current is None:
            current = me
            entries.append(current)
        current.fields |= changed
        current.time = now
        current.api_version = api_version
    _store_entries(new, entries)


__all__ = [
    "BEFORE_FIRST_APPLY",
    "default_field_manager",
    "server_side_apply",
    "update_managed_fields",
]
