"""Transactional outbox: events are written in the same MongoDB transaction as the state change,
then a relay publishes them to Kafka (key = aggregate id) and marks them sent.

Several relay instances (replicas of a service) may run at once: each claims a batch with a
short lease before publishing, so an entry is normally published once; if a relay dies after
publishing and before marking, the lease expires and the entry is published again — consumers
dedupe on ``event_id``, which makes that harmless.

Outages: while Kafka or MongoDB is unreachable the relay keeps looping, waiting longer between
attempts (doubling up to ``max_backoff``, with jitter) and logging each failed attempt, and
resumes by itself when both are back. Entries stay ``pending`` in the meantime; writes to the
service go on while Kafka is away. An entry whose publication was acknowledged but could not be
marked ``sent`` (MongoDB away) is remembered and marked first when MongoDB returns, so it is not
published a second time by this relay. Records the producer already holds when Kafka goes away
are delivered by it when Kafka returns: the relay waits for their acknowledgement (logging, and
renewing its lease on them) instead of sending them twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Awaitable, Iterable
from datetime import timedelta
from typing import Any, Protocol
from uuid import uuid4

from prometheus_client import Counter, Gauge
from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from hwcollab_common.clock import Clock
from hwcollab_common.errors import is_transient
from hwcollab_common.mongo import (
    Document,
    ensure_expiry_index,
    transactional_update_many,
    update_in,
)
from hwcollab_common.retrying import HalvedJitterBackoff
from hwcollab_common.tracing import SpanKind, context_from, span, trace_headers
from hwcollab_schemas import Event

log = logging.getLogger(__name__)

OUTBOX_COLLECTION = "outbox"
SENT_RETENTION = timedelta(days=7)

RELAYED = Counter("hwcollab_outbox_relayed_total", "Outbox events published to Kafka", ["topic"])
RELAY_ERRORS = Counter("hwcollab_outbox_relay_errors_total", "Failed outbox relay batches")
PENDING = Gauge("hwcollab_outbox_pending", "Outbox events not yet published")
OLDEST_PENDING = Gauge(
    "hwcollab_outbox_oldest_pending_seconds", "Age of the oldest outbox event not yet published"
)


class EventPublisher(Protocol):
    """Hands one serialized event to the broker and returns an awaitable for its acknowledgement,
    so that a batch can be in flight at once (order per partition is kept by the producer)."""

    async def send(
        self, *, topic: str, key: str, value: bytes, headers: dict[str, str]
    ) -> Awaitable[object]: ...


def outbox_document(event: Event) -> Document:
    """The outbox entry of ``event``, with the trace context of the change that staged it."""
    return {
        "_id": str(event.event_id),
        "trace": trace_headers(),
        "topic": event.topic,
        "key": event.key,
        "event_type": event.event_type,
        "value": event.to_bytes(),
        "created_at": event.occurred_at,
        "status": "pending",
        "lease_until": None,
        "lease_owner": None,
        "attempts": 0,
    }


async def stage_events(
    database: AsyncDatabase[Document],
    events: Iterable[Event],
    *,
    session: AsyncClientSession | None,
) -> None:
    """Write ``events`` to the outbox; pass the session of the transaction making the change."""
    documents = [outbox_document(event) for event in events]
    if documents:
        await database[OUTBOX_COLLECTION].insert_many(documents, session=session, ordered=True)


async def sample_backlog(database: AsyncDatabase[Document], *, clock: Clock) -> int:
    """Set the backlog gauges (sampled on a timer, so they move during a broker outage too)."""
    outbox = database[OUTBOX_COLLECTION]
    pending = await outbox.count_documents({"status": "pending"})
    oldest = await outbox.find_one(
        {"status": "pending"}, {"created_at": 1}, sort=[("created_at", ASCENDING)]
    )
    PENDING.set(pending)
    age = (clock.now() - oldest["created_at"]).total_seconds() if oldest else 0.0
    OLDEST_PENDING.set(max(0.0, age))
    return pending


async def ensure_outbox_indexes(database: AsyncDatabase[Document]) -> None:
    outbox = database[OUTBOX_COLLECTION]
    await outbox.create_index([("status", ASCENDING), ("created_at", ASCENDING)])
    await outbox.create_index("lease_owner")
    await ensure_expiry_index(outbox, "sent_at", after=SENT_RETENTION)


class OutboxRelay:
    """Publishes pending outbox entries in creation order, in batches, until stopped."""

    def __init__(
        self,
        database: AsyncDatabase[Document],
        publisher: EventPublisher,
        *,
        clock: Clock,
        poll_seconds: float = 0.5,
        batch_size: int = 200,
        lease: timedelta = timedelta(seconds=30),
        max_backoff: float = 5.0,
        ack_report_seconds: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._outbox: AsyncCollection[Document] = database[OUTBOX_COLLECTION]
        self._publisher = publisher
        self._clock = clock
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._lease = lease
        self._waits = HalvedJitterBackoff(
            base=poll_seconds, cap=max(max_backoff, poll_seconds), rng=rng
        )
        # Report (and renew the lease) well before the lease runs out.
        self._ack_report_seconds = ack_report_seconds or lease.total_seconds() / 3
        self._unmarked: list[str] = []
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        """Publish soon: call after committing a transaction that staged events."""
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._stop_requested.clear()
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Finish the batch in flight, then stop."""
        self._stopping = True
        self._stop_requested.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                published = await self.relay_once()
            except Exception as error:
                RELAY_ERRORS.inc()
                failures += 1
                delay = self._waits.delay(failures)
                if is_transient(error):
                    log.warning(
                        "outbox relay: Kafka or MongoDB unavailable (attempt %d), retrying in "
                        "%.1f s: %s: %s",
                        failures,
                        delay,
                        type(error).__name__,
                        str(error)[:300],
                    )
                else:
                    log.exception("outbox relay batch failed; retrying in %.1f s", delay)
                # Backing off: only a stop cuts this short, not new entries.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_requested.wait(), timeout=delay)
                continue
            if failures:
                log.info("outbox relay resumed after %d failed attempts", failures)
                failures = 0
            if published == 0 and not self._stopping:
                await self._pause(self._poll_seconds)

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` or until woken (new entries, or stop)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def relay_once(self) -> int:
        """Claim, publish and mark one batch; returns how many entries were published.

        Raises when Kafka or MongoDB fails; what was acknowledged by Kafka is marked (now or, if
        MongoDB is away, on a later call) and the rest is given back for the next attempt.
        """
        await self._mark_remembered()
        batch = await self._claim()
        if not batch:
            return 0
        sends: list[tuple[str, Awaitable[object]]] = []
        failure: BaseException | None = None
        for entry in batch:
            try:
                acknowledgement = await self._send(entry)
            except Exception as error:
                failure = error
                break
            sends.append((entry["_id"], acknowledgement))
        # Await every acknowledgement of what was handed over, even after a failure: an entry the
        # producer delivers must be marked, or it would be published again.
        published: list[str] = []
        topics = {entry["_id"]: entry["topic"] for entry in batch}
        outcomes, in_doubt = await self._acknowledgements(sends)
        for event_id, problem in outcomes.items():
            if problem is not None:
                failure = failure or problem
                continue
            published.append(event_id)
            RELAYED.labels(topics[event_id]).inc()
        self._unmarked.extend(published)
        try:
            await self._mark_remembered()
        finally:
            # Entries the producer may still deliver (stopped while Kafka was away) keep their
            # lease, so that no other relay publishes them again before it runs out.
            done = set(published) | in_doubt
            unpublished = [e["_id"] for e in batch if e["_id"] not in done]
            if unpublished:  # give them back at once rather than waiting for the lease
                await update_in(
                    self._outbox,
                    "_id",
                    unpublished,
                    {"$set": {"lease_until": None, "lease_owner": None}, "$inc": {"attempts": 1}},
                    extra={"lease_owner": self._owner},
                )
        if failure is not None:
            raise failure
        if in_doubt:
            raise ConnectionError(f"stopped with {len(in_doubt)} events not yet acknowledged")
        PENDING.set(await self._outbox.count_documents({"status": "pending"}))
        return len(published)

    async def _acknowledgements(
        self, sends: list[tuple[str, Awaitable[object]]]
    ) -> tuple[dict[str, BaseException | None], set[str]]:
        """Wait for the broker to acknowledge what was handed over: each event's error (None when
        acknowledged), and the events still unacknowledged when the relay was stopped.

        While Kafka is away the producer keeps the records and retries them; they are delivered
        once when it returns. The relay waits for that rather than sending them again, logs while
        it waits and renews its lease on them so that no other relay takes them over.
        """
        futures = {asyncio.ensure_future(ack): event_id for event_id, ack in sends}
        outcomes: dict[str, BaseException | None] = {}
        loop = asyncio.get_running_loop()
        started = loop.time()
        next_report = started + self._ack_report_seconds
        waiting = set(futures)
        while waiting:
            done, waiting = await asyncio.wait(waiting, timeout=self._poll_seconds)
            for future in done:
                outcomes[futures[future]] = (
                    ConnectionError("send cancelled") if future.cancelled() else future.exception()
                )
            if not waiting or self._stopping:
                break
            if loop.time() >= next_report:
                next_report = loop.time() + self._ack_report_seconds
                log.warning(
                    "outbox relay: Kafka has not acknowledged %d events for %.0f s; waiting",
                    len(waiting),
                    loop.time() - started,
                )
                await update_in(
                    self._outbox,
                    "_id",
                    [futures[f] for f in waiting],
                    {"$set": {"lease_until": self._clock.now() + self._lease}},
                    extra={"lease_owner": self._owner},
                )
        return outcomes, {futures[future] for future in waiting}

    async def _send(self, entry: dict[str, Any]) -> Awaitable[object]:
        """Hand one entry to the producer, in a span of the trace that staged it (so the trace
        shows how long the event waited in the outbox); its context goes on in the headers."""
        staged = entry.get("trace") or {}
        with span(
            f"publish {entry['topic']}",
            kind=SpanKind.PRODUCER,
            parent=context_from(staged),
            attributes={"messaging.system": "kafka", "messaging.message.id": entry["_id"]},
        ):
            return await self._publisher.send(
                topic=entry["topic"],
                key=entry["key"],
                value=entry["value"],
                headers={
                    **(trace_headers() or staged),
                    "event_type": entry["event_type"],
                    "event_id": entry["_id"],
                },
            )

    async def _mark_remembered(self) -> None:
        """Mark ``sent`` what Kafka acknowledged; kept for the next call if MongoDB is away."""
        if not self._unmarked:
            return
        await transactional_update_many(
            self._outbox,
            {"_id": {"$in": self._unmarked}, "status": "pending"},
            {
                "$set": {"status": "sent", "sent_at": self._clock.now()},
                "$unset": {"lease_until": "", "lease_owner": ""},
            },
        )
        self._unmarked = []

    async def _claim(self) -> list[dict[str, Any]]:
        now = self._clock.now()
        claimable = {
            "status": "pending",
            "$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}],
        }
        candidates = [
            doc["_id"]
            async for doc in self._outbox.find(claimable, {"_id": 1})
            .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
            .limit(self._batch_size)
        ]
        if not candidates:
            return []
        await transactional_update_many(
            self._outbox,
            {"_id": {"$in": candidates}, **claimable},
            {"$set": {"lease_owner": self._owner, "lease_until": now + self._lease}},
        )
        return [
            doc
            async for doc in self._outbox.find(
                {"_id": {"$in": candidates}, "lease_owner": self._owner, "status": "pending"}
            ).sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        ]
