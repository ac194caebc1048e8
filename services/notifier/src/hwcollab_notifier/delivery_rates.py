"""The 7-day bounce and complaint rates mailbox providers judge a sender by (Gmail's postmaster
thresholds: complaints under 0.1 %, never 0.3 %), as gauges on ``/metrics``:

- ``hwcollab_bounce_rate_7d``: hard bounces (reported later, or refused with a 5xx when sent)
  over emails attempted (accepted + refused with a 5xx) in the last 7 days;
- ``hwcollab_complaint_rate_7d``: complaints over emails accepted in the last 7 days;
- ``hwcollab_emails_sent_7d``: emails accepted in the last 7 days (alerts ignore a tiny volume).

Where the numbers come from, without a read per email: ``messages`` has no index but ``_id`` (every
index costs every delivery write), so instead each process adds what its postman counted (the
``hwcollab_notifier_emails_sent_total`` and ``…_emails_failed_total{permanent="true"}`` counters)
to a tally of its own per hour in ``send_tallies``, once per refresh (one upsert, outside any
transaction); the rates are then one read of at most 168 tallies per process and one
aggregation over the ``bounces`` of the last 7 days (its ``received_at`` index). A process that
dies loses at most one refresh interval of its count.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import REGISTRY, Gauge
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from hwcollab_common.clock import Clock
from hwcollab_common.mongo import Document, ensure_expiry_index

log = logging.getLogger(__name__)

WINDOW = timedelta(days=7)
KEPT_FOR = WINDOW + timedelta(days=1)
BOUNCE_RATE = Gauge(
    "hwcollab_bounce_rate_7d",
    "Hard bounces (reported, or refused at send) over emails attempted, last 7 days (0.01 = 1 %)",
)
COMPLAINT_RATE = Gauge(
    "hwcollab_complaint_rate_7d",
    "Spam complaints over emails accepted, last 7 days (0.001 = 0.1 %, Gmail's limit)",
)
SENT_7D = Gauge("hwcollab_emails_sent_7d", "Emails accepted by SMTP in the last 7 days")


@dataclass(frozen=True, slots=True)
class SendCounts:
    sent: float
    refused: float
    """Refused permanently (5xx) when sent."""


def counted_by_this_process() -> SendCounts:
    """What this process's postman has counted since it started."""
    sent = refused = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "hwcollab_notifier_emails_sent":
            sent += sum(s.value for s in metric.samples if s.name.endswith("_total"))
        elif metric.name == "hwcollab_notifier_emails_failed":
            refused += sum(
                s.value
                for s in metric.samples
                if s.name.endswith("_total") and s.labels.get("permanent") == "true"
            )
    return SendCounts(sent, refused)


@dataclass(frozen=True, slots=True)
class Rates:
    sent: int
    refused: int
    hard_bounces: int
    complaints: int

    @property
    def bounce_rate(self) -> float:
        attempted = self.sent + self.refused
        return (self.hard_bounces + self.refused) / attempted if attempted else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sent if self.sent else 0.0


class DeliveryRates:
    def __init__(
        self,
        database: AsyncDatabase[Document],
        *,
        clock: Clock,
        counts: Callable[[], SendCounts] = counted_by_this_process,
        process: str | None = None,
    ) -> None:
        self._tallies = database["send_tallies"]
        self._bounces = database["bounces"]
        self._clock = clock
        self._counts = counts
        self._process = process or f"{socket.gethostname()}:{os.getpid()}"
        self._tallied = SendCounts(0.0, 0.0)

    async def ensure_indexes(self) -> None:
        await self._tallies.create_index([("hour", ASCENDING)])
        await ensure_expiry_index(self._tallies, "expires_at", after=timedelta(0))

    async def tally(self) -> None:
        """Add what this process counted since the last tally to its tally of this hour."""
        counts = self._counts()
        sent = int(counts.sent - self._tallied.sent)
        refused = int(counts.refused - self._tallied.refused)
        if sent <= 0 and refused <= 0:
            return
        hour = self._clock.now().replace(minute=0, second=0, microsecond=0)
        await self._tallies.update_one(
            {"_id": f"{hour.isoformat()}|{self._process}"},
            {
                "$inc": {"sent": sent, "refused": refused},
                "$setOnInsert": {"hour": hour, "expires_at": hour + KEPT_FOR},
            },
            upsert=True,
        )
        self._tallied = SendCounts(self._tallied.sent + sent, self._tallied.refused + refused)

    async def rates(self, *, now: datetime | None = None) -> Rates:
        now = now or self._clock.now()
        since = now - WINDOW
        sent = refused = 0
        first_hour = since.replace(minute=0, second=0, microsecond=0)
        async for tally in self._tallies.find({"hour": {"$gte": first_hour}}):
            sent += int(tally.get("sent", 0))
            refused += int(tally.get("refused", 0))
        found = {"hard": 0, "complaint": 0}
        pipeline: list[Document] = [
            {
                "$match": {
                    "received_at": {"$gte": since},
                    "outcome": {"$in": ["hard", "complaint"]},
                }
            },
            {"$group": {"_id": "$outcome", "n": {"$sum": 1}}},
        ]
        async for row in await self._bounces.aggregate(pipeline):
            found[str(row["_id"])] = int(row["n"])
        return Rates(
            sent=sent, refused=refused, hard_bounces=found["hard"], complaints=found["complaint"]
        )

    async def refresh(self) -> Rates:
        """Tally, then set the gauges from every process's tallies."""
        await self.tally()
        rates = await self.rates()
        BOUNCE_RATE.set(rates.bounce_rate)
        COMPLAINT_RATE.set(rates.complaint_rate)
        SENT_7D.set(rates.sent)
        return rates
