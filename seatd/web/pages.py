"""The console's pages: login, logout, the one-time console link, and the overview."""

from __future__ import annotations

import structlog
from aiohttp import web

from seatd.auth import token_hash
from seatd.web import screens
from seatd.web.auth import COOKIE
from seatd.web.render import render
from seatd.web.request import ACTIONS, CLOCK, LINKS, LOGINS, SECURE
from seatd.web.templating import N_

log = structlog.get_logger("seatd")


def _safe_next(target: str) -> str:
    """Only a path on this console: never an open redirect to another site."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _logged_in(request: web.Request, cookie: str, target: str) -> web.Response:
    response = web.Response(status=303, headers={"Location": _safe_next(target)})
    response.set_cookie(
        COOKIE,
        cookie,
        httponly=True,
        samesite="Strict",
        secure=request.app[SECURE],
        path="/",
    )
    return response


async def login_page(request: web.Request) -> web.Response:
    return render(request, "login.html", next=_safe_next(request.query.get("next", "/")))


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    target = _safe_next(str(form.get("next", "/")))
    logins = request.app[LOGINS]
    peer = request.remote or ""
    now = request.app[CLOCK].monotonic()
    if logins.failures.retry_after(peer, now):
        log.warning("web.login_throttled", peer=peer)
        return render(
            request,
            "login.html",
            429,
            next=target,
            error=N_("Too many failed logins: wait a minute."),
        )
    token = str(form.get("token", "")).strip()
    actor = request.app[ACTIONS].service.token_actor(token) if token else None
    if actor is None:
        logins.failures.refused(peer, now)
        log.warning("web.login_refused", peer=peer)
        return render(
            request, "login.html", 401, next=target, error=N_("This token is unknown or revoked.")
        )
    cookie, _ = logins.open(actor, token_hash(token))
    return _logged_in(request, cookie, target)


async def login_once(request: web.Request) -> web.Response:
    """The link `seatctl console` printed: logs in once, within its minute."""
    actor = request.app[LINKS].redeem(request.match_info["code"])
    if actor is None:
        return render(
            request,
            "login.html",
            401,
            next="/",
            error=N_(
                "This console link was used already or has expired: run seatctl console again."
            ),
        )
    cookie, _ = request.app[LOGINS].open(actor)
    return _logged_in(request, cookie, "/")


async def logout(request: web.Request) -> web.Response:
    request.app[LOGINS].close(request.cookies.get(COOKIE, ""))
    response = web.Response(status=303, headers={"Location": "/login"})
    response.del_cookie(COOKIE, path="/")
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_get("/login/once/{code}", login_once)
    app.router.add_post("/logout", logout)
    screens.add_routes(app)
