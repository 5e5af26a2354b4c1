"""Random faults against a model, in cluster mode (hypothesis, bounded in steps and time).

A hypothesis state machine interleaves faults (SIGKILL and restart the leader, SIGSTOP it
past its lease and SIGCONT it, restart a standby, kill and restart one etcd member) with
client operations (acquire, release). After every step, once one instance leads, the seat
table the leader lists must be the model's: every seat the clients hold is there on its id,
nothing else is, and never more than the cap; and no held seat was ever LOST.

`make test` runs a slice (SEATD_CLUSTER_CHAOS_EXAMPLES=3, 8 steps); `make cluster-chaos`
runs more (SEATD_CLUSTER_CHAOS_EXAMPLES, SEATD_CLUSTER_CHAOS_STEPS).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from seatclient import SeatClient, SeatsExhausted, SeatState

from tests.e2e.cluster import Cluster, seatd_cluster  # noqa: F401  (a fixture)
from tests.e2e.conftest import wait_for
from tests.e2e.test_cluster import Holder
from tests.etcd import EtcdCluster

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("SEATD_CLUSTER_CHAOS_EXAMPLES", "3"))
STEPS = int(os.environ.get("SEATD_CLUSTER_CHAOS_STEPS", "8"))
CAP = 3
SETTLE = 60.0


class ClusterChaos(RuleBasedStateMachine):
    cluster: Cluster
    etcd: EtcdCluster

    def __init__(self) -> None:
        super().__init__()
        self.held: dict[int, Holder] = {}
        self.users = 0
        self.steps = 0
        # The rules run, in order (printed at the end of each run).
        self.done: list[str] = []

    # -- client operations ----------------------------------------------------------------

    @precondition(lambda self: len(self.held) < CAP)
    @rule()
    def acquire(self) -> None:
        self.done.append("acquire")
        self.users += 1
        holder = Holder(self.cluster.targets, f"U{self.users}")
        self.held[holder.seat.session_id] = holder

    @precondition(lambda self: len(self.held) == CAP)
    @rule()
    def acquire_when_full_is_refused(self) -> None:
        self.done.append("acquire_when_full_is_refused")
        with (
            SeatClient(self.cluster.targets, timeout=SETTLE) as client,
            pytest.raises(SeatsExhausted),
        ):
            client.acquire(user_code="OVER")

    @precondition(lambda self: bool(self.held))
    @rule(pick=st.integers(0, CAP - 1))
    def release(self, pick: int) -> None:
        self.done.append("release")
        # An index, not a session id: what is drawn must not depend on the servers' answers.
        session_id = sorted(self.held)[pick % len(self.held)]
        holder = self.held.pop(session_id)
        holder.seat.release()
        holder.close()

    # -- faults ---------------------------------------------------------------------------

    @rule()
    def kill_the_leader_and_restart_it(self) -> None:
        self.done.append("kill_the_leader_and_restart_it")
        leader = self.cluster.leader(SETTLE)
        leader.kill9()
        self.cluster.leader(SETTLE)
        leader.start()

    @rule()
    def pause_the_leader_past_its_lease(self) -> None:
        self.done.append("pause_the_leader_past_its_lease")
        leader = self.cluster.leader(SETTLE)
        leader.pause()
        try:
            wait_for(
                lambda: any(m is not leader and m.serving() for m in self.cluster.members),
                SETTLE,
                "a standby leading",
            )
        finally:
            leader.resume()

    @rule(pick=st.integers(0, 1))
    def restart_a_standby(self, pick: int) -> None:
        self.done.append("restart_a_standby")
        leader = self.cluster.leader(SETTLE)
        standbys = [m for m in self.cluster.members if m is not leader]
        standby = standbys[pick % len(standbys)]
        assert standby.stop() == 0
        standby.start()

    @rule(member=st.integers(0, 2))
    def kill_an_etcd_member_and_restart_it(self, member: int) -> None:
        self.done.append("kill_an_etcd_member_and_restart_it")
        self.etcd.kill(member)
        self.etcd.restart(member)

    # -- the model ------------------------------------------------------------------------

    @invariant()
    def the_leader_lists_exactly_the_held_seats(self) -> None:
        if not hasattr(self, "cluster"):
            return
        self.steps += 1
        self.cluster.leader(SETTLE)
        wait_for(
            lambda: all(h.seat.state is SeatState.ACTIVE for h in self.held.values()),
            SETTLE,
            "every held seat ACTIVE",
        )

        seen: list[str] = []

        def listed() -> bool:
            # Asked of whichever instance leads now: leadership may move while this waits
            # (a fault's after-effect), and what is checked is the table, not who holds it.
            serving = [m for m in self.cluster.members if m.serving()]
            if len(serving) != 1:
                seen[:] = [f"{len(serving)} instances serving"]
                return False
            out = serving[0].ctl("sessions", "--json")
            seen[:] = [out.stdout[-500:] + out.stderr[-500:]]
            if out.returncode != 0:
                return False
            found = {s["id"] for s in json.loads(out.stdout)["sessions"]}
            # A released seat leaves the table at its release; an expired one (a client
            # that died) would not be in the model at all, so equality is the check.
            return found == set(self.held)

        try:
            wait_for(listed, SETTLE, f"the leader listing exactly {sorted(self.held)}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; it listed: {seen}") from None
        assert len(self.held) <= CAP
        for holder in self.held.values():
            assert SeatState.LOST not in holder.states

    def teardown(self) -> None:
        for holder in self.held.values():
            holder.close()


def test_random_faults_never_lose_a_seat_or_exceed_the_cap(
    etcd_cluster: EtcdCluster,
    seatd_cluster: Callable[..., Cluster],  # noqa: F811
    tmp_path: Path,
) -> None:
    """A bounded hypothesis run of faults and client operations; the model holds after
    every step."""
    started = time.monotonic()
    runs = 0
    checked: list[int] = []

    class Run(ClusterChaos):
        def __init__(self) -> None:
            nonlocal runs
            super().__init__()
            runs += 1
            site = f"chaos{runs}"
            self.etcd = etcd_cluster
            self.cluster = seatd_cluster(
                etcd_cluster.endpoints, "--dev-seats", str(CAP), size=2, site=site, prefix=site
            )

        def teardown(self) -> None:
            checked.append(self.steps)
            print(f"cluster chaos run {runs}: {' '.join(self.done)}")
            super().teardown()
            for m in self.cluster.members:
                if m.alive():
                    m.resume()
                    m.kill9()

    Run.TestCase.settings = settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        # Every example starts real processes: no shrinking (a failure prints its steps).
        phases=[Phase.explicit, Phase.generate],
        derandomize=os.environ.get("SEATD_CLUSTER_CHAOS_SEED") is None,
        database=None,
    )
    Run.TestCase().runTest()
    took = time.monotonic() - started
    print(f"cluster chaos: {runs} runs, model checked {sum(checked)} times, {took:.0f} s")
    assert sum(checked) >= runs
