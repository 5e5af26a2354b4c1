"""The daemon's sync against the real cloud endpoint (grpc.aio on port 0), both on real LMDB
in tmp_path and driven by one fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from seatd.cloud import server as cloud_server
from seatd.cloud.ledger import Ledger
from seatd.cloud.pricing import PriceTable
from seatd.cloudsync import CloudConfig, CloudSync
from seatd.entitlement import Edition, Licensee, Mode, Period, Status
from seatd.errors import CloudFailed, LicenceRefusesGrant, SeatsExhausted
from seatd.licence.watch import LicenceWatch
from seatd.service import LicenceNotice, SeatService
from seatd.transport.status import detail_of
from tests.fakes import FakeClock
from tests.integration.conftest import stop_service
from tests.integration.test_licence_service import licensed, request
from tests.licences import BASE_ID, VENDOR

SECRET = "s" * 32


@dataclass
class Cloud:
    ledger: Ledger
    server: grpc.aio.Server
    url: str


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def ledger(tmp_path: Path, clock: FakeClock) -> Iterator[Ledger]:
    books = Ledger(tmp_path / "cloud", VENDOR, PriceTable.load(), clock)
    yield books
    books.close()


@pytest.fixture
async def cloud(ledger: Ledger) -> AsyncIterator[Cloud]:
    server, port, checks = cloud_server.build(
        ledger, "127.0.0.1:0", payment_token="", tls_cert=None, tls_key=None
    )
    await server.start()
    await checks.set(health_pb2.HealthCheckResponse.SERVING)
    yield Cloud(ledger, server, f"127.0.0.1:{port}")
    await server.stop(0)


@pytest.fixture
async def daemon(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SeatService]:
    service = await licensed(tmp_path / "daemon", clock)
    yield service
    stop_service(service)
    service.store.close()


async def syncer(service: SeatService, cloud: Cloud) -> AsyncIterator[CloudSync]:
    sync = CloudSync(service, CloudConfig(url=cloud.url, timeout=5), BASE_ID, SECRET)
    try:
        yield sync
    finally:
        await sync.close()


@pytest.fixture
async def sync(daemon: SeatService, cloud: Cloud) -> AsyncIterator[CloudSync]:
    async for s in syncer(daemon, cloud):
        yield s


def subscribe(ledger: Ledger) -> str:
    """A paid subscription for the daemon's base id; returns its registration code."""
    order = ledger.subscribe(
        base_id=BASE_ID,
        licensee=Licensee("ANYWAY SARL", country="FRA"),
        edition=Edition.ENTERPRISE,
        mode=Mode.LOCAL,
        period=Period.ANNUAL,
        seats=2,
        country="FR",
    )
    ledger.mark_paid(str(order["order_id"]))
    return str(order["registration_code"])


def move_to(clock: FakeClock, when: datetime) -> None:
    clock.advance((when - clock.wall()).total_seconds())


def paid_early_renewal(ledger: Ledger, clock: FakeClock) -> str:
    """Half-way through the year, the next year is paid: its licence starts on 2027-12-01."""
    move_to(clock, datetime(2027, 6, 1, 9, 0, tzinfo=UTC))
    order = ledger.renew(BASE_ID)
    return str(ledger.mark_paid(str(order["order_id"]))["licence_serial"])


async def test_sync_keeps_the_period_in_force_after_an_early_renewal(
    daemon: SeatService, sync: CloudSync, cloud: Cloud, clock: FakeClock
) -> None:
    """A renewal paid early: the sync succeeds, the licence in force stays, the next is kept."""
    await sync.register(subscribe(cloud.ledger))
    assert daemon.book is not None and daemon.book.licence is not None
    in_force = daemon.book.licence.serial
    renewal = paid_early_renewal(cloud.ledger, clock)
    await sync.tick()
    assert daemon.book.licence.serial == in_force
    assert daemon.book.next is not None and daemon.book.next.serial == renewal
    staged = [e for e in daemon.store.journal_entries() if e["kind"] == "licence_staged"]
    assert [(e["serial"], e["valid_from"]) for e in staged] == [(renewal, "2027-12-01")]


