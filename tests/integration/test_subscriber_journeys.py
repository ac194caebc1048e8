"""The subscriber service in-process against real Kafka and MongoDB: each journey checks the events
that reach ``hwcollab.subscriber.v1`` (type, key, payload) and what is stored."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from asgi_lifespan import LifespanManager
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from hwcollab_common.tokens import Purpose
from hwcollab_schemas import Event, EventParseError, parse_event
from hwcollab_schemas.events import (
    NotificationFailed,
    NotificationFailedPayload,
    SubscriberConfirmationRequested,
    SubscriberDeleted,
    SubscriberManageLinkRequested,
    SubscriberRegistered,
    SubscriberUnsubscribed,
    SubscriberUpdated,
)
from hwcollab_schemas.topics import NOTIFICATION_TOPIC, SUBSCRIBER_TOPIC
from hwcollab_subscriber.app import create_app
from hwcollab_subscriber.handlers import Links
from hwcollab_subscriber.settings import Settings
from hwcollab_testing.waiting import eventually

pytestmark = pytest.mark.integration

PUBLIC_URL = "http://subscriber.test"
Document = dict[str, Any]
E = TypeVar("E", bound=Event)


class TopicReader:
    """Everything published on the subscriber topic since the module started, as typed events."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self.records: list[tuple[str, Event]] = []

    async def run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                for message in messages:
                    try:  # the topic is shared: other tests put poison messages on it too
                        event = parse_event(message.value or b"", topic=SUBSCRIBER_TOPIC)
                    except EventParseError:
                        continue
                    assert message.key is not None
                    self.records.append((message.key.decode(), event))

    def of(self, kind: type[E], *, key: str | None = None) -> list[E]:
        return [
            event
            for event_key, event in self.records
            if isinstance(event, kind) and (key is None or event_key == key)
        ]

    async def wait_for(
        self, kind: type[E], *, key: str | None = None, where: Callable[[Any], bool] = bool
    ) -> E:
        found: list[E] = []

        async def seen() -> bool:
            found[:] = [e for e in self.of(kind, key=key) if where(e.payload)]
            return bool(found)

        event_type = kind.model_fields["event_type"].default
        await eventually(seen, timeout=45, what=f"{event_type} on the subscriber topic")
        (event,) = found
        return event

    def key_of(self, event: Event) -> str:
        return next(key for key, seen in self.records if seen.event_id == event.event_id)


class Subscriber:
    """The service under test, a client of it, its database and the topic reader."""

    def __init__(
        self, client: httpx.AsyncClient, db: AsyncDatabase[Document], reader: TopicReader, app: Any
    ) -> None:
        self.client = client
        self.db = db
        self.reader = reader
        self.links: Links = app.state.links

    def token(self, purpose: Purpose, subscriber_id: str) -> str:
        return self.links.token(purpose, subscriber_id)

    async def sign_up(self, address: str, **changes: Any) -> str:
        """Sign up, read the confirmation request from the topic; the subscriber id."""
        body = {
            "email": address,
            "first_name": "Jordan",
            "roles": ["care_coordination", "rn_case_manager"],
            "settings": ["medical"],
            "credentials": ["rn", "ccm"],
            "zip": "01608",
            "radius_miles": 30,
            "frequency": "daily",
            "digest_hour": 7,
            **changes,
        }
        answer = await self.client.post("/api/subscribers", json=body)
        assert answer.status_code == 202, answer.text
        event = await self.reader.wait_for(
            SubscriberConfirmationRequested,
            where=lambda p: p.email.casefold() == address.casefold(),
        )
        return str(event.payload.subscriber_id)

    async def subscribed(self, address: str) -> str:
        subscriber_id = await self.sign_up(address)
        answer = await self.client.post(
            "/api/subscribers/confirm",
            json={"token": self.token(Purpose.CONFIRM, subscriber_id)},
        )
        assert answer.json() == {"subscriber_id": subscriber_id, "status": "active"}
        await self.reader.wait_for(SubscriberRegistered, key=subscriber_id)
        return subscriber_id

    async def outbox(self, subscriber_id: str, event_type: str | None = None) -> list[Document]:
        query: Document = {"key": subscriber_id}
        if event_type:
            query["event_type"] = event_type
        return await self.db["outbox"].find(query).to_list()

    async def relayed(self, subscriber_id: str) -> None:
        async def nothing_pending() -> bool:
            return all(e["status"] == "sent" for e in await self.outbox(subscriber_id))

        await eventually(nothing_pending, timeout=45, what=f"outbox of {subscriber_id} relayed")


