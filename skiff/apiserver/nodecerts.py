"""Certificates for node agents: `POST /v1-skiff/serving-cert` (k3s: `/v1-k3s/serving-kubelet.crt`).

A joined agent (group `system:nodes`, from the node token) asks for the serving certificate of its stream
server: `{"nodeName": "n1", "addresses": ["10.0.0.5"]}` → `{"cert": PEM, "key": PEM, "ca": PEM}`. The API
server verifies agents against the cluster CA when it proxies logs/exec/port-forward to them, so only a
certificate issued here is accepted. Any other caller gets 403.
"""

from __future__ import annotations

import asyncio
import ipaddress

from aiohttp import web

from skiff.api import errors
from skiff.apiserver.auth import NODES_GROUP, UserInfo
from skiff.apiserver.certs import Credentials, issue_node_serving_cert
from skiff.apiserver.http import USER_KEY, APIServer, json_response

PATH = "/v1-skiff/serving-cert"


def install(api: APIServer, creds: Credentials) -> None:
    async def serving_cert(request: web.Request) -> web.StreamResponse:
        user: UserInfo = request[USER_KEY]
        if NODES_GROUP not in user.groups:
            raise errors.forbidden(f'User "{user.name}" cannot request node serving certificates')
        try:
            body = await request.json()
        except ValueError:
            raise errors.bad_request("the body must be a JSON object") from None
        name = str((body or {}).get("nodeName") or "")
        addresses = [str(a) for a in (body or {}).get("addresses") or []]
        if not name:
            raise errors.bad_request("nodeName is required")
        for a in addresses:
            try:
                ipaddress.ip_address(a)
            except ValueError:
                raise errors.bad_request(f"addresses: {a!r} is not an IP address") from None
        cert, key = await asyncio.to_thread(issue_node_serving_cert, creds, name, addresses)
        return json_response({"cert": cert.decode(), "key": key.decode(), "ca": creds.ca_cert.read_text()})

    api.extra_routes.append(("POST", PATH, serving_cert))
