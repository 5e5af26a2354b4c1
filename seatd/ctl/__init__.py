"""`seatctl`: the administrator's command line, over the daemon's admin socket.

One module per command group; importing them registers their commands on the root group.
"""

from seatd.ctl import (
    backup,
    cluster,
    console,
    journal,
    licence,
    policy,
    report,
    seats,
    sessions,
    status,
    tokens,
)
from seatd.ctl.app import Ctx, main

__all__ = [
    "Ctx",
    "backup",
    "cluster",
    "console",
    "journal",
    "licence",
    "main",
    "policy",
    "report",
    "seats",
    "sessions",
    "status",
    "tokens",
]
