"""The pages' template environments: one per language, autoescaped, with their catalogs.

A jinja2 Environment carries its gettext functions as globals, so one shared environment
cannot serve an English and a French request at once; each language gets its own, built
once. Templates use new-style gettext (`_("%(n)s seats", n=...)`, `ngettext(..., num)`),
which escapes substituted values and fails loudly on a missing placeholder, and `fmt`, the
language's Babel formatting of dates and numbers (server local zone and UTC).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from functools import cache
from types import SimpleNamespace
from typing import Any

import jinja2
from babel.localtime import get_localzone

from seatd.web import i18n

# Every URL the pages link to or post to, in one place; `{id}` / `{name}` are filled in.
URLS: dict[str, str] = {
    "overview": "/",
    "login": "/login",
    "logout": "/logout",
    "static": "/static",
    "sessions": "/sessions",
    "sessions_fragment": "/sessions/live",
    "evict_page": "/sessions/evict/",
    "evict_template": "/sessions/{id}/evict",
    "feed": "/api/v1/events",
    "sync": "/licence/sync",
    "import_": "/licence/import",
    "clear": "/licence/clear",
    "seats": "/licence/seats",
    "quote": "/licence/quote",
    "order": "/licence/order",
    "journal": "/journal",
    "journal_verify": "/journal/verify",
    # Downloads are the JSON API's (same authorization, one implementation).
    "journal_export": "/api/v1/journal/export?format=jsonl",
    "usage": "/usage",
    "usage_csv": "/api/v1/usage?format=csv",
    "history": "/history",
    "tokens": "/tokens",
    "revoke_template": "/tokens/{name}/revoke",
}


def N_(message: str) -> str:
    """Mark `message` for the catalogs; it is translated where it is shown."""
    return message


def local_zone() -> tzinfo:
    """The server's zone for "local time" (honours TZ, then /etc/localtime)."""
    return get_localzone()


@cache
def environment(language: str) -> jinja2.Environment:
    """The environment of `language`, its catalog installed (built once per language)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("seatd.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        fmt=i18n.Formats(language, local_zone()),
        duration=i18n.duration,
        # A namespace, not the dict: `urls.clear` must not find dict.clear.
        urls=SimpleNamespace(**URLS),
        lang=language,
    )
    return env


def page(
    language: str,
    name: str,
    *,
    now: datetime,
    path: str,
    user: str | None = None,
    role: str | None = None,
    csrf_token: str = "",
    may: Callable[[str], bool] = lambda _: False,
    **values: Any,
) -> str:
    """Page `name` in `language`: what every page shows (who is logged in, the server's
    clocks, the language switch) and the page's own `values`."""
    offset = now.astimezone(local_zone()).utcoffset()
    context: dict[str, Any] = {
        "user": user,
        "role": role,
        "csrf_token": csrf_token,
        "may": may,
        "here": path,
        "page": "",
        "now": now,
        "now_epoch": int(now.timestamp()),
        "local_offset": int(offset.total_seconds()) if offset else 0,
        "flash": None,
        **values,
    }
    return environment(language).get_template(name).render(context)
