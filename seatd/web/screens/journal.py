"""The session journal screen: filters, verification of the hash chain, export."""

from __future__ import annotations

from datetime import date

from aiohttp import web
from seatclient.v1 import admin_pb2

from seatd.errors import InvalidArgument
from seatd.web import views
from seatd.web.render import render
from seatd.web.request import ACTIONS, caller_of

PAGE = 100
# What the kind filter offers (the journal's seat and licence events).
KINDS = (
    "granted",
    "released",
    "expired",
    "evicted",
    "refused",
    "reattached",
    "renewed_after_restart",
    "restored",
    "daemon_started",
    "licence_installed",
    "licence_staged",
    "licence_transferred",
    "licence_cleared",
    "active_seats_changed",
    "token_created",
    "token_revoked",
    "denied",
    "clock_jump",
    "clock_rollback",
    "journal_pruned",
)


def _day(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(name, "a day as YYYY-MM-DD") from None


def _filter(q: dict[str, str]) -> admin_pb2.JournalFilter:
    f = admin_pb2.JournalFilter(user_code=q.get("user", "").strip())
    session = q.get("session", "").strip()
    if session:
        if not session.isdigit():
            raise InvalidArgument("session", "a session number")
        f.session_id = int(session)
    if q.get("kind"):
        f.kinds.append(q["kind"])
    since, until = views.day_bounds(
        _day(q.get("since", ""), "since"), _day(q.get("until", ""), "until")
    )
    if since:
        f.since.FromDatetime(since)
    if until:
        f.until.FromDatetime(until)
    return f


async def _page(
    request: web.Request, verified: admin_pb2.VerifyJournalResponse | None
) -> web.Response:
    """The newest entries first, PAGE at a time; `before` pages back."""
    q = {k: v for k, v in request.query.items()}
    keep = _filter(q)
    actor = caller_of(request).actor
    actions = request.app[ACTIONS]
    before = int(q["before"]) if q.get("before", "").isdigit() else 0
    # ReadJournal pages forward: read the filtered entries before `before` and keep the last.
    entries: list[admin_pb2.JournalEntry] = []
    after = 0
    while True:
        got = await actions.ReadJournal(
            actor, admin_pb2.ReadJournalRequest(after_seq=after, limit=1000, filter=keep)
        )
        entries += [e for e in got.entries if not before or e.seq < before]
        entries = entries[-(PAGE + 1) :]
        after = got.next_after_seq
        if not got.more or (before and after >= before):
            break
    older = entries[0].seq if len(entries) > PAGE else 0
    shown = [views.journal_entry(e) for e in reversed(entries[-PAGE:])]
    more = None
    if older:
        rest = "&".join(f"{k}={v}" for k, v in q.items() if k not in ("before", "done"))
        more = f"?{rest}&before={shown[-1]['seq']}" if rest else f"?before={shown[-1]['seq']}"
    filters = {k: q.get(k, "") for k in ("user", "session", "kind", "since", "until")}
    return render(
        request,
        "journal.html",
        page="journal",
        entries=shown,
        kinds=KINDS,
        filters=filters,
        verify=verified,
        more=more,
    )


async def page(request: web.Request) -> web.Response:
    return await _page(request, None)


async def verify(request: web.Request) -> web.Response:
    actor = caller_of(request).actor
    verified = await request.app[ACTIONS].VerifyJournal(actor, admin_pb2.VerifyJournalRequest())
    return await _page(request, verified)
