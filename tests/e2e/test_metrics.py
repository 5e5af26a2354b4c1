"""Prometheus metrics end to end."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable

import pytest
from seatclient import SeatClient, SeatsExhausted

from tests.e2e.conftest import Daemon, wait_for

pytestmark = pytest.mark.e2e


def scrape(daemon: Daemon) -> str:
    found = re.search(
        r"event=daemon\.metrics listen=127\.0\.0\.1:(\d+)", daemon.log_path.read_text()
    )
    assert found, daemon.log_path.read_text()
    with urllib.request.urlopen(f"http://127.0.0.1:{found.group(1)}/metrics", timeout=5) as r:
        return r.read().decode()  # type: ignore[no-any-return]


def value(text: str, series: str) -> float:
    line = next(l for l in text.splitlines() if l.startswith(series + " "))  # noqa: E741
    return float(line.split()[-1])


def test_metrics_count_seats_acquires_and_evictions(make_daemon: Callable[..., Daemon]) -> None:
    """/metrics shows seats in use and active, acquires by result, evictions by kind,
    streams, RPC latency and the licence."""
    daemon = make_daemon("--dev-seats", "1")
    with SeatClient(daemon.target) as client:
        seat = client.acquire(user_code="AA")
        with pytest.raises(SeatsExhausted):
            client.acquire(user_code="BB")
        # A refusal's latency is observed as its handler ends, which may be just after the
        # client has its answer: wait for that observation, not a fixed time.
        acquires = 'seatd_rpc_duration_seconds_count{method="Acquire"} 2.0'
        text = wait_for(lambda: acquires in (t := scrape(daemon)) and t, 10, acquires)
        assert value(text, 'seatd_seats{kind="in_use"}') == 1
        assert value(text, 'seatd_seats{kind="active"}') == 1
        assert value(text, 'seatd_acquires_total{result="granted"}') == 1
        assert value(text, 'seatd_acquires_total{result="refused"}') == 1
        assert 'seatd_licence_info{edition="STANDARD"' in text
        assert daemon.ctl("evict", str(seat.session_id)).returncode == 0
        after = scrape(daemon)
        assert value(after, 'seatd_evictions_total{kind="admin"}') == 1
        # The evicted stream has ended: a stream's lifetime is no RPC latency.
        assert 'method="Keepalive"' not in after
