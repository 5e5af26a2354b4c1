"""The real daemon as a subprocess, with short real TTLs, driven by the real client and CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.accounts import accounts  # noqa: F401  (a fixture: the unprivileged users)

# Short real timings: TTL 2 s, pings every 0.5 s, a dropped stream keeps its seat 1 s.
FAST = [
    "--lease-ttl",
    "2",
    "--keepalive-interval",
    "0.5",
    "--lease-grace",
    "0.5",
    "--reattach-grace",
    "1",
    "--restart-grace",
    "2",
    "--reaper-tick",
    "0.1",
    "--metrics-listen",
    "127.0.0.1:0",
]
READY = re.compile(r"event=daemon\.ready listen=[\d.]+:(\d+)")
WEB_URL = re.compile(r"event=web\.listening url=(\S+)")
BIN = Path(sys.executable).parent


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Daemon:
    state_dir: Path
    socket: Path
    log: Path
    flags: list[str]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    runs: int = field(default=0)
    env: dict[str, str] = field(default_factory=dict)
    # A command prefix the daemon runs under (setpriv to the service user), and seatctl's.
    runner: list[str] = field(default_factory=list)
    ctl_runner: list[str] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """`seatd serve` with this daemon's addresses, state and flags."""
        return [
            *self.runner,
            sys.executable,
            "-m",
            "seatd",
            "serve",
            "--listen",
            f"127.0.0.1:{self.port}",
            "--state-dir",
            str(self.state_dir),
            "--admin-socket",
            str(self.socket),
            *self.flags,
        ]

    def start(self) -> Daemon:
        self.runs += 1
        log = self.log.with_suffix(f".{self.runs}.log")
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.command(), stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )
        proc = self.proc

        def ready() -> int | None:
            if proc.poll() is not None:
                raise AssertionError(f"seatd exited with {proc.returncode}:\n{log.read_text()}")
            found = READY.search(log.read_text())
            return int(found.group(1)) if found else None

        # Generous: a loaded machine starts a daemon in seconds, not tens; the bound only
        # decides how long a real start failure takes to be reported.
        self.port = wait_for(ready, 90, "daemon.ready")
        self.log_path = log
        return self

    @property
    def web_url(self) -> str:
        """The web console's URL, when started with --web-listen."""
        found = WEB_URL.search(self.log_path.read_text())
        assert found, "the daemon logged no web.listening (start it with --web-listen)"
        return found.group(1)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(10)

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.ctl_runner, str(BIN / "seatctl"), "--socket", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=90,
        )

    def sessions(self) -> dict[str, Any]:
        out = self.ctl("sessions", "--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory: unix socket paths must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="seatd-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_daemon(tmp_path: Path, short_dir: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def make(
        *flags: str,
        name: str = "d",
        env: dict[str, str] | None = None,
        home: Path | None = None,
        runner: list[str] | None = None,
        ctl_runner: list[str] | None = None,
    ) -> Daemon:
        # `home`: where state and socket go when the daemon runs as a user who cannot reach
        # tmp_path (root's 0700 directories).
        d = Daemon(
            (home or tmp_path) / f"state-{name}",
            (home or short_dir) / f"{name}.sock",
            tmp_path / name,
            [*FAST, *flags],
            env=env or {},
            runner=runner or [],
            ctl_runner=ctl_runner or [],
        )
        started.append(d)
        return d.start()

    yield make
    for d in started:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)


HOLDER = """
import signal, sys, threading
from seatclient import SeatClient
client = SeatClient(sys.argv[1])
seat = client.acquire(user_code=sys.argv[2], user_name="worker")
print("holding", seat.session_id, flush=True)
threading.Event().wait(60)
"""


@pytest.fixture
def holder_process() -> Iterator[Callable[[str, str], tuple[subprocess.Popen[str], int]]]:
    procs: list[subprocess.Popen[str]] = []

    def spawn(target: str, user: str) -> tuple[subprocess.Popen[str], int]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, target, user], stdout=subprocess.PIPE, text=True, env=env
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("holding "), line
        return proc, int(line.split()[1])

    yield spawn
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)


@pytest.fixture
def seat() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def run(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [str(BIN / "seat"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        procs.append(proc)
        return proc

    yield run
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def read_until(proc: subprocess.Popen[str], prefix: str) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix):
            return line.strip()
    raise AssertionError(f"no line starting with {prefix!r}; stderr: {proc.stderr.read()}")  # type: ignore[union-attr]
