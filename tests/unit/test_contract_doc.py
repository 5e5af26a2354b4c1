"""docs/contract.md stays true: every reason, metadata key, validated field and RPC is in it.

A reason added to `seatclient.contract`, a field rule added to `seatd.transport.validate` or
an RPC added to a proto fails here until the page says it.
"""

from __future__ import annotations

from pathlib import Path

from seatclient import contract
from seatclient.v1 import admin_pb2, seat_pb2

from seatd.transport import validate

DOC = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
PREFIX = "seatd.v1."


def section(title: str) -> str:
    """The text of the `## title` section."""
    text = DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def rows(title: str) -> list[list[str]]:
    """The cells of each body row of the section's table."""
    found = []
    for line in section(title).splitlines():
        if line.startswith("| `"):
            found.append([cell.strip() for cell in line.strip("|").split("|")])
    return found


def limits(rule: validate.Rule) -> tuple[str, str]:
    """How the field table states a rule: (required or optional, limits)."""
    if isinstance(rule, validate.Text):
        several = ", several lines" if rule.multiline else ""
        return ("required" if rule.required else "optional"), f"≤ {rule.limit} characters{several}"
    if isinstance(rule, validate.Number):
        return ("required" if rule.low > 0 else "optional"), f"{rule.low} to {rule.high}"
    if isinstance(rule, validate.Seconds):
        return "optional", f"{rule.low:g} to {rule.high:g} s"
    if isinstance(rule, validate.Choice):
        return "required", f"one of {', '.join(rule.allowed)}"
    if isinstance(rule, validate.Time):
        return "optional", "a date in the years 1 to 9999"
    if isinstance(rule, validate.Each):
        return "optional", f"≤ {rule.most} values, each ≤ {rule.rule.limit} characters"
    return "optional", "a message, checked field by field"


def test_every_reason_code_is_in_the_error_table() -> None:
    """Each reason in seatclient.contract.Reason has a row in the error table."""
    table = " ".join(row[0] for row in rows("Errors"))
    reasons = {v for k, v in vars(contract.Reason).items() if not k.startswith("_")}
    missing = {r for r in reasons if f"`{r}`" not in table}
    assert not missing, f"docs/contract.md, ## Errors: add a row for {sorted(missing)}"


def test_every_metadata_key_is_documented() -> None:
    """Each metadata key in seatclient.contract.Meta is named in the error section."""
    keys = {v for k, v in vars(contract.Meta).items() if not k.startswith("_")}
    text = section("Errors")
    missing = {k for k in keys if f"`{k}`" not in text}
    assert not missing, f"docs/contract.md, ## Errors: document {sorted(missing)}"


def test_every_validated_field_is_documented_with_its_limits() -> None:
    """Each field rule in validate.RULES has a row stating its requiredness and limits as
    validate.py does, and every row is a field the daemon validates."""
    documented = {row[0].strip("`"): (row[1], row[2]) for row in rows("Request fields")}
    expected = {name.removeprefix(PREFIX): limits(rule) for name, rule in validate.RULES.items()}
    wrong = {
        name: (documented.get(name), want)
        for name, want in expected.items()
        if documented.get(name) != want
    }
    assert not wrong, f"docs/contract.md, ## Request fields (documented, validate.py): {wrong}"
    assert set(documented) <= set(expected), set(documented) - set(expected)


def test_every_rpc_in_the_protos_is_documented() -> None:
    """Each method of each service in the protos has a row in the RPC table."""
    table = {row[0].strip("`") for row in rows("The RPCs")}
    methods = {
        f"{service.name}.{method.name}"
        for module in (seat_pb2, admin_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert not methods - table, f"docs/contract.md, ## The RPCs: add {sorted(methods - table)}"



def test_every_licence_reason_is_in_the_error_table() -> None:
    """Each reason in seatclient.contract.LicenceReason is named in the error table."""
    table = " ".join(row[0] for row in rows("Errors"))
    reasons = {v for k, v in vars(contract.LicenceReason).items() if not k.startswith("_")}
    assert reasons, "LicenceReason lists no reason"
    missing = {r for r in reasons if f"`{r}`" not in table}
    assert not missing, f"docs/contract.md, ## Errors: add {sorted(missing)} to the LICENCE_ row"
