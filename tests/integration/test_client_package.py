"""The workstation library stands alone: grpcio and protobuf, nothing of the daemon."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# grpc_health and grpc_reflection are left out: grpc itself imports them whenever they are
# installed (compatibility aliases in grpc/__init__.py), client or not.
SERVER_SIDE = (
    "seatd",
    "lmdb",
    "structlog",
    "click",
    "rich",
    "cryptography",
    "grpc_status",
    "google.rpc",
    "prometheus_client",
)


def test_client_declares_only_grpcio_and_protobuf() -> None:
    """clients/python/pyproject.toml depends on grpcio and protobuf only."""
    project = tomllib.loads((ROOT / "clients/python/pyproject.toml").read_text())["project"]
    names = sorted(d.split("=")[0].split(">")[0].split("<")[0] for d in project["dependencies"])
    assert names == ["grpcio", "protobuf"]


def test_client_imports_nothing_server_side() -> None:
    """Importing the whole client, CLI included, loads no server-side module."""
    code = (
        "import sys, seatclient, seatclient.cli, seatclient.aio\n"
        f"bad = sorted(m for m in sys.modules if m.startswith({SERVER_SIDE!r}))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT / "clients/python",
    )
    assert out.stdout.strip() == ""
