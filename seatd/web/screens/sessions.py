"""The sessions screen (the seeds' "Sessions ouvertes"): live table, wait queue, disconnect."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from seatclient.v1 import admin_pb2

from seatd.errors import InvalidArgument, SeatdError
from seatd.web import views
from seatd.web.render import render
from seatd.web.request import ACTIONS, caller_of
from seatd.web.screens.page import back, form, refused
from seatd.web.templating import URLS


async def _listed(request: web.Request) -> dict[str, Any]:
    actor = caller_of(request).actor
    got = await request.app[ACTIONS].ListSessions(actor, admin_pb2.ListSessionsRequest())
    return {**views.sessions(got), "default_reason": views.DEFAULT_REASON}


async def page(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    return render(
        request,
        "sessions.html",
        page="sessions",
        error=error,
        status=status,
        **await _listed(request),
    )


async def fragment(request: web.Request) -> web.Response:
    """The live part of the page alone: the page fetches it on each event of the feed."""
    return render(request, "_sessions_live.html", page="sessions", **await _listed(request))


def _session_id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise InvalidArgument("session_id", "a session number") from None


async def evict_form(request: web.Request) -> web.Response:
    """The disconnect form as a page of its own, for a browser without JavaScript."""
    listed = await _listed(request)
    sid = _session_id(request)
    found = [s for s in listed["sessions"] if s["id"] == sid]
    if not found:
        return await page(request, error=f"Session {sid} is not open any more.", status=404)
    return render(
        request,
        "evict.html",
        page="sessions",
        session=found[0],
        default_reason=listed["default_reason"],
    )


async def evict(request: web.Request) -> web.StreamResponse:
    actor = caller_of(request).actor
    try:
        sid = _session_id(request)
        reason = (await form(request)).get("reason", "").strip() or views.DEFAULT_REASON
        await request.app[ACTIONS].Evict(
            actor, admin_pb2.EvictRequest(session_id=sid, reason=reason)
        )
    except SeatdError as exc:
        status, message = refused(request, exc)
        return await page(request, error=message, status=status)
    raise back(URLS["sessions"], "evicted")
