"""MongoDB is killed (SIGKILL) while employers post openings, then restarted on the same port and
data directory.

During the outage every request that needs the database answers 503 (never 500, never after more
than a few seconds) and ``/readyz`` shows ``mongodb`` failing; after the restart the same service
processes serve again without a restart of their own; nothing is half-written (an opening refused
during the outage does not exist; every stored opening and subscriber has its event in the outbox),
and every staged event reaches Kafka exactly once. An event consumed during the outage is retried
until the database returns and then applied — not dead-lettered.

SIGKILL is fair here: the server runs with ``--sync-on-commit``, so what it acknowledged is on disk.
The database is this test's own process; Kafka is the session broker (fresh consumer groups).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    TopicPartition,
)
from pymongo import AsyncMongoClient

from hwcollab_schemas import EventParseError, parse_event
from hwcollab_schemas.events import NotificationSent, NotificationSentPayload
from hwcollab_schemas.topics import EMPLOYER_GROUP, NOTIFICATION_TOPIC, SUBSCRIBER_GROUP, dlq_topic
from hwcollab_testing.kafka import topic_ends
from hwcollab_testing.plugin import RunningService, ServiceStarter
from hwcollab_testing.processes import RestartableMongo
from hwcollab_testing.waiting import eventually

from .test_kafka_outage import (
    TOPICS,
    Document,
    Writer,
    opening_json,
    pending,
    readiness,
    start_services,
    stop_services,
)

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.slow]

ANSWER_WITHIN = 10.0  # seconds: an outage must not hang a request


async def event_ids_since(bootstrap: str, starts: dict[TopicPartition, int]) -> list[str]:
    """Event ids on shared topics from ``starts`` to their current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(starts))
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        ends = await consumer.end_offsets(list(starts))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        ids: list[str] = []
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            assert loop.time() < deadline, "could not read the topics to their end"
            for records in (await consumer.getmany(timeout_ms=500, max_records=1000)).values():
                for record in records:
                    try:
                        ids.append(str(parse_event(record.value, topic=record.topic).event_id))
                    except EventParseError:
                        continue  # other tests publish junk on the shared topics
        return ids
    finally:
        await consumer.stop()


class Probe:
    """A request made during the outage: its status, how long it took, and (for pages) its type."""

    def __init__(self, name: str, status: int, seconds: float, content_type: str) -> None:
        self.name = name
        self.status = status
        self.seconds = seconds
        self.content_type = content_type

    def __repr__(self) -> str:
        return f"{self.name}: {self.status} in {self.seconds:.1f} s ({self.content_type})"


async def probe(http: httpx.AsyncClient, name: str, method: str, url: str, **kw: Any) -> Probe:
    started = time.monotonic()
    answer = await http.request(method, url, **kw)
    return Probe(
        name, answer.status_code, time.monotonic() - started, answer.headers.get("content-type", "")
    )


