"""The notifier in-process against real Kafka, MongoDB and an SMTP sink: events in, emails out,
exactly once; digests by the admin endpoint; bounces; the DLQ."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from asgi_lifespan import LifespanManager
from pymongo.asynchronous.database import AsyncDatabase

from hwcollab_common.kafka_admin import topic_partitions
from hwcollab_notifier.app import create_app
from hwcollab_notifier.settings import Settings
from hwcollab_schemas import Event
from hwcollab_schemas.events import (
    OpeningClosed,
    OpeningClosedPayload,
    OpeningDetails,
    OpeningPosted,
    SubscriberDeleted,
    SubscriberDeletedPayload,
    SubscriberProfile,
    SubscriberRegistered,
    SubscriberUnsubscribed,
    SubscriberUnsubscribedPayload,
    SubscriberUpdated,
)
from hwcollab_schemas.topics import (
    NOTIFICATION_TOPIC,
    OPENING_TOPIC,
)
from hwcollab_testing.kafka import fresh_notifier_groups
from hwcollab_testing.plugin import SmtpSink
from hwcollab_testing.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ADMIN = {"Authorization": "Bearer test-admin-token-for-the-notifier"}
# Each test works around its own point on the map so that the module's tests share one app.
PLACES = itertools.count()


def received(sink: SmtpSink) -> list[EmailMessage]:
    return [m.message for m in sink.snapshot()]


def to(sink: SmtpSink, address: str) -> list[EmailMessage]:
    return [m.message for m in sink.messages_to(address)]


class World:
    """One running notifier plus a producer and helpers to speak to it."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        producer: AIOKafkaProducer,
        sink: SmtpSink,
        database: AsyncDatabase[dict[str, Any]],
    ) -> None:
        self.http = http
        self.producer = producer
        self.sink = sink
        self.database = database  # read only to wait for the notifier, never to assert on it
        self.run = uuid.uuid4().hex[:8]

    async def publish(self, event: Event) -> None:
        await self.producer.send_and_wait(event.topic, event.to_bytes(), key=event.key.encode())

    def place(self) -> tuple[float, float]:
        i = next(PLACES)
        return 25.0 + 3.0 * (i % 8), -120.0 + 4.0 * (i // 8)

    def sid(self, name: str) -> str:
        return f"{name}-{self.run}"

    def address(self, name: str) -> str:
        return f"{self.sid(name)}@example.org"

    def profile(self, name: str, place: tuple[float, float], **changes: Any) -> SubscriberProfile:
        fields: dict[str, Any] = {
            "subscriber_id": self.sid(name),
            "version": 1,
            "email": self.address(name),
            "first_name": "Ana",
            "roles": ("care_coordination",),
            "zip": "01608",
            "lat": place[0],
            "lon": place[1],
            "radius_miles": 10,
            "remote_ok": False,
            "timezone": "America/New_York",
            "confirmed_at": datetime.now(UTC),
        }
        return SubscriberProfile(**(fields | changes))

    def opening(self, name: str, place: tuple[float, float], **changes: Any) -> OpeningDetails:
        now = datetime.now(UTC)
        fields: dict[str, Any] = {
            "opening_id": f"{name}-{self.run}",
            "employer_id": f"employer-{self.run}",
            "version": 1,
            "organization_name": "Acme Care",
            "employer_approved": True,
            "title": f"Care Coordinator ({name})",
            "role": "care_coordinator",
            "setting": "medical",
            "employment_type": "full_time",
            "zip": "01609",
            "lat": place[0] + 0.01,
            "lon": place[1],
            "apply_url": "https://acme.example/apply",
            "posted_at": now,
            "expires_at": now + timedelta(days=30),
        }
        return OpeningDetails(**(fields | changes))

    async def register(self, profile: SubscriberProfile) -> None:
        """Register and wait for the welcome email, proof that the notifier knows them."""
        await self.publish(
            SubscriberRegistered.create(profile, producer="test", occurred_at=datetime.now(UTC))
        )
        await eventually(
            lambda: len(to(self.sink, profile.email)) >= 1,
            timeout=45,
            what=f"welcome email to {profile.email}",
        )


@pytest.fixture(scope="module")
async def world(kafka_bootstrap: str, mongo_url: str, smtp_sink: SmtpSink) -> AsyncIterator[World]:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        mongodb_url=mongo_url,
        mongodb_database=f"test_notifier_{uuid.uuid4().hex[:12]}",
        smtp_host=smtp_sink.host,
        smtp_port=smtp_sink.port,
        admin_token="test-admin-token-for-the-notifier",
        outbox_poll_seconds=0.1,
        index_refresh_seconds=1.0,
        digest_interval_seconds=3600,
        lag_sample_seconds=1.0,
        smtp_max_attempts=2,
        smtp_backoff_base_seconds=0.05,
        consumer_group_suffix=await fresh_notifier_groups(kafka_bootstrap),
    )
    app = create_app(settings)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as http:

                async def ready() -> bool:
                    return (await http.get("/readyz")).status_code == 200

                await eventually(ready, timeout=45, what="notifier ready")
                yield World(http, producer, smtp_sink, app.state.runtime.db)
    finally:
        await producer.stop()


