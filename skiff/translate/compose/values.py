"""Parsers for the small value languages inside a Compose file: durations, byte sizes, CPUs, port and
volume short syntax, placement constraints.

Each parser is pure and raises `ValueError` with a message in Docker's words; the caller turns it into a
`TranslateError` naming the file and key. Semantics follow what `docker stack deploy` does with the value
(docker/cli `cli/compose/loader`, go-units `RAMInBytes`, Go `time.ParseDuration`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

MAX_INT32 = 2**31 - 1

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> float:
    """Seconds in a Go duration ("1m30s", "500ms", "0"); a bare number counts as seconds."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"must be a duration such as 10s or 1m30s, not {type(value).__name__}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = value.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        if body == "0":
            return 0.0
        pos, seconds = 0, 0.0
        while pos < len(body):
            m = _DURATION_PART.match(body, pos)
            if m is None:
                raise ValueError(f"time: invalid duration {value!r}")
            seconds += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
            pos = m.end()
        if not body:
            raise ValueError(f"time: invalid duration {value!r}")
        seconds *= sign
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"must be a non-negative duration, not {value!r}")
    if seconds > MAX_INT32:
        raise ValueError(f"duration {value!r} is too long")
    return seconds


def whole_seconds(seconds: float) -> tuple[int, bool]:
    """(seconds rounded up to a whole second, True when that changed the value)."""
    whole = math.ceil(seconds)
    return whole, whole != seconds


_BYTES = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp])?(i)?(b)?$", re.IGNORECASE)
_MULT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(value: Any) -> int:
    """Bytes in Docker's memory units: binary multipliers whatever the spelling (256M = 256k = KiB...)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"must be a size such as 512M or 1G, not {type(value).__name__}")
    if isinstance(value, int):
        n = value
    else:
        m = _BYTES.match(value.strip())
        if m is None:
            raise ValueError(f"invalid size: {value!r}")
        n = int(Decimal(m.group(1)) * _MULT[(m.group(2) or "").lower()])
    if n < 0 or n >= 2**63:
        raise ValueError(f"size out of range: {value!r}")
    return n


def bytes_quantity(n: int) -> str:
    """A byte count as the Kubernetes quantity a reader expects: "256Mi", "1Gi", else plain bytes."""
    for suffix, shift in (("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)):
        if n and n % (1 << shift) == 0:
            return f"{n >> shift}{suffix}"
    return str(n)


def parse_cpus(value: Any) -> str:
    """Docker's `cpus` ("0.5", 2) as Kubernetes millicores ("500m", "2"); "" for 0 (unlimited)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"must be a number of CPUs such as 0.5, not {type(value).__name__}")
    try:
        cpus = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"invalid number of CPUs: {value!r}") from None
    if not cpus.is_finite() or cpus < 0 or cpus > 1_000_000:
        raise ValueError(f"invalid number of CPUs: {value!r}")
    milli = int((cpus * 1000).to_integral_value(rounding="ROUND_CEILING"))
    if milli == 0:
        return ""
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


# --- ports ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortSpec:
    """One published or exposed port after expanding ranges (long syntax's fields)."""

    target: int
    published: int | None = None  # None: Swarm picks one (ingress) / none (host mode)
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    mode: Literal["ingress", "host"] = "ingress"
    host_ip: str = ""
    name: str = ""


def _port(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"invalid port {text!r}")
    n = int(text)
    if not 1 <= n <= 65535:
        raise ValueError(f"port {n} is out of range (1-65535)")
    return n


def _range(text: str) -> list[int]:
    if "-" in text:
        lo_s, _, hi_s = text.partition("-")
        lo, hi = _port(lo_s), _port(hi_s)
        if hi < lo:
            raise ValueError(f"invalid port range {text!r}")
        return list(range(lo, hi + 1))
    return [_port(text)]


def protocol(text: Any) -> Literal["TCP", "UDP", "SCTP"]:
    p = str(text).lower()
    if p == "tcp":
        return "TCP"
    if p == "udp":
        return "UDP"
    if p == "sctp":
        return "SCTP"
    raise ValueError(f"invalid protocol {text!r}: must be tcp, udp or sctp")


def parse_port_short(spec: str | int) -> list[PortSpec]:
    """`[[host_ip:]published:]target[/protocol]` with optional ranges, as `docker service create -p` reads it."""
    text = str(spec).strip()
    proto: Literal["TCP", "UDP", "SCTP"] = "TCP"
    if "/" in text:
        text, _, p = text.rpartition("/")
        proto = protocol(p)
    host_ip = ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise ValueError(f"invalid port specification {spec!r}")
        host_ip, text = text[1:end], text[end + 2 :]
        parts = [text.partition(":")[0], text.partition(":")[2]] if ":" in text else [text]
        if len(parts) == 1:
            raise ValueError(f"invalid port specification {spec!r}")
    else:
        parts = text.split(":")
        if len(parts) == 3:
            host_ip = parts.pop(0)
        elif len(parts) > 3:
            raise ValueError(f"invalid port specification {spec!r}")
    targets = _range(parts[-1])
    published: list[int | None] = [None] * len(targets)
    if len(parts) == 2 and parts[0]:
        pubs = _range(parts[0])
        if len(pubs) != len(targets):
            raise ValueError(f"invalid ranges specified for container and host ports: {spec!r}")
        published = list(pubs)
    return [PortSpec(t, p, proto, "ingress", host_ip) for t, p in zip(targets, published, strict=True)]


# --- volumes --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeSpec:
    """A service mount (long syntax's fields) after reading the short syntax."""

    type: Literal["volume", "bind", "tmpfs"]
    target: str
    source: str = ""
    read_only: bool = False
    options: tuple[str, ...] = ()  # short-syntax mode flags other than ro/rw


def is_host_path(source: str) -> bool:
    """docker/cli's rule: a source that looks like a path is a bind mount, anything else a volume name."""
    return source.startswith(("/", ".", "~")) or bool(re.match(r"^[A-Za-z]:[\\/]", source))


def parse_volume_short(spec: str) -> VolumeSpec:
    """`[source:]target[:mode]`; an empty source is an anonymous volume."""
    parts = spec.split(":")
    if not spec or len(parts) > 3 or any(p == "" for p in parts[1:]):
        raise ValueError(f"invalid volume specification: {spec!r}")
    if len(parts) == 1:
        return VolumeSpec("volume", parts[0])
    source, target = parts[0], parts[1]
    flags = tuple(parts[2].split(",")) if len(parts) == 3 else ()
    read_only = "ro" in flags
    rest = tuple(f for f in flags if f not in ("ro", "rw"))
    kind: Literal["volume", "bind"] = "bind" if is_host_path(source) else "volume"
    return VolumeSpec(kind, target, source, read_only, rest)


# --- placement constraints --------------------------------------------------------------------------------

_CONSTRAINT = re.compile(r"^\s*([A-Za-z0-9_.\-/]+)\s*(==|!=)\s*(.*?)\s*$")


def parse_constraint(text: str) -> tuple[str, str, str]:
    """(attribute, "=="|"!=", value) of a Swarm placement constraint; swarmkit's `constraint.Parse` syntax."""
    m = _CONSTRAINT.match(text)
    if m is None or not m.group(3):
        raise ValueError(f"invalid constraint {text!r}: expected <attribute> == <value> or != <value>")
    return m.group(1), m.group(2), m.group(3)


# Docker reports `uname -m`; Kubernetes nodes carry GOARCH names.
ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armhf": "arm", "i386": "386",
                "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
