"""The MongoDB unit of work: a use case's change and its outbox events in one transaction.

The work of a use case receives a :class:`MongoEmployerTransaction`, the repository bound to the
session of the transaction in progress (the :class:`~hwcollab_employer.ports.EmployerTransaction`
port), so that no write can miss the transaction it belongs to.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession

from hwcollab_common.consuming import apply_once
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_employer.domain import Employer, Opening
from hwcollab_employer.idempotency import IdempotencyRecord
from hwcollab_employer.ports import (
    ApiKeyRecord,
    EmployerTransaction,
    PasswordResetRecord,
    Work,
)
from hwcollab_employer.repository import MongoEmployerRepository
from hwcollab_schemas import Event

T = TypeVar("T")


class MongoEmployerTransaction:
    """The repository's operations within the transaction of ``session``."""

    def __init__(self, repository: MongoEmployerRepository, session: AsyncClientSession) -> None:
        self._repository = repository
        self._session = session

    async def add_employer(self, employer: Employer) -> None:
        await self._repository.add_employer(employer, session=self._session)

    async def get_employer(self, employer_id: str) -> Employer | None:
        return await self._repository.get_employer(employer_id, session=self._session)

    async def employer_by_email(self, email: str) -> Employer | None:
        return await self._repository.employer_by_email(email, session=self._session)

    async def save_employer(self, employer: Employer) -> None:
        await self._repository.save_employer(employer, session=self._session)

    async def add_opening(self, opening: Opening) -> None:
        await self._repository.add_opening(opening, session=self._session)

    async def get_opening(self, opening_id: str) -> Opening | None:
        return await self._repository.get_opening(opening_id, session=self._session)

    async def save_opening(self, opening: Opening, *, previous_version: int) -> None:
        await self._repository.save_opening(
            opening, previous_version=previous_version, session=self._session
        )

    async def openings_of(self, employer_id: str, *, open_only: bool = False) -> list[Opening]:
        return await self._repository.openings_of(
            employer_id, open_only=open_only, session=self._session
        )

    async def refresh_listing(self, employer_id: str) -> None:
        await self._repository.refresh_listing(employer_id, session=self._session)

    async def idempotency_record(self, principal: str, key: str) -> IdempotencyRecord | None:
        return await self._repository.idempotency_record(principal, key, session=self._session)

    async def keep_idempotency_record(
        self, record: IdempotencyRecord, *, replaces: IdempotencyRecord | None
    ) -> None:
        await self._repository.keep_idempotency_record(
            record, replaces=replaces, session=self._session
        )

    async def add_api_key(self, record: ApiKeyRecord) -> None:
        await self._repository.add_api_key(record, session=self._session)

    async def add_password_reset(self, record: PasswordResetRecord) -> None:
        await self._repository.add_password_reset(record, session=self._session)

    async def take_password_reset(
        self, token_hash: str, *, now: datetime
    ) -> PasswordResetRecord | None:
        return await self._repository.take_password_reset(
            token_hash, now=now, session=self._session
        )

    async def drop_password_resets(self, employer_id: str) -> None:
        await self._repository.drop_password_resets(employer_id, session=self._session)

    async def count_reach(self, counts: Mapping[str, int]) -> None:
        await self._repository.count_reach(counts, session=self._session)


class MongoUnitOfWork:
    """Transactions of the service runtime: state change and outbox events together."""

    def __init__(self, runtime: ServiceRuntime, repository: MongoEmployerRepository) -> None:
        self._runtime = runtime
        self._repository = repository

    def _transaction(self, session: AsyncClientSession) -> EmployerTransaction:
        return MongoEmployerTransaction(self._repository, session)

    async def commit(self, work: Work[T]) -> T:
        async def run(session: AsyncClientSession) -> tuple[T, Sequence[Event]]:
            return await work(self._transaction(session))

        return await self._runtime.commit(run)

    async def apply_once(
        self, event: Event, work: Callable[[EmployerTransaction], Awaitable[None]]
    ) -> bool:
        async def run(session: AsyncClientSession) -> None:
            await work(self._transaction(session))

        return await apply_once(self._runtime.mongo, self._runtime.processed, event, run)
