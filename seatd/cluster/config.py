"""The `[cluster]` section: which etcd, which site, how this instance is reached."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from seatd.errors import ConfigError
from seatd.store.etcd import EtcdConfig


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    # etcd client URLs, comma-separated ("http://10.0.0.1:2379,http://10.0.0.2:2379");
    # empty: no cluster, the LMDB store in state_dir (nothing else here applies).
    etcd: str = ""
    # The seat table's key prefix in etcd (/seatd/<site>/): one per licensed site.
    site: str = "default"
    # This instance's name in the cluster (default: the host name).
    name: str = ""
    # HOST:PORT workstations use to reach this instance (what a standby tells them).
    advertise: str = ""
    # Seconds of the leader's etcd lease: how long a dead leader holds the site up (whole
    # seconds, as etcd counts them; etcd's own floor is about 2 s).
    lease_ttl: int = 3
    # TLS to etcd (PEM files): the CA that signs etcd's certificates, and this instance's
    # client certificate and key when etcd asks for one.
    etcd_ca: str = ""
    etcd_cert: str = ""
    etcd_key: str = ""
    # etcd's --max-txn-ops and --quota-backend-bytes on the cluster, as seatd must know them
    # (one group commit is one transaction; grants stop short of the quota).
    max_txn_ops: int = 1024
    quota_bytes: int = 2 << 30

    @property
    def enabled(self) -> bool:
        return bool(self.etcd)

    def endpoints(self) -> tuple[str, ...]:
        """The etcd members as HOST:PORT, the scheme checked and dropped."""
        found = []
        for url in (u.strip() for u in self.etcd.split(",")):
            if not url:
                continue
            scheme, sep, rest = url.rpartition("://")
            if sep and scheme not in ("http", "https"):
                raise ConfigError(f"cluster.etcd: {url!r} must be http:// or https://HOST:PORT")
            if scheme == "https" and not self.etcd_ca:
                raise ConfigError(f"cluster.etcd: {url!r} is TLS: set cluster.etcd_ca")
            host, colon, port = rest.rstrip("/").rpartition(":")
            if not colon or not host or not port.isdigit():
                raise ConfigError(f"cluster.etcd: {url!r} is not HOST:PORT")
            found.append(f"{host}:{port}")
        return tuple(found)

    def etcd_config(self) -> EtcdConfig:
        """What the etcd store and the election connect with."""
        return EtcdConfig(
            tuple(u.strip() for u in self.etcd.split(",") if u.strip()),
            site=self.site,
            ca=Path(self.etcd_ca) if self.etcd_ca else None,
            cert=Path(self.etcd_cert) if self.etcd_cert else None,
            key=Path(self.etcd_key) if self.etcd_key else None,
            max_txn_ops=self.max_txn_ops,
            quota_bytes=self.quota_bytes,
        )

    def instance_name(self) -> str:
        return self.name or socket.gethostname()

    def check(self) -> None:
        """Refuse a cluster section that cannot work, saying what to set."""
        if not self.enabled:
            return
        if not self.endpoints():
            raise ConfigError("cluster.etcd: give at least one etcd member URL")
        host, colon, port = self.advertise.rpartition(":")
        if not colon or not port.isdigit() or host in ("", "0.0.0.0", "::", "[::]"):
            raise ConfigError(
                "cluster.advertise (--advertise): the HOST:PORT workstations reach this instance "
                f"on is needed in a cluster, got {self.advertise!r}"
            )
        if bool(self.etcd_cert) != bool(self.etcd_key):
            raise ConfigError("cluster.etcd_cert and cluster.etcd_key go together")
        self.etcd_config()  # the store's own checks (site name, certificate and key)
