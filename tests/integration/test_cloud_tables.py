"""`seatd-cloud` tables at 80 columns, over a real ledger in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from seatd.cloud import cli as cloud
from seatd.licence import vendor

BASE_ID = "82520020025896075"
COMPANY = "Boulangerie Dupont-Moreau et Fils SARL"


def run(*args: str) -> str:
    result = CliRunner().invoke(cloud.main, list(args), env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


def subscribed(tmp_path: Path) -> Path:
    """A cloud state with one paid Enterprise subscription; returns the state directory."""
    key = tmp_path / "vendor.key"
    made = CliRunner().invoke(
        vendor.main,
        ["keygen", "--out-private", str(key), "--out-public", str(tmp_path / "vendor.pub")],
    )
    assert made.exit_code == 0, made.output
    state = tmp_path / "cloud"
    run(
        "subscribe", "--state-dir", str(state), "--signing-key", str(key),
        "--base-id", BASE_ID, "--company", COMPANY, "--country", "FR",
        "--edition", "ENTERPRISE", "--mode", "LOCAL", "--period", "QUARTERLY",
        "--seats", "12", "--paid",
    )  # fmt: skip
    return state


def test_list_at_80_columns_keeps_base_ids_dates_and_amounts_whole(tmp_path: Path) -> None:
    """`seatd-cloud list` at 80 columns: base id, renewal date, serial-free amounts, order id
    and invoice number whole, nothing cut with an ellipsis, no line past 80 columns."""
    state = subscribed(tmp_path)
    listed = json.loads(run("list", "--state-dir", str(state), "--json"))
    order = listed["orders"][0]
    out = run("list", "--state-dir", str(state))
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    for whole in (
        BASE_ID,
        listed["subscriptions"][0]["renewal"],
        order["order_id"],
        order["invoice_number"],
        f"{order['amount_incl_vat']}",
        "ENTERPRISE",
        "QUARTERLY",
    ):
        assert whole in out, f"{whole!r} is not whole in:\n{out}"
    assert all(word in out for word in COMPANY.split())
