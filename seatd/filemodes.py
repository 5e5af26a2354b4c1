"""Who may read what seatd writes: every directory and file it creates gets its mode here.

The state (the LMDB environment, its lock file, backups of it) holds lease tokens, admin
token hashes, the installation secret and the journal, so it is private to the service
user: directories 0700, files 0600. The admin socket's directory is 0750 so that the
socket's group (seatd-admin under the shipped unit) can reach the socket, whose own mode is
configured (`server.admin_socket_mode`).

Modes are set explicitly after each creation rather than left to the caller's umask: a
directory without its search bit cannot be entered even by its owner (LMDB creates its
environment directory with the *file* mode it is given, 0600, which is how a non-root daemon
once failed to open its own state), and an admin's umask of 0022 must not widen a backup.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
GROUP_DIR = 0o750


def _make_dirs(path: Path, mode: int) -> Path:
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=mode)
        except FileExistsError:
            continue  # created meanwhile by someone else: theirs to set
        os.chmod(directory, mode)
    return path


def private_dir(path: Path) -> Path:
    """`path` as a directory; what is created here (parents included) is 0700."""
    return _make_dirs(path, PRIVATE_DIR)


def group_dir(path: Path) -> Path:
    """`path` as a directory its group may enter (the admin socket's); created 0750."""
    return _make_dirs(path, GROUP_DIR)


def open_private(path: Path, flags: int = os.O_RDWR) -> int:
    """A file descriptor on `path`, created if missing; the file is 0600 either way."""
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        if os.fstat(fd).st_mode & 0o7777 != PRIVATE_FILE:
            os.fchmod(fd, PRIVATE_FILE)
    except OSError:
        os.close(fd)
        raise
    return fd


def write_private(path: Path) -> int:
    """A write-only descriptor on `path`, emptied, 0600 (backups)."""
    return open_private(path, os.O_WRONLY | os.O_TRUNC)


def copy_private(source: Path, target: Path) -> None:
    """Copy the bytes of `source` into `target`, which is 0600 whatever `source` was."""
    with source.open("rb") as src, os.fdopen(write_private(target), "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def hand_over(paths: list[Path], directory: Path) -> None:
    """Give `paths` to the owner of `directory` when root wrote them into it.

    An admin restores with sudo into the service user's state directory; files left owned
    by root there would stop the daemon from opening its own state.
    """
    if os.geteuid() != 0:
        return
    owner = directory.stat()
    for path in paths:
        os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)
