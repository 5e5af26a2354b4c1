"""The tokens screen: create one with a role (shown once), list them, revoke one."""

from __future__ import annotations

from aiohttp import web
from seatclient.v1 import admin_pb2

from seatd.auth import ROLES
from seatd.errors import SeatdError
from seatd.web import views
from seatd.web.render import render
from seatd.web.request import ACTIONS, caller_of
from seatd.web.screens.page import back, form, refused
from seatd.web.templating import URLS


async def page(
    request: web.Request,
    *,
    new_token: dict[str, str] | None = None,
    error: str = "",
    status: int = 200,
) -> web.Response:
    actor = caller_of(request).actor
    got = await request.app[ACTIONS].ListTokens(actor, admin_pb2.ListTokensRequest())
    listed = [views.token(t) for t in got.tokens]
    return render(
        request,
        "tokens.html",
        page="tokens",
        status=status,
        error=error,
        tokens=[t for t in listed if not t["revoked"]],
        roles=ROLES,
        new_token=new_token,
    )


async def create(request: web.Request) -> web.Response:
    """The new token is in this answer only (never in a URL, never stored in clear)."""
    fields = await form(request)
    name, role = fields.get("name", "").strip(), fields.get("role", "")
    actor = caller_of(request).actor
    try:
        made = await request.app[ACTIONS].CreateToken(
            actor, admin_pb2.CreateTokenRequest(name=name, role=role)
        )
    except SeatdError as exc:
        status, message = refused(request, exc)
        return await page(request, error=message, status=status)
    response = await page(request, new_token={"name": name, "token": made.token})
    response.headers["Cache-Control"] = "no-store"
    return response


async def revoke(request: web.Request) -> web.StreamResponse:
    actor = caller_of(request).actor
    try:
        await request.app[ACTIONS].RevokeToken(
            actor, admin_pb2.RevokeTokenRequest(name=request.match_info["name"])
        )
    except SeatdError as exc:
        status, message = refused(request, exc)
        return await page(request, error=message, status=status)
    raise back(URLS["tokens"], "revoked")
