"""The one Kafka publisher, the broker factory every service uses, and consumer lag."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from typing import Any

from faststream.kafka import KafkaBroker
from prometheus_client import Gauge

log = logging.getLogger(__name__)

CONSUMER_LAG = Gauge(
    "hwcollab_consumer_lag",
    "Messages on a partition that its consumer group has not committed yet "
    "(high watermark minus committed offset), reported by the process the partition is assigned to",
    ["group", "topic", "partition"],
)


def create_broker(bootstrap_servers: str, *, client_id: str) -> KafkaBroker:
    """A FastStream broker whose producer is idempotent and waits for all in-sync replicas."""
    return KafkaBroker(
        bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        graceful_timeout=15.0,
        allow_auto_create_topics=False,
        # per-message "Received/Processed" lines only at DEBUG: they cost time on hot paths
        log_level=logging.DEBUG,
        # a plain logger that propagates, so the broker's lines get the service's log format
        logger=logging.getLogger("faststream.kafka.broker"),
    )


class KafkaEventPublisher:
    """Sends serialized events through a broker's producer (see :class:`EventPublisher`)."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def send(
        self, *, topic: str, key: str, value: bytes, headers: dict[str, str]
    ) -> Awaitable[object]:
        future: asyncio.Future[object] = await self._broker.publish(
            value, topic, key=key.encode(), headers=headers, no_confirm=True
        )
        return future


def _consumers_of(subscriber: Any) -> Iterable[Any]:
    """The aiokafka consumers behind a FastStream subscriber (several with ``max_workers``)."""
    consumers = getattr(subscriber, "consumer_subgroup", None) or [
        getattr(subscriber, "consumer", None)
    ]
    return [consumer for consumer in consumers if consumer is not None]


class ConsumerLag:
    """Refreshes ``hwcollab_consumer_lag`` for every partition assigned to this process's consumers.

    Reads through the consumers themselves (end offsets and the group's committed offsets), so it
    needs no connection of its own; series of partitions that moved to another process are removed.
    """

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker
        self._reported: set[tuple[str, str, str]] = set()

    async def sample(self) -> int:
        """Refresh the gauge; returns the lag summed over this process's partitions."""
        reported: set[tuple[str, str, str]] = set()
        total = 0
        for subscriber in self._broker.subscribers:
            group = getattr(subscriber, "group_id", None)
            if not group:
                continue
            for consumer in _consumers_of(subscriber):
                assigned = sorted(consumer.assignment(), key=lambda tp: (tp.topic, tp.partition))
                if not assigned:
                    continue
                ends: dict[Any, int] = await consumer.end_offsets(assigned)
                for tp in assigned:
                    committed = await consumer.committed(tp)
                    if committed is None:
                        committed = await consumer.position(tp)
                    lag = max(0, ends.get(tp, 0) - committed)
                    labels = (group, tp.topic, str(tp.partition))
                    CONSUMER_LAG.labels(*labels).set(lag)
                    reported.add(labels)
                    total += lag
        for labels in self._reported - reported:
            CONSUMER_LAG.remove(*labels)
        self._reported = reported
        return total
