"""Which registry credentials a pull uses: the kubelet's docker keyring over a pod's imagePullSecrets.

Mirrors upstream `pkg/credentialprovider` (`keyring.go`, `config.go`, `secrets/secrets.go`): every entry of the
pod's `kubernetes.io/dockerconfigjson` (`{"auths": {...}}`) and legacy `kubernetes.io/dockercfg` secrets is
keyed by its registry (scheme dropped, a `/v1/` or `/v2/` path meaning the bare host); keys are tried in
reverse-sorted order so `quay.io/team` wins over `quay.io`; a key matches an image when ports are equal, the
host has as many dot-separated parts (each may be a glob), and the key's path is a prefix of the image's.
Images on Docker Hub (`nginx`, `library/nginx`, `docker.io/x`) fall back to an `index.docker.io` entry.
Pure: no I/O; `async` only because the agent's image code awaits it.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from skiff.agent.runtime.interface import AuthConfig, ImagePullError
from skiff.api.meta import Obj

__all__ = ["image_credentials", "registry_key", "repository_of"]

DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"
DOCKERCFG = "kubernetes.io/dockercfg"
DEFAULT_REGISTRY_HOST = "index.docker.io"
DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class _URL:
    """A schemeless registry URL split the way upstream's `SplitURL` does."""

    host_parts: tuple[str, ...]
    port: str
    path: str


def _parse(value: str) -> _URL:
    if not value.startswith(("https://", "http://")):
        value = "https://" + value
    parts = urlsplit(value)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    host, port = netloc, ""
    if netloc.startswith("["):  # an IPv6 literal
        end = netloc.find("]")
        host, rest = netloc[: end + 1], netloc[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    elif netloc.count(":") == 1:
        host, port = netloc.split(":", 1)
    return _URL(tuple(host.split(".")), port, parts.path)


def registry_key(location: str) -> str:
    """The keyring key of a docker config entry: "https://index.docker.io/v1/" -> "index.docker.io",
    "quay.io/team" -> "quay.io/team" (upstream `BasicDockerKeyring.Add`)."""
    value = location if location.startswith(("https://", "http://")) else "https://" + location
    parts = urlsplit(value)
    path = parts.path
    if path.startswith(("/v2/", "/v1/")):
        path = path[3:]
    return parts.netloc + path if path and path != "/" else parts.netloc


def repository_of(image: str) -> str:
    """The normalized repository of an image reference, without tag or digest, as docker names it:
    "nginx:1" -> "docker.io/library/nginx", "127.0.0.1:5000/a/b@sha256:.." -> "127.0.0.1:5000/a/b"."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    first, _, rest = name.partition("/")
    if not rest:
        return f"{DOCKER_HUB}/library/{first}"
    if "." in first or ":" in first or first == "localhost":
        return name
    return f"{DOCKER_HUB}/{name}"


def _urls_match(key: str, target: str) -> bool:
    """Upstream `URLsMatch`: same port, same number of host parts matching as globs, key path a prefix."""
    glob, tgt = _parse(key), _parse(target)
    if glob.port != tgt.port or len(glob.host_parts) != len(tgt.host_parts):
        return False
    if not tgt.path.startswith(glob.path):
        return False
    return all(fnmatch.fnmatchcase(t, g) for g, t in zip(glob.host_parts, tgt.host_parts, strict=True))


def _is_default_registry(repository: str) -> bool:
    """Upstream `isDefaultRegistryMatch`: the image pulls from Docker Hub."""
    first, sep, _ = repository.partition("/")
    if not first:
        return False
    if not sep or first in (DOCKER_HUB, DEFAULT_REGISTRY_HOST):
        return True
    return not any(c in first for c in ".:")


def _decode_auth(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as e:
        raise ValueError(f"illegal base64 data in auth: {e}") from None
    user, sep, password = decoded.partition(":")
    if not sep:
        raise ValueError("unable to parse auth field, must be formatted as base64(username:password)")
    return user, password


def _entries(secret: Obj) -> dict[str, Any]:
    """The registry → entry map of one pull secret ({} for a secret of another type or without the key)."""
    kind = secret.get("type") or ""
    data = secret.get("data") or {}
    key = {DOCKERCONFIGJSON: ".dockerconfigjson", DOCKERCFG: ".dockercfg"}.get(kind)
    if key is None or not data.get(key):
        return {}
    doc = json.loads(base64.b64decode(data[key]))
    auths = doc.get("auths") if kind == DOCKERCONFIGJSON else doc
    if not isinstance(auths, dict):
        return {}
    return auths


def _auth_config(entry: Any) -> AuthConfig:
    if not isinstance(entry, dict):
        raise ValueError("registry entry is not an object")
    user, password = str(entry.get("username") or ""), str(entry.get("password") or "")
    if entry.get("auth"):
        user, password = _decode_auth(str(entry["auth"]))
    return AuthConfig(username=user, password=password)


async def image_credentials(pull_secrets: list[Obj], image: str) -> AuthConfig | None:
    """The credentials for pulling `image` from the pod's pull secrets (already fetched), None for none.

    The first match wins (upstream tries every match in turn; containerd's CRI takes one AuthConfig per
    pull). A malformed secret fails the pull as upstream's `MakeDockerKeyring` does: `ImagePullError`.
    `server_address` stays empty, as the kubelet leaves it (containerd would compare it to the host).
    """
    creds: dict[str, list[AuthConfig]] = {}
    for secret in pull_secrets:
        name = (secret.get("metadata") or {}).get("name", "")
        try:
            for location, entry in _entries(secret).items():
                creds.setdefault(registry_key(location), []).append(_auth_config(entry))
        except (ValueError, binascii.Error) as e:
            raise ImagePullError("ErrImagePull", f'invalid image pull secret "{name}": {e}') from None
    repository = repository_of(image)
    for key in sorted(creds, reverse=True):
        if _urls_match(key, repository):
            return creds[key][0]
    if _is_default_registry(repository) and DEFAULT_REGISTRY_HOST in creds:
        return creds[DEFAULT_REGISTRY_HOST][0]
    return None
