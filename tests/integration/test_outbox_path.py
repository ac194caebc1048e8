"""The path every event takes: state change and outbox entry in one transaction → relay → Kafka
(key = aggregate id) → an idempotent FastStream consumer that applies it once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer
from pymongo.asynchronous.client_session import AsyncClientSession

from hwcollab_common.consuming import apply_once, subscribe_events
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_common.settings import ServiceSettings
from hwcollab_schemas import Event
from hwcollab_schemas.events import SubscriberDeleted, SubscriberDeletedPayload
from hwcollab_schemas.topics import SUBSCRIBER_TOPIC, dlq_topic
from hwcollab_testing.waiting import eventually

pytestmark = pytest.mark.integration


def settings(kafka_bootstrap: str, mongo_url: str) -> ServiceSettings:
    return ServiceSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        mongodb_url=mongo_url,
        mongodb_database=f"outbox_{uuid.uuid4().hex[:12]}",
        outbox_poll_seconds=0.1,
    )


def deleted(subscriber_id: str) -> SubscriberDeleted:
    return SubscriberDeleted.create(
        SubscriberDeletedPayload(subscriber_id=subscriber_id, version=1),
        producer="test",
        occurred_at=datetime.now(UTC),
    )


@contextlib.asynccontextmanager
async def running(runtime: ServiceRuntime) -> AsyncIterator[ServiceRuntime]:
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


async def read_topic(
    kafka_bootstrap: str, topic: str, *, want: Callable[[bytes | None], bool], timeout: float = 20
) -> list[tuple[bytes | None, bytes, dict[str, bytes]]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[tuple[bytes | None, bytes, dict[str, bytes]]] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not found and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                found.extend(
                    (r.key, r.value or b"", dict(r.headers)) for r in records if want(r.key)
                )
    finally:
        await consumer.stop()
    return found


async def test_event_is_relayed_with_its_key_and_applied_once(
    kafka_bootstrap: str, mongo_url: str
) -> None:
    producer = ServiceRuntime(settings(kafka_bootstrap, mongo_url), name="producer")
    consumer = ServiceRuntime(settings(kafka_bootstrap, mongo_url), name="consumer")
    subscriber_id = f"s-{uuid.uuid4()}"
    applied: list[bool] = []

    async def handle(event: Event) -> None:
        if event.key != subscriber_id:
            return  # other tests' events on the shared topic

        async def work(session: AsyncClientSession) -> None:
            await consumer.db.applied.insert_one({"event_id": str(event.event_id)}, session=session)

        applied.append(await apply_once(consumer.mongo, consumer.processed, event, work))

    subscribe_events(
        consumer.broker, SUBSCRIBER_TOPIC, group_id=f"test-{uuid.uuid4().hex}", handle=handle
    )
    event = deleted(subscriber_id)

    async def change(session: AsyncClientSession) -> tuple[str, list[Event]]:
        await producer.db.things.insert_one({"_id": subscriber_id}, session=session)
        return subscriber_id, [event]

    async with running(consumer), running(producer):
        assert await producer.commit(change) == subscriber_id
        assert await producer.db.outbox.count_documents({"_id": str(event.event_id)}) == 1

        async def relayed() -> bool:
            entry = await producer.db.outbox.find_one({"_id": str(event.event_id)})
            return entry is not None and entry["status"] == "sent"

        await eventually(relayed, timeout=30, what="outbox entry relayed")
        await eventually(lambda: applied == [True], timeout=30, what="the event applied")

        # The same event delivered again (a relay that died before marking it sent) is ignored.
        await producer.broker.publish(event.to_bytes(), SUBSCRIBER_TOPIC, key=event.key.encode())
        await eventually(
            lambda: applied == [True, False], timeout=30, what="the redelivery ignored"
        )
        assert await consumer.db.applied.count_documents({}) == 1

    messages = await read_topic(
        kafka_bootstrap, SUBSCRIBER_TOPIC, want=lambda key: key == subscriber_id.encode()
    )
    assert messages, "the event is on the topic"
    key, value, headers = messages[0]
    assert key == subscriber_id.encode()
    assert Event.model_validate_json(value).event_id == event.event_id
    assert headers["event_type"] == b"subscriber.deleted"


async def test_a_rolled_back_change_publishes_nothing(kafka_bootstrap: str, mongo_url: str) -> None:
    producer = ServiceRuntime(settings(kafka_bootstrap, mongo_url), name="producer")
    event = deleted(f"s-{uuid.uuid4()}")

    async def failing_change(session: AsyncClientSession) -> tuple[None, list[Event]]:
        await producer.db.things.insert_one({"_id": "x"}, session=session)
        await producer.db.things.insert_one({"_id": "x"}, session=session)  # duplicate key
        return None, [event]

    async with running(producer):
        with pytest.raises(Exception, match="duplicate key"):
            await producer.commit(failing_change)
        assert await producer.db.outbox.count_documents({}) == 0
        assert await producer.db.things.count_documents({}) == 0


async def test_poison_message_goes_to_the_dlq_and_the_consumer_goes_on(
    kafka_bootstrap: str, mongo_url: str
) -> None:
    consumer = ServiceRuntime(settings(kafka_bootstrap, mongo_url), name="consumer")
    marker = uuid.uuid4().hex
    good = deleted(f"s-{marker}")
    handled: list[str] = []

    async def handle(event: Event) -> None:
        handled.append(event.key)

    subscribe_events(
        consumer.broker, SUBSCRIBER_TOPIC, group_id=f"test-{uuid.uuid4().hex}", handle=handle
    )
    async with running(consumer):
        poison_key = f"poison-{marker}".encode()
        await consumer.broker.publish(b"{not json", SUBSCRIBER_TOPIC, key=poison_key)
        await consumer.broker.publish(good.to_bytes(), SUBSCRIBER_TOPIC, key=good.key.encode())
        await eventually(
            lambda: good.key in handled, timeout=30, what="the good event after the poison"
        )

    letters = await read_topic(
        kafka_bootstrap, dlq_topic(SUBSCRIBER_TOPIC), want=lambda key: key == poison_key
    )
    assert len(letters) == 1
    _key, value, headers = letters[0]
    assert value == b"{not json"
    assert headers["error"].startswith(b"not JSON")
    assert headers["original_topic"] == SUBSCRIBER_TOPIC.encode()
    assert "original_offset" in headers


async def test_a_failing_handler_gets_the_event_again(kafka_bootstrap: str, mongo_url: str) -> None:
    consumer = ServiceRuntime(settings(kafka_bootstrap, mongo_url), name="consumer")
    event = deleted(f"s-{uuid.uuid4()}")
    attempts: list[int] = []

    async def handle(received: Event) -> None:
        if received.event_id != event.event_id:
            return
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise ConnectionError("database briefly unavailable")

    subscribe_events(
        consumer.broker,
        SUBSCRIBER_TOPIC,
        group_id=f"test-{uuid.uuid4().hex}",
        handle=handle,
        retry_base_seconds=0.05,
    )
    async with running(consumer):
        await consumer.broker.publish(event.to_bytes(), SUBSCRIBER_TOPIC, key=event.key.encode())
        await eventually(lambda: attempts == [1, 2, 3], timeout=30, what="three attempts")
