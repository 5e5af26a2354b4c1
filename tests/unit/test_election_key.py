"""The leader's check of its own key on each renewal (a fake etcd KV, no network)."""

from __future__ import annotations

from typing import Any

from aetcd.rpc import kv_pb2, rpc_pb2

from seatd.cluster.election import Election, Instance
from seatd.store.etcd import Fence
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


def term_key(**changes: int) -> kv_pb2.KeyValue:
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
