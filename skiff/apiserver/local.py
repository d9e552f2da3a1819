"""The in-process backend: the client contract's verbs straight onto the registries, no HTTP, no JSON.

`LocalBackend` implements `skiff.client.inprocess.Backend` over a `ControlPlane`. It gives the same
answers as the HTTPS surface (skiff/apiserver/http.py, subresources.py) for the verbs components use:
the same served-version conversion, unknown-field pruning (fieldValidation=Warn, the HTTP default),
the same patch semantics and the same `ApiError`s. Unknown resources are 404 "the server could not
find the requested resource", as an unknown URL is over HTTPS.

Ownership: every object returned is freshly decoded from the store (or freshly built), so it belongs
to the caller; nothing here keeps a reference to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from skiff.api import errors
from skiff.api.meta import Obj, json_copy, rfc3339
from skiff.api.schema import prune_unknown
from skiff.apiserver.patch import apply as ssa
from skiff.apiserver.patch.jsonpatch import apply_json_patch
from skiff.apiserver.patch.merge import apply_merge_patch
from skiff.apiserver.patch.smp import apply_strategic_merge_patch
from skiff.apiserver.registry import generic

if TYPE_CHECKING:
    from skiff.apiserver.http import Served
    from skiff.apiserver.server import ControlPlane

DEFAULT_FIELD_MANAGER = "skiff"  # what the HTTPS client's User-Agent ("skiff/...") defaults to upstream-style


# The client's request types, structurally: the API server may not import skiff.client (layer rule),
# so it names only the attributes it reads (skiff.client.interface has the concrete dataclasses).


class ResourceRef(Protocol):
    @property
    def group(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def plural(self) -> str: ...


class ListOpts(Protocol):
    @property
    def label_selector(self) -> str: ...
    @property
    def field_selector(self) -> str: ...
    @property
    def resource_version(self) -> str: ...
    @property
    def limit(self) -> int: ...
    @property
    def continue_token(self) -> str: ...


class PatchBody(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def body(self) -> Any: ...
    @property
    def force(self) -> bool: ...


class DeleteOpts(Protocol):
    @property
    def propagation_policy(self) -> str | None: ...
    @property
    def grace_period_seconds(self) -> int | None: ...
    @property
    def preconditions(self) -> dict[str, Any]: ...


@dataclass
class _Patch:
    type: str
    body: Any
    force: bool = False


def check_kind(served: Served, obj: Any) -> Obj:
    """As `APIServer._check_kind`: the body must be an object of the served kind; fills kind/apiVersion."""
    if not isinstance(obj, dict):
        raise errors.bad_request("the body of the request must be a JSON object")
    i = served.info
    if obj.get("apiVersion") and obj["apiVersion"] != i.api_version:
        raise errors.bad_request(
            f"the API version in the data ({obj['apiVersion']}) does not match the expected API version ({i.api_version})"
        )
    if obj.get("kind") and obj["kind"] != i.kind:
        raise errors.bad_request(
            f"the kind in the data ({obj['kind']}) does not match the expected kind ({i.kind})"
        )
    obj["kind"] = i.kind
    obj["apiVersion"] = i.api_version
    return obj


def prune(served: Served, obj: Obj) -> None:
    """Drop unknown fields in place, as the HTTP layer does with its default fieldValidation=Warn."""
    if served.model is not None:
        prune_unknown(obj, served.model)
        return
    pruner = getattr(served.strategy, "prune", None)
    if pruner is not None:
        pruner(obj)


def apply_patch(
    served: Served,
    registry: generic.Registry,
    live_served: Obj,
    patch: PatchBody,
    field_manager: str,
    subresource: str,
) -> Obj:
    """The patched object in the served version (pure; mirrors the `mutate` of `APIServer._patch`)."""
    body = patch.body
    if patch.type == "json":
        out = apply_json_patch(live_served, body)
    elif patch.type == "merge":
        out = apply_merge_patch(live_served, body)
    elif patch.type == "strategic":
        if not isinstance(body, dict):
            raise errors.bad_request("strategic merge patch must be a JSON object")
        out = apply_strategic_merge_patch(live_served, body, served.model or "")
    elif patch.type == "apply":
        out = ssa.server_side_apply(
            live_served,
            json_copy(body),
            field_manager,
            patch.force,
            served.model,
            rfc3339(),
            ignore_fields=registry.ignored_fields(subresource),
        )
    else:
        raise errors.unsupported_media_type(patch.type)
    if not isinstance(out, dict):
        raise errors.bad_request("the patch result is not an object")
    return out


class LocalBackend:
    """`Backend` over a running `ControlPlane` (custom resources included, as they become served)."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    def served(self, res: ResourceRef) -> Served:
        s = self.plane.api.served.get((res.group, res.version, res.plural))
        if s is None:
            raise errors.unknown_url()
        return s

    @staticmethod
    def _write_opts(field_manager: str, subresource: str = "") -> generic.WriteOptions:
        return generic.WriteOptions(
            field_manager=field_manager or DEFAULT_FIELD_MANAGER, subresource=subresource
        )

    # --- reads -----------------------------------------------------------------------------------------

    async def get(self, res: ResourceRef, namespace: str, name: str, subresource: str = "") -> Obj:
        s = self.served(res)
        obj = await s.registry.get(namespace, name)
        if subresource == "scale":
            return self._scale_obj(s, obj)
        return s.to_served(obj)

    async def list(self, res: ResourceRef, namespace: str, opts: ListOpts) -> Obj:
        s = self.served(res)
        lst = await s.registry.list(
            namespace,
            generic.ListOptions(
                label_selector=opts.label_selector,
                field_selector=opts.field_selector,
                limit=opts.limit,
                continue_token=opts.continue_token,
                resource_version=opts.resource_version,
            ),
        )
        lst["apiVersion"] = s.info.api_version
        lst["kind"] = f"{s.info.kind}List"
        lst["items"] = [s.to_served(o) for o in lst["items"]]
        return lst

    async def watch(
        self, res: ResourceRef, namespace: str, opts: ListOpts
    ) -> AsyncIterator[generic.WatchEvent]:
        """Events as the HTTP watch sends them with allowWatchBookmarks (served version; ERROR carries a Status)."""
        s = self.served(res)
        events = await s.registry.watch(
            namespace,
            generic.ListOptions(
                label_selector=opts.label_selector,
                field_selector=opts.field_selector,
                resource_version=opts.resource_version,
            ),
        )
        return self._convert(s, events)

    @staticmethod
    async def _convert(
        s: Served, events: AsyncIterator[generic.WatchEvent]
    ) -> AsyncIterator[generic.WatchEvent]:
        try:
            async for ev in events:
                if ev.type == "BOOKMARK":
                    yield generic.WatchEvent(
                        "BOOKMARK", {**ev.object, "apiVersion": s.info.api_version, "kind": s.info.kind}
                    )
                elif ev.type == "ERROR":
                    yield generic.WatchEvent("ERROR", ev.object)
                else:
                    yield generic.WatchEvent(ev.type, s.to_served(ev.object))
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    # --- writes ----------------------------------------------------------------------------------------

    async def create(
        self,
        res: ResourceRef,
        namespace: str,
        obj: Obj,
        *,
        subresource: str = "",
        name: str = "",
        field_manager: str = "",
    ) -> Obj:
        s = self.served(res)
        if subresource:
            return await self._create_sub(s, namespace, name, subresource, obj, field_manager)
        body = check_kind(s, json_copy(obj))
        prune(s, body)
        return s.to_served(
            await s.registry.create(namespace, s.from_served(body), self._write_opts(field_manager))
        )

    async def update(
        self, res: ResourceRef, namespace: str, obj: Obj, *, subresource: str = "", field_manager: str = ""
    ) -> Obj:
        s = self.served(res)
        name = str((obj.get("metadata") or {}).get("name") or "")
        if not name:
            # The HTTPS client cannot build the URL without it either.
            raise errors.bad_request("name is required for an update")
        if subresource == "scale":
            return await self._update_scale(s, namespace, name, obj, field_manager)
        if subresource == "finalize" and (s.info.group, s.info.plural) == ("", "namespaces"):
            return await self._finalize(s, name, obj, field_manager)
        if subresource not in ("", "status"):
            raise errors.method_not_allowed()
        if subresource and s.info.subresource(subresource) is None:
            raise errors.unknown_url()
        body = check_kind(s, json_copy(obj))
        prune(s, body)
        result, _ = await s.registry.update(
            namespace, name, s.from_served(body), self._write_opts(field_manager, subresource)
        )
        return s.to_served(result)

    async def patch(
        self,
        res: ResourceRef,
        namespace: str,
        name: str,
        patch: PatchBody,
        *,
        subresource: str = "",
        field_manager: str = "",
        dry_run: bool = False,
    ) -> Obj:
        """As `APIServer._patch`: the patch applies to the served version of the live object, retried on conflicts
        unless the patch pins `metadata.resourceVersion`; an apply patch of a missing object creates it."""
        s = self.served(res)
        if subresource == "scale":
            return await self._patch_scale(s, namespace, name, patch, field_manager)
        if subresource not in ("", "status"):
            raise errors.method_not_allowed()
        if subresource and s.info.subresource(subresource) is None:
            raise errors.unknown_url()
        if patch.type == "strategic" and s.model is None:
            raise errors.unsupported_media_type("application/strategic-merge-patch+json")
        registry = s.registry
        opts = self._write_opts(field_manager, subresource)
        opts.dry_run = dry_run
        body = patch.body
        if patch.type == "apply":
            opts.applied = True
            if not isinstance(body, dict):
                raise errors.bad_request("apply patch must be an object")
            if not field_manager:
                raise errors.bad_request(
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
                )
            body = check_kind(s, json_copy(body))
            prune(s, body)
            patch = _Patch(patch.type, body, patch.force)
            live = await registry.try_get(namespace, name)
            if live is None:
                if subresource:
                    raise registry._not_found(name)
                applied = ssa.server_side_apply(
                    None,
                    body,
                    opts.field_manager,
                    patch.force,
                    s.model,
                    rfc3339(),
                    ignore_fields=registry.ignored_fields(""),
                )
                applied.setdefault("metadata", {})["name"] = name
                return s.to_served(await registry.create(namespace, s.from_served(applied), opts))
        precondition = ""
        if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
            precondition = str(body["metadata"].get("resourceVersion") or "")

        def mutate(live: Obj) -> Obj:
            out = check_kind(
                s, apply_patch(s, registry, s.to_served(live), patch, opts.field_manager, subresource)
            )
            prune(s, out)
            return s.from_served(out)

        result = await registry.guaranteed_update(namespace, name, mutate, opts, precondition_rv=precondition)
        return s.to_served(result)

    async def delete(self, res: ResourceRef, namespace: str, name: str, opts: DeleteOpts) -> Obj | None:
        s = self.served(res)
        obj, removed = await s.registry.delete(
            namespace,
            name,
            generic.DeleteOptions(
                propagation_policy=opts.propagation_policy,
                grace_period_seconds=opts.grace_period_seconds,
                preconditions=dict(opts.preconditions),
            ),
        )
        return None if removed else s.to_served(obj)

    # --- subresources ----------------------------------------------------------------------------------

    async def _create_sub(
        self, s: Served, namespace: str, name: str, sub: str, body: Obj, field_manager: str
    ) -> Obj:
        """pods/binding and pods/eviction, as skiff/apiserver/subresources.py (both answer a Success Status)."""
        i = s.info
        if (i.group, i.plural) != ("", "pods") or sub not in ("binding", "eviction"):
            raise errors.unknown_url() if i.subresource(sub) is None else errors.method_not_allowed()
        name = name or str((body.get("metadata") or {}).get("name") or "")
        if sub == "binding":
            node = ((body or {}).get("target") or {}).get("name", "")
            if not node:
                raise errors.invalid(
                    "Binding", "", name, [errors.FieldError("FieldValueRequired", "target.name", "")]
                )
            annotations = dict(((body.get("metadata") or {}).get("annotations")) or {})
            await s.registry.guaranteed_update(
                namespace,
                name,
                lambda pod: bind_pod(pod, name, node, annotations),
                self._write_opts(field_manager),
                bypass_status_split=True,
            )
        else:
            do = body.get("deleteOptions") or {}
            await s.registry.delete(
                namespace,
                name,
                generic.DeleteOptions(
                    dry_run=bool(do.get("dryRun")),
                    grace_period_seconds=do.get("gracePeriodSeconds"),
                    preconditions=do.get("preconditions") or {},
                    propagation_policy=do.get("propagationPolicy"),
                ),
            )
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    async def _finalize(self, s: Served, name: str, body: Obj, field_manager: str) -> Obj:
        """PUT namespaces/<name>/finalize, as subresources.py: spec.finalizers becomes exactly the body's."""
        finalizers = list(((body or {}).get("spec") or {}).get("finalizers") or [])

        def set_finalizers(ns: Obj) -> Obj:
            ns.setdefault("spec", {})["finalizers"] = finalizers
            if not finalizers:
                ns["spec"].pop("finalizers")
            return ns

        result = await s.registry.guaranteed_update(
            "", name, set_finalizers, self._write_opts(field_manager, "finalize"), bypass_status_split=True
        )
        return s.to_served(result)

    @staticmethod
    def _scale_obj(s: Served, obj: Obj) -> Obj:
        if s.info.subresource("scale") is None:
            raise errors.unknown_url()
        spec_r, status_r, selector = s.strategy.scale_of(obj)
        md = obj.get("metadata") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: md[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in md
            },
            "spec": {"replicas": spec_r},
            "status": {"replicas": status_r, "selector": selector},
        }

    @staticmethod
    def _replicas(name: str, scale: Any) -> int:
        r = ((scale or {}).get("spec") or {}).get("replicas", 0) if isinstance(scale, dict) else None
        if not isinstance(r, int) or isinstance(r, bool) or r < 0:
            raise errors.invalid(
                "Scale",
                "autoscaling",
                name,
                [
                    errors.FieldError(
                        "FieldValueInvalid", "spec.replicas", "must be greater than or equal to 0", r
                    )
                ],
            )
        return r

    async def _update_scale(
        self, s: Served, namespace: str, name: str, scale: Obj, field_manager: str
    ) -> Obj:
        if s.info.subresource("scale") is None:
            raise errors.unknown_url()
        precondition = str((scale.get("metadata") or {}).get("resourceVersion") or "")

        def mutate(live: Obj) -> Obj:
            s.strategy.set_replicas(live, self._replicas(name, scale))
            return live

        result = await s.registry.guaranteed_update(
            namespace, name, mutate, self._write_opts(field_manager), precondition_rv=precondition
        )
        return self._scale_obj(s, result)

    async def _patch_scale(
        self, s: Served, namespace: str, name: str, patch: PatchBody, field_manager: str
    ) -> Obj:
        if s.info.subresource("scale") is None:
            raise errors.unknown_url()
        if patch.type not in ("json", "merge", "strategic"):
            raise errors.unsupported_media_type(patch.type)

        def mutate(live: Obj) -> Obj:
            cur = self._scale_obj(s, live)
            scale = (
                apply_json_patch(cur, patch.body)
                if patch.type == "json"
                else apply_merge_patch(cur, patch.body)
            )
            s.strategy.set_replicas(live, self._replicas(name, scale))
            return live

        result = await s.registry.guaranteed_update(namespace, name, mutate, self._write_opts(field_manager))
        return self._scale_obj(s, result)


def bind_pod(pod: Obj, name: str, node: str, annotations: dict[str, str]) -> Obj:
    """Upstream BindingREST (pkg/registry/core/pod/storage): set spec.nodeName and PodScheduled=True;
    409 when the pod is already bound or being deleted. Mutates and returns `pod` (a private copy)."""
    spec = pod.setdefault("spec", {})
    if spec.get("nodeName"):
        raise errors.conflict(
            "pods", "", name, f'pod {name} is already assigned to node "{spec["nodeName"]}"'
        )
    if pod["metadata"].get("deletionTimestamp"):
        raise errors.conflict("pods", "", name, f"pod {name} is being deleted, cannot be assigned to a host")
    spec["nodeName"] = node
    if annotations:
        pod["metadata"].setdefault("annotations", {}).update(annotations)
    status = pod.setdefault("status", {})
    conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
    conds.append(
        {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": rfc3339()}
    )
    status["conditions"] = conds
    return pod
