"""Cluster mode end to end: seatd instances over a real etcd, driven by the real client."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from seatclient import SeatClient, SeatError, SeatState, StateChanged
from seatclient.events import SeatEvent

from tests.e2e.cluster import Cluster, seatd_cluster  # noqa: F401  (a fixture)
from tests.e2e.conftest import wait_for
from tests.etcd import EtcdCluster

pytestmark = pytest.mark.e2e

CAP = 4
# Bounded waits for a loaded machine.
FAILOVER = 60.0


@pytest.fixture
def etcd(etcd_cluster: EtcdCluster) -> EtcdCluster:
    """A 3-member etcd of the test's own (tests/conftest.py)."""
    return etcd_cluster


@dataclass
class History:
    """What the clients saw: when each held a seat (grant returned -> release sent)."""

    held: list[tuple[float, float, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, start: float, end: float, session_id: int) -> None:
        with self.lock:
            self.held.append((start, end, session_id))

    def most_at_once(self) -> int:
        points = sorted(
            [(s, 1) for s, _, _ in self.held] + [(e, -1) for _, e, _ in self.held],
            key=lambda p: (p[0], p[1]),
        )
        now = peak = 0
        for _, step in points:
            now += step
            peak = max(peak, now)
        return peak


class Holder:
    """A workstation holding one seat through the cluster, recording its states."""

    def __init__(self, targets: list[str], user: str) -> None:
        self.client = SeatClient(targets, timeout=FAILOVER)
        self.states: list[SeatState] = []
        self.seat = self.client.acquire(user_code=user, on_event=self._on)
        self.since = time.monotonic()

    def _on(self, event: SeatEvent) -> None:
        if isinstance(event, StateChanged):
            self.states.append(event.new)

    def close(self) -> None:
        self.client.close()


def churn(targets: list[str], user: str, history: History, stop: threading.Event) -> None:
    """Acquire, hold a moment, release, again, until `stop`; refusals and outages are fine."""
    with SeatClient(targets, timeout=5) as client:
        while not stop.is_set():
            try:
                seat = client.acquire(user_code=user)
            except SeatError:
                stop.wait(0.1)
                continue
            start = time.monotonic()
            stop.wait(0.2)
            end = time.monotonic()
            seat.release()
            history.add(start, end, seat.session_id)


def test_sigkill_of_the_leader_keeps_every_session_and_never_exceeds_the_cap(
    etcd: EtcdCluster,
    seatd_cluster: Callable[..., Cluster],  # noqa: F811
) -> None:
    """SIGKILL the leader with seats held and clients acquiring: the standby leads, every
    held session comes back ACTIVE on its id (JEOPARDY in between, no exception), and the
    clients' history never shows more seats held at once than the cap."""
    cluster = seatd_cluster(etcd.endpoints, "--dev-seats", str(CAP))
    old = cluster.leader()
    holders = [Holder(cluster.targets, f"H{i}") for i in range(CAP - 1)]
    ids = [h.seat.session_id for h in holders]
    history = History()
    stop = threading.Event()
    churners = [
        threading.Thread(target=churn, args=(cluster.targets, f"C{i}", history, stop))
        for i in range(2)
    ]
    for t in churners:
        t.start()
    try:
        wait_for(lambda: len(history.held) >= 2, FAILOVER, "churners cycling")
        killed_at = time.monotonic()
        old.kill9()
        new = cluster.leader(FAILOVER)
        assert new is not old
        wait_for(
            lambda: all(
                h.seat.state is SeatState.ACTIVE and SeatState.JEOPARDY in h.states for h in holders
            ),
            FAILOVER,
            "every held seat ACTIVE again after JEOPARDY",
        )
        back = time.monotonic() - killed_at
        cycles_before = len(history.held)
        wait_for(lambda: len(history.held) > cycles_before, FAILOVER, "churners on the new leader")
    finally:
        stop.set()
        for t in churners:
            t.join(30)
    listed = json.loads(new.ctl("sessions", "--json").stdout)
    on_new = {s["id"] for s in listed["sessions"]}
    assert set(ids) <= on_new
    assert [h.seat.session_id for h in holders] == ids
    assert all(SeatState.LOST not in h.states for h in holders)
    assert history.most_at_once() + len(holders) <= CAP
    print(f"failover: held seats ACTIVE again {back:.2f} s after SIGKILL")
    for h in holders:
        h.close()


def test_a_paused_leader_resumes_granting_and_renewing_nothing_and_stands_by(
    etcd: EtcdCluster,
    seatd_cluster: Callable[..., Cluster],  # noqa: F811
) -> None:
    """SIGSTOP the leader past its etcd lease: the standby leads and the held seats come
    back on it; SIGCONT the old leader: it renews and grants nothing (its first check sees
    the time gone), says so, and stands by; it leads again when the new leader dies."""
    cluster = seatd_cluster(etcd.endpoints, "--dev-seats", str(CAP))
    old = cluster.leader()
    holders = [Holder(cluster.targets, f"H{i}") for i in range(2)]
    ids = [h.seat.session_id for h in holders]
    old.pause()
    try:
        new = wait_for(
            lambda: next((m for m in cluster.members if m is not old and m.serving()), None),
            FAILOVER,
            "the standby leading",
        )
        wait_for(
            lambda: all(
                h.seat.state is SeatState.ACTIVE and SeatState.JEOPARDY in h.states for h in holders
            ),
            FAILOVER,
            "held seats ACTIVE again on the new leader",
        )
        before = old.text()
    finally:
        old.resume()
    wait_for(
        lambda: (
            "event=cluster.stepping_down" in old.text()[len(before) :]
            or "event=daemon.deposed" in old.text()[len(before) :]
        ),
        FAILOVER,
        "the old leader stepping down",
    )
    after = old.text()[len(before) :]
    assert "event=seat.attached" not in after
    wait_for(lambda: cluster.leader() is new, FAILOVER, "one leader: the new one")
    listed = json.loads(new.ctl("sessions", "--json").stdout)
    assert sorted(s["id"] for s in listed["sessions"]) == sorted(ids)
    # The same process leads a second term when the new leader dies.
    new.kill9()
    assert cluster.leader(FAILOVER) is old
    wait_for(
        lambda: all(h.seat.state is SeatState.ACTIVE for h in holders),
        FAILOVER,
        "held seats ACTIVE on the old leader's second term",
    )
    listed = json.loads(old.ctl("sessions", "--json").stdout)
    assert sorted(s["id"] for s in listed["sessions"]) == sorted(ids)
    assert all(SeatState.LOST not in h.states for h in holders)
    for h in holders:
        h.close()


def test_quorum_lost_stops_granting_keeps_sessions_and_they_come_back(
    etcd: EtcdCluster,
    seatd_cluster: Callable[..., Cluster],  # noqa: F811
) -> None:
    """One etcd member down changes nothing; two down: the leader stops granting within its
    margin and says why, workstations stay in JEOPARDY without losing their sessions; quorum
    back: a leader serves and every session is back on its id."""
    cluster = seatd_cluster(etcd.endpoints, "--dev-seats", str(CAP))
    leader = cluster.leader()
    holders = [Holder(cluster.targets, f"H{i}") for i in range(2)]
    ids = [h.seat.session_id for h in holders]
    etcd.kill(2)
    extra = SeatClient(cluster.targets, timeout=FAILOVER).acquire(user_code="ONE-DOWN")
    assert all(h.seat.state is SeatState.ACTIVE for h in holders)
    extra.release()
    before = leader.text()
    etcd.kill(1)
    wait_for(
        lambda: "event=cluster.stepping_down" in leader.text()[len(before) :],
        FAILOVER,
        "the leader stepping down without quorum",
    )
    wait_for(
        lambda: all(h.seat.state is SeatState.JEOPARDY for h in holders),
        FAILOVER,
        "workstations in JEOPARDY",
    )
    etcd.restart(1)
    etcd.restart(2)
    wait_for(
        lambda: all(h.seat.state is SeatState.ACTIVE for h in holders),
        FAILOVER,
        "every held seat ACTIVE again",
    )
    now = cluster.leader(FAILOVER)
    listed = json.loads(now.ctl("sessions", "--json").stdout)
    assert sorted(s["id"] for s in listed["sessions"]) == sorted(ids)
    assert all(SeatState.LOST not in h.states for h in holders)
    for h in holders:
        h.close()


def test_a_rolling_restart_under_load_loses_no_session(
    etcd: EtcdCluster,
    seatd_cluster: Callable[..., Cluster],  # noqa: F811
) -> None:
    """Restart every instance in turn (SIGTERM, start again) while seats are held and
    others churn: every held session stays on its id and the cap is never exceeded."""
    cluster = seatd_cluster(etcd.endpoints, "--dev-seats", str(CAP))
    cluster.leader()
    holders = [Holder(cluster.targets, f"H{i}") for i in range(CAP - 1)]
    ids = [h.seat.session_id for h in holders]
    history = History()
    stop = threading.Event()
    churner = threading.Thread(target=churn, args=(cluster.targets, "C", history, stop))
    churner.start()
    try:
        for member in cluster.members:
            assert member.stop() == 0
            member.start()
            cluster.leader(FAILOVER)
            wait_for(
                lambda: all(h.seat.state is SeatState.ACTIVE for h in holders),
                FAILOVER,
                "held seats ACTIVE",
            )
    finally:
        stop.set()
        churner.join(30)
    leader = cluster.leader()
    listed = json.loads(leader.ctl("sessions", "--json").stdout)
    assert set(ids) <= {s["id"] for s in listed["sessions"]}
    assert all(SeatState.LOST not in h.states for h in holders)
    assert history.most_at_once() + len(holders) <= CAP
    for h in holders:
        h.close()


def test_seatctl_cluster_status_lists_instances_roles_and_etcd_health(
    etcd: EtcdCluster, seatd_cluster: Callable[..., Cluster]  # noqa: F811
) -> None:
    """`seatctl cluster status --json` names each instance with its role and heartbeat, and
    etcd's three members healthy; the table form says the same."""
    cluster = seatd_cluster(etcd.endpoints)
    leader = cluster.leader()
    urls = ",".join(f"http://{e}" for e in etcd.endpoints)

    def status() -> dict[str, Any] | None:
        out = leader.ctl("cluster", "status", "--etcd", urls, "--site", "t", "--json")
        assert out.returncode == 0, out.stderr
        found: dict[str, Any] = json.loads(out.stdout)
        return found if len(found["instances"]) == 2 else None

    found = wait_for(status, FAILOVER, "both instances' heartbeats")
    roles = {i["name"]: i["role"] for i in found["instances"]}
    assert roles == {m.name: ("leader" if m is leader else "standby") for m in cluster.members}
    assert found["leader"] == leader.name
    assert [m["healthy"] for m in found["etcd"]] == [True, True, True]
    table = leader.ctl("cluster", "status", "--etcd", urls, "--site", "t").stdout
    assert f"leader {leader.name}" in table and "etcd members:" in table
