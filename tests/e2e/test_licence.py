"""Licences end to end: seatd-vendor issues, seatctl imports, the daemon enforces."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from seatclient import LicenceChanged, SeatClient, SeatEvent, SeatsExhausted

from tests.e2e.conftest import BIN, Daemon, wait_for

pytestmark = pytest.mark.e2e


def vendor(*args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [str(BIN / "seatd-vendor"), *args], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    return out


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "vendor.key", tmp_path / "vendor.pub"
    vendor(
        "keygen",
        "--out-private",
        str(private),
        "--out-public",
        str(public),
        "--key-id",
        "vendor-test",
    )
    return private, public


def issue(key: Path, base_id: str, out: Path, seats: int = 2, *extra: str) -> Path:
    until = (datetime.now(UTC).date() + timedelta(days=365)).isoformat()
    vendor(
        "issue",
        "--key",
        str(key),
        "--base-id",
        base_id,
        "--company",
        "ANYWAY SARL",
        "--edition",
        "ENTERPRISE",
        "--mode",
        "LOCAL",
        "--period",
        "ANNUAL",
        "--seats",
        str(seats),
        "--valid-until",
        until,
        "--feature",
        "stock",
        "--out",
        str(out),
        *extra,
    )
    return out


def show(daemon: Daemon) -> dict[str, object]:
    import json

    out = daemon.ctl("licence", "show", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_licence_lifecycle_offline(
    make_daemon: Callable[..., Daemon], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """No licence: no cap. Import a 2-seat Enterprise licence: capped at once and clients are
    told. Lower to 1 seat with 2 live: nobody evicted, a new one refused. A tampered file is
    refused and the 2-seat licence stays."""
    private, public = keys
    daemon = make_daemon("--trusted-key", str(public))
    before = show(daemon)
    assert (before["status"], before["seats_active"]) == ("free", None)
    base_id = str(before["base_id"])
    assert len(base_id) == 17 and base_id.isdigit()

    told = threading.Event()

    def on_event(event: SeatEvent) -> None:
        if isinstance(event, LicenceChanged) and event.licence.HasField("seat_cap"):
            told.set()

    with SeatClient(daemon.target) as client:
        extra = [client.acquire(user_code=f"U{i}") for i in range(3)]
        for seat in extra:
            seat.release()
        a = client.acquire(user_code="AA", on_event=on_event)
        b = client.acquire(user_code="BB")
        wait_for(lambda: all(s["attached"] for s in daemon.sessions()["sessions"]), 5, "attached")

        lic = issue(private, base_id, tmp_path / "anyway.lic")
        out = daemon.ctl("licence", "import", str(lic))
        assert out.returncode == 0, out.stderr
        assert told.wait(2), "connected client not told of the new licence"
        after = show(daemon)
        assert (
            after["status"],
            after["edition"],
            after["seats_purchased"],
            after["seats_active"],
            after["in_use"],
        ) == ("valid", "enterprise", 2, 2, 2)
        assert after["days_left"] == 365 and after["features"] == ["stock"]
        with pytest.raises(SeatsExhausted):
            client.acquire(user_code="CC")

        out = daemon.ctl("seats", "set", "1")
        assert out.returncode == 0, out.stderr
        assert daemon.sessions()["in_use"] == 2
        with pytest.raises(SeatsExhausted):
            client.acquire(user_code="CC")
        out = daemon.ctl("seats", "set", "3")
        assert out.returncode != 0 and "order 1 more" in out.stderr

        raw = lic.read_text().splitlines()
        raw[2] = raw[2][:10] + ("A" if raw[2][10] != "A" else "B") + raw[2][11:]
        tampered = tmp_path / "tampered.lic"
        tampered.write_text("\n".join(raw) + "\n")
        out = daemon.ctl("licence", "import", str(tampered))
        assert out.returncode != 0 and out.stderr.strip()
        assert show(daemon)["serial"] == after["serial"]
        history = daemon.ctl("licence", "history", "--json")
        assert '"source": "import"' in history.stdout
        a.release()
        b.release()


def test_licence_for_another_base_is_refused(
    make_daemon: Callable[..., Daemon], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """A licence issued for another base id is refused with both ids named."""
    private, public = keys
    daemon = make_daemon("--trusted-key", str(public))
    lic = issue(private, "12345678901234567", tmp_path / "other.lic")
    out = daemon.ctl("licence", "import", str(lic))
    assert out.returncode != 0
    assert "12345678901234567" in out.stderr and str(show(daemon)["base_id"]) in out.stderr


def test_clock_set_back_is_detected(
    make_daemon: Callable[..., Daemon], keys: tuple[Path, Path]
) -> None:
    """Restarted with its wall clock two days behind the last time it saw, the daemon logs and
    journals the rollback, keeps serving and reports it."""
    _, public = keys
    daemon = make_daemon("--trusted-key", str(public))
    assert daemon.stop() == 0
    daemon.flags += ["--wall-clock-offset", str(-2 * 86400)]
    daemon.start()
    assert "event=clock.rollback_detected" in daemon.log_path.read_text()
    assert show(daemon)["clock_rollback"] is True
    with SeatClient(daemon.target) as client:
        client.acquire(user_code="AA").release()


def test_a_run_with_the_clock_far_ahead_leaves_nothing_behind(
    make_daemon: Callable[..., Daemon], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """One run with the clock 400 days ahead (past the licence and its grace), then the clock
    corrected: the licence is valid again and no rollback is reported."""
    private, public = keys
    daemon = make_daemon("--trusted-key", str(public))
    lic = issue(private, str(show(daemon)["base_id"]), tmp_path / "site.lic")
    assert daemon.ctl("licence", "import", str(lic)).returncode == 0
    assert daemon.stop() == 0
    flags = list(daemon.flags)
    daemon.flags += ["--wall-clock-offset", str(400 * 86400)]
    daemon.start()
    assert show(daemon)["status"] == "expired"
    assert daemon.stop() == 0
    daemon.flags = flags
    daemon.start()
    after = show(daemon)
    assert (after["status"], after["clock_rollback"]) == ("valid", False)
    with SeatClient(daemon.target) as client:
        client.acquire(user_code="AA").release()


def test_sighup_reloads_config_and_licence_file_keeping_sessions(
    make_daemon: Callable[..., Daemon], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """SIGHUP rereads the config: a licence file named in it is installed and a new takeover
    policy applies, while the open session stays."""
    import signal

    private, public = keys
    config = tmp_path / "seatd.toml"
    config.write_text(f'[licence]\ntrusted_keys = ["{public}"]\n')
    daemon = make_daemon("--config", str(config))
    base_id = str(show(daemon)["base_id"])
    with SeatClient(daemon.target) as client:
        held = client.acquire(user_code="AA")
        lic = issue(private, base_id, tmp_path / "site.lic", seats=1)
        config.write_text(
            f'[licence]\ntrusted_keys = ["{public}"]\nfile = "{lic}"\n'
            '[policy]\ntakeover = "admin-only"\n'
        )
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: show(daemon)["status"] == "valid", 10, "the licence file installed")
        assert "event=daemon.reloaded" in daemon.log_path.read_text()
        assert daemon.sessions()["sessions"][0]["id"] == held.session_id
        from seatclient import TakeoverDenied

        with pytest.raises(TakeoverDenied):
            client.acquire(user_code="BB", evict_session=held.session_id, reason="mine")
        held.release()


def test_an_older_licence_is_refused_unless_the_vendor_replaces(
    make_daemon: Callable[..., Daemon], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """A 10-seat licence issued before the 3-seat one in force is refused and 3 seats stay;
    a licence issued with `--replaces` goes in, and what it replaced is refused from then on."""
    private, public = keys
    daemon = make_daemon("--trusted-key", str(public))
    base_id = str(show(daemon)["base_id"])
    # Serials order licences issued in the same second.
    older = issue(private, base_id, tmp_path / "old.lic", 10, "--serial", "L-A")
    newer = issue(private, base_id, tmp_path / "new.lic", 3, "--serial", "L-B")
    assert daemon.ctl("licence", "import", str(newer)).returncode == 0
    out = daemon.ctl("licence", "import", str(older))
    assert out.returncode != 0 and "cannot be rolled back" in out.stderr
    assert (show(daemon)["serial"], show(daemon)["seats_active"]) == ("L-B", 3)
    fix = issue(private, base_id, tmp_path / "fix.lic", 5, "--serial", "L-0", "--replaces", "L-B")
    assert daemon.ctl("licence", "import", str(fix)).returncode == 0
    out = daemon.ctl("licence", "import", str(newer))
    assert out.returncode != 0 and "was replaced" in out.stderr
    assert show(daemon)["serial"] == "L-0"
