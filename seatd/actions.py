"""Every admin action, once, for every transport: gRPC's AdminService and the web console.

An action is named as its AdminService RPC and takes the caller (an `Actor` its transport has
identified) and the RPC's request message; it returns the RPC's response message. Before any
work, `seatd.auth`'s role table decides (a denial is journaled, coalesced per actor) and then
every request field is checked (`seatd.transport.validate`), so a caller without the role is
told so whatever it sent, on every transport alike. The transports only identify the caller,
parse, call, and map errors (gRPC status / HTTP status).

Reads that scan the store (journal, verification, licence history, tokens) run in a worker
thread with their own LMDB read transaction, so a long admin call never holds up the event
loop the workstations are served on.
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import structlog
from google.protobuf.message import Message
from seatclient.v1 import admin_pb2, types_pb2

from seatd import __version__, auth, journal
from seatd import policy as policy_mod
from seatd.arbiter import Assessment
from seatd.cloudsync import CloudSync
from seatd.entitlement import LicenceView
from seatd.errors import CloudFailed, ConfigError, InvalidArgument, NotAllowed, Unavailable
from seatd.model import Actor, Session
from seatd.policy import Policy
from seatd.service import SeatService
from seatd.transport import convert, validate

log = structlog.get_logger("seatd")

Q = TypeVar("Q", bound=Message)
R = TypeVar("R")


class ConsoleLinks(Protocol):
    """Where one-time web console logins are made (the web listener, when it runs)."""

    def issue(self, actor: Actor) -> tuple[str, datetime]: ...


def action(
    method: Callable[[AdminActions, Actor, Q], Awaitable[R]],
) -> Callable[[AdminActions, Actor, Q], Awaitable[R]]:
    """Authorize by the role table, then check the request's fields, then act."""
    name = method.__name__

    @functools.wraps(method)
    async def wrapper(self: AdminActions, actor: Actor, request: Q) -> R:
        await self.authorize(actor, name)
        validate.check(request)
        return await method(self, actor, request)

    return wrapper


def _group_name(p: Policy, s: Session) -> str:
    group = p.group_of(s.holder)
    return group.name if group is not None else ""


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


