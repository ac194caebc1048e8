"""Fan-out progress of an opening for operators: how many of its matches are waiting, sent,
dropped or failed, read from the ledger and the number of subscribers the opening matched
(``GET /api/admin/openings/{id}/fanout``)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from hwcollab_common.mongo import Document
from hwcollab_common.openapi import error_responses
from hwcollab_notifier.dependencies import require_admin

OBSOLETE_INDEX = "opening_id_1_status_1"
STATUSES = ("pending", "sent", "dropped", "failed")
"""Where a match stands: its ledger row's status (see :mod:`hwcollab_notifier.ledger`); a row an
earlier version marked ``sending`` is still pending."""


@dataclass(frozen=True, slots=True)
class FanoutProgress:
    """Matches of one opening by ledger status."""

    opening_id: str
    counts: dict[str, int]

    @property
    def matches(self) -> int:
        return sum(self.counts.values())

    @property
    def waiting(self) -> int:
        """Matches not settled yet."""
        return self.counts.get("pending", 0)


class FanoutLedger(Protocol):
    async def progress(self, opening_id: str) -> FanoutProgress | None:
        """The opening's matches by status; None when the notifier knows no such opening."""


def progress_of(
    opening_id: str, rows: Mapping[str, int], *, announced_matches: int
) -> FanoutProgress:
    """The progress of an opening from its ledger rows by status and the number of subscribers
    its newest version matched: an immediate match has no row until its email has an outcome,
    so the matches beyond the rows are waiting too."""
    counts = {status: rows.get(status, 0) for status in STATUSES}
    counts["pending"] += rows.get("sending", 0)
    counts["pending"] += max(0, announced_matches - sum(rows.values()))
    return FanoutProgress(opening_id, counts)


class MongoFanoutLedger:
    """One aggregation over the ledger rows of the opening, grouped by status, and one read of
    the opening's read-model document (how many it matched; None when the notifier does not
    know it)."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._ledger = database["ledger"]
        self._openings = database["openings"]

    async def ensure_indexes(self) -> None:
        """The opening's rows by one index on ``opening_id`` alone: a status in its key would
        cost every settlement of a row one more index write, for a read only operators make."""
        await self._ledger.create_index([("opening_id", ASCENDING)])
        if OBSOLETE_INDEX in await self._ledger.index_information():
            with contextlib.suppress(OperationFailure):  # another replica dropped it first
                await self._ledger.drop_index(OBSOLETE_INDEX)

    async def progress(self, opening_id: str) -> FanoutProgress | None:
        cursor = await self._ledger.aggregate(
            [
                {"$match": {"opening_id": opening_id}},
                {"$group": {"_id": "$status", "rows": {"$sum": 1}}},
            ]
        )
        found = {str(group["_id"]): int(group["rows"]) async for group in cursor}
        opening = await self._openings.find_one({"_id": opening_id}, {"announced_matches": 1})
        if not found and opening is None:
            return None
        matches = int((opening or {}).get("announced_matches") or 0)
        return progress_of(opening_id, found, announced_matches=matches)


class FanoutOut(BaseModel):
    opening_id: str
    matches: int = Field(
        description="Subscribers the opening matched: its ledger rows, or the subscribers its "
        "newest version matched when they are more."
    )
    pending: int = Field(
        description="Matched, not settled yet: waiting for a delivery or a digest, or being sent."
    )
    sent: int = Field(description="Accepted by the SMTP server.")
    dropped: int = Field(
        description="Not sent on purpose: the person paused, left, was suppressed, or the "
        "opening closed or stopped matching before the email went."
    )
    failed: int = Field(description="Given up after a permanent SMTP failure.")


def get_fanout_ledger(request: Request) -> FanoutLedger:
    ledger: FanoutLedger = request.app.state.fanout
    return ledger


Ledger = Annotated[FanoutLedger, Depends(get_fanout_ledger)]
fanout_router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=error_responses(401, 503, s401="A valid admin token is required."),
)


@fanout_router.get(
    "/openings/{opening_id}/fanout",
    summary="How far the emails of an opening have gone",
    description="The opening's matches by delivery status; nothing is pending once every "
    "match has been sent, dropped or failed.",
    responses=error_responses(404, s404="The notifier knows no such opening."),
)
async def fanout(
    ledger: Ledger,
    opening_id: Annotated[str, Path(min_length=1, max_length=200)],
) -> FanoutOut:
    progress = await ledger.progress(opening_id)
    if progress is None:
        raise HTTPException(404, "no such opening")
    counts = progress.counts
    return FanoutOut(
        opening_id=opening_id,
        matches=progress.matches,
        pending=counts["pending"],
        sent=counts["sent"],
        dropped=counts["dropped"],
        failed=counts["failed"],
    )
