"""Admin tokens, and journaling denied admin calls."""

from __future__ import annotations

import hmac

import structlog

from seatd import auth
from seatd.errors import (
    InvalidArgument,
    RateLimited,
)
from seatd.model import (
    Actor,
    Denied,
    TokenCreated,
    TokenRevoked,
    check_text,
)
from seatd.service.core import Core

log = structlog.get_logger("seatd")


class AccessCalls(Core):
    """Admin tokens (only their hashes are kept) and denied calls, rate-limited per actor."""

    async def create_token(self, name: str, role: str, *, actor: Actor) -> str:
        """A new admin token for `role`: returned once, only its hash is kept."""
        name = check_text("by", name)
        if role not in auth.ROLES:
            raise InvalidArgument("role", f"must be one of {', '.join(auth.ROLES)}")
        live = {t["name"] for t in self.store.tokens() if not t["revoked_at"]}
        if name in live or name in self._tokens_pending:
            raise InvalidArgument("name", f"a token named {name!r} already exists")
        self._check_room()
        # Reserved before the first await: a second call with this name is refused above.
        self._tokens_pending.add(name)
        token = auth.new_token()
        try:
            await self.committer.submit(
                (
                    TokenCreated(
                        name,
                        role,
                        auth.token_hash(token),
                        actor.name,
                        self.clock.wall(),
                        actor.claimed,
                    ),
                )
            )
        finally:
            self._tokens_pending.discard(name)
        log.info("admin.token_created", name=name, role=role, by=actor.name)
        return token

    async def revoke_token(self, name: str, *, actor: Actor) -> None:
        if not any(t["name"] == name and not t["revoked_at"] for t in self.store.tokens()):
            raise InvalidArgument("name", f"no live token named {name!r}")
        await self.committer.submit(
            (TokenRevoked(name, actor.name, self.clock.wall(), actor.claimed),)
        )
        log.info("admin.token_revoked", name=name, by=actor.name)

    def token_actor(self, token: str) -> Actor | None:
        digest = auth.token_hash(token)
        for t in self.store.tokens():
            if not t["revoked_at"] and hmac.compare_digest(t["hash"], digest):
                return Actor(f"token:{t['name']}", t["role"])
        return None

    async def journal_denied(self, actor: Actor, rpc: str, needed: str) -> None:
        """Journal a denied admin call (coalesced per actor); past the actor's burst of
        denials, raise RateLimited instead."""
        now = self.clock.monotonic()
        wait = self.limits.retry_after(("admin", actor.name), now)
        if wait:
            raise RateLimited(actor.name, wait)
        self.limits.refused(("admin", actor.name), now)
        log.warning("admin.denied", actor=actor.name, role=actor.role, rpc=rpc, needed=needed)
        written = self._journal_noise(
            ("denied", actor.name), Denied(actor.name, actor.role, rpc, needed, self.clock.wall())
        )
        if written is not None:
            await written
