"""What `seatctl` prints: its help, and its tables at 80 columns (a fake admin service)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from google.protobuf.timestamp_pb2 import Timestamp
from seatclient.v1 import admin_pb2, types_pb2

from seatd import ctl

NOW = datetime(2026, 12, 1, 22, 29, 12, tzinfo=UTC)
BASE_ID = "82520020025896075"
IP = "192.168.100.200"
CLOUD = "licensing-europe-west-1.cloud.erp-vendor-example-group.com"
# What grpc says when the cloud's name does not resolve: one word longer than the value column.
SYNC_ERROR = (
    f"the cloud at {CLOUD}:7443 cannot be reached or refused: DNS resolution failed for "
    f"{CLOUD}:7443: C-ares status is not ARES_SUCCESS qtype=A name={CLOUD} is_balancer=0: "
    "Domain name not found"
)

EVICT_REASON = "Connection limit exceeded: accounting needs the seat for the month-end closing"


def ts(when: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(when)
    return t


class FakeAdmin:
    """The admin service's answers, as the daemon would give them."""

    def ListSessions(self, request: Any, timeout: float) -> admin_pb2.ListSessionsResponse:
        r = admin_pb2.ListSessionsResponse(
            in_use=2, seat_cap=3, server_time=ts(NOW), server_timezone="Europe/Paris"
        )
        r.server_utc_offset_seconds = 3600
        for n, (code, name, host) in enumerate(
            [
                ("BRUNOB", "Bruno Bertrand-Lefebvre", "COMPTA-PC-ETAGE2"),
                ("CC", "Claire Chevalier-Dumont", "ACCUEIL-PORTABLE"),
            ]
        ):
            s = r.sessions.add(
                id=1234 + n,
                user_code=code,
                user_name=name,
                hostname=host,
                ip=IP,
                client_version="12.4.1",
                started_at=ts(NOW - timedelta(hours=3, minutes=n)),
                last_seen_at=ts(NOW - timedelta(seconds=3)),
            )
            s.duration.seconds = 3 * 3600 + 60 * n
        r.sessions[0].group = "accounting"
        r.sessions[0].idle.seconds = 34 * 60
        return r

    def GetPolicy(self, request: Any, timeout: float) -> admin_pb2.GetPolicyResponse:
        p = admin_pb2.GetPolicyResponse(
            takeover="same-user", max_per_user=1, in_use=2, unused_reserve=1, rules=6
        )
        p.seat_cap = 10
        p.idle.reclaim_after.seconds = 1800
        p.idle.warn_before.seconds = 120
        p.idle.only_when_waiting = True
        p.groups.add(
            name="accounting",
            users=["ANNA", "BORIS", "CLARA"],
            hosts=["COMPTA-PC-*"],
            reserve=2,
            priority=10,
            in_use=1,
        )
        interns = p.groups.add(name="interns", users=["IA", "IB"], in_use=1)
        interns.max = 2
        p.groups.add(name="guests", networks=["192.168.100.0/24"], exclude=True)
        return p

    def CheckPolicy(self, request: Any, timeout: float) -> admin_pb2.CheckPolicyResponse:
        assert "[policy" in request.toml
        session = self.ListSessions(request, timeout).sessions[1]
        return admin_pb2.CheckPolicyResponse(
            policy=self.GetPolicy(request, timeout),
            breaches=[
                admin_pb2.PolicyBreach(
                    session=session,
                    reason="POLICY_EXCLUDED",
                    rule="exclude",
                    group="guests",
                    message="group guests may not take a seat on this server (exclude = true)",
                )
            ],
        )

    def GetLicence(self, request: Any, timeout: float) -> admin_pb2.AdminServiceGetLicenceResponse:
        d = types_pb2.LicenceDetail(
            summary=types_pb2.LicenceSummary(
                edition=types_pb2.EDITION_ENTERPRISE,
                mode=types_pb2.MODE_CLOUD,
                period=types_pb2.PERIOD_ANNUAL,
                status=types_pb2.LICENCE_STATUS_VALID,
                seat_cap=3,
                seats_purchased=3,
                valid_until=ts(NOW + timedelta(days=300)),
                features=["stock", "accounting", "payroll", "point-of-sale"],
                base_id=BASE_ID,
                serial="L-20251201-9F8E7D6C",
                auto_renew=True,
                days_left=300,
            ),
            licensee=types_pb2.Licensee(
                company="ANYWAY SARL",
                contact="Jeanne Martin-Delacroix",
                address="12 rue de la Republique",
                postcode="69002",
                city="Lyon",
                country="FR",
                email="informatique@anyway-sarl.example",
            ),
            in_use=2,
            trusted_time=ts(NOW),
            cloud_url=f"{CLOUD}:7443",
            last_sync=ts(NOW - timedelta(hours=6)),
            failed_syncs=3,
            next_sync=ts(NOW + timedelta(minutes=4)),
            last_sync_error=SYNC_ERROR,
        )
        return admin_pb2.AdminServiceGetLicenceResponse(licence=d)

    def ReadJournal(self, request: Any, timeout: float) -> admin_pb2.ReadJournalResponse:
        stored = {
            "seq": 4711,
            "at": "2026-12-01T22:29:12Z",
            "kind": "evicted",
            "session_id": 1234,
            "user_code": "BRUNOB",
            "actor": "jeanne.martin",
            "reason": EVICT_REASON,
        }
        entry = admin_pb2.JournalEntry(
            seq=4711,
            at=ts(NOW),
            kind="evicted",
            session_id=1234,
            user_code="BRUNOB",
            actor="jeanne.martin",
            reason=EVICT_REASON,
            json=json.dumps(stored),
        )
        return admin_pb2.ReadJournalResponse(entries=[entry], next_after_seq=4711)

    def LicenceHistory(self, request: Any, timeout: float) -> admin_pb2.LicenceHistoryResponse:
        entry = types_pb2.LicenceHistoryEntry(
            serial="L-20261201-A1B2C3D4",
            source="import",
            by="jeanne.martin",
            at=ts(NOW),
            previous_serial="L-20251201-9F8E7D6C",
        )
        return admin_pb2.LicenceHistoryResponse(entries=[entry])


