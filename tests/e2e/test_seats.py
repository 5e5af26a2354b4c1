"""End to end: the daemon as a subprocess, real clients, real seatctl, short real TTLs."""

from __future__ import annotations

import getpass
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from seatclient import (
    EvictedEvent,
    SeatClient,
    SeatEvent,
    SeatsExhausted,
    SeatState,
    StateChanged,
)
from seatclient.lease import Backoff
from seatclient.wire import CHANNEL_OPTIONS

from tests.e2e.conftest import Daemon, wait_for

pytestmark = pytest.mark.e2e

# The longest a library client waits before its next reattach attempt: its own backoff's cap,
# then grpc's reconnect backoff (its maximum plus grpc's 20 % jitter).
REATTACH_DELAY_MAX = (
    Backoff().cap + dict(CHANNEL_OPTIONS)["grpc.max_reconnect_backoff_ms"] / 1000 * 1.2
)
# The restart tests give restored seats a grace far above that delay (FAST's 2 s is below
# it: a client backed off to its cap came back to a seat already expired), and wait for the
# clients to be back for as long as the daemon keeps a restored seat: a client not back by
# then has lost its seat anyway, so a longer wait could not turn a failure into a pass.
RESTART_GRACE = 30.0
RESTORED_FOR = RESTART_GRACE + 2.0  # plus FAST's lease TTL
assert REATTACH_DELAY_MAX * 3 < RESTART_GRACE
# A stream ends as soon as the daemon's process does (its connection is reset).
JEOPARDY_WITHIN = 5.0


def test_third_client_is_refused_with_both_sessions_listed(
    make_daemon: Callable[..., Daemon],
) -> None:
    """Cap 2: two clients hold seats; the third gets SEATS_EXHAUSTED listing both sessions."""
    daemon = make_daemon("--dev-seats", "2")
    with SeatClient(daemon.target) as client:
        a = client.acquire(user_code="AA", user_name="A A")
        b = client.acquire(user_code="BB", user_name="B B")
        with pytest.raises(SeatsExhausted) as refused:
            client.acquire(user_code="CC", user_name="C C")
        assert (refused.value.cap, refused.value.in_use) == (2, 2)
        assert [(s.id, s.user_code) for s in refused.value.sessions] == [
            (a.session_id, "AA"),
            (b.session_id, "BB"),
        ]
        assert "try again later" in str(refused.value)
        a.release()
        b.release()


def test_evicted_client_hears_the_reason_within_a_second(
    make_daemon: Callable[..., Daemon],
) -> None:
    """`seatctl evict` reaches the evicted client's callback with the reason within 1 s,
    and its seat is free for the third client."""
    daemon = make_daemon("--dev-seats", "2")
    heard: list[SeatEvent] = []
    got_it = threading.Event()

    def listen(event: SeatEvent) -> None:
        heard.append(event)
        if isinstance(event, EvictedEvent):
            got_it.set()

    with SeatClient(daemon.target) as client:
        victim = client.acquire(user_code="AA", user_name="A A", on_event=listen)
        other = client.acquire(user_code="BB", user_name="B B")
        wait_for(lambda: daemon.sessions()["sessions"][0]["attached"], 5, "attached stream")
        out = daemon.ctl("evict", str(victim.session_id), "--reason", "Dépassement connexions")
        assert out.returncode == 0, out.stderr
        # Within 1 s of the daemon's answer to seatctl: how long seatctl itself took to start
        # depends on the machine's load, not on the daemon.
        assert got_it.wait(1.0), f"no eviction within 1 s: {heard}"
        evicted = next(e for e in heard if isinstance(e, EvictedEvent))
        assert (evicted.reason, evicted.by) == ("Dépassement connexions", getpass.getuser())
        assert victim.wait(2) is SeatState.EVICTED
        third = client.acquire(user_code="CC", user_name="C C")
        assert third.session_id > other.session_id
        other.release()
        third.release()


def test_killed_workstation_frees_its_seat_within_ttl_and_grace(
    make_daemon: Callable[..., Daemon],
    holder_process: Callable[[str, str], tuple[Any, int]],
) -> None:
    """A client process killed with SIGKILL loses its seat within TTL + grace (2.5 s here)."""
    daemon = make_daemon("--dev-seats", "1")
    proc, _ = holder_process(daemon.target, "AA")
    wait_for(lambda: daemon.sessions()["sessions"][0]["attached"], 5, "attached stream")
    killed = datetime.now(UTC)
    proc.kill()
    proc.wait(5)
    # Timed by the daemon's own journal: seatctl's start-up under load is not the daemon's.
    wait_for(lambda: daemon.sessions()["in_use"] == 0, 10, "the seat to be freed")
    out = daemon.ctl("journal", "--json", "--kind", "expired")
    assert out.returncode == 0, out.stderr
    (expired,) = [json.loads(line) for line in out.stdout.splitlines()]
    freed_after = datetime.fromisoformat(expired["at"]) - killed
    assert freed_after.total_seconds() <= 2.5
    with SeatClient(daemon.target) as client:
        client.acquire(user_code="BB").release()


