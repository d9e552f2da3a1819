"""Cluster PKI and credentials: CA, serving certificate, admin and node-join credentials, admin kubeconfig.

`bootstrap(data_dir, bind, port)` is create-or-load, like k3s' first start: everything lives under
`DIR/tls/` and is reused on later starts. The serving certificate is re-issued only when a SAN the current
host needs is missing (or it is about to expire); the CA, tokens and admin client certificate are never
replaced while valid. Keys are EC P-256 in PKCS#8 PEM (Go's `tls.X509KeyPair`, OpenSSL and the Python
client all accept it), written 0600; every file is written atomically (temp file in the same directory,
fsync, rename, fsync of the directory), so a crash never leaves a torn key or kubeconfig behind.

Files (all under `DIR/tls/` except the kubeconfig):
    ca.crt, ca.key              self-signed cluster CA (10 years); verifies serving and client certs
    serving.crt, serving.key    HTTPS serving certificate (1 year, EKU serverAuth)
    admin.crt, admin.key        client certificate CN=admin, O=system:masters (embedded in the kubeconfig)
    admin.token                 admin bearer token, usable on its own (`kubectl --token`)
    node.token                  node-join token `K10<sha256(ca.crt)>::server:<secret>` (k3s format)
    DIR/kubeconfig.yaml         admin kubeconfig: cluster/context/user `skiff`/`skiff`/`admin`

Blocking file I/O: call `bootstrap` before the event loop starts or via `asyncio.to_thread`.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import secrets
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from skiff.util.fs import write_atomic
from skiff.util.nodetoken import ca_hash, format_node_token, parse_node_token

ADMIN_USER = "admin"
MASTERS_GROUP = "system:masters"
CLUSTER_NAME = "skiff"
CONTEXT_NAME = "skiff"

CA_DAYS = 3650
SERVING_DAYS = 365
CLIENT_DAYS = 365
# Re-issue leaf certificates this long before they expire (k3s rotates within 90 days of expiry).
RENEW_BEFORE = dt.timedelta(days=90)
# Backdate notBefore a little so that a client whose clock lags does not reject a fresh certificate.
_BACKDATE = dt.timedelta(minutes=5)

# The names in-cluster clients use for the API server (upstream's apiserver adds these as well).
SERVICE_DNS_NAMES: tuple[str, ...] = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)



class CredentialsError(Exception):
    """The data dir holds credentials skiff cannot use and must not silently replace (e.g. a CA cert without key)."""


@dataclass(frozen=True)
class Credentials:
    """Paths and secrets of one cluster's PKI, as returned by `bootstrap`. Immutable; safe to share."""

    data_dir: Path
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_token: str
    node_token: str
    kubeconfig: Path

    def server_ssl_context(self) -> ssl.SSLContext:
        """TLS server context: serves `serving.crt`; requests an optional client certificate verified against the CA.

        With `CERT_OPTIONAL` a client that presents no certificate still connects (token or no auth), while
        a presented certificate that does not chain to our CA fails the handshake, as with kube-apiserver's
        `--client-ca-file`. The verified leaf is then read by the HTTP layer with
        `request.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)`.
        """
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.serving_cert), str(self.serving_key))
        ctx.load_verify_locations(cafile=str(self.ca_cert))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    @property
    def tls_dir(self) -> Path:
        return self.ca_cert.parent


# ---------------------------------------------------------------------------------------------- files


# ---------------------------------------------------------------------------------------------- host facts


def parse_fib_trie(text: str) -> list[str]:
    """Local IPv4 addresses from `/proc/net/fib_trie`: the `|-- <ip>` entries followed by `/32 host LOCAL`."""
    out: list[str] = []
    last_ip: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|--"):
            last_ip = stripped[3:].strip()
        elif last_ip is not None and stripped.startswith("/32 host LOCAL"):
            if last_ip not in out:
                out.append(last_ip)
        elif not stripped.startswith("/"):
            last_ip = None
    return out


