"""What `seatctl` prints: its help, and its tables at 80 columns (a fake admin service)."""

from __future__ import annotations

from click.testing import CliRunner

from seatd import ctl


def test_help_names_the_admin_socket_environment_variable() -> None:
    """`seatctl --help` says SEATD_ADMIN_SOCKET sets the socket, as `make run`'s line does."""
    result = CliRunner().invoke(ctl.main, ["--help"])
    assert result.exit_code == 0
    assert "SEATD_ADMIN_SOCKET" in result.output
