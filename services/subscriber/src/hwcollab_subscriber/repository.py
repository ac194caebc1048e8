"""Subscriber storage: the MongoDB implementation of the ports in :mod:`hwcollab_subscriber.ports`.

Every change runs in one MongoDB transaction together with the outbox write of its events (see
:meth:`SubscriberStore.transact`). Saves are checked against the version read, so two concurrent
changes of one subscriber cannot both win; the unique index on ``email_key`` keeps one subscriber
per address however many sign-ups race.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from prometheus_client import Counter
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from hwcollab_common.consuming import apply_once
from hwcollab_common.mongo import Document
from hwcollab_common.outbox import OUTBOX_COLLECTION, stage_events
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_schemas import Event
from hwcollab_subscriber.domain import Preferences, Subscriber
from hwcollab_subscriber.ports import DuplicateEmailError, StaleSubscriberError, Work

T = TypeVar("T")
SUBSCRIBERS = "subscribers"
LOCKS = "locks"
COMMITTED = Counter(
    "hwcollab_subscriber_events_committed_total",
    "Subscriber life-cycle events committed with their change, by type",
    ["event_type"],
)


def _count(events: Sequence[Event]) -> None:
    for event in events:
        COMMITTED.labels(event.event_type).inc()


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
        "last_engaged_at": subscriber.last_engaged_at,
        "kept_at": subscriber.kept_at,
        "sunset_notice_at": subscriber.sunset_notice_at,
        "paused_reason": subscriber.paused_reason,
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
        last_engaged_at=document.get("last_engaged_at"),
        kept_at=document.get("kept_at"),
        sunset_notice_at=document.get("sunset_notice_at"),
        paused_reason=document.get("paused_reason"),
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
        self._locks: AsyncCollection[Document] = runtime.db[LOCKS]

    async def ensure_indexes(self) -> None:
        await self._collection.create_index([("email_key", ASCENDING)], unique=True)
        await self._collection.create_index([("status", ASCENDING)])

    async def record_engagement(
        self, subscriber_id: str, *, now: datetime, every: timedelta
    ) -> bool:
        result = await self._collection.update_one(
            {
                "_id": subscriber_id,
                "status": {"$in": ["active", "paused"]},
                "$or": [{"last_engaged_at": None}, {"last_engaged_at": {"$lte": now - every}}],
            },
            # The version moves so that a change read before this click saves again instead of
            # writing the old engagement back.
            {
                "$set": {"last_engaged_at": now, "sunset_notice_at": None, "updated_at": now},
                "$inc": {"version": 1},
            },
        )
        return result.modified_count == 1

    async def silent_ids(self, *, cutoff: datetime, limit: int) -> list[str]:
        # Runs once per SUNSET_INTERVAL_SECONDS on the status index; no index of its own, which
        # would cost every write of a subscriber.
        cursor = self._collection.find(
            {
                "status": "active",
                "sunset_notice_at": None,
                "confirmed_at": {"$lte": cutoff},
                "$and": [
                    {"$or": [{"last_engaged_at": None}, {"last_engaged_at": {"$lte": cutoff}}]},
                    {"$or": [{"kept_at": None}, {"kept_at": {"$lte": cutoff}}]},
                ],
            },
            {"_id": 1},
            limit=limit,
        ).sort("confirmed_at", ASCENDING)
        return [str(document["_id"]) async for document in cursor]

    async def unanswered_ids(self, *, cutoff: datetime, limit: int) -> list[str]:
        cursor = self._collection.find(
            {"status": "active", "sunset_notice_at": {"$ne": None, "$lte": cutoff}},
            {"_id": 1},
            limit=limit,
        )
        return [str(document["_id"]) async for document in cursor]

    async def take_lease(self, name: str, *, owner: str, now: datetime, ttl: timedelta) -> bool:
        try:
            document = await self._locks.find_one_and_update(
                {"_id": name, "$or": [{"owner": owner}, {"until": {"$lt": now}}]},
                {"$set": {"owner": owner, "until": now + ttl}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return False  # another replica holds it
        return document is not None and document.get("owner") == owner

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
