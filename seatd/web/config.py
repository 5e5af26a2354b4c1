"""The web listener's settings ([web] in seatd.toml), kept apart from aiohttp so that reading
a config never imports the web stack."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WebConfig:
    # HOST:PORT of the web console and the JSON API; empty: not served.
    listen: str = ""
    # TLS, with the same options as the remote admin listener (PEM files). With client_ca,
    # browsers and scripts must also show a certificate it signed.
    tls_cert: str = ""
    tls_key: str = ""
    client_ca: str = ""
    # Serve plain HTTP on an address other hosts can reach (e.g. behind a TLS proxy on the
    # same host). Without it such a listener is refused: tokens would cross the LAN in clear.
    allow_plaintext: bool = False
    # Seconds a login lasts without a request, and at most in all.
    idle_timeout: float = 900.0
    max_age: float = 12 * 3600.0
    # Logins held at once; past it the one idle longest is logged out.
    max_logins: int = 64
    # Seconds a `seatctl console` link may wait for its one use.
    console_link_ttl: float = 60.0
    # Live feeds (/api/v1/events) open at once.
    max_event_streams: int = 32
