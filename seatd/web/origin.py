"""Where a state-changing request came from: the console's Origin check.

OWASP's CSRF cheat sheet ("Verifying Origin With Standard Headers"): compare the request's
source origin, its `Origin` header or else the origin of its `Referer`, with the target
origin, the one the browser addressed (scheme, the `Host` header, port). A browser sets both
headers itself and a page on another site cannot forge them; the console's pages are served
with `Referrer-Policy: same-origin`, so its own requests always carry one of the two.

A request carrying neither is refused, as the cheat sheet recommends: every browser the
console supports sends `Origin` with a POST, so only a script (or a proxy that strips headers)
sends neither, and a script should use a bearer token, which no browser attaches on its own
and which is therefore not checked. "null" (a sandboxed frame, a cross-site redirect) is
another origin. This sits beside SameSite=Strict and the login's CSRF token, not instead.

aiohttp has no such check of its own (aiohttp-csrf does tokens, which the console has).
"""

from __future__ import annotations

from yarl import URL

# Methods that change nothing: not checked (the console never changes state on them).
SAFE = frozenset({"GET", "HEAD"})


def _origin(value: str) -> str:
    """`scheme://host[:port]` of a URL, default ports dropped, host lower-cased; "" if it
    has none (the "null" origin, a relative or garbled value)."""
    try:
        url = URL(value.strip())
    except ValueError:
        return ""
    if not url.absolute or url.scheme not in ("http", "https") or not url.host:
        return ""
    return str(url.origin())


def refusal(method: str, target: URL, origin: str | None, referer: str | None) -> str:
    """Why a request to `target` must be refused, given its Origin and Referer headers
    (None when absent); "" when it may go on."""
    if method in SAFE:
        return ""
    expected = str(target.origin())
    if origin is not None:
        sent, header = _origin(origin), "Origin"
    elif referer is not None:
        sent, header = _origin(referer), "Referer"
    else:
        return (
            "the request said neither which site sent it (Origin) nor from which page "
            "(Referer), so it cannot be told from a forged one: a browser sends them on its "
            "own; a script should send Authorization: Bearer TOKEN instead of the login cookie"
        )
    if sent == expected:
        return ""
    raw = origin if header == "Origin" else referer
    shown = sent or repr((raw or "")[:100])
    return (
        f"the request came from {shown} ({header}), not from this console's own pages "
        f"({expected}): changes are accepted only from the console itself; open {expected} "
        "and try again there"
    )