def parse_if_inet6(text: str) -> list[str]:
    """IPv6 addresses from `/proc/net/if_inet6` (32 hex digits, ifindex, prefix length, scope, flags, name)."""
    out: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or len(fields[0]) != 32:
            continue
        addr = str(ipaddress.IPv6Address(bytes.fromhex(fields[0])))
        if addr not in out:
            out.append(addr)
    return out


def _usable_node_ip(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    # Loopback is added explicitly; IPv6 link-local needs a zone and cannot be named in a certificate usefully.
    return not (ip.is_loopback or ip.is_unspecified or (ip.version == 6 and ip.is_link_local))


def host_addresses() -> list[str]:
    """All non-loopback addresses of this host's interfaces (Linux /proc; falls back to resolving the hostname)."""
    found: list[str] = []
    for path, parse in (("/proc/net/fib_trie", parse_fib_trie), ("/proc/net/if_inet6", parse_if_inet6)):
        try:
            found += parse(Path(path).read_text())
        except OSError:
            continue
    if not found:
        try:
            found = [str(ai[4][0]) for ai in socket.getaddrinfo(socket.gethostname(), None)]
        except OSError:
            found = []
    out: list[str] = []
    for a in found:
        if _usable_node_ip(a) and a not in out:
            out.append(a)
    return out


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_wildcard(bind: str) -> bool:
    return bind in ("", "0.0.0.0", "::", "[::]")


def server_url(bind: str, port: int) -> str:
    """The URL the admin kubeconfig points at: the bind address, or 127.0.0.1 when bound to all addresses."""
    host = bind.strip("[]")
    if _is_wildcard(bind):
        host = "127.0.0.1"
    if _is_ip(host) and ipaddress.ip_address(host).version == 6:
        host = f"[{host}]"
    return f"https://{host}:{port}"


def required_sans(
    bind: str, hostname: str, addresses: Iterable[str], extra: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) the serving certificate must cover, in a stable order without duplicates.

    localhost, 127.0.0.1 and ::1, the hostname, the in-cluster `kubernetes.default.svc...` names, every node
    address, the bind address (unless it is a wildcard) and any `extra` names or IPs (e.g. the service IP of
    `default/kubernetes`).
    """
    dns: list[str] = []
    ips: list[str] = []

    def add(value: str) -> None:
        value = value.strip().strip("[]")
        if not value:
            return
        if _is_ip(value):
            norm = str(ipaddress.ip_address(value))
            if norm not in ips:
                ips.append(norm)
        elif value.lower() not in dns:
            dns.append(value.lower())

    for v in ("localhost", hostname, *SERVICE_DNS_NAMES, "127.0.0.1", "::1", *addresses, *extra):
        add(v)
    if not _is_wildcard(bind):
        add(bind)
    return dns, ips


# ---------------------------------------------------------------------------------------------- x509


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CredentialsError("expected an EC private key")
    return key


def _same_public_key(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


def _make_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Self-signed CA, strict-X.509 friendly (critical basicConstraints and keyUsage, SKI), like k3s' server CA."""
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issue_leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    days: int,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if dns or ips:
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def client_subject(user: str, groups: Iterable[str]) -> x509.Name:
    """CN = user, one O per group: how kube-apiserver's x509 authenticator reads a client certificate."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
    return x509.Name(attrs)


def cert_sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) in a certificate's subjectAltName; empty lists when it has none."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return (
        [d.lower() for d in san.get_values_for_type(x509.DNSName)],
        [str(i) for i in san.get_values_for_type(x509.IPAddress)],
    )


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _fresh(cert: x509.Certificate) -> bool:
    return cert.not_valid_after_utc - RENEW_BEFORE > _now()


def _load_pair(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """Load a cert/key pair; None when either file is missing, unreadable or they do not belong together."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = _load_key(key_path.read_bytes())
    except (OSError, ValueError, CredentialsError):
        return None
    return (cert, key) if _same_public_key(cert, key) else None


# ---------------------------------------------------------------------------------------------- tokens


def _load_or_create_token(path: Path, make: Callable[[], str]) -> str:
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    if not value:
        value = make()
        write_atomic(path, (value + "\n").encode(), 0o600)
    return value


# ---------------------------------------------------------------------------------------------- kubeconfig


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def render_kubeconfig(
    server: str, ca_pem: bytes, client_cert_pem: bytes, client_key_pem: bytes, token: str
) -> dict[str, Any]:
    """The admin kubeconfig (`clientcmd/api/v1` Config): embedded CA, client cert/key and bearer token.

    client-go accepts a token next to a client certificate (it counts client certs apart from the
    "one auth method" rule); kubectl then presents both and the server authenticates by the certificate,
    as upstream's authenticator union tries x509 before tokens.
    """
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": CLUSTER_NAME, "cluster": {"certificate-authority-data": _b64(ca_pem), "server": server}}
        ],
        "users": [
            {
                "name": ADMIN_USER,
                "user": {
                    "client-certificate-data": _b64(client_cert_pem),
                    "client-key-data": _b64(client_key_pem),
                    "token": token,
                },
            }
        ],
        "contexts": [{"name": CONTEXT_NAME, "context": {"cluster": CLUSTER_NAME, "user": ADMIN_USER}}],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    }


