"""`seatd-vendor`: the vendor's tool to make signing keys and issue signed licence files.

The cloud endpoint issues licences through the same `issue` function.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date
from pathlib import Path

import click

from seatd.clock import Clock, SystemClock
from seatd.entitlement import Edition, Licensee, Mode, Period
from seatd.licence.document import Licence
from seatd.licence.signing import SigningKey, generate, load_signing_key, sign, write_keys


def new_serial(clock: Clock) -> str:
    return f"L-{clock.wall():%Y%m%d}-{secrets.token_hex(4).upper()}"


def issue(key: SigningKey, licence: Licence) -> str:
    """The signed licence file's text."""
    return sign(licence, key)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@click.group()
def main() -> None:
    """Vendor tools: signing keys and licence files."""


@main.command()
@click.option("--out-private", type=click.Path(path_type=Path), required=True)
@click.option("--out-public", type=click.Path(path_type=Path), required=True)
@click.option("--key-id", help="Key id (default: derived from the public key).")
def keygen(out_private: Path, out_public: Path, key_id: str | None) -> None:
    """Make an Ed25519 signing key pair. Keep the private key secret; give daemons the public."""
    if out_private.exists():
        raise click.ClickException(f"{out_private} exists; refusing to overwrite a private key")
    key = generate(key_id)
    write_keys(key, out_private, out_public)
    click.echo(f"key id {key.kid}: private key {out_private}, public key {out_public}")


@main.command("issue")
@click.option("--key", "key_path", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--base-id", required=True, help="The customer database's 17-digit Num ID.")
@click.option("--company", required=True)
@click.option("--contact", default="")
@click.option("--address", default="")
@click.option("--postcode", default="")
@click.option("--city", default="")
@click.option("--country", default="")
@click.option("--email", default="")
@click.option("--edition", type=click.Choice([e.name for e in Edition]), required=True)
@click.option("--mode", type=click.Choice([m.name for m in Mode]), required=True)
@click.option("--period", type=click.Choice([p.name for p in Period]), required=True)
@click.option("--seats", type=click.IntRange(1, 100_000), required=True)
@click.option("--valid-until", required=True, help="Renewal date, YYYY-MM-DD.")
@click.option("--valid-from", default=None, help="YYYY-MM-DD (default: today).")
@click.option("--feature", "features", multiple=True, help="Enabled module (repeatable).")
@click.option("--auto-renew", is_flag=True)
@click.option("--latest-client-version", default="")
@click.option("--order-url", default="")
@click.option("--serial", default=None, help="Default: a new unique serial.")
@click.option(
    "--replaces",
    "replaces",
    multiple=True,
    metavar="SERIAL",
    help="A serial this licence supersedes although issued after it (repeatable): lets a "
    "daemon go back from that licence to this one.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True)
def issue_command(
    key_path: Path,
    base_id: str,
    company: str,
    contact: str,
    address: str,
    postcode: str,
    city: str,
    country: str,
    email: str,
    edition: str,
    mode: str,
    period: str,
    seats: int,
    valid_until: str,
    valid_from: str | None,
    features: tuple[str, ...],
    auto_renew: bool,
    latest_client_version: str,
    order_url: str,
    serial: str | None,
    replaces: tuple[str, ...],
    out: Path,
) -> None:
    """Write a signed licence file."""
    clock = SystemClock()
    try:
        key = load_signing_key(key_path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if not (base_id.isdigit() and len(base_id) == 17):
        raise click.BadParameter(
            "must be the 17 digits shown by `seatctl licence show`", param_hint="--base-id"
        )
    now = clock.wall()
    licence = Licence(
        serial=serial or new_serial(clock),
        base_id=base_id,
        licensee=Licensee(company, contact, address, postcode, city, country, email),
        edition=Edition[edition],
        mode=Mode[mode],
        period=Period[period],
        seats=seats,
        valid_from=_day(valid_from) if valid_from else now.date(),
        valid_until=_day(valid_until),
        issued_at=now.replace(microsecond=0).astimezone(UTC),
        auto_renew=auto_renew,
        features=features,
        latest_client_version=latest_client_version,
        order_url=order_url,
        replaces=replaces,
    )
    if licence.valid_until < licence.valid_from:
        raise click.BadParameter("ends before it starts", param_hint="--valid-until")
    out.write_text(issue(key, licence))
    click.echo(
        f"licence {licence.serial} for base {base_id}: {seats} {edition} seats until "
        f"{licence.valid_until} -> {out}"
    )
