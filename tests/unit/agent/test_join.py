"""Joining trusts the server's CA only when it matches the token's pin, then talks HTTPS as a node."""

from __future__ import annotations

from pathlib import Path

import pytest

from skiff.agent.join import JoinError, join
from skiff.client.interface import NODES, ListOptions
from skiff.testing import ServerProcess, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    srv = start_server(tmp_path_factory.mktemp("join"))
    try:
        yield srv
    finally:
        srv.stop()


async def test_join_with_the_pinned_token_lists_nodes(server: ServerProcess, tmp_path: Path) -> None:
    token = (server.data_dir / "tls" / "node.token").read_text().strip()
    client = await join(server.url, token, tmp_path)
    try:
        assert (await client.list(NODES, "", ListOptions()))["kind"] == "NodeList"
        assert (tmp_path / "server-ca.crt").read_bytes() == server.ca_file.read_bytes()
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("make_token", "message"),
    [
        pytest.param(lambda t: "K10" + "0" * 64 + "::server:" + t.split(":")[-1], "does not match the hash",
                     id="wrong-pin"),
        pytest.param(lambda t: t.split(":")[-1], "carries no CA hash", id="bare-secret-without-ca-file"),
    ],
)
async def test_join_refuses_an_unverifiable_ca(server: ServerProcess, tmp_path: Path, make_token, message) -> None:  # type: ignore[no-untyped-def]
    token = make_token((server.data_dir / "tls" / "node.token").read_text().strip())
    with pytest.raises(JoinError, match=message):
        await join(server.url, token, tmp_path)
    assert not (tmp_path / "server-ca.crt").exists()


async def test_a_joined_node_gets_a_serving_certificate_from_the_cluster_ca(server: ServerProcess, tmp_path: Path) -> None:
    import ssl

    from cryptography import x509

    from skiff.agent.join import request_serving_context

    token = (server.data_dir / "tls" / "node.token").read_text().strip()
    ca = server.ca_file.read_bytes()
    ctx = await request_serving_context(server.url, token, ca, tmp_path, "n1", ["10.1.2.3"])
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    cert = x509.load_pem_x509_certificate((tmp_path / "tls" / "agent.crt").read_bytes())
    assert cert.subject.rfc4514_string() == "CN=system:node:n1,O=system:nodes"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    assert sans.get_values_for_type(x509.DNSName) == ["n1"]


async def test_only_nodes_get_serving_certificates(server: ServerProcess, tmp_path: Path) -> None:
    from skiff.agent.join import request_serving_context

    with pytest.raises(JoinError, match="refused a serving certificate"):
        await request_serving_context(server.url, server.token, server.ca_file.read_bytes(), tmp_path, "n1", [])