async def test_next_licence_is_installed_on_its_start_date_without_the_cloud(
    daemon: SeatService, sync: CloudSync, cloud: Cloud, clock: FakeClock
) -> None:
    """With the cloud gone, the kept licence is installed on its day, journaled, announced."""
    await sync.register(subscribe(cloud.ledger))
    renewal = paid_early_renewal(cloud.ledger, clock)
    await sync.tick()
    await cloud.server.stop(0)
    assert daemon.book is not None
    a = (await daemon.acquire(request("AA"))).session
    _, stream = daemon.attach(a.id, a.token)
    watch = LicenceWatch(daemon, daemon.book, 60)
    move_to(clock, datetime(2027, 11, 30, 23, 59, tzinfo=UTC))
    daemon.arbiter.renew(a.id, a.token, daemon.now())
    await watch.tick()
    assert daemon.book.licence is not None and daemon.book.licence.serial != renewal
    move_to(clock, datetime(2027, 12, 1, 0, 1, tzinfo=UTC))
    daemon.arbiter.renew(a.id, a.token, daemon.now())
    await watch.tick()
    assert daemon.book.licence.serial == renewal and daemon.book.next is None
    notice = stream.outbox.get_nowait()
    assert isinstance(notice, LicenceNotice) and notice.licence.serial == renewal
    assert str(notice.licence.valid_until) == "2028-12-01"
    history = daemon.store.licence_history()[-1]
    assert (history["serial"], history["source"], history["by"]) == (renewal, "scheduled", "seatd")


async def restarted(
    path: Path, cloud: Cloud, clock: FakeClock, then: Callable[[], Awaitable[object]]
) -> SeatService:
    """A daemon that registers and syncs, syncs again after `then`, stops, and starts again."""
    first = await licensed(path, clock)
    try:
        code = subscribe(cloud.ledger)
        async for sync in syncer(first, cloud):
            await sync.register(code)
            await then()
            await sync.tick()
    finally:
        stop_service(first)
        first.store.close()
    return await licensed(path, clock)


async def test_kept_licence_survives_a_restart(
    tmp_path: Path, cloud: Cloud, clock: FakeClock
) -> None:
    """The licence kept for later is stored: after a restart it is still installed on its day."""
    renewal: list[str] = []

    async def pay() -> None:
        renewal.append(paid_early_renewal(cloud.ledger, clock))

    again = await restarted(tmp_path / "daemon", cloud, clock, pay)
    try:
        assert again.book is not None and again.book.next is not None
        assert again.book.next.serial == renewal[0]
        move_to(clock, datetime(2027, 12, 2, tzinfo=UTC))
        assert await again.install_next()
        assert again.entitlement.view().serial == renewal[0]
    finally:
        stop_service(again)
        again.store.close()


async def test_unregistered_installation_is_refused_with_what_to_do(
    daemon: SeatService, sync: CloudSync, cloud: Cloud
) -> None:
    """A subscribed base id: a sync without the registration code fails, says to register,
    and installs nothing."""
    subscribe(cloud.ledger)
    with pytest.raises(CloudFailed, match="seatctl licence register CODE"):
        await sync.tick()
    assert "not registered" in sync.state.last_error
    assert daemon.entitlement.view().serial == ""


async def test_registered_installation_syncs_without_the_code(
    daemon: SeatService, sync: CloudSync, cloud: Cloud
) -> None:
    """Registering binds the installation and installs the licence; later syncs need no code."""
    await sync.register(subscribe(cloud.ledger))
    assert daemon.entitlement.view().serial != ""
    assert sync.registration_code == ""
    await sync.tick()
    assert [e["kind"] for e in cloud.ledger.audit_log(BASE_ID)][-1] == "installation_registered"


async def test_code_from_the_config_registers_at_the_first_sync(
    daemon: SeatService, cloud: Cloud
) -> None:
    """`cloud.registration_code` in the config is sent until the first sync succeeds."""
    code = subscribe(cloud.ledger)
    config = CloudConfig(url=cloud.url, timeout=5, registration_code=code)
    sync = CloudSync(daemon, config, BASE_ID, SECRET)
    try:
        await sync.tick()
    finally:
        await sync.close()
    assert daemon.entitlement.view().serial != ""


async def test_cloud_serves_health_for_each_service_and_reflection(cloud: Cloud) -> None:
    """Health answers SERVING for the empty name and each cloud service; reflection lists them."""
    async with grpc.aio.insecure_channel(cloud.url) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "seatd.cloud.v1.LicenceSyncService", "seatd.cloud.v1.PaymentService"):
            answer = await health.Check(health_pb2.HealthCheckRequest(service=name))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, name
        call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo()
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        listed = await call.read()
        call.cancel()
    names = {s.name for s in listed.list_services_response.service}
    assert {"seatd.cloud.v1.LicenceSyncService", "seatd.cloud.v1.PaymentService"} <= names
    assert "grpc.health.v1.Health" in names


