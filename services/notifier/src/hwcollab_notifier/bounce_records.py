"""The ``bounces`` collection: one document per bounce or complaint report received (by email or
by a provider's webhook), with what was read and done and the raw report, removed 30 days after
it arrived; and forgiving an address."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from hwcollab_common.emails import email_key
from hwcollab_common.mongo import Document, ensure_expiry_index, transactional_update_many
from hwcollab_notifier.domain import hash_id
from hwcollab_notifier.repository import NotifierRepository

log = logging.getLogger(__name__)


class BounceRecords:
    """The ``bounces`` collection: one document per report received."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.db = database
        self.bounces = database["bounces"]

    async def ensure_indexes(self) -> None:
        await self.bounces.create_index([("email_hash", ASCENDING), ("received_at", ASCENDING)])
        await self.bounces.create_index([("received_at", DESCENDING)])
        await ensure_expiry_index(self.bounces, "expires_at", after=timedelta(0))

    async def soft_bounced_messages(self, email_hash: str, *, since: datetime) -> set[str]:
        """Message-IDs of the address's soft bounces since ``since`` that were not forgiven."""
        cursor = self.bounces.find(
            {
                "email_hash": email_hash,
                "outcome": {"$in": ["soft", "hard"]},
                "kind": "soft",
                "received_at": {"$gte": since},
                "forgiven_at": None,
            },
            {"message_id": 1},
        )
        return {str(doc["message_id"]) async for doc in cursor if doc.get("message_id")}

    async def list(
        self, *, limit: int, offset: int, outcome: str | None = None
    ) -> tuple[int, list[Document]]:
        query: Document = {} if outcome is None else {"outcome": outcome}
        total = await self.bounces.count_documents(query)
        cursor = (
            self.bounces.find(query, {"raw": 0})
            .sort("received_at", DESCENDING)
            .skip(offset)
            .limit(limit)
        )
        return total, [doc async for doc in cursor]

    async def get(self, bounce_id: str) -> Document | None:
        return await self.bounces.find_one({"_id": bounce_id})

    async def forgive(self, email: str, *, now: datetime) -> int:
        """Mark the address's bounces forgiven (they no longer count); how many."""
        result = await transactional_update_many(
            self.bounces,
            {"email_hash": hash_id(email_key(email)), "forgiven_at": None},
            {"$set": {"forgiven_at": now}},
        )
        return result.modified_count


async def forgive_address(
    email: str, *, repository: NotifierRepository, records: BounceRecords, now: datetime
) -> tuple[bool, int]:
    """Let the address be mailed again: off the suppression list, its bounces no longer
    counting; (whether it was suppressed, how many bounces were forgiven). Whether the person
    hears from us again is theirs to decide: a bounced or unsubscribed subscriber signs up again.
    """
    unsuppressed = await repository.unsuppress(email)
    forgiven = await records.forgive(email, now=now)
    return unsuppressed, forgiven