@pytest.fixture(scope="module")
async def service(kafka_bootstrap: str, mongo_url: str) -> AsyncIterator[Subscriber]:
    database = f"test_subscriber_{uuid.uuid4().hex[:10]}"
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        mongodb_url=mongo_url,
        mongodb_database=database,
        subscriber_public_url=PUBLIC_URL,
        outbox_poll_seconds=0.1,
        signup_rate_limit="10000/minute",
        signup_address_rate_limit="10000/minute",
    )
    consumer = AIOKafkaConsumer(
        SUBSCRIBER_TOPIC,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"test-subscriber-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    reader = TopicReader(consumer)
    reading = asyncio.create_task(reader.run())
    app = create_app(settings)
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(mongo_url, tz_aware=True)
    try:
        async with LifespanManager(app, startup_timeout=90, shutdown_timeout=60):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
                yield Subscriber(client, mongo[database], reader, app)
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        await consumer.stop()
        await mongo.close()


def address() -> str:
    return f"Jordan.{uuid.uuid4().hex[:8]}@Example.org"


async def test_sign_up_confirm_and_sign_up_again(service: Subscriber) -> None:
    email = address()
    subscriber_id = await service.sign_up(email)
    (requested,) = service.reader.of(SubscriberConfirmationRequested, key=subscriber_id)
    assert requested.payload.email == email.replace("Example.org", "example.org")
    assert requested.payload.first_name == "Jordan"
    assert requested.payload.confirm_url.startswith(f"{PUBLIC_URL}/confirm?token=")
    token = httpx.URL(requested.payload.confirm_url).params["token"]

    page = await service.client.get("/confirm", params={"token": token})
    assert page.status_code == 200
    assert service.reader.of(SubscriberRegistered, key=subscriber_id) == []
    confirmed = await service.client.post("/confirm", params={"token": token})
    assert "Thanks, Jordan!" in confirmed.text

    registered = await service.reader.wait_for(SubscriberRegistered, key=subscriber_id)
    profile = registered.payload
    assert registered.producer == "subscriber"
    assert (profile.subscriber_id, profile.version, profile.status) == (subscriber_id, 2, "active")
    assert profile.roles == ("care_coordination", "rn_case_manager")
    assert profile.credentials == ("rn", "ccm")
    assert (profile.zip, profile.city, profile.state) == ("01608", "Worcester", "MA")
    assert profile.timezone == "America/New_York"
    assert abs(profile.lat - 42.26) < 0.1
    assert abs(profile.lon + 71.80) < 0.1
    assert (profile.frequency, profile.digest_hour, profile.digest_weekday) == ("daily", 7, "mon")

    again = await service.client.post(
        "/api/subscribers",
        json={"email": email.upper(), "roles": ["direct_support"], "zip": "10001"},
    )
    assert again.status_code == 202
    reminder = await service.reader.wait_for(SubscriberManageLinkRequested, key=subscriber_id)
    assert reminder.payload.reason == "already_subscribed"
    assert reminder.payload.manage_url.startswith(f"{PUBLIC_URL}/preferences?token=")
    assert await service.db["subscribers"].count_documents({"email_key": email.casefold()}) == 1


async def test_preferences_pause_resume_unsubscribe_and_erase(service: Subscriber) -> None:
    email = address()
    subscriber_id = await service.subscribed(email)
    manage = service.token(Purpose.MANAGE, subscriber_id)

    changed = await service.client.put(
        "/api/preferences",
        params={"token": manage},
        json={"roles": ["care_management"], "zip": "06103", "radius_miles": 80},
    )
    assert changed.status_code == 200, changed.text
    update = await service.reader.wait_for(
        SubscriberUpdated, key=subscriber_id, where=lambda p: p.version == 3
    )
    assert (update.payload.zip, update.payload.city, update.payload.radius_miles) == (
        "06103",
        "Hartford",
        80,
    )

    assert (await service.client.post("/pause", params={"token": manage})).status_code == 200
    paused = await service.reader.wait_for(
        SubscriberUpdated, key=subscriber_id, where=lambda p: p.version == 4
    )
    assert paused.payload.status == "paused"
    assert (await service.client.post("/resume", params={"token": manage})).status_code == 200
    resumed = await service.reader.wait_for(
        SubscriberUpdated, key=subscriber_id, where=lambda p: p.version == 5
    )
    assert resumed.payload.status == "active"

    unsubscribe = service.token(Purpose.UNSUBSCRIBE, subscriber_id)
    for _ in range(2):  # RFC 8058 one-click, repeated by an impatient mail client
        answer = await service.client.post(
            "/unsubscribe", params={"token": unsubscribe}, data={"List-Unsubscribe": "One-Click"}
        )
        assert answer.status_code == 200
    gone = await service.reader.wait_for(SubscriberUnsubscribed, key=subscriber_id)
    assert gone.payload.model_dump() == {
        "subscriber_id": subscriber_id,
        "version": 6,
        "reason": "one_click",
    }
    assert len(await service.outbox(subscriber_id, "subscriber.unsubscribed")) == 1

    await service.relayed(subscriber_id)
    erased = await service.client.delete("/api/subscribers", params={"token": manage})
    assert erased.status_code == 204
    deleted = await service.reader.wait_for(SubscriberDeleted, key=subscriber_id)
    assert deleted.payload.model_dump() == {"subscriber_id": subscriber_id, "version": 7}
    assert await service.db["subscribers"].find_one({"_id": subscriber_id}) is None
    stored = b"".join(entry["value"] for entry in await service.outbox(subscriber_id))
    assert email.split("@")[0].encode() not in stored
    assert b"Jordan" not in stored
    after = await service.client.get("/api/preferences", params={"token": manage})
    assert after.status_code == 404

    # The address may sign up again, as a new subscriber.
    again = await service.client.post(
        "/api/subscribers", json={"email": email, "roles": ["care_manager"], "zip": "01608"}
    )
    assert again.status_code == 202
    fresh = await service.reader.wait_for(
        SubscriberConfirmationRequested,
        where=lambda p: p.email.casefold() == email.casefold() and p.subscriber_id != subscriber_id,
    )
    assert service.reader.key_of(fresh) == fresh.payload.subscriber_id


async def test_permanent_bounce_marks_the_subscriber_bounced(
    service: Subscriber, kafka_bootstrap: str
) -> None:
    subscriber_id = await service.subscribed(address())

    def failure(*, permanent: bool) -> NotificationFailed:
        now = datetime.now(UTC)
        return NotificationFailed.create(
            NotificationFailedPayload(
                message_id=f"<{uuid.uuid4().hex}@hwcollab.example>",
                subscriber_id=subscriber_id,
                kind="immediate",
                opening_ids=("o1",),
                permanent=permanent,
                reason="550 5.1.1 mailbox unavailable",
                failed_at=now,
            ),
            producer="notifier",
            occurred_at=now,
        )

    bounce, later = failure(permanent=True), failure(permanent=True)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        key = subscriber_id.encode()
        for event in (failure(permanent=False), bounce, bounce, later):  # with a redelivery
            await producer.send_and_wait(NOTIFICATION_TOPIC, event.to_bytes(), key=key)
    finally:
        await producer.stop()

    update = await service.reader.wait_for(SubscriberUpdated, key=subscriber_id)
    assert (update.payload.status, update.payload.version) == ("bounced", 3)

    async def later_applied() -> bool:
        claim = await service.db["processed_events"].find_one(
            {"_id": f"subscriber:{later.event_id}"}
        )
        return claim is not None

    await eventually(later_applied, timeout=60, what="the later notification applied")
    assert len(await service.outbox(subscriber_id, "subscriber.updated")) == 1
    view = await service.client.get(
        "/api/preferences", params={"token": service.token(Purpose.MANAGE, subscriber_id)}
    )
    assert view.json()["status"] == "bounced"


async def test_fifty_parallel_sign_ups_make_one_subscriber_and_one_confirmation(
    service: Subscriber,
) -> None:
    email = address()
    variants = [email, email.lower(), email.upper()]
    bodies = [
        {"email": variants[i % 3], "roles": ["direct_support_professional"], "zip": "60601"}
        for i in range(50)
    ]
    answers = await asyncio.gather(
        *(service.client.post("/api/subscribers", json=body) for body in bodies)
    )
    assert {answer.status_code for answer in answers} == {202}
    assert len({answer.content for answer in answers}) == 1

    stored = await service.db["subscribers"].find({"email_key": email.casefold()}).to_list()
    assert len(stored) == 1
    subscriber_id = stored[0]["_id"]
    assert len(await service.outbox(subscriber_id, "subscriber.confirmation_requested")) == 1

    # Events of one key are ordered: once the confirmation's successor is on the topic, every
    # confirmation request published before it is too.
    await service.client.post(
        "/api/subscribers/confirm", json={"token": service.token(Purpose.CONFIRM, subscriber_id)}
    )
    await service.reader.wait_for(SubscriberRegistered, key=subscriber_id)
    assert len(service.reader.of(SubscriberConfirmationRequested, key=subscriber_id)) == 1
