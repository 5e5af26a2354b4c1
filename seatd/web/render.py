"""HTML from jinja2 templates (autoescaped), with what every page needs in its context."""

from __future__ import annotations

from typing import Any

import jinja2
from aiohttp import web

from seatd.web.request import ACTIONS, caller_of

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("seatd.web", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    extensions=["jinja2.ext.i18n"],
    undefined=jinja2.StrictUndefined,
)
# English until the catalogs install their translations (seatd.web.catalogs).
ENV.install_null_translations(newstyle=True)  # type: ignore[attr-defined]


def context(request: web.Request) -> dict[str, Any]:
    """What every page template gets: the login, its CSRF token, and `may(action)`."""
    caller = caller_of(request)
    actions = request.app[ACTIONS]
    return {
        "actor": caller.actor,
        "csrf_token": caller.login.csrf if caller.login else "",
        "may": lambda name: actions.may(caller.actor, name),
        "path": request.path,
    }


def render(
    request: web.Request | None, name: str, status: int = 200, **values: Any
) -> web.Response:
    """Page `name` with the request's context (none for the login pages) and `values`."""
    ctx = {"actor": None, "csrf_token": "", "may": lambda _: False, "path": ""}
    if request is not None:
        ctx.update(context(request))
    ctx.update(values)
    html = ENV.get_template(name).render(ctx)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
