"""Keeps the licence current from the vendor's cloud when the LAN has internet.

`run` only sleeps until the next attempt and calls `tick`. A sync sends the base id, the
serial in force, the daemon's version and the usage since the last sync, authenticated by
the installation secret; it receives the signed licence in force, the next one when a later
period is already paid, a signed server time (fed to clock-rollback detection) and the
latest ERP client version. A newer valid licence is installed exactly as an import is; a
licence that starts after today is kept and installed on its start date by the licence
watch, with no further contact; an invalid one is refused and the licence in force stays.
A subscription transferred to another base id ends the licence in force here. Until the
cloud has bound this installation, each sync carries the vendor's registration code.
Offline, nothing changes but the count of failed syncs and the next attempt, which backs off
exponentially (with jitter) up to the sync interval.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

import grpc
import structlog

from seatd import __version__
from seatd.cloud.v1 import cloud_pb2, cloud_pb2_grpc
from seatd.errors import CloudFailed, LicenceRejected
from seatd.licence.document import Licence
from seatd.licence.signing import verify_time
from seatd.model import Actor
from seatd.service import SeatService

log = structlog.get_logger("seatd")

CLOUD = Actor("cloud", "owner")


@dataclass(frozen=True, slots=True)
class CloudConfig:
    # HOST:PORT of the vendor's cloud endpoint; empty means no sync (fully offline).
    url: str = ""
    # Seconds between syncs (6 h), spread by the jitter fraction.
    interval: float = 6 * 3600.0
    jitter: float = 0.1
    # First retry after a failed sync; doubles up to the interval.
    retry: float = 30.0
    timeout: float = 15.0
    # TLS to the cloud: with `ca_file`, trust that CA; with `tls` alone, the system's roots.
    tls: bool = False
    ca_file: str = ""
    # The vendor's one-time code that registers this installation with the cloud (or
    # `seatctl licence register CODE`); needed once, until the cloud has bound it.
    registration_code: str = ""


@dataclass(slots=True)
class SyncState:
    last_success: datetime | None = None
    last_error: str = ""
    failures: int = 0
    total_failures: int = 0
    next_due: float = 0.0
    latest_client_version: str = ""


@dataclass(slots=True)
class CloudSync:
    service: SeatService
    config: CloudConfig
    base_id: str
    secret: str
    rng: random.Random = field(default_factory=random.Random)
    state: SyncState = field(default_factory=SyncState)
    _channel: grpc.aio.Channel | None = None
    # Sent with every sync until one succeeds (the cloud has then bound this installation).
    registration_code: str = ""

    def __post_init__(self) -> None:
        self.registration_code = self.registration_code or self.config.registration_code

    def _stub(self) -> cloud_pb2_grpc.LicenceSyncServiceAsyncStub:
        if not self.config.url:
            raise CloudFailed("no cloud endpoint is configured (cloud.url / --cloud-url)")
        channel = self._channel
        if channel is None:
            if self.config.tls or self.config.ca_file:
                roots = Path(self.config.ca_file).read_bytes() if self.config.ca_file else None
                creds = grpc.ssl_channel_credentials(root_certificates=roots)
                channel = grpc.aio.secure_channel(self.config.url, creds)
            else:
                channel = grpc.aio.insecure_channel(self.config.url)
            self._channel = channel
        return cloud_pb2_grpc.LicenceSyncServiceStub(channel)

    def _installation(self) -> cloud_pb2.Installation:
        return cloud_pb2.Installation(
            base_id=self.base_id, secret=self.secret, registration_code=self.registration_code
        )

    async def register(self, code: str) -> None:
        """Register this installation with the vendor's one-time code, by syncing with it."""
        self.registration_code = code
        await self.tick()
        log.info("cloud.registered", base_id=self.base_id)

    def next_attempt(self) -> datetime | None:
        """Wall time of the next attempt, for display."""
        if not self.config.url:
            return None
        wait = max(0.0, self.state.next_due - self.service.clock.monotonic())
        return self.service.clock.wall() + timedelta(seconds=wait)

    async def tick(self) -> None:
        """Sync now. Raises CloudFailed (offline, refused, or an invalid answer)."""
        book = self.service.book
        assert book is not None
        usage = self.service.usage
        request = cloud_pb2.SyncRequest(
            installation=self._installation(),
            serial_in_force=book.licence.serial if book.licence else "",
            daemon_version=__version__,
            peak_sessions=usage.peak,
            refusals=usage.refusals,
        )
        try:
            answer = await self._stub().Sync(request, timeout=self.config.timeout)
            # A transferred subscription comes with no licence. An older cloud sends only its
            # latest licence, which may start later: sorted by its dates, not by its field.
            moved = answer.transferred if answer.HasField("transferred") else None
            texts = [t for t in (answer.licence_text, answer.next_licence_text) if t]
            checked = [(text, *book.check_any(text)) for text in texts if moved is None]
            self._check_time(answer.server_time)
            installed = staged = False
            if moved is not None:
                await self.service.licence_transferred(
                    moved.to_base_id, moved.at.ToDatetime(tzinfo=UTC), actor=CLOUD
                )
            for text, licence, later in checked:
                if later:
                    staged = await self._stage(text, licence) or staged
                else:
                    installed = await self._install(text, licence) or installed
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.UNAUTHENTICATED:
                # Registration: the cloud's reason says what to do.
                self._failed(f"the cloud at {self.config.url} refused: {exc.details()}")
            self._failed(
                f"the cloud at {self.config.url} cannot be reached or refused: "
                f"{exc.details() or exc.code().name}"
            )
        except LicenceRejected as exc:
            self._failed(f"the cloud sent a licence that was refused: {exc.message}")
        self.registration_code = ""
        self.state.latest_client_version = answer.latest_client_version
        self.state.last_success = self.service.clock.wall()
        self.state.failures, self.state.last_error = 0, ""
        usage.reset(self.service.arbiter.in_use)
        spread = 1 + self.config.jitter * (2 * self.rng.random() - 1)
        self.state.next_due = self.service.clock.monotonic() + self.config.interval * spread
        log.info(
            "cloud.synced",
            serial=book.licence.serial if book.licence else "",
            installed=installed,
            staged=staged,
            next_in=round(self.config.interval * spread),
        )

    def _failed(self, reason: str) -> NoReturn:
        self.state.failures += 1
        self.state.total_failures += 1
        self.state.last_error = reason
        ceiling = min(self.config.interval, self.config.retry * 2 ** min(self.state.failures, 20))
        self.state.next_due = self.service.clock.monotonic() + self.rng.uniform(
            ceiling / 2, ceiling
        )
        log.warning(
            "cloud.sync_failed",
            error=reason,
            failures=self.state.failures,
            action="the licence in force stays",
        )
        raise CloudFailed(reason)

    def _check_time(self, signed: cloud_pb2.SignedTime) -> None:
        book = self.service.book
        assert book is not None
        at = signed.time.ToDatetime(tzinfo=UTC)
        iso = at.isoformat().replace("+00:00", "Z")
        if signed.base_id != self.base_id or not verify_time(
            self.base_id, iso, signed.kid, signed.signature, book.trusted
        ):
            raise LicenceRejected(
                "CLOUD_TIME_UNSIGNED", "its server time is not signed by a trusted vendor key"
            )
        book.time.signed(at, self.service.clock.monotonic())

    async def _install(self, text: str, licence: Licence) -> bool:
        book = self.service.book
        assert book is not None
        if book.licence is not None and licence.serial == book.licence.serial:
            return False
        await self.service.import_licence(text, source="sync", actor=CLOUD)
        return True

    async def _stage(self, text: str, licence: Licence) -> bool:
        book = self.service.book
        assert book is not None
        if book.next is not None and licence.serial == book.next.serial:
            return False
        await self.service.stage_licence(text, source="sync", actor=CLOUD)
        return True

    async def order(self, seats: int, *, quote_only: bool = False) -> cloud_pb2.Order:
        """Order extra seats from the cloud: the prorated quote and an order reference (only
        the quote with `quote_only`)."""
        try:
            answer = await self._stub().OrderSeats(
                cloud_pb2.OrderSeatsRequest(
                    installation=self._installation(), seats=seats, quote_only=quote_only
                ),
                timeout=self.config.timeout,
            )
        except grpc.RpcError as exc:
            raise CloudFailed(
                f"the cloud at {self.config.url} did not take the order: "
                f"{exc.details() or exc.code().name}"
            ) from None
        return answer.order

    async def run(self) -> None:
        while True:
            await asyncio.sleep(max(0.0, self.state.next_due - self.service.clock.monotonic()))
            try:
                await self.tick()
            except CloudFailed:
                pass
            except Exception:
                log.exception("cloud.sync_crashed")
                self.state.next_due = self.service.clock.monotonic() + self.config.retry

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
