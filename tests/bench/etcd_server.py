"""The peer: a single-member etcd (Debian's `etcd-server`, installed by `make etcd-server`).

Loopback only, on free ports, its data under a directory the caller owns; stopped by its PID
when the `with` block ends, whatever happened inside it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import grpc
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

STARTUP_SECONDS = 30.0


def free_port() -> int:
    """A loopback port nobody holds now (etcd cannot be told to pick one and say which)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class EtcdServer:
    def __init__(self, data_dir: Path) -> None:
        binary = shutil.which("etcd")
        if binary is None:
            raise RuntimeError("etcd is not installed: run `make etcd-server` (Debian etcd-server)")
        self.data_dir = data_dir
        self.log = data_dir.parent / f"{data_dir.name}.log"
        client, peer = free_port(), free_port()
        self.target = f"127.0.0.1:{client}"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    binary,
                    "--name=bench",
                    f"--data-dir={data_dir}",
                    f"--listen-client-urls=http://{self.target}",
                    f"--advertise-client-urls=http://{self.target}",
                    f"--listen-peer-urls=http://127.0.0.1:{peer}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                    f"--initial-cluster=bench=http://127.0.0.1:{peer}",
                    "--logger=zap",
                    "--log-outputs=stderr",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        with grpc.insecure_channel(self.target) as ch:
            kv = rpc_pb2_grpc.KVStub(ch)
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"etcd exited:\n{self.log.read_text()[-2000:]}")
                try:
                    kv.Range(rpc_pb2.RangeRequest(key=b"/"), timeout=1)
                    return
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)

    def __enter__(self) -> EtcdServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
