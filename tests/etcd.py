"""A real etcd cluster for tests and the bench (Debian's `etcd-server`, `make etcd-server`).

Members listen on free loopback ports with fresh data directories under a directory the
caller owns (a test's tmp_path), so it runs as root or as any user. Start and stop are
bounded; every member is stopped by its PID when the `with` block ends, whatever happened,
and dies with the process that started it even when that one is killed outright (SIGKILL,
a CI timeout): each member runs in a process group of its own under util-linux's
`setpriv --pdeathsig KILL`, which has the kernel send it SIGKILL when its parent ends. (The
kernel watches the parent *thread*: start and restart members from a thread that outlives
them, as the tests and the bench do from their main thread.)
A member can be killed, paused (SIGSTOP), resumed and restarted on its data, for the
failure scenarios, and etcd's raft leadership found (Maintenance.Status) and moved to a
chosen member (MoveLeader), so a scenario kills the raft leader on purpose, not by chance.

seatd needs `--max-txn-ops` of at least `EtcdConfig.max_txn_ops` (one group commit is one
transaction); the members here run with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

from seatd.store.etcd import EtcdConfig, Fence, channel

STARTUP_SECONDS = 60.0
STOP_SECONDS = 30.0
PORT_ATTEMPTS = 5
MAX_TXN_OPS = 1024


def free_port() -> int:
    """A loopback port nobody holds now (etcd cannot be told to pick one and say which)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class EtcdCluster:
    """`members` etcd members on loopback; `endpoints` are their client addresses."""

    def __init__(self, root: Path, members: int = 3, *, extra_args: tuple[str, ...] = ()) -> None:
        binary = shutil.which("etcd")
        if binary is None:
            raise RuntimeError("etcd is not installed: run `make etcd-server` (Debian etcd-server)")
        self._binary = binary
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.names = [f"m{i}" for i in range(members)]
        self._extra = extra_args
        self._procs: list[subprocess.Popen[bytes] | None] = [None] * members
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self._pick_ports()
            try:
                for i in range(members):
                    self._spawn(i)
                self.wait_ready()
                return
            except BaseException:
                self.close()
                # A free port is only free when it is picked: another process (a parallel
                # test, the bench) may bind it before etcd does. Then start over on new ports.
                if attempt == PORT_ATTEMPTS or not self._lost_a_port():
                    raise
                for i, name in enumerate(self.names):
                    shutil.rmtree(root / name, ignore_errors=True)
                    if self.log(i).exists():  # kept beside, for whoever wonders why
                        self.log(i).rename(root / f"{name}.port-taken-{attempt}.log")

    def _pick_ports(self) -> None:
        self._client_ports = [free_port() for _ in self.names]
        self._peer_ports = [free_port() for _ in self.names]
        self.endpoints = [f"127.0.0.1:{p}" for p in self._client_ports]
        self._token = f"seatd-test-{os.getpid()}-{time.monotonic_ns()}"

    def _lost_a_port(self) -> bool:
        """Whether a member failed because a port picked for it was taken meanwhile."""
        return any(
            b"address already in use" in self.log(i).read_bytes()
            for i in range(len(self.names))
            if self.log(i).exists()
        )

    def _args(self, i: int) -> list[str]:
        cluster = ",".join(
            f"{n}=http://127.0.0.1:{p}" for n, p in zip(self.names, self._peer_ports, strict=True)
        )
        return [
            # setpriv execs etcd in place (same PID) with PR_SET_PDEATHSIG set, so no
            # member outlives this process (a preexec_fn is unsafe once threads run).
            "setpriv",
            "--pdeathsig",
            "KILL",
            self._binary,
            f"--name={self.names[i]}",
            f"--data-dir={self.root / self.names[i]}",
            f"--listen-client-urls=http://{self.endpoints[i]}",
            f"--advertise-client-urls=http://{self.endpoints[i]}",
            f"--listen-peer-urls=http://127.0.0.1:{self._peer_ports[i]}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{self._peer_ports[i]}",
            f"--initial-cluster={cluster}",
            f"--initial-cluster-token={self._token}",
            "--initial-cluster-state=new",
            f"--max-txn-ops={MAX_TXN_OPS}",
            "--logger=zap",
            "--log-outputs=stderr",
            *self._extra,
        ]

    def log(self, i: int) -> Path:
        return self.root / f"{self.names[i]}.log"

    def _spawn(self, i: int) -> None:
        with self.log(i).open("ab") as out:
            # A session (and process group) of its own: a Ctrl-C at the terminal reaches
            # the test, which stops the members in order, not the members themselves.
            self._procs[i] = subprocess.Popen(
                self._args(i), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def pid(self, i: int) -> int:
        proc = self._procs[i]
        if proc is None:
            raise RuntimeError(f"etcd member {self.names[i]} is not running")
        return proc.pid

    def running(self, i: int) -> bool:
        proc = self._procs[i]
        return proc is not None and proc.poll() is None

    def wait_ready(self, members: list[int] | None = None) -> None:
        """Until each member answers a linearizable read (which needs a quorum)."""
        deadline = time.monotonic() + STARTUP_SECONDS
        for i in members if members is not None else range(len(self.names)):
            with grpc.insecure_channel(self.endpoints[i]) as ch:
                kv = rpc_pb2_grpc.KVStub(ch)
                while True:
                    proc = self._procs[i]
                    if proc is None or proc.poll() is not None:
                        raise RuntimeError(
                            f"etcd {self.names[i]} exited:\n{self.log(i).read_text()[-2000:]}"
                        )
                    try:
                        kv.Range(rpc_pb2.RangeRequest(key=b"/"), timeout=1)
                        break
                    except grpc.RpcError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)

    def _status(self, i: int) -> rpc_pb2.StatusResponse | None:
        """Member i's own view (its id, and the raft leader it follows: 0 for none)."""
        with grpc.insecure_channel(self.endpoints[i]) as ch:
            try:
                status: rpc_pb2.StatusResponse = rpc_pb2_grpc.MaintenanceStub(ch).Status(
                    rpc_pb2.StatusRequest(), timeout=2
                )
            except grpc.RpcError:
                return None
        return status

    def raft_leader(self) -> int | None:
        """The index of etcd's raft leader as a running member sees it (None: no leader)."""
        ids: dict[int, int] = {}
        leader = 0
        for i in range(len(self.names)):
            status = self._status(i) if self.running(i) else None
            if status is not None:
                ids[status.header.member_id] = i
                leader = leader or status.leader
        return ids.get(leader)

    def wait_raft_leader(self, *, not_: int | None = None) -> int:
        """Until the running members have a raft leader (other than member `not_`): its index."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            found = self.raft_leader()
            if found is not None and found != not_:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"etcd has no raft leader after {STARTUP_SECONDS:g} s")
            time.sleep(0.05)

    def move_leader(self, i: int) -> None:
        """Make member i etcd's raft leader (etcd's MoveLeader, asked of the current one)."""
        target = self._status(i)
        if target is None:
            raise RuntimeError(f"etcd member {self.names[i]} does not answer")
        deadline = time.monotonic() + STARTUP_SECONDS
        while (now := self.wait_raft_leader()) != i:
            if time.monotonic() > deadline:
                raise TimeoutError(f"etcd's raft leadership did not move to {self.names[i]}")
            with (
                grpc.insecure_channel(self.endpoints[now]) as ch,
                contextlib.suppress(
                    grpc.RpcError  # the leader changed meanwhile: ask again
                ),
            ):
                rpc_pb2_grpc.MaintenanceStub(ch).MoveLeader(
                    rpc_pb2.MoveLeaderRequest(targetID=target.header.member_id), timeout=10
                )

    def kill(self, i: int) -> None:
        """SIGKILL member i (its data stays for `restart`)."""
        proc = self._procs[i]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(STOP_SECONDS)
        self._procs[i] = None

    def pause(self, i: int) -> None:
        os.kill(self.pid(i), signal.SIGSTOP)

    def resume(self, i: int) -> None:
        os.kill(self.pid(i), signal.SIGCONT)

    def restart(self, i: int, *, wait: bool = True) -> None:
        """Start member i again on its data directory (killed first if still running)."""
        self.kill(i)
        self._spawn(i)
        if wait:
            self.wait_ready([i])

    def close(self) -> None:
        for i, proc in enumerate(self._procs):
            if proc is None or proc.poll() is not None:
                continue
            os.kill(proc.pid, signal.SIGCONT)  # a paused member cannot act on SIGTERM
            proc.terminate()
            try:
                proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_SECONDS)
            self._procs[i] = None

    def __enter__(self) -> EtcdCluster:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def config_for(cluster: EtcdCluster, site: str, **overrides: Any) -> EtcdConfig:
    """seatd's etcd settings for one site of `cluster`."""
    return EtcdConfig(tuple(cluster.endpoints), site=site, max_txn_ops=MAX_TXN_OPS, **overrides)


def lead(config: EtcdConfig, name: str = "test") -> Fence:
    """Take the site's leadership the plain way (a leader key with no lease): the fence a
    store test writes under. Putting it again makes a new fence, and the old one stale."""
    key = config.leader_key
    with channel(config, config.endpoints[0]) as ch:
        kv = rpc_pb2_grpc.KVStub(ch)
        kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=key), timeout=10)
        put = kv.Put(rpc_pb2.PutRequest(key=key, value=name.encode()), timeout=10)
    return Fence(key, int(put.header.revision))
