"""networking.k8s.io/v1 IngressClass: the controller name (immutable) and the parameters reference.

Mirrors ValidateIngressClass / ValidateIngressClassUpdate in `pkg/apis/networking/validation` and
`printIngressClass` (Controller, Parameters columns).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, age, name_of
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column, Strategy

_MAX_CONTROLLER = 250
_PATH_SEGMENT_RE = re.compile(r"^[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$")


def domain_prefixed_path(field: str, value: str) -> list[v.FieldError]:
    """Upstream IsDomainPrefixedPath: `example.com/path` with a DNS-subdomain domain."""
    if not value:
        return [v.required(field)]
    domain, sep, path = value.partition("/")
    if not sep or not path:
        return [v.invalid(field, value, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    errs = v.check(field, domain, v.dns1123_subdomain(domain))
    if not _PATH_SEGMENT_RE.match(path):
        errs.append(v.invalid(field, path, "Invalid path"))
    return errs


class IngressClassStrategy(Strategy):
    info = ResourceInfo("networking.k8s.io", "v1", "IngressClass", "ingressclasses", "ingressclass", False)

    def defaults(self, obj: Obj) -> None:
        """v1 SetDefaults_IngressClass: a parameters reference without scope is cluster-scoped."""
        params = (obj.get("spec") or {}).get("parameters")
        if isinstance(params, dict) and params.get("scope") is None:
            params["scope"] = "Cluster"

    def validate(self, obj: Obj) -> list[v.FieldError]:
        spec = obj.get("spec") or {}
        controller = spec.get("controller") or ""
        errs: list[v.FieldError] = []
        if len(controller) > _MAX_CONTROLLER:
            errs.append(v.too_long("spec.controller", _MAX_CONTROLLER))
        errs += domain_prefixed_path("spec.controller", controller)
        params = spec.get("parameters")
        if params is not None:
            errs += self._validate_parameters(params)
        return errs

    @staticmethod
    def _validate_parameters(params: Obj) -> list[v.FieldError]:
        f = "spec.parameters"
        errs: list[v.FieldError] = []
        if not params.get("kind"):
            errs.append(v.required(f"{f}.kind"))
        if not params.get("name"):
            errs.append(v.required(f"{f}.name"))
        group = params.get("apiGroup")
        if group:
            errs += v.check(f"{f}.apiGroup", group, v.dns1123_subdomain(group))
        scope = params.get("scope")
        namespace = params.get("namespace")
        if scope is None:
            errs.append(v.required(f"{f}.scope"))
        elif scope not in ("Cluster", "Namespace"):
            errs.append(v.not_supported(f"{f}.scope", scope, ["Cluster", "Namespace"]))
        elif scope == "Namespace" and not namespace:
            errs.append(v.required(f"{f}.namespace", "`parameters.scope` is set to 'Namespace'"))
        elif scope == "Cluster" and namespace:
            errs.append(v.forbidden(f"{f}.namespace", "`parameters.scope` is set to 'Cluster'"))
        if namespace:
            errs += v.check(f"{f}.namespace", namespace, v.dns1123_label(namespace))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        errs = self.validate(new)
        new_c = (new.get("spec") or {}).get("controller")
        if new_c != (old.get("spec") or {}).get("controller"):
            errs.append(v.invalid("spec.controller", new_c, "field is immutable"))
        return errs

    def columns(self) -> list[Column]:
        return [
            NAME_COLUMN,
            Column("Controller", description="Controller that is responsible for handling this class"),
            Column("Parameters", description="A reference to a resource with additional parameters"),
            AGE_COLUMN,
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        spec = obj.get("spec") or {}
        params = spec.get("parameters")
        text = "<none>"
        if params:
            text = params.get("kind", "")
            if params.get("apiGroup") is not None:
                text += "." + params["apiGroup"]
            text += "/" + params.get("name", "")
        return [name_of(obj), spec.get("controller", ""), text, age(obj, now)]
