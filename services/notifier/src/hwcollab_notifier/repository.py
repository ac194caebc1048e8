"""The notifier's MongoDB: the read model (subscribers, employers, openings), the delivery ledger,
the message log, suppressions and bulletins.

Collections
- ``subscribers``: the latest profile per subscriber with its ``version``; ``subscriber.deleted``
  leaves a tombstone (id, version, status "deleted") so that a late event cannot bring data back.
- ``employers``, ``openings``: latest version of each; a close that arrives first leaves a
  closed stub that the older ``opening.posted`` cannot reopen.
- ``ledger``: one row per (subscriber, opening) pair, ``_id`` = hash of the pair, created once ever
  (duplicate inserts are ignored): ``channel`` immediate|digest|welcome, ``status``
  pending → sending → sent | failed | dropped.
- ``messages``: one entry per Message-ID, claimed with a lease before SMTP and marked after, so that
  a message is sent once even when two replicas or a redelivery try it.
- ``suppressions``: addresses never to write to (``_id`` = hash of the address).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from hwcollab_common.mongo import Document
from hwcollab_notifier.domain import hash_id, normalize_email
from hwcollab_schemas.events import EmployerProfile, OpeningDetails, SubscriberProfile

Channel = Literal["immediate", "digest", "welcome"]
Session = AsyncClientSession | None
OPEN_LEDGER = ("pending", "sending")


class NotifierRepository:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.db = database
        self.subscribers = database["subscribers"]
        self.employers = database["employers"]
        self.openings = database["openings"]
        self.ledger = database["ledger"]
        self.messages = database["messages"]
        self.suppressions = database["suppressions"]
        self.bulletins = database["bulletins"]
        self.locks = database["locks"]

    async def ensure_indexes(self) -> None:
        await self.subscribers.create_index([("changed_at", ASCENDING)])
        await self.subscribers.create_index([("status", ASCENDING), ("career_info", ASCENDING)])
        await self.subscribers.create_index([("welcome_pending", ASCENDING)])
        await self.openings.create_index([("employer_id", ASCENDING)])
        await self.openings.create_index([("status", ASCENDING)])
        await self.ledger.create_index(
            [("subscriber_id", ASCENDING), ("channel", ASCENDING), ("status", ASCENDING)]
        )
        await self.ledger.create_index(
            [("channel", ASCENDING), ("status", ASCENDING), ("updated_at", ASCENDING)]
        )

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
            "email_hash": hash_id(normalize_email(profile.email)),
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
        await self.ledger.update_many(
            {"subscriber_id": subscriber_id}, {"$unset": {"subscriber_id": ""}}, session=session
        )
        await self.messages.update_many(
            {"subscriber_id": subscriber_id}, {"$unset": {"subscriber_id": ""}}, session=session
        )
        if previous and previous.get("email_hash"):
            await self.suppressions.update_one(
                {"_id": previous["email_hash"]}, {"$unset": {"email": ""}}, session=session
            )

    async def finish_welcome(self, subscriber_id: str, *, now: datetime, session: Session) -> None:
        await self.subscribers.update_one(
            {"_id": subscriber_id},
            {"$set": {"welcome_pending": False, "welcomed_at": now}},
            session=session,
        )

    def changed_since(self, moment: datetime) -> AsyncIterator[Document]:
        return aiter(self.subscribers.find({"changed_at": {"$gte": moment}}))

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

    async def mark_announced(self, opening_id: str, *, version: int, now: datetime) -> None:
        await self.openings.update_one(
            {"_id": opening_id}, {"$set": {"announced_version": version, "announced_at": now}}
        )

    # --- ledger -------------------------------------------------------------------------------

    async def add_pairs(self, rows: Sequence[Document]) -> list[str]:
        """Insert ledger rows, skipping pairs that exist already; the ids actually inserted."""
        if not rows:
            return []
        try:
            await self.ledger.insert_many(list(rows), ordered=False)
        except BulkWriteError as error:
            duplicates = {
                rows[e["index"]]["_id"]
                for e in error.details.get("writeErrors", [])
                if e.get("code") == 11000
            }
            if len(duplicates) != len(error.details.get("writeErrors", [])):
                raise
            return [row["_id"] for row in rows if row["_id"] not in duplicates]
        return [row["_id"] for row in rows]

    async def pair(self, key: str) -> Document | None:
        return await self.ledger.find_one({"_id": key})

    async def rows_of(self, subscriber_id: str, *, channel: Channel) -> list[Document]:
        cursor = self.ledger.find(
            {
                "subscriber_id": subscriber_id,
                "channel": channel,
                "status": {"$in": list(OPEN_LEDGER)},
            }
        ).sort([("matched_at", ASCENDING), ("_id", ASCENDING)])
        return [row async for row in cursor]

    async def subscribers_with_digest_rows(self) -> list[str]:
        values = await self.ledger.distinct(
            "subscriber_id", {"channel": "digest", "status": {"$in": list(OPEN_LEDGER)}}
        )
        return [str(v) for v in values if v]

    async def mark_rows(
        self,
        keys: Iterable[str],
        *,
        status: str,
        now: datetime,
        message_id: str | None = None,
        reason: str | None = None,
        session: Session = None,
    ) -> None:
        fields: Document = {"status": status, "updated_at": now}
        if message_id is not None:
            fields["message_id"] = message_id
        if reason is not None:
            fields["reason"] = reason
        await self.ledger.update_many(
            {"_id": {"$in": list(keys)}, "status": {"$in": [*OPEN_LEDGER]}},
            {"$set": fields},
            session=session,
        )

    async def retry_rows(self, keys: Iterable[str], *, now: datetime, detail: str) -> None:
        await self.ledger.update_many(
            {"_id": {"$in": list(keys)}, "status": {"$in": list(OPEN_LEDGER)}},
            {
                "$set": {"status": "pending", "updated_at": now, "reason": detail[:300]},
                "$inc": {"attempts": 1},
            },
        )

    async def switch_to_immediate(
        self, subscriber_id: str, *, now: datetime, session: Session
    ) -> None:
        """Digest rows not yet sent become immediate deliveries (same rows: never twice)."""
        await self.ledger.update_many(
            {"subscriber_id": subscriber_id, "channel": "digest", "status": "pending"},
            {"$set": {"channel": "immediate", "updated_at": now}},
            session=session,
        )

    async def drop_open_rows(
        self, subscriber_id: str, *, reason: str, now: datetime, session: Session
    ) -> None:
        await self.ledger.update_many(
            {"subscriber_id": subscriber_id, "status": "pending"},
            {"$set": {"status": "dropped", "reason": reason, "updated_at": now}},
            session=session,
        )

    def stale_immediate(self, *, before: datetime, limit: int) -> AsyncIterator[Document]:
        return aiter(
            self.ledger.find(
                {
                    "channel": "immediate",
                    "status": {"$in": list(OPEN_LEDGER)},
                    "updated_at": {"$lt": before},
                },
                {"subscriber_id": 1, "opening_id": 1},
            )
            .sort("updated_at", ASCENDING)
            .limit(limit)
        )

    # --- messages -----------------------------------------------------------------------------

    async def claim_message(
        self,
        *,
        message_id: str,
        kind: str,
        subscriber_id: str,
        opening_ids: Sequence[str],
        owner: str,
        now: datetime,
        lease: timedelta,
        digest_key: str | None = None,
    ) -> Document | None:
        """Take the right to send ``message_id`` now; None when it was sent, failed for good, or
        another sender holds an unexpired lease on it."""
        try:
            await self.messages.insert_one(
                {
                    "_id": message_id,
                    "kind": kind,
                    "subscriber_id": subscriber_id,
                    "subscriber_hash": hash_id(subscriber_id),
                    "opening_ids": list(opening_ids),
                    "status": "sending",
                    "owner": owner,
                    "lease_until": now + lease,
                    "attempts": 1,
                    "created_at": now,
                    "digest_key": digest_key,
                }
            )
        except DuplicateKeyError:
            return await self.messages.find_one_and_update(
                {
                    "_id": message_id,
                    "status": {"$in": ["sending", "retry"]},
                    "$or": [
                        {"owner": owner},
                        {"lease_until": {"$lt": now}},
                        {"lease_until": {"$exists": False}},
                    ],
                },
                {
                    "$set": {"status": "sending", "owner": owner, "lease_until": now + lease},
                    "$inc": {"attempts": 1},
                },
                return_document=ReturnDocument.AFTER,
            )
        return await self.messages.find_one({"_id": message_id})

    async def finish_message(
        self,
        message_id: str,
        *,
        status: str,
        now: datetime,
        detail: str | None = None,
        session: Session = None,
    ) -> None:
        await self.messages.update_one(
            {"_id": message_id},
            {
                "$set": {"status": status, "finished_at": now, "detail": (detail or "")[:300]},
                "$unset": {"lease_until": "", "owner": ""},
            },
            session=session,
        )

    async def message(self, message_id: str) -> Document | None:
        return await self.messages.find_one({"_id": message_id})

    # --- suppressions -------------------------------------------------------------------------

    async def is_suppressed(self, email: str) -> bool:
        found = await self.suppressions.find_one(
            {"_id": hash_id(normalize_email(email))}, {"_id": 1}
        )
        return found is not None

    async def suppress(
        self, email: str, *, reason: str, now: datetime, session: Session = None
    ) -> bool:
        """Add ``email``; False when it was already suppressed."""
        address = normalize_email(email)
        result = await self.suppressions.update_one(
            {"_id": hash_id(address)},
            {"$setOnInsert": {"email": address, "reason": reason[:300], "created_at": now}},
            upsert=True,
            session=session,
        )
        return result.upserted_id is not None

    async def unsuppress(self, email: str) -> bool:
        result = await self.suppressions.delete_one({"_id": hash_id(normalize_email(email))})
        return result.deleted_count == 1

    async def list_suppressions(self, *, limit: int, offset: int) -> tuple[int, list[Document]]:
        total = await self.suppressions.count_documents({})
        cursor = self.suppressions.find({}).sort("created_at", ASCENDING).skip(offset).limit(limit)
        return total, [doc async for doc in cursor]

    # --- bulletins and locks ------------------------------------------------------------------

    async def save_bulletin(self, document: Document) -> None:
        await self.bulletins.insert_one(document)

    async def bulletin(self, bulletin_id: str) -> Document | None:
        return await self.bulletins.find_one({"_id": bulletin_id})

    async def take_lock(self, name: str, *, owner: str, now: datetime, ttl: timedelta) -> bool:
        """A lease that lets one replica at a time run a periodic task."""
        try:
            doc: Any = await self.locks.find_one_and_update(
                {"_id": name, "$or": [{"owner": owner}, {"until": {"$lt": now}}]},
                {"$set": {"owner": owner, "until": now + ttl}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return False
        return doc is not None and doc.get("owner") == owner
