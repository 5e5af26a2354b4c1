"""The console's languages: which one a request gets, its catalog, and locale formatting.

English and French. A request gets the language it chose (the `lang` cookie the language
switch sets), else the best match of the browser's Accept-Language, else English. Messages
come from gettext catalogs compiled from `catalogs/<lang>/LC_MESSAGES/messages.po` (`make
catalogs`; `make translations` re-extracts the templates' messages into them). Dates and
numbers are formatted by Babel in the request's locale; times are shown both in the server's
local zone and in UTC, as the seeds' sessions screen does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from functools import cache
from pathlib import Path

from babel import Locale, dates, numbers
from babel.support import NullTranslations, Translations

LANGUAGES = ("en", "fr")
DEFAULT = "en"
CATALOGS = Path(__file__).parent / "catalogs"
# The cookie the language switch sets (a preference, not a credential).
COOKIE = "seatd_lang"


def _quality(part: str) -> tuple[str, float]:
    tag, _, params = part.strip().partition(";")
    q = 1.0
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name == "q":
            try:
                q = float(value)
            except ValueError:
                q = 0.0
    return tag.strip(), q


def negotiate(accept_language: str, chosen: str | None = None) -> str:
    """The language for a request: `chosen` if it is one of ours, else the browser's best."""
    if chosen in LANGUAGES:
        return chosen
    # Bounded: a header of a thousand tags costs no more than its first twenty.
    ranked = sorted(
        (_quality(p) for p in accept_language.split(",")[:20] if p.strip()),
        key=lambda tq: -tq[1],
    )
    preferred = [tag.replace("-", "_") for tag, q in ranked if q > 0 and tag != "*"]
    found = Locale.negotiate(preferred, list(LANGUAGES), sep="_")
    return found.language if found is not None else DEFAULT


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalog of `language` (English needs none: its messages are the ids)."""
    if language == DEFAULT:
        return NullTranslations()
    found = Translations.load(str(CATALOGS), [language])
    if not isinstance(found, Translations):
        raise RuntimeError(f"no compiled {language} catalog under {CATALOGS}: run `make catalogs`")
    return found


@dataclass(frozen=True, slots=True)
class Formats:
    """Dates, times and numbers in one language, times in the server's zone and UTC."""

    language: str
    local_zone: tzinfo

    def number(self, value: float | Decimal) -> str:
        return numbers.format_decimal(value, locale=self.language)

    def money(self, value: Decimal, currency: str) -> str:
        return numbers.format_currency(value, currency, locale=self.language)

    def date(self, value: dt.date | datetime) -> str:
        if isinstance(value, datetime):
            value = value.astimezone(self.local_zone).date()
        return dates.format_date(value, format="medium", locale=self.language)

    def day(self, value: dt.date) -> str:
        """A short day for an axis label: "2 Dec" / "2 déc."."""
        return dates.format_skeleton("MMMd", value, locale=self.language)

    def local(self, value: datetime) -> str:
        """Date and time in the server's local zone."""
        return dates.format_datetime(
            value, format="medium", tzinfo=self.local_zone, locale=self.language
        )

    def utc(self, value: datetime) -> str:
        return dates.format_datetime(value, format="medium", tzinfo=UTC, locale=self.language)

    def time_local(self, value: datetime) -> str:
        return dates.format_time(
            value, format="medium", tzinfo=self.local_zone, locale=self.language
        )

    def time_utc(self, value: datetime) -> str:
        return dates.format_time(value, format="medium", tzinfo=UTC, locale=self.language)

    def zone_name(self, value: datetime) -> str:
        """The local zone's short name at `value` ("CET"), or its offset if it has none."""
        local = value.astimezone(self.local_zone)
        return local.tzname() or dates.get_timezone_gmt(local, locale=self.language)


def duration(seconds: float) -> str:
    """A duration as h:mm:ss, the same in both languages (the page's script ticks it)."""
    h, rem = divmod(max(0, int(seconds)), 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}"
