"""seatd instances over a real etcd, as subprocesses: start, SIGKILL, SIGSTOP/SIGCONT, ask
who leads. Every instance binds port 0 once (as a standby) and keeps that port for life."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.conftest import BIN, FAST, wait_for

STANDBY = re.compile(r"event=cluster\.standby .*listen=[\d.]+:(\d+)")
# The remote admin listener the instance advertises (with [admin] listen set).
ADMIN = re.compile(r"event=cluster\.standby .*admin=([\d.]+:\d+)")
# Bounded waits for a loaded machine (2 cores shared by many test runs).
START = 30.0


@dataclass
class Member:
    """One seatd instance of the cluster."""

    name: str
    root: Path
    socket: Path
    flags: list[str]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0
    logs: list[Path] = field(default_factory=list)
    # A command prefix the instance runs under (prlimit, say).
    runner: list[str] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Member:
        self.runs += 1
        log = self.root / f"{self.name}.{self.runs}.log"
        self.logs.append(log)
        port = str(self.port)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    *self.runner,
                    sys.executable,
                    "-m",
                    "seatd",
                    "serve",
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--advertise",
                    f"127.0.0.1:{port}",
                    "--name",
                    self.name,
                    "--state-dir",
                    str(self.root / f"state-{self.name}"),
                    "--admin-socket",
                    str(self.socket),
                    *self.flags,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        proc = self.proc

        def up() -> int | None:
            if proc.poll() is not None:
                raise AssertionError(f"seatd {self.name} exited:\n{log.read_text()[-3000:]}")
            found = STANDBY.search(log.read_text())
            return int(found.group(1)) if found else None

        self.port = wait_for(up, START, f"{self.name} listening")
        return self

    def text(self) -> str:
        return "".join(p.read_text() for p in self.logs)

    @property
    def admin(self) -> str:
        """HOST:PORT of its remote admin listener, as it advertises it."""
        found = ADMIN.search(self.text())
        assert found, self.text()[-3000:]
        return found.group(1)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGCONT)
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def serving(self) -> bool:
        """Health SERVING: this instance leads (a standby says NOT_SERVING)."""
        if not self.alive():
            return False
        try:
            with grpc.insecure_channel(self.target) as ch:
                answer = health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=2
                )
        except grpc.RpcError:
            return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "seatctl"), "--socket", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=30,
        )


@dataclass
class Cluster:
    members: list[Member]

    @property
    def targets(self) -> list[str]:
        return [m.target for m in self.members]

    def leader(self, timeout: float = START) -> Member:
        """The one instance that serves, once exactly one does."""

        def one() -> Member | None:
            serving = [m for m in self.members if m.serving()]
            return serving[0] if len(serving) == 1 else None

        found: Member = wait_for(one, timeout, "exactly one leader")
        return found


@pytest.fixture
def seatd_cluster(tmp_path: Path, short_dir: Path) -> Iterator[Callable[..., Cluster]]:
    made: list[Member] = []

    def make(
        endpoints: list[str],
        *flags: str,
        size: int = 2,
        site: str = "t",
        prefix: str = "s",
        ports: tuple[int, ...] = (),
        runner: tuple[str, ...] = (),
    ) -> Cluster:
        """`size` instances; `ports`: the first ones' listen ports (0, or none: any);
        `runner`: a command prefix each runs under."""
        etcd = ",".join(f"http://{e}" for e in endpoints)
        members = []
        for i in range(size):
            m = Member(
                f"{prefix}{i}",
                tmp_path,
                short_dir / f"{prefix}{i}.sock",
                [*FAST, "--etcd", etcd, "--site", site, *flags],
                port=ports[i] if i < len(ports) else 0,
                runner=list(runner),
            )
            made.append(m)
            members.append(m.start())
        return Cluster(members)

    yield make
    for m in made:
        if m.proc is not None and m.proc.poll() is None:
            m.proc.send_signal(signal.SIGCONT)
            m.proc.kill()
            m.proc.wait(10)
