"""The generic store: CRUD, list and watch for any kind, over the revisioned KV store.

Mirrors upstream's `apiserver/pkg/registry/generic/registry/store.go`: this module owns metadata
(name/generateName, uid, creationTimestamp, resourceVersion, generation, finalizers,
deletionTimestamp), preconditions, dry-run, selectors and watch filtering; the kind's `Strategy`
owns defaulting, validation, the spec/status split and printing. Objects here are always in the
storage version; conversion to a served version happens at the HTTP boundary.

Values in the store are the serialized object *without* `metadata.resourceVersion`; it is set from
the revision on every read, so an object's resourceVersion is always the revision that wrote it.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from skiff.api import errors
from skiff.api import validation as v
from skiff.api.meta import Obj, json_copy, now, rfc3339
from skiff.api.resources import ResourceInfo
from skiff.api.schema import model_for
from skiff.api.selectors import (
    FieldTerm,
    Matcher,
    SelectorError,
    field_matcher,
    label_matcher,
    parse_field_selector,
)
from skiff.apiserver.admission import CREATE, UPDATE, Attributes, Chain
from skiff.apiserver.patch.apply import update_managed_fields
from skiff.apiserver.registry.strategy import Strategy
from skiff.storage.interface import (
    KV,
    Compacted,
    Event,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    RevisionMismatch,
    StorageError,
    Store,
)

# Upstream's generateName suffix alphabet (no vowels, no confusable characters) and length.
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_MAX_RETRIES = 16

NamespaceLookup = Callable[[str], Awaitable[Obj | None]]


@dataclass
class WriteOptions:
    """Per-request options of a write (query parameters and identity)."""

    dry_run: bool = False
    field_manager: str = ""
    subresource: str = ""  # "" | "status" (scale is handled by the HTTP layer over update)
    # Server-side apply computed managedFields already (operation Apply): keep them, record no Update entry.
    applied: bool = False


@dataclass
class DeleteOptions:
    dry_run: bool = False
    propagation_policy: str | None = None  # Orphan | Background | Foreground
    grace_period_seconds: int | None = None
    preconditions: dict[str, Any] = field(default_factory=dict)


@dataclass
class ListOptions:
    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""


@dataclass
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK | ERROR
    object: Obj


# How many decoded watch values a registry keeps for watchers that are behind: a burst of writes fans out to
# every watcher within a few loop iterations, so a small window serves nearly every event.
_DECODED_CACHE = 4096


def encode(obj: Obj) -> bytes:
    """Serialize for storage: resourceVersion is carried by the store revision, not the value."""
    md = obj.get("metadata") or {}
    if "resourceVersion" in md:
        obj = {**obj, "metadata": {k: val for k, val in md.items() if k != "resourceVersion"}}
    return orjson.dumps(obj)


def decode(kv: KV) -> Obj:
    obj: Obj = orjson.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def _spec_view(obj: Obj) -> Obj:
    """Everything that counts as 'spec' for metadata.generation: all but metadata and status."""
    return {k: val for k, val in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _parse_rv(value: str, what: str = "resourceVersion") -> int:
    try:
        n = int(value)
    except ValueError:
        raise errors.bad_request(f"{what}: Invalid value: \"{value}\": must be a non-negative integer") from None
    if n < 0:
        raise errors.bad_request(f"{what}: Invalid value: \"{value}\": must be a non-negative integer")
    return n


def encode_continue(revision: int, last_key: str) -> str:
    raw = orjson.dumps({"v": "skiff.continue/1", "rv": revision, "start": last_key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        return int(data["rv"]), str(data["start"])
    except Exception:
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion (version skiff.continue/1)") from None


def _match_all(obj: Obj) -> bool:
    return True


class Registry:
    """CRUD/list/watch of one kind in its storage version."""

    def __init__(self, store: Store, strategy: Strategy, namespace_lookup: NamespaceLookup | None = None) -> None:
        self.store = store
        self.strategy = strategy
        self.info: ResourceInfo = strategy.info
        self._namespace_lookup = namespace_lookup
        probe: Obj = {"metadata": {}, "spec": {}, "status": {}}
        try:
            extra = set(strategy.fields(probe))
        except Exception:
            extra = set()
        self.selectable_fields = {"metadata.name", "metadata.namespace", *extra}
        self.model = model_for(self.info.group, self.info.version, self.info.kind)
        # Recently watched values by (key, revision), oldest first: see `_decode_shared`.
        self._decoded: dict[tuple[str, int], Obj] = {}
        # Admission plugins (set by the ControlPlane); None in tests that use a bare registry.
        self.admission: Chain | None = None

    def ignored_fields(self, subresource: str) -> tuple[str, ...]:
        """Fields a write cannot own: with a status subresource, status on the main resource and spec on /status
        (upstream's per-strategy reset fields)."""
        if not self.strategy.status_subresource:
            return ()
        return ("spec",) if subresource == "status" else ("status",)

    def _track(self, old: Obj | None, new: Obj, opts: WriteOptions) -> None:
        if opts.applied:
            return
        update_managed_fields(old, new, opts.field_manager or "unknown", "Update", rfc3339(), opts.subresource,
                              model=self.model, ignore_fields=self.ignored_fields(opts.subresource))

    # --- helpers -------------------------------------------------------------------------------------

    def _key(self, namespace: str, name: str) -> str:
        return self.info.key(namespace or None, name)

    def _prefix(self, namespace: str) -> str:
        return self.info.key_prefix(namespace or None)

    def _not_found(self, name: str) -> errors.ApiError:
        return errors.not_found(self.info.plural, self.info.group, name)

    def _conflict(self, name: str, why: str | None = None) -> errors.ApiError:
        return errors.conflict(self.info.plural, self.info.group, name, why)

    def _invalid(self, name: str, errs: list[v.FieldError]) -> errors.ApiError:
        return errors.invalid(self.info.kind, self.info.group, name, errs)

    def field_set(self, obj: Obj) -> dict[str, str]:
        md = obj.get("metadata") or {}
        fields = {"metadata.name": md.get("name", ""), "metadata.namespace": md.get("namespace", "")}
        fields.update(self.strategy.fields(obj))
        return fields

    def matcher(self, opts: ListOptions) -> Callable[[Obj], bool]:
        """Compile label and field selectors once; 400 with upstream wording on bad syntax."""
        if not opts.label_selector and not opts.field_selector:  # the common case (admission lookups, informers)
            return _match_all
        try:
            labels: Matcher = label_matcher(opts.label_selector)
        except SelectorError as e:
            raise errors.bad_request(f"unable to parse requirement: {e}") from None
        try:
            terms: list[FieldTerm] = parse_field_selector(opts.field_selector)
        except SelectorError as e:
            raise errors.bad_request(str(e)) from None
        for t in terms:
            if t.field not in self.selectable_fields:
                raise errors.bad_request(f'field label not supported: {t.field}')
        fields = field_matcher(terms)
        if not opts.label_selector and not terms:
            return lambda obj: True

        def match(obj: Obj) -> bool:
            return labels((obj.get("metadata") or {}).get("labels") or {}) and (not terms or fields(self.field_set(obj)))

        return match

    async def _check_namespace(self, namespace: str, name: str, creating: bool) -> None:
        if not self.info.namespaced or self._namespace_lookup is None:
            return
        ns = await self._namespace_lookup(namespace)
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if creating and (ns.get("metadata") or {}).get("deletionTimestamp"):
            raise errors.forbidden(
                f'{errors.qualified(self.info.plural, self.info.group)} "{name}" is forbidden: unable to create new '
                f"content in namespace {namespace} because it is being terminated"
            )

    def _validate_metadata(self, obj: Obj, namespace: str) -> list[v.FieldError]:
        md = obj.get("metadata") or {}
        errs: list[v.FieldError] = []
        name = md.get("name")
        if not name:
            errs.append(v.required("metadata.name", "name or generateName is required"))
        elif not isinstance(name, str):
            errs.append(v.type_invalid("metadata.name", name, "must be a string"))
        else:
            errs += v.check("metadata.name", name, self.strategy.name_rule(name))
        if self.info.namespaced and not namespace:
            errs.append(v.required("metadata.namespace"))
        errs += v.labels("metadata.labels", md.get("labels"))
        errs += v.annotation_map("metadata.annotations", md.get("annotations"))
        for i, f in enumerate(md.get("finalizers") or []):
            if not isinstance(f, str):
                errs.append(v.type_invalid(f"metadata.finalizers[{i}]", f, "must be a string"))
            elif "/" in f or f in ("kubernetes", "orphan", "foregroundDeletion"):
                errs += v.check(f"metadata.finalizers[{i}]", f, v.qualified_name(f) if "/" in f else [])
        for i, ref in enumerate(md.get("ownerReferences") or []):
            p = f"metadata.ownerReferences[{i}]"
            for k in ("apiVersion", "kind", "name", "uid"):
                if not (ref or {}).get(k):
                    errs.append(v.invalid(f"{p}.{k}", (ref or {}).get(k, ""), f"{k} must not be empty"))
        controllers = [r for r in md.get("ownerReferences") or [] if (r or {}).get("controller")]
        if len(controllers) > 1:
            errs.append(v.invalid("metadata.ownerReferences", md.get("ownerReferences"), "Only one reference can have Controller set to true."))
        return errs

    # --- reads ---------------------------------------------------------------------------------------

    async def get(self, namespace: str, name: str) -> Obj:
        kv = await self.store.get(self._key(namespace, name))
        if kv is None:
            raise self._not_found(name)
        return decode(kv)

    async def try_get(self, namespace: str, name: str) -> Obj | None:
        kv = await self.store.get(self._key(namespace, name))
        return decode(kv) if kv else None

    async def list(self, namespace: str, opts: ListOptions) -> Obj:
        """A `<Kind>List` at one revision, with limit/continue as upstream (limit counts matching items)."""
        match = self.matcher(opts)
        revision: int | None = None
        start_after: str | None = None
        prefix = self._prefix(namespace)
        if opts.continue_token:
            revision, start_after = decode_continue(opts.continue_token)
            if not start_after.startswith(prefix):
                raise errors.bad_request("continue key is not valid: key does not match the request")
        elif opts.resource_version not in ("", "0"):
            rv = _parse_rv(opts.resource_version)
            exact = opts.resource_version_match == "Exact" or (opts.limit > 0 and not opts.resource_version_match)
            if exact:
                revision = rv
            elif rv > self.store.revision:
                raise errors.ApiError(504, "Timeout", f"Too large resource version: {rv}, current: {self.store.revision}",
                                      {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1})
        items: list[Obj] = []
        last_key = ""
        more = False
        remaining: int | None = None
        try:
            while True:
                want = opts.limit - len(items) if opts.limit > 0 else None
                batch = None if want is None else max(want, 100 if opts.label_selector or opts.field_selector else want)
                res = await self.store.list(prefix, revision, batch, start_after)
                revision = res.revision
                for i, kv in enumerate(res.items):
                    obj = decode(kv)
                    if match(obj):
                        items.append(obj)
                        last_key = kv.key
                        if opts.limit > 0 and len(items) >= opts.limit:
                            more = res.more or i + 1 < len(res.items)
                            if i + 1 == len(res.items):
                                remaining = res.remaining
                            break
                else:
                    if res.more and res.items:
                        start_after = res.items[-1].key
                        continue
                    more = False
                break
        except Compacted as e:
            if opts.continue_token:
                raise errors.expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a "
                    "new list without the continue parameter, or use the continue token in this response to retrieve "
                    "the remainder of the results. Continuing with the provided token results in an inconsistent list "
                    "- objects that were created, modified, or deleted between the time the first chunk was returned "
                    "and now may show up in the list."
                ) from None
            raise errors.expired(f"too old resource version: {e.requested} ({e.compact_revision})") from None
        except FutureRevision as e:
            raise errors.ApiError(504, "Timeout", f"Too large resource version: {e.requested}, current: {e.current}") from None
        meta: Obj = {"resourceVersion": str(revision)}
        if more:
            meta["continue"] = encode_continue(int(revision or 0), last_key)
            # Upstream reports remainingItemCount only for lists without selectors.
            if not opts.label_selector and not opts.field_selector and remaining is not None:
                meta["remainingItemCount"] = remaining
        return {"kind": f"{self.info.kind}List", "apiVersion": self.info.api_version, "metadata": meta, "items": items}

    # --- create --------------------------------------------------------------------------------------

    async def create(self, namespace: str, obj: Obj, opts: WriteOptions) -> Obj:
        obj = json_copy(obj)
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise errors.bad_request("metadata must be an object")
        if self.info.namespaced:
            if md.get("namespace") and namespace and md["namespace"] != namespace:
                raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
            namespace = namespace or md.get("namespace", "")
            md["namespace"] = namespace
        else:
            md.pop("namespace", None)
            namespace = ""
        obj["kind"] = self.info.kind
        obj["apiVersion"] = self.info.api_version
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            md.pop(k, None)
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = rfc3339()
        if self.strategy.tracks_generation:
            md["generation"] = 1
        else:
            md.pop("generation", None)
        self.strategy.prepare_for_create(obj)
        self.strategy.defaults(obj)
        # Admission, as upstream orders it: mutating plugins before validation, validating ones last.
        attrs: Attributes | None = None
        if self.admission is not None:
            attrs = Attributes(CREATE, self.info, namespace, md.get("name") or "", obj, None, opts.subresource, opts.dry_run)
            await self.admission.admit(attrs)
        errs = self._validate_metadata(obj, namespace) + self.strategy.validate(obj)
        if errs:
            raise self._invalid(md.get("name") or md.get("generateName") or "", errs)
        await self._check_namespace(namespace, md["name"], creating=True)
        if self.admission is not None and attrs is not None:
            await self.admission.validate(attrs)
        if not opts.applied:
            md.pop("managedFields", None)  # the server records ownership; what a client sends on create is not kept
        self._track(None, obj, opts)
        if opts.dry_run:
            if await self.store.get(self._key(namespace, md["name"])) is not None:
                raise errors.already_exists(self.info.plural, self.info.group, md["name"])
            return obj
        try:
            kv = await self.store.create(self._key(namespace, md["name"]), encode(obj))
        except KeyExists:
            raise errors.already_exists(self.info.plural, self.info.group, md["name"]) from None
        md["resourceVersion"] = str(kv.mod_revision)
        return obj

    # --- update --------------------------------------------------------------------------------------

    async def update(self, namespace: str, name: str, obj: Obj, opts: WriteOptions) -> tuple[Obj, bool]:
        """PUT semantics: (object, created). A set resourceVersion is a precondition (409 when stale)."""
        obj = json_copy(obj)
        md = obj.setdefault("metadata", {})
        if md.get("name") and md["name"] != name:
            raise errors.bad_request(f'the name of the object ({md["name"]}) does not match the name on the URL ({name})')
        if self.info.namespaced and md.get("namespace") and md["namespace"] != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        md["name"] = name
        want_rv = md.get("resourceVersion") or ""
        current = await self.store.get(self._key(namespace, name))
        if current is None:
            if self.strategy.allow_create_on_update and opts.subresource == "":
                if want_rv:
                    raise self._not_found(name)
                return await self.create(namespace, obj, opts), True
            raise self._not_found(name)
        if want_rv and str(current.mod_revision) != str(want_rv):
            raise self._conflict(name)

        def mutate(_: Obj) -> Obj:
            return json_copy(obj)

        return await self.guaranteed_update(namespace, name, mutate, opts, current=current, precondition_rv=want_rv), False

    async def guaranteed_update(
        self,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], Obj],
        opts: WriteOptions,
        *,
        current: KV | None = None,
        precondition_rv: str = "",
        bypass_status_split: bool = False,
    ) -> Obj:
        """Read-modify-write with the expected revision, retried on conflicts (upstream GuaranteedUpdate).

        `mutate(live)` returns the desired object (it may be called several times); when the caller pinned a
        resourceVersion, a concurrent change is a 409 instead of a retry.
        """
        key = self._key(namespace, name)
        for _ in range(_MAX_RETRIES):
            if current is None:
                current = await self.store.get(key)
                if current is None:
                    raise self._not_found(name)
            old = decode(current)
            if precondition_rv and old["metadata"]["resourceVersion"] != precondition_rv:
                raise self._conflict(name)
            # A second decode is the cheapest private copy for `mutate` to change.
            desired = mutate(decode(current))
            # Admission on every attempt: mutating plugins before the strategy and validation, validating
            # ones on the prepared object. Subresources with their own rules (bypass) are not admitted.
            attrs: Attributes | None = None
            if self.admission is not None and not bypass_status_split:
                attrs = Attributes(UPDATE, self.info, namespace, name, desired, old, opts.subresource, opts.dry_run)
                await self.admission.admit(attrs)
            prepared = self._prepare_update(desired, old, opts, bypass_status_split)
            if prepared is None:  # nothing changed: no write, same resourceVersion (as upstream)
                return old
            new = prepared
            if self.admission is not None and attrs is not None:
                attrs.object = new
                await self.admission.validate(attrs)
            if opts.dry_run:
                return new
            if self._finalized(new):
                try:
                    kv = await self.store.delete(key, current.mod_revision)
                except RevisionMismatch as e:
                    current = e.current
                    if precondition_rv:
                        raise self._conflict(name) from None
                    continue
                except KeyNotFound:
                    raise self._not_found(name) from None
                new["metadata"]["resourceVersion"] = str(kv.mod_revision)
                return new
            try:
                kv = await self.store.update(key, encode(new), current.mod_revision)
            except RevisionMismatch as e:
                current = e.current
                if precondition_rv:
                    raise self._conflict(name) from None
                continue
            except KeyNotFound:
                raise self._not_found(name) from None
            new["metadata"]["resourceVersion"] = str(kv.mod_revision)
            return new
        raise self._conflict(name)

    def _prepare_update(self, new: Obj, old: Obj, opts: WriteOptions, bypass_status_split: bool = False) -> Obj | None:
        """Apply metadata rules, the strategy and validation; None when the result equals `old`."""
        md = new.setdefault("metadata", {})
        omd = old["metadata"]
        if md.get("uid") and md["uid"] != omd.get("uid"):
            raise self._conflict(omd.get("name", ""), f"Precondition failed: UID in precondition: {md['uid']}, UID in object meta: {omd.get('uid')}")
        new["kind"] = self.info.kind
        new["apiVersion"] = self.info.api_version
        # Fields clients cannot change through an update.
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "name", "namespace"):
            if k in omd:
                md[k] = omd[k]
            else:
                md.pop(k, None)
        md.pop("selfLink", None)
        md["resourceVersion"] = omd["resourceVersion"]
        if bypass_status_split:
            # Subresources with their own rules (pods/binding, namespaces/finalize) set exactly what they mean to.
            errs = []
        elif opts.subresource == "status":
            self.strategy.prepare_for_status_update(new, old)
            errs = self.strategy.validate_status_update(new, old)
        else:
            self.strategy.prepare_for_update(new, old)
            self.strategy.defaults(new)
            errs = self._validate_metadata(new, omd.get("namespace", "")) + self.strategy.validate_update(new, old)
            if omd.get("deletionTimestamp"):
                added = set(md.get("finalizers") or []) - set(omd.get("finalizers") or [])
                if added:
                    errs.append(v.forbidden("metadata.finalizers", f"no new finalizers can be added if the object is being deleted, found new finalizers {sorted(added)!r}"))
        if errs:
            raise self._invalid(omd.get("name", ""), errs)
        if self.strategy.tracks_generation:
            gen = int(omd.get("generation") or 1)
            changed = _spec_view(new) != _spec_view(old) or (
                self.strategy.annotations_bump_generation and md.get("annotations") != omd.get("annotations"))
            md["generation"] = gen + 1 if changed else gen
        else:
            md.pop("generation", None)
        unchanged = {**new, "metadata": {k: val for k, val in md.items() if k != "managedFields"}} == {
            **old,
            "metadata": {k: val for k, val in omd.items() if k != "managedFields"},
        }
        if unchanged and md.get("managedFields") == omd.get("managedFields"):
            return None
        if not unchanged:
            self._track(old, new, opts)
        return new

    def _finalized(self, obj: Obj) -> bool:
        md = obj.get("metadata") or {}
        # A pod still in its grace period waits for its kubelet's delete with grace 0, whatever is updated.
        return (bool(md.get("deletionTimestamp")) and not md.get("deletionGracePeriodSeconds")
                and not md.get("finalizers") and not self.strategy.blocks_deletion(obj))

    # --- delete --------------------------------------------------------------------------------------

    async def delete(self, namespace: str, name: str, opts: DeleteOptions) -> tuple[Obj, bool]:
        """(object, removed_now). Objects with finalizers (or a pod grace period) get deletionTimestamp instead."""
        key = self._key(namespace, name)
        for _ in range(_MAX_RETRIES):
            current = await self.store.get(key)
            if current is None:
                raise self._not_found(name)
            obj = decode(current)
            md = obj["metadata"]
            pre = opts.preconditions or {}
            if pre.get("uid") and pre["uid"] != md.get("uid"):
                raise self._conflict(name, f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {md.get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != md.get("resourceVersion"):
                raise self._conflict(name, f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, ResourceVersion in object meta: {md.get('resourceVersion')}")
            finalizers = list(md.get("finalizers") or [])
            policy = opts.propagation_policy
            if policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            grace = self._grace_period(obj, opts)
            if finalizers or grace or self.strategy.blocks_deletion(obj):
                if md.get("deletionTimestamp"):
                    # Already terminating: only a shorter grace period changes anything.
                    old_grace = md.get("deletionGracePeriodSeconds")
                    not_shorter = grace is None or old_grace is None or grace >= old_grace
                    if not_shorter and finalizers == list(md.get("finalizers") or []):
                        return obj, False
                md["finalizers"] = finalizers or md.get("finalizers")
                if not md.get("finalizers"):
                    md.pop("finalizers", None)
                # Upstream: the time by which the object should be gone (now + grace period).
                md["deletionTimestamp"] = md.get("deletionTimestamp") or rfc3339(now() + dt.timedelta(seconds=grace or 0))
                md["deletionGracePeriodSeconds"] = grace or 0
                self.strategy.prepare_for_delete(obj)
                if opts.dry_run:
                    return obj, False
                try:
                    kv = await self.store.update(key, encode(obj), current.mod_revision)
                except RevisionMismatch:
                    continue
                md["resourceVersion"] = str(kv.mod_revision)
                return obj, False
            if opts.dry_run:
                return obj, True
            try:
                kv = await self.store.delete(key, current.mod_revision)
            except RevisionMismatch:
                continue
            except KeyNotFound:
                raise self._not_found(name) from None
            md["resourceVersion"] = str(kv.mod_revision)
            return obj, True
        raise self._conflict(name)

    def _grace_period(self, obj: Obj, opts: DeleteOptions) -> int | None:
        """Pods bound to a node get a grace period (their kubelet confirms); everything else goes now."""
        if self.info.kind != "Pod" or self.info.group != "":
            return None
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase")
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            return None
        grace = opts.grace_period_seconds
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        return int(grace) if grace else None

    async def delete_collection(self, namespace: str, list_opts: ListOptions, opts: DeleteOptions) -> Obj:
        lst = await self.list(namespace, list_opts)
        deleted = []
        for item in lst["items"]:
            md = item["metadata"]
            try:
                obj, _ = await self.delete(md.get("namespace", ""), md["name"], opts)
            except errors.ApiError as e:
                if e.code == 404:
                    continue
                raise
            deleted.append(obj)
        lst["items"] = deleted
        return lst

    # --- watch ---------------------------------------------------------------------------------------

    async def watch(
        self,
        namespace: str,
        opts: ListOptions,
        *,
        send_initial_events: bool | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Watch events as upstream: no RV (or "0") starts with ADDED for everything, then changes.

        With `send_initial_events`, ends the initial ADDED burst with a BOOKMARK annotated
        `k8s.io/initial-events-end` (the WatchList protocol).
        """
        match = self.matcher(opts)
        prefix = self._prefix(namespace)
        rv_text = opts.resource_version
        initial = send_initial_events if send_initial_events is not None else rv_text in ("", "0")
        if initial:
            start = await self.list(namespace, ListOptions(label_selector=opts.label_selector, field_selector=opts.field_selector))
            from_rev = int(start["metadata"]["resourceVersion"])
            initial_items = start["items"]
        else:
            from_rev = _parse_rv(rv_text)
            if from_rev < self.store.compact_revision:
                raise errors.expired(f"too old resource version: {from_rev} ({self.store.compact_revision})")
            initial_items = []
        return self._stream(prefix, from_rev, match, initial_items, bool(send_initial_events))

    async def _stream(
        self, prefix: str, from_rev: int, match: Callable[[Obj], bool], initial: Sequence[Obj], end_marker: bool
    ) -> AsyncIterator[WatchEvent]:
        for obj in initial:
            yield WatchEvent("ADDED", obj)
        if end_marker:
            yield WatchEvent("BOOKMARK", self.bookmark(from_rev, initial_events_end=True))
        try:
            events = self.store.watch(prefix, from_rev)
            async for ev in events:
                out = self._translate(ev, match)
                if out is not None:
                    yield out
        except Compacted as e:
            yield WatchEvent("ERROR", errors.expired(f"too old resource version: {e.requested} ({e.compact_revision})").status())
        except StorageError as e:  # e.g. the watcher fell too far behind: the client re-lists, as after a 410
            yield WatchEvent("ERROR", errors.expired(str(e)).status())

    def _decode_shared(self, kv: KV) -> Obj:
        """Decode a watched value once for all watchers of this kind (each store event fans out to every
        watcher: informers, the scheduler, node agents, HTTP watches). The object is shared and read-only, as
        objects in upstream's shared informer caches are; a consumer that needs to change one copies it."""
        key = (kv.key, kv.mod_revision)
        obj = self._decoded.get(key)
        if obj is None:
            obj = decode(kv)
            self._decoded[key] = obj
            if len(self._decoded) > _DECODED_CACHE:
                del self._decoded[next(iter(self._decoded))]
        return obj

    def _translate(self, ev: Event, match: Callable[[Obj], bool]) -> WatchEvent | None:
        """One store event → one API watch event, honouring selectors as upstream's watch filter does:
        an object that starts matching is ADDED, one that stops matching is DELETED."""
        if ev.type == "DELETE":
            obj = self._decode_shared(ev.kv)
            return WatchEvent("DELETED", obj) if match(obj) else None
        obj = self._decode_shared(ev.kv)
        now_match = match(obj)
        if ev.prev is None:
            return WatchEvent("ADDED", obj) if now_match else None
        was = match(self._decode_shared(ev.prev))
        if now_match:
            return WatchEvent("MODIFIED" if was else "ADDED", obj)
        if was:
            return WatchEvent("DELETED", obj)
        return None

    def bookmark(self, revision: int, initial_events_end: bool = False) -> Obj:
        md: Obj = {"resourceVersion": str(revision)}
        if initial_events_end:
            md["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": self.info.kind, "apiVersion": self.info.api_version, "metadata": md}
