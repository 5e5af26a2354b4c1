"""The journal end to end: a scripted day, read back; a byte edited on disk, caught."""

from __future__ import annotations

import getpass
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from seatclient import SeatClient, SeatsExhausted
from seatclient.v1 import seat_pb2, seat_pb2_grpc

from tests.e2e.conftest import BIN, Daemon, wait_for

pytestmark = pytest.mark.e2e


def journal(daemon: Daemon, *args: str) -> list[dict[str, object]]:
    out = daemon.ctl("journal", "--json", *args)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def scripted_day(daemon: Daemon) -> None:
    with SeatClient(daemon.target) as client:
        a = client.acquire(user_code="AA", user_name="Anne")
        b = client.acquire(user_code="BB", user_name="Bruno")
        with pytest.raises(SeatsExhausted):
            client.acquire(user_code="CC", user_name="Chloe")
        wait_for(lambda: all(s["attached"] for s in daemon.sessions()["sessions"]), 5, "attached")
        assert daemon.ctl("evict", str(a.session_id), "--reason", "Lunch break").returncode == 0
        b.release()
    # Chloe's workstation takes a seat and then never renews it: it must expire.
    with grpc.insecure_channel(daemon.target) as channel:
        seat_pb2_grpc.SeatServiceStub(channel).Acquire(
            seat_pb2.AcquireRequest(user_code="CC", user_name="Chloe", idempotency_key="cc-1"),
            timeout=5,
        )
    wait_for(lambda: daemon.sessions()["in_use"] == 0, 5, "the silent seat to expire")


def test_scripted_day_reads_back_in_order(make_daemon: Callable[..., Daemon]) -> None:
    """Grants, a refusal, an eviction with its reason, a release and an expiry appear in
    `seatctl journal --json` exactly, in order, with the documented fields."""
    daemon = make_daemon("--dev-seats", "2")
    scripted_day(daemon)
    seats = [e for e in journal(daemon) if e["kind"] not in ("daemon_started", "daemon_stopped")]
    assert [(e["kind"], e["user_code"]) for e in seats] == [
        ("granted", "AA"),
        ("granted", "BB"),
        ("refused", "CC"),
        ("evicted", "AA"),
        ("released", "BB"),
        ("granted", "CC"),
        ("expired", "CC"),
    ]
    evicted = seats[3]
    assert (evicted["reason"], evicted["actor"], evicted["claimed_user"]) == (
        "Lunch break",
        "local-admin-socket",
        getpass.getuser(),
    )
    for e in seats:
        assert {"seq", "at", "kind", "session_id", "user_code", "actor"} <= set(e)
        assert str(e["at"]).endswith("Z")
    assert [e["seq"] for e in seats] == sorted(e["seq"] for e in seats)
    only_cc = journal(daemon, "--user", "CC")
    assert [e["kind"] for e in only_cc] == ["refused", "granted", "expired"]
    assert [e["kind"] for e in journal(daemon, "--kind", "evicted")] == ["evicted"]


