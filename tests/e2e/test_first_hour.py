"""The first hour of a new user: `make run`, the README's first commands, a second daemon."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.certs import make_tls
from tests.e2e.conftest import BIN, FAST, READY, Daemon, wait_for
from tests.e2e.test_licence import issue, show, vendor

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# What a new user's shell has: none of the settings `make run` tells them to export.
ENV = {k: v for k, v in os.environ.items() if k not in ("SEATD_ADMIN_SOCKET", "MAKEFLAGS")}


@dataclass
class MakeRun:
    export: str
    port: int
    socket: Path

    def shell(self, line: str, cwd: Path) -> list[str]:
        """`line` in bash after the export line, as in the terminal the README describes."""
        return ["bash", "-c", f"{self.export}\ncd {cwd}\n{line}"]


@pytest.fixture
def make_run(tmp_path: Path, short_dir: Path) -> Iterator[Callable[[str], MakeRun]]:
    """`make run ARGS=...` on free ports, its state under a temporary RUN_DIR."""
    started: list[subprocess.Popen[bytes]] = []

    def start(args: str) -> MakeRun:
        log = tmp_path / "make-run.log"
        run_dir = short_dir / "run"
        with log.open("wb") as out:
            make = subprocess.Popen(
                [
                    "make",
                    "-s",
                    "-C",
                    str(ROOT),
                    "run",
                    f"RUN_DIR={run_dir}",
                    f"ARGS=--listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 {args}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=ENV,
                start_new_session=True,
            )
        started.append(make)

        def ready() -> int | None:
            if make.poll() is not None:
                raise AssertionError(f"make run exited with {make.returncode}:\n{log.read_text()}")
            found = READY.search(log.read_text())
            return int(found.group(1)) if found else None

        port = wait_for(ready, 60, "daemon.ready from make run")
        export = next(line.strip() for line in log.read_text().splitlines() if "export " in line)
        return MakeRun(export, port, run_dir / "admin.sock")

    yield start
    for make in started:
        os.killpg(make.pid, signal.SIGTERM)
        make.wait(20)

        def gone(pgid: int = make.pid) -> bool:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return True
            return False

        wait_for(gone, 20, "the daemon make run started to stop")


def test_make_run_passes_args_and_prints_the_export_line_seatctl_needs(
    make_run: Callable[[str], MakeRun], tmp_path: Path
) -> None:
    """`make run ARGS=...` gives the flags to the daemon, and the export line it prints lets
    a plain `seatctl sessions`, run from another directory, reach that daemon."""
    run = make_run("--dev-seats 2")
    assert run.port != 7117
    assert f'SEATD_ADMIN_SOCKET="{run.socket}"' in run.export
    seatctl = subprocess.run(
        run.shell("seatctl sessions --json", tmp_path),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert seatctl.returncode == 0, seatctl.stderr
    assert json.loads(seatctl.stdout)["cap"] == 2


def readme_first_commands() -> list[str]:
    """The shell block the README shows right after `make run`, one command per line."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"then, one line at a time:\n\n```sh\n(.*?)```", readme, re.S)
    assert block, "the README's first commands after `make run`"
    lines = [line.split("  #")[0].strip() for line in block.group(1).splitlines()]
    # `seatctl console` prints a one-time web link (its own e2e tests in test_web.py).
    return [line for line in lines if not line.startswith("seatctl console")]


def test_the_readme_first_commands_work_as_printed(
    make_run: Callable[[str], MakeRun], tmp_path: Path
) -> None:
    """After the export line, the README's hold / sessions / evict lines work as printed (only
    the daemon's port differs): the session is listed, evicted, and `seat` exits 3."""
    run = make_run("")
    hold, *rest = readme_first_commands()
    assert hold.endswith("&") and "127.0.0.1:7117" in hold
    holder = subprocess.Popen(
        run.shell("exec " + hold.removesuffix("&").replace(":7117", f":{run.port}"), tmp_path),
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding session 1"
        outputs = []
        for line in rest:
            done = subprocess.run(
                run.shell(line, tmp_path), env=ENV, capture_output=True, text=True, timeout=30
            )
            assert done.returncode == 0, f"{line}: {done.stderr}"
            outputs.append(done.stdout)
        assert "Bruno B" in outputs[0]
        assert holder.wait(20) == 3
        assert "Connection limit exceeded" in holder.stdout.read()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


def start_second(
    tmp_path: Path, short_dir: Path, *flags: str
) -> tuple[subprocess.CompletedProcess[str], list[bytes]]:
    """A second daemon on the host, `flags` making one of its listeners collide with the
    first's; it runs to its exit. Returns how it ended and what it told systemd."""
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(short_dir / "notify"))
    notify.setblocking(False)
    second = Daemon(
        tmp_path / "state-second", short_dir / "second.sock", tmp_path / "second", [*FAST, *flags]
    )
    env = {**os.environ, "NOTIFY_SOCKET": str(short_dir / "notify")}
    done = subprocess.run(second.command(), capture_output=True, text=True, timeout=30, env=env)
    told = []
    with notify:
        while True:
            try:
                told.append(notify.recv(4096))
            except BlockingIOError:
                return done, told


def metrics_port(daemon: Daemon) -> int:
    found = re.search(
        r"event=daemon\.metrics listen=127\.0\.0\.1:(\d+)", daemon.log_path.read_text()
    )
    assert found, daemon.log_path.read_text()
    return int(found.group(1))


