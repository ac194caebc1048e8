"""The notifier's MongoDB: the read model (subscribers, employers, openings) here, and the
deliveries (ledger, message claims, suppressions) in :mod:`.ledger`.

- ``subscribers``: the latest profile per subscriber with its ``version``; ``subscriber.deleted``
  leaves a tombstone (id, version, status "deleted") so that a late event cannot bring data back.
- ``employers``, ``openings``: latest version of each; a close that arrives first leaves a
  closed stub that the older ``opening.posted`` cannot reopen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from hwcollab_common.emails import email_key
from hwcollab_common.mongo import Document, find_in
from hwcollab_common.outbox import OUTBOX_COLLECTION
from hwcollab_notifier.domain import hash_id
from hwcollab_notifier.ledger import DeliveryStore, Session, by_id
from hwcollab_notifier.ports import OPEN_LEDGER, Channel
from hwcollab_schemas.events import EmployerProfile, OpeningDetails, SubscriberProfile

__all__ = ["OPEN_LEDGER", "Channel", "NotifierRepository", "Session"]


class NotifierRepository(DeliveryStore):
    """The read model plus the delivery records (one database, one object to inject): the
    MongoDB implementation of :class:`~hwcollab_notifier.ports.DeliveryPorts`."""

    def __init__(
        self, database: AsyncDatabase[Document], *, on_commit: Callable[[], None] | None = None
    ) -> None:
        super().__init__(database, on_commit=on_commit)
        self.subscribers = database["subscribers"]
        self.employers = database["employers"]
        self.openings = database["openings"]

    async def ensure_indexes(self) -> None:
        await self.subscribers.create_index([("changed_at", ASCENDING)])
        await self.subscribers.create_index([("status", ASCENDING), ("career_info", ASCENDING)])
        await self.subscribers.create_index([("welcome_pending", ASCENDING)])
        await self.subscribers.create_index([("welcome_requested_at", ASCENDING)])
        await self.openings.create_index([("employer_id", ASCENDING)])
        await self.openings.create_index([("status", ASCENDING)])
        await self.ensure_delivery_indexes()

    # --- read model: bulk snapshots for a delivery batch ---------------------------------------

    async def subscribers_by_id(self, ids: Iterable[str]) -> dict[str, Document]:
        return await by_id(self.subscribers, ids)

    async def openings_by_id(self, ids: Iterable[str]) -> dict[str, Document]:
        return await by_id(self.openings, ids)

    async def employers_by_id(self, ids: Iterable[str]) -> dict[str, Document]:
        return await by_id(self.employers, ids)

    async def live_openings(self) -> list[Document]:
        return [doc async for doc in self.open_openings()]

    # --- read model: subscribers --------------------------------------------------------------

    async def subscriber_version(self, subscriber_id: str, *, session: Session) -> int:
        doc = await self.subscribers.find_one(
            {"_id": subscriber_id}, {"version": 1}, session=session
        )
        return int(doc["version"]) if doc else 0

    async def subscriber(self, subscriber_id: str, *, session: Session = None) -> Document | None:
        return await self.subscribers.find_one({"_id": subscriber_id}, session=session)

    async def save_subscriber(
        self,
        profile: SubscriberProfile,
        *,
        now: datetime,
        welcome_pending: bool | None,
        session: Session,
    ) -> None:
        document: Document = {
            **profile.model_dump(mode="python"),
            "_id": profile.subscriber_id,
            "email_hash": hash_id(email_key(profile.email)),
            "changed_at": now,
        }
        update: Document = {"$set": document}
        if welcome_pending is not None:
            document["welcome_pending"] = welcome_pending
            document["welcome_requested_at"] = now
        await self.subscribers.update_one(
            {"_id": profile.subscriber_id}, update, upsert=True, session=session
        )

    async def set_subscriber_status(
        self, subscriber_id: str, *, version: int, status: str, now: datetime, session: Session
    ) -> None:
        await self.subscribers.update_one(
            {"_id": subscriber_id},
            {"$set": {"version": version, "status": status, "changed_at": now}},
            upsert=True,
            session=session,
        )

    async def erase_subscriber(
        self, subscriber_id: str, *, version: int, now: datetime, session: Session
    ) -> None:
        """Forget the person: a tombstone remains, open ledger rows go, sent ones keep a hash."""
        previous = await self.subscribers.find_one({"_id": subscriber_id}, session=session)
        await self.subscribers.replace_one(
            {"_id": subscriber_id},
            {"_id": subscriber_id, "version": version, "status": "deleted", "changed_at": now},
            upsert=True,
            session=session,
        )
        await self.ledger.delete_many(
            {"subscriber_id": subscriber_id, "status": {"$in": list(OPEN_LEDGER)}},
            session=session,
        )
        await self.link_requests.delete_many({"subscriber_id": subscriber_id}, session=session)
        # Bounce reports hold the address and the returned email: they go at once, not in 30 days.
        await self.db["bounces"].delete_many({"subscriber_id": subscriber_id}, session=session)
        await self.ledger.update_many(
            {"subscriber_id": subscriber_id}, {"$unset": {"subscriber_id": ""}}, session=session
        )
        await self.messages.update_many(
            {"subscriber_id": subscriber_id}, {"$unset": {"subscriber_id": ""}}, session=session
        )
        # Published notification events (kept a while for audit) name the person: they go too.
        # Events not yet published still go out, then expire with the outbox retention (7 days).
        await self.db[OUTBOX_COLLECTION].delete_many(
            {"key": subscriber_id, "status": "sent"}, session=session
        )
        if previous and previous.get("email_hash"):
            await self.suppressions.update_one(
                {"_id": previous["email_hash"]}, {"$unset": {"email": ""}}, session=session
            )

    def registered_since(self, moment: datetime) -> AsyncIterator[Document]:
        """Subscribers confirmed (welcome requested) at ``moment`` or later."""
        return aiter(self.subscribers.find({"welcome_requested_at": {"$gte": moment}}))

    def versions_changed_since(self, moment: datetime) -> AsyncIterator[Document]:
        """The id and version of each subscriber row changed at or after ``moment``."""
        return aiter(self.subscribers.find({"changed_at": {"$gte": moment}}, {"version": 1}))

    async def subscriber_rows(self, ids: list[str]) -> list[Document]:
        return await find_in(self.subscribers, "_id", ids)

    def all_subscribers(self) -> AsyncIterator[Document]:
        return aiter(self.subscribers.find({}))

    def career_info_recipients(self) -> AsyncIterator[Document]:
        return aiter(self.subscribers.find({"status": "active", "career_info": True}, {"_id": 1}))

    def pending_welcomes(self, *, requested_before: datetime) -> AsyncIterator[Document]:
        return aiter(
            self.subscribers.find(
                {"welcome_pending": True, "welcome_requested_at": {"$lt": requested_before}},
                {"_id": 1},
            )
        )

    # --- read model: employers and openings ---------------------------------------------------

    async def employer(self, employer_id: str, *, session: Session = None) -> Document | None:
        return await self.employers.find_one({"_id": employer_id}, session=session)

    async def save_employer(
        self, profile: EmployerProfile, *, now: datetime, session: Session
    ) -> bool:
        current = await self.employers.find_one(
            {"_id": profile.employer_id}, {"version": 1}, session=session
        )
        if current is not None and current["version"] >= profile.version:
            return False
        await self.employers.replace_one(
            {"_id": profile.employer_id},
            {
                "_id": profile.employer_id,
                "version": profile.version,
                "status": profile.status,
                "organization_name": profile.organization_name,
                "changed_at": now,
            },
            upsert=True,
            session=session,
        )
        return True

    async def opening(self, opening_id: str, *, session: Session = None) -> Document | None:
        return await self.openings.find_one({"_id": opening_id}, session=session)

    async def opening_version(self, opening_id: str, *, session: Session) -> int:
        doc = await self.openings.find_one({"_id": opening_id}, {"version": 1}, session=session)
        return int(doc["version"]) if doc else 0

    async def save_opening(
        self, details: OpeningDetails, *, now: datetime, session: Session
    ) -> None:
        await self.openings.update_one(
            {"_id": details.opening_id},
            {
                "$set": {
                    "version": details.version,
                    "employer_id": details.employer_id,
                    "status": details.status,
                    "details": details.model_dump(mode="json"),
                    "changed_at": now,
                }
            },
            upsert=True,
            session=session,
        )

    async def close_opening(
        self,
        opening_id: str,
        *,
        employer_id: str,
        version: int,
        closed_at: datetime,
        session: Session,
    ) -> None:
        await self.openings.update_one(
            {"_id": opening_id},
            {
                "$set": {
                    "version": version,
                    "employer_id": employer_id,
                    "status": "closed",
                    "details.status": "closed",
                    "closed_at": closed_at,
                    "changed_at": closed_at,
                }
            },
            upsert=True,
            session=session,
        )

    def openings_of(self, employer_id: str) -> AsyncIterator[Document]:
        return aiter(self.openings.find({"employer_id": employer_id, "status": "open"}, {"_id": 1}))

    def open_openings(self) -> AsyncIterator[Document]:
        return aiter(self.openings.find({"status": "open", "details": {"$exists": True}}))

    async def mark_announced(
        self, opening_id: str, *, version: int, matches: int, now: datetime
    ) -> None:
        """The newest version announced, and how many subscribers it matched (the fan-out
        progress counts those without a ledger row yet as waiting)."""
        await self.openings.update_one(
            {"_id": opening_id},
            {
                "$set": {
                    "announced_version": version,
                    "announced_at": now,
                    "announced_matches": matches,
                }
            },
        )

    async def welcome_pending(self) -> set[str]:
        """Subscribers whose welcome email has not gone yet (by its index: a handful)."""
        cursor = self.subscribers.find({"welcome_pending": True}, {"_id": 1})
        return {str(doc["_id"]) async for doc in cursor}
