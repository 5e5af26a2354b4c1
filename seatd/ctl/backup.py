"""`seatctl backup`: a verified copy of the live state."""

from __future__ import annotations

import os
from pathlib import Path

import click
from seatclient.v1 import admin_pb2

from seatd import filemodes, integrity
from seatd.ctl.app import Ctx, main
from seatd.errors import StateError


@main.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_obj
def backup(obj: Ctx, file: Path) -> None:
    """A consistent copy of the daemon's state while it runs, verified once written (every
    page read, every record decoded, the hash chain checked); restore with `seatd restore`."""
    size = 0
    partial = file.with_name(file.name + ".partial")
    try:
        # The whole state (tokens, journal): readable by whoever runs seatctl backup only.
        fd = filemodes.write_private(partial)
    except OSError as exc:
        raise click.ClickException(
            f"cannot write the backup to {file}: {exc.strerror or exc}; choose a directory "
            "you can write to"
        ) from None
    with obj.admin() as admin, os.fdopen(fd, "wb") as out:
        for part in admin.Backup(admin_pb2.BackupRequest(), timeout=600):
            out.write(part.chunk)
            size += len(part.chunk)
    try:
        report = integrity.check_backup(partial)
    except StateError as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(
            f"the copy did not verify, so no backup was written to {file}: {exc}"
        ) from None
    partial.replace(file)
    click.echo(f"backup written to {file} ({size} bytes) and verified: {report.summary()}")
