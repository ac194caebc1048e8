"""The subscriber service's ports: what its use cases need from storage, as Protocols. The
MongoDB implementation is in :mod:`hwcollab_subscriber.repository`, the in-memory one the unit
tests use in ``tests/conftest.py``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from hwcollab_schemas import Event
from hwcollab_subscriber.domain import Subscriber

T = TypeVar("T")


class DuplicateEmailError(Exception):
    """Another subscriber with this address was created at the same time."""


class StaleSubscriberError(Exception):
    """The subscriber changed since it was read; the use case should run again."""


class Subscribers(Protocol):
    """The subscribers as seen from inside one transaction."""

    async def get(self, subscriber_id: str) -> Subscriber | None: ...

    async def find_by_email_key(self, key: str) -> Subscriber | None: ...

    async def add(self, subscriber: Subscriber) -> None:
        """Raises :class:`DuplicateEmailError` when the address is taken."""
        ...

    async def save(self, subscriber: Subscriber, *, read_version: int) -> None:
        """Raises :class:`StaleSubscriberError` when the stored version is not ``read_version``."""
        ...

    async def erase(self, subscriber_id: str) -> None:
        """Remove the subscriber and every stored trace of their personal data."""
        ...


Work = Callable[[Subscribers], Awaitable[tuple[T, Sequence[Event]]]]


class SubscriberStore(Protocol):
    async def transact(self, work: Work[T]) -> T:
        """Run ``work`` atomically; the events it returns are published once it commits."""
        ...

    async def transact_once(self, event: Event, work: Work[None]) -> bool:
        """Like :meth:`transact`, but only the first time ``event`` is seen (False on a repeat)."""
        ...

    async def record_engagement(
        self, subscriber_id: str, *, now: datetime, every: timedelta
    ) -> bool:
        """One write: ``last_engaged_at`` becomes ``now`` and a pending "still interested?"
        notice is cleared, for an active or paused subscriber whose last engagement is not
        within ``every`` (False when nothing was written)."""
        ...

    async def silent_ids(self, *, cutoff: datetime, limit: int) -> list[str]:
        """Active subscribers without a pending notice whose confirmation, last click and last
        keep are all at or before ``cutoff``, oldest confirmation first (at most ``limit``)."""
        ...

    async def unanswered_ids(self, *, cutoff: datetime, limit: int) -> list[str]:
        """Active subscribers asked "still interested?" at or before ``cutoff``."""
        ...

    async def take_lease(self, name: str, *, owner: str, now: datetime, ttl: timedelta) -> bool:
        """A lease that lets one replica at a time run a periodic task."""
        ...
