"""The web console's logins: token and one-time links, cookies, CSRF, expiry, bounds."""

from __future__ import annotations

from http.cookies import SimpleCookie

from seatd.auth import local_actor
from seatd.service import SEATD, SeatService
from seatd.web.auth import COOKIE, FAILED_LOGIN_BURST
from seatd.web.config import WebConfig
from seatd.web.request import LINKS, LOGINS
from tests.fakes import FakeClock
from tests.web import login, tokens, web_client


def _set_cookie(headers: object) -> SimpleCookie:
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(headers.get("Set-Cookie", ""))  # type: ignore[attr-defined]
    return cookie


async def test_page_without_login_goes_to_login(service: SeatService, clock: FakeClock) -> None:
    """A page asked for without a login redirects to the login page, keeping where it was."""
    async with web_client(service, clock) as client:
        answer = await client.get("/", allow_redirects=False)
        assert answer.status == 303
        assert answer.headers["Location"] == "/login?next=/"


async def test_api_without_login_is_unauthenticated(service: SeatService, clock: FakeClock) -> None:
    """An API call without a login or a token is 401 with the gRPC reason."""
    async with web_client(service, clock) as client:
        answer = await client.get("/api/v1/sessions")
        assert answer.status == 401
        assert (await answer.json())["error"]["reason"] == "UNAUTHENTICATED"


async def test_token_login_sets_httponly_strict_cookie(
    service: SeatService, clock: FakeClock
) -> None:
    """Logging in with a token sets an HttpOnly, SameSite=Strict cookie and opens the pages."""
    token = (await tokens(service))["viewer"]
    async with web_client(service, clock) as client:
        answer = await client.post("/login", data={"token": token}, allow_redirects=False)
        assert answer.status == 303
        morsel = _set_cookie(answer.headers)[COOKIE]
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Strict"
        assert not morsel["secure"]
        assert morsel["path"] == "/"
        page = await client.get("/")
        assert page.status == 200
        assert "token:viewer" in await page.text()


async def test_cookie_is_secure_under_tls(service: SeatService, clock: FakeClock) -> None:
    """Behind TLS the login cookie is Secure."""
    token = (await tokens(service))["viewer"]
    async with web_client(service, clock, secure=True) as client:
        answer = await client.post("/login", data={"token": token}, allow_redirects=False)
        assert _set_cookie(answer.headers)[COOKIE]["secure"] is True


async def test_unknown_token_login_refused(service: SeatService, clock: FakeClock) -> None:
    """A login with a token the daemon does not know is refused and sets no cookie."""
    async with web_client(service, clock) as client:
        answer = await client.post("/login", data={"token": "sdt_nope"}, allow_redirects=False)
        assert answer.status == 401
        assert COOKIE not in _set_cookie(answer.headers)


async def test_failed_logins_are_throttled(service: SeatService, clock: FakeClock) -> None:
    """Past a burst of failed logins from one address, even a good token must wait."""
    token = (await tokens(service))["owner"]
    async with web_client(service, clock) as client:
        for _ in range(FAILED_LOGIN_BURST):
            bad = await client.post("/login", data={"token": "sdt_x"}, allow_redirects=False)
            assert bad.status == 401
        answer = await client.post("/login", data={"token": token}, allow_redirects=False)
        assert answer.status == 429
        clock.advance(60)
        answer = await client.post("/login", data={"token": token}, allow_redirects=False)
        assert answer.status == 303


async def test_login_redirects_only_within_the_console(
    service: SeatService, clock: FakeClock
) -> None:
    """A login's `next` pointing at another site sends the browser to / instead."""
    token = (await tokens(service))["viewer"]
    async with web_client(service, clock) as client:
        answer = await client.post(
            "/login", data={"token": token, "next": "//evil.example/"}, allow_redirects=False
        )
        assert answer.headers["Location"] == "/"


async def test_post_without_csrf_is_refused(service: SeatService, clock: FakeClock) -> None:
    """A state-changing request with the cookie but no CSRF token is 403 and changes nothing."""
    token = (await tokens(service))["owner"]
    async with web_client(service, clock) as client:
        await login(client, token)
        answer = await client.post("/logout", allow_redirects=False)
        assert answer.status == 403
        assert (await answer.json())["error"]["reason"] == "PERMISSION_DENIED"
        assert (await client.get("/api/v1/me")).status == 200


