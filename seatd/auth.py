"""Who may call which admin RPC: identities, roles, and the one table that decides.

Roles: `owner` may do everything; `buyer` reads and changes or orders seats; `admin` reads,
evicts, imports, clears and syncs licences, and manages tokens; `viewer` only reads.

Identities: a caller on the local admin socket (group-owned, mode 0660) is the owner, known
as `local-admin-socket`: grpc does not expose the socket's peer credentials, so the socket's
permissions are the access control. The OS user seatctl says it runs as is kept beside it
as a claim (`claimed_user` in the journal), never as the actor. Over TCP the daemon only
accepts TLS, and a caller is either a client certificate whose common name is mapped to a
role in the config (`admin.identities`), or a bearer token created with `seatctl token
create` (stored hashed, revocable). Anyone else is refused as unauthenticated.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

from seatd.errors import NotAllowed, Unauthenticated
from seatd.model import Actor, check_printable

ROLES = ("owner", "buyer", "admin", "viewer")
EVERYONE = frozenset(ROLES)
OPERATORS = frozenset({"owner", "admin"})
PURCHASERS = frozenset({"owner", "buyer"})

# AdminService RPC -> roles allowed to call it.
TABLE: dict[str, frozenset[str]] = {
    "ListSessions": EVERYONE,
    "GetLicence": EVERYONE,
    "LicenceHistory": EVERYONE,
    "ReadJournal": EVERYONE,
    "WatchJournal": EVERYONE,
    "VerifyJournal": EVERYONE,
    # The link logs a browser in as the caller itself: it grants nothing the caller lacks.
    "CreateConsoleLink": EVERYONE,
    "GetPolicy": EVERYONE,
    "CheckPolicy": EVERYONE,
    "Evict": OPERATORS,
    "ImportLicence": OPERATORS,
    "ClearLicence": OPERATORS,
    "SyncLicence": OPERATORS,
    "RegisterInstallation": OPERATORS,
    "CreateToken": OPERATORS,
    "ListTokens": OPERATORS,
    "RevokeToken": OPERATORS,
    "Backup": OPERATORS,
    "SetActiveSeats": PURCHASERS,
    "OrderSeats": PURCHASERS,
}

USER_KEY = "x-seatd-user"
TOKEN_PREFIX = "sdt_"


def authorize(actor: Actor, rpc: str) -> None:
    """Raise NotAllowed, naming the roles needed, unless `actor` may call `rpc`."""
    allowed = TABLE[rpc]
    if actor.role not in allowed:
        needed = " or ".join(r for r in ROLES if r in allowed)
        raise NotAllowed(
            f"{actor.name} has the {actor.role} role; {rpc} needs {needed}", needed=needed
        )


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AdminConfig:
    # HOST:PORT for remote administration over TLS; empty means the local socket only.
    listen: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    # CA that signs administrators' client certificates. Set: every remote caller must show a
    # certificate it signed (mTLS). Empty: TLS, and callers present a token.
    client_ca: str = ""
    # Client certificate common name -> role, e.g. {"alice@acme" = "admin"}.
    identities: dict[str, str] = field(default_factory=dict)


# What the daemon knows of a caller on the local socket: it could open the socket.
LOCAL_SOCKET = "local-admin-socket"


def local_actor(claimed_user: str) -> Actor:
    """A caller on the local socket: the owner, with the user name its client claims (bounded
    and printable, or InvalidArgument) kept apart from what the socket proves."""
    return Actor(LOCAL_SOCKET, "owner", claimed=check_printable(USER_KEY, claimed_user))


def certificate_actor(common_name: str, identities: dict[str, str]) -> Actor:
    role = identities.get(common_name)
    if role is None:
        raise Unauthenticated(
            f"client certificate {common_name!r} is not mapped to a role: add it to "
            "[admin.identities] in seatd.toml"
        )
    return Actor(f"cert:{common_name}", role)
