"""Prometheus metrics on their own address (default loopback), read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from seatd.errors import StateError

if TYPE_CHECKING:
    from seatd.cloudsync import CloudSync
    from seatd.service import SeatService

REGISTRY = CollectorRegistry()
RPC_SECONDS = Histogram(
    "seatd_rpc_duration_seconds",
    "Time to answer a unary RPC, by method.",
    ["method"],
    registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

# Cluster mode: 1 while this instance leads, and how many times it came to lead.
LEADER = Gauge("seatd_leader", "1 while this instance is the cluster's leader.", registry=REGISTRY)
LEADERSHIP_CHANGES = Counter(
    "seatd_leadership_changes",
    "Times this instance became the cluster's leader.",
    registry=REGISTRY,
)
# One group commit in the store: an etcd transaction in cluster mode, an LMDB commit else.
STORE_COMMIT_SECONDS = Histogram(
    "seatd_store_commit_seconds",
    "Time one group commit takes in the store (one etcd transaction in cluster mode).",
    registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    # HOST:PORT for /metrics; empty disables it.
    listen: str = "127.0.0.1:9117"


class SeatCollector(Collector):
    def __init__(self, service: SeatService, cloud: CloudSync | None) -> None:
        self.service = service
        self.cloud = cloud

    def collect(self) -> Iterator[Any]:
        s = self.service
        view = s.entitlement.view()
        seats = GaugeMetricFamily(
            "seatd_seats", "Seats: purchased, active (the cap), in use.", labels=["kind"]
        )
        seats.add_metric(["purchased"], view.seats_purchased)
        if view.seat_cap is not None:
            seats.add_metric(["active"], view.seat_cap)
        seats.add_metric(["in_use"], s.arbiter.in_use)
        seats.add_metric(["waiting"], s.waiting)
        yield seats
        acquires = CounterMetricFamily("seatd_acquires", "Acquire outcomes.", labels=["result"])
        for result, n in s.counters.acquires.items():
            acquires.add_metric([result], n)
        yield acquires
        evictions = CounterMetricFamily("seatd_evictions", "Evictions, by kind.", labels=["kind"])
        for kind, n in s.counters.evictions.items():
            evictions.add_metric([kind], n)
        yield evictions
        yield CounterMetricFamily(
            "seatd_expirations", "Seats freed by the reaper.", value=s.counters.expirations
        )
        yield CounterMetricFamily(
            "seatd_releases", "Seats given back by their workstation.", value=s.counters.releases
        )
        yield GaugeMetricFamily(
            "seatd_keepalive_streams", "Attached keepalive streams.", value=s.stream_count
        )
        room = s.store.capacity
        yield GaugeMetricFamily(
            "seatd_store_used_ratio",
            "Share of store.map_size the state takes (with room held for each live "
            "session's ending); grants stop at 1 - store.reserve.",
            value=room.ratio,
        )
        store_bytes = GaugeMetricFamily(
            "seatd_store_bytes", "The state store: used, current map, ceiling.", labels=["kind"]
        )
        store_bytes.add_metric(["used"], room.used)
        store_bytes.add_metric(["map"], room.map_size)
        store_bytes.add_metric(["ceiling"], room.ceiling)
        yield store_bytes
        info = GaugeMetricFamily(
            "seatd_licence_info",
            "The licence in force.",
            labels=["edition", "mode", "status", "serial"],
        )
        info.add_metric([view.edition.name, view.mode.name, view.status.name, view.serial], 1)
        yield info
        if view.valid_until is not None:
            end = datetime.combine(view.valid_until, time(23, 59, 59), UTC)
            yield GaugeMetricFamily(
                "seatd_licence_expiry_timestamp_seconds",
                "End of the licence's renewal day.",
                value=end.timestamp(),
            )
        if self.cloud is not None and self.cloud.config.url:
            yield CounterMetricFamily(
                "seatd_sync_failures",
                "Failed syncs with the cloud.",
                value=self.cloud.state.total_failures,
            )


# The service's collector of the current term (one at a time).
_collector: SeatCollector | None = None


def _listen(config: MetricsConfig) -> WSGIServer:
    host, _, port = config.listen.rpartition(":")
    try:
        server, _ = start_http_server(int(port), addr=host.strip("[]"), registry=REGISTRY)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StateError(
            f"cannot serve metrics on {config.listen}: {reason}; change metrics.listen "
            '(--metrics-listen), or set it to "" to serve no metrics'
        ) from exc
    return server


def serve(config: MetricsConfig, service: SeatService, cloud: CloudSync | None) -> WSGIServer:
    """Bind the /metrics endpoint and serve it in a thread; `shutdown()` stops it."""
    server = _listen(config)
    global _collector
    if _collector is not None:
        # A cluster instance leads again: the previous term's service is gone.
        REGISTRY.unregister(_collector)
    _collector = SeatCollector(service, cloud)
    REGISTRY.register(_collector)
    return server


def serve_bare(config: MetricsConfig) -> WSGIServer | None:
    """/metrics without a service (a cluster standby: seatd_leader 0 and the process's
    own figures), or None when metrics are off."""
    return _listen(config) if config.listen else None
