"""The Kafka broker is killed (SIGKILL) while subscribers sign up and employers post, then
comes back.

HTTP keeps answering (writes succeed, their events wait in the outbox), ``/readyz`` reports the
broker failing during the outage and ready again after, and once the broker is back the outbox
relay publishes everything: each expected event is on its topic exactly once. What the broker
acknowledged before it was killed is still there after the restart.

The broker is this test's own Apache Kafka node (not the session broker other tests share),
restarted on the same port and data directory (``hwcollab_testing.processes.RestartableKafka``).
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from hwcollab_common.clock import SystemClock
from hwcollab_common.kafka import KafkaEventPublisher
from hwcollab_common.outbox import OutboxRelay, stage_events
from hwcollab_common.settings import DEV_ADMIN_TOKEN
from hwcollab_schemas import EventParseError, parse_event
from hwcollab_schemas.events import SubscriberDeleted, SubscriberDeletedPayload
from hwcollab_schemas.topics import EMPLOYER_TOPIC, OPENING_TOPIC, SUBSCRIBER_TOPIC
from hwcollab_testing.plugin import RunningService, ServiceStarter
from hwcollab_testing.processes import RestartableKafka, free_port
from hwcollab_testing.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.slow]

PER_PHASE = 3  # sign-ups (each confirmed) and openings before, during and after the outage
TOPICS = (SUBSCRIBER_TOPIC, EMPLOYER_TOPIC, OPENING_TOPIC)
PASSWORD = "outage test passphrase"
Document = dict[str, Any]


def own_broker(tmp_path: Path, artifacts_dir: Path) -> RestartableKafka:
    return RestartableKafka(
        name="kafka-outage", data_dir=tmp_path / "kafka", log_dir=artifacts_dir / "logs"
    )


async def readiness(http: httpx.AsyncClient, service: RunningService) -> tuple[int, Document]:
    try:
        answer = await http.get(f"{service.url}/readyz")
    except httpx.HTTPError as error:
        return 0, {"error": str(error)}
    return answer.status_code, answer.json()


async def pending(database: Any) -> int:
    return int(await database["outbox"].count_documents({"status": "pending"}))


def opening_json(title: str, *, description: str = "Coordinate care for adults.") -> Document:
    """An opening as the employer API takes it: a full-time care-manager job in Worcester."""
    return {
        "title": title,
        "role": "care_manager",
        "setting": "medical",
        "employment_type": "full_time",
        "zip": "01608",
        "description": description,
        "apply_url": "https://care.example/apply",
    }


class Writer:
    """Signs up (and confirms) subscribers and posts openings through the services' HTTP APIs,
    asserting every write succeeds and recording how long each took."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        subscriber: RunningService,
        employer: RunningService,
        subscriber_db: Any,
        run: str,
    ) -> None:
        self._http = http
        self._subscriber = subscriber
        self._employer = employer
        self._subscriber_db = subscriber_db
        self._run = run
        self.latencies: list[float] = []
        self.signups: list[str] = []
        self.openings: list[str] = []
        self.employers: list[str] = []

    async def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        started = time.monotonic()
        answer = await self._http.request(method, url, **kwargs)
        self.latencies.append(time.monotonic() - started)
        assert answer.status_code < 300, f"{method} {url}: {answer.status_code} {answer.text}"
        return answer

    async def employer_account(self, label: str) -> dict[str, str]:
        email = f"{label}-{self._run}@care.example"
        created = await self._call(
            "POST",
            f"{self._employer.url}/api/admin/employers",  # as an operator: verified at once
            headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
            json={
                "organization_name": f"Outage Care {label} {self._run}",
                "contact_email": email,
                "password": PASSWORD,
                "description": "Care coordination.",
                "address": {"city": "Worcester", "state": "MA", "zip": "01608"},
                "settings": ["medical"],
            },
        )
        self.employers.append(created.json()["employer_id"])
        token = await self._call(
            "POST",
            f"{self._employer.url}/api/auth/token",
            json={"email": email, "password": PASSWORD},
        )
        return {"Authorization": f"Bearer {token.json()['access_token']}"}

    async def post_opening(self, headers: dict[str, str], title: str) -> None:
        posted = await self._call(
            "POST",
            f"{self._employer.url}/api/openings",
            headers=headers,
            json=opening_json(title),
        )
        self.openings.append(posted.json()["opening_id"])

    async def sign_up_and_confirm(self, label: str) -> None:
        email = f"{label}-{self._run}@example.org"
        await self._call(
            "POST",
            f"{self._subscriber.url}/api/subscribers",
            json={"email": email, "roles": ["care_manager"], "zip": "01608"},
        )
        # The confirmation link is in the event waiting in the outbox (it would be mailed).
        token = await self._confirm_token(email)
        confirmed = await self._call(
            "POST", f"{self._subscriber.url}/api/subscribers/confirm", json={"token": token}
        )
        self.signups.append(confirmed.json()["subscriber_id"])

    async def _confirm_token(self, email: str) -> str:
        async for entry in self._subscriber_db["outbox"].find(
            {"event_type": "subscriber.confirmation_requested"}
        ):
            payload = json.loads(entry["value"])["payload"]
            if payload["email"] == email:
                url: str = payload["confirm_url"]
                return parse_qs(urlsplit(url).query)["token"][0]
        raise AssertionError(f"no confirmation request staged for {email}")

    async def phase(self, name: str, headers: dict[str, str]) -> None:
        for i in range(PER_PHASE):
            await self.sign_up_and_confirm(f"{name}{i}")
            await self.post_opening(headers, f"Care Manager {name} {i} {self._run}")


