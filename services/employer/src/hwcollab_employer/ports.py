"""The ports the use cases depend on: storage and the transaction that carries events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from hwcollab_employer.domain import Employer, Opening
from hwcollab_employer.idempotency import IdempotencyRecord
from hwcollab_employer.listing import (
    BoardQuery,
    DirectoryQuery,
    EmployerListing,
    OpeningListing,
    Page,
)
from hwcollab_schemas import Event

T = TypeVar("T")


class DuplicateEmailError(ValueError):
    """An employer account with this contact email already exists."""


class DuplicateExternalIdError(ValueError):
    """Another opening of the same employer already has this ``external_id``."""


class IdempotencyKeyTakenError(ValueError):
    """Another request stored an answer for this idempotency key first."""


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_id: str
    employer_id: str
    name: str
    prefix: str
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PasswordResetRecord:
    """One "Forgot your password?" link: only the SHA-256 of its token is kept."""

    token_hash: str
    employer_id: str
    created_at: datetime
    expires_at: datetime


class EmployerTransaction(Protocol):
    """The employer service's storage as seen from inside one transaction."""

    async def add_employer(self, employer: Employer) -> None:
        """Raises :class:`DuplicateEmailError` when the contact email is taken."""

    async def get_employer(self, employer_id: str) -> Employer | None: ...

    async def employer_by_email(self, email: str) -> Employer | None: ...

    async def save_employer(self, employer: Employer) -> None:
        """Raises :class:`DuplicateEmailError` when another account has its contact email."""

    async def add_opening(self, opening: Opening) -> None:
        """Raises :class:`DuplicateExternalIdError` when the employer used its external id."""

    async def get_opening(self, opening_id: str) -> Opening | None: ...

    async def save_opening(self, opening: Opening, *, previous_version: int) -> None:
        """Raises :class:`~hwcollab_employer.domain.ConflictError` if it changed meanwhile,
        :class:`DuplicateExternalIdError` if another of the employer's openings has its external
        id."""

    async def openings_of(self, employer_id: str, *, open_only: bool = False) -> list[Opening]:
        """The employer's openings, newest first."""

    async def refresh_listing(self, employer_id: str) -> None:
        """Recount the employer's open openings and roles hiring, as the directory shows them."""

    async def idempotency_record(self, principal: str, key: str) -> IdempotencyRecord | None:
        """The answer kept for ``key`` of ``principal``, expired or not."""

    async def keep_idempotency_record(
        self, record: IdempotencyRecord, *, replaces: IdempotencyRecord | None
    ) -> None:
        """Keep ``record`` (in place of the expired ``replaces``); raises
        :class:`IdempotencyKeyTakenError` when another request kept one for the key first."""

    async def add_api_key(self, record: ApiKeyRecord) -> None: ...

    async def add_password_reset(self, record: PasswordResetRecord) -> None: ...

    async def take_password_reset(
        self, token_hash: str, *, now: datetime
    ) -> PasswordResetRecord | None:
        """Remove and return the unexpired reset of this token hash (None when there is none):
        of two requests with one token, only one gets it."""

    async def drop_password_resets(self, employer_id: str) -> None:
        """Every reset link of the employer stops working."""

    async def count_reach(self, counts: Mapping[str, int]) -> None:
        """Add ``counts`` (opening id → subscribers newly told of it) to the openings' reach; one
        bulk write whatever their number. The notifier emails each (subscriber, opening) pair at
        most once, ever, and each of its events is applied once, so a count is never doubled."""


class EmployerRepository(Protocol):
    """Reads (and single-document writes) outside any transaction."""

    async def get_employer(self, employer_id: str) -> Employer | None: ...

    async def employer_by_email(self, email: str) -> Employer | None: ...

    async def employers_with_status(self, status: str, *, limit: int) -> list[Employer]:
        """Employers in ``status``, oldest first (for operators)."""

    async def get_opening(self, opening_id: str) -> Opening | None: ...

    async def opening_by_external_id(
        self, employer_id: str, external_id: str
    ) -> Opening | None: ...

    async def openings_of(self, employer_id: str, *, open_only: bool = False) -> list[Opening]:
        """The employer's openings, newest first."""

    async def expired_openings(self, *, now: datetime, limit: int) -> list[Opening]: ...

    async def recent_openings(self, *, limit: int) -> list[Opening]:
        """Every employer's openings, newest first (for operators)."""

    async def search_employers(self, query: DirectoryQuery) -> Page[EmployerListing]: ...

    async def search_openings(self, query: BoardQuery, *, now: datetime) -> Page[OpeningListing]:
        """Open, unexpired openings of approved employers: nearest first, then remote ones."""

    async def api_keys_of(self, employer_id: str) -> list[ApiKeyRecord]: ...

    async def api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    async def revoke_api_key(self, employer_id: str, key_id: str, *, now: datetime) -> bool: ...

    async def password_reset(self, token_hash: str, *, now: datetime) -> PasswordResetRecord | None:
        """The reset of this token hash when it has not expired (nothing is consumed)."""


Work = Callable[[EmployerTransaction], Awaitable[tuple[T, Sequence[Event]]]]
"""A use case's change: what it returns and the events to stage in the outbox with it."""


class UnitOfWork(Protocol):
    async def commit(self, work: Work[T]) -> T:
        """Run ``work`` in one transaction, writing the events it returns to the outbox."""

    async def apply_once(
        self, event: Event, work: Callable[[EmployerTransaction], Awaitable[None]]
    ) -> bool:
        """Run ``work`` in one transaction unless ``event`` was already applied."""
