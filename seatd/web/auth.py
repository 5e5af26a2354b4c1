"""Who is calling the web console: logins (cookie), bearer tokens, CSRF, one-time links.

A browser logs in with an admin token (the tokens `seatctl token create` makes) or with a
one-time link from `seatctl console`; the daemon then knows it by a random cookie, HttpOnly,
SameSite=Strict, Secure under TLS. Each login has its own CSRF token, required on every
state-changing request made with the cookie. A script sends `Authorization: Bearer TOKEN`
instead and needs no CSRF token: nothing is sent on its behalf by a browser.

Bounded: at most `max_logins` logins (past it the one idle longest is logged out), at most
`MAX_LINKS` unused console links, and failed logins and unknown bearer tokens per address
are rate-limited by a bounded table (seatd.limits.PeerLimits). Nothing a client sends grows
memory. Times come from the injected Clock (monotonic), so tests drive idle expiry with a fake
clock.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from seatd.clock import Clock
from seatd.limits import PeerLimits
from seatd.model import Actor
from seatd.web.config import WebConfig

log = structlog.get_logger("seatd")

COOKIE = "seatd_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# Unused one-time console links kept at once; past it the oldest is dropped.
MAX_LINKS = 16
# Failed logins one address may make at once, then one per 10 s.
FAILED_LOGIN_BURST = 5
FAILED_LOGIN_RATE = 0.1
FAILED_LOGIN_PEERS = 1024


def web_actor(actor: Actor) -> Actor:
    """The actor a web login acts as: the identity it proved, marked as coming from the web."""
    return Actor(f"web:{actor.name}", actor.role, actor.claimed)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(slots=True)
class Login:
    actor: Actor
    # Sent back with every form and fetch that changes something.
    csrf: str
    started: float
    seen: float
    # The hash of the admin token it logged in with ("" for a console link): revoking the
    # token ends the login.
    token_hash: str = ""


class Logins:
    """The logged-in browsers, keyed by the hash of their cookie, least recently seen first."""

    def __init__(self, config: WebConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._logins: OrderedDict[str, Login] = OrderedDict()
        self.failures = PeerLimits(FAILED_LOGIN_BURST, FAILED_LOGIN_RATE, FAILED_LOGIN_PEERS)

    def __len__(self) -> int:
        return len(self._logins)

    def open(self, actor: Actor, token_hash: str = "") -> tuple[str, Login]:
        """A new login for `actor`: its cookie value (shown once) and the login."""
        now = self.clock.monotonic()
        self._expire(now)
        while len(self._logins) >= self.config.max_logins:
            _, oldest = self._logins.popitem(last=False)
            log.info("web.login_dropped", actor=oldest.actor.name, why="max_logins")
        cookie = secrets.token_urlsafe(32)
        login = Login(web_actor(actor), secrets.token_urlsafe(32), now, now, token_hash)
        self._logins[_digest(cookie)] = login
        log.info("web.login", actor=login.actor.name, role=login.actor.role)
        return cookie, login

    def get(self, cookie: str) -> Login | None:
        """The live login holding `cookie`, now seen; None if unknown or expired."""
        key = _digest(cookie)
        login = self._logins.get(key)
        if login is None:
            return None
        now = self.clock.monotonic()
        if self._expired(login, now):
            del self._logins[key]
            log.info("web.login_expired", actor=login.actor.name)
            return None
        login.seen = now
        self._logins.move_to_end(key)
        return login

    def alive(self, login: Login) -> bool:
        """Whether `login` is still held and in time (it is not counted as used)."""
        held = any(found is login for found in self._logins.values())
        return held and not self._expired(login, self.clock.monotonic())

    def close(self, cookie: str) -> None:
        login = self._logins.pop(_digest(cookie), None)
        if login is not None:
            log.info("web.logout", actor=login.actor.name)

    def _expired(self, login: Login, now: float) -> bool:
        return (
            now - login.seen >= self.config.idle_timeout
            or now - login.started >= self.config.max_age
        )

    def _expire(self, now: float) -> None:
        for key in [k for k, v in self._logins.items() if self._expired(v, now)]:
            del self._logins[key]


def csrf_matches(login: Login, sent: str) -> bool:
    return bool(sent) and hmac.compare_digest(login.csrf.encode(), sent.encode())


class ConsoleLinks:
    """One-time login codes for whoever can reach the admin socket (`seatctl console`)."""

    def __init__(self, config: WebConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        # The console's address, known once the listener is bound.
        self.base_url = ""
        self._codes: OrderedDict[str, tuple[Actor, float]] = OrderedDict()

    def issue(self, actor: Actor) -> tuple[str, datetime]:
        """A URL that logs a browser in as `actor` once, and when it stops working."""
        now = self.clock.monotonic()
        for key in [k for k, (_, until) in self._codes.items() if until <= now]:
            del self._codes[key]
        while len(self._codes) >= MAX_LINKS:
            self._codes.popitem(last=False)
        code = secrets.token_urlsafe(32)
        self._codes[_digest(code)] = (actor, now + self.config.console_link_ttl)
        expires = self.clock.wall() + timedelta(seconds=self.config.console_link_ttl)
        log.info("web.console_link_issued", actor=actor.name, expires=expires.isoformat())
        return f"{self.base_url}/login/once/{code}", expires

    def redeem(self, code: str) -> Actor | None:
        """The actor `code` was issued for, if it is unused and in time; it is then used up."""
        found = self._codes.pop(_digest(code), None)
        if found is None:
            return None
        actor, until = found
        return actor if self.clock.monotonic() < until else None