async def read_event_ids(bootstrap: str) -> list[str]:
    """Every event id on the product topics of the broker, from the beginning to the end."""
    consumer = AIOKafkaConsumer(
        *TOPICS, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not consumer.assignment():
            assert loop.time() < deadline, "no partitions assigned"
            await consumer.getmany(timeout_ms=200)
        await consumer.seek_to_beginning()
        ends = await consumer.end_offsets(list(consumer.assignment()))
        ids: list[str] = []
        while True:
            done = True
            for tp, end in ends.items():
                if await consumer.position(tp) < end:
                    done = False
            if done:
                return ids
            assert loop.time() < deadline, "could not read the topics to their end"
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batches.values():
                for record in records:
                    try:
                        ids.append(str(parse_event(record.value, topic=record.topic).event_id))
                    except EventParseError:
                        continue  # not ours
    finally:
        await consumer.stop()


async def start_services(
    service_process: ServiceStarter,
    common: dict[str, str],
    *,
    subscriber_env: dict[str, str],
    employer_env: dict[str, str],
) -> tuple[RunningService, RunningService]:
    """The subscriber and employer services, started side by side, with limits out of the way."""
    subscriber_port = free_port()
    subscriber = common | {
        "SUBSCRIBER_PUBLIC_URL": f"http://127.0.0.1:{subscriber_port}",
        "SIGNUP_RATE_LIMIT": "1000/minute",
        "SIGNUP_ADDRESS_RATE_LIMIT": "1000/hour",
    }
    employer = common | {
        "EMPLOYER_APPROVAL": "auto",
        "LOGIN_RATE_LIMIT": "1000/minute",
        "SIGNUP_RATE_LIMIT": "1000/hour",
        "WRITE_RATE_LIMIT": "1000/minute",
    }
    return await asyncio.gather(
        asyncio.to_thread(
            service_process, "subscriber", subscriber | subscriber_env, port=subscriber_port
        ),
        asyncio.to_thread(service_process, "employer", employer | employer_env),
    )


async def stop_services(services: tuple[RunningService, ...]) -> None:
    await asyncio.gather(*(asyncio.to_thread(service.stop) for service in services))


async def test_a_broker_outage_loses_nothing_and_http_keeps_answering(
    tmp_path: Path, artifacts_dir: Path, mongo_url: str, service_process: ServiceStarter
) -> None:
    started = time.monotonic()
    run = uuid.uuid4().hex[:8]
    async with own_broker(tmp_path, artifacts_dir) as broker:
        databases = {name: f"test_kafka_outage_{name}_{run}" for name in ("subscriber", "employer")}
        common = {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "MONGODB_URL": mongo_url,
            "CONSUMER_GROUP_SUFFIX": f"-kafka-outage-{run}",
            "OUTBOX_POLL_SECONDS": "0.2",
            "LOG_LEVEL": "WARNING",
        }
        subscriber, employer = await start_services(
            service_process,
            common,
            subscriber_env={"MONGODB_DATABASE": databases["subscriber"]},
            employer_env={"MONGODB_DATABASE": databases["employer"]},
        )
        services = (subscriber, employer)
        mongo: AsyncMongoClient[Document] = AsyncMongoClient(mongo_url)
        dbs = [mongo[databases[s.name]] for s in services]
        try:
            # Generous: on a busy machine a sign-up (password hashing) can take seconds.
            async with httpx.AsyncClient(timeout=60.0) as http:

                async def all_ready() -> bool:
                    return all([(await readiness(http, s))[0] == 200 for s in services])

                await eventually(all_ready, timeout=60, what="services ready")
                writer = Writer(
                    http, subscriber=subscriber, employer=employer, subscriber_db=dbs[0], run=run
                )
                headers = await writer.employer_account("before")
                await writer.phase("before", headers)

                async def outboxes_empty() -> bool:
                    return all([await pending(db) == 0 for db in dbs])

                await eventually(outboxes_empty, timeout=30, what="outbox drained before")

                # --- the outage: killed while a sign-up's and an opening's events are in flight
                await writer.phase("killed", headers)
                await broker.kill()

                async def kafka_failing() -> bool:
                    for service in services:
                        status, body = await readiness(http, service)
                        checks = body.get("checks", {})
                        if status != 503 or not str(checks.get("kafka", "")).startswith("failing"):
                            return False
                        assert checks.get("mongodb") == "ok", body
                    return True

                await eventually(kafka_failing, timeout=30, what="/readyz reports Kafka failing")
                outage_started = len(writer.latencies)
                during_headers = await writer.employer_account("during")
                await writer.phase("during", headers)
                await writer.post_opening(during_headers, f"Care Manager new employer {run}")
                outage_latencies = writer.latencies[outage_started:]
                waiting = sum([await pending(db) for db in dbs])
                assert waiting >= 3 * PER_PHASE + 2, "the outage's events wait in the outbox"
                assert await kafka_failing(), "still down while the writes were made"

                # --- the broker returns -------------------------------------------------------
                await broker.start()
                await eventually(all_ready, timeout=60, what="/readyz ready again")
                await writer.phase("after", headers)
                await eventually(outboxes_empty, timeout=60, what="outbox drained after")
        finally:
            entries = [entry for db in dbs async for entry in db["outbox"].find({}, {"status": 1})]
            await mongo.close()
            await stop_services(services)  # before their broker goes

        assert all(entry["status"] == "sent" for entry in entries)
        expected = {str(entry["_id"]) for entry in entries}
        counts = collections.Counter(await read_event_ids(broker.bootstrap))
        delivered = expected & set(counts)
        lost = expected - delivered
        duplicated = {event_id for event_id in expected if counts[event_id] > 1}
        # Every write made an event: sign-up (confirmation requested), confirmation (registered),
        # opening (posted), employer (registered).
        writes = len(writer.signups) * 2 + len(writer.openings) + len(writer.employers)
        print(
            f"\nFIGURES kafka-outage expected={len(expected)} delivered={len(delivered)} "
            f"lost={len(lost)} duplicated={len(duplicated)} writes={writes} "
            f"outage_writes={len(outage_latencies)} "
            f"max_outage_write_seconds={max(outage_latencies):.2f} "
            f"run_seconds={time.monotonic() - started:.0f}"
        )
        assert len(expected) >= writes
        assert lost == set()
        assert duplicated == set()
        # Waiting on the broker would take its 40 s request timeout; a busy machine takes a few.
        assert max(outage_latencies) < 10.0, "writes do not wait for the broker"


async def test_the_relay_waits_out_a_long_outage_and_publishes_each_event_once(
    tmp_path: Path, artifacts_dir: Path, mongo_url: str
) -> None:
    """The producer keeps the records it holds when the broker goes away and delivers them when it
    returns; meanwhile the relay waits for their acknowledgement, renewing its lease on them (so no
    other relay publishes them again), and events staged during the outage wait in the outbox.
    The lease is 3 s here so that the outage outlasts it several times."""
    run = uuid.uuid4().hex[:8]
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(mongo_url)
    db = mongo[f"test_relay_outage_{run}"]
    outbox = db["outbox"]

    def deleted(label: str) -> SubscriberDeleted:
        return SubscriberDeleted.create(
            SubscriberDeletedPayload(subscriber_id=f"relay-{run}-{label}", version=1),
            producer="test",
            occurred_at=datetime.now(UTC),
        )

    async with own_broker(tmp_path, artifacts_dir) as broker:
        kafka = KafkaBroker(broker.bootstrap, enable_idempotence=True, acks="all")
        await kafka.start()
        relay = OutboxRelay(
            db,
            KafkaEventPublisher(kafka),
            clock=SystemClock(),
            poll_seconds=0.1,
            lease=timedelta(seconds=3),
            ack_report_seconds=1.0,
        )
        relay.start()
        events: list[SubscriberDeleted] = []
        try:

            async def drained() -> bool:
                return await pending(db) == 0

            before = [deleted(f"before-{i}") for i in range(10)]
            await stage_events(db, before, session=None)
            relay.wake()
            await eventually(drained, timeout=30, what="published before the outage")

            await broker.kill()  # acknowledged records survive: they are in the broker's log
            held = [deleted(f"held-{i}") for i in range(10)]
            await stage_events(db, held, session=None)
            relay.wake()  # these reach the producer, which holds them while the broker is away
            held_ids = [str(event.event_id) for event in held]

            async def leased() -> list[Document]:
                return [doc async for doc in outbox.find({"_id": {"$in": held_ids}})]

            async def claimed() -> bool:
                return all(doc["lease_owner"] is not None for doc in await leased())

            await eventually(claimed, timeout=10, what="the held batch claimed")
            first_lease = max(doc["lease_until"] for doc in await leased())

            async def renewed() -> bool:
                docs = await leased()
                return all(
                    doc["status"] == "pending" and doc["lease_until"] > first_lease for doc in docs
                )

            await eventually(renewed, timeout=10, what="the lease renewed while waiting")
            waiting = [deleted(f"waiting-{i}") for i in range(10)]
            await stage_events(db, waiting, session=None)
            assert await pending(db) == 20, "staged during the outage: waiting in the outbox"

            await broker.start()
            await eventually(drained, timeout=60, what="published after the outage")
            events = before + held + waiting
        finally:
            await relay.stop()
            await kafka.stop()
            await mongo.close()
        counts = collections.Counter(await read_event_ids(broker.bootstrap))
    expected = {str(event.event_id) for event in events}
    lost = expected - set(counts)
    duplicated = {event_id for event_id in expected if counts[event_id] > 1}
    print(
        f"\nFIGURES relay-outage expected={len(expected)} delivered={len(expected - lost)} "
        f"lost={len(lost)} duplicated={len(duplicated)}"
    )
    assert len(expected) == 30
    assert lost == set()
    assert duplicated == set()
