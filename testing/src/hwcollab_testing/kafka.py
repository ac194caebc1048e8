"""Kafka helpers for tests that run notifier processes on the shared broker."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from hwcollab_common.kafka_admin import topic_partitions
from hwcollab_schemas.topics import (
    DELIVERY_TOPIC,
    EMPLOYER_TOPIC,
    NOTIFIER_DELIVERY_GROUP,
    NOTIFIER_GROUP,
    OPENING_TOPIC,
    SUBSCRIBER_TOPIC,
)

NOTIFIER_TOPICS = (SUBSCRIBER_TOPIC, EMPLOYER_TOPIC, OPENING_TOPIC)


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
        partitions = await topic_partitions(bootstrap, topics)
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


# FastStream logs each rebalance of a consumer as "Consumer <member> assigned to partitions:
# (TopicPartition(topic='…', partition=N), …)" (INFO); structured fields may follow on the line.
_ASSIGNED = re.compile(
    r"Consumer (\S+) assigned to partitions: \(((?:TopicPartition\([^)]*\)(?:, )?)*)\)"
)
_PARTITION = re.compile(r"TopicPartition\(topic='([^']+)', partition=(\d+)\)")


def held_partitions(log_path: Path, topic: str) -> set[int]:
    """The partitions of ``topic`` that the consumers of one service process hold, as last logged
    by each of its consumers (the service must log at INFO)."""
    text = log_path.read_text(errors="replace")
    members: dict[str, set[int]] = {}
    for member, listed in _ASSIGNED.findall(text):
        found = {int(p) for t, p in _PARTITION.findall(listed) if t == topic}
        if found or member in members:
            members[member] = found
    return {partition for held in members.values() for partition in held}
