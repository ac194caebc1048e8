"""Subscriber storage behind a small port, and its MongoDB implementation.

Every change runs in one MongoDB transaction together with the outbox write of its events (see
:meth:`SubscriberStore.transact`). Saves are checked against the version read, so two concurrent
changes of one subscriber cannot both win; the unique index on ``email_key`` keeps one subscriber
per address however many sign-ups race.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from prometheus_client import Counter
from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from hwcollab_common.consuming import apply_once
from hwcollab_common.mongo import Document
from hwcollab_common.outbox import OUTBOX_COLLECTION, stage_events
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_schemas import Event
from hwcollab_subscriber.domain import Preferences, Subscriber

T = TypeVar("T")
SUBSCRIBERS = "subscribers"
COMMITTED = Counter(
    "hwcollab_subscriber_events_committed_total",
    "Subscriber life-cycle events committed with their change, by type",
    ["event_type"],
)


def _count(events: Sequence[Event]) -> None:
    for event in events:
        COMMITTED.labels(event.event_type).inc()


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


def to_document(subscriber: Subscriber) -> Document:
    return {
        "_id": subscriber.subscriber_id,
        "email": subscriber.email,
        "email_key": subscriber.email_key,
        "preferences": subscriber.preferences.model_dump(mode="json"),
        "status": subscriber.status,
        "version": subscriber.version,
        "created_at": subscriber.created_at,
        "updated_at": subscriber.updated_at,
        "confirmed_at": subscriber.confirmed_at,
        "confirmation_sent_at": subscriber.confirmation_sent_at,
        "manage_link_sent_at": subscriber.manage_link_sent_at,
    }


def from_document(document: Document) -> Subscriber:
    return Subscriber(
        subscriber_id=document["_id"],
        email=document["email"],
        preferences=Preferences.model_validate(document["preferences"]),
        status=document["status"],
        version=document["version"],
        created_at=document["created_at"],
        updated_at=document["updated_at"],
        confirmed_at=document.get("confirmed_at"),
        confirmation_sent_at=document.get("confirmation_sent_at"),
        manage_link_sent_at=document.get("manage_link_sent_at"),
    )


class MongoSubscribers:
    def __init__(
        self,
        collection: AsyncCollection[Document],
        outbox: AsyncCollection[Document],
        session: AsyncClientSession,
    ) -> None:
        self._collection = collection
        self._outbox = outbox
        self._session = session

    async def get(self, subscriber_id: str) -> Subscriber | None:
        document = await self._collection.find_one({"_id": subscriber_id}, session=self._session)
        return from_document(document) if document else None

    async def find_by_email_key(self, key: str) -> Subscriber | None:
        document = await self._collection.find_one({"email_key": key}, session=self._session)
        return from_document(document) if document else None

    async def add(self, subscriber: Subscriber) -> None:
        try:
            await self._collection.insert_one(to_document(subscriber), session=self._session)
        except DuplicateKeyError as error:
            raise DuplicateEmailError(subscriber.email_key) from error

    async def save(self, subscriber: Subscriber, *, read_version: int) -> None:
        try:
            result = await self._collection.replace_one(
                {"_id": subscriber.subscriber_id, "version": read_version},
                to_document(subscriber),
                session=self._session,
            )
        except DuplicateKeyError as error:
            raise DuplicateEmailError(subscriber.email_key) from error
        if result.matched_count != 1:
            raise StaleSubscriberError(subscriber.subscriber_id)

    async def erase(self, subscriber_id: str) -> None:
        await self._collection.delete_one({"_id": subscriber_id}, session=self._session)
        # Events already relayed that carried the address or name; pending ones still have to be
        # published (consumers then erase them on subscriber.deleted).
        await self._outbox.delete_many(
            {"key": subscriber_id, "status": "sent"}, session=self._session
        )


class MongoSubscriberStore:
    def __init__(self, runtime: ServiceRuntime) -> None:
        self._runtime = runtime
        self._collection: AsyncCollection[Document] = runtime.db[SUBSCRIBERS]
        self._outbox: AsyncCollection[Document] = runtime.db[OUTBOX_COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._collection.create_index([("email_key", ASCENDING)], unique=True)
        await self._collection.create_index([("status", ASCENDING)])

    def _subscribers(self, session: AsyncClientSession) -> MongoSubscribers:
        return MongoSubscribers(self._collection, self._outbox, session)

    async def transact(self, work: Work[T]) -> T:
        committed: list[Event] = []

        async def run(session: AsyncClientSession) -> tuple[T, Sequence[Event]]:
            result, events = await work(self._subscribers(session))
            committed[:] = events  # a retried transaction replaces the events of the failed try
            return result, events

        result = await self._runtime.commit(run)
        _count(committed)
        return result

    async def transact_once(self, event: Event, work: Work[None]) -> bool:
        committed: list[Event] = []

        async def run(session: AsyncClientSession) -> Any:
            _, events = await work(self._subscribers(session))
            await stage_events(self._runtime.db, events, session=session)
            committed[:] = events

        applied = await apply_once(self._runtime.mongo, self._runtime.processed, event, run)
        _count(committed)
        self._runtime.relay.wake()
        return applied