def test_daemon_killed_and_restarted_keeps_every_seat(make_daemon: Callable[..., Daemon]) -> None:
    """SIGKILL the daemon and restart it: both clients reattach with their tokens, keep their
    session ids, and a third still cannot get in."""
    daemon = make_daemon("--dev-seats", "2", "--restart-grace", str(RESTART_GRACE))
    states: dict[str, list[SeatState]] = {"AA": [], "BB": []}
    jeopardy = {"AA": threading.Event(), "BB": threading.Event()}
    back = {"AA": threading.Event(), "BB": threading.Event()}

    def track(user: str) -> Callable[[SeatEvent], None]:
        def on(event: SeatEvent) -> None:
            if isinstance(event, StateChanged):
                states[user].append(event.new)
                if event.new is SeatState.JEOPARDY:
                    jeopardy[user].set()
                elif event.new is SeatState.ACTIVE and jeopardy[user].is_set():
                    back[user].set()

        return on

    with SeatClient(daemon.target) as client:
        a = client.acquire(user_code="AA", on_event=track("AA"))
        b = client.acquire(user_code="BB", on_event=track("BB"))
        ids = {a.session_id, b.session_id}
        daemon.kill9()
        # The connection breaks with the process: each stream ends at once.
        assert all(e.wait(JEOPARDY_WITHIN) for e in jeopardy.values()), states
        daemon.start()
        assert all(e.wait(RESTORED_FOR) for e in back.values()), states
        listed = daemon.sessions()["sessions"]
        assert {s["id"] for s in listed if s["attached"]} == ids
        assert a.state is SeatState.ACTIVE and b.state is SeatState.ACTIVE
        assert states["AA"][-2:] == [SeatState.JEOPARDY, SeatState.ACTIVE]
        with pytest.raises(SeatsExhausted):
            client.acquire(user_code="CC")
        a.release()
        b.release()


def test_sessions_json_is_the_documented_shape(make_daemon: Callable[..., Daemon]) -> None:
    """`seatctl sessions --json` prints cap, in_use, server times and the sessions' fields."""
    daemon = make_daemon()
    with SeatClient(daemon.target, client_version="ERP 15.2") as client:
        seat = client.acquire(user_code="AA", user_name="Anne A")
        out = daemon.sessions()
        assert out["cap"] is None and out["in_use"] == 1
        assert out["server_time_utc"].endswith("Z") and out["server_time_local"]
        (s,) = out["sessions"]
        assert {
            "id",
            "user_code",
            "user_name",
            "hostname",
            "ip",
            "client_version",
            "started_at",
            "duration_seconds",
            "last_seen_at",
        } <= set(s)
        assert (s["id"], s["user_code"], s["user_name"], s["ip"], s["client_version"]) == (
            seat.session_id,
            "AA",
            "Anne A",
            "127.0.0.1",
            "ERP 15.2",
        )
        assert s["started_at"].endswith("Z")
        table = daemon.ctl("sessions")
        assert table.returncode == 0 and "Anne A" in table.stdout
        seat.release()


def test_status_is_one_screen(make_daemon: Callable[..., Daemon]) -> None:
    """`seatctl status` shows the daemon version and uptime, licence, seats and sessions."""
    daemon = make_daemon("--dev-seats", "3")
    with SeatClient(daemon.target) as client:
        seat = client.acquire(user_code="AA", user_name="Anne")
        out = daemon.ctl("status")
        assert out.returncode == 0, out.stderr
        assert "seatd 0.1.0, up" in out.stdout and "1 in use of 3" in out.stdout
        assert "Anne" in out.stdout
        as_json = daemon.ctl("status", "--json")
        import json

        summary = json.loads(as_json.stdout)
        assert (summary["in_use"], summary["cap"], summary["licence"]["status"]) == (1, 3, "free")
        seat.release()


def test_sigterm_drains_and_clients_come_back(make_daemon: Callable[..., Daemon]) -> None:
    """SIGTERM: every client is told Draining, the daemon exits 0 within 5 s, and after the
    restart both clients are ACTIVE again on their own sessions."""
    from seatclient import Draining

    # A restart grace that outlasts a slow restart on a busy machine (FAST's is 2 s).
    daemon = make_daemon("--dev-seats", "2", "--restart-grace", "30")
    told = [threading.Event(), threading.Event()]
    back = [threading.Event(), threading.Event()]

    def listener(i: int) -> Callable[[SeatEvent], None]:
        def on(event: SeatEvent) -> None:
            if isinstance(event, Draining):
                told[i].set()
            elif (
                isinstance(event, StateChanged)
                and event.new is SeatState.ACTIVE
                and told[i].is_set()
            ):
                back[i].set()

        return on

    with SeatClient(daemon.target) as client:
        seats = [client.acquire(user_code=f"U{i}", on_event=listener(i)) for i in range(2)]
        wait_for(lambda: all(s["attached"] for s in daemon.sessions()["sessions"]), 5, "attached")
        started = time.monotonic()
        assert daemon.stop() == 0
        assert time.monotonic() - started < 5
        assert all(t.wait(2) for t in told)
        daemon.flags += ["--restart-grace", str(RESTART_GRACE)]  # for the restored seats
        daemon.start()
        assert all(e.wait(RESTORED_FOR) for e in back), [s.state for s in seats]
        listed = daemon.sessions()["sessions"]
        assert all(s["attached"] for s in listed)
        assert {s["id"] for s in listed} == {s.session_id for s in seats}
        for s in seats:
            s.release()