# ---------------------------------------------------------------------------------------------- bootstrap


def _load_or_create_ca(tls: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = tls / "ca.crt", tls / "ca.key"
    if not cert_path.exists() and not key_path.exists():
        cert, key = _make_ca(f"skiff-ca@{int(_now().timestamp())}")
        write_atomic(key_path, _key_pem(key), 0o600)
        write_atomic(cert_path, _cert_pem(cert), 0o644)
        return cert, key
    pair = _load_pair(cert_path, key_path)
    if pair is None:
        # Replacing a CA would silently invalidate every issued certificate and joined node: refuse.
        raise CredentialsError(f"{cert_path} and {key_path} are missing, unreadable or do not match")
    return pair


def _ensure_serving(
    tls: Path,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    dns: Sequence[str],
    ips: Sequence[str],
) -> None:
    cert_path, key_path = tls / "serving.crt", tls / "serving.key"
    pair = _load_pair(cert_path, key_path)
    if pair is not None:
        cert = pair[0]
        have_dns, have_ips = cert_sans(cert)
        complete = set(dns) <= set(have_dns) and set(ips) <= set(have_ips)
        if complete and _issued_by(cert, ca) and _fresh(cert):
            return
        # Keep names the old certificate covered, so an address that comes and goes does not flap the cert.
        dns = [*dns, *(d for d in have_dns if d not in dns)]
        ips = [*ips, *(i for i in have_ips if i not in ips)]
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "skiff"),
            x509.NameAttribute(NameOID.COMMON_NAME, "skiff-apiserver"),
        ]
    )
    cert, key = _issue_leaf(ca, ca_key, subject, ExtendedKeyUsageOID.SERVER_AUTH, SERVING_DAYS, dns, ips)
    write_atomic(key_path, _key_pem(key), 0o600)
    write_atomic(cert_path, _cert_pem(cert), 0o644)


