"""The licence screen (the seeds' "Licence du programme"), its actions, and its history."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from seatclient.v1 import admin_pb2

from seatd.errors import InvalidArgument, SeatdError
from seatd.licence import detail
from seatd.web import views
from seatd.web.render import render
from seatd.web.request import ACTIONS, caller_of
from seatd.web.screens.page import back, form, refused
from seatd.web.templating import URLS

# A licence file is a few kilobytes; the app refuses bodies past its own bound anyway.
MAX_LICENCE = 64 * 1024


async def overview(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    actor = caller_of(request).actor
    got = await request.app[ACTIONS].GetLicence(actor, admin_pb2.AdminServiceGetLicenceRequest())
    lic = detail.fields(got.licence)
    return render(
        request,
        "overview.html",
        page="overview",
        status=status,
        error=error,
        lic=lic,
        place=detail.place(lic),
    )


async def _act(request: web.Request, done: str, call: Any) -> web.StreamResponse:
    """Run one licence action; back to the overview saying `done`, or the overview with the
    refusal (the same status and message as the API's)."""
    try:
        await call
    except SeatdError as exc:
        status, message = refused(request, exc)
        return await overview(request, error=message, status=status)
    raise back(URLS["overview"], done)


def _seats(fields: dict[str, str]) -> int:
    try:
        seats = int(fields.get("seats", ""))
    except ValueError:
        raise InvalidArgument("seats", "a whole number of seats, 1 or more") from None
    if seats < 1:
        raise InvalidArgument("seats", "a whole number of seats, 1 or more")
    return seats


async def sync(request: web.Request) -> web.StreamResponse:
    actor = caller_of(request).actor
    call = request.app[ACTIONS].SyncLicence(actor, admin_pb2.SyncLicenceRequest())
    return await _act(request, "synced", call)


async def import_file(request: web.Request) -> web.StreamResponse:
    data = await request.post()
    upload = data.get("file")
    if not isinstance(upload, web.FileField):
        return await overview(request, error="Choose a licence file to import.", status=400)
    text = upload.file.read(MAX_LICENCE + 1)
    if len(text) > MAX_LICENCE:
        return await overview(request, error="This file is too large for a licence.", status=400)
    actor = caller_of(request).actor
    call = request.app[ACTIONS].ImportLicence(
        actor, admin_pb2.ImportLicenceRequest(licence_text=text.decode("utf-8", "replace"))
    )
    return await _act(request, "imported", call)


async def clear(request: web.Request) -> web.StreamResponse:
    actor = caller_of(request).actor
    call = request.app[ACTIONS].ClearLicence(actor, admin_pb2.ClearLicenceRequest())
    return await _act(request, "cleared", call)


async def set_seats(request: web.Request) -> web.StreamResponse:
    try:
        seats = _seats(await form(request))
    except InvalidArgument as exc:
        status, message = refused(request, exc)
        return await overview(request, error=message, status=status)
    actor = caller_of(request).actor
    call = request.app[ACTIONS].SetActiveSeats(actor, admin_pb2.SetActiveSeatsRequest(seats=seats))
    return await _act(request, "seats", call)


async def quote(request: web.Request) -> web.StreamResponse:
    """The vendor's prorated price for the extra seats, before anything is ordered."""
    actor = caller_of(request).actor
    actions = request.app[ACTIONS]
    try:
        seats = _seats(await form(request))
        priced = await actions.OrderSeats(
            actor, admin_pb2.OrderSeatsRequest(seats=seats, quote_only=True)
        )
    except SeatdError as exc:
        status, message = refused(request, exc)
        return await overview(request, error=message, status=status)
    return render(request, "quote.html", page="overview", quote=views.quote(priced))


async def order(request: web.Request) -> web.StreamResponse:
    """The order, once the quote was confirmed: pending at the vendor until it is paid."""
    actor = caller_of(request).actor
    actions = request.app[ACTIONS]
    try:
        seats = _seats(await form(request))
        ordered = await actions.OrderSeats(actor, admin_pb2.OrderSeatsRequest(seats=seats))
    except SeatdError as exc:
        status, message = refused(request, exc)
        return await overview(request, error=message, status=status)
    return render(request, "quote.html", page="overview", quote=views.quote(ordered))


async def history(request: web.Request) -> web.Response:
    actor = caller_of(request).actor
    got = await request.app[ACTIONS].LicenceHistory(actor, admin_pb2.LicenceHistoryRequest())
    rows = [views.history_entry(e) for e in reversed(got.entries)]
    return render(request, "history.html", page="history", history=rows)