async def test_an_opening_reaches_exactly_the_right_people_once(world: World) -> None:
    here, far = world.place(), world.place()
    cases: list[tuple[str, tuple[float, float], dict[str, Any]]] = [
        ("near", here, {}),
        ("far", far, {}),
        ("other-role", here, {"roles": ("direct_support",)}),
        ("daily", here, {"frequency": "daily"}),
        ("unsubscribed", here, {}),
        ("deleted", here, {}),
        ("bounced", here, {}),
    ]
    for name, place, extra in cases:
        await world.register(world.profile(name, place, **extra))
    now = datetime.now(UTC)
    await world.publish(
        SubscriberUnsubscribed.create(
            SubscriberUnsubscribedPayload(subscriber_id=world.sid("unsubscribed"), version=2),
            producer="test",
            occurred_at=now,
        )
    )
    await world.publish(
        SubscriberDeleted.create(
            SubscriberDeletedPayload(subscriber_id=world.sid("deleted"), version=2),
            producer="test",
            occurred_at=now,
        )
    )
    await world.publish(
        SubscriberUpdated.create(
            world.profile("bounced", here, version=2, status="bounced"),
            producer="test",
            occurred_at=now,
        )
    )
    # the last of those, on its own partition, is applied before a marker on the same key
    await world.register(world.profile("marker", far))

    before = len(received(world.sink))
    posted = OpeningPosted.create(world.opening("o1", here), producer="test", occurred_at=now)
    await world.publish(posted)
    await eventually(
        lambda: any(
            m["Subject"].startswith("New opening") for m in to(world.sink, world.address("near"))
        ),
        timeout=45,
        what="opening email to the nearby subscriber",
    )
    await world.publish(posted)  # redelivered
    # a second opening far away proves the pipeline has moved past the redelivery
    await world.publish(
        OpeningPosted.create(world.opening("o2", far), producer="test", occurred_at=now)
    )
    await eventually(
        lambda: len(to(world.sink, world.address("far"))) >= 2,
        timeout=45,
        what="opening email to the faraway subscriber",
    )
    new = received(world.sink)[before:]
    o1 = [
        m
        for m in new
        if world.opening("o1", here).opening_id in (m["X-HWcollab-Opening-Ids"] or "")
    ]
    assert [m["To"] for m in o1] == [world.address("near")]
    assert o1[0]["Message-ID"]
    assert o1[0]["List-Unsubscribe"]


async def test_a_digest_leaves_out_openings_closed_before_it_goes(world: World) -> None:
    here = world.place()
    await world.register(world.profile("digest", here, frequency="daily"))
    now = datetime.now(UTC)
    kept = world.opening("kept", here)
    closed = world.opening("closed", here)
    for opening in (kept, closed):
        await world.publish(OpeningPosted.create(opening, producer="test", occurred_at=now))
    await world.publish(
        OpeningClosed.create(
            OpeningClosedPayload(
                opening_id=closed.opening_id,
                employer_id=closed.employer_id,
                version=2,
                closed_at=now,
            ),
            producer="test",
            occurred_at=now,
        )
    )
    tomorrow = (now + timedelta(days=1, hours=1)).isoformat()

    async def digest_sent() -> bool:
        response = await world.http.post(
            "/api/admin/digests/run", params={"as_of": tomorrow}, headers=ADMIN
        )
        assert response.status_code == 200
        return len(to(world.sink, world.address("digest"))) >= 2

    # the openings are on different partitions: wait until the notifier has seen all three events
    async def applied() -> bool:
        kept_seen = await world.database["openings"].find_one(
            {"_id": kept.opening_id, "announced_version": 1}
        )
        closed_seen = await world.database["openings"].find_one(
            {"_id": closed.opening_id, "status": "closed"}
        )
        return kept_seen is not None and closed_seen is not None

    await eventually(applied, timeout=45, what="all three opening events applied")
    await eventually(digest_sent, timeout=45, what="digest email")
    digest = to(world.sink, world.address("digest"))[-1]
    assert digest["X-HWcollab-Opening-Ids"] == kept.opening_id
    again = await world.http.post(
        "/api/admin/digests/run", params={"as_of": tomorrow}, headers=ADMIN
    )
    assert again.json()["sent"] == 0


async def test_admin_endpoints_want_the_admin_token(world: World) -> None:
    assert (await world.http.post("/api/admin/digests/run")).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await world.http.get("/api/admin/suppressions", headers=wrong)).status_code == 401


