"""AdminService: see and manage the seats (local unix socket by default)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
from seatclient.v1 import admin_pb2, admin_pb2_grpc, types_pb2

from seatd import __version__, journal
from seatd.cloudsync import CloudSync
from seatd.entitlement import LicenceView
from seatd.errors import CloudFailed, InvalidArgument
from seatd.model import Actor
from seatd.service import ADMIN_ROLES, READ_ROLES, SEAT_ROLES, SeatService, require
from seatd.transport import convert
from seatd.transport.status import translated

Context = grpc.aio.ServicerContext[Any, Any]


def actor_of(context: Context) -> Actor:
    """Who is calling, and with which role. Until admin authentication lands, whoever can
    open the local socket (mode 0660) is its owner."""
    return Actor("admin", "owner")


def journal_filter(f: admin_pb2.JournalFilter) -> journal.Filter:
    return journal.Filter(
        since=f.since.ToDatetime(tzinfo=UTC) if f.HasField("since") else None,
        until=f.until.ToDatetime(tzinfo=UTC) if f.HasField("until") else None,
        user_code=f.user_code,
        session_id=f.session_id,
        kinds=frozenset(f.kinds),
    )


def journal_entry(seq: int, raw: bytes, entry: dict[str, Any]) -> admin_pb2.JournalEntry:
    at = datetime.fromisoformat(str(entry["at"]).replace("Z", "+00:00"))
    return admin_pb2.JournalEntry(
        seq=seq,
        at=convert.timestamp(at),
        kind=str(entry.get("kind", "")),
        session_id=int(entry.get("session_id") or 0),
        user_code=str(entry.get("user_code", "")),
        actor=str(entry.get("actor", "")),
        reason=str(entry.get("reason", "")),
        json=raw.decode(),
    )


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, service: SeatService, cloud: CloudSync | None = None) -> None:
        self.service = service
        self.cloud = cloud

    @translated
    async def ListSessions(
        self, request: admin_pb2.ListSessionsRequest, context: Context
    ) -> admin_pb2.ListSessionsResponse:
        now = self.service.clock.wall()
        local = now.astimezone()
        offset = local.utcoffset()
        response = admin_pb2.ListSessionsResponse(
            sessions=[convert.session(s, now) for s in self.service.arbiter.sessions()],
            in_use=self.service.arbiter.in_use,
            server_time=convert.timestamp(now),
            server_utc_offset_seconds=int(offset.total_seconds()) if offset else 0,
            server_timezone=local.tzname() or "",
            daemon_version=__version__,
            daemon_started_at=convert.timestamp(self.service.started_at),
            waiting=self.service.waiting,
        )
        cap = self.service.entitlement.seat_cap()
        if cap is not None:
            response.seat_cap = cap
        return response

    @translated
    async def Evict(
        self, request: admin_pb2.EvictRequest, context: Context
    ) -> admin_pb2.EvictResponse:
        ending = await self.service.evict(
            request.session_id, reason=request.reason, by=actor_of(context).name
        )
        return admin_pb2.EvictResponse(ended=convert.ended(ending))

    def _detail(self, view: LicenceView) -> types_pb2.LicenceDetail:
        book = self.service.book
        detail = convert.licence_detail(
            view,
            in_use=self.service.arbiter.in_use,
            trusted_time=book.trusted_now() if book else self.service.clock.wall(),
            rolled_back=bool(book and book.time.rolled_back),
        )
        if self.cloud is not None and self.cloud.config.url:
            state = self.cloud.state
            detail.cloud_url = self.cloud.config.url
            detail.failed_syncs = state.failures
            detail.last_sync_error = state.last_error
            detail.latest_client_version = state.latest_client_version
            if state.last_success is not None:
                detail.last_sync.CopyFrom(convert.timestamp(state.last_success))
            next_attempt = self.cloud.next_attempt()
            if next_attempt is not None:
                detail.next_sync.CopyFrom(convert.timestamp(next_attempt))
        return detail

    def _cloud(self) -> CloudSync:
        if self.cloud is None or not self.cloud.config.url:
            raise CloudFailed("no cloud endpoint is configured (cloud.url / --cloud-url)")
        return self.cloud

    @translated
    async def SyncLicence(
        self, request: admin_pb2.SyncLicenceRequest, context: Context
    ) -> admin_pb2.SyncLicenceResponse:
        require(actor_of(context), ADMIN_ROLES, "sync the licence")
        await self._cloud().tick()
        return admin_pb2.SyncLicenceResponse(licence=self._detail(self.service.entitlement.view()))

    @translated
    async def OrderSeats(
        self, request: admin_pb2.OrderSeatsRequest, context: Context
    ) -> admin_pb2.OrderSeatsResponse:
        require(actor_of(context), SEAT_ROLES, "order seats")
        if request.seats < 1:
            raise InvalidArgument("seats", "must be at least 1")
        order = await self._cloud().order(request.seats)
        return admin_pb2.OrderSeatsResponse(
            order_id=order.order_id,
            seats=order.seats,
            days_left=order.days_left,
            amount_excl_vat=order.amount_excl_vat,
            vat=order.vat,
            amount_incl_vat=order.amount_incl_vat,
            currency=order.currency,
            status=order.status,
        )

    @translated
    async def GetLicence(
        self, request: admin_pb2.AdminServiceGetLicenceRequest, context: Context
    ) -> admin_pb2.AdminServiceGetLicenceResponse:
        view = self.service.entitlement.view()
        return admin_pb2.AdminServiceGetLicenceResponse(licence=self._detail(view))

    @translated
    async def ImportLicence(
        self, request: admin_pb2.ImportLicenceRequest, context: Context
    ) -> admin_pb2.ImportLicenceResponse:
        view = await self.service.import_licence(
            request.licence_text, source="import", actor=actor_of(context)
        )
        return admin_pb2.ImportLicenceResponse(licence=self._detail(view))

    @translated
    async def ClearLicence(
        self, request: admin_pb2.ClearLicenceRequest, context: Context
    ) -> admin_pb2.ClearLicenceResponse:
        view = await self.service.clear_licence(actor=actor_of(context))
        return admin_pb2.ClearLicenceResponse(licence=self._detail(view))

    @translated
    async def SetActiveSeats(
        self, request: admin_pb2.SetActiveSeatsRequest, context: Context
    ) -> admin_pb2.SetActiveSeatsResponse:
        view = await self.service.set_active_seats(request.seats, actor=actor_of(context))
        return admin_pb2.SetActiveSeatsResponse(licence=self._detail(view))

    @translated
    async def LicenceHistory(
        self, request: admin_pb2.LicenceHistoryRequest, context: Context
    ) -> admin_pb2.LicenceHistoryResponse:
        entries = [
            types_pb2.LicenceHistoryEntry(
                serial=e["serial"],
                source=e["source"],
                by=e["by"],
                at=convert.timestamp(datetime.fromisoformat(e["at"])),
                previous_serial=e["previous_serial"],
            )
            for e in self.service.store.licence_history()
        ]
        return admin_pb2.LicenceHistoryResponse(entries=entries)

    @translated
    async def ReadJournal(
        self, request: admin_pb2.ReadJournalRequest, context: Context
    ) -> admin_pb2.ReadJournalResponse:
        require(actor_of(context), READ_ROLES, "read the journal")
        limit = min(request.limit or 100, 1000)
        found, more = self.service.store.read_journal(
            request.after_seq, limit, journal_filter(request.filter)
        )
        return admin_pb2.ReadJournalResponse(
            entries=[journal_entry(*f) for f in found],
            next_after_seq=found[-1][0] if found else request.after_seq,
            more=more,
        )

    @translated
    async def WatchJournal(  # type: ignore[override]
        self, request: admin_pb2.WatchJournalRequest, context: Context
    ) -> None:
        require(actor_of(context), READ_ROLES, "watch the journal")
        keep = journal_filter(request.filter)
        after = request.after_seq
        while True:
            # Take the event before reading, so a commit in between still wakes us.
            changed = self.service.journal_changed
            found, more = self.service.store.read_journal(after, 500, keep)
            for seq, raw, entry in found:
                await context.write(
                    admin_pb2.WatchJournalResponse(entry=journal_entry(seq, raw, entry))
                )
                after = seq
            if not more:
                await changed.wait()

    @translated
    async def VerifyJournal(
        self, request: admin_pb2.VerifyJournalRequest, context: Context
    ) -> admin_pb2.VerifyJournalResponse:
        require(actor_of(context), READ_ROLES, "verify the journal")
        count, broken, last = self.service.store.verify_journal()
        return admin_pb2.VerifyJournalResponse(
            intact=broken is None, entries=count, first_broken_seq=broken or 0, last_seq=last
        )
