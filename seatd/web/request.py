"""What a handler finds on the application and on the request: the keys, and the caller."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from seatd.actions import AdminActions
from seatd.clock import Clock
from seatd.errors import RateLimited, Unauthenticated
from seatd.model import Actor
from seatd.web.auth import COOKIE, ConsoleLinks, Login, Logins
from seatd.web.config import WebConfig

ACTIONS = web.AppKey("actions", AdminActions)
CLOCK = web.AppKey("clock", Clock)
CONFIG = web.AppKey("config", WebConfig)
LOGINS = web.AppKey("logins", Logins)
LINKS = web.AppKey("links", ConsoleLinks)
# Whether the listener speaks TLS (cookies are then Secure).
SECURE = web.AppKey("secure", bool)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: the actor, and the browser login if it came with the cookie."""

    actor: Actor
    login: Login | None = None
    # The bearer token it sent (none with a login).
    token: str = ""


# Where `guard` leaves the caller on the request.
_CALLER = web.RequestKey("caller", Caller)


def set_caller(request: web.Request, caller: Caller) -> None:
    request[_CALLER] = caller


def caller_of(request: web.Request) -> Caller:
    return request[_CALLER]


def caller_if_known(request: web.Request) -> Caller | None:
    """The caller, or None on the pages anyone may open (the login pages)."""
    return request.get(_CALLER)


def login_of(request: web.Request) -> Login:
    """The browser login of a page request (guard sent requests without one to /login)."""
    login = caller_of(request).login
    if login is None:
        raise Unauthenticated("this page needs a browser login")
    return login


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""


def _token_live(actions: AdminActions, token_hash: str) -> bool:
    return any(
        t["hash"] == token_hash and not t["revoked_at"] for t in actions.service.store.tokens()
    )


def identify(request: web.Request) -> Caller | None:
    """The caller a request proves: a bearer token (unknown or revoked: Unauthenticated) or
    a live login cookie; None for neither."""
    app = request.app
    token = bearer(request)
    if token:
        failures, peer, now = app[LOGINS].failures, request.remote or "", app[CLOCK].monotonic()
        wait = failures.retry_after(peer, now)
        if wait:
            raise RateLimited(peer, wait)
        actor = app[ACTIONS].service.token_actor(token)
        if actor is None:
            failures.refused(peer, now)
            raise Unauthenticated("the admin token is unknown or revoked")
        return Caller(actor, token=token)
    cookie = request.cookies.get(COOKIE, "")
    login = app[LOGINS].get(cookie) if cookie else None
    if login is None:
        return None
    if login.token_hash and not _token_live(app[ACTIONS], login.token_hash):
        # The token it logged in with was revoked: so is the login.
        app[LOGINS].close(cookie)
        return None
    return Caller(login.actor, login)


def still_valid(request: web.Request, caller: Caller) -> bool:
    """Whether what let `caller` in still holds (for a long request: the live feed)."""
    app = request.app
    if caller.login is None:
        return app[ACTIONS].service.token_actor(caller.token) is not None
    return app[LOGINS].alive(caller.login) and (
        not caller.login.token_hash or _token_live(app[ACTIONS], caller.login.token_hash)
    )