async def test_a_permanent_bounce_suppresses_and_publishes_a_failure(world: World) -> None:
    here = world.place()
    address = world.address("bouncer")
    bootstrap = world.producer.client._bootstrap_servers
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(bootstrap, [NOTIFICATION_TOPIC])
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        world.sink.fail_permanently(address)
        await world.publish(
            SubscriberRegistered.create(
                world.profile("bouncer", here), producer="test", occurred_at=datetime.now(UTC)
            )
        )

        async def suppressed() -> bool:
            response = await world.http.get(
                "/api/admin/suppressions", params={"limit": 1000}, headers=ADMIN
            )
            return address in {item["email"] for item in response.json()["items"]}

        await eventually(suppressed, timeout=45, what=f"{address} suppressed")
        failures: list[bytes] = []

        async def failure_published() -> bool:
            batch = await consumer.getmany(timeout_ms=200)
            failures.extend(
                r.value
                for records in batch.values()
                for r in records
                if address.split("@")[0] in r.value.decode()
            )
            return bool(failures)

        await eventually(failure_published, timeout=45, what="notification.failed published")
        assert b'"permanent":true' in failures[0]
    finally:
        await consumer.stop()
    removed = await world.http.delete(f"/api/admin/suppressions/{address}", headers=ADMIN)
    assert removed.status_code == 204


async def test_a_poison_message_goes_to_the_dlq_and_the_consumer_goes_on(world: World) -> None:
    here = world.place()
    await world.register(world.profile("after-poison", here))
    poison = f'{{"event_type": "opening.posted", "poison": "{world.run}"}}'.encode()
    await world.producer.send_and_wait(OPENING_TOPIC, poison, key=b"poison")
    huge = f'{{"poison": "{world.run}-huge", "pad": "'.encode() + b"x" * 300_000 + b'"}'
    await world.producer.send_and_wait(OPENING_TOPIC, huge, key=b"poison")
    opening = world.opening("after-poison", here)
    await world.publish(
        OpeningPosted.create(opening, producer="test", occurred_at=datetime.now(UTC))
    )
    await eventually(
        lambda: len(to(world.sink, world.address("after-poison"))) >= 2,
        timeout=45,
        what="opening email after the poison",
    )

    async def listed() -> bool:
        response = await world.http.get(
            "/api/admin/dlq", params={"topic": OPENING_TOPIC, "limit": 1000}, headers=ADMIN
        )
        return any(f"{world.run}-huge" in m["value"] for m in response.json()["messages"])

    await eventually(listed, timeout=45, what="the huge poison listed in the DLQ")
    response = await world.http.get(
        "/api/admin/dlq", params={"topic": OPENING_TOPIC, "limit": 1000}, headers=ADMIN
    )
    mine = [m for m in response.json()["messages"] if world.run in m["value"]]
    [letter] = [m for m in mine if f"{world.run}-huge" not in m["value"]]
    [big] = [m for m in mine if f"{world.run}-huge" in m["value"]]
    # kept as a 256 KiB prefix in the DLQ, listed as its first 64 KiB, never replayed
    assert big["headers"]["truncated"] == "true"
    assert big["headers"]["original_size"] == str(len(huge))
    assert (big["value_size"], big["value_cut"], len(big["value"])) == (256 * 1024, True, 65536)
    assert letter["value_cut"] is False
    assert letter["headers"]["original_topic"] == OPENING_TOPIC
    assert "invalid opening.posted" in letter["headers"]["error"]
    replay = await world.http.post(
        "/api/admin/dlq/replay",
        json={
            "topic": OPENING_TOPIC,
            "messages": [{"partition": letter["partition"], "offset": letter["offset"]}],
        },
        headers=ADMIN,
    )
    assert replay.json() == {"replayed": 1}
    refused = await world.http.post(
        "/api/admin/dlq/replay",
        json={
            "topic": OPENING_TOPIC,
            "messages": [{"partition": big["partition"], "offset": big["offset"]}],
        },
        headers=ADMIN,
    )
    assert refused.json() == {"replayed": 0}


async def test_metrics_show_matching_sending_and_the_delivery_lag(world: World) -> None:
    here = world.place()
    await world.register(world.profile("metered", here))
    await world.publish(
        OpeningPosted.create(
            world.opening("metered", here), producer="test", occurred_at=datetime.now(UTC)
        )
    )
    await eventually(
        lambda: len(to(world.sink, world.address("metered"))) >= 2,
        timeout=45,
        what="opening email to the metered subscriber",
    )

    async def exported() -> bool:
        text = (await world.http.get("/metrics")).text
        return all(
            name in text
            for name in (
                "hwcollab_notifier_match_seconds_count",
                'hwcollab_notifier_emails_sent_total{kind="immediate"}',
                'hwcollab_notifier_consumer_lag{group="hwcollab-notifier-delivery',
                'hwcollab_events_consumed_total{event_type="opening.posted"',
                "hwcollab_notifier_index_ready 1.0",
            )
        )

    await eventually(exported, timeout=45, what="notifier metrics exported")
