"""The gauges every service samples on a timer, against a real broker and database:
``hwcollab_consumer_lag`` (messages a group has not committed yet, per partition, reported by the
process that holds the partition) and the outbox backlog (how many events wait, and how long the
oldest has waited)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faststream import AckPolicy
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient

from hwcollab_common.clock import FixedClock
from hwcollab_common.kafka import ConsumerLag, create_broker
from hwcollab_common.kafka_admin import ensure_topics
from hwcollab_common.outbox import OUTBOX_COLLECTION, sample_backlog
from hwcollab_notifier.operations import sample_delivery_lag
from hwcollab_testing.kafka import topic_ends
from hwcollab_testing.waiting import eventually

pytestmark = pytest.mark.integration


async def test_lag_counts_what_the_group_has_not_committed(kafka_bootstrap: str) -> None:
    run = uuid.uuid4().hex[:8]
    topic, group = f"test.lag.{run}", f"test-lag-{run}"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    broker = create_broker(kafka_bootstrap, client_id=f"test-lag-{run}")
    handled: list[bytes] = []
    release = asyncio.Event()

    @broker.subscriber(
        topic, group_id=group, auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR
    )
    async def handle(body: bytes) -> None:
        if body != b"first":
            await release.wait()  # stuck: the offset stays uncommitted
        handled.append(body)

    lag = ConsumerLag(broker)
    labels = {"group": group, "topic": topic, "partition": "0"}
    await broker.start()
    try:
        await broker.publish(b"first", topic)

        async def first_committed() -> bool:
            return handled == [b"first"] and await lag.sample() == 0

        await eventually(first_committed, timeout=30, what="first message consumed")
        for number in range(5):
            await broker.publish(f"later {number}".encode(), topic)

        async def five_behind() -> bool:
            return await lag.sample() == 5

        await eventually(five_behind, timeout=30, what="lag of the stuck group")
        assert REGISTRY.get_sample_value("hwcollab_consumer_lag", labels) == 5

        release.set()

        async def caught_up() -> bool:
            return len(handled) == 6 and await lag.sample() == 0

        await eventually(caught_up, timeout=30, what="lag back to zero")
        assert REGISTRY.get_sample_value("hwcollab_consumer_lag", labels) == 0
    finally:
        release.set()
        await broker.stop()


async def test_delivery_lag_is_measured_per_group(kafka_bootstrap: str) -> None:
    """Two groups on one topic, one committed before five messages and one after: each has its
    own lag, and a group that never committed is behind by everything on the topic."""
    run = uuid.uuid4().hex[:8]
    topic = f"test.delivery-lag.{run}"
    behind, current, new = (f"test-delivery-lag-{name}-{run}" for name in ("a", "b", "c"))
    await ensure_topics(kafka_bootstrap, [topic], partitions=2)
    await topic_ends(kafka_bootstrap, [topic], group_id=behind)
    broker = create_broker(kafka_bootstrap, client_id=f"test-delivery-lag-{run}")
    await broker.start()
    try:
        for number in range(5):
            await broker.publish(f"job {number}".encode(), topic, key=str(number).encode())
    finally:
        await broker.stop()
    await topic_ends(kafka_bootstrap, [topic], group_id=current)

    lags = {
        group: await sample_delivery_lag(kafka_bootstrap, group_id=group, topic=topic)
        for group in (behind, current, new)
    }

    assert lags == {behind: 5, current: 0, new: 5}
    for group, lag in lags.items():
        sample = REGISTRY.get_sample_value(
            "hwcollab_notifier_consumer_lag", {"group": group, "topic": topic}
        )
        assert sample == lag


async def test_outbox_backlog_counts_pending_events_and_ages_the_oldest(mongo_url: str) -> None:
    now = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    database = mongo[f"test_backlog_{uuid.uuid4().hex[:8]}"]
    try:
        assert await sample_backlog(database, clock=FixedClock(now)) == 0
        assert REGISTRY.get_sample_value("hwcollab_outbox_oldest_pending_seconds") == 0
        await database[OUTBOX_COLLECTION].insert_many(
            [
                {"_id": "a", "status": "sent", "created_at": now - timedelta(hours=2)},
                {"_id": "b", "status": "pending", "created_at": now - timedelta(seconds=90)},
                {"_id": "c", "status": "pending", "created_at": now - timedelta(seconds=5)},
            ]
        )

        assert await sample_backlog(database, clock=FixedClock(now)) == 2
        assert REGISTRY.get_sample_value("hwcollab_outbox_pending") == 2
        assert REGISTRY.get_sample_value("hwcollab_outbox_oldest_pending_seconds") == 90
    finally:
        await mongo.drop_database(database.name)
        await mongo.close()
