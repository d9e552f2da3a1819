"""certs.bootstrap: create-or-load of the PKI, SAN handling, tokens, kubeconfig (checked with the real kubectl)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import shutil
import socket
import ssl
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from skiff.apiserver import certs
from skiff.apiserver.certs import (
    CredentialsError,
    bootstrap,
    cert_sans,
    format_node_token,
    issue_client_cert,
    parse_fib_trie,
    parse_if_inet6,
    parse_node_token,
    required_sans,
    server_url,
    write_atomic,
)

NODE_IPS = ["192.0.2.10", "2001:db8::10"]


@pytest.fixture(autouse=True)
def fixed_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pin the host facts so SAN expectations do not depend on the machine running the tests."""
    monkeypatch.setattr(certs, "host_addresses", lambda: list(NODE_IPS))
    monkeypatch.setattr(socket, "gethostname", lambda: "Node-A")


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("bind", "port", "url"),
    [
        pytest.param("0.0.0.0", 6443, "https://127.0.0.1:6443", id="ipv4-wildcard-uses-loopback"),
        pytest.param("::", 6443, "https://127.0.0.1:6443", id="ipv6-wildcard-uses-loopback"),
        pytest.param("127.0.0.1", 8443, "https://127.0.0.1:8443", id="loopback"),
        pytest.param("10.0.0.5", 6443, "https://10.0.0.5:6443", id="ipv4-bind"),
        pytest.param("fd00::1", 6443, "https://[fd00::1]:6443", id="ipv6-bracketed"),
        pytest.param("[fd00::1]", 6443, "https://[fd00::1]:6443", id="ipv6-already-bracketed"),
        pytest.param("api.example.com", 443, "https://api.example.com:443", id="hostname"),
    ],
)
def test_server_url(bind: str, port: int, url: str) -> None:
    assert server_url(bind, port) == url


@pytest.mark.parametrize(
    ("bind", "addresses", "extra", "want_dns", "want_ips"),
    [
        pytest.param(
            "0.0.0.0",
            ["192.0.2.2"],
            [],
            {"localhost", "node-a", "kubernetes.default.svc"},
            {"127.0.0.1", "::1", "192.0.2.2"},
            id="wildcard-bind-adds-nothing",
        ),
        pytest.param(
            "10.1.1.1", [], [], {"localhost", "node-a"}, {"127.0.0.1", "10.1.1.1"}, id="bind-address-is-a-san"
        ),
        pytest.param(
            "api.example.com", [], [], {"api.example.com"}, {"127.0.0.1"}, id="bind-hostname-is-a-dns-san"
        ),
        pytest.param(
            "0.0.0.0",
            ["2001:db8:0:0::1"],
            ["10.43.0.1", "skiff.internal"],
            {"skiff.internal"},
            {"2001:db8::1", "10.43.0.1"},
            id="extra-sans-and-normalised-ipv6",
        ),
    ],
)
def test_required_sans(
    bind: str, addresses: list[str], extra: list[str], want_dns: set[str], want_ips: set[str]
) -> None:
    dns, ips = required_sans(bind, "Node-A", addresses, extra)
    assert want_dns <= set(dns)
    assert want_ips <= set(ips)
    assert len(dns) == len(set(dns)) and len(ips) == len(set(ips))
    assert "0.0.0.0" not in ips and "::" not in ips


FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.0.2.0/24 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
Local:
     +-- 10.0.0.0/8 2 0 2
           |-- 192.0.2.2
              /32 host LOCAL
           |-- 10.1.2.3
              /32 host LOCAL
