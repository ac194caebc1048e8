"""Kafka helpers for tests that run notifier processes on the shared broker."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]

from hwcollab_schemas.topics import (
    DELIVERY_TOPIC,
    EMPLOYER_TOPIC,
    NOTIFIER_DELIVERY_GROUP,
    NOTIFIER_GROUP,
    OPENING_TOPIC,
    SUBSCRIBER_TOPIC,
)


async def fresh_notifier_groups(bootstrap: str, *, label: str = "test") -> str:
    """A consumer-group suffix whose groups start at the end of every topic: the notifier under
    test neither replays other tests' history nor meets members a killed process left behind.

    Pass it to the notifier as ``CONSUMER_GROUP_SUFFIX``.
    """
    suffix = f"-{label}-{uuid.uuid4().hex[:10]}"
    for group, topics in (
        (NOTIFIER_GROUP + suffix, (SUBSCRIBER_TOPIC, EMPLOYER_TOPIC, OPENING_TOPIC)),
        (NOTIFIER_DELIVERY_GROUP + suffix, (DELIVERY_TOPIC,)),
    ):
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            await consumer.topics()
            partitions = [
                TopicPartition(topic, p)
                for topic in topics
                for p in consumer.partitions_for_topic(topic) or ()
            ]
            consumer.assign(partitions)
            await consumer.commit(await consumer.end_offsets(partitions))
        finally:
            await consumer.stop()
    return suffix
