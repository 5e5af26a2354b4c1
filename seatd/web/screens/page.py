"""What the screens' handlers share: how a refusal reads, and post/redirect/get."""

from __future__ import annotations

from aiohttp import web

from seatd.errors import SeatdError
from seatd.web.errors import error_body
from seatd.web.request import CLOCK


def refused(request: web.Request, exc: SeatdError) -> tuple[int, str]:
    """The HTTP status and message the JSON API would answer for `exc`."""
    status, body = error_body(exc, request.app[CLOCK].wall())
    error = body["error"]
    message = error.get("message", "") if isinstance(error, dict) else ""
    return status, str(message) or type(exc).__name__


def back(path: str, done: str) -> web.HTTPSeeOther:
    """Post/redirect/get: back to `path`, saying `done` (a key of render.DONE)."""
    return web.HTTPSeeOther(f"{path}?done={done}")


async def form(request: web.Request) -> dict[str, str]:
    """The posted form's text fields (a handler that takes a file reads it itself)."""
    data = await request.post()
    return {k: v for k, v in data.items() if isinstance(v, str)}
