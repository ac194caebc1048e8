"""Operator-facing work: dead-letter listing and replay, bulletins, the sweeper that delivers
what was left pending, and consumer-lag sampling."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import uuid4

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker

from hwcollab_common.errors import TransientError
from hwcollab_common.kafka_admin import topic_partitions
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_notifier import metrics
from hwcollab_notifier.delivery import Deliveries, chunks
from hwcollab_notifier.jobs import JobQueue
from hwcollab_notifier.repository import NotifierRepository
from hwcollab_notifier.settings import Settings
from hwcollab_schemas.delivery import DeliveryJob
from hwcollab_schemas.topics import ALL_TOPICS, DELIVERY_TOPIC, NOTIFIER_DELIVERY_GROUP, dlq_topic

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    headers: dict[str, str]
    value: bytes


async def read_dead_letters(
    bootstrap_servers: str, topic: str, *, limit: int, read_seconds: float = 5.0
) -> list[DeadLetter]:
    """The first ``limit`` messages of ``<topic>.dlq`` (oldest first), read without a group."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(bootstrap_servers, [dlq_topic(topic)])
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[DeadLetter] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + read_seconds
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining and len(out) < limit and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=limit)
            for records in batch.values():
                for record in records:
                    out.append(
                        DeadLetter(
                            partition=record.partition,
                            offset=record.offset,
                            timestamp_ms=record.timestamp,
                            key=record.key.decode(errors="replace") if record.key else None,
                            headers={k: v.decode(errors="replace") for k, v in record.headers},
                            value=record.value or b"",
                        )
                    )
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        out.sort(key=lambda d: (d.timestamp_ms, d.partition, d.offset))
        return out[:limit]
    finally:
        await consumer.stop()


async def replay_dead_letters(
    broker: KafkaBroker,
    letters: Sequence[DeadLetter],
    *,
    topic: str,
) -> int:
    """Publish dead letters back to their original topic (consumers are idempotent); truncated
    copies of messages too large to keep whole are never replayed."""
    count = 0
    for letter in letters:
        if letter.headers.get("truncated") == "true":
            log.warning("not replaying %s:%s: a truncated copy", letter.partition, letter.offset)
            continue
        target = letter.headers.get("original_topic", topic)
        if target not in ALL_TOPICS:
            log.warning("not replaying to unknown topic %r", target)
            continue
        await broker.publish(
            letter.value,
            target,
            key=letter.key.encode() if letter.key is not None else None,
            headers={"replayed_from": dlq_topic(topic), "replayed_offset": str(letter.offset)},
        )
        count += 1
    return count


class Operations:
    def __init__(
        self,
        *,
        runtime: ServiceRuntime,
        repository: NotifierRepository,
        jobs: JobQueue,
        deliveries: Deliveries,
        settings: Settings,
    ) -> None:
        self._runtime = runtime
        self._repo = repository
        self._jobs = jobs
        self._deliveries = deliveries
        self._settings = settings

    async def start_bulletin(self, *, subject: str, body_markdown: str) -> tuple[str, int]:
        """Store the bulletin, then queue one delivery per opted-in active subscriber.

        The bulletin is stored as ``queuing`` first and marked ``queued`` once every job is on
        Kafka: a crash in between leaves it ``queuing``, and the sweeper queues it again (the
        Message-ID claim keeps anyone who already has it from getting it twice)."""
        now = self._runtime.clock.now()
        bulletin_id = str(uuid4())
        await self._repo.save_bulletin(
            {
                "_id": bulletin_id,
                "subject": subject,
                "body_markdown": body_markdown,
                "created_at": now,
                "status": "queuing",
            }
        )
        return bulletin_id, await self._queue_bulletin(bulletin_id)

    async def _queue_bulletin(self, bulletin_id: str) -> int:
        now = self._runtime.clock.now()
        readers = [str(doc["_id"]) async for doc in self._repo.career_info_recipients()]
        jobs = [
            DeliveryJob(
                kind="bulletin",
                subscriber_id=chunk[0],
                subscriber_ids=tuple(chunk) if len(chunk) > 1 else (),
                bulletin_id=bulletin_id,
                created_at=now,
            )
            for chunk in chunks(readers, self._settings.delivery_batch_size)
        ]
        await self._jobs.put(jobs)
        await self._repo.mark_bulletin_queued(bulletin_id, recipients=len(readers), at=now)
        log.info("bulletin %s queued for %d subscribers", bulletin_id, len(readers))
        return len(readers)

    async def sweep(self, *, limit: int | None = None) -> int:
        """Deliver, here and now, what was left pending too long: a pending ledger row (a digest
        switched to immediate, a welcome reader's pair, a send held back or cut short by an
        outage), a job stuck on the partition of a replica that died (until the group hands the
        partition over), a welcome or link email not yet sent, a bulletin whose queuing was cut
        short. The Message-ID claim keeps this from ever racing a job into a second send."""
        limit = limit or self._settings.delivery_batch_size
        now = self._runtime.clock.now()
        before = now - timedelta(seconds=self._settings.sweep_stale_seconds)
        for bulletin_id in [b async for b in self._repo.unqueued_bulletins(created_before=before)]:
            log.warning("bulletin %s was not fully queued; queuing it again", bulletin_id)
            await self._queue_bulletin(bulletin_id)
        rows = [row async for row in self._repo.stale_immediate(before=before, limit=limit)]
        welcomes = [
            str(doc["_id"]) async for doc in self._repo.pending_welcomes(requested_before=before)
        ]
        links = [
            str(doc["_id"])
            async for doc in self._repo.pending_link_requests(requested_before=before)
        ]
        pairs = [
            (str(r["subscriber_id"]), str(r["opening_id"])) for r in rows if r.get("subscriber_id")
        ]
        handled = 0
        try:
            # One batch each: the same bulk reads, claims and settlement as the consumers'.
            for outcomes in (
                await self._deliveries.immediate(pairs),
                await self._deliveries.welcome(welcomes[:limit]),
                await self._deliveries.link(links[:limit]),
            ):
                handled += sum(1 for outcome in outcomes if outcome != "skipped")
        except TransientError as outage:
            # The claim went back uncounted; the rest waits for the next sweep.
            log.warning("sweep stopped by an outage, will run again: %s", outage)
        if handled:
            metrics.SWEPT.inc(handled)
            log.info("sweeper delivered %d left-over emails", handled)
        return handled


async def sample_delivery_lag(
    bootstrap_servers: str, *, group_id: str = NOTIFIER_DELIVERY_GROUP, topic: str = DELIVERY_TOPIC
) -> int:
    """Messages on the delivery topic that ``group_id`` has not committed yet (every partition,
    whichever process holds it: the figure the notifier scales on)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        committed: dict[Any, Any] = await admin.list_consumer_group_offsets(group_id)
        partitions = await topic_partitions(bootstrap_servers, [topic])
        ends = await consumer.end_offsets(partitions) if partitions else {}
        lag = 0
        for tp, end in ends.items():
            meta = committed.get(tp)
            position = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag += max(0, end - position)
        metrics.CONSUMER_LAG.labels(group_id, topic).set(lag)
        return lag
    finally:
        await consumer.stop()
        await admin.close()
