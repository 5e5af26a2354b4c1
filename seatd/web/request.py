"""What a handler finds on the application and on the request: the keys, and the caller."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from seatd.actions import AdminActions
from seatd.clock import Clock
from seatd.errors import Unauthenticated
from seatd.model import Actor
from seatd.web.auth import ConsoleLinks, Login, Logins
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


# Where `guard` leaves the caller on the request.
_CALLER = web.RequestKey("caller", Caller)


def set_caller(request: web.Request, caller: Caller) -> None:
    request[_CALLER] = caller


def caller_of(request: web.Request) -> Caller:
    return request[_CALLER]


def login_of(request: web.Request) -> Login:
    """The browser login of a page request (guard sent requests without one to /login)."""
    login = caller_of(request).login
    if login is None:
        raise Unauthenticated("this page needs a browser login")
    return login


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")