@pytest.mark.parametrize(
    ("collide", "setting"),
    [
        (lambda d: ["--metrics-listen", f"127.0.0.1:{metrics_port(d)}"], "metrics.listen"),
        (lambda d: ["--listen", d.target], "server.listen"),
        (lambda d: ["--admin-socket", str(d.socket)], "server.admin_socket"),
    ],
    ids=["metrics", "workstations", "admin-socket"],
)
def test_a_second_daemon_on_a_taken_listener_fails_before_ready(
    make_daemon: Callable[..., Daemon],
    tmp_path: Path,
    short_dir: Path,
    collide: Callable[[Daemon], list[str]],
    setting: str,
) -> None:
    """A second daemon whose listener is taken exits 1 with one error naming the address and
    the setting to change: no traceback, no `daemon.ready`, no READY=1 to systemd."""
    first = make_daemon()
    flags = collide(first)
    done, told = start_second(tmp_path, short_dir, *flags)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert "daemon.ready" not in output
    assert not any(b"READY=1" in m for m in told)
    assert flags[1] in done.stderr and setting in done.stderr and flags[0] in done.stderr
    assert first.sessions()["in_use"] == 0


def test_a_taken_remote_admin_port_fails_before_ready(
    make_daemon: Callable[..., Daemon], tmp_path: Path, short_dir: Path
) -> None:
    """A remote admin listener on a taken port fails the start, naming admin.listen."""
    first = make_daemon()
    _ca, cert, key = make_tls(tmp_path)
    config = tmp_path / "second.toml"
    config.write_text(
        f'[admin]\nlisten = "{first.target}"\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
    )
    done, told = start_second(tmp_path, short_dir, "--config", str(config))
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output and "daemon.ready" not in output
    assert not any(b"READY=1" in m for m in told)
    assert first.target in done.stderr and "admin.listen" in done.stderr


GRPC_LOG_LINE = re.compile(r"^[DIWEF]\d{4} \d\d:\d\d:\d\d", re.M)


def remote_ctl(target: str, *args: str) -> subprocess.CompletedProcess[str]:
    """seatctl --remote as a user runs it: no SEATD_* settings in the environment."""
    env = {k: v for k, v in ENV.items() if not k.startswith(("SEATD_", "GRPC_"))}
    return subprocess.run(
        [str(BIN / "seatctl"), "--remote", target, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_remote_without_ca_names_the_target_and_the_tls_reason(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    """`seatctl --remote` to a daemon whose certificate it cannot verify (no --ca) says which
    target, that the certificate is not trusted and to pass --ca: one line, no gRPC log."""
    _ca, cert, key = make_tls(tmp_path)
    config = tmp_path / "remote.toml"
    config.write_text(f'[admin]\nlisten = "127.0.0.1:0"\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
    daemon = make_daemon("--config", str(config))
    found = re.search(r"admin_listen=(127\.0\.0\.1:\d+)", daemon.log_path.read_text())
    assert found
    done = remote_ctl(found.group(1), "--token", "sdt_x", "sessions")
    print(done.stderr)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and not GRPC_LOG_LINE.search(done.stderr)
    assert found.group(1) in done.stderr and "--ca" in done.stderr
    assert "certificate" in done.stderr and "admin.sock" not in done.stderr


def test_remote_unreachable_names_the_target(tmp_path: Path) -> None:
    """`seatctl --remote` to a port nobody listens on names that target, not the socket."""
    with socket.socket() as bound:  # bound, not listening: connections to it are refused
        bound.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{bound.getsockname()[1]}"
        done = remote_ctl(target, "sessions")
    print(done.stderr)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and not GRPC_LOG_LINE.search(done.stderr)
    assert target in done.stderr and "admin.sock" not in done.stderr


def test_seatctl_says_a_reimported_licence_is_already_in_force(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    """`seatctl licence import` of the licence in force says so, and the history keeps its
    one line."""
    private, public = tmp_path / "vendor.key", tmp_path / "vendor.pub"
    vendor("keygen", "--out-private", str(private), "--out-public", str(public))
    daemon = make_daemon("--trusted-key", str(public))
    lic = issue(private, str(show(daemon)["base_id"]), tmp_path / "anyway.lic")
    first = daemon.ctl("licence", "import", str(lic))
    assert first.returncode == 0 and "installed" in first.stdout, first.stderr
    serial = show(daemon)["serial"]
    again = daemon.ctl("licence", "import", str(lic))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"licence {serial} is already in force: nothing changed"
    history = json.loads(daemon.ctl("licence", "history", "--json").stdout)
    assert [(h["serial"], h["previous_serial"]) for h in history] == [(serial, None)]


def test_seat_hold_exits_5_when_the_licence_refuses(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    """`seat hold` against a daemon whose licence expired (grace over) exits 5, not 2 as at
    capacity, with the licence's reason."""
    private, public = tmp_path / "vendor.key", tmp_path / "vendor.pub"
    vendor("keygen", "--out-private", str(private), "--out-public", str(public))
    daemon = make_daemon("--trusted-key", str(public), "--grace-days", "0")
    lic = issue(private, str(show(daemon)["base_id"]), tmp_path / "anyway.lic")
    assert daemon.ctl("licence", "import", str(lic)).returncode == 0
    assert daemon.stop() == 0
    daemon.flags += ["--wall-clock-offset", str(400 * 86400)]
    daemon.start()
    assert show(daemon)["status"] == "expired"
    held = subprocess.run(
        [str(BIN / "seat"), "hold", "--target", daemon.target, "--user", "AA"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert held.returncode == 5, held.stderr
    assert held.stderr.startswith("seat: ") and "licence" in held.stderr
