"""Subresources with their own semantics: pods/binding, pods/eviction, namespaces/finalize, and the
node-served streams (log, exec, attach, portforward) which answer clearly until a node agent serves them.

Upstream references: `pkg/registry/core/pod/storage/storage.go` (BindingREST, EvictionREST),
`pkg/registry/core/namespace/storage/storage.go` (FinalizeREST).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from skiff.api import errors
from skiff.api.disruption import plan_eviction
from skiff.api.meta import Obj, rfc3339
from skiff.apiserver.auth import UserInfo
from skiff.apiserver.registry.generic import DeleteOptions, ListOptions, WriteOptions

if TYPE_CHECKING:
    from skiff.apiserver.http import APIServer, Target


def _success(code: int = 201) -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code}


def install(api: APIServer) -> None:
    from skiff.apiserver.http import json_response

    async def binding(request: web.Request, user: UserInfo, target: Target | None) -> web.StreamResponse:
        assert target is not None
        if request.method != "POST":
            raise errors.method_not_allowed()
        body = await api._body(request)
        node = ((body or {}).get("target") or {}).get("name", "")
        if not node:
            raise errors.invalid("Binding", "", target.name, [errors.FieldError("FieldValueRequired", "target.name", "")])
        opts = api._write_opts(request)

        def bind(pod: Obj) -> Obj:
            spec = pod.setdefault("spec", {})
            if spec.get("nodeName"):
                raise errors.conflict("pods", "", target.name, f'pod {target.name} is already assigned to node "{spec["nodeName"]}"')
            if pod["metadata"].get("deletionTimestamp"):
                raise errors.conflict("pods", "", target.name, f"pod {target.name} is being deleted, cannot be assigned to a host")
            spec["nodeName"] = node
            ann = ((body.get("metadata") or {}).get("annotations")) or {}
            if ann:
                pod["metadata"].setdefault("annotations", {}).update(ann)
            status = pod.setdefault("status", {})
            conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": rfc3339()})
            status["conditions"] = conds
            return pod

        # Binding writes spec and status together, as upstream's BindingREST does (not through /status).
        reg = target.served.registry
        await reg.guaranteed_update(target.namespace, target.name, bind, opts, bypass_status_split=True)
        return json_response(_success(), 201)

    async def eviction(request: web.Request, user: UserInfo, target: Target | None) -> web.StreamResponse:
        """policy/v1 Eviction: delete the pod unless a PodDisruptionBudget forbids it (429)."""
        assert target is not None
        if request.method != "POST":
            raise errors.method_not_allowed()
        body = await api._body(request) or {}
        opts = body.get("deleteOptions") or {}
        dry_run = bool(opts.get("dryRun"))
        pods = target.served.registry
        pdbs = api.served[("policy", "v1", "poddisruptionbudgets")].registry
        for _ in range(5):  # RetryOnConflict around the budget write, as upstream
            pod = await pods.get(target.namespace, target.name)
            in_ns = await pdbs.list(target.namespace, ListOptions())
            decision = plan_eviction(pod, in_ns["items"], dry_run=dry_run)
            if decision.error is not None:
                raise decision.error
            if decision.pdb_update is not None and not dry_run:
                try:
                    await pdbs.update(target.namespace, decision.pdb_update["metadata"]["name"], decision.pdb_update,
                                      WriteOptions(field_manager="skiff-eviction", subresource="status"))
                except errors.ApiError as e:
                    if e.code == 409:
                        continue
                    raise
            break
        else:
            raise errors.too_many_requests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
        preconditions = dict(opts.get("preconditions") or {})
        if decision.enforce_resource_version and not preconditions.get("resourceVersion"):
            preconditions["resourceVersion"] = pod["metadata"]["resourceVersion"]
        await pods.delete(target.namespace, target.name, DeleteOptions(
            dry_run=dry_run, grace_period_seconds=opts.get("gracePeriodSeconds"),
            preconditions=preconditions, propagation_policy=opts.get("propagationPolicy")))
        return json_response(_success(), 201)

    async def finalize(request: web.Request, user: UserInfo, target: Target | None) -> web.StreamResponse:
        assert target is not None
        if request.method != "PUT":
            raise errors.method_not_allowed()
        body = await api._body(request)
        finalizers = list(((body or {}).get("spec") or {}).get("finalizers") or [])
        opts = api._write_opts(request, "finalize")

        def set_finalizers(ns: Obj) -> Obj:
            ns.setdefault("spec", {})["finalizers"] = finalizers
            if not finalizers:
                ns["spec"].pop("finalizers")
            return ns

        result = await target.served.registry.guaranteed_update("", target.name, set_finalizers, opts, bypass_status_split=True)
        return json_response(result)

    async def node_stream(request: web.Request, user: UserInfo, target: Target | None) -> web.StreamResponse:
        """pods/log|exec|attach|portforward: validated here, streamed by the pod's node agent (proxy.py)."""
        from skiff.apiserver import proxy

        assert target is not None
        pod = await target.served.registry.get(target.namespace, target.name)
        return await proxy.pod_stream(api, request, target.subresource, pod)

    api.extra_handlers[("", "pods", "binding")] = binding
    api.extra_handlers[("", "pods", "eviction")] = eviction
    api.extra_handlers[("", "namespaces", "finalize")] = finalize
    for sub in ("log", "exec", "attach", "portforward"):
        api.extra_handlers[("", "pods", sub)] = node_stream
