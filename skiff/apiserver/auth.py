"""Authentication (bearer tokens, client certificates) and authorization (who may do what).

Mirrors kube-apiserver's request path: an authenticator union yields a user (`apiserver/pkg/authentication`),
every authenticated user gains `system:authenticated` (`group.AuthenticatedGroupAdder`), and an authorizer
answers allow/deny for the request's `Attributes` (`apiserver/pkg/authorization/authorizer`). A denied
request gets 403 with `forbidden_message` (`endpoints/handlers/responsewriters/errors.go`), an
unauthenticated one 401.

Identities created by `certs.bootstrap`:
    admin token / admin client cert   user "admin", groups system:masters (superuser, like upstream)
    node-join token                   user "system:node-bootstrap", group system:nodes (agent access)
Node certificates issued later (`issue_client_cert(creds, "system:node:<name>", ["system:nodes"])`) get the
same agent access through the group.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from skiff.api.errors import ApiError, qualified
from skiff.apiserver.certs import ADMIN_USER, MASTERS_GROUP, Credentials
from skiff.util.nodetoken import ca_hash, parse_node_token

AUTHENTICATED_GROUP = "system:authenticated"
NODES_GROUP = "system:nodes"
NODE_BOOTSTRAP_USER = "system:node-bootstrap"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated identity (`user.Info`): name, uid, groups and extra attributes."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)


def _with_authenticated(user: UserInfo) -> UserInfo:
    """Add `system:authenticated` unless present (upstream AuthenticatedGroupAdder; anonymous never gets here)."""
    if AUTHENTICATED_GROUP in user.groups:
        return user
    return UserInfo(user.name, user.uid, (*user.groups, AUTHENTICATED_GROUP), user.extra)


def bearer_token(authorization_header: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>` (scheme case-insensitive), else None (`bearertoken.go`)."""
    if not authorization_header:
        return None
    parts = authorization_header.strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Authenticator:
    """Bearer-token and client-certificate authentication; tries the certificate first, as upstream does.

    Tokens are kept by SHA-256 digest: a lookup leaks nothing useful about a secret through timing, and
    the final comparison uses `hmac.compare_digest`. Thread-compatible for reads; `add_token` is meant to
    be called from the event loop thread.
    """

    def __init__(self, creds: Credentials) -> None:
        ca_pem = creds.ca_cert.read_bytes()
        self._ca = x509.load_pem_x509_certificate(ca_pem)
        self._ca_hash = ca_hash(ca_pem)
        self._tokens: dict[bytes, UserInfo] = {}
        self._cert_cache: dict[bytes, UserInfo | None] = {}
        self.add_token(creds.admin_token, UserInfo(ADMIN_USER, groups=(MASTERS_GROUP,)))
        _, secret = parse_node_token(creds.node_token)
        self._node_secret = secret
        self._node_user = UserInfo(NODE_BOOTSTRAP_USER, groups=(NODES_GROUP,))

    def add_token(self, token: str, user: UserInfo) -> None:
        """Accept `token` as `user` from now on (service-account tokens, static tokens). Replaces a previous user."""
        if not token:
            raise ValueError("empty token")
        self._tokens[_digest(token)] = user

    def remove_token(self, token: str) -> None:
        """Stop accepting `token` (a deleted service-account token secret); unknown tokens are ignored."""
        self._tokens.pop(_digest(token), None)

    def authenticate(self, authorization_header: str | None, peer_cert_der: bytes | None) -> UserInfo | None:
        """The user of a request, or None when no credential identifies one (the HTTP layer answers 401).

        `peer_cert_der` is the TLS-verified leaf (`getpeercert(binary_form=True)`); it is checked again
        against our CA so a misconfigured TLS context cannot let a foreign certificate in. A certificate
        with an empty CN identifies nobody (upstream CommonNameUserConversion).
        """
        if peer_cert_der:
            user = self._from_cert(peer_cert_der)
            if user is not None:
                return _with_authenticated(user)
        token = bearer_token(authorization_header)
        if token is None:
            return None
        user = self._from_token(token)
        return _with_authenticated(user) if user is not None else None

    def _from_token(self, token: str) -> UserInfo | None:
        digest = _digest(token)
        user = self._tokens.get(digest)
        if user is not None:
            return user
        pinned, secret = parse_node_token(token)
        if pinned is not None and not hmac.compare_digest(pinned.encode(), self._ca_hash.encode()):
            return None
        if hmac.compare_digest(_digest(secret), _digest(self._node_secret)):
            return self._node_user
        return None

    def _from_cert(self, der: bytes) -> UserInfo | None:
        if der in self._cert_cache:
            return self._cert_cache[der]
        user = user_from_cert(der, self._ca)
        if len(self._cert_cache) >= 1024:
            self._cert_cache.clear()
        self._cert_cache[der] = user
        return user


