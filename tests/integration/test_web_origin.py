"""The console's Origin check: a state-changing request from another site's page is refused
whatever cookie and CSRF token it carries; the console's own pages and bearer tokens are not."""

from __future__ import annotations

import pytest

from seatd.service import SeatService
from tests.fakes import FakeClock
from tests.web import login, tokens, web_client

EVIL = "https://evil.example"


async def test_cross_origin_post_is_refused_and_changes_nothing(
    service: SeatService, clock: FakeClock
) -> None:
    """A logout POSTed from another site, with the login's cookie and CSRF token, is 403
    saying where it came from, and the login is still there."""
    token = (await tokens(service))["owner"]
    async with web_client(service, clock) as client:
        csrf = await login(client, token)
        answer = await client.post(
            "/logout", data={"csrf_token": csrf}, headers={"Origin": EVIL}, allow_redirects=False
        )
        assert answer.status == 403
        error = (await answer.json())["error"]
        assert error["reason"] == "PERMISSION_DENIED"
        assert EVIL in error["message"] and "not from this console" in error["message"]
        assert (await client.get("/api/v1/me")).status == 200


async def test_cross_origin_api_call_with_the_cookie_is_refused(
    service: SeatService, clock: FakeClock
) -> None:
    """A JSON API call made with the login cookie from another site is refused too."""
    token = (await tokens(service))["owner"]
    async with web_client(service, clock) as client:
        csrf = await login(client, token)
        answer = await client.post(
            "/api/v1/tokens",
            json={"name": "planted", "role": "owner"},
            headers={"Origin": EVIL, "X-CSRF-Token": csrf},
        )
        assert answer.status == 403
        assert "planted" not in [t["name"] for t in service.store.tokens()]


async def test_cross_origin_login_is_refused(service: SeatService, clock: FakeClock) -> None:
    """Another site cannot log a browser in with a token of its choosing (login CSRF)."""
    token = (await tokens(service))["viewer"]
    async with web_client(service, clock) as client:
        answer = await client.post(
            "/login", data={"token": token}, headers={"Origin": EVIL}, allow_redirects=False
        )
        assert answer.status == 403
        assert "Set-Cookie" not in answer.headers


@pytest.mark.parametrize(
    "sent",
    [{"Origin": "null"}, {"Referer": f"{EVIL}/page"}, {"Origin": EVIL, "Referer": "/sessions"}],
    ids=["null-origin", "foreign-referer", "foreign-origin-own-referer"],
)
async def test_other_sources_are_refused(
    service: SeatService, clock: FakeClock, sent: dict[str, str]
) -> None:
    """Origin: null (a sandboxed frame, a redirect from elsewhere), a Referer from another site
    when there is no Origin, and a foreign Origin whatever the Referer: all refused."""
    token = (await tokens(service))["owner"]
    async with web_client(service, clock, own_origin=False) as client:
        csrf = await login(client, token)
        headers = {k: str(client.make_url(v)) if v == "/sessions" else v for k, v in sent.items()}
        answer = await client.post(
            "/logout", data={"csrf_token": csrf}, headers=headers, allow_redirects=False
        )
        assert answer.status == 403


@pytest.mark.parametrize("header", ["Origin", "Referer"])
async def test_the_consoles_own_pages_are_accepted(
    service: SeatService, clock: FakeClock, header: str
) -> None:
    """A POST whose Origin, or (without Origin) whose Referer, is the console goes through."""
    token = (await tokens(service))["owner"]
    async with web_client(service, clock, own_origin=False) as client:
        csrf = await login(client, token)
        page = client.make_url("/sessions")
        sent = {header: str(page.origin() if header == "Origin" else page)}
        answer = await client.post(
            "/logout", data={"csrf_token": csrf}, headers=sent, allow_redirects=False
        )
        assert answer.status == 303


async def test_cookie_post_without_origin_or_referer_is_refused(
    service: SeatService, clock: FakeClock
) -> None:
    """With neither header the request cannot be told from a forged one: refused (OWASP's
    recommendation), saying a script should use a bearer token."""
    token = (await tokens(service))["owner"]
    async with web_client(service, clock, own_origin=False) as client:
        csrf = await login(client, token)
        answer = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
        assert answer.status == 403
        assert "Authorization: Bearer" in (await answer.json())["error"]["message"]
        assert (await client.get("/api/v1/me")).status == 200


async def test_bearer_token_calls_are_not_origin_checked(
    service: SeatService, clock: FakeClock
) -> None:
    """A script with a bearer token needs no Origin, and a foreign one does not matter: no
    browser attaches the token on its own."""
    token = (await tokens(service))["owner"]
    bearer = {"Authorization": f"Bearer {token}"}
    async with web_client(service, clock, own_origin=False) as client:
        plain = await client.post(
            "/api/v1/tokens", json={"name": "a", "role": "viewer"}, headers=bearer
        )
        assert plain.status == 201, await plain.text()
        foreign = await client.post(
            "/api/v1/tokens",
            json={"name": "b", "role": "viewer"},
            headers={**bearer, "Origin": EVIL},
        )
        assert foreign.status == 201, await foreign.text()