"""

IF_INET6 = """00000000000000000000000000000001 01 80 10 80       lo
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
fd000000000000000000000000000002 04 40 00 82     eth0
garbage
"""


@pytest.mark.parametrize(
    ("parse", "text", "want"),
    [
        pytest.param(
            parse_fib_trie, FIB_TRIE, ["127.0.0.1", "192.0.2.2", "10.1.2.3"], id="fib-trie-local-hosts"
        ),
        pytest.param(parse_fib_trie, "", [], id="fib-trie-empty"),
        pytest.param(parse_if_inet6, IF_INET6, ["::1", "fe80::fc:ff:fe00:1", "fd00::2"], id="if-inet6"),
    ],
)
def test_parse_proc_addresses(parse: Any, text: str, want: list[str]) -> None:
    assert parse(text) == want


@pytest.mark.parametrize(
    ("addr", "usable"),
    [
        pytest.param("127.0.0.1", False, id="loopback4"),
        pytest.param("::1", False, id="loopback6"),
        pytest.param("fe80::1", False, id="link-local6"),
        pytest.param("0.0.0.0", False, id="unspecified"),
        pytest.param("192.0.2.2", True, id="ipv4"),
        pytest.param("fd00::2", True, id="ula6"),
    ],
)
def test_usable_node_ip(addr: str, usable: bool) -> None:
    assert certs._usable_node_ip(addr) is usable


@pytest.mark.parametrize(
    ("token", "want"),
    [
        pytest.param("K10abc::server:s3cret", ("abc", "s3cret"), id="k3s-full"),
        pytest.param("s3cret", (None, "s3cret"), id="bare-secret"),
        pytest.param(" s3cret\n", (None, "s3cret"), id="whitespace-stripped"),
    ],
)
def test_parse_node_token(token: str, want: tuple[str | None, str]) -> None:
    assert parse_node_token(token) == want


def test_format_node_token_pins_sha256_of_ca() -> None:
    tok = format_node_token(b"CA PEM", "abc")
    assert tok == f"K10{hashlib.sha256(b'CA PEM').hexdigest()}::server:abc"
    assert parse_node_token(tok) == (hashlib.sha256(b"CA PEM").hexdigest(), "abc")


def test_write_atomic_replaces_content_and_mode_without_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.key"
    write_atomic(target, b"one", 0o644)
    write_atomic(target, b"two", 0o600)
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(target.parent) == ["f.key"]


# ---------------------------------------------------------------------------------------------- bootstrap


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        pytest.param("tls", 0o700, id="tls-dir"),
        pytest.param("tls/ca.key", 0o600, id="ca-key"),
        pytest.param("tls/serving.key", 0o600, id="serving-key"),
        pytest.param("tls/admin.key", 0o600, id="admin-key"),
        pytest.param("tls/admin.token", 0o600, id="admin-token"),
        pytest.param("tls/node.token", 0o600, id="node-token"),
        pytest.param("kubeconfig.yaml", 0o600, id="kubeconfig"),
        pytest.param("tls/ca.crt", 0o644, id="ca-cert"),
        pytest.param("tls/serving.crt", 0o644, id="serving-cert"),
    ],
)
def test_bootstrap_file_modes(tmp_path: Path, name: str, mode: int) -> None:
    bootstrap(tmp_path, "0.0.0.0", 6443)
    assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode


def test_bootstrap_returns_paths_and_secrets(tmp_path: Path) -> None:
    creds = bootstrap(tmp_path, "0.0.0.0", 6443)
    assert creds.data_dir == tmp_path
    assert creds.kubeconfig == tmp_path / "kubeconfig.yaml"
    assert (creds.ca_cert, creds.ca_key) == (tmp_path / "tls/ca.crt", tmp_path / "tls/ca.key")
    assert (creds.serving_cert, creds.serving_key) == (
        tmp_path / "tls/serving.crt",
        tmp_path / "tls/serving.key",
    )
    assert (tmp_path / "tls/admin.token").read_text().strip() == creds.admin_token
    assert (tmp_path / "tls/node.token").read_text().strip() == creds.node_token
    assert len(creds.admin_token) >= 32
    pin, secret = parse_node_token(creds.node_token)
    assert pin == hashlib.sha256(creds.ca_cert.read_bytes()).hexdigest()
    assert len(secret) >= 32


def test_certificates_chain_to_the_ca_with_the_right_usages(tmp_path: Path) -> None:
    creds = bootstrap(tmp_path, "0.0.0.0", 6443)
    ca = load_cert(creds.ca_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    serving = load_cert(creds.serving_cert)
    serving.verify_directly_issued_by(ca)
    assert (
        ExtendedKeyUsageOID.SERVER_AUTH
        in serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    admin = load_cert(tmp_path / "tls/admin.crt")
    admin.verify_directly_issued_by(ca)
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    assert [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:masters"
    ]


def test_serving_cert_covers_host_names_node_ips_and_bind(tmp_path: Path) -> None:
    creds = bootstrap(tmp_path, "192.0.2.77", 6443)
    dns, ips = cert_sans(load_cert(creds.serving_cert))
    assert {"localhost", "node-a", "kubernetes.default.svc.cluster.local"} <= set(dns)
    assert {"127.0.0.1", *NODE_IPS, "192.0.2.77"} <= set(ips)


def test_second_bootstrap_changes_nothing(tmp_path: Path) -> None:
    first = bootstrap(tmp_path, "0.0.0.0", 6443)
    before = snapshot(tmp_path)
    second = bootstrap(tmp_path, "0.0.0.0", 6443)
    assert second == first
    assert snapshot(tmp_path) == before


def test_new_bind_address_reissues_only_the_serving_cert(tmp_path: Path) -> None:
    bootstrap(tmp_path, "0.0.0.0", 6443)
    before = snapshot(tmp_path)
    bootstrap(tmp_path, "198.51.100.9", 6443)
    after = snapshot(tmp_path)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"tls/serving.crt", "tls/serving.key", "kubeconfig.yaml"}
    _, ips = cert_sans(load_cert(tmp_path / "tls/serving.crt"))
    assert "198.51.100.9" in ips


def test_new_host_address_reissues_and_keeps_old_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap(tmp_path, "0.0.0.0", 6443)
    monkeypatch.setattr(certs, "host_addresses", lambda: ["203.0.113.5"])
    bootstrap(tmp_path, "0.0.0.0", 6443)
    _, ips = cert_sans(load_cert(tmp_path / "tls/serving.crt"))
    assert {"203.0.113.5", *NODE_IPS} <= set(ips)


def test_serving_cert_close_to_expiry_is_reissued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(certs, "SERVING_DAYS", 30)
    bootstrap(tmp_path, "0.0.0.0", 6443)
    short = load_cert(tmp_path / "tls/serving.crt")
    monkeypatch.setattr(certs, "SERVING_DAYS", 365)
    bootstrap(tmp_path, "0.0.0.0", 6443)
    renewed = load_cert(tmp_path / "tls/serving.crt")
    assert renewed.not_valid_after_utc - short.not_valid_after_utc > dt.timedelta(days=300)


def test_port_change_rewrites_only_the_kubeconfig(tmp_path: Path) -> None:
    bootstrap(tmp_path, "0.0.0.0", 6443)
    before = snapshot(tmp_path)
    bootstrap(tmp_path, "0.0.0.0", 7443)
    after = snapshot(tmp_path)
    assert {k for k in before if before[k] != after[k]} == {"kubeconfig.yaml"}
    doc = yaml.safe_load(after["kubeconfig.yaml"])
    assert doc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:7443"


def test_bare_node_secret_is_kept_and_pinned(tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls/node.token").write_text("operator-chosen-secret\n")
    creds = bootstrap(tmp_path, "0.0.0.0", 6443)
    assert creds.node_token.endswith("::server:operator-chosen-secret")
    assert creds.node_token.startswith("K10" + hashlib.sha256(creds.ca_cert.read_bytes()).hexdigest())


@pytest.mark.parametrize("missing", ["ca.key", "ca.crt"], ids=["no-ca-key", "no-ca-cert"])
def test_damaged_ca_is_refused_not_replaced(tmp_path: Path, missing: str) -> None:
    bootstrap(tmp_path, "0.0.0.0", 6443)
    (tmp_path / "tls" / missing).unlink()
    with pytest.raises(CredentialsError):
        bootstrap(tmp_path, "0.0.0.0", 6443)


def test_issue_client_cert(tmp_path: Path) -> None:
    creds = bootstrap(tmp_path, "0.0.0.0", 6443)
    cert_pem, key_pem = issue_client_cert(creds, "jane", ["dev", "ops"], days=7)
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(load_cert(creds.ca_cert))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "jane"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["dev", "ops"]
    assert (
        ExtendedKeyUsageOID.CLIENT_AUTH
        in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=7) <= lifetime <= dt.timedelta(days=7, minutes=10)
    assert b"PRIVATE KEY" in key_pem
    ctx = ssl.create_default_context()
    (tmp_path / "c.pem").write_bytes(cert_pem + key_pem)
    ctx.load_cert_chain(tmp_path / "c.pem")  # raises if cert and key do not belong together


def test_issue_client_cert_rejects_empty_user(tmp_path: Path) -> None:
    creds = bootstrap(tmp_path, "0.0.0.0", 6443)
    with pytest.raises(ValueError):
        issue_client_cert(creds, "", ["dev"])


def test_server_ssl_context_requests_optional_client_certs(tmp_path: Path) -> None:
    ctx = bootstrap(tmp_path, "0.0.0.0", 6443).server_ssl_context()
    assert ctx.verify_mode == ssl.CERT_OPTIONAL
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


# ---------------------------------------------------------------------------------------------- kubeconfig


def test_kubeconfig_document(tmp_path: Path) -> None:
    creds = bootstrap(tmp_path, "10.20.30.40", 6444)
    doc = yaml.safe_load(creds.kubeconfig.read_text())
    assert doc["current-context"] == "skiff"
    assert doc["contexts"] == [{"name": "skiff", "context": {"cluster": "skiff", "user": "admin"}}]
    cluster = doc["clusters"][0]
    assert cluster["name"] == "skiff"
    assert cluster["cluster"]["server"] == "https://10.20.30.40:6444"
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == creds.ca_cert.read_bytes()
    user = doc["users"][0]
    assert user["name"] == "admin"
    assert user["user"]["token"] == creds.admin_token
    assert (
        base64.b64decode(user["user"]["client-certificate-data"]) == (tmp_path / "tls/admin.crt").read_bytes()
    )
    assert base64.b64decode(user["user"]["client-key-data"]) == (tmp_path / "tls/admin.key").read_bytes()


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_config_view_raw_accepts_the_kubeconfig(tmp_path: Path) -> None:
    creds = bootstrap(tmp_path / "data", "0.0.0.0", 6443)
    env = {**os.environ, "HOME": str(tmp_path), "KUBECONFIG": str(creds.kubeconfig)}
    out = subprocess.run(
        [str(KUBECTL), "config", "view", "--raw", "-o", "yaml"], env=env, capture_output=True, check=True
    )
    view = yaml.safe_load(out.stdout)
    assert view["current-context"] == "skiff"
    assert view["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert (
        base64.b64decode(view["clusters"][0]["cluster"]["certificate-authority-data"])
        == creds.ca_cert.read_bytes()
    )
    assert view["users"][0]["user"]["token"] == creds.admin_token
    cert = x509.load_pem_x509_certificate(
        base64.b64decode(view["users"][0]["user"]["client-certificate-data"])
    )
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    # Redacted (non --raw) view still shows every auth method: proof client-go parsed them all.
    red = subprocess.run(
        [str(KUBECTL), "config", "view", "-o", "yaml"], env=env, capture_output=True, check=True
    )
    user = yaml.safe_load(red.stdout)["users"][0]["user"]
    assert user == {
        "client-certificate-data": "DATA+OMITTED",
        "client-key-data": "DATA+OMITTED",
        "token": "REDACTED",
    }


def test_hostname_lookup_is_what_bootstrap_uses(tmp_path: Path) -> None:
    # Guards the fixture: bootstrap must read the hostname through socket.gethostname.
    assert socket.gethostname() == "Node-A"
    dns, _ = cert_sans(load_cert(bootstrap(tmp_path, "0.0.0.0", 1).serving_cert))
    assert "node-a" in dns
