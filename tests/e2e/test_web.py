"""The web console served by the real daemon: its own listener, login, the JSON API."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import aiohttp
import pytest

from tests.e2e.conftest import Daemon, read_until, wait_for

pytestmark = pytest.mark.e2e


async def test_daemon_serves_the_console_on_its_web_listener(
    make_daemon: Callable[..., Daemon],
) -> None:
    """--web-listen serves the login page, a token logs a browser in, and the pages open."""
    daemon = make_daemon("--dev-seats", "2", "--web-listen", "127.0.0.1:0")
    token = daemon.ctl("token", "create", "--role", "viewer", "--name", "ops").stdout.strip()
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(daemon.web_url, cookie_jar=jar) as http:
        async with http.get("/login") as page:
            assert page.status == 200
            assert 'name="token"' in await page.text()
        # As the login page's own form sends it: from the console's origin.
        origin = {"Origin": daemon.web_url}
        async with http.post("/login", data={"token": token}, headers=origin) as landed:
            assert landed.status == 200
            assert str(landed.url).endswith("/")
            assert "token:ops" in await landed.text()


async def test_api_answers_a_bearer_token(make_daemon: Callable[..., Daemon]) -> None:
    """A script with an admin token reads the sessions over the JSON API."""
    daemon = make_daemon("--dev-seats", "2", "--web-listen", "127.0.0.1:0")
    token = daemon.ctl("token", "create", "--role", "viewer", "--name", "erp").stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession(daemon.web_url, headers=headers) as http,
        http.get("/api/v1/sessions") as answer,
    ):
        assert answer.status == 200
        body = await answer.json()
    assert body["seat_cap"] == 2
    assert body["in_use"] == 0


async def test_workstation_evicted_through_the_api_hears_the_reason(
    make_daemon: Callable[..., Daemon], seat: Callable[..., subprocess.Popen[str]]
) -> None:
    """An admin token evicts a session over the JSON API; the workstation's `seat hold` is
    told the reason and who did it, and exits 3."""
    daemon = make_daemon("--web-listen", "127.0.0.1:0")
    token = daemon.ctl("token", "create", "--role", "admin", "--name", "erp").stdout.strip()
    proc = seat("hold", "--target", daemon.target, "--user", "AA", "--name", "Anne")
    sid = int(read_until(proc, "holding session ").split()[-1])
    wait_for(lambda: daemon.sessions()["sessions"][0]["attached"], 10, "attached")
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession(daemon.web_url, headers=headers) as http,
        http.post(f"/api/v1/sessions/{sid}/evict", json={"reason": "Dépassement"}) as answer,
    ):
        assert answer.status == 200, await answer.text()
    assert read_until(proc, "evicted:") == "evicted: Dépassement (by token:erp)"
    assert proc.wait(10) == 3


async def test_seatctl_console_link_logs_in_once(make_daemon: Callable[..., Daemon]) -> None:
    """`seatctl console` prints a link (last line) that opens the console as the local admin
    once; the same link a second time logs no one in."""
    daemon = make_daemon("--web-listen", "127.0.0.1:0")
    out = daemon.ctl("console")
    assert out.returncode == 0, out.stderr
    url = out.stdout.strip().splitlines()[-1]
    assert url.startswith(f"{daemon.web_url}/login/once/")
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http, http.get(url) as page:
        assert page.status == 200
        assert "web:local-admin-socket" in await page.text()
    async with aiohttp.ClientSession() as http, http.get(url, allow_redirects=False) as again:
        assert again.status == 401


def test_seatctl_console_without_a_web_listener_says_how(
    make_daemon: Callable[..., Daemon],
) -> None:
    """With the web console off, `seatctl console` fails saying which setting turns it on."""
    daemon = make_daemon()
    out = daemon.ctl("console")
    assert out.returncode != 0
    assert "[web] listen" in out.stderr
