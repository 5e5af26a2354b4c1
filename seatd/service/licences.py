"""The licence in force: import, staging, transfer, clearing, active seats."""

from __future__ import annotations

from datetime import datetime

import structlog
from seatclient.contract import LicenceReason

from seatd.entitlement import LicenceView
from seatd.errors import (
    LicenceRejected,
    Unavailable,
)
from seatd.licence.book import LicenceBook, Transfer
from seatd.model import (
    ActiveSeatsChanged,
    Actor,
    Event,
    LicenceCleared,
    LicenceInstalled,
    LicenceStaged,
    LicenceTransferred,
)
from seatd.service.core import SEATD, Core
from seatd.service.outbox import LicenceNotice

log = structlog.get_logger("seatd")


class LicenceCalls(Core):
    """Licence changes apply at their decision; every workstation hears what is in force."""

    def _licences(self) -> LicenceBook:
        if self.book is None:
            raise Unavailable("this daemon runs without licence management")
        return self.book

    async def import_licence(self, text: str, *, source: str, actor: Actor) -> LicenceView:
        """Install a verified licence; a refused one leaves the licence in force untouched.

        The licence is in force from the decision on, before its commit, so that a grant
        decided meanwhile already uses its cap; a failed commit reloads the book (`_resync`).
        """
        book = self._licences()
        try:
            licence = book.check(text)
        except LicenceRejected as exc:
            log.warning("licence.rejected", reason=exc.reason, error=exc.message, source=source)
            raise
        if licence == book.licence:
            # The licence in force, imported again: installing it would only reset the active
            # seats and add a history line "L-X replaced L-X". Nothing changes, so nothing is
            # written and no workstation is told.
            log.info("licence.already_in_force", serial=licence.serial, source=source)
            return book.view()
        previous = book.licence.serial if book.licence else ""
        book.installed(licence)
        await self._commit_licence(
            LicenceInstalled(
                text,
                licence.serial,
                licence.seats,
                source,
                actor.name,
                self.clock.wall(),
                previous,
                actor.claimed,
                book.lineage.to_json() if book.lineage else "",
            )
        )
        log.info(
            "licence.installed",
            serial=licence.serial,
            seats=licence.seats,
            edition=licence.edition.name,
            source=source,
            by=actor.name,
        )
        self.licence_changed()
        return book.view()

    async def stage_licence(self, text: str, *, source: str, actor: Actor) -> None:
        """Keep a licence paid for a later period; `install_next` installs it on its day."""
        book = self._licences()
        licence, later = book.check_any(text)
        if not later:
            raise LicenceRejected(
                LicenceReason.ALREADY_STARTED,
                f"the licence started on {licence.valid_from}: install it instead",
            )
        book.staged(licence, text)
        await self._commit_licence(
            LicenceStaged(
                text, licence.serial, licence.valid_from, source, actor.name, self.clock.wall()
            )
        )
        log.info(
            "licence.staged",
            serial=licence.serial,
            valid_from=licence.valid_from.isoformat(),
            seats=licence.seats,
            source=source,
        )

    async def licence_transferred(self, to_base_id: str, at: datetime, *, actor: Actor) -> bool:
        """The cloud said the subscription moved to `to_base_id` at `at`: the licence in force
        ends. Nothing changes when there is no licence, or this was already recorded."""
        book = self._licences()
        if book.licence is None or (
            book.transferred is not None and book.transferred.serial == book.licence.serial
        ):
            return False
        serial = book.licence.serial
        book.moved(Transfer(to_base_id, at, serial))
        await self._commit_licence(
            LicenceTransferred(to_base_id, at, serial, actor.name, self.clock.wall())
        )
        log.warning(
            "licence.transferred",
            serial=serial,
            to_base_id=to_base_id,
            transferred_at=at.isoformat(),
            action="no new connections on this base id; open sessions continue",
        )
        self.licence_changed()
        return True

    async def install_next(self) -> bool:
        """Install the licence kept for a later period once its start date has come."""
        book = self._licences()
        text = book.due()
        if text is None:
            return False
        try:
            await self.import_licence(text, source="scheduled", actor=SEATD)
        except LicenceRejected:
            # Logged by import_licence; forgotten until a restart or the next sync.
            book.unstage()
            return False
        return True

    async def clear_licence(self, *, actor: Actor) -> LicenceView:
        book = self._licences()
        previous = book.licence.serial if book.licence else ""
        book.cleared()
        await self._commit_licence(
            LicenceCleared(actor.name, self.clock.wall(), previous, actor.claimed)
        )
        log.info("licence.cleared", previous_serial=previous, by=actor.name)
        self.licence_changed()
        return book.view()

    async def set_active_seats(self, seats: int, *, actor: Actor) -> LicenceView:
        """Lower or raise the active seats up to the purchased ones. Lowering evicts no one.

        The new cap holds from the decision on: a grant decided while its commit runs is
        already refused above it (a failed commit reloads the book, `_resync`).
        """
        book = self._licences()
        old = book.check_active(seats)
        book.active = seats
        await self._commit_licence(
            ActiveSeatsChanged(old, seats, actor.name, self.clock.wall(), actor.claimed)
        )
        log.info(
            "licence.active_seats_changed",
            old=old,
            new=seats,
            by=actor.name,
            in_use=self.arbiter.in_use,
        )
        self.licence_changed()
        return book.view()

    async def _commit_licence(self, event: Event) -> None:
        """Commit a licence change already applied to the book. A raised cap serves the queue
        at once, so the waiters' grants follow the change in the commit order."""
        committed = self.committer.submit((event,))
        self._serve_queue()
        await committed

    def licence_changed(self) -> None:
        """Tell every workstation what is in force now; a raised cap serves the queue."""
        self._serve_queue()
        view = self.entitlement.view()
        self.licence_status = view.status
        for stream in self._streams.values():
            stream.push(LicenceNotice(view))
