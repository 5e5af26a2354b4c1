"""[web]: the console's listener settings and the checks `seatd check-config` makes."""

from __future__ import annotations

import pytest

from seatd import config
from seatd.errors import ConfigError


def test_web_console_is_off_by_default() -> None:
    """With no [web] listen, no console is served."""
    assert config.build({}).web.listen == ""


def test_plaintext_web_on_loopback_is_allowed() -> None:
    """A plain-HTTP console on 127.0.0.1 is fine: only this host reaches it."""
    assert config.build({"web": {"listen": "127.0.0.1:7118"}}).web.listen == "127.0.0.1:7118"


@pytest.mark.parametrize("listen", ["0.0.0.0:7118", "192.168.1.10:7118", "[::]:7118"])
def test_plaintext_web_on_the_network_is_refused(listen: str) -> None:
    """A plain-HTTP console other hosts can reach is refused, saying what to do."""
    with pytest.raises(ConfigError, match=r"web\.tls_cert and web\.tls_key"):
        config.build({"web": {"listen": listen}})


def test_plaintext_web_on_the_network_allowed_explicitly() -> None:
    """allow_plaintext = true lets a plain-HTTP console listen on the network."""
    built = config.build({"web": {"listen": "0.0.0.0:7118", "allow_plaintext": True}})
    assert built.web.allow_plaintext


def test_web_with_tls_may_listen_on_the_network() -> None:
    """With a certificate and key the console may listen on any address."""
    built = config.build(
        {"web": {"listen": "0.0.0.0:7118", "tls_cert": "c.pem", "tls_key": "k.pem"}}
    )
    assert built.web.tls_cert == "c.pem"


def test_web_tls_cert_needs_its_key() -> None:
    """A certificate without its key (or the reverse) is refused."""
    with pytest.raises(ConfigError, match="go together"):
        config.build({"web": {"tls_cert": "c.pem"}})


@pytest.mark.parametrize("listen", ["7118", ":7118", "localhost:http"])
def test_web_listen_needs_host_and_port(listen: str) -> None:
    """web.listen must name a host and a numeric port."""
    with pytest.raises(ConfigError, match="HOST:PORT"):
        config.build({"web": {"listen": listen}})


def test_web_idle_timeout_is_bounded() -> None:
    """An idle timeout out of bounds is refused, naming the key."""
    with pytest.raises(ConfigError, match=r"web\.idle_timeout"):
        config.build({"web": {"idle_timeout": 5}})
