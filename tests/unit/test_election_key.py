"""The leader's check of its own key on each renewal (a fake etcd KV, no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aetcd.rpc import kv_pb2, rpc_pb2
from structlog.testing import capture_logs

from seatd.cluster.election import Election, Instance, foreign
from seatd.cluster.status import _etcdctl, render
from seatd.store.etcd import EtcdConfig, Fence
from tests.fakes import FakeClock

KEY = b"/seatd/t/leader"
REVISION = 7
LEASE = 42


class _NoChannel:
    """Stands where the stubs want a channel; every call goes to the fakes below instead."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


class FakeKV:
    """etcd's KV holding the leader key as given (None: deleted)."""

    def __init__(self, key: kv_pb2.KeyValue | None) -> None:
        self.key = key

    async def Range(self, request: rpc_pb2.RangeRequest, **options: Any) -> rpc_pb2.RangeResponse:
        found = [self.key] if self.key is not None and self.key.key == request.key else []
        return rpc_pb2.RangeResponse(kvs=found, count=len(found))


def leading(key: kv_pb2.KeyValue | None) -> Election:
    """An election that leads at REVISION with LEASE, over a KV holding `key`."""
    election = Election(
        _NoChannel(),  # type: ignore[arg-type]
        key=KEY,
        site="t",
        me=Instance("a", "10.0.0.1:7117"),
        ttl=4,
        clock=FakeClock(),
    )
    election.kv = FakeKV(key)
    election.fence = Fence(KEY, REVISION)
    election.lease_id = LEASE
    return election


def term_key(**changes: int | bytes) -> kv_pb2.KeyValue:
    return kv_pb2.KeyValue(
        key=KEY,
        **{"create_revision": REVISION, "mod_revision": REVISION, "lease": LEASE, **changes},
    )


async def test_the_terms_own_key_is_held() -> None:
    """The key created at the fence's revision, on this lease: still leading."""
    assert await leading(term_key()).key_lost() == ""


async def test_a_deleted_key_is_not_held() -> None:
    """The key deleted by hand: this term is over."""
    assert "gone" in await leading(None).key_lost()


async def test_a_key_created_again_is_not_held() -> None:
    """The key deleted and created again (another leader, or by hand): not this term's."""
    assert "replaced" in await leading(term_key(create_revision=REVISION + 5)).key_lost()


async def test_a_key_put_again_without_the_lease_is_not_held() -> None:
    """The key overwritten without the lease: the lease's end would no longer free it."""
    assert "replaced" in await leading(term_key(lease=0, mod_revision=REVISION + 1)).key_lost()


# -- a leader key no seatd instance wrote --------------------------------------------------------


def test_a_seatd_leaders_key_is_not_foreign() -> None:
    """On a lease and holding a leader record: what every seatd leader writes."""
    assert foreign(term_key(value=Instance("a", "10.0.0.1:7117").encode())) == ""


def test_a_leader_record_without_a_lease_is_foreign() -> None:
    """A leader record put by hand (or copied) without a lease never ends by itself."""
    why = foreign(term_key(lease=0, value=Instance("a", "10.0.0.1:7117").encode()))
    assert "no lease" in why and "never ends" in why


def test_a_key_on_a_lease_holding_something_else_is_foreign() -> None:
    why = foreign(term_key(value=b"locked by the ERP's migration script"))
    assert "does not hold a seatd leader record" in why


def test_a_standby_seeing_a_foreign_key_names_no_leader_and_says_an_admin_must_delete_it() -> None:
    """A workstation sent to a standby is told why nobody leads, and is not sent to whatever
    address the foreign key holds."""
    election = leading(None)
    election.fence = None
    with capture_logs() as logs:
        election._saw(term_key(lease=0, value=Instance("x", "10.9.9.9:7117").encode()))
        election._saw(term_key(lease=0, value=Instance("x", "10.9.9.9:7117").encode()))
    refusal = election.refusal()
    assert election.leader is None
    assert refusal.leader == ""
    assert "elections are blocked" in str(refusal) and "administrator must delete" in str(refusal)
    foreign_lines = [e for e in logs if e["event"] == "cluster.leader_key_foreign"]
    assert len(foreign_lines) == 1  # once per sighting, not once per watch event
    assert "etcdctl del /seatd/t/leader" in foreign_lines[0]["action"]


def test_cluster_status_says_elections_are_blocked_and_how_to_clear_them() -> None:
    found = {
        "site": "t",
        "leader": "",
        "elections_blocked": foreign(term_key(lease=0, value=b"{}")),
        "unblock": _etcdctl(EtcdConfig(("10.0.0.5:2379",), site="t"), "del /seatd/t/leader"),
        "instances": [],
        "etcd": [],
    }
    text = render(found)
    assert "ELECTIONS BLOCKED: the leader key has no lease (not written by seatd)" in text
    assert "etcdctl --endpoints=10.0.0.5:2379 del /seatd/t/leader" in text


def test_the_unblock_line_carries_the_clusters_tls_files() -> None:
    etcd = EtcdConfig(
        ("https://e1:2379", "https://e2:2379"),
        site="t",
        ca=Path("/etc/seatd/etcd-ca.pem"),
        cert=Path("/etc/seatd/etcd.pem"),
        key=Path("/etc/seatd/etcd.key"),
    )
    assert _etcdctl(etcd, "del /seatd/t/leader") == (
        "etcdctl --endpoints=https://e1:2379,https://e2:2379 --cacert=/etc/seatd/etcd-ca.pem "
        "--cert=/etc/seatd/etcd.pem --key=/etc/seatd/etcd.key del /seatd/t/leader"
    )


async def test_elected_after_a_foreign_key_it_no_longer_says_elections_are_blocked() -> None:
    """The foreign key went while the watch was down (no DELETE event seen): winning the next
    campaign clears `blocked`, so a later refusal does not send an admin after a key that is
    gone."""

    class Leases:
        async def LeaseGrant(self, request: Any, **options: Any) -> rpc_pb2.LeaseGrantResponse:
            return rpc_pb2.LeaseGrantResponse(ID=LEASE, TTL=4)

    class Txn:
        async def Txn(self, request: Any, **options: Any) -> rpc_pb2.TxnResponse:
            return rpc_pb2.TxnResponse(
                succeeded=True, header=rpc_pb2.ResponseHeader(revision=REVISION)
            )

    election = leading(None)
    election.fence = None
    election.blocked = foreign(term_key(lease=0))
    election.leases = Leases()  # type: ignore[assignment]
    election.kv = Txn()  # type: ignore[assignment]
    await election.campaign()
    assert election.blocked == ""
    election.fence = None  # the term ended
    assert "blocked" not in str(election.refusal())
