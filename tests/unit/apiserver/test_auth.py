"""Authentication, the admin authorizer, upstream 403 messages, and a real HTTPS round trip (aiohttp + kubectl)."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from skiff.api.errors import unauthorized
from skiff.apiserver import certs
from skiff.apiserver.auth import (
    AUTHENTICATED_RULES,
    NODE_RULES,
    SUPERUSER_RULES,
    AdminAuthorizer,
    Attributes,
    Authenticator,
    Rule,
    UnionAuthorizer,
    UserInfo,
    bearer_token,
    forbidden_error,
    forbidden_message,
    rule_allows,
)
from skiff.apiserver.certs import Credentials, bootstrap, issue_client_cert
from skiff.util.nodetoken import parse_node_token

AUTHN = "system:authenticated"


@pytest.fixture(autouse=True)
def fixed_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(certs, "host_addresses", lambda: ["192.0.2.10"])


@pytest.fixture
def creds(tmp_path: Path) -> Credentials:
    return bootstrap(tmp_path / "data", "127.0.0.1", 6443)


def der(cert_pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)


def foreign_creds(tmp_path: Path) -> Credentials:
    """A second, unrelated cluster: its certificates must not authenticate against ours."""
    return bootstrap(tmp_path / "other", "127.0.0.1", 6443)


# ---------------------------------------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    ("header", "token"),
    [
        pytest.param("Bearer abc", "abc", id="bearer"),
        pytest.param("bearer abc", "abc", id="scheme-case-insensitive"),
        pytest.param("  Bearer abc  ", "abc", id="surrounding-space"),
        pytest.param("Bearer abc extra", "abc", id="third-part-ignored"),
        pytest.param("Bearer ", None, id="empty-token"),
        pytest.param("Bearer  abc", None, id="double-space-empty-token"),
        pytest.param("Basic YWRtaW46eA==", None, id="basic"),
        pytest.param("abc", None, id="no-scheme"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("make_header", "want"),
    [
        pytest.param(
            lambda c: f"Bearer {c.admin_token}", ("admin", ("system:masters", AUTHN)), id="admin-token"
        ),
        pytest.param(
            lambda c: f"Bearer {c.node_token}",
            ("system:node-bootstrap", ("system:nodes", AUTHN)),
            id="node-token",
        ),
        pytest.param(
            lambda c: "Bearer " + parse_node_token(c.node_token)[1],
            ("system:node-bootstrap", ("system:nodes", AUTHN)),
            id="node-token-bare-secret",
        ),
        pytest.param(
            lambda c: "Bearer K10" + "0" * 64 + "::server:" + parse_node_token(c.node_token)[1],
            None,
            id="node-token-pinned-to-another-ca",
        ),
        pytest.param(lambda c: f"Bearer {c.admin_token}x", None, id="wrong-token"),
        pytest.param(lambda c: f"Basic {c.admin_token}", None, id="wrong-scheme"),
        pytest.param(lambda c: None, None, id="no-credentials"),
    ],
)
def test_authenticate_tokens(
    creds: Credentials, make_header: Any, want: tuple[str, tuple[str, ...]] | None
) -> None:
    user = Authenticator(creds).authenticate(make_header(creds), None)
    assert (None if user is None else (user.name, user.groups)) == want


def test_added_token_authenticates_until_removed(creds: Credentials) -> None:
    authn = Authenticator(creds)
    sa = UserInfo(
        "system:serviceaccount:ns:sa",
        uid="u-1",
        groups=("system:serviceaccounts", "system:serviceaccounts:ns"),
        extra={"authentication.kubernetes.io/pod-name": ("p",)},
    )
    authn.add_token("sa-token", sa)
    user = authn.authenticate("Bearer sa-token", None)
    assert user is not None
    assert (user.name, user.uid) == ("system:serviceaccount:ns:sa", "u-1")
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:ns", AUTHN)
    assert user.extra == {"authentication.kubernetes.io/pod-name": ("p",)}
    authn.remove_token("sa-token")
    assert authn.authenticate("Bearer sa-token", None) is None


def test_user_already_in_authenticated_group_is_not_duplicated(creds: Credentials) -> None:
    authn = Authenticator(creds)
    authn.add_token("t", UserInfo("u", groups=(AUTHN, "g")))
    user = authn.authenticate("Bearer t", None)
    assert user is not None and user.groups == (AUTHN, "g")


def test_userinfo_is_hashable_despite_extra() -> None:
    assert hash(UserInfo("u", extra={"k": ("v",)})) == hash(UserInfo("u", extra={"k": ("w",)}))


@pytest.mark.parametrize(
    ("user", "groups", "want"),
    [
        pytest.param("jane", ["dev", "ops"], ("jane", ("dev", "ops", AUTHN)), id="cn-and-orgs"),
        pytest.param(
            "system:node:n1", ["system:nodes"], ("system:node:n1", ("system:nodes", AUTHN)), id="node-cert"
        ),
        pytest.param("solo", [], ("solo", (AUTHN,)), id="no-groups"),
    ],
)
def test_authenticate_client_cert(
    creds: Credentials, user: str, groups: list[str], want: tuple[str, tuple[str, ...]]
) -> None:
    cert_pem, _ = issue_client_cert(creds, user, groups)
    got = Authenticator(creds).authenticate(None, der(cert_pem))
    assert got is not None and (got.name, got.groups) == want


def test_client_cert_wins_over_token_like_upstream_union_order(creds: Credentials) -> None:
    cert_pem, _ = issue_client_cert(creds, "jane", ["dev"])
    user = Authenticator(creds).authenticate(f"Bearer {creds.admin_token}", der(cert_pem))
    assert user is not None and user.name == "jane"


def test_foreign_cert_is_ignored_and_token_still_counts(creds: Credentials, tmp_path: Path) -> None:
    cert_pem, _ = issue_client_cert(foreign_creds(tmp_path), "mallory", ["system:masters"])
    authn = Authenticator(creds)
    assert authn.authenticate(None, der(cert_pem)) is None
    user = authn.authenticate(f"Bearer {creds.admin_token}", der(cert_pem))
    assert user is not None and user.name == "admin"


def test_garbage_cert_bytes_do_not_authenticate(creds: Credentials) -> None:
    assert Authenticator(creds).authenticate(None, b"not a certificate") is None


# ---------------------------------------------------------------------------------------------- authorization


def attrs(user: UserInfo, verb: str, resource: str = "", **kw: Any) -> Attributes:
    return Attributes(user=user, verb=verb, resource_request=bool(resource), resource=resource, **kw)


ADMIN = UserInfo("admin", groups=("system:masters", AUTHN))
ROOTISH = UserInfo("ops-lead", groups=("system:masters", AUTHN))
ADMIN_NO_GROUPS = UserInfo("admin")
NODE = UserInfo("system:node-bootstrap", groups=("system:nodes", AUTHN))
NODE_CERT = UserInfo("system:node:n1", groups=("system:nodes", AUTHN))
JANE = UserInfo("jane", groups=("dev", AUTHN))
NOT_AUTHENTICATED = UserInfo("ghost")


@pytest.mark.parametrize(
    ("a", "allowed"),
    [
        pytest.param(attrs(ADMIN, "delete", "nodes", name="n1"), True, id="admin-anything"),
        pytest.param(attrs(ROOTISH, "create", "secrets", namespace="kube-system"), True, id="masters-group"),
        pytest.param(attrs(ADMIN_NO_GROUPS, "list", "pods"), True, id="admin-user-name"),
        pytest.param(attrs(ADMIN, "get", path="/metrics"), True, id="admin-non-resource"),
        pytest.param(attrs(NODE, "create", "nodes", name="n1"), True, id="node-registers-node"),
        pytest.param(attrs(NODE, "patch", "nodes", subresource="status", name="n1"), True, id="node-status"),
        pytest.param(
            attrs(
                NODE,
                "update",
                "leases",
                api_group="coordination.k8s.io",
                namespace="kube-node-lease",
                name="n1",
            ),
            True,
            id="node-lease",
        ),
        pytest.param(attrs(NODE, "watch", "pods"), True, id="node-watches-pods"),
        pytest.param(
            attrs(NODE, "patch", "pods", subresource="status", namespace="d", name="p"), True, id="pod-status"
        ),
        pytest.param(attrs(NODE, "create", "events", namespace="d"), True, id="node-events"),
        pytest.param(
            attrs(NODE, "list", "endpointslices", api_group="discovery.k8s.io"), True, id="node-proxy-reads"
        ),
        pytest.param(
            attrs(NODE_CERT, "get", "secrets", namespace="d", name="s"), True, id="node-cert-reads-secret"
        ),
        pytest.param(attrs(NODE, "create", "secrets", namespace="d"), False, id="node-cannot-write-secrets"),
        pytest.param(
            attrs(NODE, "update", "pods", namespace="d", name="p"), False, id="node-cannot-update-pod-spec"
        ),
        pytest.param(attrs(NODE, "delete", "nodes", name="n1"), False, id="node-cannot-delete-nodes"),
        pytest.param(
            attrs(NODE, "create", "deployments", api_group="apps", namespace="d"), False, id="node-no-apps"
        ),
        pytest.param(attrs(JANE, "list", "pods", namespace="default"), False, id="user-denied"),
        pytest.param(attrs(JANE, "get", path="/version"), True, id="user-version"),
        pytest.param(attrs(JANE, "get", path="/apis/apps/v1"), True, id="user-discovery"),
        pytest.param(attrs(JANE, "get", path="/openapi/v3"), True, id="user-openapi"),
        pytest.param(attrs(JANE, "get", path="/metrics"), False, id="user-no-metrics"),
        pytest.param(attrs(JANE, "post", path="/api"), False, id="user-discovery-get-only"),
        pytest.param(
            attrs(JANE, "create", "selfsubjectaccessreviews", api_group="authorization.k8s.io"),
            True,
            id="user-can-i",
        ),
        pytest.param(
            attrs(JANE, "create", "selfsubjectreviews", api_group="authentication.k8s.io"),
            True,
            id="user-whoami",
        ),
        pytest.param(attrs(NOT_AUTHENTICATED, "get", path="/version"), False, id="not-authenticated"),
    ],
)
async def test_admin_authorizer(a: Attributes, allowed: bool) -> None:
    ok, reason = await AdminAuthorizer().authorize(a)
    assert ok is allowed
    assert (reason != "") is allowed  # allows explain themselves; denies stay silent like RBAC's no-opinion


@pytest.mark.parametrize(
    ("user", "want"),
    [
        pytest.param(ADMIN, SUPERUSER_RULES, id="masters"),
        pytest.param(ADMIN_NO_GROUPS, SUPERUSER_RULES, id="admin-user"),
        pytest.param(NODE, NODE_RULES + AUTHENTICATED_RULES, id="node"),
        pytest.param(JANE, AUTHENTICATED_RULES, id="authenticated"),
        pytest.param(NOT_AUTHENTICATED, (), id="nothing"),
    ],
)
def test_rules_for(user: UserInfo, want: tuple[Rule, ...]) -> None:
    assert AdminAuthorizer().rules_for(user) == want


@pytest.mark.parametrize(
    ("rule", "a", "want"),
    [
        pytest.param(
            Rule(("*",), ("*",), ("*",)), attrs(JANE, "delete", "x", api_group="g"), True, id="all-wildcards"
        ),
        pytest.param(
            Rule(("get",), ("",), ("pods",)), attrs(JANE, "list", "pods"), False, id="verb-mismatch"
        ),
        pytest.param(
            Rule(("get",), ("apps",), ("pods",)), attrs(JANE, "get", "pods"), False, id="group-mismatch"
        ),
        pytest.param(
            Rule(("get",), ("",), ("pods",)),
            attrs(JANE, "get", "pods", subresource="log"),
            False,
            id="sub-not-implied",
        ),
        pytest.param(
            Rule(("get",), ("",), ("pods/log",)),
            attrs(JANE, "get", "pods", subresource="log"),
            True,
            id="sub-named",
        ),
        pytest.param(
            Rule(("get",), ("*",), ("*/scale",)),
            attrs(JANE, "get", "deployments", api_group="apps", subresource="scale"),
            True,
            id="any-resource-sub",
        ),
        pytest.param(
            Rule(("get",), ("",), ("pods",), resource_names=("a",)),
            attrs(JANE, "get", "pods", name="b"),
            False,
            id="name",
        ),
        pytest.param(
            Rule(("get",), ("",), ("pods",), resource_names=("a",)),
            attrs(JANE, "get", "pods", name="a"),
            True,
            id="name-ok",
        ),
        pytest.param(
            Rule(("get",), non_resource_urls=("/api/*",)),
            attrs(JANE, "get", path="/api/"),
            True,
            id="url-star",
        ),
        pytest.param(
            Rule(("get",), non_resource_urls=("/api",)),
            attrs(JANE, "get", path="/api/v1"),
            False,
            id="url-exact",
        ),
        pytest.param(
            Rule(("get",), ("*",), ("*",)), attrs(JANE, "get", path="/api"), False, id="resource-rule-not-url"
        ),
    ],
)
def test_rule_allows(rule: Rule, a: Attributes, want: bool) -> None:
    assert rule_allows(rule, a) is want


@dataclass
class Fixed:
    answer: tuple[bool, str]
    calls: int = 0

    async def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        self.calls += 1
        return self.answer


@pytest.mark.parametrize(
    ("answers", "want", "calls"),
    [
        pytest.param([(True, "first")], (True, "first"), [1], id="single-allow"),
        pytest.param([(False, ""), (True, "second")], (True, "second"), [1, 1], id="second-allows"),
        pytest.param([(True, "a"), (True, "b")], (True, "a"), [1, 0], id="first-allow-short-circuits"),
        pytest.param(
            [(False, "no1"), (False, ""), (False, "no3")], (False, "no1\nno3"), [1, 1, 1], id="reasons-joined"
        ),
        pytest.param([], (False, ""), [], id="empty-denies"),
    ],
)
async def test_union_authorizer(
    answers: list[tuple[bool, str]], want: tuple[bool, str], calls: list[int]
) -> None:
    fixed = [Fixed(a) for a in answers]
    assert await UnionAuthorizer(*fixed).authorize(attrs(JANE, "get", "pods")) == want
    assert [f.calls for f in fixed] == calls


U = UserInfo("u")


@pytest.mark.parametrize(
    ("a", "reason", "message"),
    [
        pytest.param(
            attrs(U, "list", "pods", namespace="default"),
            "",
            'pods is forbidden: User "u" cannot list resource "pods" in API group "" in the namespace "default"',
            id="namespaced-list",
        ),
        pytest.param(
            attrs(U, "list", "nodes"),
            "",
            'nodes is forbidden: User "u" cannot list resource "nodes" in API group "" at the cluster scope',
            id="cluster-scope",
        ),
        pytest.param(
            attrs(U, "get", "deployments", api_group="apps", namespace="prod", name="web"),
            "",
            'deployments.apps "web" is forbidden: User "u" cannot get resource "deployments" in API group "apps" '
            'in the namespace "prod"',
            id="named-in-group",
        ),
        pytest.param(
            attrs(U, "get", "pods", subresource="log", namespace="d", name="p"),
            "",
            'pods "p" is forbidden: User "u" cannot get resource "pods/log" in API group "" in the namespace "d"',
            id="subresource",
        ),
        pytest.param(
            attrs(U, "get", path="/metrics"),
            "",
            'forbidden: User "u" cannot get path "/metrics"',
            id="non-resource",
        ),
        pytest.param(
            attrs(U, "delete", "nodes", name="n1"),
            "no relationship found",
            'nodes "n1" is forbidden: User "u" cannot delete resource "nodes" in API group "" at the cluster scope: '
            "no relationship found",
            id="with-reason",
        ),
        pytest.param(
            attrs(UserInfo('we"ird'), "list", "pods", namespace="d"),
            "",
            'pods is forbidden: User "we\\"ird" cannot list resource "pods" in API group "" in the namespace "d"',
            id="go-quoting",
        ),
    ],
)
def test_forbidden_message(a: Attributes, reason: str, message: str) -> None:
    assert forbidden_message(a, reason) == message


@pytest.mark.parametrize(
    ("a", "details"),
    [
        pytest.param(
            attrs(U, "get", "deployments", api_group="apps", namespace="p", name="web"),
            {"name": "web", "group": "apps", "kind": "deployments"},
            id="resource",
        ),
        pytest.param(attrs(U, "list", "pods", namespace="p"), {"kind": "pods"}, id="core-list"),
        pytest.param(attrs(U, "get", path="/metrics"), {}, id="non-resource"),
    ],
)
def test_forbidden_error_status(a: Attributes, details: dict[str, str]) -> None:
    status = forbidden_error(a).status()
    assert (status["code"], status["reason"], status["status"]) == (403, "Forbidden", "Failure")
    assert status["details"] == details
    assert status["message"] == forbidden_message(a)


# ---------------------------------------------------------------------------------------------- HTTPS round trip


@dataclass
class Server:
    creds: Credentials
    port: int
    seen: list[dict[str, Any]]


def peer_cert(request: web.Request) -> bytes | None:
    """How the HTTP layer gets the TLS-verified client certificate from aiohttp."""
    assert request.transport is not None
    ssl_object = request.transport.get_extra_info("ssl_object")
    return ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    data = tmp_path / "data"
    creds = bootstrap(data, "127.0.0.1", 0)
    authn = Authenticator(creds)
    seen: list[dict[str, Any]] = []

    async def whoami(request: web.Request) -> web.Response:
        cert = peer_cert(request)
        user = authn.authenticate(request.headers.get("Authorization"), cert)
        if user is None:
            return web.json_response(unauthorized().status(), status=401)
        body = {"name": user.name, "groups": list(user.groups), "viaCert": cert is not None}
        seen.append(body)
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/whoami-test", whoami)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=creds.server_ssl_context())
    await site.start()
    port = runner.addresses[0][1]
    creds = bootstrap(data, "127.0.0.1", port)  # a later start: same PKI, kubeconfig now names the real port
    try:
        yield Server(creds, port, seen)
    finally:
        await runner.cleanup()


def client_ctx(creds: Credentials, tmp_path: Path, cert: tuple[bytes, bytes] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(creds.ca_cert))
    if cert is not None:
        pem = tmp_path / "client.pem"
        pem.write_bytes(cert[0] + cert[1])
        ctx.load_cert_chain(str(pem))
    return ctx


async def get(server: Server, ctx: ssl.SSLContext, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"https://localhost:{server.port}/whoami-test", ssl=ctx, headers=headers) as resp,
    ):
        return resp.status, await resp.json()


async def test_https_client_cert_identity(server: Server, tmp_path: Path) -> None:
    ctx = client_ctx(server.creds, tmp_path, issue_client_cert(server.creds, "jane", ["dev", "ops"]))
    assert await get(server, ctx) == (200, {"name": "jane", "groups": ["dev", "ops", AUTHN], "viaCert": True})


async def test_https_bearer_token_identity(server: Server, tmp_path: Path) -> None:
    ctx = client_ctx(server.creds, tmp_path)
    status, body = await get(server, ctx, {"Authorization": f"Bearer {server.creds.admin_token}"})
    assert (status, body) == (200, {"name": "admin", "groups": ["system:masters", AUTHN], "viaCert": False})


async def test_https_node_token_identity(server: Server, tmp_path: Path) -> None:
    ctx = client_ctx(server.creds, tmp_path)
    status, body = await get(server, ctx, {"Authorization": f"Bearer {server.creds.node_token}"})
    assert (status, body["name"], body["groups"]) == (200, "system:node-bootstrap", ["system:nodes", AUTHN])


async def test_https_without_credentials_is_401(server: Server, tmp_path: Path) -> None:
    status, body = await get(server, client_ctx(server.creds, tmp_path))
    assert (status, body["reason"], body["code"]) == (401, "Unauthorized", 401)


async def test_https_foreign_client_cert_fails_the_handshake(server: Server, tmp_path: Path) -> None:
    foreign = issue_client_cert(foreign_creds(tmp_path), "mallory", ["system:masters"])
    ctx = client_ctx(server.creds, tmp_path, foreign)
    with pytest.raises(aiohttp.ClientError):
        await get(server, ctx)
    assert server.seen == []


KUBECTL = shutil.which("kubectl")


async def kubectl(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "HOME": str(tmp_path), "KUBECONFIG": ""}
    proc = await asyncio.create_subprocess_exec(
        str(KUBECTL), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
async def test_kubectl_with_admin_kubeconfig_authenticates_by_certificate(
    server: Server, tmp_path: Path
) -> None:
    rc, out, err = await kubectl(
        tmp_path, "--kubeconfig", str(server.creds.kubeconfig), "get", "--raw", "/whoami-test"
    )
    assert rc == 0, err
    assert yaml.safe_load(out) == {"name": "admin", "groups": ["system:masters", AUTHN], "viaCert": True}


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
async def test_kubectl_with_admin_token_alone(server: Server, tmp_path: Path) -> None:
    token = (server.creds.data_dir / "tls" / "admin.token").read_text().strip()
    rc, out, err = await kubectl(
        tmp_path,
        "--kubeconfig",
        os.devnull,
        "--server",
        f"https://127.0.0.1:{server.port}",
        "--certificate-authority",
        str(server.creds.ca_cert),
        "--token",
        token,
        "get",
        "--raw",
        "/whoami-test",
    )
    assert rc == 0, err
    assert yaml.safe_load(out) == {"name": "admin", "groups": ["system:masters", AUTHN], "viaCert": False}


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
async def test_kubectl_with_wrong_token_reports_unauthorized(server: Server, tmp_path: Path) -> None:
    rc, _, err = await kubectl(
        tmp_path,
        "--kubeconfig",
        os.devnull,
        "--server",
        f"https://127.0.0.1:{server.port}",
        "--certificate-authority",
        str(server.creds.ca_cert),
        "--token",
        "wrong",
        "get",
        "--raw",
        "/whoami-test",
    )
    assert rc != 0
    assert "Unauthorized" in err
    assert server.seen == []
