"""The monitor's open door is closed: loopback only, unless a token guards it."""

from __future__ import annotations

from typing import Any

import pytest

from streams.monitor.server import MonitorServer, is_loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("", False),
        ("::", False),
        ("10.0.0.5", False),
        ("monitor.example", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_server_refuses_a_public_address_without_a_token() -> None:
    monitor: Any = object()  # never reached: the check comes first
    with pytest.raises(ValueError, match="needs a token"):
        MonitorServer(monitor, host="0.0.0.0", port=0)
