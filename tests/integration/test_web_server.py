"""The web console's listener on the running loop: port 0, TLS, bounded request bodies."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest

from seatd.actions import AdminActions
from seatd.errors import StateError
from seatd.service import SeatService
from seatd.web.app import MAX_BODY, WebServer
from seatd.web.config import WebConfig
from tests.certs import make_tls
from tests.fakes import FakeClock
from tests.web import tokens


async def test_listener_binds_port_zero_and_stops(service: SeatService, clock: FakeClock) -> None:
    """Listening on port 0 gives a URL with the bound port; after stop nothing answers."""
    server = WebServer(AdminActions(service), WebConfig(listen="127.0.0.1:0"), clock)
    url = await server.start()
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
    async with aiohttp.ClientSession() as http, http.get(f"{url}/login") as page:
        assert page.status == 200
    await server.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http, http.get(f"{url}/login"):
            pass


async def test_listener_serves_tls_with_the_configured_certificate(
    service: SeatService, clock: FakeClock, tmp_path: Path
) -> None:
    """With tls_cert and tls_key the console speaks HTTPS with that certificate."""
    ca, cert, key = make_tls(tmp_path)
    config = WebConfig(listen="127.0.0.1:0", tls_cert=str(cert), tls_key=str(key))
    server = WebServer(AdminActions(service), config, clock)
    url = await server.start()
    try:
        assert url.startswith("https://")
        trust = ssl.create_default_context(cafile=str(ca))
        async with aiohttp.ClientSession() as http, http.get(f"{url}/login", ssl=trust) as page:
            assert page.status == 200
    finally:
        await server.stop()


async def test_unreadable_certificate_stops_the_start(
    service: SeatService, clock: FakeClock, tmp_path: Path
) -> None:
    """A certificate that cannot be read is a StateError naming the problem, not a traceback."""
    config = WebConfig(
        listen="127.0.0.1:0", tls_cert=str(tmp_path / "no.pem"), tls_key=str(tmp_path / "no.key")
    )
    with pytest.raises(StateError, match="TLS files"):
        WebServer(AdminActions(service), config, clock)


async def test_address_in_use_stops_the_start(service: SeatService, clock: FakeClock) -> None:
    """A port another listener holds is a StateError naming the setting to change."""
    first = WebServer(AdminActions(service), WebConfig(listen="127.0.0.1:0"), clock)
    url = await first.start()
    try:
        taken = url.rpartition("/")[2]
        second = WebServer(AdminActions(service), WebConfig(listen=taken), clock)
        with pytest.raises(StateError, match=r"web\.listen"):
            await second.start()
    finally:
        await first.stop()


async def test_oversized_request_body_is_refused(service: SeatService, clock: FakeClock) -> None:
    """A body larger than the console ever needs is refused (413) without being kept."""
    held = await tokens(service)
    server = WebServer(AdminActions(service), WebConfig(listen="127.0.0.1:0"), clock)
    url = await server.start()
    try:
        headers = {"Authorization": f"Bearer {held['owner']}"}
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            http.post(
                f"{url}/api/v1/licence/import", json={"licence_text": "x" * (MAX_BODY + 1)}
            ) as answer,
        ):
            assert answer.status == 413
    finally:
        await server.stop()