async def test_post_with_wrong_csrf_is_refused(service: SeatService, clock: FakeClock) -> None:
    """A CSRF token from another login does not do."""
    token = (await tokens(service))["owner"]
    async with web_client(service, clock) as first, web_client(service, clock) as second:
        await login(first, token)
        other = await login(second, token)
        answer = await first.post("/logout", data={"csrf_token": other}, allow_redirects=False)
        assert answer.status == 403


async def test_logout_ends_the_login(service: SeatService, clock: FakeClock) -> None:
    """After logout the cookie no longer opens anything."""
    token = (await tokens(service))["owner"]
    async with web_client(service, clock) as client:
        csrf = await login(client, token)
        answer = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
        assert answer.status == 303
        assert (await client.get("/api/v1/me")).status == 401


async def test_idle_login_expires(service: SeatService, clock: FakeClock) -> None:
    """A login unused for idle_timeout seconds is over; one used just before is not."""
    token = (await tokens(service))["viewer"]
    config = WebConfig(idle_timeout=600)
    async with web_client(service, clock, config) as client:
        await login(client, token)
        clock.advance(599)
        assert (await client.get("/api/v1/me")).status == 200
        clock.advance(599)
        assert (await client.get("/api/v1/me")).status == 200
        clock.advance(600)
        assert (await client.get("/api/v1/me")).status == 401


async def test_revoking_the_token_ends_its_logins(service: SeatService, clock: FakeClock) -> None:
    """A browser logged in with a token is logged out when the token is revoked."""
    token = (await tokens(service))["viewer"]
    async with web_client(service, clock) as client:
        await login(client, token)
        await service.revoke_token("viewer", actor=SEATD)
        assert (await client.get("/api/v1/me")).status == 401


async def test_logins_are_bounded(service: SeatService, clock: FakeClock) -> None:
    """Past max_logins, a new login ends the one idle longest: the table never grows."""
    token = (await tokens(service))["viewer"]
    config = WebConfig(max_logins=2)
    async with web_client(service, clock, config) as client:
        app = client.server.app
        assert app is not None
        for _ in range(5):
            clock.advance(1)
            answer = await client.post("/login", data={"token": token}, allow_redirects=False)
            assert answer.status == 303
        assert len(app[LOGINS]) == 2


async def test_console_link_logs_in_once(service: SeatService, clock: FakeClock) -> None:
    """A one-time console link logs a browser in as its actor, and only the first time."""
    async with web_client(service, clock) as client:
        app = client.server.app
        assert app is not None
        url, _ = app[LINKS].issue(local_actor("alice"))
        path = url[url.index("/login/once/") :]
        answer = await client.get(path, allow_redirects=False)
        assert answer.status == 303
        me = await (await client.get("/api/v1/me")).json()
        assert (me["actor"], me["role"]) == ("web:local-admin-socket", "owner")
        client.session.cookie_jar.clear()
        again = await client.get(path, allow_redirects=False)
        assert again.status == 401


async def test_console_link_expires(service: SeatService, clock: FakeClock) -> None:
    """A console link not used within console_link_ttl seconds logs no one in."""
    async with web_client(service, clock, WebConfig(console_link_ttl=60)) as client:
        app = client.server.app
        assert app is not None
        url, _ = app[LINKS].issue(local_actor("alice"))
        clock.advance(60)
        answer = await client.get(url[url.index("/login/once/") :], allow_redirects=False)
        assert answer.status == 401


async def test_guessed_bearer_tokens_are_throttled(service: SeatService, clock: FakeClock) -> None:
    """Past a burst of unknown bearer tokens from one address, the API answers 429 before
    looking the next one up."""
    async with web_client(service, clock) as client:
        for _ in range(FAILED_LOGIN_BURST):
            answer = await client.get(
                "/api/v1/sessions", headers={"Authorization": "Bearer sdt_guess"}
            )
            assert answer.status == 401
        answer = await client.get("/api/v1/sessions", headers={"Authorization": "Bearer sdt_x"})
        assert answer.status == 429
        assert (await answer.json())["error"]["reason"] == "RATE_LIMITED"
