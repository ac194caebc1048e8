"""Operators' decisions: approve or reject a sign-up, suspend and reinstate an employer, take
down one opening. Each is one transaction with its event; the reason is shown to the employer.

A suspension republishes the employer's open openings as no longer approved, so the job board,
the directory, feeds and the sitemap drop them, and the notifier, which reads the employer's
status just before each email and digest, sends nothing more of them. A reinstatement
republishes them as approved; the notifier's ledger tells nobody twice about an opening.
"""

from __future__ import annotations

from collections.abc import Sequence

from hwcollab_common.clock import Clock
from hwcollab_employer import domain
from hwcollab_employer.domain import ConflictError, Employer, NotFoundError, Opening
from hwcollab_employer.ports import EmployerRepository, EmployerTransaction, UnitOfWork
from hwcollab_schemas import Event
from hwcollab_schemas.events import (
    EmployerApproved,
    EmployerReinstated,
    EmployerRejected,
    EmployerSuspended,
    OpeningTakenDown,
    OpeningUpdated,
)

PRODUCER = "employer"


class OperatorDecisions:
    """The operators' use cases, and the plumbing the employer service shares with them."""

    _repository: EmployerRepository
    _uow: UnitOfWork
    _clock: Clock

    def _event(self, cls: type[Event], payload: object) -> Event:
        return cls.create(payload, producer=PRODUCER, occurred_at=self._clock.now())

    async def approve(self, employer_id: str) -> Employer:
        """Approve a pending (or rejected) employer; its open openings are announced from now
        on. A suspended one is reinstated instead (409)."""

        async def work(tx: EmployerTransaction) -> tuple[Employer, Sequence[Event]]:
            current = await self._employer_in(employer_id, tx)
            if current.approved:
                return current, []
            if current.status == "suspended":
                raise ConflictError("this employer is suspended; reinstate it instead")
            if not current.verified:
                raise ConflictError("this employer has not confirmed its email address yet")
            approved = domain.approve(current, now=self._clock.now())
            await tx.save_employer(approved)
            events = [self._event(EmployerApproved, approved.profile())]
            events += await self._republish_openings(approved, tx=tx)
            return approved, events

        return await self._uow.commit(work)

    async def reject(self, employer_id: str, *, reason: str) -> Employer:
        """Refuse a pending sign-up: never listed, its openings never announced."""

        async def work(tx: EmployerTransaction) -> tuple[Employer, Sequence[Event]]:
            current = await self._employer_in(employer_id, tx)
            rejected = domain.reject(current, reason=reason, now=self._clock.now())
            await tx.save_employer(rejected)
            return rejected, [self._event(EmployerRejected, rejected.moderation())]

        return await self._uow.commit(work)

    async def suspend(self, employer_id: str, *, reason: str) -> Employer:
        """Take an approved employer and all its openings off the site at once."""

        async def work(tx: EmployerTransaction) -> tuple[Employer, Sequence[Event]]:
            current = await self._employer_in(employer_id, tx)
            suspended = domain.suspend(current, reason=reason, now=self._clock.now())
            await tx.save_employer(suspended)
            events = [self._event(EmployerSuspended, suspended.moderation())]
            events += await self._republish_openings(suspended, tx=tx)
            return suspended, events

        return await self._uow.commit(work)

    async def reinstate(self, employer_id: str, *, reason: str | None = None) -> Employer:
        """List a suspended employer and its open openings again."""

        async def work(tx: EmployerTransaction) -> tuple[Employer, Sequence[Event]]:
            current = await self._employer_in(employer_id, tx)
            reinstated = domain.reinstate(current, reason=reason, now=self._clock.now())
            await tx.save_employer(reinstated)
            events = [self._event(EmployerReinstated, reinstated.moderation())]
            events += await self._republish_openings(reinstated, tx=tx)
            return reinstated, events

        return await self._uow.commit(work)

    async def take_down(self, opening_id: str, *, reason: str) -> Opening:
        """Take one opening off the site: closed for good, with the reason for its employer."""

        async def work(tx: EmployerTransaction) -> tuple[Opening, Sequence[Event]]:
            current = await tx.get_opening(opening_id)
            if current is None:
                raise NotFoundError(opening_id)
            removed = domain.take_down(current, reason=reason, now=self._clock.now())
            await tx.save_opening(removed, previous_version=current.version)
            await tx.refresh_listing(current.employer_id)
            return removed, [self._event(OpeningTakenDown, removed.taken_down_payload())]

        return await self._uow.commit(work)

    async def recent_openings(self, *, limit: int) -> list[Opening]:
        """The newest openings of every employer, whatever their state (for operators)."""
        return await self._repository.recent_openings(limit=limit)

    async def _republish_openings(
        self, employer: Employer, *, tx: EmployerTransaction
    ) -> list[Event]:
        events: list[Event] = []
        now = self._clock.now()
        for opening in await tx.openings_of(employer.employer_id, open_only=True):
            changed = domain.with_employer(opening, employer, now=now)
            await tx.save_opening(changed, previous_version=opening.version)
            events.append(self._event(OpeningUpdated, changed.details()))
        return events

    async def _employer_in(self, employer_id: str, tx: EmployerTransaction) -> Employer:
        employer = await tx.get_employer(employer_id)
        if employer is None:
            raise NotFoundError(employer_id)
        return employer
