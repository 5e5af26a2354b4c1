"""The [cluster] section: what `seatd check-config` refuses, and the port an instance keeps."""

from __future__ import annotations

import pytest

from seatd import config
from seatd.cluster.node import admin_address, pinned
from seatd.errors import ConfigError


def test_without_etcd_nothing_in_cluster_is_checked() -> None:
    """No etcd: a single server, whatever else the section says."""
    assert not config.build({"cluster": {"advertise": ""}}).cluster.enabled


def test_a_cluster_needs_an_advertised_address() -> None:
    """With etcd but no --advertise the config is refused, saying what to set."""
    with pytest.raises(ConfigError, match=r"cluster\.advertise"):
        config.build({"cluster": {"etcd": "http://10.0.0.1:2379"}})


def test_a_wildcard_advertised_address_is_refused() -> None:
    """0.0.0.0 is where to listen, not where workstations can connect."""
    with pytest.raises(ConfigError, match=r"cluster\.advertise"):
        config.build({"cluster": {"etcd": "http://10.0.0.1:2379", "advertise": "0.0.0.0:7117"}})


def test_an_https_etcd_needs_its_ca() -> None:
    """A TLS etcd URL without cluster.etcd_ca is refused."""
    with pytest.raises(ConfigError, match="etcd_ca"):
        config.build({"cluster": {"etcd": "https://10.0.0.1:2379", "advertise": "10.0.0.1:7117"}})


def test_the_lease_ttl_is_bounded() -> None:
    """A lease TTL under etcd's floor (2 s) is refused."""
    with pytest.raises(ConfigError, match=r"cluster\.lease_ttl"):
        config.build({"cluster": {"lease_ttl": 1}})


def test_the_cluster_config_reaches_the_etcd_store() -> None:
    """Endpoints, site and etcd bounds go to the store's EtcdConfig unchanged."""
    c = config.build(
        {
            "cluster": {
                "etcd": "http://10.0.0.1:2379, http://10.0.0.2:2379",
                "advertise": "10.0.0.1:7117",
                "site": "acme",
                "max_txn_ops": 2048,
            }
        }
    ).cluster.etcd_config()
    assert (c.endpoints, c.site, c.max_txn_ops) == (
        ("http://10.0.0.1:2379", "http://10.0.0.2:2379"),
        "acme",
        2048,
    )


def test_port_zero_is_pinned_to_the_port_the_standby_bound() -> None:
    """Listen and advertised port 0 become the port bound first, kept for every term."""
    c = config.build(
        {
            "server": {"listen": "127.0.0.1:0"},
            "cluster": {"etcd": "http://127.0.0.1:2379", "advertise": "127.0.0.1:0"},
        }
    )
    p = pinned(c, 40123)
    assert (p.server.listen, p.cluster.advertise) == ("127.0.0.1:40123", "127.0.0.1:40123")
    assert pinned(p, 5) is p


def _with_admin(listen: str) -> config.Config:
    return config.build(
        {
            "server": {"listen": "0.0.0.0:7117"},
            "admin": {"listen": listen, "tls_cert": "c.pem", "tls_key": "k.pem"},
            "cluster": {"etcd": "http://10.0.0.9:2379", "advertise": "10.0.0.1:7117"},
        }
    )


def test_the_remote_admin_port_zero_is_pinned_to_the_port_the_standby_bound() -> None:
    """admin.listen port 0 becomes the port bound first, so the leader key names it."""
    p = pinned(_with_admin("127.0.0.1:0"), 40123, admin_port=40124)
    assert (p.admin.listen, admin_address(p)) == ("127.0.0.1:40124", "127.0.0.1:40124")


def test_a_wildcard_admin_listener_is_advertised_on_the_advertised_host() -> None:
    """admin.listen 0.0.0.0:7118 is reached at the advertised host (10.0.0.1:7118)."""
    assert admin_address(_with_admin("0.0.0.0:7118")) == "10.0.0.1:7118"


def test_no_remote_admin_listener_advertises_none() -> None:
    """Without admin.listen the leader names no admin address ("")."""
    assert (
        admin_address(config.build({"cluster": {"etcd": "http://e:2379", "advertise": "a:1"}}))
        == ""
    )
