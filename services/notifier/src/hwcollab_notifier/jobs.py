"""Putting delivery jobs on the internal topic, keyed by subscriber id."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from faststream.kafka import KafkaBroker

from hwcollab_common.tracing import trace_headers
from hwcollab_schemas.delivery import DeliveryJob
from hwcollab_schemas.topics import DELIVERY_TOPIC


class JobQueue(Protocol):
    async def put(self, jobs: Sequence[DeliveryJob]) -> None: ...


class KafkaJobQueue:
    """Publishes jobs straight to Kafka (not through the outbox), waiting for every
    acknowledgement: the opening event that asked for them is committed only after, so a crash
    before makes it match again. Pending ledger rows (a digest switched to immediate, a send
    held back) are delivered by the sweeper too. Each job carries the trace context of the work
    that queued it (``traceparent`` header)."""

    def __init__(self, broker: KafkaBroker, *, batch: int = 500) -> None:
        self._broker = broker
        self._batch = batch

    async def put(self, jobs: Sequence[DeliveryJob]) -> None:
        for start in range(0, len(jobs), self._batch):
            futures: list[asyncio.Future[object]] = [
                await self._broker.publish(
                    job.to_bytes(),
                    DELIVERY_TOPIC,
                    key=job.key,
                    headers=trace_headers(),
                    no_confirm=True,
                )
                for job in jobs[start : start + self._batch]
            ]
            await asyncio.gather(*futures)
