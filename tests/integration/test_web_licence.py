"""The licence screen's vendor actions against the real cloud endpoint (grpc.aio on port 0):
sync now, and the prorated quote shown before anything changes."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from seatd.cloudsync import CloudSync
from seatd.service import SeatService
from tests.fakes import FakeClock
from tests.integration import test_cloud_sync as with_cloud
from tests.web import login, tokens, web_client

# The cloud endpoint, the licensed daemon and its syncer of the cloud sync tests.
clock, ledger, cloud, daemon, sync = (
    with_cloud.clock,
    with_cloud.ledger,
    with_cloud.cloud,
    with_cloud.daemon,
    with_cloud.sync,
)


@dataclass
class Vendor:
    daemon: SeatService
    sync: CloudSync
    cloud: with_cloud.Cloud
    clock: FakeClock


@pytest.fixture
async def vendor(
    daemon: SeatService, sync: CloudSync, cloud: with_cloud.Cloud, clock: FakeClock
) -> Vendor:
    """A daemon registered with the vendor's cloud (a paid 2-seat subscription)."""
    await sync.register(with_cloud.subscribe(cloud.ledger))
    return Vendor(daemon, sync, cloud, clock)


async def test_a_quote_comes_before_the_order_and_orders_nothing(vendor: Vendor) -> None:
    """Ordering 2 seats first shows the vendor's prorated amounts with VAT and orders nothing;
    confirming places the order (pending until paid); the seats change only once it is paid."""
    before = vendor.daemon.entitlement.view()
    token = (await tokens(vendor.daemon))["buyer"]
    async with web_client(vendor.daemon, vendor.clock, cloud=vendor.sync) as client:
        csrf = await login(client, token)
        quoted = await client.post("/licence/quote", data={"csrf_token": csrf, "seats": "2"})
        html = await quoted.text()
        assert quoted.status == 200, html
        assert "Quote for 2 more seats" in html and "Amount incl. VAT" in html and "€" in html
        assert 'action="/licence/order"' in html and 'id="order-id"' not in html
        ordered = await client.post("/licence/order", data={"csrf_token": csrf, "seats": "2"})
        html = await ordered.text()
    assert ordered.status == 200, html
    found = re.search(r'<code id="order-id">([^<]+)</code>', html)
    assert found, html
    assert vendor.cloud.ledger.order(found.group(1))["status"] == "pending"
    after = vendor.daemon.entitlement.view()
    assert (after.seats_purchased, after.seat_cap) == (before.seats_purchased, before.seat_cap)


async def test_sync_now_syncs_and_says_so(vendor: Vendor) -> None:
    """The Sync now button syncs with the vendor and the licence page says it did."""
    token = (await tokens(vendor.daemon))["admin"]
    async with web_client(vendor.daemon, vendor.clock, cloud=vendor.sync) as client:
        csrf = await login(client, token)
        page = await client.post("/licence/sync", data={"csrf_token": csrf})
        html = await page.text()
    assert page.status == 200, html
    assert "The licence was synchronised with the vendor." in html
    assert "Last successful sync" in html and "Sync now" in html