class AdminActions:
    def __init__(
        self,
        service: SeatService,
        cloud: CloudSync | None = None,
        console: ConsoleLinks | None = None,
    ) -> None:
        self.service = service
        self.cloud = cloud
        # Set once the web listener runs (it is built after the admin servers).
        self.console = console

    def may(self, actor: Actor, name: str) -> bool:
        """Whether the role table lets `actor` take action `name` (to offer only those)."""
        return actor.role in auth.TABLE[name]

    async def authorize(self, actor: Actor, name: str) -> None:
        try:
            auth.authorize(actor, name)
        except NotAllowed as denied:
            await self.service.journal_denied(actor, name, denied.needed)
            raise

    # -- sessions -----------------------------------------------------------------------------

    @action
    async def ListSessions(
        self, actor: Actor, request: admin_pb2.ListSessionsRequest
    ) -> admin_pb2.ListSessionsResponse:
        service = self.service
        now = service.clock.wall()
        local = now.astimezone()
        offset = local.utcoffset()
        response = admin_pb2.ListSessionsResponse(
            sessions=self._sessions(now),
            in_use=service.arbiter.in_use,
            server_time=convert.timestamp(now),
            server_utc_offset_seconds=int(offset.total_seconds()) if offset else 0,
            server_timezone=local.tzname() or "",
            daemon_version=__version__,
            daemon_started_at=convert.timestamp(service.started_at),
            waiting=service.waiting,
            store=convert.store_usage(service.store.capacity),
            queue=[
                admin_pb2.QueuedAcquire(
                    position=position,
                    user_code=waiter.holder.user_code,
                    user_name=waiter.holder.user_name,
                    hostname=waiter.holder.hostname,
                    ip=waiter.holder.ip,
                    client_version=waiter.holder.client_version,
                    queued_at=convert.timestamp(waiter.queued_at),
                    waited=convert.duration(max(0.0, (now - waiter.queued_at).total_seconds())),
                )
                for position, waiter in enumerate(service.queue, 1)
            ],
        )
        cap = service.entitlement.seat_cap()
        if cap is not None:
            response.seat_cap = cap
        return response

    def _sessions(self, now: datetime) -> list[types_pb2.Session]:
        arbiter = self.service.arbiter
        mono = self.service.clock.monotonic()
        return [
            convert.session(
                s, now, group=_group_name(arbiter.policy, s), idle=arbiter.idle_for(s, mono)
            )
            for s in arbiter.sessions()
        ]

    @action
    async def GetPolicy(
        self, actor: Actor, request: admin_pb2.GetPolicyRequest
    ) -> admin_pb2.GetPolicyResponse:
        return self._policy(self.service.arbiter.policy)[0]

    @action
    async def CheckPolicy(
        self, actor: Actor, request: admin_pb2.CheckPolicyRequest
    ) -> admin_pb2.CheckPolicyResponse:
        try:
            checked = policy_mod.parse_text(request.toml)
        except ConfigError as exc:
            raise InvalidArgument("toml", str(exc)) from None
        shown, assessment = self._policy(checked)
        now = self.service.clock.wall()
        return admin_pb2.CheckPolicyResponse(
            policy=shown,
            breaches=[
                admin_pb2.PolicyBreach(
                    session=convert.session(s, now, group=_group_name(checked, s)),
                    reason=refused.reason,
                    rule=refused.rule,
                    group=refused.group,
                    message=refused.message,
                )
                for s, refused in assessment.breaches
            ],
        )

    def _policy(self, p: Policy) -> tuple[admin_pb2.GetPolicyResponse, Assessment]:
        arbiter = self.service.arbiter
        cap = self.service.entitlement.seat_cap()
        assessment = arbiter.assess(p, cap)
        return convert.policy(p, assessment, cap, arbiter.in_use), assessment

    @action
    async def Evict(self, actor: Actor, request: admin_pb2.EvictRequest) -> admin_pb2.EvictResponse:
        ending = await self.service.evict(
            request.session_id, reason=request.reason, by=actor.name, claimed=actor.claimed
        )
        return admin_pb2.EvictResponse(ended=convert.ended(ending))

    # -- licence ------------------------------------------------------------------------------

    def detail(self, view: LicenceView) -> types_pb2.LicenceDetail:
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

    @action
    async def GetLicence(
        self, actor: Actor, request: admin_pb2.AdminServiceGetLicenceRequest
    ) -> admin_pb2.AdminServiceGetLicenceResponse:
        view = self.service.entitlement.view()
        return admin_pb2.AdminServiceGetLicenceResponse(licence=self.detail(view))

    @action
    async def SyncLicence(
        self, actor: Actor, request: admin_pb2.SyncLicenceRequest
    ) -> admin_pb2.SyncLicenceResponse:
        await self._cloud().tick()
        return admin_pb2.SyncLicenceResponse(licence=self.detail(self.service.entitlement.view()))

    @action
    async def RegisterInstallation(
        self, actor: Actor, request: admin_pb2.RegisterInstallationRequest
    ) -> admin_pb2.RegisterInstallationResponse:
        await self._cloud().register(request.registration_code.strip())
        return admin_pb2.RegisterInstallationResponse(
            licence=self.detail(self.service.entitlement.view())
        )

    @action
    async def OrderSeats(
        self, actor: Actor, request: admin_pb2.OrderSeatsRequest
    ) -> admin_pb2.OrderSeatsResponse:
        order = await self._cloud().order(request.seats, quote_only=request.quote_only)
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

    @action
    async def ImportLicence(
        self, actor: Actor, request: admin_pb2.ImportLicenceRequest
    ) -> admin_pb2.ImportLicenceResponse:
        view = await self.service.import_licence(request.licence_text, source="import", actor=actor)
        return admin_pb2.ImportLicenceResponse(licence=self.detail(view))

    @action
    async def ClearLicence(
        self, actor: Actor, request: admin_pb2.ClearLicenceRequest
    ) -> admin_pb2.ClearLicenceResponse:
        view = await self.service.clear_licence(actor=actor)
        return admin_pb2.ClearLicenceResponse(licence=self.detail(view))

    @action
    async def SetActiveSeats(
        self, actor: Actor, request: admin_pb2.SetActiveSeatsRequest
    ) -> admin_pb2.SetActiveSeatsResponse:
        view = await self.service.set_active_seats(request.seats, actor=actor)
        return admin_pb2.SetActiveSeatsResponse(licence=self.detail(view))

    @action
    async def LicenceHistory(
        self, actor: Actor, request: admin_pb2.LicenceHistoryRequest
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

    # -- journal ------------------------------------------------------------------------------

    @action
    async def ReadJournal(
        self, actor: Actor, request: admin_pb2.ReadJournalRequest
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

    @action
    async def WatchJournal(
        self, actor: Actor, request: admin_pb2.WatchJournalRequest
    ) -> AsyncIterator[admin_pb2.WatchJournalResponse]:
        """The entries after `after_seq`, then each new one as it commits, for ever."""
        return self._watch(journal_filter(request.filter), request.after_seq)

    async def _watch(
        self, keep: journal.Filter, after: int
    ) -> AsyncIterator[admin_pb2.WatchJournalResponse]:
        while True:
            # Take the event before reading, so a commit in between still wakes us.
            changed = self.service.journal_changed
            found, more = await asyncio.to_thread(self.service.store.read_journal, after, 500, keep)
            for seq, raw, entry in found:
                yield admin_pb2.WatchJournalResponse(entry=journal_entry(seq, raw, entry))
                after = seq
            if not more:
                await changed.wait()

    @action
    async def VerifyJournal(
        self, actor: Actor, request: admin_pb2.VerifyJournalRequest
    ) -> admin_pb2.VerifyJournalResponse:
        count, broken, last = await asyncio.to_thread(self.service.store.verify_journal)
        return admin_pb2.VerifyJournalResponse(
            intact=broken is None, entries=count, first_broken_seq=broken or 0, last_seq=last
        )

    # -- the web console ---------------------------------------------------------------------

    @action
    async def CreateConsoleLink(
        self, actor: Actor, request: admin_pb2.CreateConsoleLinkRequest
    ) -> admin_pb2.CreateConsoleLinkResponse:
        if self.console is None:
            raise Unavailable(
                "the web console is not served: set [web] listen in seatd.toml (or "
                "--web-listen) and restart the daemon"
            )
        url, expires = self.console.issue(actor)
        return admin_pb2.CreateConsoleLinkResponse(url=url, expires_at=convert.timestamp(expires))

    # -- tokens and backups -------------------------------------------------------------------

    @action
    async def CreateToken(
        self, actor: Actor, request: admin_pb2.CreateTokenRequest
    ) -> admin_pb2.CreateTokenResponse:
        token = await self.service.create_token(request.name, request.role, actor=actor)
        return admin_pb2.CreateTokenResponse(token=token)

    @action
    async def ListTokens(
        self, actor: Actor, request: admin_pb2.ListTokensRequest
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

    @action
    async def RevokeToken(
        self, actor: Actor, request: admin_pb2.RevokeTokenRequest
    ) -> admin_pb2.RevokeTokenResponse:
        await self.service.revoke_token(request.name, actor=actor)
        return admin_pb2.RevokeTokenResponse()

    @action
    async def Backup(
        self, actor: Actor, request: admin_pb2.BackupRequest
    ) -> AsyncIterator[admin_pb2.BackupResponse]:
        return self._backup(actor)

    async def _backup(self, actor: Actor) -> AsyncIterator[admin_pb2.BackupResponse]:
        store = self.service.store
        with tempfile.TemporaryDirectory(prefix="backup-", dir=store.path) as tmp:
            copy = await asyncio.to_thread(store.backup, Path(tmp))
            log.info("admin.backup", by=actor.name, bytes=copy.stat().st_size)
            with copy.open("rb") as data:
                while chunk := await asyncio.to_thread(data.read, 1 << 20):
                    yield admin_pb2.BackupResponse(chunk=chunk)