def user_from_cert(der: bytes, ca: x509.Certificate) -> UserInfo | None:
    """CN → name, O values → groups, for a DER certificate signed by `ca`; None otherwise or when CN is empty."""
    try:
        cert = x509.load_der_x509_certificate(der)
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return None
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(cns[-1].value) if cns else ""  # Go's pkix.Name keeps the last CN
    if not name:
        return None
    groups = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    return UserInfo(name, groups=groups)


# ---------------------------------------------------------------------------------------------- authorization


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do, as upstream `authorizer.AttributesRecord`.

    Resource requests set `resource` (plural), `subresource`, `api_group` ("" for core), `namespace` ("" for
    cluster scope or all namespaces) and `name`; non-resource requests set `path`. `verb` is the API verb
    (get, list, watch, create, update, patch, delete, deletecollection) or, for non-resource requests, the
    lower-cased HTTP method.
    """

    user: UserInfo
    verb: str
    resource_request: bool
    path: str = ""
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


class Authorizer(Protocol):
    async def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason). A deny's reason is appended to the 403 message when not empty."""
        ...


@dataclass(frozen=True)
class Rule:
    """One RBAC-style `PolicyRule`; `*` is a wildcard. Resources may name subresources (`pods/status`, `*/scale`)."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()


def _resource_matches(rule: Rule, resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for r in rule.resources:
        if r in ("*", combined):
            return True
        if subresource and r == f"*/{subresource}":
            return True
    return False


def _url_matches(rule_url: str, path: str) -> bool:
    if rule_url in ("*", path):
        return True
    return rule_url.endswith("*") and path.startswith(rule_url.rstrip("*"))


def rule_allows(rule: Rule, attrs: Attributes) -> bool:
    """Whether `rule` covers `attrs`, with the matching of upstream `rbac/validation` RuleAllows."""
    if "*" not in rule.verbs and attrs.verb not in rule.verbs:
        return False
    if not attrs.resource_request:
        return any(_url_matches(u, attrs.path) for u in rule.non_resource_urls)
    if "*" not in rule.api_groups and attrs.api_group not in rule.api_groups:
        return False
    if not _resource_matches(rule, attrs.resource, attrs.subresource):
        return False
    return not rule.resource_names or attrs.name in rule.resource_names


_READ = ("get", "list", "watch")

# Every authenticated user: upstream system:basic-user, system:discovery and system:public-info-viewer.
AUTHENTICATED_RULES: tuple[Rule, ...] = (
    Rule(("create",), ("authorization.k8s.io",), ("selfsubjectaccessreviews", "selfsubjectrulesreviews")),
    Rule(("create",), ("authentication.k8s.io",), ("selfsubjectreviews",)),
    Rule(
        ("get",),
        non_resource_urls=(
            "/api",
            "/api/*",
            "/apis",
            "/apis/*",
            "/healthz",
            "/livez",
            "/readyz",
            "/openapi",
            "/openapi/*",
            "/version",
            "/version/",
        ),
    ),
)

# Group system:nodes (the node-join identity and per-node certificates): what a skiff agent needs, modelled
# on upstream's system:node and system:node-proxier ClusterRoles. Unlike upstream's Node authorizer this
# does not restrict a node to its own objects.
NODE_RULES: tuple[Rule, ...] = (
    Rule((*_READ, "create", "update", "patch"), ("",), ("nodes",)),
    Rule(("get", "update", "patch"), ("",), ("nodes/status",)),
    Rule((*_READ, "create", "update", "patch", "delete"), ("coordination.k8s.io",), ("leases",)),
    Rule((*_READ, "create", "delete"), ("",), ("pods",)),
    Rule(("get", "update", "patch"), ("",), ("pods/status",)),
    Rule(("create",), ("",), ("pods/eviction",)),
    Rule(("create", "update", "patch"), ("", "events.k8s.io"), ("events",)),
    Rule(_READ, ("",), ("services", "endpoints", "namespaces", "configmaps", "secrets")),
    Rule(_READ, ("",), ("persistentvolumeclaims", "persistentvolumes")),
    Rule(("get", "update", "patch"), ("",), ("persistentvolumeclaims/status",)),
    Rule(("create",), ("",), ("serviceaccounts/token",)),
    Rule(_READ, ("discovery.k8s.io",), ("endpointslices",)),
    Rule(_READ, ("networking.k8s.io",), ("networkpolicies",)),
    Rule(_READ, ("storage.k8s.io",), ("csidrivers", "csinodes", "storageclasses", "volumeattachments")),
    Rule(_READ, ("node.k8s.io",), ("runtimeclasses",)),
    Rule((*_READ, "create"), ("certificates.k8s.io",), ("certificatesigningrequests",)),
    Rule(("create",), ("authentication.k8s.io",), ("tokenreviews",)),
    Rule(("create",), ("authorization.k8s.io",), ("subjectaccessreviews", "localsubjectaccessreviews")),
)


SUPERUSER_RULES: tuple[Rule, ...] = (
    Rule(("*",), ("*",), ("*",)),
    Rule(("*",), non_resource_urls=("*",)),
)


class AdminAuthorizer:
    """The authorizer until RBAC exists: superusers, agent access for nodes, discovery for everyone else.

    Allows everything to group system:masters and user "admin" (upstream's privileged-group authorizer),
    `NODE_RULES` to group system:nodes, and `AUTHENTICATED_RULES` to system:authenticated. Anything else is
    denied with an empty reason, which is what RBAC returns when no rule matches, so the 403 message is
    exactly upstream's `<resource> is forbidden: User "u" cannot <verb> resource ...`.
    """

    def __init__(
        self,
        superuser_groups: Sequence[str] = (MASTERS_GROUP,),
        superusers: Sequence[str] = (ADMIN_USER,),
    ) -> None:
        self._groups = frozenset(superuser_groups)
        self._users = frozenset(superusers)

    async def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        return self.decide(attrs)

    def rules_for(self, user: UserInfo) -> tuple[Rule, ...]:
        """The rules `user` holds, for SelfSubjectRulesReview (`kubectl auth can-i --list`); namespace-independent."""
        if self._groups.intersection(user.groups) or user.name in self._users:
            return SUPERUSER_RULES
        rules: tuple[Rule, ...] = ()
        if NODES_GROUP in user.groups:
            rules += NODE_RULES
        if AUTHENTICATED_GROUP in user.groups:
            rules += AUTHENTICATED_RULES
        return rules

    def decide(self, attrs: Attributes) -> tuple[bool, str]:
        """Synchronous core of `authorize` (pure; no I/O)."""
        user = attrs.user
        for g in user.groups:
            if g in self._groups:
                return True, f'allowed: group "{g}" is a superuser group'
        if user.name in self._users:
            return True, f'allowed: user "{user.name}" is a superuser'
        if NODES_GROUP in user.groups and any(rule_allows(r, attrs) for r in NODE_RULES):
            return True, f'allowed: agent access for group "{NODES_GROUP}"'
        if AUTHENTICATED_GROUP in user.groups and any(rule_allows(r, attrs) for r in AUTHENTICATED_RULES):
            return True, f'allowed: default access for group "{AUTHENTICATED_GROUP}"'
        return False, ""


class UnionAuthorizer:
    """Asks each authorizer in order; the first allow wins (upstream `authorizer/union`).

    When none allows, the request is denied and the non-empty reasons are joined with newlines.
    """

    def __init__(self, *authorizers: Authorizer) -> None:
        self._authorizers = authorizers

    async def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        reasons: list[str] = []
        for a in self._authorizers:
            allowed, reason = await a.authorize(attrs)
            if allowed:
                return True, reason
            if reason:
                reasons.append(reason)
        return False, "\n".join(reasons)


def _go_quote(s: str) -> str:
    """Go's `%q` for the strings that occur here (names, verbs, paths): backslash and double quote escaped."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def forbidden_message(attrs: Attributes, reason: str = "") -> str:
    """The message of the 403 Status for a denied request, byte-for-byte as kube-apiserver writes it.

    `responsewriters.forbiddenMessage` builds the `User "u" cannot ...` sentence (cluster-scope, namespace,
    subresource and non-resource variants) and `errors.NewForbidden` prefixes it with the group-qualified
    resource (and the name when there is one), or with `forbidden:` for non-resource requests.
    """
    user = _go_quote(attrs.user.name)
    verb = attrs.verb
    if not attrs.resource_request:
        detail = f"User {user} cannot {verb} path {_go_quote(attrs.path)}"
    else:
        resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        scope = (
            f"in the namespace {_go_quote(attrs.namespace)}" if attrs.namespace else "at the cluster scope"
        )
        detail = (
            f"User {user} cannot {verb} resource {_go_quote(resource)} "
            f"in API group {_go_quote(attrs.api_group)} {scope}"
        )
    if reason:
        detail = f"{detail}: {reason}"
    gr = qualified(attrs.resource, attrs.api_group) if (attrs.resource or attrs.api_group) else ""
    if not attrs.resource_request or not gr:
        return f"forbidden: {detail}"
    if attrs.name:
        return f"{gr} {_go_quote(attrs.name)} is forbidden: {detail}"
    return f"{gr} is forbidden: {detail}"


def forbidden_error(attrs: Attributes, reason: str = "") -> ApiError:
    """403 Forbidden `ApiError` with upstream's details (`group`, `kind` = resource, `name`; empty ones omitted)."""
    details: dict[str, str] = {}
    if attrs.resource_request:
        if attrs.name:
            details["name"] = attrs.name
        if attrs.api_group:
            details["group"] = attrs.api_group
        if attrs.resource:
            details["kind"] = attrs.resource
    return ApiError(403, "Forbidden", forbidden_message(attrs, reason), details)
