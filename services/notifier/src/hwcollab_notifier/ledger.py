"""Where deliveries are recorded: the ledger of (subscriber, opening) pairs, the message claims,
suppressions, bulletins and the locks periodic tasks take.

- ``ledger``: one row per (subscriber, opening) pair, ``_id`` = hash of the pair, created once ever
  (duplicate inserts are ignored): ``channel`` immediate|digest|welcome, ``status``
  pending → sent | failed | dropped (rows an earlier version marked ``sending`` count as pending).
  A digest or welcome row is written twice in its life, when matched and when settled; a new
  immediate pair's row once, with its email's outcome: SecantusDB pays for every index of a
  collection on every write, so nothing in between.
- ``messages``: one entry per Message-ID, claimed with a lease before SMTP and marked after, so that
  a message is sent once even when two replicas or a redelivery try it. No index but ``_id``.
- ``open_digests``: the digest each subscriber was last sent and that is not settled yet
  (``_id`` = subscriber id; its Message-ID, ``digest_key`` and ledger rows), so that a digest cut
  off by a crash goes out again exactly as it was; gone once it settles.
- ``suppressions``: addresses never to write to (``_id`` = hash of the address).
- ``link_requests``: confirmation and manage-link emails the subscriber service asked for
  (``_id`` = the event id), pending → sent | failed | dropped; gone after ``LINK_REQUEST_LIFETIME``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from hwcollab_common.emails import email_key
from hwcollab_common.mongo import (
    Document,
    delete_in,
    ensure_expiry_index,
    find_in,
    in_transaction,
    update_in,
)
from hwcollab_common.outbox import OUTBOX_COLLECTION, stage_events
from hwcollab_notifier.domain import hash_id
from hwcollab_notifier.ports import (
    OPEN_LEDGER,
    Channel,
    Claim,
    MessageStatus,
    RowStatus,
    SettleWork,
)

Session = AsyncClientSession | None
MAX_CLAIMS = 20  # claims remembered per message
LINK_REQUEST_LIFETIME = timedelta(days=7)
"""A link email not sent by then is dropped: the confirmation link in it expires then too."""


OPEN: Document = {"status": {"$in": list(OPEN_LEDGER)}}
"""Ledger rows not yet settled."""


async def by_id(
    collection: AsyncCollection[Document],
    ids: Iterable[str],
    *,
    extra: Document | None = None,
    session: Session = None,
) -> dict[str, Document]:
    """The documents of ``ids``, a round trip per hundred."""
    found = await find_in(collection, "_id", ids, extra=extra, session=session)
    return {doc["_id"]: doc for doc in found}


def new_claim(claim: Claim, *, owner: str, now: datetime, lease: timedelta) -> Document:
    """The record of a message claimed for the first time."""
    return {
        "_id": claim.message_id,
        "kind": claim.kind,
        "subscriber_id": claim.subscriber_id,
        "subscriber_hash": hash_id(claim.subscriber_id),
        "opening_ids": list(claim.opening_ids),
        "status": "sending",
        "owner": owner,
        "lease_until": now + lease,
        "attempts": 1,
        # Who took it when: after a crash, shows which process sent it first.
        "claims": [{"owner": owner, "at": now}],
        "created_at": now,
        "digest_key": claim.digest_key,
    }


def open_digest(claim: Claim, *, now: datetime) -> Document:
    return {
        "_id": claim.subscriber_id,
        "message_id": claim.message_id,
        "digest_key": claim.digest_key,
        "pair_keys": list(claim.pair_keys),
        "claimed_at": now,
    }


def claimable(*, now: datetime) -> Document:
    """Records that may be claimed again: given back, or whose lease ran out. Never while a send
    is in flight, not even for the same process."""
    return {
        "status": {"$in": ["sending", "retry"]},
        "$or": [
            {"status": "retry"},
            {"lease_until": {"$lt": now}},
            {"lease_until": {"$exists": False}},
        ],
    }


class MongoSettlement:
    """The writes of one settling transaction (:class:`~hwcollab_notifier.ports.Settlement`)."""

    def __init__(self, store: DeliveryStore, session: AsyncClientSession) -> None:
        self._store = store
        self._session = session

    async def finish_messages(
        self, ids: Iterable[str], *, status: MessageStatus, now: datetime, detail: str = ""
    ) -> None:
        await self._store.finish_many(
            ids, status=status, now=now, detail=detail, session=self._session
        )

    async def finish_rows(
        self, keys: Iterable[str], *, status: RowStatus, now: datetime, reason: str | None = None
    ) -> None:
        await self._store.mark_rows(
            keys, status=status, now=now, reason=reason, session=self._session
        )

    async def finish_welcomes(self, subscriber_ids: Iterable[str], *, now: datetime) -> None:
        await self._store.welcomed(subscriber_ids, now=now, session=self._session)

    async def finish_digests(self, subscriber_ids: Iterable[str]) -> None:
        await self._store.forget_digests(subscriber_ids, session=self._session)

    async def finish_link_requests(
        self, request_ids: Iterable[str], *, status: MessageStatus, now: datetime
    ) -> None:
        await self._store.links_finished(request_ids, status=status, now=now, session=self._session)

    async def suppress(self, email: str, *, reason: str, now: datetime) -> None:
        await self._store.suppress(email, reason=reason, now=now, session=self._session)


class DeliveryStore:
    def __init__(
        self, database: AsyncDatabase[Document], *, on_commit: Callable[[], None] | None = None
    ) -> None:
        self.db = database
        self._on_commit = on_commit
        self.ledger = database["ledger"]
        self.messages = database["messages"]
        self.open_digests = database["open_digests"]
        self.suppressions = database["suppressions"]
        self.bulletins = database["bulletins"]
        self.locks = database["locks"]
        self.link_requests = database["link_requests"]

    async def ensure_delivery_indexes(self) -> None:
        # Erasing a person removes their published notification events from the outbox by key.
        await self.db[OUTBOX_COLLECTION].create_index([("key", ASCENDING), ("status", ASCENDING)])
        await self.ledger.create_index(
            [("subscriber_id", ASCENDING), ("channel", ASCENDING), ("status", ASCENDING)]
        )
        await self.ledger.create_index(
            [("channel", ASCENDING), ("status", ASCENDING), ("updated_at", ASCENDING)]
        )
        await self.link_requests.create_index([("status", ASCENDING), ("requested_at", ASCENDING)])
        await self.link_requests.create_index([("subscriber_id", ASCENDING)])
        await ensure_expiry_index(self.link_requests, "expires_at", after=timedelta(0))

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

    async def rows_by_key(self, keys: Iterable[str]) -> dict[str, Document]:
        return await by_id(self.ledger, keys)

    async def open_rows_of(
        self, subscriber_ids: Iterable[str], *, channel: Channel
    ) -> list[Document]:
        return await find_in(
            self.ledger,
            "subscriber_id",
            subscriber_ids,
            extra={"channel": channel, **OPEN},
            sort=[("matched_at", ASCENDING), ("_id", ASCENDING)],
        )

    async def set_rows(
        self,
        keys: Iterable[str],
        *,
        status: RowStatus,
        now: datetime,
        reason: str | None = None,
        count: bool = False,
    ) -> None:
        fields: Document = {"status": status, "updated_at": now}
        if reason is not None:
            fields["reason"] = reason[:300]
        update: Document = {"$set": fields}
        if count:
            update["$inc"] = {"attempts": 1}
        await update_in(self.ledger, "_id", keys, update, extra=OPEN)

    async def finish_welcomes(self, subscriber_ids: Iterable[str], *, now: datetime) -> None:
        await self.welcomed(subscriber_ids, now=now, session=None)

    async def welcomed(
        self, subscriber_ids: Iterable[str], *, now: datetime, session: Session
    ) -> None:
        await update_in(
            self.db["subscribers"],
            "_id",
            subscriber_ids,
            {"$set": {"welcome_pending": False, "welcomed_at": now}},
            session=session,
        )

    async def finish_link_requests(
        self, request_ids: Iterable[str], *, status: MessageStatus, now: datetime
    ) -> None:
        await self.links_finished(request_ids, status=status, now=now, session=None)

    async def links_finished(
        self, request_ids: Iterable[str], *, status: str, now: datetime, session: Session
    ) -> None:
        await update_in(
            self.link_requests,
            "_id",
            request_ids,
            {"$set": {"status": status, "finished_at": now}},
            extra={"status": "pending"},
            session=session,
        )

    async def link_requests_by_id(self, ids: Iterable[str]) -> dict[str, Document]:
        return await by_id(self.link_requests, ids)

    async def bulletins_by_id(self, ids: Iterable[str]) -> dict[str, Document]:
        return await by_id(self.bulletins, ids)

    async def suppressed_among(self, emails: Iterable[str]) -> set[str]:
        addresses = {hash_id(email_key(e)): email_key(e) for e in emails}
        if not addresses:
            return set()
        found = await by_id(self.suppressions, addresses)
        return {addresses[key] for key in found}

    async def settle(self, work: SettleWork) -> None:
        async def transaction(session: AsyncClientSession) -> None:
            events = await work(MongoSettlement(self, session))
            await stage_events(self.db, events, session=session)

        await in_transaction(self.db.client, transaction)
        if self._on_commit is not None:
            self._on_commit()

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
        await update_in(self.ledger, "_id", keys, {"$set": fields}, extra=OPEN, session=session)

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

    # --- link emails ----------------------------------------------------------------------------

    async def save_link_request(self, request: Document, *, session: Session) -> None:
        await self.link_requests.insert_one(request, session=session)

    async def link_request(self, request_id: str) -> Document | None:
        return await self.link_requests.find_one({"_id": request_id})

    def pending_link_requests(self, *, requested_before: datetime) -> AsyncIterator[Document]:
        return aiter(
            self.link_requests.find(
                {"status": "pending", "requested_at": {"$lt": requested_before}}, {"_id": 1}
            ).sort("requested_at", ASCENDING)
        )

    # --- messages -----------------------------------------------------------------------------

    async def messages_by_id(self, ids: Iterable[str]) -> dict[str, Document]:
        return await by_id(self.messages, ids)

    async def claim_messages(
        self, claims: Sequence[Claim], *, owner: str, now: datetime, lease: timedelta
    ) -> dict[str, int]:
        """New messages in one ``insert_many`` (the unique ``_id`` lets one sender win); those
        that exist, when any, with one update of the claimable ones and one read of who won."""
        wanted = {claim.message_id: claim for claim in claims}
        if not wanted:
            return {}
        order = list(wanted)
        documents = [new_claim(wanted[i], owner=owner, now=now, lease=lease) for i in order]
        try:
            await self.messages.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
            existing = [order[e["index"]] for e in errors]
        else:
            await self._open_digests([wanted[i] for i in order], now=now)
            return dict.fromkeys(wanted, 1)
        until = now + lease
        await update_in(
            self.messages,
            "_id",
            existing,
            {
                "$set": {"status": "sending", "owner": owner, "lease_until": until},
                "$inc": {"attempts": 1},
                # Who took it when: after a crash, shows which process sent it first.
                "$push": {
                    "claims": {"$each": [{"owner": owner, "at": now}], "$slice": -MAX_CLAIMS}
                },
            },
            extra=claimable(now=now),
        )
        taken = await find_in(
            self.messages,
            "_id",
            existing,
            extra={"owner": owner, "lease_until": until},
            projection={"attempts": 1},
        )
        claimed = {
            **dict.fromkeys(set(wanted) - set(existing), 1),
            **{doc["_id"]: int(doc.get("attempts", 1)) for doc in taken},
        }
        await self._open_digests([wanted[i] for i in order if i in claimed], now=now)
        return claimed

    async def _open_digests(self, claims: Sequence[Claim], *, now: datetime) -> None:
        """Remember the digests among ``claims`` as their subscribers' open digest; one that is
        open already (sent again after a crash) stays as it is."""
        digests = [open_digest(c, now=now) for c in claims if c.kind == "digest" and c.digest_key]
        if not digests:
            return
        try:
            await self.open_digests.insert_many(digests, ordered=False)
        except BulkWriteError as error:
            if any(e.get("code") != 11000 for e in error.details.get("writeErrors", [])):
                raise
            # A subscriber whose open digest had nothing left to send got a new one.
            for e in error.details["writeErrors"]:
                document = digests[e["index"]]
                await self.open_digests.replace_one(
                    {"_id": document["_id"], "message_id": {"$ne": document["message_id"]}},
                    document,
                )

    async def unsettled_digests(self, subscriber_ids: Iterable[str]) -> list[Document]:
        found = await find_in(self.open_digests, "_id", subscriber_ids)
        return [{"subscriber_id": doc.pop("_id"), **doc} for doc in found]

    async def forget_digests(self, subscriber_ids: Iterable[str], *, session: Session) -> None:
        await delete_in(self.open_digests, "_id", subscriber_ids, session=session)

    async def renew_claims(
        self, ids: Iterable[str], *, owner: str, now: datetime, lease: timedelta
    ) -> None:
        await self._update_own_sending(
            ids, owner=owner, update={"$set": {"lease_until": now + lease}}
        )

    async def release_messages(
        self, ids: Iterable[str], *, owner: str, now: datetime, detail: str
    ) -> None:
        await self._update_own_sending(
            ids,
            owner=owner,
            update={
                "$set": {"status": "retry", "finished_at": now, "detail": detail[:300]},
                "$unset": {"lease_until": "", "owner": ""},
                "$inc": {"attempts": -1},
            },
        )

    async def _update_own_sending(
        self, ids: Iterable[str], *, owner: str, update: dict[str, Any]
    ) -> None:
        """Update the messages of ``ids`` that ``owner`` still holds in ``sending``."""
        await update_in(
            self.messages, "_id", ids, update, extra={"status": "sending", "owner": owner}
        )

    async def retry_messages(self, ids: Iterable[str], *, now: datetime, detail: str) -> None:
        await self.finish_many(ids, status="retry", now=now, detail=detail, session=None)

    async def finish_many(
        self,
        ids: Iterable[str],
        *,
        status: str,
        now: datetime,
        detail: str = "",
        session: Session,
    ) -> None:
        await update_in(
            self.messages,
            "_id",
            ids,
            {
                "$set": {"status": status, "finished_at": now, "detail": detail[:300]},
                "$unset": {"lease_until": "", "owner": ""},
            },
            session=session,
        )

    async def message(self, message_id: str) -> Document | None:
        return await self.messages.find_one({"_id": message_id})

    # --- suppressions -------------------------------------------------------------------------

    async def is_suppressed(self, email: str) -> bool:
        found = await self.suppressions.find_one({"_id": hash_id(email_key(email))}, {"_id": 1})
        return found is not None

    async def suppress(
        self, email: str, *, reason: str, now: datetime, session: Session = None
    ) -> bool:
        """Add ``email``; False when it was already suppressed."""
        address = email_key(email)
        result = await self.suppressions.update_one(
            {"_id": hash_id(address)},
            {"$setOnInsert": {"email": address, "reason": reason[:300], "created_at": now}},
            upsert=True,
            session=session,
        )
        return result.upserted_id is not None

    async def unsuppress(self, email: str) -> bool:
        result = await self.suppressions.delete_one({"_id": hash_id(email_key(email))})
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

    async def mark_bulletin_queued(
        self, bulletin_id: str, *, recipients: int, at: datetime
    ) -> None:
        await self.bulletins.update_one(
            {"_id": bulletin_id},
            {"$set": {"status": "queued", "recipients": recipients, "queued_at": at}},
        )

    async def unqueued_bulletins(self, *, created_before: datetime) -> AsyncIterator[str]:
        """Bulletins whose delivery jobs may not all have reached Kafka."""
        cursor = self.bulletins.find(
            {"status": "queuing", "created_at": {"$lt": created_before}}, {"_id": 1}
        )
        async for doc in cursor:
            yield str(doc["_id"])

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
