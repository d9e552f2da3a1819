"""Joining a server: trust its CA by the pin in the node token, then talk HTTPS with the token.

k3s's flow: `skiff agent --server URL --token K10<ca sha256>::server:<secret>`. The agent fetches
`URL/cacerts` without verification, refuses a CA whose sha256 differs from the pin, and from then on verifies
the server against that CA and authenticates with the token (group `system:nodes`). A bare secret (no pin)
is refused unless a CA file is given: trusting an unverified CA would let anyone on the path impersonate the
server.
"""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import aiohttp

from skiff.agent.server import agent_tls_context
from skiff.client.https import HTTPSClient
from skiff.util.fs import write_atomic
from skiff.util.nodetoken import parse_node_token


class JoinError(Exception):
    """The server cannot be trusted or reached; the message says which and why."""


async def fetch_ca(server: str, pinned: str) -> bytes:
    """The server's CA bundle, checked against the sha256 pin of the node token."""
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    try:
        async with aiohttp.ClientSession() as session, session.get(
            server.rstrip("/") + "/cacerts", ssl=insecure, timeout=aiohttp.ClientTimeout(total=15)
        ) as resp:
            if resp.status != 200:
                raise JoinError(f"{server}/cacerts answered {resp.status}")
            ca = await resp.read()
    except aiohttp.ClientError as e:
        raise JoinError(f"cannot reach {server}: {e}") from None
    if hashlib.sha256(ca).hexdigest() != pinned:
        raise JoinError(f"the CA of {server} does not match the hash in the token: refusing to trust it")
    return ca


async def join(server: str, token: str, data_dir: Path, ca_file: Path | None = None) -> HTTPSClient:
    """An HTTPS client for `server` authenticated by `token`; the verified CA is kept in `data_dir/server-ca.crt`."""
    pinned, _ = parse_node_token(token)
    if ca_file is not None:
        ca = ca_file.read_bytes()
    elif pinned:
        ca = await fetch_ca(server, pinned)
    else:
        raise JoinError("the token carries no CA hash (K10<sha256>::server:<secret>); pass --ca-file to trust a CA")
    write_atomic(data_dir / "server-ca.crt", ca, 0o644)
    ctx = ssl.create_default_context(cadata=ca.decode())
    return HTTPSClient(server, ctx, token=token.strip())


def serving_context(data_dir: Path, cert_pem: bytes, key_pem: bytes, ca_pem: bytes) -> ssl.SSLContext:
    """The agent stream server's TLS: our node certificate, and only clients with a certificate from the
    cluster CA (the API server's kubelet client) may connect, as the kubelet's `--client-ca-file`."""
    tls = data_dir / "tls"
    write_atomic(tls / "agent.crt", cert_pem, 0o644)
    write_atomic(tls / "agent.key", key_pem, 0o600)
    write_atomic(tls / "agent-client-ca.crt", ca_pem, 0o644)
    return agent_tls_context(tls / "agent.crt", tls / "agent.key", tls / "agent-client-ca.crt")


async def request_serving_context(server: str, token: str, ca_pem: bytes, data_dir: Path, node_name: str,
                                  addresses: list[str]) -> ssl.SSLContext:
    """Ask the server for this node's serving certificate (`POST /v1-skiff/serving-cert`) and build the context."""
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    async with aiohttp.ClientSession() as session, session.post(
        server.rstrip("/") + "/v1-skiff/serving-cert", ssl=ctx, json={"nodeName": node_name, "addresses": addresses},
        headers={"Authorization": f"Bearer {token.strip()}"}, timeout=aiohttp.ClientTimeout(total=30),
    ) as resp:
        body = await resp.json(content_type=None)
        if resp.status != 200:
            raise JoinError(f"{server} refused a serving certificate for {node_name}: {body.get('message', resp.status)}")
    return serving_context(data_dir, body["cert"].encode(), body["key"].encode(), body["ca"].encode())
