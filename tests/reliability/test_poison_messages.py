"""Poison messages on every topic the three services consume, and ``hwcollab dlq replay``.

On each consumed topic (the notifier's subscriber, employer, opening and delivery topics; the
notification topic, read by the employer and the subscriber services) come a message that is not
JSON, one of a newer schema_version, one with required fields missing, one as large as the broker
accepts (~1 MiB) and one of 5 MB — each followed, on its partition, by a good message. Every
poison lands in ``<topic>.dlq`` once per consumer, with the reason in its headers; the good
message behind it is applied (seen through the services' databases and APIs); the consumers'
committed offsets move past the poison, so it is never delivered again; ``/readyz`` stays ready
throughout.

The 5 MB message: the broker refuses it at the door with the default ``max.message.bytes``
(1 MiB, as Kafka's default), which the test asserts. An operator may raise that limit on a topic;
then the consumer fetches the 5 MB message (aiokafka still returns a record larger than its fetch
size). The DLQ copy of anything over 256 KiB (the ~1 MiB and the 5 MB poison) is a 256 KiB prefix
with ``truncated=true``, ``original_size`` and ``sha256`` headers: the original could not be
republished whole (DLQ topic and producer limits of 1 MiB). The test raises the limit of
the consumed topics for that part and puts it back afterwards.

``hwcollab dlq replay`` (run as a subprocess, as an operator would) republishes an event that was
dead-lettered when its handler kept failing; the cause is gone, so the event is applied — once,
even when replayed twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import (
    ConfigResource,
    ConfigResourceType,
)
from aiokafka.errors import MessageSizeTooLargeError
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient
from typer.testing import CliRunner

from hwcollab_cli.main import app as cli
from hwcollab_common.consuming import DLQ_MAX_VALUE_BYTES, dead_letter
from hwcollab_common.kafka_admin import topic_partitions
from hwcollab_schemas import Event
from hwcollab_schemas.delivery import DeliveryJob
from hwcollab_schemas.events import (
    EmployerProfile,
    EmployerRegistered,
    NotificationFailed,
    NotificationFailedPayload,
    NotificationSent,
    NotificationSentPayload,
    OpeningDetails,
    OpeningPosted,
    SubscriberProfile,
    SubscriberRegistered,
)
from hwcollab_schemas.topics import (
    DELIVERY_TOPIC,
    EMPLOYER_GROUP,
    EMPLOYER_TOPIC,
    NOTIFICATION_TOPIC,
    NOTIFIER_DELIVERY_GROUP,
    NOTIFIER_GROUP,
    OPENING_TOPIC,
    SUBSCRIBER_GROUP,
    SUBSCRIBER_TOPIC,
    dlq_topic,
)
from hwcollab_testing.kafka import topic_ends
from hwcollab_testing.plugin import RunningService, ServiceStarter, SmtpSink
from hwcollab_testing.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.slow]

PASSWORD = "correct horse battery staple"
JUNEAU = ("99801", "Juneau", "AK", 58.30, -134.42)  # nobody else's tests work around Juneau
HUGE_BYTES = 5 * 1024 * 1024
RAISED_MAX_MESSAGE_BYTES = 6 * 1024 * 1024
DEFAULT_MAX_MESSAGE_BYTES = 1_048_588  # Kafka's default message.max.bytes
TIMEOUT = 90.0
KINDS = ("not_json", "newer_version", "missing_fields", "largest_accepted", "huge")

# Who consumes each topic, in which consumer group (without the test's suffix).
CONSUMERS: dict[str, tuple[str, ...]] = {
    SUBSCRIBER_TOPIC: (NOTIFIER_GROUP,),
    EMPLOYER_TOPIC: (NOTIFIER_GROUP,),
    OPENING_TOPIC: (NOTIFIER_GROUP,),
    NOTIFICATION_TOPIC: (EMPLOYER_GROUP, SUBSCRIBER_GROUP),
    DELIVERY_TOPIC: (NOTIFIER_DELIVERY_GROUP,),
}


@dataclass
class Stack:
    bootstrap: str
    mongo_url: str
    run: str
    suffix: str
    admin_token: str
    urls: dict[str, str]
    databases: dict[str, str]
    employer_token: str = ""
    opening_id: str = ""
    services: list[RunningService] = field(default_factory=list)

    def group(self, base: str) -> str:
        return base + self.suffix


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str,
    mongo_url: str,
    smtp_sink: SmtpSink,
    session_service_process: ServiceStarter,
) -> Iterator[Stack]:
    """The three services as processes, with consumer groups and databases of their own."""
    run = uuid.uuid4().hex[:8]
    suffix = f"-poison-{run}"
    groups = {
        NOTIFIER_GROUP + suffix: (SUBSCRIBER_TOPIC, EMPLOYER_TOPIC, OPENING_TOPIC),
        NOTIFIER_DELIVERY_GROUP + suffix: (DELIVERY_TOPIC,),
        EMPLOYER_GROUP + suffix: (NOTIFICATION_TOPIC,),
        SUBSCRIBER_GROUP + suffix: (NOTIFICATION_TOPIC,),
    }
    for group, topics in groups.items():
        asyncio.run(topic_ends(kafka_bootstrap, topics, group_id=group))
    admin_token = f"poison-admin-{run}"
    env = {
        "HWCOLLAB_ENV": "test",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MONGODB_URL": mongo_url,
        "SMTP_HOST": smtp_sink.host,
        "SMTP_PORT": str(smtp_sink.port),
        "ADMIN_TOKEN": admin_token,
        "EMPLOYER_APPROVAL": "auto",
        "HWCOLLAB_DEMO": "0",
        "OUTBOX_POLL_SECONDS": "0.2",
        "SIGNUP_RATE_LIMIT": "1000/minute",
        "SIGNUP_ADDRESS_RATE_LIMIT": "1000/minute",
        "LOGIN_RATE_LIMIT": "1000/minute",
        "WRITE_RATE_LIMIT": "1000/minute",
        "DIGEST_INTERVAL_SECONDS": "86400",
        "LOG_LEVEL": "WARNING",
        "CONSUMER_GROUP_SUFFIX": suffix,
    }
    names = ("subscriber", "employer", "notifier")
    databases = {name: f"poison_{name}_{run}" for name in names}
    result = Stack(
        bootstrap=kafka_bootstrap,
        mongo_url=mongo_url,
        run=run,
        suffix=suffix,
        admin_token=admin_token,
        urls={},
        databases=databases,
    )
    try:
        # started side by side (each start waits for its /healthz); a failed start still leaves
        # the others to the session's teardown
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            futures = [
                pool.submit(
                    session_service_process, name, env | {"MONGODB_DATABASE": databases[name]}
                )
                for name in names
            ]
            for name, future in zip(names, futures, strict=True):
                service = future.result()
                result.services.append(service)
                result.urls[name] = service.url
        yield result
    finally:
        for service in reversed(result.services):
            service.stop()


@pytest.fixture(scope="module")
async def ready_stack(stack: Stack) -> Stack:
    """The stack, ready, with an approved employer and one open opening (for reach counts)."""
    async with httpx.AsyncClient(timeout=20.0) as http:
        for url in stack.urls.values():

            async def ready(url: str = url) -> bool:
                try:
                    return (await http.get(f"{url}/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, timeout=TIMEOUT, what=f"{url}/readyz")
        employer = stack.urls["employer"]
        contact = f"hr.{stack.run}@poison.example"
        created = await http.post(
            f"{employer}/api/admin/employers",  # as an operator: verified at once
            headers={"Authorization": f"Bearer {stack.admin_token}"},
            json={
                "organization_name": "Tongass Care Partners",
                "contact_email": contact,
                "password": PASSWORD,
                "address": {"city": JUNEAU[1], "state": JUNEAU[2], "zip": JUNEAU[0]},
                "settings": ["medical"],
            },
        )
        assert created.status_code == 201, created.text
        token = await http.post(
            f"{employer}/api/auth/token", json={"email": contact, "password": PASSWORD}
        )
        assert token.status_code == 200, token.text
        stack.employer_token = token.json()["access_token"]
        opening = await http.post(
            f"{employer}/api/openings",
            headers={"Authorization": f"Bearer {stack.employer_token}"},
            json={
                "title": "Care Manager",
                "role": "care_manager",
                "setting": "medical",
                "employment_type": "full_time",
                "zip": JUNEAU[0],
                "description": "Coordinate care.",
                "apply_url": "https://tongass.example/apply",
            },
        )
        assert opening.status_code == 201, opening.text
        stack.opening_id = opening.json()["opening_id"]
    return stack


@pytest.fixture
async def mongo(stack: Stack) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_url)
    try:
        yield client
    finally:
        await client.close()


async def reach(stack: Stack, http: httpx.AsyncClient) -> int:
    answer = await http.get(
        f"{stack.urls['employer']}/api/openings/{stack.opening_id}/stats",
        headers={"Authorization": f"Bearer {stack.employer_token}"},
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["notified"])


# --- messages --------------------------------------------------------------------------------


def subscriber_registered(subscriber_id: str, now: datetime) -> SubscriberRegistered:
    return SubscriberRegistered.create(
        SubscriberProfile(
            subscriber_id=subscriber_id,
            version=1,
            email=f"{subscriber_id}@poison.example",
            roles=("direct_support",),
            zip=JUNEAU[0],
            lat=JUNEAU[3],
            lon=JUNEAU[4],
            timezone="America/Juneau",
            career_info=True,
            confirmed_at=now,
        ),
        producer="test",
        occurred_at=now,
    )


def employer_registered(employer_id: str, now: datetime) -> EmployerRegistered:
    return EmployerRegistered.create(
        EmployerProfile(
            employer_id=employer_id,
            version=1,
            organization_name="Mendenhall Supports",
            city=JUNEAU[1],
            state=JUNEAU[2],
            zip=JUNEAU[0],
            lat=JUNEAU[3],
            lon=JUNEAU[4],
            status="approved",
        ),
        producer="test",
        occurred_at=now,
    )


def opening_posted(opening_id: str, now: datetime) -> OpeningPosted:
    return OpeningPosted.create(
        OpeningDetails(
            opening_id=opening_id,
            employer_id=f"employer-of-{opening_id}",
            version=1,
            organization_name="Mendenhall Supports",
            employer_approved=True,
            title="Care Manager",
            role="care_manager",
            setting="medical",
            employment_type="full_time",
            zip=JUNEAU[0],
            lat=JUNEAU[3],
            lon=JUNEAU[4],
            apply_url="https://mendenhall.example/apply",
            posted_at=now,
            expires_at=now + timedelta(days=30),
        ),
        producer="test",
        occurred_at=now,
    )


def notification_sent(subscriber_id: str, opening_id: str, now: datetime) -> NotificationSent:
    return NotificationSent.create(
        NotificationSentPayload(
            message_id=f"<{uuid.uuid4().hex}@poison.example>",
            subscriber_id=subscriber_id,
            kind="immediate",
            opening_ids=(opening_id,),
            sent_at=now,
        ),
        producer="test",
        occurred_at=now,
    )


def notification_failed(subscriber_id: str, now: datetime) -> NotificationFailed:
    return NotificationFailed.create(
        NotificationFailedPayload(
            message_id=f"<{uuid.uuid4().hex}@poison.example>",
            subscriber_id=subscriber_id,
            kind="confirmation",
            permanent=True,
            reason="550 5.1.1 no such user",
            failed_at=now,
        ),
        producer="test",
        occurred_at=now,
    )


def poison(kind: str, topic: str, template: dict[str, Any], *, size_limit: int) -> bytes:
    """A message of ``kind`` built from a valid message of ``topic`` (``template``)."""
    doc = json.loads(json.dumps(template))
    if kind == "not_json":
        return b"\xff\xfe{not json at all " + uuid.uuid4().hex.encode()
    if kind == "newer_version":
        doc["schema_version"] = 99
    elif kind == "missing_fields":
        if topic == DELIVERY_TOPIC:
            del doc["kind"], doc["created_at"]
        else:
            del doc["occurred_at"], doc["payload"]
    else:
        size = HUGE_BYTES if kind == "huge" else size_limit
        # events: padding (unknown fields are ignored, so only the size stops it); delivery jobs
        # ignore unknown fields and have no size check, so the job's own id is what is too long.
        target = "subscriber_id" if topic == DELIVERY_TOPIC else "padding"
        doc[target] = ""
        filler = size - len(json.dumps(doc).encode())
        doc[target] = "x" * filler
    raw = json.dumps(doc).encode()
    assert kind in ("not_json", "newer_version", "missing_fields") or len(raw) == (
        HUGE_BYTES if kind == "huge" else size_limit
    )
    return raw


EVENT_REASONS = {
    "not_json": "not JSON",
    "newer_version": "newer than the supported",
    "missing_fields": "Field required",
    "largest_accepted": "too large",
    "huge": "too large",
}


def expected_reason(topic: str, kind: str) -> str:
    return "invalid delivery job" if topic == DELIVERY_TOPIC else EVENT_REASONS[kind]


# --- kafka -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    topic: str
    kind: str
    partition: int
    offset: int
    value: bytes


async def read_dead_letters(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``<topic>.dlq`` so far (other tests' too: callers match on headers)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(bootstrap, [dlq_topic(topic)])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []

        async def behind() -> bool:
            for tp in partitions:
                if await consumer.position(tp) < ends[tp]:
                    return True
            return False

        while await behind():
            batch = await consumer.getmany(timeout_ms=500)
            for tp_records in batch.values():
                records.extend(tp_records)
        return records
    finally:
        await consumer.stop()


def copies_of(records: list[Any], sent: Sent) -> list[dict[str, str]]:
    """The headers of the DLQ records that are copies of ``sent``."""
    out = []
    for record in records:
        headers = {k: v.decode(errors="replace") for k, v in record.headers}
        if (
            headers.get("original_topic") == sent.topic
            and headers.get("original_partition") == str(sent.partition)
            and headers.get("original_offset") == str(sent.offset)
        ):
            out.append(headers | {"_value_size": str(len(record.value or b""))})
    return out


async def set_max_message_bytes(bootstrap: str, topics: tuple[str, ...], value: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": str(value)}
                )
                for topic in topics
            ]
        )
    finally:
        await admin.close()


async def committed_past(bootstrap: str, group: str, positions: dict[TopicPartition, int]) -> bool:
    """Whether ``group`` has committed past every given offset."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return all(
        tp in committed and committed[tp].offset > offset for tp, offset in positions.items()
    )