async def retried(http: httpx.AsyncClient, service: RunningService) -> float:
    """The service's count of notification.sent deliveries that will be retried."""
    text = (await http.get(f"{service.url}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("hwcollab_events_consumed_total{")
        and 'outcome="retried"' in line
        and 'event_type="notification.sent"' in line
    )


async def test_a_database_outage_answers_503_and_the_services_recover_by_themselves(
    tmp_path: Path,
    artifacts_dir: Path,
    kafka_bootstrap: str,
    service_process: ServiceStarter,
) -> None:
    started = time.monotonic()
    run = uuid.uuid4().hex[:8]
    timeline: dict[str, float] = {}

    def mark(name: str) -> None:
        timeline[name] = round(time.monotonic() - started, 1)

    starts = await topic_ends(kafka_bootstrap, TOPICS)
    dlq_starts = await topic_ends(kafka_bootstrap, [dlq_topic(NOTIFICATION_TOPIC)])
    suffix = f"-mongo-outage-{run}"
    for group in (SUBSCRIBER_GROUP, EMPLOYER_GROUP):
        await topic_ends(kafka_bootstrap, [NOTIFICATION_TOPIC], group_id=group + suffix)
    async with RestartableMongo(
        name="mongo-outage", data_dir=tmp_path / "mongo", log_dir=artifacts_dir / "logs"
    ) as database:
        common = {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "MONGODB_URL": database.url,
            "MONGODB_DATABASE": f"test_mongo_outage_{run}",
            "CONSUMER_GROUP_SUFFIX": suffix,
            "OUTBOX_POLL_SECONDS": "0.2",
            "LOG_LEVEL": "WARNING",
        }
        subscriber, employer = await start_services(
            service_process, common, subscriber_env={}, employer_env={}
        )
        services: tuple[RunningService, ...] = (subscriber, employer)
        pids = {service.name: service.pid for service in services}
        mongo: AsyncMongoClient[Document] = AsyncMongoClient(database.url)
        db = mongo[common["MONGODB_DATABASE"]]
        try:
            async with httpx.AsyncClient(timeout=60.0) as http:

                async def all_ready() -> bool:
                    return all([(await readiness(http, s))[0] == 200 for s in services])

                await eventually(all_ready, timeout=60, what="services ready")
                mark("ready")
                writer = Writer(
                    http, subscriber=subscriber, employer=employer, subscriber_db=db, run=run
                )
                headers = await writer.employer_account("before")
                await writer.phase("before", headers)

                # A steady stream of openings across the kill: each answer is 201 or 503.
                stream: list[tuple[str, int]] = []
                stop_stream = asyncio.Event()

                async def post_openings() -> None:
                    i = 0
                    while not stop_stream.is_set():
                        title = f"Stream opening {i} {run}"
                        answer = await http.post(
                            f"{employer.url}/api/openings",
                            headers=headers,
                            json=opening_json(title, description="Coordinate care."),
                        )
                        stream.append((title, answer.status_code))
                        i += 1
                        await asyncio.sleep(0.05)

                streaming = asyncio.create_task(post_openings())
                await eventually(
                    lambda: asyncio.sleep(0, result=len(stream) >= 3), timeout=20, what="stream"
                )

                # --- the outage ---------------------------------------------------------------
                await database.kill()
                mark("killed")
                killed_at = len(stream)

                async def mongo_failing() -> bool:
                    for service in services:
                        status, body = await readiness(http, service)
                        checks = body.get("checks", {})
                        if status != 503 or not str(checks.get("mongodb", "")).startswith(
                            "failing"
                        ):
                            return False
                    return True

                await eventually(mongo_failing, timeout=20, what="/readyz reports MongoDB failing")
                mark("failing")
                refused_title = f"Refused opening {run}"
                opening = {
                    "title": refused_title,
                    "role": "care_manager",
                    "setting": "medical",
                    "employment_type": "full_time",
                    "zip": "01608",
                    "apply_url": "https://care.example/apply",
                }
                probes = await asyncio.gather(
                    probe(
                        http,
                        "post opening",
                        "POST",
                        f"{employer.url}/api/openings",
                        headers=headers,
                        json=opening,
                    ),
                    probe(
                        http,
                        "sign up",
                        "POST",
                        f"{subscriber.url}/api/subscribers",
                        json={
                            "email": f"refused-{run}@example.org",
                            "roles": ["care_manager"],
                            "zip": "01608",
                        },
                    ),
                    probe(
                        http,
                        "job board api",
                        "GET",
                        f"{employer.url}/api/openings",
                        params={"zip": "01608"},
                    ),
                    probe(
                        http,
                        "job board page",
                        "GET",
                        f"{employer.url}/openings",
                        params={"zip": "01608"},
                        headers={"Accept": "text/html"},
                    ),
                    probe(
                        http,
                        "my openings",
                        "GET",
                        f"{employer.url}/api/employers/me/openings",
                        headers=headers,
                    ),
                )
                during_stream = [status for _, status in stream[killed_at:]]
                # The employer service consumes an email's notification.sent while the database
                # is away: the handler keeps failing with an outage and must be retried.
                now = datetime.now(UTC)
                reached = NotificationSent.create(
                    NotificationSentPayload(
                        message_id=f"<outage-{run}@hwcollab.example>",
                        subscriber_id=f"reached-{run}",
                        kind="immediate",
                        opening_ids=(writer.openings[0],),
                        sent_at=now,
                    ),
                    producer="test",
                    occurred_at=now,
                )
                producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
                await producer.start()
                try:
                    await producer.send_and_wait(
                        NOTIFICATION_TOPIC, reached.to_bytes(), key=reached.key.encode()
                    )
                finally:
                    await producer.stop()

                async def retrying() -> bool:
                    return await retried(http, employer) > 0

                await eventually(
                    retrying, timeout=20, what="the employer consumer retrying through the outage"
                )
                mark("retrying")
                assert await mongo_failing(), "the database was still away during the probes"

                # --- the database returns -----------------------------------------------------
                await database.start()
                mark("restarted")
                await eventually(all_ready, timeout=60, what="/readyz ready again")
                mark("ready_again")
                stop_stream.set()
                await streaming
                assert {s.name: s.pid for s in services} == pids
                assert all(s.process.is_running() for s in services), "no service restarted"
                await writer.phase("after", headers)
                mark("after")
                stats_url = f"{employer.url}/api/openings/{writer.openings[0]}/stats"

                async def reach_counted() -> bool:
                    answer = await http.get(stats_url, headers=headers)
                    return answer.status_code == 200 and answer.json().get("notified") == 1

                await eventually(reach_counted, timeout=45, what="the outage's event applied")
                mark("reached")

                async def outbox_empty() -> bool:
                    return await pending(db) == 0

                await eventually(outbox_empty, timeout=30, what="outbox drained")
                mark("drained")

            openings = [doc async for doc in db["openings"].find({}, {"_id": 1, "title": 1})]
            subscribers = [doc["_id"] async for doc in db["subscribers"].find({}, {"_id": 1})]
            outbox = [doc async for doc in db["outbox"].find({}, {"key": 1, "event_type": 1})]
        finally:
            with contextlib.suppress(Exception):
                await mongo.close()
            await stop_services(services)  # before their database goes

    print(f"\noutage answers: {probes}; stream during outage: {collections.Counter(during_stream)}")
    assert all(p.status == 503 for p in probes), probes
    assert all(p.seconds < ANSWER_WITHIN for p in probes), probes
    page = next(p for p in probes if p.name == "job board page")
    assert page.content_type.startswith("text/html")
    assert {status for _, status in stream} <= {201, 503}, collections.Counter(stream)
    assert 503 in during_stream

    # Nothing half-written: refused writes left nothing; every stored change has its event.
    titles = {doc["title"] for doc in openings}
    assert refused_title not in titles
    accepted = {title for title, status in stream if status == 201}
    assert accepted <= titles, "an acknowledged opening is missing"
    staged = {(doc["event_type"], doc["key"]) for doc in outbox}
    assert {("opening.posted", str(doc["_id"])) for doc in openings} <= staged
    assert {("subscriber.confirmation_requested", str(s)) for s in subscribers} <= staged
    assert set(writer.openings) <= {str(doc["_id"]) for doc in openings}

    expected = {str(doc["_id"]) for doc in outbox}
    counts = collections.Counter(
        event_id
        for event_id in await event_ids_since(kafka_bootstrap, starts)
        if event_id in expected
    )
    delivered = set(counts)
    lost = expected - delivered
    duplicated = {event_id for event_id, n in counts.items() if n > 1}
    print(
        f"FIGURES mongo-outage expected={len(expected)} delivered={len(delivered)} "
        f"lost={len(lost)} duplicated={len(duplicated)} stored_openings={len(openings)} "
        f"stream_201={len(accepted)} stream_503={sum(1 for _, s in stream if s == 503)} "
        f"max_outage_answer_seconds={max(p.seconds for p in probes):.1f} "
        f"run_seconds={time.monotonic() - started:.0f}"
    )
    print(f"timeline (s): {timeline}")
    assert lost == set()
    assert duplicated == set()
    dead = await event_ids_since(kafka_bootstrap, dlq_starts)
    assert str(reached.event_id) not in dead, "an event that met an outage was dead-lettered"
