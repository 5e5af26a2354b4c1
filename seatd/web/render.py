"""HTML from the pages' templates, in the request's language, with what every page needs.

The language is the one picked with the page's language switch (`?lang=`, then remembered in
a preference cookie), else the browser's Accept-Language, else English (seatd.web.i18n). A
page after a successful form shows a message chosen by a fixed key in the redirect (`?done=`),
so no link can make the console say something of its own.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from seatd.web import i18n, templating
from seatd.web.request import ACTIONS, CLOCK, caller_if_known
from seatd.web.templating import N_

# The messages after a form succeeded, by the key its redirect carries.
DONE = {
    "evicted": N_("The session was disconnected; its user has been told why."),
    "synced": N_("The licence was synchronised with the vendor."),
    "imported": N_("The licence file was imported."),
    "cleared": N_("The local licence was cleared."),
    "seats": N_("The active seats were changed."),
    "revoked": N_("The token was revoked."),
}


def language(request: web.Request) -> str:
    chosen = request.query.get("lang") or request.cookies.get(i18n.COOKIE)
    return i18n.negotiate(request.headers.get("Accept-Language", ""), chosen)


def render(
    request: web.Request,
    name: str,
    status: int = 200,
    *,
    page: str = "",
    error: str = "",
    **values: Any,
) -> web.Response:
    """Page `name` for `request`'s caller (if logged in) in its language, with `values`."""
    lang = language(request)
    caller = caller_if_known(request)
    flash = None
    done = DONE.get(request.query.get("done", ""))
    if error:
        # Messages marked with N_ have a translation; the domain's own (English) pass as they are.
        flash = {"kind": "error", "text": i18n.translations(lang).gettext(error)}
    elif done:
        flash = {"kind": "ok", "text": i18n.translations(lang).gettext(done)}
    who: dict[str, Any] = {}
    if caller is not None:
        actions, actor = request.app[ACTIONS], caller.actor
        who = {
            "user": actor.name,
            "role": actor.role,
            "csrf_token": caller.login.csrf if caller.login else "",
            "may": lambda action: actions.may(actor, action),
        }
    html = templating.page(
        lang,
        name,
        now=request.app[CLOCK].wall(),
        path=request.path,
        page=page,
        flash=flash,
        **who,
        **values,
    )
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    chosen = request.query.get("lang")
    if chosen in i18n.LANGUAGES:
        # A preference, not a credential; kept a year.
        response.set_cookie(
            i18n.COOKIE, chosen, max_age=365 * 86400, samesite="Strict", httponly=True, path="/"
        )
    return response
