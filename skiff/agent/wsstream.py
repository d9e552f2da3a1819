"""The Kubernetes WebSocket channel protocols (`v4`/`v5.channel.k8s.io`), as pure helpers.

Every binary message is `[channel byte] + payload` (apimachinery `pkg/util/remotecommand/constants.go`,
`pkg/util/httpstream/wsstream`). Remote command channels: 0 stdin, 1 stdout, 2 stderr, 3 error/status,
4 resize. v5 adds the close message `[255, channel]` (a half-close, e.g. stdin EOF); v4 has no way to say it.
Port-forward (`v4.channel.k8s.io` on /portforward): for port index i, channel 2i carries data and 2i+1 errors,
and the server's first message on each channel starts with the port as 2 little-endian bytes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
REMOTE_COMMAND_PROTOCOLS = (V5, V4)
PORT_FORWARD_PROTOCOLS = (V4,)
# kubectl 1.32's port-forward tunnel (SPDY inside WebSocket); we decline it so kubectl falls back to SPDY.
SPDY_TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255


class ChannelError(ValueError):
    """A message that does not follow the channel protocol."""


def encode(channel: int, payload: bytes) -> bytes:
    return bytes([channel]) + payload


def decode(message: bytes) -> tuple[int, bytes]:
    """(channel, payload) of one binary message; an empty message is a protocol error."""
    if not message:
        raise ChannelError("empty channel message")
    return message[0], message[1:]


def close_message(channel: int) -> bytes:
    """v5's half-close of `channel`."""
    return bytes([CLOSE, channel])


def closed_channel(channel: int, payload: bytes) -> int | None:
    """The channel a v5 close message closes, None for an ordinary message."""
    if channel != CLOSE:
        return None
    if len(payload) != 1:
        raise ChannelError("a close message names exactly one channel")
    return payload[0]


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_status(exit_code: int) -> dict[str, Any]:
    """The status kubectl turns into its own exit code (`NonZeroExitCode` with an `ExitCode` cause)."""
    if exit_code == 0:
        return success_status()
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {exit_code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
    }


def error_status(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError", "code": 500}


def status_exit_code(status: Mapping[str, Any]) -> int | None:
    """The exit code a status carries: 0 for Success, the ExitCode cause, None for other failures."""
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", ""))
            except ValueError:
                return None
    return None


def status_message(status: Mapping[str, Any]) -> bytes:
    return json.dumps(status, separators=(",", ":")).encode()


def port_prefix(port: int) -> bytes:
    return struct.pack("<H", port)


def port_channels(index: int) -> tuple[int, int]:
    """(data channel, error channel) of the index-th forwarded port."""
    return 2 * index, 2 * index + 1


def parse_ports(values: list[str]) -> list[int]:
    """The `ports` query values (repeated or comma-separated) as port numbers; ChannelError when invalid."""
    ports: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                port = int(part)
            except ValueError:
                raise ChannelError(f"invalid port {part!r}") from None
            if not 0 < port < 65536:
                raise ChannelError(f"invalid port {port}: must be in 1-65535")
            ports.append(port)
    if not ports:
        raise ChannelError("at least one port must be specified")
    return ports