def test_a_byte_edited_on_disk_is_named_by_verify(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    """Change one byte of an entry in the LMDB file with the daemon stopped:
    `seatctl journal verify` exits 1 naming that entry's seq."""
    daemon = make_daemon("--dev-seats", "2")
    scripted_day(daemon)
    ok = daemon.ctl("journal", "verify")
    assert ok.returncode == 0 and "intact" in ok.stdout
    evicted = next(e for e in journal(daemon) if e["kind"] == "evicted")
    assert daemon.stop() == 0
    data = daemon.state_dir / "seatd.lmdb" / "data.mdb"
    raw = data.read_bytes()
    assert b'"reason":"Lunch break"' in raw
    # Every copy: the journal entry, and the ending kept for the evicted workstation.
    data.write_bytes(raw.replace(b'"reason":"Lunch break"', b'"reason":"Punch break"'))
    daemon.start()
    broken = daemon.ctl("journal", "verify")
    assert broken.returncode == 1
    assert f"seq {evicted['seq']}" in broken.stderr


def test_export_writes_json_lines_as_stored(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    """`seatctl journal export FILE` writes every entry, hash chain included."""
    daemon = make_daemon()
    with SeatClient(daemon.target) as client:
        client.acquire(user_code="AA").release()
    out = tmp_path / "journal.jsonl"
    assert daemon.ctl("journal", "export", str(out)).returncode == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["kind"] for e in lines] == ["daemon_started", "granted", "released"]
    assert all({"seq", "prev", "hash"} <= set(e) for e in lines)


def test_usage_report_counts_the_day(make_daemon: Callable[..., Daemon]) -> None:
    """After the scripted day, today's report shows a peak of 2, one refusal, one eviction;
    the table, --json and --csv all say so."""
    daemon = make_daemon("--dev-seats", "2")
    scripted_day(daemon)
    out = daemon.ctl("report", "usage", "--days", "7", "--json")
    assert out.returncode == 0, out.stderr
    days = json.loads(out.stdout)
    assert len(days) == 7
    today = days[-1]
    assert (today["peak_sessions"], today["refusals"], today["evictions"]) == (2, 1, 1)
    assert today["seat_hours"] >= 0
    csv_out = daemon.ctl("report", "usage", "--days", "7", "--csv")
    assert csv_out.stdout.splitlines()[0] == "day,peak_sessions,seat_hours,refusals,evictions"
    assert csv_out.stdout.splitlines()[-1].startswith(f"{today['day']},2,")
    table = daemon.ctl("report", "usage", "--days", "7")
    assert table.returncode == 0 and "Peak over the period: 2" in table.stdout


def test_the_journal_table_marks_a_claimed_user_as_claimed(
    make_daemon: Callable[..., Daemon], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`seatctl journal` shows the local admin as the socket, with the OS user as a claim."""
    monkeypatch.setenv("COLUMNS", "200")  # one line per entry: no wrapped cells
    daemon = make_daemon("--dev-seats", "2")
    with SeatClient(daemon.target) as client:
        seat = client.acquire(user_code="AA")
        assert daemon.ctl("evict", str(seat.session_id), "--reason", "audit").returncode == 0
    out = daemon.ctl("journal", "--kind", "evicted")
    assert out.returncode == 0, out.stderr
    assert f"local-admin-socket ({getpass.getuser()}, claimed)" in out.stdout


def test_journal_follow_goes_on_across_a_restart_of_the_daemon(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    """`seatctl journal --follow --json` while the daemon is stopped and started again (a
    `systemctl restart`): it says the stream ended, takes it up from the last entry shown,
    and prints every entry once, with no seq missing, the new daemon's included."""
    daemon = make_daemon("--dev-seats", "2")
    out, err = tmp_path / "follow.out", tmp_path / "follow.err"
    with out.open("wb") as o, err.open("wb") as e:
        follower = subprocess.Popen(
            [str(BIN / "seatctl"), "--socket", str(daemon.socket), "journal", "--follow", "--json"],
            stdout=o,
            stderr=e,
        )

    def shown(user: str) -> bool:
        return any(json.loads(line)["user_code"] == user for line in out.read_text().splitlines())

    try:
        with SeatClient(daemon.target) as client:
            client.acquire(user_code="AA").release()
            wait_for(lambda: shown("AA"), 30, "AA's grant followed")
        assert daemon.stop() == 0
        daemon.start()
        with SeatClient(daemon.target) as client:
            client.acquire(user_code="BB").release()
        wait_for(lambda: shown("BB"), 90, f"BB's grant followed; stderr: {err.read_text()}")
        entries = [json.loads(line) for line in out.read_text().splitlines()]
        seqs = [j["seq"] for j in entries]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
        kinds = [j["kind"] for j in entries]
        assert "daemon_stopped" in kinds and kinds.count("daemon_started") == 2
        assert "the journal stream ended after seq" in err.read_text()
        assert follower.poll() is None, err.read_text()
    finally:
        follower.kill()
        follower.wait(10)
