"""The real daemon under real clients, with faults injected at random moments.

Every client's history (grants with id and time, release acknowledgements, evictions with the
reason the client was told, refusals) is checked against a model of what seatd promises:
never more live sessions than the cap, no acknowledged grant lost across restarts, no released
seat coming back, no session id reused, every evicted client told its reason, and the journal
verifying after every restart. One seed drives every choice, so a run can be replayed.

Everything is bounded: cycles, every wait, every loop; the daemon and the tmpfs are stopped
in `finally` whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from seatclient import (
    AsyncSeat,
    AsyncSeatClient,
    DaemonUnavailable,
    SeatError,
    SeatsExhausted,
    SeatState,
)
from seatclient.events import EvictedEvent, SeatEvent, StateChanged
from seatclient.lease import Backoff

from tests.e2e.conftest import BIN, FAST, Daemon
from tests.tables import zero_pages_holding

CAP = 4
# A lease the daemon ended with a reason it tells the client (not "does not exist").
TOLD = ("SESSION_EXPIRED", "SESSION_EVICTED", "SESSION_RELEASED")
WORKERS = 8
EXIT_STORE_DAMAGED = 65
# Bounds on every wait (seconds).
RECOVER_WITHIN = 20.0
PROBE_WITHIN = 10.0
IDLE_CONNECTIONS = 300
# Kinds of fault and how often each is drawn.
WEIGHTS: dict[str, float] = {
    "sigkill": 3,
    "sigterm": 2,
    "pause": 2,
    "clock_forward": 1,
    "clock_back": 1,
    "idle_connections": 1,
    "admin_evict": 1,
    "map_pressure": 1,
    "corrupt": 0.5,
    "disk_full": 0.5,
}


def now() -> float:
    return time.monotonic()


@dataclass
class Grant:
    id: int
    worker: int
    granted_at: float
    release_sent_at: float | None = None
    released_at: float | None = None  # the daemon answered released=True
    told: str | None = None  # the eviction reason the client was told
    lost: bool = False  # the library reported the lease lost (no reason in its event)
    # What the daemon answers that seat's attach afterwards: the ending and its reason.
    lost_why: str | None = None


@dataclass
class History:
    grants: dict[int, Grant] = field(default_factory=dict)
    # victim, reason, when, by an admin (True) or a takeover
    evictions: list[tuple[int, str, float, bool]] = field(default_factory=list)
    refusals: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    skipped: dict[str, str] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    cycles: int = 0
    restarts: int = 0
    listings: int = 0

    def violation(self, text: str) -> None:
        print(f"VIOLATION: {text}", file=sys.stderr, flush=True)
        self.violations.append(text)

    def granted(self, session_id: int, worker: int) -> Grant:
        if session_id in self.grants:
            self.violation(f"session id {session_id} granted twice")
        grant = Grant(session_id, worker, now())
        self.grants[session_id] = grant
        return grant

    def live(self) -> list[Grant]:
        """Grants the clients still hold: not released, not ended."""
        return [
            g
            for g in self.grants.values()
            if g.release_sent_at is None and g.told is None and not g.lost
        ]

    def check_cap(self, cap: int) -> None:
        """Never more than `cap` sessions live at once, from intervals each surely live: a
        released one from its grant's answer to its release's sending; any other only at its
        grant's answer (when it ended on the daemon's side is not known to the client)."""
        points: list[tuple[float, int]] = []
        for g in self.grants.values():
            end = g.release_sent_at if g.released_at is not None and g.told is None else None
            points.append((g.granted_at, 1))
            points.append((end if end is not None else g.granted_at, -1))
        # An end and a start at the same moment: the end first (conservative).
        points.sort(key=lambda p: (p[0], p[1]))
        live = peak = 0
        for at, step in points:
            live += step
            if live > cap:
                self.violation(f"{live} sessions live at t={at:.3f} over a cap of {cap}")
                return
            peak = max(peak, live)

    def check_told(self) -> None:
        """Every eviction an admin made reached its client with its reason; every reason a
        client was told is one somebody gave; no session ends unheard (checked as it happens,
        `lost`). A takeover evicts only at capacity, so it is a reason that may be told."""
        given: dict[int, set[str]] = {}
        for victim, reason, _, _ in self.evictions:
            given.setdefault(victim, set()).add(reason)
        for victim, reason, at, admin in self.evictions:
            g = self.grants.get(victim)
            if not admin or g is None:
                continue
            if (
                g.released_at is not None
                and g.release_sent_at is not None
                and (g.release_sent_at <= at)
            ):
                continue  # released before the evict, which then found nothing to end
            if g.told not in given[victim]:
                self.violation(
                    f"session {victim} evicted by an admin ({reason!r}); its client was told "
                    f"{g.told!r}" + (" (lease lost, no reason)" if g.lost else "")
                )
        for g in self.grants.values():
            if g.told is not None and g.told not in given.get(g.id, ()):
                self.violation(f"session {g.id} was told {g.told!r}, a reason nobody gave")
            if g.told is not None and g.released_at is not None:
                self.violation(f"session {g.id} was both evicted and released")

    def table(self) -> list[tuple[str, object]]:
        grants = self.grants.values()
        rows: list[tuple[str, object]] = [
            ("cycles", self.cycles),
            ("acquires (granted)", len(self.grants)),
            ("releases (acknowledged)", sum(g.released_at is not None for g in grants)),
            ("evictions (told a reason)", sum(g.told is not None for g in grants)),
            ("leases lost (an ending told)", sum(g.lost for g in grants)),
            *((f"refusals: {k}", n) for k, n in sorted(self.refusals.items())),
            ("daemon restarts", self.restarts),
            ("session listings checked", self.listings),
        ]
        rows += [(f"fault: {k}", self.faults[k]) for k in WEIGHTS]
        rows += [(f"skipped: {k}", why) for k, why in self.skipped.items()]
        rows.append(("violations", len(self.violations)))
        return rows


class Site:
    """The daemon as the harness drives it: its config, its tmpfs, restarts, checks."""

    def __init__(self, work: Path, rng: random.Random, history: History) -> None:
        self.work, self.rng, self.h = work, rng, history
        self.disk: Path | None = None
        self.offset = 0.0
        self.map_size = 0  # 0: the default ceiling
        short = Path(tempfile.mkdtemp(prefix="chaos-", dir="/tmp"))
        self.short = short
        state_root = work
        if os.geteuid() == 0:
            self.disk = work / "disk"
            self.disk.mkdir()
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(self.disk)],
                check=True,
                timeout=30,
            )
            state_root = self.disk
        else:
            history.skipped["disk_full"] = "needs root for a small tmpfs"
        self.config = work / "seatd.toml"
        self.write_config()
        self.daemon = Daemon(
            state_root / "state",
            short / "a.sock",
            work / "daemon",
            [*FAST, "--dev-seats", str(CAP), "--config", str(self.config)],
        )

    def write_config(self) -> None:
        store = f"[store]\nmap_size = {self.map_size}\n" if self.map_size else ""
        self.config.write_text(f"[dev]\nwall_clock_offset = {self.offset}\n{store}")

    @property
    def data(self) -> Path:
        return self.daemon.state_dir / "seatd.lmdb" / "data.mdb"

    def start(self) -> None:
        self.daemon.start()
        self.h.restarts += 1

    def running(self) -> bool:
        return self.daemon.proc is not None and self.daemon.proc.poll() is None

    def exit_code(self) -> int | None:
        return self.daemon.proc.returncode if self.daemon.proc else None

    def close(self) -> None:
        proc = self.daemon.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if self.disk is not None:
            subprocess.run(["umount", "-l", str(self.disk)], timeout=30, check=False)
        subprocess.run(["rm", "-rf", str(self.short)], timeout=30, check=False)

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.daemon.ctl(*args)

    def verify_journal(self, when: str) -> None:
        out = self.ctl("journal", "verify")
        if out.returncode != 0:
            self.h.violation(f"journal verify failed {when}: {out.stdout}{out.stderr}")

    def listing(self) -> None:
        """The daemon's own list: within the cap, and no seat released earlier in it."""
        sent = now()
        out = self.ctl("sessions", "--json")
        if out.returncode != 0:
            self.h.violation(f"seatctl sessions failed: {out.stderr}")
            return
        self.h.listings += 1
        listed = json.loads(out.stdout)
        ids = [s["id"] for s in listed["sessions"]]
        if len(ids) > CAP:
            self.h.violation(f"the daemon lists {len(ids)} sessions over a cap of {CAP}")
        for i in ids:
            g = self.h.grants.get(i)
            if g is not None and g.released_at is not None and g.released_at < sent:
                self.h.violation(f"session {i} was released, and is listed again")

    # -- faults ----------------------------------------------------------------------------

    def restart(self, sig: int) -> None:
        proc = self.daemon.proc
        assert proc is not None
        proc.send_signal(sig)
        code = proc.wait(30)
        if sig == signal.SIGTERM and code != 0:
            self.h.violation(f"SIGTERM: the daemon exited {code}, not 0")
        self.start()
        self.verify_journal(f"after restart {self.h.restarts}")

    def pause(self) -> None:
        proc = self.daemon.proc
        assert proc is not None
        proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(self.rng.uniform(0.2, 1.0))
        finally:
            proc.send_signal(signal.SIGCONT)

    def clock_jump(self, direction: int) -> None:
        """Restart with the wall clock moved by an hour to three days (cumulative)."""
        self.offset += direction * self.rng.uniform(3600, 3 * 86400)
        self.write_config()
        self.restart(signal.SIGTERM)

    def squeeze(self, map_size: int) -> None:
        """Restart with the map's ceiling at `map_size` (0: back to the default)."""
        self.map_size = map_size
        self.write_config()
        self.restart(signal.SIGTERM)

    def corrupt(self) -> None:
        """Damage the stopped table: the daemon must refuse it clearly; restore the backup."""
        backup = self.work / f"backup-{self.h.cycles}.mdb"
        out = self.ctl("backup", str(backup))
        if out.returncode != 0:
            self.h.violation(f"seatctl backup failed: {out.stderr}")
            return
        assert self.daemon.stop() == 0
        how = self.rng.choice(["truncate", "zero", "delete"])
        if how == "truncate":
            self.data.write_bytes(self.data.read_bytes()[: self.data.stat().st_size // 2])
        elif how == "zero":
            zero_pages_holding(self.data, b"chaos")
        else:
            self.data.unlink()
        refused = subprocess.run(self.daemon.command(), capture_output=True, text=True, timeout=60)
        said = refused.stdout + refused.stderr
        if (
            refused.returncode != EXIT_STORE_DAMAGED
            or "seatd restore" not in said
            or "Traceback" in said
        ):
            self.h.violation(f"corrupt ({how}): started or refused unclearly: {said[-800:]}")
        restore = [str(BIN / "seatd"), "restore", "--state-dir", str(self.daemon.state_dir)]
        out = subprocess.run([*restore, str(backup)], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            self.h.violation(f"seatd restore failed: {out.stdout}{out.stderr}")
        self.start()
        self.verify_journal("after a restore")

    @contextlib.contextmanager
    def idle_connections(self) -> Iterator[None]:
        """Many TCP connections that never send a byte, held open for the block."""
        held: list[socket.socket] = []
        try:
            for _ in range(IDLE_CONNECTIONS):
                try:
                    held.append(socket.create_connection(("127.0.0.1", self.daemon.port), 2))
                except OSError:
                    break
            yield
        finally:
            for s in held:
                s.close()

    @contextlib.contextmanager
    def disk_full(self) -> Iterator[None]:
        """Fill the tmpfs holding the state, for the block."""
        assert self.disk is not None
        filler = self.disk / "filler"
        try:
            with filler.open("wb") as f:
                for _ in range(64):  # 64 MiB at most; the tmpfs is 48
                    try:
                        f.write(b"\0" * (1 << 20))
                        f.flush()
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
            yield
        finally:
            filler.unlink(missing_ok=True)


class Workers:
    """WORKERS asyncio clients churning seats: acquire (sometimes waiting, sometimes taking
    over), hold, release; each records what it was told."""

    def __init__(self, target: str, rng: random.Random, history: History) -> None:
        self.rng, self.h = rng, history
        self.stop = asyncio.Event()
        self.gate = asyncio.Event()  # cleared: workers release and wait (quiesce)
        self.gate.set()
        self.idle = [False] * WORKERS
        self.backoff = Backoff(base=0.1, cap=1.0, rng=random.Random(rng.random()))
        self.clients = [
            AsyncSeatClient(target, hostname=f"chaos-{i}", timeout=3.0, backoff=self.backoff)
            for i in range(WORKERS)
        ]
        self.seeds = [rng.random() for _ in range(WORKERS)]
        self.tasks: list[asyncio.Task[None]] = []
        self.takeovers = 0
        self.seats: dict[int, AsyncSeat] = {}  # held right now
        self.reported: set[int] = set()

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self.run(i)) for i in range(WORKERS)]

    def listener(self, session_id: int) -> object:
        def on_event(event: SeatEvent) -> None:
            g = self.h.grants.get(session_id)
            if g is None:
                return
            if isinstance(event, EvictedEvent):
                g.told = event.reason
            elif isinstance(event, StateChanged) and event.new is SeatState.LOST:
                # What the daemon said when it ended the lease: an ending with its reason
                # (expired, say), or "does not exist" (the grant was lost).
                g.lost = True
                seat = self.seats.get(session_id)
                ending = seat.ending if seat is not None else None
                g.lost_why = f"{ending.code}: {ending}" if ending else "no word from the daemon"

        return on_event

    async def run(self, i: int) -> None:
        rng = random.Random(self.seeds[i])
        client = self.clients[i]
        while not self.stop.is_set():
            if not self.gate.is_set():
                self.idle[i] = True
                await self.gate.wait()
                self.idle[i] = False
                continue
            roll = rng.random()
            victim: int | None = None
            reason = ""
            live = [g.id for g in self.h.live() if g.worker != i]
            if roll > 0.85 and live:
                self.takeovers += 1
                victim, reason = rng.choice(sorted(live)), f"chaos takeover {self.takeovers}"
            try:
                seat = await client.acquire(
                    user_code=f"U{i}",
                    user_name="chaos",
                    wait=1.0 if roll < 0.2 else None,
                    evict_session=victim,
                    reason=reason,
                )
            except SeatsExhausted:
                self.h.refusals["exhausted"] += 1
                await asyncio.sleep(rng.uniform(0.05, 0.3))
                continue
            except SeatError as exc:
                self.h.refusals[type(exc).__name__] += 1
                await asyncio.sleep(rng.uniform(0.05, 0.3))
                continue
            grant = self.h.granted(seat.session_id, i)
            seat.add_listener(self.listener(seat.session_id))  # type: ignore[arg-type]
            if victim is not None:
                self.h.evictions.append((victim, reason, grant.granted_at, False))
            self.seats[seat.session_id] = seat
            try:
                await self.hold(seat, grant, rng.uniform(0.2, 2.0))
            finally:
                del self.seats[seat.session_id]

    async def hold(self, seat: AsyncSeat, grant: Grant, seconds: float) -> None:
        deadline = now() + seconds
        while now() < deadline and self.gate.is_set() and not self.stop.is_set():
            if await seat.wait(0.1) not in (SeatState.ACTIVE, SeatState.JEOPARDY):
                return
        # A client that wants to release waits to be reattached first (bounded), so that an
        # eviction while it was away reaches it.
        limit = now() + RECOVER_WITHIN
        while seat.state is SeatState.JEOPARDY and now() < limit:
            await seat.wait(0.1)
        if seat.state is not SeatState.ACTIVE:
            return
        grant.release_sent_at = now()
        # Unacknowledged (False): the model treats its end as unknown.
        if await seat.release(timeout=3.0):
            grant.released_at = now()

    async def back_on_their_ids(self, when: str) -> None:
        """Every seat a client holds is active again (bounded), or ended with a reason told."""
        for _ in range(int(RECOVER_WITHIN / 0.1)):
            if not any(s.state is SeatState.JEOPARDY for s in self.seats.values()):
                break
            await asyncio.sleep(0.1)
        for sid, s in list(self.seats.items()):
            if s.state is SeatState.JEOPARDY:
                self.h.violation(f"session {sid} not back on its id {when}")
        for g in self.h.grants.values():
            if g.lost and g.id not in self.reported:
                self.reported.add(g.id)
                if not (g.lost_why or "").startswith(TOLD):
                    self.h.violation(f"session {g.id} lost {when}; the daemon says: {g.lost_why}")

    async def quiesce(self) -> None:
        self.gate.clear()
        for _ in range(int(RECOVER_WITHIN * 2 / 0.05)):
            if all(self.idle):
                break
            await asyncio.sleep(0.05)
        if not all(self.idle):
            self.h.violation("workers did not release their seats within the bound")

    async def close(self) -> None:
        self.stop.set()
        self.gate.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 60)
        for t in self.tasks:
            t.cancel()
        for c in self.clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.close(), 10)


