"""Bad input end to end: a precise error, nothing stored changes, the daemon keeps serving."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from seatclient import SeatClient
from seatclient.v1 import seat_pb2, seat_pb2_grpc

from tests.e2e.conftest import BIN, FAST, Daemon

pytestmark = pytest.mark.e2e


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seatd", "serve", *FAST, *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_second_daemon_on_the_same_port_fails_clearly(
    make_daemon: Callable[..., Daemon], tmp_path: Path, short_dir: Path
) -> None:
    """A second daemon on a port in use exits 1 naming the address; the first keeps serving."""
    first = make_daemon()
    out = serve(
        "--listen",
        first.target,
        "--state-dir",
        str(tmp_path / "other"),
        "--admin-socket",
        str(short_dir / "other.sock"),
    )
    assert out.returncode == 1
    assert f"cannot listen on {first.target}" in out.stderr
    with SeatClient(first.target) as client:
        client.acquire(user_code="AA").release()


def test_second_daemon_on_the_same_state_fails_clearly(
    make_daemon: Callable[..., Daemon], short_dir: Path
) -> None:
    """A second daemon on the same state directory exits 1 naming the first's pid."""
    first = make_daemon()
    out = serve(
        "--listen",
        "127.0.0.1:0",
        "--state-dir",
        str(first.state_dir),
        "--admin-socket",
        str(short_dir / "other.sock"),
    )
    assert out.returncode == 1
    assert f"another seatd (pid {first.proc.pid})" in out.stderr  # type: ignore[union-attr]


def test_unusable_state_directory_fails_clearly(tmp_path: Path, short_dir: Path) -> None:
    """A state directory that cannot be created exits 1 naming it."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = serve(
        "--listen",
        "127.0.0.1:0",
        "--state-dir",
        str(blocker / "state"),
        "--admin-socket",
        str(short_dir / "a.sock"),
    )
    assert out.returncode == 1
    assert f"cannot use state directory {blocker / 'state'}" in out.stderr


def test_bad_flag_value_names_the_key(tmp_path: Path) -> None:
    """An out-of-bounds flag is refused with the key and the allowed range."""
    out = serve("--lease-ttl", "0", "--state-dir", str(tmp_path))
    assert out.returncode != 0
    assert "lease.ttl: must be between" in out.stderr


def test_garbage_requests_change_nothing_and_the_daemon_keeps_serving(
    make_daemon: Callable[..., Daemon],
) -> None:
    """Malformed acquires, wrong tokens and unknown ids are refused; state and service intact."""
    daemon = make_daemon("--dev-seats", "2")
    with SeatClient(daemon.target) as client:
        seat = client.acquire(user_code="AA")
        before = daemon.sessions()["sessions"]
        with grpc.insecure_channel(daemon.target) as channel:
            stub = seat_pb2_grpc.SeatServiceStub(channel)
            bad = [
                (stub.Acquire, seat_pb2.AcquireRequest(), grpc.StatusCode.INVALID_ARGUMENT),
                (
                    stub.Acquire,
                    seat_pb2.AcquireRequest(user_code="\x00", idempotency_key="k"),
                    grpc.StatusCode.INVALID_ARGUMENT,
                ),
                (
                    stub.Release,
                    seat_pb2.ReleaseRequest(session_id=seat.session_id, lease_token="x"),
                    grpc.StatusCode.UNAUTHENTICATED,
                ),
                (
                    stub.Release,
                    seat_pb2.ReleaseRequest(session_id=10**9, lease_token="x"),
                    grpc.StatusCode.NOT_FOUND,
                ),
            ]
            for rpc, request, code in bad:
                with pytest.raises(grpc.RpcError) as refused:
                    rpc(request, timeout=5)
                assert refused.value.code() is code
            raw = channel.unary_unary("/seatd.v1.SeatService/Acquire")
            with pytest.raises(grpc.RpcError) as refused:
                raw(b"\xff\xff\xff garbage", timeout=5)
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "not a valid seatd.v1.AcquireRequest" in (refused.value.details() or "")
        after = daemon.sessions()["sessions"]
        assert [s["id"] for s in after] == [s["id"] for s in before]
        client.acquire(user_code="BB").release()
        seat.release()
    assert daemon.proc is not None and daemon.proc.poll() is None


def test_seatctl_without_a_daemon_says_what_to_do(tmp_path: Path) -> None:
    """seatctl with no daemon exits 1 and says the daemon is not reachable."""
    out = subprocess.run(
        [str(BIN / "seatctl"), "--socket", str(tmp_path / "none.sock"), "sessions"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1
    assert "cannot reach seatd" in out.stderr and "Traceback" not in out.stderr


def test_seatctl_evict_unknown_session(make_daemon: Callable[..., Daemon]) -> None:
    """Evicting a session that does not exist exits 1 with the reason."""
    daemon = make_daemon()
    out = daemon.ctl("evict", "4242")
    assert out.returncode == 1
    assert "session 4242 does not exist" in out.stderr


def test_sigterm_stops_cleanly_and_keeps_the_seats(make_daemon: Callable[..., Daemon]) -> None:
    """SIGTERM exits 0; a restarted daemon still holds the sessions for reattach."""
    daemon = make_daemon("--dev-seats", "2")
    with SeatClient(daemon.target) as client:
        seat = client.acquire(user_code="AA")
        assert daemon.stop() == 0
        assert "event=daemon.stopped" in daemon.log_path.read_text()
        daemon.start()
        assert [s["id"] for s in daemon.sessions()["sessions"]] == [seat.session_id]
        seat.release()


def test_admin_socket_is_not_world_accessible(make_daemon: Callable[..., Daemon]) -> None:
    """The admin socket is created with mode 0660: owner and admin group only."""
    daemon = make_daemon()
    assert daemon.socket.stat().st_mode & 0o777 == 0o660
