"""The daemon's file descriptors: as many as the system grants, and a reserve kept free.

Every workstation connection takes a descriptor. Under systemd's default soft limit (1,024)
a thousand idle connections used to leave none for the admin socket, the store or the log;
now the soft limit is raised to the hard one at start, and the workstation port accepts at
most what leaves `RESERVE` descriptors for everything else.
"""

from __future__ import annotations

import resource

import structlog

log = structlog.get_logger("seatd")

# Descriptors kept free of workstation connections: the admin socket and its callers, the
# LMDB files, the metrics and remote-admin listeners, cloud sync, grpc's own.
RESERVE = 128
# What to ask for when the hard limit is unlimited (Linux refuses more than fs.nr_open).
UNLIMITED_ASK = 1 << 20


def raise_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = UNLIMITED_ASK if hard == resource.RLIM_INFINITY else hard
    if want > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError) as exc:
            log.warning("daemon.nofile_not_raised", soft=soft, hard=hard, error=str(exc))
    return soft


def connection_cap(requested: int, soft: int | None = None) -> int:
    """Workstation connections to accept: `requested`, but never into the reserve of the
    soft limit `soft` (None: the one in force)."""
    if soft is None:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft == resource.RLIM_INFINITY:
            return requested
    return max(1, min(requested, soft - RESERVE))