async def probe(target: str) -> str | None:
    """A fresh client is answered (granted or refused) within the bound; None if so."""
    client = AsyncSeatClient(target, hostname="probe", timeout=PROBE_WITHIN)
    try:
        seat = await client.acquire(user_code="PROBE", user_name="probe")
        await seat.release()
    except SeatsExhausted:
        pass
    except DaemonUnavailable as exc:
        return str(exc)
    except SeatError:
        pass  # an answer (rate limited, ...): the daemon is not wedged
    finally:
        await client.close()
    return None


async def run(
    seed: int, cycles: int, work: Path, *, every_kind: bool = False, quiet: bool = False
) -> History:
    """`cycles` faults drawn by weight; with `every_kind`, each kind once (in a seeded order)
    before any is drawn."""
    rng = random.Random(seed)
    h = History()
    site = Site(work, rng, h)
    kinds = [k for k in WEIGHTS if k not in h.skipped]
    weights = [WEIGHTS[k] for k in kinds]
    order = rng.sample(kinds, len(kinds)) if every_kind else []
    logging.getLogger("seatclient").setLevel(logging.ERROR)
    workers: Workers | None = None
    try:
        await asyncio.to_thread(site.start)
        workers = Workers(site.daemon.target, rng, h)
        workers.start()
        for cycle in range(cycles):
            h.cycles = cycle + 1
            await asyncio.sleep(rng.uniform(0.3, 1.2))
            kind = order[cycle] if cycle < len(order) else rng.choices(kinds, weights)[0]
            h.faults[kind] += 1
            if not quiet:
                print(f"cycle {cycle + 1}/{cycles}: {kind}", flush=True)
            if not site.running():
                h.violation(f"the daemon exited on its own ({site.exit_code()})")
                await asyncio.to_thread(site.start)
            if kind == "sigkill":
                await asyncio.to_thread(site.restart, signal.SIGKILL)
            elif kind == "sigterm":
                await asyncio.to_thread(site.restart, signal.SIGTERM)
            elif kind == "pause":
                await asyncio.to_thread(site.pause)
            elif kind in ("clock_forward", "clock_back"):
                await asyncio.to_thread(site.clock_jump, 1 if kind == "clock_forward" else -1)
            elif kind == "admin_evict":
                live = sorted(g.id for g in h.live())
                if live:
                    victim = rng.choice(live)
                    reason = f"chaos admin evict {cycle}"
                    sent = now()
                    out = await asyncio.to_thread(
                        site.ctl, "evict", str(victim), "--reason", reason
                    )
                    if out.returncode == 0:
                        h.evictions.append((victim, reason, sent, True))
            elif kind == "map_pressure":
                # The smallest ceiling allowed: the table is at or past it at once.
                await asyncio.to_thread(site.squeeze, 1 << 20)
                await asyncio.sleep(rng.uniform(1.0, 2.0))
                said = await probe(site.daemon.target)
                if said or not site.running():
                    h.violation(f"under map pressure: {said or site.exit_code()}")
                await workers.back_on_their_ids(f"under map pressure (cycle {cycle + 1})")
                await asyncio.to_thread(site.squeeze, 0)
            elif kind == "corrupt":
                await workers.quiesce()
                await asyncio.to_thread(site.corrupt)
                workers.gate.set()
            elif kind in ("idle_connections", "disk_full"):
                cm = site.idle_connections() if kind == "idle_connections" else site.disk_full()
                with cm:
                    await asyncio.sleep(rng.uniform(0.5, 1.5))
                    if kind == "idle_connections":
                        said = await probe(site.daemon.target)
                        if said:
                            h.violation(f"under {IDLE_CONNECTIONS} idle connections: {said}")
                        out = await asyncio.to_thread(site.ctl, "status")
                        if out.returncode != 0:
                            h.violation(f"seatctl status under idle connections: {out.stderr}")
                if not site.running():
                    h.violation(f"{kind}: the daemon exited ({site.exit_code()})")
                    await asyncio.to_thread(site.start)
                said = await probe(site.daemon.target)
                if said:
                    h.violation(f"after {kind}: a fresh client is not answered: {said}")
            await workers.back_on_their_ids(f"after {kind} (cycle {cycle + 1})")
            await asyncio.to_thread(site.listing)
        await workers.quiesce()
        await asyncio.to_thread(site.listing)
        await asyncio.to_thread(site.verify_journal, "at the end")
        h.check_cap(CAP)
        h.check_told()
    finally:
        if workers is not None:
            await workers.close()
        site.close()
    return h


def print_table(seed: int, h: History) -> None:
    print(f"\nchaos seed {seed} (replay: make chaos SEED={seed})")
    for name, value in h.table():
        print(f"  {name:<32} {value}")
    for v in h.violations:
        print(f"  VIOLATION: {v}")