NEW_BASE = "99999999999999999"


async def test_transfer_ends_the_old_base_licence_at_its_next_sync(
    daemon: SeatService, sync: CloudSync, cloud: Cloud, clock: FakeClock
) -> None:
    """After a transfer the old base is told where and when its subscription went: its licence
    ends (journaled once, workstations told, no new grants), and a kept renewal is dropped."""
    await sync.register(subscribe(cloud.ledger))
    paid_early_renewal(cloud.ledger, clock)
    await sync.tick()
    a = (await daemon.acquire(request("AA"))).session
    _, stream = daemon.attach(a.id, a.token)
    cloud.ledger.transfer(BASE_ID, NEW_BASE)
    await sync.tick()
    await sync.tick()
    view = daemon.entitlement.view()
    assert (view.status, view.transferred_to) == (Status.TRANSFERRED, NEW_BASE)
    assert view.transferred_at == clock.wall().replace(microsecond=0)
    assert daemon.book is not None and daemon.book.next is None
    notice = stream.outbox.get_nowait()
    assert isinstance(notice, LicenceNotice) and notice.licence.status is Status.TRANSFERRED
    with pytest.raises(LicenceRefusesGrant, match=f"moved to base id {NEW_BASE}"):
        await daemon.acquire(request("BB"))
    moved = [e for e in daemon.store.journal_entries() if e["kind"] == "licence_transferred"]
    assert [e["to_base_id"] for e in moved] == [NEW_BASE]


async def test_transfer_is_remembered_across_a_restart(
    tmp_path: Path, cloud: Cloud, clock: FakeClock
) -> None:
    """The transferred state is stored: a restarted daemon still refuses new grants."""

    async def transfer() -> None:
        cloud.ledger.transfer(BASE_ID, NEW_BASE)

    again = await restarted(tmp_path / "daemon", cloud, clock, transfer)
    try:
        assert again.entitlement.view().status is Status.TRANSFERRED
        assert again.entitlement.grant_refusal() is not None
    finally:
        stop_service(again)
        again.store.close()


async def test_auto_renew_off_reaches_the_daemon_at_the_next_sync(
    daemon: SeatService, sync: CloudSync, cloud: Cloud
) -> None:
    """Stopping auto-renew in the cloud re-signs the licence in force; the sync installs it."""
    await sync.register(subscribe(cloud.ledger))
    assert daemon.entitlement.view().auto_renew is True
    cloud.ledger.set_auto_renew(BASE_ID, False)
    await sync.tick()
    view = daemon.entitlement.view()
    assert view.auto_renew is False and str(view.valid_until) == "2027-12-01"
    await sync.tick()
    assert len(cloud.ledger.licence_history(BASE_ID)) == 2


async def test_order_url_is_carried_by_the_licence_and_the_refusal_at_capacity(
    daemon: SeatService, sync: CloudSync, cloud: Cloud
) -> None:
    """The cloud's order URL reaches the licence in force (re-signed when it changes) and a
    refusal at capacity carries the licence summary with it."""
    cloud.ledger.set_order_url("https://vendor.example/order")
    await sync.register(subscribe(cloud.ledger))
    assert daemon.entitlement.view().order_url == "https://vendor.example/order"
    cloud.ledger.set_order_url("https://vendor.example/buy")
    await sync.tick()
    assert daemon.entitlement.view().order_url == "https://vendor.example/buy"
    await daemon.acquire(request("AA"))
    await daemon.acquire(request("BB"))
    with pytest.raises(SeatsExhausted) as full:
        await daemon.acquire(request("CC"))
    assert full.value.licence is not None
    assert full.value.licence.order_url == "https://vendor.example/buy"
    assert (
        detail_of(full.value, daemon.clock.wall()).licence.order_url == full.value.licence.order_url
    )


async def test_a_quote_prices_extra_seats_without_ordering(
    daemon: SeatService, sync: CloudSync, cloud: Cloud
) -> None:
    """quote_only asks the cloud the prorated price and records no order; ordering then
    asks the same price."""
    await sync.register(subscribe(cloud.ledger))
    before = cloud.ledger.list_orders(BASE_ID)
    quote = await sync.order(2, quote_only=True)
    assert (quote.order_id, quote.status, quote.seats) == ("", "quote", 2)
    assert cloud.ledger.list_orders(BASE_ID) == before
    order = await sync.order(2)
    assert order.status == "pending" and order.order_id
    assert (order.amount_incl_vat, order.days_left) == (quote.amount_incl_vat, quote.days_left)
