"""AdminService: see and manage the seats (local unix socket by default).

Reads that scan the store (journal, verification, licence history, tokens) run in a worker
thread with their own LMDB read transaction, so a long admin call never holds up the event
loop the workstations are served on.
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
import structlog
from seatclient.v1 import admin_pb2, admin_pb2_grpc, types_pb2

from seatd import __version__, auth, journal
from seatd.cloudsync import CloudSync
from seatd.entitlement import LicenceView
from seatd.errors import CloudFailed, NotAllowed, Unauthenticated
from seatd.model import Actor
from seatd.service import SeatService
from seatd.transport import convert, validate
from seatd.transport.status import translated

log = structlog.get_logger("seatd")

Context = grpc.aio.ServicerContext[Any, Any]


A = TypeVar("A", bound="AdminServicer")
R = TypeVar("R")


def authorized(
    method: Callable[[A, Any, Context, Actor], Awaitable[R]],
) -> Callable[[A, Any, Context], Awaitable[R]]:
    """Identify the caller and check the role table (seatd.auth), then the request's fields,
    before the RPC runs: a caller without the role is told so whatever it sent."""

    @functools.wraps(method)
    async def wrapper(self: A, request: Any, context: Context) -> R:
        actor = await self.authorize(context, method.__name__)
        validate.check(request)
        return await method(self, request, context, actor)

    return wrapper


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
    def __init__(
        self,
        service: SeatService,
        cloud: CloudSync | None = None,
        identities: dict[str, str] | None = None,
    ) -> None:
        self.service = service
        self.cloud = cloud
        self.identities = identities or {}

    def identify(self, context: Context) -> Actor:
        metadata = {k: v for k, v in context.invocation_metadata() or ()}
        if context.peer().startswith("unix:"):
            return auth.local_actor(str(metadata.get(auth.USER_KEY, "")))
        names = context.auth_context().get("x509_common_name")
        if names:
            return auth.certificate_actor(next(iter(names)).decode(), self.identities)
        bearer = str(metadata.get("authorization", ""))
        if bearer.startswith("Bearer "):
            actor = self.service.token_actor(bearer.removeprefix("Bearer "))
            if actor is None:
                raise Unauthenticated("the admin token is unknown or revoked")
            return actor
        raise Unauthenticated(
            "remote administration needs a client certificate or a token "
            "(seatctl token create on the server)"
        )

    async def authorize(self, context: Context, rpc: str) -> Actor:
        actor = self.identify(context)
        try:
            auth.authorize(actor, rpc)
        except NotAllowed as denied:
            await self.service.journal_denied(actor, rpc, denied.needed)
            raise
        return actor

    @translated
    @authorized
    async def CreateToken(
        self, request: admin_pb2.CreateTokenRequest, context: Context, actor: Actor
    ) -> admin_pb2.CreateTokenResponse:
        token = await self.service.create_token(request.name, request.role, actor=actor)
        return admin_pb2.CreateTokenResponse(token=token)

    @translated
    @authorized
    async def ListTokens(
        self, request: admin_pb2.ListTokensRequest, context: Context, actor: Actor
    ) -> admin_pb2.ListTokensResponse:
        tokens = []
        for t in await asyncio.to_thread(self.service.store.tokens):
            info = admin_pb2.TokenInfo(
                name=t["name"],
                role=t["role"],
                created_by=t["created_by"],
                created_at=convert.timestamp(datetime.fromisoformat(t["created_at"])),
            )
            if t["revoked_at"]:
                info.revoked_at.CopyFrom(convert.timestamp(datetime.fromisoformat(t["revoked_at"])))
            tokens.append(info)
        return admin_pb2.ListTokensResponse(tokens=tokens)

    @translated
    @authorized
    async def RevokeToken(
        self, request: admin_pb2.RevokeTokenRequest, context: Context, actor: Actor
    ) -> admin_pb2.RevokeTokenResponse:
        await self.service.revoke_token(request.name, actor=actor)
        return admin_pb2.RevokeTokenResponse()

    @translated
    @authorized
    async def ListSessions(
        self, request: admin_pb2.ListSessionsRequest, context: Context, actor: Actor
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
            store=convert.store_usage(self.service.store.capacity),
        )
        cap = self.service.entitlement.seat_cap()
        if cap is not None:
            response.seat_cap = cap
        return response

    @translated
    @authorized
    async def Evict(
        self, request: admin_pb2.EvictRequest, context: Context, actor: Actor
    ) -> admin_pb2.EvictResponse:
        ending = await self.service.evict(
            request.session_id, reason=request.reason, by=actor.name, claimed=actor.claimed
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
        if book is not None and book.next is not None:
            detail.next_serial = book.next.serial
            detail.next_valid_from.CopyFrom(convert.day(book.next.valid_from))
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
    @authorized
    async def SyncLicence(
        self, request: admin_pb2.SyncLicenceRequest, context: Context, actor: Actor
    ) -> admin_pb2.SyncLicenceResponse:
        await self._cloud().tick()
        return admin_pb2.SyncLicenceResponse(licence=self._detail(self.service.entitlement.view()))

    @translated
    @authorized
    async def RegisterInstallation(
        self, request: admin_pb2.RegisterInstallationRequest, context: Context, actor: Actor
    ) -> admin_pb2.RegisterInstallationResponse:
        await self._cloud().register(request.registration_code.strip())
        return admin_pb2.RegisterInstallationResponse(
            licence=self._detail(self.service.entitlement.view())
        )

    @translated
    @authorized
    async def OrderSeats(
        self, request: admin_pb2.OrderSeatsRequest, context: Context, actor: Actor
    ) -> admin_pb2.OrderSeatsResponse:
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
    @authorized
    async def GetLicence(
        self, request: admin_pb2.AdminServiceGetLicenceRequest, context: Context, actor: Actor
    ) -> admin_pb2.AdminServiceGetLicenceResponse:
        view = self.service.entitlement.view()
        return admin_pb2.AdminServiceGetLicenceResponse(licence=self._detail(view))

    @translated
    @authorized
    async def ImportLicence(
        self, request: admin_pb2.ImportLicenceRequest, context: Context, actor: Actor
    ) -> admin_pb2.ImportLicenceResponse:
        view = await self.service.import_licence(request.licence_text, source="import", actor=actor)
        return admin_pb2.ImportLicenceResponse(licence=self._detail(view))

    @translated
    @authorized
    async def ClearLicence(
        self, request: admin_pb2.ClearLicenceRequest, context: Context, actor: Actor
    ) -> admin_pb2.ClearLicenceResponse:
        view = await self.service.clear_licence(actor=actor)
        return admin_pb2.ClearLicenceResponse(licence=self._detail(view))

    @translated
    @authorized
    async def SetActiveSeats(
        self, request: admin_pb2.SetActiveSeatsRequest, context: Context, actor: Actor
    ) -> admin_pb2.SetActiveSeatsResponse:
        view = await self.service.set_active_seats(request.seats, actor=actor)
        return admin_pb2.SetActiveSeatsResponse(licence=self._detail(view))

    @translated
    @authorized
    async def LicenceHistory(
        self, request: admin_pb2.LicenceHistoryRequest, context: Context, actor: Actor
    ) -> admin_pb2.LicenceHistoryResponse:
        entries = [
            types_pb2.LicenceHistoryEntry(
                serial=e["serial"],
                source=e["source"],
                by=e["by"],
                at=convert.timestamp(datetime.fromisoformat(e["at"])),
                previous_serial=e["previous_serial"],
            )
            for e in await asyncio.to_thread(self.service.store.licence_history)
        ]
        return admin_pb2.LicenceHistoryResponse(entries=entries)

    @translated
    @authorized
    async def ReadJournal(
        self, request: admin_pb2.ReadJournalRequest, context: Context, actor: Actor
    ) -> admin_pb2.ReadJournalResponse:
        limit = request.limit or 100
        keep = journal_filter(request.filter)
        found, more = await asyncio.to_thread(
            self.service.store.read_journal, request.after_seq, limit, keep
        )
        return admin_pb2.ReadJournalResponse(
            entries=[journal_entry(*f) for f in found],
            next_after_seq=found[-1][0] if found else request.after_seq,
            more=more,
        )

    @translated
    @authorized
    async def WatchJournal(  # type: ignore[override]
        self, request: admin_pb2.WatchJournalRequest, context: Context, actor: Actor
    ) -> None:
        keep = journal_filter(request.filter)
        after = request.after_seq
        while True:
            # Take the event before reading, so a commit in between still wakes us.
            changed = self.service.journal_changed
            found, more = await asyncio.to_thread(self.service.store.read_journal, after, 500, keep)
            for seq, raw, entry in found:
                await context.write(
                    admin_pb2.WatchJournalResponse(entry=journal_entry(seq, raw, entry))
                )
                after = seq
            if not more:
                await changed.wait()

    @translated
    @authorized
    async def VerifyJournal(
        self, request: admin_pb2.VerifyJournalRequest, context: Context, actor: Actor
    ) -> admin_pb2.VerifyJournalResponse:
        count, broken, last = await asyncio.to_thread(self.service.store.verify_journal)
        return admin_pb2.VerifyJournalResponse(
            intact=broken is None, entries=count, first_broken_seq=broken or 0, last_seq=last
        )

    @translated
    @authorized
    async def Backup(  # type: ignore[override]
        self, request: admin_pb2.BackupRequest, context: Context, actor: Actor
    ) -> None:
        store = self.service.store
        with tempfile.TemporaryDirectory(prefix="backup-", dir=store.path) as tmp:
            copy = await asyncio.to_thread(store.backup, Path(tmp))
            log.info("admin.backup", by=actor.name, bytes=copy.stat().st_size)
            with copy.open("rb") as data:
                while chunk := await asyncio.to_thread(data.read, 1 << 20):
                    await context.write(admin_pb2.BackupResponse(chunk=chunk))
