"""The WebSocket channel protocol helpers (v4/v5.channel.k8s.io)."""

from __future__ import annotations

from typing import Any

import pytest

from skiff.agent import wsstream


@pytest.mark.parametrize(("message", "channel", "payload"), [
    pytest.param(b"\x00hello", 0, b"hello", id="stdin"),
    pytest.param(b"\x01", 1, b"", id="empty-stdout"),
    pytest.param(b'\x04{"Width":80,"Height":24}', 4, b'{"Width":80,"Height":24}', id="resize"),
    pytest.param(b"\xff\x00", 255, b"\x00", id="close-stdin"),
])
def test_decode_and_encode(message: bytes, channel: int, payload: bytes) -> None:
    assert wsstream.decode(message) == (channel, payload)
    assert wsstream.encode(channel, payload) == message


def test_empty_message_is_an_error() -> None:
    with pytest.raises(wsstream.ChannelError):
        wsstream.decode(b"")


@pytest.mark.parametrize(("channel", "payload", "closed"), [
    pytest.param(255, b"\x00", 0, id="v5-close-stdin"),
    pytest.param(0, b"\x00", None, id="ordinary"),
])
def test_closed_channel(channel: int, payload: bytes, closed: int | None) -> None:
    assert wsstream.closed_channel(channel, payload) == closed
    if closed is not None:
        assert wsstream.close_message(closed) == bytes([channel]) + payload


def test_close_message_must_name_one_channel() -> None:
    with pytest.raises(wsstream.ChannelError):
        wsstream.closed_channel(255, b"")


@pytest.mark.parametrize(("status", "code"), [
    pytest.param(wsstream.exit_status(0), 0, id="success"),
    pytest.param(wsstream.exit_status(3), 3, id="exit-3"),
    pytest.param(wsstream.error_status("boom"), None, id="internal"),
    pytest.param({"status": "Failure", "details": {"causes": [{"reason": "ExitCode", "message": "x"}]}}, None,
                 id="garbled-code"),
])
def test_status_exit_codes(status: dict[str, Any], code: int | None) -> None:
    assert wsstream.status_exit_code(status) == code


def test_exit_status_is_what_kubectl_reads() -> None:
    status = wsstream.exit_status(2)
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "2"}]
    assert wsstream.status_message(wsstream.success_status()) == b'{"metadata":{},"status":"Success"}'


@pytest.mark.parametrize(("values", "ports"), [
    pytest.param(["8080"], [8080], id="one"),
    pytest.param(["80,443"], [80, 443], id="comma"),
    pytest.param(["80", "443"], [80, 443], id="repeated"),
])
def test_parse_ports(values: list[str], ports: list[int]) -> None:
    assert wsstream.parse_ports(values) == ports


@pytest.mark.parametrize("values", [
    pytest.param([], id="none"), pytest.param(["x"], id="nan"), pytest.param(["0"], id="zero"),
    pytest.param(["70000"], id="too-big"),
])
def test_parse_ports_rejects(values: list[str]) -> None:
    with pytest.raises(wsstream.ChannelError):
        wsstream.parse_ports(values)


def test_port_framing() -> None:
    assert wsstream.port_prefix(8080) == b"\x90\x1f"
    assert wsstream.port_channels(0) == (0, 1)
    assert wsstream.port_channels(2) == (4, 5)
