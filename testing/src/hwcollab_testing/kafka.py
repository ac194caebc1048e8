"""Kafka helpers for tests that run notifier processes on the shared broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]

from hwcollab_schemas.topics import (
    DELIVERY_TOPIC,
    EMPLOYER_TOPIC,
    NOTIFIER_DELIVERY_GROUP,
    NOTIFIER_GROUP,
    OPENING_TOPIC,
    SUBSCRIBER_TOPIC,
)

NOTIFIER_TOPICS = (SUBSCRIBER_TOPIC, EMPLOYER_TOPIC, OPENING_TOPIC)


async def partitions_of(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of ``topics`` that the broker knows, from a started ``consumer``."""
    await consumer.topics()  # fetches the metadata that partitions_for_topic reads
    return [
        TopicPartition(topic, p)
        for topic in topics
        for p in consumer.partitions_for_topic(topic) or ()
    ]


async def topic_ends(
    bootstrap: str, topics: Sequence[str], *, group_id: str | None = None
) -> dict[TopicPartition, int]:
    """The end offsets of ``topics``; with ``group_id``, also committed as that group's position,
    so a service in a fresh group starts at the end rather than replaying other tests' history."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, topics)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        if group_id is not None:
            consumer.assign(partitions)
            await consumer.commit(ends)
        return ends
    finally:
        await consumer.stop()


async def fresh_notifier_groups(bootstrap: str, *, label: str = "test") -> str:
    """A consumer-group suffix whose groups start at the end of every topic: the notifier under
    test neither replays other tests' history nor meets members a killed process left behind.

    Pass it to the notifier as ``CONSUMER_GROUP_SUFFIX``.
    """
    suffix = f"-{label}-{uuid.uuid4().hex[:10]}"
    await topic_ends(bootstrap, NOTIFIER_TOPICS, group_id=NOTIFIER_GROUP + suffix)
    await topic_ends(bootstrap, (DELIVERY_TOPIC,), group_id=NOTIFIER_DELIVERY_GROUP + suffix)
    return suffix
