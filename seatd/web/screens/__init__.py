"""The console's pages (HTML), one module per screen; the JSON API is seatd.web.api.

Each handler asks `seatd.actions` for the data (the same authorization and journaling as
the gRPC admin API), turns the answer into plain values (`seatd.web.views`) and renders a
template in the request's language (`seatd.web.templating`). A form POST answers 303 back
to its page (post/redirect/get) with a fixed message key, or the page again with the error.
"""

from __future__ import annotations

from aiohttp import web

from seatd.web.screens import journal, licence, sessions, tokens, usage
from seatd.web.templating import URLS


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(URLS["overview"], licence.overview)
    r.add_post(URLS["sync"], licence.sync)
    r.add_post(URLS["import_"], licence.import_file)
    r.add_post(URLS["clear"], licence.clear)
    r.add_post(URLS["seats"], licence.set_seats)
    r.add_post(URLS["quote"], licence.quote)
    r.add_post(URLS["order"], licence.order)
    r.add_get(URLS["history"], licence.history)
    r.add_get(URLS["sessions"], sessions.page)
    r.add_get(URLS["sessions_fragment"], sessions.fragment)
    r.add_get(URLS["evict_page"] + "{id}", sessions.evict_form)
    r.add_post(URLS["evict_template"], sessions.evict)
    r.add_get(URLS["journal"], journal.page)
    r.add_post(URLS["journal_verify"], journal.verify)
    r.add_get(URLS["usage"], usage.page)
    r.add_get(URLS["tokens"], tokens.page)
    r.add_post(URLS["tokens"], tokens.create)
    r.add_post(URLS["revoke_template"], tokens.revoke)
