"""A single server's site moved into a cluster and back, end to end: real daemons, real
`seat hold` workstations, `seatd migrate`, and `seatctl journal verify` at every step."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO

import pytest

from tests.e2e.cluster import Cluster, Member, seatd_cluster  # noqa: F401  (a fixture)
from tests.e2e.conftest import Daemon, wait_for
from tests.etcd import EtcdCluster

pytestmark = pytest.mark.e2e

# Bounded waits for a loaded machine.
TIMEOUT = 60.0
SITE = "migrated"
# The cluster gives the migrated sessions this long to come back (the holders' target is
# down from the LMDB daemon's stop until the second instance listens on its port).
RESTART_GRACE = "60"
INTACT = re.compile(r"journal intact: (\d+) entries, chain verified up to seq (\d+)")


class Output:
    """A process's stdout lines as they come, read on a thread so every wait is bounded."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.strip())

    def since(self, start: int, prefix: str) -> str | None:
        return next((line for line in self.lines[start:] if line.startswith(prefix)), None)


def verified(ctl: subprocess.CompletedProcess[str]) -> int:
    """`seatctl journal verify` passed: the last sequence number it verified."""
    assert ctl.returncode == 0, ctl.stderr
    found = INTACT.search(ctl.stdout)
    assert found, ctl.stdout
    return int(found.group(2))


def migrate(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "seatd", "migrate", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert "the journal verifies there" in done.stdout
    return done.stdout


def test_a_site_migrated_to_etcd_keeps_its_sessions_and_one_journal_chain_and_moves_back(
    make_daemon: Callable[..., Daemon],
    seat: Callable[..., subprocess.Popen[str]],
    etcd_shared: EtcdCluster,
    seatd_cluster: Callable[..., Cluster],  # noqa: F811
) -> None:
    """Seats held on an LMDB daemon; stop it, `seatd migrate --to-etcd`, serve the site from
    two instances: the holders come back ACTIVE on their session ids, again after SIGKILL
    of the leader, and `seatctl journal verify` passes on one chain throughout; then
    `seatd migrate --to-lmdb` and a daemon on that directory verify it too."""
    single = make_daemon()
    holders = {}
    starting = [Output(seat("hold", "--target", single.target, "--user", u)) for u in ("A", "B")]
    for out in starting:
        line = wait_for(lambda out=out: out.since(0, "holding session "), TIMEOUT, "a seat")
        holders[int(line.split()[-1])] = out
    ids = set(holders)
    before = verified(single.ctl("journal", "verify"))
    port = single.port
    assert single.stop() == 0

    urls = ",".join(f"http://{e}" for e in etcd_shared.endpoints)
    migrate("--state-dir", str(single.state_dir), "--to-etcd", urls, "--site", SITE)

    # The first instance leads; the second takes the LMDB daemon's port, the holders' only
    # target, and sends them to the leader (NOT_LEADER names it).
    flags = ("--restart-grace", RESTART_GRACE)
    first = seatd_cluster(etcd_shared.endpoints, *flags, size=1, site=SITE, prefix="a")
    leader = first.leader(TIMEOUT)
    second = seatd_cluster(
        etcd_shared.endpoints, *flags, size=1, site=SITE, prefix="b", ports=(port,)
    )
    cluster = Cluster([*first.members, *second.members])
    marks = {sid: len(out.lines) for sid, out in holders.items()}

    def all_active(since: dict[int, int]) -> bool:
        return all(out.since(since[sid], "state: active") for sid, out in holders.items())

    wait_for(lambda: all_active(marks), TIMEOUT, "every holder ACTIVE on the cluster")
    listed = {s["id"] for s in sessions(leader)}
    assert listed == ids
    on_cluster = verified(leader.ctl("journal", "verify"))
    assert on_cluster >= before

    marks = {sid: len(out.lines) for sid, out in holders.items()}
    leader.kill9()
    new = cluster.leader(TIMEOUT)
    assert new is second.members[0]
    wait_for(lambda: all_active(marks), TIMEOUT, "every holder ACTIVE after the failover")
    assert {s["id"] for s in sessions(new)} == ids
    after_failover = verified(new.ctl("journal", "verify"))
    assert after_failover > on_cluster  # the failover is on the same chain
    for out in holders.values():
        assert not any(line.startswith("holding session ") for line in out.lines[1:])
    assert new.stop() == 0

    back = single.state_dir.with_name("state-back")
    migrate("--to-lmdb", str(back), "--etcd", urls, "--site", SITE)
    again = make_daemon("--restart-grace", RESTART_GRACE, name="back")
    assert again.state_dir == back
    assert {s["id"] for s in again.sessions()["sessions"]} == ids
    assert verified(again.ctl("journal", "verify")) >= after_failover


def sessions(member: Member) -> list[dict[str, object]]:
    out = member.ctl("sessions", "--json")
    assert out.returncode == 0, out.stderr
    found: list[dict[str, object]] = json.loads(out.stdout)["sessions"]
    return found
