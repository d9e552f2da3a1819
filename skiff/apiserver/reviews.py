"""Review resources answered per request, never stored: `kubectl auth can-i` and `kubectl auth whoami`.

SelfSubjectAccessReview asks the server's one authorizer; SelfSubjectRulesReview lists what the
admin authorizer grants; SelfSubjectReview returns the caller's identity (api-compat.md §7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from skiff.api.meta import Obj
from skiff.api.resources import ResourceInfo
from skiff.apiserver.auth import Attributes, UserInfo

if TYPE_CHECKING:
    from skiff.apiserver.http import APIServer

CREATE_ONLY = ("create",)


def _user_info(user: UserInfo) -> Obj:
    out: Obj = {"username": user.name, "groups": list(user.groups)}
    if user.uid:
        out["uid"] = user.uid
    if user.extra:
        out["extra"] = {k: list(v) for k, v in user.extra.items()}
    return out


def install(api: APIServer) -> None:
    async def access_review(user: UserInfo, body: Obj) -> Obj:
        spec = body.get("spec") or {}
        ra = spec.get("resourceAttributes")
        nra = spec.get("nonResourceAttributes")
        if ra:
            attrs = Attributes(user, ra.get("verb", ""), True, namespace=ra.get("namespace", ""),
                               api_group=ra.get("group", ""), api_version=ra.get("version", ""),
                               resource=ra.get("resource", ""), subresource=ra.get("subresource", ""),
                               name=ra.get("name", ""))
        else:
            attrs = Attributes(user, (nra or {}).get("verb", ""), False, path=(nra or {}).get("path", ""))
        allowed, reason = await api.authorizer.authorize(attrs)
        status: Obj = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        return {"metadata": {"creationTimestamp": None}, "spec": spec, "status": status}

    async def rules_review(user: UserInfo, body: Obj) -> Obj:
        spec = body.get("spec") or {}
        rules: Obj = {"resourceRules": [], "nonResourceRules": [], "incomplete": False}
        lister = getattr(api.authorizer, "rules_for", None)
        if lister is None:
            rules["incomplete"] = True
        else:
            for r in lister(user):
                if r.non_resource_urls:
                    rules["nonResourceRules"].append({"verbs": list(r.verbs), "nonResourceURLs": list(r.non_resource_urls)})
                else:
                    entry: Obj = {"verbs": list(r.verbs), "apiGroups": list(r.api_groups), "resources": list(r.resources)}
                    if r.resource_names:
                        entry["resourceNames"] = list(r.resource_names)
                    rules["resourceRules"].append(entry)
        return {"metadata": {"creationTimestamp": None}, "spec": spec, "status": rules}

    async def whoami(user: UserInfo, body: Obj) -> Obj:
        return {"metadata": {"creationTimestamp": None}, "status": {"userInfo": _user_info(user)}}

    az = "authorization.k8s.io"
    api.add_virtual(ResourceInfo(az, "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
                                 "selfsubjectaccessreview", False, verbs=CREATE_ONLY), access_review)
    api.add_virtual(ResourceInfo(az, "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
                                 "selfsubjectrulesreview", False, verbs=CREATE_ONLY), rules_review)
    api.add_virtual(ResourceInfo("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews",
                                 "selfsubjectreview", False, verbs=CREATE_ONLY), whoami)