@pytest.fixture
def seatctl(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run seatctl against the fake admin service, on an 80-column terminal."""
    monkeypatch.setattr(ctl.Ctx, "admin", lambda self: contextlib.nullcontext(FakeAdmin()))

    def run(*args: str) -> Result:
        result = CliRunner().invoke(ctl.main, list(args), env={"COLUMNS": "80"})
        assert result.exit_code == 0, result.output
        return result

    return run


def assert_readable(output: str, *whole: str) -> None:
    """Nothing cut with an ellipsis, no line past 80 columns, and each value in `whole` on
    one line."""
    assert "…" not in output
    assert max(len(line) for line in output.splitlines()) <= 80
    for value in whole:
        assert value in output, f"{value!r} is not whole in:\n{output}"


def test_help_names_the_admin_socket_environment_variable() -> None:
    """`seatctl --help` says SEATD_ADMIN_SOCKET sets the socket, as `make run`'s line does."""
    result = CliRunner().invoke(ctl.main, ["--help"])
    assert result.exit_code == 0
    assert "SEATD_ADMIN_SOCKET" in result.output


def test_sessions_at_80_columns_keep_dates_and_ips_whole(seatctl: Any) -> None:
    """`seatctl sessions` at 80 columns shows every session's IP, date and time whole."""
    out = seatctl("sessions").output
    assert_readable(out, IP, "01/12/2026", "20:29:12", "1234", "1235", "COMPTA-PC-ETAGE2")


def test_sessions_json_stays_complete(seatctl: Any) -> None:
    """`seatctl sessions --json` carries every field, whatever the terminal's width."""
    sessions = json.loads(seatctl("sessions", "--json").output)["sessions"]
    assert sessions[0]["ip"] == IP and sessions[0]["user_name"] == "Bruno Bertrand-Lefebvre"
    assert sessions[0]["started_at"] == "2026-12-01T19:29:12Z"


def test_licence_show_at_80_columns_keeps_the_base_id_and_the_error_whole(seatctl: Any) -> None:
    """`seatctl licence show` at 80 columns: base id, serial and sync error, nothing cut."""
    out = seatctl("licence", "show").output
    assert_readable(out, BASE_ID, "L-20251201-9F8E7D6C", "informatique@anyway-sarl.example")
    # Folded onto the next lines, not cut: every character is there, in order.
    assert "".join(SYNC_ERROR.split()) in "".join(out.split())


def test_journal_at_80_columns_keeps_the_time_and_the_reason_whole(seatctl: Any) -> None:
    """`seatctl journal` at 80 columns: the entry's date, time and whole reason are shown."""
    out = seatctl("journal").output
    assert_readable(out, "2026-12-01", "22:29:12", "4711", "BRUNOB")
    assert all(word in out for word in EVICT_REASON.split())


def test_licence_history_at_80_columns_keeps_serials_whole(seatctl: Any) -> None:
    """`seatctl licence history` at 80 columns: both serials and the time, nothing cut."""
    out = seatctl("licence", "history").output
    assert_readable(
        out,
        "L-20261201-A1B2C3D4",
        "L-20251201-9F8E7D6C",
        "2026-12-01",
        "22:29:12",
    )


def test_sessions_show_each_sessions_group_and_idle_time(seatctl: Any) -> None:
    """`seatctl sessions` shows the policy group and idle time; --json carries them."""
    assert_readable(seatctl("sessions").output, "accounting", "idle 0:34:00")
    listed = json.loads(seatctl("sessions", "--json").output)["sessions"]
    assert [(s["group"], s["idle_seconds"]) for s in listed] == [("accounting", 2040), ("", None)]


def test_policy_show_at_80_columns_shows_each_groups_seats(seatctl: Any) -> None:
    """`seatctl policy show`: the rules in force and each group's in use / reserved / max."""
    out = seatctl("policy", "show").output
    assert_readable(out, "accounting", "COMPTA-PC-*", "192.168.100.0/24", "excluded", "same-user")
    assert "2 in use of 10; 1 reserved, unused" in out
    assert "after 30 min idle, warned 2 min before, when someone waits" in out


def test_policy_show_json_is_complete(seatctl: Any) -> None:
    """`seatctl policy show --json`: every group with its members and numbers."""
    shown = json.loads(seatctl("policy", "show", "--json").output)
    assert [(g["name"], g["in_use"], g["reserve"], g["max"]) for g in shown["groups"]] == [
        ("accounting", 1, 2, None),
        ("interns", 1, 0, 2),
        ("guests", 0, 0, None),
    ]
    assert shown["idle"]["reclaim_after_seconds"] == 1800 and shown["max_per_user"] == 1


def test_policy_check_lists_the_sessions_the_file_would_refuse(seatctl: Any, tmp_path: Any) -> None:
    """`seatctl policy check FILE` sends the file and names each session it would refuse."""
    path = tmp_path / "new.toml"
    path.write_text('[policy.groups.guests]\nnetworks = ["192.168.100.0/24"]\nexclude = true\n')
    out = seatctl("policy", "check", str(path)).output
    words = " ".join(out.split())
    assert "(not applied)" in words and "1 live session breaks this policy" in words
    assert_readable(out, "1235", "POLICY_EXCLUDED")
    checked = json.loads(seatctl("policy", "check", str(path), "--json").output)
    assert checked["breaches"][0]["session_id"] == 1235


class QueuedAdmin(FakeAdmin):
    """Two workstations wait for a seat, as the daemon lists them."""

    def ListSessions(self, request: Any, timeout: float) -> admin_pb2.ListSessionsResponse:
        r = super().ListSessions(request, timeout)
        for n, (code, name, host) in enumerate(
            [("DAVIDD", "David Durand-Moreau", "ATELIER-PC-01"), ("EVE", "Eve Escoffier", "")]
        ):
            w = r.queue.add(
                position=n + 1,
                user_code=code,
                user_name=name,
                hostname=host,
                ip="192.168.100.21" if n == 0 else "",
                client_version="12.4.1",
                queued_at=ts(NOW - timedelta(seconds=95 - 60 * n)),
            )
            w.waited.seconds = 95 - 60 * n
        r.waiting = len(r.queue)
        return r


@pytest.fixture
def queued_seatctl(seatctl: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """seatctl against a daemon where two workstations wait for a seat."""
    monkeypatch.setattr(ctl.Ctx, "admin", lambda self: contextlib.nullcontext(QueuedAdmin()))
    return seatctl


def test_sessions_show_the_wait_queue_below_the_sessions(queued_seatctl: Any) -> None:
    """`seatctl sessions` lists who waits for a seat, in order, under the sessions table."""
    out = queued_seatctl("sessions").output
    assert_readable(out, "Waiting for a seat: 2", "DAVIDD", "ATELIER-PC-01", "0:01:35", "0:00:35")
    assert out.index("Open sessions") < out.index("Waiting for a seat") < out.index("UTC time")
    assert out.index("DAVIDD") < out.index("EVE")
    # Since when, in the daemon's local time (UTC+1 here) as the sessions' start.
    assert "23:27:37" in out


def test_sessions_show_no_wait_table_when_nobody_waits(seatctl: Any) -> None:
    """With an empty queue `seatctl sessions` prints the sessions table alone."""
    assert "Waiting" not in seatctl("sessions").output


def test_sessions_json_lists_the_waiting_with_stable_keys(queued_seatctl: Any) -> None:
    """`seatctl sessions --json` has a "waiting" list: position, who, where, since, waited."""
    waiting = json.loads(queued_seatctl("sessions", "--json").output)["waiting"]
    assert waiting[0] == {
        "position": 1,
        "user_code": "DAVIDD",
        "user_name": "David Durand-Moreau",
        "hostname": "ATELIER-PC-01",
        "ip": "192.168.100.21",
        "client_version": "12.4.1",
        "queued_at": "2026-12-01T22:27:37Z",
        "waited_seconds": 95,
    }
    assert [w["position"] for w in waiting] == [1, 2]


def test_sessions_json_lists_an_empty_wait_queue(seatctl: Any) -> None:
    """With nobody waiting the "waiting" list is there, empty (a stable shape for scripts)."""
    assert json.loads(seatctl("sessions", "--json").output)["waiting"] == []