class Readiness:
    """Samples ``/readyz`` of every service until stopped; remembers every answer but 200."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.samples = 0
        self.failures: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        async with httpx.AsyncClient(timeout=5.0) as http:
            while True:
                for url in self.urls:
                    try:
                        status = (await http.get(f"{url}/readyz")).status_code
                    except httpx.HTTPError as error:
                        self.failures.append(f"{url}: {error!r}")
                        continue
                    self.samples += 1
                    if status != 200:
                        self.failures.append(f"{url}: {status}")
                await asyncio.sleep(0.5)  # the sampling interval, not a synchronization

    def __enter__(self) -> Readiness:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()


# --- the poison test -------------------------------------------------------------------------


async def test_poison_on_every_consumed_topic_is_dead_lettered_and_the_consumers_go_on(
    ready_stack: Stack,
    mongo: AsyncMongoClient[dict[str, Any]],
    smtp_sink: SmtpSink,
) -> None:
    stack = ready_stack
    run = stack.run
    now = datetime.now(UTC)
    notifier_db = mongo[stack.databases["notifier"]]
    subscriber_db = mongo[stack.databases["subscriber"]]
    topics = tuple(CONSUMERS)

    async with httpx.AsyncClient(timeout=20.0) as http:
        # A bulletin nobody gets yet: the delivery topic's good messages are jobs that send it.
        bulletin = await http.post(
            f"{stack.urls['notifier']}/api/admin/bulletins",
            headers={"Authorization": f"Bearer {stack.admin_token}"},
            json={"subject": f"Bulletin {run}", "body_markdown": "Free **CCM** exam prep."},
        )
        assert bulletin.status_code == 202, bulletin.text
        bulletin_id = bulletin.json()["bulletin_id"]
        # Pending subscribers in the subscriber service: NotificationFailed bounces them.
        pending: list[str] = []
        for i in range(len(KINDS)):
            email = f"pending{i}.{run}@poison.example"
            answer = await http.post(
                f"{stack.urls['subscriber']}/api/subscribers",
                json={"email": email, "roles": ["direct_support"], "zip": JUNEAU[0]},
            )
            assert answer.status_code == 202, answer.text
            doc = await subscriber_db["subscribers"].find_one({"email": email})
            assert doc is not None, email
            assert doc["status"] == "pending"
            pending.append(str(doc["_id"]))
        reach_before = await reach(stack, http)

    def good_messages(topic: str, i: int) -> list[tuple[bytes, bytes]]:
        """(key, value) of the good message(s) that follow poison ``i`` on ``topic``."""
        events: list[Event]
        if topic == SUBSCRIBER_TOPIC:
            events = [subscriber_registered(f"pm-{run}-s{i}", now)]
        elif topic == EMPLOYER_TOPIC:
            events = [employer_registered(f"pm-{run}-e{i}", now)]
        elif topic == OPENING_TOPIC:
            events = [opening_posted(f"pm-{run}-o{i}", now)]
        elif topic == NOTIFICATION_TOPIC:
            events = [
                notification_sent(f"pm-{run}-reached{i}", stack.opening_id, now),
                notification_failed(pending[i], now),
            ]
        else:
            job = DeliveryJob(
                kind="bulletin",
                subscriber_id=f"pm-{run}-s{i}",
                bulletin_id=bulletin_id,
                created_at=now,
            )
            return [(job.key, job.to_bytes())]
        return [(e.key.encode(), e.to_bytes()) for e in events]

    def template(topic: str, i: int) -> dict[str, Any]:
        """A valid message of ``topic`` for a poison to be made of (its own ids: if a poison
        were applied, the test would see it)."""
        value = {
            SUBSCRIBER_TOPIC: lambda: subscriber_registered(f"pm-{run}-xs{i}", now).to_bytes(),
            EMPLOYER_TOPIC: lambda: employer_registered(f"pm-{run}-xe{i}", now).to_bytes(),
            OPENING_TOPIC: lambda: opening_posted(f"pm-{run}-xo{i}", now).to_bytes(),
            NOTIFICATION_TOPIC: lambda: notification_sent(
                f"pm-{run}-xr{i}", stack.opening_id, now
            ).to_bytes(),
            DELIVERY_TOPIC: lambda: DeliveryJob(
                kind="bulletin",
                subscriber_id=f"pm-{run}-xs{i}",
                bulletin_id=bulletin_id,
                created_at=now,
            ).to_bytes(),
        }[topic]()
        loaded: dict[str, Any] = json.loads(value)
        return loaded

    # the largest value the broker takes with the default limit, less room for a short key and
    # the record's framing (measured: 1,048,516 bytes without a key)
    largest = DEFAULT_MAX_MESSAGE_BYTES - 200
    sent_poison: list[Sent] = []
    last_good: dict[tuple[str, int], int] = {}
    refused_at_door = 0
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.bootstrap, max_request_size=RAISED_MAX_MESSAGE_BYTES + 1024
    )
    await producer.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with Readiness(list(stack.urls.values())) as readiness:

            async def publish_round(topic: str, kinds: range) -> None:
                """Poison ``i`` of each given kind, then its good message(s), on one partition."""
                for i in kinds:
                    kind, partition = KINDS[i], i % 4
                    bad = poison(kind, topic, template(topic, i), size_limit=largest)
                    goods = good_messages(topic, i)
                    meta = await producer.send_and_wait(
                        topic, bad, key=goods[0][0], partition=partition
                    )
                    sent_poison.append(Sent(topic, kind, partition, meta.offset, bad))
                    for key, value in goods:
                        meta = await producer.send_and_wait(
                            topic, value, key=key, partition=partition
                        )
                    last_good[(topic, partition)] = max(
                        meta.offset, last_good.get((topic, partition), -1)
                    )

            async def notifier_has(collection: str, ids: list[str]) -> bool:
                found = await notifier_db[collection].count_documents({"_id": {"$in": ids}})
                return found == len(ids)

            async def publish_rounds(kinds: range) -> None:
                for topic in topics:
                    if topic == DELIVERY_TOPIC:
                        # the jobs are for the subscribers of the subscriber topic's round

                        async def subscribers_known() -> bool:
                            ids = [f"pm-{run}-s{i}" for i in kinds]
                            return await notifier_has("subscribers", ids)

                        await eventually(
                            subscribers_known,
                            timeout=TIMEOUT,
                            what="subscribers registered after the poison in the notifier",
                        )
                    await publish_round(topic, kinds)

            n = len(KINDS)
            huge = KINDS.index("huge")
            # With the default limit: the broker refuses 5 MB at the door; everything up to its
            # limit gets in, and the consumers must cope with it.
            for topic in topics:
                with pytest.raises(MessageSizeTooLargeError):
                    await producer.send_and_wait(
                        topic, poison("huge", topic, template(topic, huge), size_limit=largest)
                    )
                refused_at_door += 1
            await publish_rounds(range(huge))
            # An operator raised the limit: now 5 MB gets in.
            await set_max_message_bytes(stack.bootstrap, topics, RAISED_MAX_MESSAGE_BYTES)
            try:
                await publish_rounds(range(huge, n))
            finally:
                await set_max_message_bytes(stack.bootstrap, topics, DEFAULT_MAX_MESSAGE_BYTES)

            # The good messages are applied: each one after a poison on its partition.
            await eventually(
                lambda: notifier_has("employers", [f"pm-{run}-e{i}" for i in range(n)]),
                timeout=TIMEOUT,
                what="employers registered after the poison in the notifier",
            )
            await eventually(
                lambda: notifier_has("openings", [f"pm-{run}-o{i}" for i in range(n)]),
                timeout=TIMEOUT,
                what="openings posted after the poison in the notifier",
            )

            async def bounced() -> bool:
                found = await subscriber_db["subscribers"].count_documents(
                    {"_id": {"$in": pending}, "status": "bounced"}
                )
                return found == n

            await eventually(
                bounced, timeout=TIMEOUT, what="bounces applied by the subscriber service"
            )
            async with httpx.AsyncClient(timeout=20.0) as http:

                async def reached() -> bool:
                    return await reach(stack, http) == reach_before + n

                await eventually(
                    reached, timeout=TIMEOUT, what="reach counted by the employer service"
                )

            def bulletins() -> set[str]:
                return {
                    str(m.message["To"])
                    for m in smtp_sink.snapshot()
                    if f"Bulletin {run}" in str(m.message["Subject"])
                }

            async def bulletins_sent() -> bool:
                return bulletins() == {f"pm-{run}-s{i}@poison.example" for i in range(n)}

            await eventually(
                bulletins_sent, timeout=TIMEOUT, what="bulletins sent by the delivery consumer"
            )

            # No poison was applied.
            for collection, prefix in (
                ("subscribers", "xs"),
                ("employers", "xe"),
                ("openings", "xo"),
            ):
                assert (
                    await notifier_db[collection].count_documents(
                        {"_id": {"$regex": f"^pm-{run}-{prefix}"}}
                    )
                    == 0
                ), f"a poison was applied to {collection}"

            # Every consumer committed past its poison: none is delivered again.
            for topic, groups in CONSUMERS.items():
                positions = {
                    TopicPartition(t, p): offset
                    for (t, p), offset in last_good.items()
                    if t == topic
                }
                for group in groups:

                    async def past(
                        group_id: str = stack.group(group),
                        positions: dict[TopicPartition, int] = positions,
                    ) -> bool:
                        return await committed_past(stack.bootstrap, group_id, positions)

                    await eventually(
                        past, timeout=TIMEOUT, what=f"{group} committed past the poison on {topic}"
                    )

            # Every poison is in its DLQ once per consumer, with the reason.
            dead_lettered = duplicated = lost = 0
            problems: list[str] = []
            for topic in topics:
                records = await read_dead_letters(stack.bootstrap, topic)
                expected_copies = len(CONSUMERS[topic])
                for sent in (s for s in sent_poison if s.topic == topic):
                    copies = copies_of(records, sent)
                    dead_lettered += min(len(copies), expected_copies)
                    duplicated += max(0, len(copies) - expected_copies)
                    lost += max(0, expected_copies - len(copies))
                    for headers in copies:
                        reason = expected_reason(topic, sent.kind)
                        if reason not in headers.get("error", ""):
                            problems.append(f"{topic} {sent.kind}: error {headers.get('error')!r}")
                        if len(sent.value) > DLQ_MAX_VALUE_BYTES:
                            if (
                                headers.get("truncated") != "true"
                                or headers.get("original_size") != str(len(sent.value))
                                or headers.get("sha256") != hashlib.sha256(sent.value).hexdigest()
                                or headers["_value_size"] != str(DLQ_MAX_VALUE_BYTES)
                            ):
                                problems.append(f"{topic} {sent.kind}: not a marked truncation")
                        elif "truncated" in headers or headers["_value_size"] != str(
                            len(sent.value)
                        ):
                            problems.append(f"{topic} {sent.kind}: the copy is not whole")
            expected = sum(len(CONSUMERS[s.topic]) for s in sent_poison)
            elapsed = loop.time() - started
            print(
                f"FIGURES poison expected={expected} dead_lettered={dead_lettered} lost={lost} "
                f"duplicated={duplicated} topics={len(topics)} kinds={len(KINDS)} "
                f"good_applied={len(topics) * n} refused_at_door={refused_at_door} "
                f"largest_accepted_bytes={largest} huge_bytes={HUGE_BYTES} "
                f"readyz_samples={readiness.samples} readyz_failures={len(readiness.failures)} "
                f"seconds={elapsed:.1f}"
            )
            assert problems == []
            assert (dead_lettered, lost, duplicated) == (expected, 0, 0)
            assert refused_at_door == len(topics)
            assert readiness.samples > 0
            assert readiness.failures == []
    finally:
        await producer.stop()


# --- replay ----------------------------------------------------------------------------------


def hwcollab(stack: Stack, *args: str) -> tuple[str, str]:
    """The operator CLI as a subprocess against the running notifier: (stdout, stderr)."""
    script = Path(sys.executable).with_name("hwcollab")
    completed = subprocess.run(
        [str(script), *args, "--notifier-url", stack.urls["notifier"]],
        env=dict(os.environ) | {"ADMIN_TOKEN": stack.admin_token, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout, completed.stderr


def consumed(metrics_text: str, *, topic: str, event_type: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if (
            line.startswith("hwcollab_events_consumed_total{")
            and f'topic="{topic}"' in line
            and f'event_type="{event_type}"' in line
            and 'outcome="handled"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_dlq_replay_applies_a_fixed_message_once_even_when_replayed_twice(
    ready_stack: Stack,
    mongo: AsyncMongoClient[dict[str, Any]],
) -> None:
    stack = ready_stack
    run = stack.run
    now = datetime.now(UTC)
    employer_db = mongo[stack.databases["employer"]]
    event = notification_sent(f"pm-{run}-replayed", stack.opening_id, now)
    marker = str(event.event_id)
    big = f"{marker}-big".encode() + b"x" * (DLQ_MAX_VALUE_BYTES + 1)

    # What a consumer of the previous release wrote when its handler kept failing during a
    # database outage (transient errors are retried now): the event itself is fine.
    broker = KafkaBroker(stack.bootstrap)
    await broker.connect()
    try:
        await dead_letter(
            broker,
            topic=NOTIFICATION_TOPIC,
            key=event.key.encode(),
            value=event.to_bytes(),
            error="handler failed 5 times: ServerSelectionTimeoutError: 127.0.0.1:1 refused",
            partition=0,
            offset=0,
        )
        await dead_letter(
            broker, topic=NOTIFICATION_TOPIC, key=None, value=big, error="too large: test"
        )
    finally:
        await broker.stop()

    async with httpx.AsyncClient(timeout=20.0) as http:
        before = await reach(stack, http)

        async def applied_times() -> int:
            return await employer_db["processed_events"].count_documents(
                {"_id": {"$regex": f"{marker}$"}}
            )

        async def handled() -> float:
            text = (await http.get(f"{stack.urls['employer']}/metrics")).text
            return consumed(text, topic=NOTIFICATION_TOPIC, event_type="notification.sent")

        def listed() -> list[dict[str, str]]:
            # in-process: the subprocess runs below are the ones that matter
            result = CliRunner().invoke(
                cli,
                [
                    *("dlq", "list", NOTIFICATION_TOPIC, "--contains", marker, "--json"),
                    *("--notifier-url", stack.urls["notifier"]),
                    *("--admin-token", stack.admin_token),
                ],
            )
            assert result.exit_code == 0, result.output
            return [m["headers"] for m in json.loads(result.stdout)["messages"]]

        headers = listed()
        assert sorted(h.get("truncated", "no") for h in headers) == ["no", "true"], headers
        assert any(h["error"].startswith("handler failed 5 times") for h in headers), headers

        dry, warnings = hwcollab(
            stack, "dlq", "replay", NOTIFICATION_TOPIC, "--contains", marker, "--dry-run"
        )
        assert "would replay 1 message(s)" in dry, dry
        assert "a truncated copy" in warnings, warnings
        assert await reach(stack, http) == before
        assert await applied_times() == 0

        handled_before = await handled()
        chosen = ("--contains", marker, "--reason", "handler failed")
        first, _ = hwcollab(stack, "dlq", "replay", NOTIFICATION_TOPIC, *chosen)
        assert "replayed 1 message(s)" in first, first

        async def counted_once() -> bool:
            return await reach(stack, http) == before + 1 and await applied_times() == 1

        await eventually(counted_once, timeout=TIMEOUT, what="the replayed event applied")

        second, _ = hwcollab(stack, "dlq", "replay", NOTIFICATION_TOPIC, *chosen)
        assert "replayed 1 message(s)" in second, second

        async def delivered_twice() -> bool:
            return await handled() >= handled_before + 2

        await eventually(delivered_twice, timeout=TIMEOUT, what="the second replay consumed")
        deliveries = await handled() - handled_before
        applied = await applied_times()
        reached = await reach(stack, http) - before
        print(
            f"FIGURES dlq_replay replays=2 deliveries={deliveries:.0f} applied={applied} "
            f"reach_added={reached} duplicated={max(0, applied - 1)} truncated_skipped=1"
        )
        assert (applied, reached) == (1, 1)