def _ensure_admin_cert(
    tls: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> tuple[bytes, bytes]:
    cert_path, key_path = tls / "admin.crt", tls / "admin.key"
    want = client_subject(ADMIN_USER, [MASTERS_GROUP])
    pair = _load_pair(cert_path, key_path)
    if pair is not None and pair[0].subject == want and _issued_by(pair[0], ca) and _fresh(pair[0]):
        return cert_path.read_bytes(), key_path.read_bytes()
    cert, key = _issue_leaf(ca, ca_key, want, ExtendedKeyUsageOID.CLIENT_AUTH, CLIENT_DAYS)
    cert_pem, key_pem = _cert_pem(cert), _key_pem(key)
    write_atomic(key_path, key_pem, 0o600)
    write_atomic(cert_path, cert_pem, 0o644)
    return cert_pem, key_pem


def bootstrap(data_dir: Path, bind: str, port: int, *, extra_sans: Sequence[str] = ()) -> Credentials:
    """Create-or-load the cluster credentials under `data_dir` and (re)write `data_dir/kubeconfig.yaml`.

    Idempotent: a second call with the same host facts changes no file except rewriting an identical
    kubeconfig. The serving certificate is re-issued when a required SAN (see `required_sans`) is missing,
    it is not signed by the CA, or it expires within `RENEW_BEFORE`. Raises `CredentialsError` for a
    damaged CA instead of replacing it. Blocking: run in a thread from async code.
    """
    data_dir = Path(data_dir)
    tls = data_dir / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    os.chmod(tls, 0o700)

    ca, ca_key = _load_or_create_ca(tls)
    ca_pem = (tls / "ca.crt").read_bytes()

    dns, ips = required_sans(bind, socket.gethostname(), host_addresses(), extra_sans)
    _ensure_serving(tls, ca, ca_key, dns, ips)
    admin_cert_pem, admin_key_pem = _ensure_admin_cert(tls, ca, ca_key)

    admin_token = _load_or_create_token(tls / "admin.token", lambda: secrets.token_hex(32))
    node_token = _load_or_create_token(
        tls / "node.token", lambda: format_node_token(ca_pem, secrets.token_hex(16))
    )
    pinned, secret = parse_node_token(node_token)
    if pinned != ca_hash(ca_pem):  # e.g. a bare secret written by an operator: keep it, re-pin it to our CA
        node_token = format_node_token(ca_pem, secret)
        write_atomic(tls / "node.token", (node_token + "\n").encode(), 0o600)

    kubeconfig = data_dir / "kubeconfig.yaml"
    doc = render_kubeconfig(server_url(bind, port), ca_pem, admin_cert_pem, admin_key_pem, admin_token)
    write_atomic(kubeconfig, yaml.safe_dump(doc, sort_keys=False).encode(), 0o600)

    return Credentials(
        data_dir=data_dir,
        ca_cert=tls / "ca.crt",
        ca_key=tls / "ca.key",
        serving_cert=tls / "serving.crt",
        serving_key=tls / "serving.key",
        admin_token=admin_token,
        node_token=node_token,
        kubeconfig=kubeconfig,
    )


def issue_client_cert(
    creds: Credentials, user: str, groups: list[str], days: int = 365
) -> tuple[bytes, bytes]:
    """A client certificate (PEM cert, PEM PKCS#8 key) for `user` in `groups`, signed by the cluster CA.

    The API server maps it to user CN and groups O (plus system:authenticated). Not recorded anywhere:
    skiff has no revocation, so keep `days` short for anything but the admin and node identities.
    """
    if not user:
        raise ValueError("user must not be empty: upstream rejects client certificates with an empty CN")
    pair = _load_pair(creds.ca_cert, creds.ca_key)
    if pair is None:
        raise CredentialsError(f"cannot load the CA from {creds.ca_cert} and {creds.ca_key}")
    ca, ca_key = pair
    cert, key = _issue_leaf(ca, ca_key, client_subject(user, groups), ExtendedKeyUsageOID.CLIENT_AUTH, days)
    return _cert_pem(cert), _key_pem(key)


def issue_node_serving_cert(creds: Credentials, node_name: str, ips: Sequence[str]) -> tuple[bytes, bytes]:
    """A serving certificate (PEM cert, PEM key) for a node agent's stream server: CN `system:node:<name>`,
    SANs the node name and its addresses, as the kubelet's serving certificate (kubelet-serving signer)."""
    if not node_name:
        raise ValueError("a node serving certificate needs the node name")
    pair = _load_pair(creds.ca_cert, creds.ca_key)
    if pair is None:
        raise CredentialsError(f"cannot load the CA from {creds.ca_cert} and {creds.ca_key}")
    ca, ca_key = pair
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}")])
    cert, key = _issue_leaf(ca, ca_key, subject, ExtendedKeyUsageOID.SERVER_AUTH, SERVING_DAYS, [node_name], list(ips))
    return _cert_pem(cert), _key_pem(key)
