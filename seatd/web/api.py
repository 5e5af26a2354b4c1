"""/api/v1/: the admin actions over HTTP and JSON, for scripts and ERPs in any language.

Each route names the admin action (seatd.actions, the AdminService RPC of the same name) it
takes; its request message is built from the path, the query and the JSON body, and its
answer is the action's response message in protobuf's canonical JSON mapping (proto field
names; every field present; 64-bit integers as numbers while exact; enums by name;
timestamps RFC 3339 UTC). So the API carries the same data, the same roles and the same
error reasons as the gRPC AdminService, and `openapi.py` describes it from the same messages.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from aiohttp import web
from google.protobuf.message import Message
from seatclient.v1 import admin_pb2

from seatd import usage
from seatd.auth import TABLE
from seatd.errors import InvalidArgument, LimitExceeded
from seatd.model import Actor
from seatd.web import reports
from seatd.web.protojson import from_json, to_json
from seatd.web.request import ACTIONS, CLOCK, CONFIG, caller_of, still_valid

log = structlog.get_logger("seatd")

PREFIX = "/api/v1"
# Seconds between the comment lines that keep an idle live feed open through proxies.
FEED_KEEPALIVE = 15.0


async def json_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    try:
        return await request.json()
    except json.JSONDecodeError as exc:
        raise InvalidArgument("body", f"is not JSON: {exc.msg}") from None


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(name, f"expected a whole number, got {value!r}") from None


def when(value: str, name: str, now: datetime) -> datetime:
    """An ISO date or time (UTC unless it says otherwise), or a span back from now: 30m, 24h, 7d."""
    text = value.strip()
    spans = {"m": 60, "h": 3600, "d": 86400}
    if text[:-1].isdigit() and text[-1:] in spans:
        return now - timedelta(seconds=int(text[:-1]) * spans[text[-1]])
    try:
        found = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(
            name, f"{value!r}: use an ISO date or time (2026-11-22T08:00) or 30m, 24h, 7d"
        ) from None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


# -- request builders: path, query and body -> the action's request message ----------------

Build = Callable[[web.Request], Awaitable[Message]]


def empty(cls: type[Message]) -> Build:
    async def build(request: web.Request) -> Message:
        return cls()

    return build


def body(cls: type[Message]) -> Build:
    async def build(request: web.Request) -> Message:
        return from_json(await json_body(request), cls())

    return build


async def evict_request(request: web.Request) -> Message:
    message = from_json(await json_body(request), admin_pb2.EvictRequest())
    assert isinstance(message, admin_pb2.EvictRequest)
    message.session_id = _int(request.match_info["session_id"], "session_id")
    return message


async def quote_request(request: web.Request) -> Message:
    message = from_json(await json_body(request), admin_pb2.OrderSeatsRequest())
    message.quote_only = True
    return message


async def revoke_request(request: web.Request) -> Message:
    return admin_pb2.RevokeTokenRequest(name=request.match_info["name"])


async def import_request(request: web.Request) -> Message:
    """The licence as JSON {licence_text} or as an uploaded file (form field `licence`)."""
    if request.content_type == "multipart/form-data":
        form = await request.post()
        upload = form.get("licence")
        if isinstance(upload, web.FileField):
            text = upload.file.read().decode("ascii", "replace")
        else:
            text = str(upload or "")
        return admin_pb2.ImportLicenceRequest(licence_text=text)
    return from_json(await json_body(request), admin_pb2.ImportLicenceRequest())


def journal_filter(request: web.Request) -> admin_pb2.JournalFilter:
    q = request.query
    now = request.app[CLOCK].wall()
    f = admin_pb2.JournalFilter(
        user_code=q.get("user", ""),
        session_id=_int(q["session"], "session") if q.get("session") else 0,
        kinds=q.getall("kind", []),
    )
    if q.get("since"):
        f.since.FromDatetime(when(q["since"], "since", now))
    if q.get("until"):
        f.until.FromDatetime(when(q["until"], "until", now))
    return f


async def journal_request(request: web.Request) -> Message:
    q = request.query
    return admin_pb2.ReadJournalRequest(
        after_seq=_int(q["after"], "after") if q.get("after") else 0,
        limit=_int(q["limit"], "limit") if q.get("limit") else 0,
        filter=journal_filter(request),
    )


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    action: str
    build: Build
    summary: str
    status: int = 200
    # The OpenAPI operationId, when not the action's name (one action, two routes).
    operation: str = ""


ROUTES: tuple[Route, ...] = (
    Route("GET", "/sessions", "ListSessions", empty(admin_pb2.ListSessionsRequest),
          "Live sessions, seat cap, seats in use, the wait queue's length, server time"),
    Route("POST", "/sessions/{session_id}/evict", "Evict", evict_request,
          "Disconnect a session with a reason; its workstation is told the reason"),
    Route("GET", "/licence", "GetLicence", empty(admin_pb2.AdminServiceGetLicenceRequest),
          "The licence in force, seats, renewal, cloud sync state"),
    Route("GET", "/licence/history", "LicenceHistory", empty(admin_pb2.LicenceHistoryRequest),
          "Every licence installed or cleared, newest last"),
    Route("POST", "/licence/import", "ImportLicence", import_request,
          "Install a signed licence file (JSON licence_text, or multipart field licence)"),
    Route("POST", "/licence/clear", "ClearLicence", empty(admin_pb2.ClearLicenceRequest),
          "Forget the local licence (the next sync restores it)"),
    Route("POST", "/licence/sync", "SyncLicence", empty(admin_pb2.SyncLicenceRequest),
          "Sync the licence with the vendor's cloud now"),
    Route("POST", "/licence/active-seats", "SetActiveSeats", body(admin_pb2.SetActiveSeatsRequest),
          "Set the seats in force (at most the purchased seats)"),
    Route("POST", "/orders/quote", "OrderSeats", quote_request,
          "The price of more seats, prorated to the renewal date: nothing is ordered",
          operation="QuoteSeats"),
    Route("POST", "/orders", "OrderSeats", body(admin_pb2.OrderSeatsRequest),
          "Order more seats from the vendor, prorated to the renewal date"),
    Route("GET", "/journal", "ReadJournal", journal_request,
          "Journal entries, filtered by user, session, kind and period, paged by seq"),
    Route("GET", "/journal/verify", "VerifyJournal", empty(admin_pb2.VerifyJournalRequest),
          "Verify the journal's hash chain from its first entry to its head"),
    Route("GET", "/tokens", "ListTokens", empty(admin_pb2.ListTokensRequest),
          "Admin tokens (names, roles, who created them, revocation)"),
    Route("POST", "/tokens", "CreateToken", body(admin_pb2.CreateTokenRequest),
          "Create an admin token with a role; the token is shown only in this answer", 201),
    Route("DELETE", "/tokens/{name}", "RevokeToken", revoke_request, "Revoke an admin token"),
)  # fmt: skip


def _handler(route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        actions = request.app[ACTIONS]
        act: Callable[[Actor, Message], Awaitable[Message]] = getattr(actions, route.action)
        message = await route.build(request)
        answer = await act(caller_of(request).actor, message)
        return web.json_response(to_json(answer), status=route.status)

    return handle


# -- routes that are more than one action's answer -------------------------------------------


async def me(request: web.Request) -> web.Response:
    """Who the caller is, which actions the role table lets it take, and its CSRF token."""
    caller = caller_of(request)
    actions = request.app[ACTIONS]
    return web.json_response(
        {
            "actor": caller.actor.name,
            "role": caller.actor.role,
            "actions": [name for name in TABLE if actions.may(caller.actor, name)],
            # For scripts running in a logged-in page; empty for a bearer token.
            "csrf_token": caller.login.csrf if caller.login else "",
        }
    )


async def export(request: web.Request) -> web.StreamResponse:
    """The filtered journal whole, as JSON lines (each entry as the journal holds it) or CSV."""
    fmt = request.query.get("format", "jsonl")
    if fmt not in ("jsonl", "csv"):
        raise InvalidArgument("format", "expected jsonl or csv")
    entries = await reports.all_entries(
        request.app[ACTIONS], caller_of(request).actor, journal_filter(request)
    )
    if fmt == "jsonl":
        text = "".join(f"{e.json}\n" for e in entries)
        return _download(text, "application/x-ndjson", "journal.jsonl")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["seq", "at", "kind", "session_id", "user_code", "actor", "reason"])
    for e in entries:
        writer.writerow(
            [e.seq, e.at.ToDatetime(tzinfo=UTC).isoformat(), e.kind, e.session_id or "",
             e.user_code, e.actor, e.reason]
        )  # fmt: skip
    return _download(out.getvalue(), "text/csv", "journal.csv")


def _download(text: str, content_type: str, name: str) -> web.Response:
    return web.Response(
        text=text,
        content_type=content_type,
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def usage_report(request: web.Request) -> web.Response:
    """Per day of the last `days` (server's zone): peak sessions, seat-hours, refusals,
    evictions; with the seat cap to draw the peak against. JSON, or CSV with format=csv."""
    days = _int(request.query.get("days", "30"), "days")
    if not 1 <= days <= 3660:
        raise InvalidArgument("days", "must be between 1 and 3660")
    rows, cap = await reports.daily_usage(request.app[ACTIONS], caller_of(request).actor, days)
    if request.query.get("format") == "csv":
        out = io.StringIO()
        usage.write_csv(rows, out)
        return _download(out.getvalue(), "text/csv", "usage.csv")
    return web.json_response({"seat_cap": cap, "days": [r.as_json() for r in rows]})


class Feeds:
    """The live feeds open (at most [web] max_event_streams), ended at once when the daemon
    stops rather than waited for."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    @property
    def open(self) -> int:
        return len(self.tasks)

    async def close(self, app: web.Application) -> None:
        for task in self.tasks:
            task.cancel()


FEEDS = web.AppKey("feeds", Feeds)


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: each journal entry as it commits (`event: journal`, `id: SEQ`,
    data = the JournalEntry JSON). A browser's EventSource resumes after Last-Event-ID;
    without it the feed starts at the journal's head."""
    actions = request.app[ACTIONS]
    feeds = request.app[FEEDS]
    if feeds.open >= request.app[CONFIG].max_event_streams:
        raise LimitExceeded(
            "TOO_MANY_CALLS",
            "too many live feeds are open on the web console: close a tab and retry",
            retry_after=FEED_KEEPALIVE,
        )
    resume = request.headers.get("Last-Event-ID") or request.query.get("after", "")
    after = _int(resume, "Last-Event-ID") if resume else actions.service.store.recorded_head()[0]
    caller = caller_of(request)
    watch = await actions.WatchJournal(caller.actor, admin_pb2.WatchJournalRequest(after_seq=after))
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    # The watch runs in its own task, handing entries over one at a time: the handler can
    # then write a keepalive while nothing happens without cancelling the watch.
    handover: asyncio.Queue[admin_pb2.WatchJournalResponse] = asyncio.Queue(maxsize=1)

    async def pump() -> None:
        async for item in watch:
            await handover.put(item)

    handler = asyncio.current_task()
    assert handler is not None
    feeds.tasks.add(handler)
    pumping = asyncio.create_task(pump(), name="web-feed")
    try:
        await response.prepare(request)
        await response.write(b": live\n\n")
        while True:
            try:
                item = await asyncio.wait_for(handover.get(), FEED_KEEPALIVE)
            except TimeoutError:
                if pumping.done():
                    pumping.result()  # the watch failed: raise its error
                if not still_valid(request, caller):
                    break  # logged out, expired or revoked meanwhile: the feed ends
                await response.write(b": keepalive\n\n")
                continue
            if not still_valid(request, caller):
                break
            data = json.dumps(to_json(item.entry), separators=(",", ":"))
            await response.write(f"id: {item.entry.seq}\nevent: journal\ndata: {data}\n\n".encode())
    except ConnectionResetError:
        pass  # the browser went away: the feed just ends
    finally:
        feeds.tasks.discard(handler)
        pumping.cancel()
    return response


def add_routes(app: web.Application) -> None:
    app[FEEDS] = feeds = Feeds()
    app.on_shutdown.append(feeds.close)
    for route in ROUTES:
        app.router.add_route(route.method, PREFIX + route.path, _handler(route))
    app.router.add_get(PREFIX + "/me", me)
    app.router.add_get(PREFIX + "/journal/export", export)
    app.router.add_get(PREFIX + "/usage", usage_report)
    app.router.add_get(PREFIX + "/events", events)
