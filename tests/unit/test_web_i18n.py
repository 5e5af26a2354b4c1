"""The console's languages (seatd.web.i18n): negotiation, catalogs, locale formatting."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from seatd.web import i18n

WEB = Path(i18n.__file__).parent
PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("header", "chosen", "expected"),
    [
        ("fr-FR,fr;q=0.9,en;q=0.8", None, "fr"),
        ("en-GB,en;q=0.9", None, "en"),
        ("de-DE,fr;q=0.5,en;q=0.4", None, "fr"),
        ("de-DE", None, "en"),
        ("", None, "en"),
        ("fr;q=0,en", None, "en"),
        ("fr-CA", "en", "en"),
        ("en", "fr", "fr"),
        ("en", "xx", "en"),
        ("garbage;q=abc,,;", None, "en"),
    ],
)
def test_the_language_is_the_choice_then_the_browsers_best_then_english(
    header: str, chosen: str | None, expected: str
) -> None:
    """A chosen language wins, else Accept-Language by quality, else English."""
    assert i18n.negotiate(header, chosen) == expected


def test_a_huge_accept_language_header_is_read_only_in_part() -> None:
    """Ten thousand tags cost no more than twenty: French past the twentieth is not seen."""
    assert i18n.negotiate("de," * 10_000 + "fr") == "en"


def test_french_dates_and_numbers_follow_the_french_locale() -> None:
    """French: day before month, month names in French, a comma for decimals."""
    f = i18n.Formats("fr", PARIS)
    assert f.date(date(2026, 12, 31)) == "31 déc. 2026"
    assert f.number(1234.5) == "1\u202f234,5"
    # 15:11 UTC is 16:11 in Paris in winter.
    moment = datetime(2025, 12, 31, 15, 11, 56, tzinfo=UTC)
    assert f.local(moment) == "31 déc. 2025, 16:11:56"
    assert f.utc(moment) == "31 déc. 2025, 15:11:56"


def test_english_dates_show_local_and_utc_times() -> None:
    """English: the same moment in the server's zone and in UTC."""
    f = i18n.Formats("en", PARIS)
    moment = datetime(2025, 12, 31, 15, 11, 56, tzinfo=UTC)
    assert f.local(moment) == "Dec 31, 2025, 4:11:56\u202fPM"
    assert f.time_utc(moment) == "3:11:56\u202fPM"
    assert f.zone_name(moment) == "CET"


def test_durations_read_as_hours_minutes_seconds() -> None:
    """Durations as h:mm:ss, never negative."""
    assert i18n.duration(291) == "0:04:51"
    assert i18n.duration(3 * 3600 + 5) == "3:00:05"
    assert i18n.duration(-5) == "0:00:00"


def test_every_message_of_the_pages_has_a_french_translation() -> None:
    """Each message the templates and pages use is in the French catalog, translated."""
    method_map = [("templates/**.html", "jinja2"), ("**.py", "python")]
    used = {
        m[2] if isinstance(m[2], str) else m[2][0]
        for m in extract_from_dir(
            str(WEB),
            method_map,
            keywords={"_": None, "N_": None, "ngettext": (1, 2)},
            options_map={"templates/**.html": {"silent": "false"}},
        )
    }
    with (WEB / "catalogs/fr/LC_MESSAGES/messages.po").open("rb") as f:
        catalog = read_po(f)
    untranslated = sorted(
        m for m in used if m not in catalog or not all(_strings(catalog[m].string))
    )
    assert used and not untranslated, f"run `make translations` and translate: {untranslated}"


def _strings(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


def test_the_french_catalog_is_compiled_and_loads() -> None:
    """`make catalogs` built the French .mo the daemon loads."""
    assert i18n.translations("fr").gettext("Open sessions") == "Sessions ouvertes"
