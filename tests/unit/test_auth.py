"""The role table: who may call which admin RPC."""

from __future__ import annotations

import pytest

from seatd import auth
from seatd.errors import InvalidArgument, NotAllowed, Unauthenticated
from seatd.model import Actor

READS = {
    "ListSessions",
    "GetPolicy",
    "CheckPolicy",
    "GetLicence",
    "LicenceHistory",
    "ReadJournal",
    "WatchJournal",
    "VerifyJournal",
    "CreateConsoleLink",
}
OPERATE = {
    "Evict",
    "ImportLicence",
    "ClearLicence",
    "SyncLicence",
    "RegisterInstallation",
    "CreateToken",
    "ListTokens",
    "RevokeToken",
    "Backup",
}
SEATS = {"SetActiveSeats", "OrderSeats"}

EXPECTED = {
    "owner": READS | OPERATE | SEATS,
    "admin": READS | OPERATE,
    "buyer": READS | SEATS,
    "viewer": READS,
}


def test_every_admin_rpc_is_in_the_table() -> None:
    """No RPC of AdminService is left out of the table (an unlisted one would be a KeyError)."""
    from seatclient.v1 import admin_pb2

    rpcs = {m.name for m in admin_pb2.DESCRIPTOR.services_by_name["AdminService"].methods}
    assert rpcs == set(auth.TABLE) == READS | OPERATE | SEATS


@pytest.mark.parametrize("role", auth.ROLES)
@pytest.mark.parametrize("rpc", sorted(READS | OPERATE | SEATS))
def test_role_by_rpc(role: str, rpc: str) -> None:
    """Each role may call exactly its RPCs; a refusal names the roles it needs."""
    actor = Actor("someone", role)
    if rpc in EXPECTED[role]:
        auth.authorize(actor, rpc)
        return
    with pytest.raises(NotAllowed) as denied:
        auth.authorize(actor, rpc)
    assert denied.value.needed and role not in denied.value.needed
    assert rpc in denied.value.message


def test_unknown_certificate_is_unauthenticated() -> None:
    """A client certificate whose name is not mapped to a role is refused, with the fix."""
    assert auth.certificate_actor("alice", {"alice": "admin"}) == Actor("cert:alice", "admin")
    with pytest.raises(Unauthenticated, match=r"admin\.identities"):
        auth.certificate_actor("mallory", {"alice": "admin"})


def test_tokens_are_random_and_only_their_hash_is_kept() -> None:
    """Two tokens differ; the hash is SHA-256 hex and does not contain the token."""
    a, b = auth.new_token(), auth.new_token()
    assert a != b and a.startswith("sdt_")
    assert len(auth.token_hash(a)) == 64 and a not in auth.token_hash(a)


def test_the_local_socket_user_is_recorded_as_a_claim() -> None:
    """On the local socket the actor is the socket; the user name sent is only a claim."""
    assert auth.local_actor("alice") == Actor("local-admin-socket", "owner", claimed="alice")
    assert auth.local_actor("") == Actor("local-admin-socket", "owner")


@pytest.mark.parametrize("claimed", ["x" * 7000, "x" * 65, "bad\x07bell", "rtl\u202eoverride"])
def test_an_overlong_or_unprintable_claimed_user_is_refused(claimed: str) -> None:
    """x-seatd-user is bounded (64 characters) and printable, or the call is refused."""
    with pytest.raises(InvalidArgument, match="x-seatd-user"):
        auth.local_actor(claimed)
