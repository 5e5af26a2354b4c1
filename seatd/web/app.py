"""The web console's aiohttp application, and its listener on the daemon's own event loop.

aiohttp because it is asyncio-native and mature: its AppRunner and TCPSite start on the loop
grpc.aio already runs on (no second thread, no second copy of the state), so a page or an API
call reaches the service layer as the gRPC admin servicer does, through `seatd.actions`.

Every request passes `guard` first: it refuses a state-changing request sent from another
site (`seatd.web.origin`: Origin, else Referer, against the console's own origin; not for a
bearer token, which no browser sends on its own), finds the caller (a login cookie or a bearer
token), sends a page without one to /login and answers an API call without one 401, and
refuses a state-changing request made with the cookie unless it carries the login's CSRF
token. What the caller may then do is the actions' business (the role table in `seatd.auth`).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from aiohttp import web

from seatd.actions import AdminActions
from seatd.clock import Clock
from seatd.errors import NotAllowed, SeatdError, StateError, Unauthenticated
from seatd.web import api, openapi, origin, pages
from seatd.web.auth import CSRF_FIELD, CSRF_HEADER, ConsoleLinks, Logins, csrf_matches
from seatd.web.config import WebConfig
from seatd.web.errors import error_response
from seatd.web.request import (
    ACTIONS,
    CLOCK,
    CONFIG,
    LINKS,
    LOGINS,
    SECURE,
    bearer,
    identify,
    is_api,
    set_caller,
)

log = structlog.get_logger("seatd")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Reachable without a login: the login pages, static files, the API's description.
PUBLIC_PREFIXES = ("/login", "/static/", "/api/v1/openapi.json")
# Request bodies: a licence file is a few kilobytes; nothing the console takes is larger.
MAX_BODY = 256 * 1024
# Seconds the listener waits for requests in flight at stop (live feeds end at once).
STOP_GRACE = 2.0


async def _csrf_sent(request: web.Request) -> str:
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        sent = str((await request.post()).get(CSRF_FIELD, ""))
    return sent


def _same_origin(request: web.Request) -> None:
    """Refuse a state-changing request that another site's page sent (seatd.web.origin)."""
    why = origin.refusal(
        request.method, request.url, request.headers.get("Origin"), request.headers.get("Referer")
    )
    if why:
        log.warning("web.origin_refused", method=request.method, path=request.path)
        raise NotAllowed(why)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        if not bearer(request):
            _same_origin(request)
        if request.path.startswith(PUBLIC_PREFIXES):
            return await handler(request)
        caller = identify(request)
        if caller is None:
            if is_api(request):
                raise Unauthenticated(
                    "log in first, or send Authorization: Bearer TOKEN "
                    "(seatctl token create on the server)"
                )
            raise web.HTTPSeeOther(f"/login?next={request.path_qs}")
        if (
            caller.login is not None
            and request.method not in SAFE_METHODS
            and not csrf_matches(caller.login, await _csrf_sent(request))
        ):
            log.warning("web.csrf_refused", actor=caller.actor.name, path=request.path)
            raise NotAllowed(
                "the request did not carry this login's CSRF token (a form from another "
                "site, or a page older than the login): reload the page and try again"
            )
        set_caller(request, caller)
        return await handler(request)
    except SeatdError as exc:
        return error_response(request, exc, request.app[CLOCK].wall())
    except web.HTTPException:
        raise  # aiohttp's own answers: redirects, 404, 405, 413
    except Exception:
        # A defect, not the caller's doing: logged with its traceback, answered 500, and the
        # daemon serves on.
        log.exception("web.internal_error", path=request.path)
        defect = SeatdError("internal error; see the seatd log")
        return error_response(request, defect, request.app[CLOCK].wall())


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    # The console is never framed and never loads anything from elsewhere.
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'none'; form-action 'self'",
    )
    return response


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi.document())


def build_app(
    actions: AdminActions, config: WebConfig, clock: Clock, *, secure: bool = False
) -> web.Application:
    app = web.Application(middlewares=[headers, guard], client_max_size=MAX_BODY)
    app[ACTIONS] = actions
    app[CLOCK] = clock
    app[CONFIG] = config
    app[LOGINS] = Logins(config, clock)
    app[LINKS] = ConsoleLinks(config, clock)
    app[SECURE] = secure
    pages.add_routes(app)
    api.add_routes(app)
    app.router.add_get(api.PREFIX + "/openapi.json", _openapi)
    static = Path(__file__).parent / "static"
    if static.is_dir():
        app.router.add_static("/static/", static)
    return app


def tls_context(config: WebConfig) -> ssl.SSLContext | None:
    if not config.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
        if config.client_ca:
            context.load_verify_locations(config.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise StateError(f"cannot load the web console's TLS files: {exc}") from exc
    return context


class WebServer:
    """The console's listener: started and stopped by the daemon on its running loop."""

    def __init__(self, actions: AdminActions, config: WebConfig, clock: Clock) -> None:
        self.config = config
        self.tls = tls_context(config)
        self.app = build_app(actions, config, clock, secure=self.tls is not None)
        self.runner = web.AppRunner(
            self.app, access_log=None, shutdown_timeout=STOP_GRACE, handle_signals=False
        )
        self.url = ""

    @property
    def links(self) -> ConsoleLinks:
        return self.app[LINKS]

    async def start(self) -> str:
        """Bind and serve; returns the console's URL."""
        host, _, port = self.config.listen.rpartition(":")
        host = host.strip("[]")
        await self.runner.setup()
        site = web.TCPSite(self.runner, host or None, int(port), ssl_context=self.tls)
        try:
            await site.start()
        except OSError as exc:
            await self.runner.cleanup()
            raise StateError(
                f"cannot listen on {self.config.listen} for the web console: {exc.strerror}; "
                "change web.listen (--web-listen)"
            ) from exc
        bound = self.runner.addresses[0][1]
        shown = host if host not in ("", "0.0.0.0", "::") else socket.gethostname()
        if ":" in shown:
            shown = f"[{shown}]"
        self.url = f"{'https' if self.tls else 'http'}://{shown}:{bound}"
        self.links.base_url = self.url
        return self.url

    async def stop(self) -> None:
        await self.runner.cleanup()
