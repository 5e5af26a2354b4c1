"""The Origin check's rule, pure: which source origins are the console's own."""

from __future__ import annotations

import pytest
from yarl import URL

from seatd.web.origin import refusal

CONSOLE = URL("http://seatd.lan:8080/sessions/4/evict")


@pytest.mark.parametrize(
    "origin", ["http://seatd.lan:8080", "HTTP://SEATD.LAN:8080", "http://seatd.lan:8080/"]
)
def test_the_consoles_own_origin_passes(origin: str) -> None:
    """Scheme and host compare without case; a trailing slash changes nothing."""
    assert refusal("POST", CONSOLE, origin, None) == ""


def test_a_default_port_is_the_same_origin() -> None:
    """https://h and https://h:443 are one origin."""
    assert refusal("POST", URL("https://seatd.lan/logout"), "https://seatd.lan:443", None) == ""


@pytest.mark.parametrize(
    "origin",
    [
        "http://seatd.lan:8081",  # another port
        "https://seatd.lan:8080",  # another scheme
        "http://seatd.lan.evil.example:8080",  # a longer host
        "null",
        "",
        "javascript:alert(1)",
    ],
)
def test_any_other_origin_is_refused(origin: str) -> None:
    """Port, scheme and host must all match; null, empty and odd values never do."""
    assert refusal("POST", CONSOLE, origin, None)


def test_origin_wins_over_referer() -> None:
    """A foreign Origin is refused even beside a Referer from the console."""
    assert refusal("POST", CONSOLE, "https://evil.example", "http://seatd.lan:8080/sessions")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_reads_are_not_checked(method: str) -> None:
    """GET and HEAD change nothing, so they are not checked (a link from elsewhere works)."""
    assert refusal(method, CONSOLE, "https://evil.example", None) == ""


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_every_other_method_is_checked(method: str) -> None:
    """Every method but GET and HEAD is checked."""
    assert refusal(method, CONSOLE, "https://evil.example", None)
