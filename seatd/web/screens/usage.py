"""The usage screen: daily peak in use against the cap, refusals, over a chosen period."""

from __future__ import annotations

from aiohttp import web

from seatd.web import chart, i18n, reports, templating
from seatd.web.render import language, render
from seatd.web.request import ACTIONS, caller_of

PERIODS = (7, 30, 90, 365)


async def page(request: web.Request) -> web.Response:
    wanted = request.query.get("days", "30")
    days = int(wanted) if wanted.isdigit() and int(wanted) in PERIODS else 30
    actor = caller_of(request).actor
    rows, cap = await reports.daily_usage(request.app[ACTIONS], actor, days)
    fmt = i18n.Formats(language(request), templating.local_zone())
    drawn = chart.layout(rows, cap, date_label=fmt.day, number=fmt.number)
    return render(
        request,
        "usage.html",
        page="usage",
        chart=drawn,
        peak=max((r.peak for r in rows), default=0),
        refused=sum(r.refusals for r in rows),
        usage_days=rows,
        days=days,
        periods=PERIODS,
    )
