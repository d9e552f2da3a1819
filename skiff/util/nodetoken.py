"""The node join token, k3s's format: `K10<sha256 of the CA bundle>::server:<secret>`.

The pin lets a joining agent trust the server's CA on first contact (it fetches `/cacerts` unverified and
compares hashes); the secret authenticates it. A bare secret is accepted too, without the pin.
"""

from __future__ import annotations

import hashlib

_NODE_TOKEN_PREFIX = "K10"
_NODE_TOKEN_USER_PART = "server"


def ca_hash(ca_pem: bytes) -> str:
    """sha256 hex of the CA bundle, the pin k3s puts in its `K10…` tokens so joining nodes can verify the CA."""
    return hashlib.sha256(ca_pem).hexdigest()


def format_node_token(ca_pem: bytes, secret: str) -> str:
    return f"{_NODE_TOKEN_PREFIX}{ca_hash(ca_pem)}::{_NODE_TOKEN_USER_PART}:{secret}"


def parse_node_token(token: str) -> tuple[str | None, str]:
    """(CA hash or None, secret) of a node token: full `K10<hash>::server:<secret>` or the bare secret (k3s)."""
    token = token.strip()
    if token.startswith(_NODE_TOKEN_PREFIX) and "::" in token:
        head, _, cred = token.partition("::")
        _, _, secret = cred.partition(":")
        return head[len(_NODE_TOKEN_PREFIX) :], secret
    return None, token
