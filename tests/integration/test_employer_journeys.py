"""Employer journeys against real Kafka and MongoDB: sign-up, approval, posting, editing, closing,
expiry and reach — asserting the events that reach the topics."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from typer.testing import CliRunner

from hwcollab_cli.employers import app as employers_cli
from hwcollab_common.clock import FixedClock
from hwcollab_employer.app import create_app
from hwcollab_employer.settings import Settings
from hwcollab_schemas import Event, EventParseError, parse_event
from hwcollab_schemas.events import (
    EmployerAccountEmailRequested,
    EmployerApproved,
    EmployerRegistered,
    EmployerUpdated,
    NotificationBatchSent,
    NotificationSent,
    OpeningClosed,
    OpeningPosted,
    OpeningUpdated,
)
from hwcollab_schemas.topics import EMPLOYER_TOPIC, OPENING_TOPIC
from hwcollab_testing.waiting import eventually

pytestmark = pytest.mark.integration

ADMIN_TOKEN = "integration-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD = "integration passphrase"
E = TypeVar("E", bound=Event)


def settings_for(kafka_bootstrap: str, mongo_url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka_bootstrap,
        "mongodb_url": mongo_url,
        "mongodb_database": f"test_employer_{uuid.uuid4().hex[:12]}",
        "employer_approval": "manual",
        "admin_token": ADMIN_TOKEN,
        "outbox_poll_seconds": 0.1,
        "login_rate_limit": "1000/minute",
        "signup_rate_limit": "1000/hour",
        "write_rate_limit": "1000/minute",
    }
    return Settings(**(values | changes))


class TopicReader:
    """Reads the employer and opening topics from the beginning, in its own consumer group."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = AIOKafkaConsumer(
            EMPLOYER_TOPIC,
            OPENING_TOPIC,
            bootstrap_servers=bootstrap,
            group_id=f"test-employer-reader-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self.events: list[tuple[str | None, Event]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._collect())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _collect(self) -> None:
        async for record in self._consumer:
            try:
                event = parse_event(record.value, topic=record.topic)
            except EventParseError:
                continue
            self.events.append((record.key.decode() if record.key else None, event))

    def of(self, key: str, event_class: type[E]) -> list[E]:
        return [event for k, event in self.events if k == key and isinstance(event, event_class)]

    async def wait_for_account_email(
        self, email: str, kind: str
    ) -> list[EmployerAccountEmailRequested]:
        """The account emails of ``kind`` the employer service asked for, to ``email``."""

        def found() -> list[EmployerAccountEmailRequested]:
            return [
                event
                for _, event in self.events
                if isinstance(event, EmployerAccountEmailRequested)
                and getattr(event.payload, "email", None) == email
                and getattr(event.payload, "kind", None) == kind
            ]

        async def arrived() -> bool:
            return bool(found())

        await eventually(arrived, timeout=45, what=f"a {kind} email to {email}")
        return found()

    async def wait_for(self, key: str, event_class: type[E], count: int = 1) -> list[E]:
        async def arrived() -> bool:
            return len(self.of(key, event_class)) >= count

        event_type = event_class.model_fields["event_type"].default
        await eventually(arrived, timeout=45, what=f"{count} {event_type} for {key}")
        return self.of(key, event_class)


@dataclass
class Running:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings


@contextlib.asynccontextmanager
async def running(settings: Settings, *, clock: FixedClock | None = None) -> AsyncIterator[Running]:
    app = create_app(settings, clock=clock)
    async with (
        LifespanManager(app, startup_timeout=60, shutdown_timeout=60),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://employer.test"
        ) as client,
    ):
        yield Running(app, client, settings)


@pytest.fixture(scope="module")
async def service(kafka_bootstrap: str, mongo_url: str) -> AsyncIterator[Running]:
    async with running(settings_for(kafka_bootstrap, mongo_url)) as started:
        yield started


@pytest.fixture(scope="module")
async def reader(kafka_bootstrap: str) -> AsyncIterator[TopicReader]:
    topic_reader = TopicReader(kafka_bootstrap)
    await topic_reader.start()
    yield topic_reader
    await topic_reader.stop()


def signup(email: str, *, zip_code: str = "01608", city: str = "Worcester") -> dict[str, Any]:
    return {
        "organization_name": f"Care Partners {email.split('@')[0]}",
        "contact_email": email,
        "password": PASSWORD,
        "description": "Care coordination and management.",
        "address": {"city": city, "state": "MA", "zip": zip_code},
        "settings": ["medical"],
    }


def opening(**changes: Any) -> dict[str, Any]:
    return {
        "title": "RN Care Manager",
        "role": "nurse_care_manager",
        "setting": "medical",
        "required_credentials": ["rn"],
        "employment_type": "full_time",
        "zip": "01608",
        "pay_min": 38,
        "pay_max": 46,
        "description": "Coordinate care for adults.",
        "apply_url": "https://care.example/jobs/1",
    } | changes


async def register(
    client: httpx.AsyncClient, email: str, **kwargs: Any
) -> tuple[str, dict[str, str]]:
    # As an operator: verified at once (the verified sign-up has journeys of its own).
    created = await client.post("/api/admin/employers", json=signup(email, **kwargs), headers=ADMIN)
    assert created.status_code == 201, created.text
    token = await client.post("/api/auth/token", json={"email": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return created.json()["employer_id"], {
        "Authorization": f"Bearer {token.json()['access_token']}"
    }


def unique_email(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@care.example"


async def test_pending_employer_is_announced_once_approved(
    service: Running, reader: TopicReader
) -> None:
    client = service.client
    employer_id, headers = await register(client, unique_email("pending"))
    posted = await client.post("/api/openings", headers=headers, json=opening())
    assert posted.status_code == 201, posted.text
    opening_id = posted.json()["opening_id"]
    assert uuid.UUID(opening_id).version == 4

    [registered] = await reader.wait_for(employer_id, EmployerRegistered)
    assert registered.payload.status == "pending"
    [announced] = await reader.wait_for(opening_id, OpeningPosted)
    assert announced.payload.employer_approved is False
    assert announced.payload.organization_name.startswith("Care Partners pending-")
    assert (announced.payload.city, announced.payload.state) == ("Worcester", "MA")
    assert announced.payload.lat == pytest.approx(42.26, abs=0.05)
    assert (await client.get("/api/openings", params={"zip": "01608"})).json()["total"] == 0

    approved = await client.post(f"/api/admin/employers/{employer_id}/approve", headers=ADMIN)
    assert approved.json() == {"employer_id": employer_id, "status": "approved"}
    [approval] = await reader.wait_for(employer_id, EmployerApproved)
    assert approval.payload.status == "approved"
    [updated] = await reader.wait_for(opening_id, OpeningUpdated)
    assert updated.payload.employer_approved is True
    assert updated.payload.version == 2
    board = (await client.get("/api/openings", params={"zip": "01608"})).json()
    assert opening_id in [item["opening_id"] for item in board["results"]]


async def test_opening_lifecycle_publishes_posted_updated_closed(
    service: Running, reader: TopicReader
) -> None:
    client = service.client
    employer_id, headers = await register(client, unique_email("lifecycle"))
    await client.post(f"/api/admin/employers/{employer_id}/approve", headers=ADMIN)
    opening_id = (await client.post("/api/openings", headers=headers, json=opening())).json()[
        "opening_id"
    ]
    edited = await client.patch(
        f"/api/openings/{opening_id}", headers=headers, json={"title": "Nurse Care Manager II"}
    )
    assert edited.status_code == 200, edited.text
    closed = await client.post(f"/api/openings/{opening_id}/close", headers=headers)
    assert closed.json()["status"] == "closed"

    [posted] = await reader.wait_for(opening_id, OpeningPosted)
    [updated] = await reader.wait_for(opening_id, OpeningUpdated)
    [closing] = await reader.wait_for(opening_id, OpeningClosed)
    assert posted.payload.employer_approved is True
    assert (updated.payload.title, updated.payload.version) == ("Nurse Care Manager II", 2)
    assert (closing.payload.reason, closing.payload.version) == ("closed", 3)
    assert [e.event_type for e in reader.of(opening_id, Event)] == [
        "opening.posted",
        "opening.updated",
        "opening.closed",
    ]
    board = (await client.get("/api/openings", params={"zip": "01608"})).json()
    assert opening_id not in [item["opening_id"] for item in board["results"]]
    directory = (
        await client.get("/api/directory", params={"zip": "01608", "q": "lifecycle"})
    ).json()
    assert directory["results"][0]["open_openings"] == 0


async def test_profile_changes_publish_employer_updated(
    service: Running, reader: TopicReader
) -> None:
    client = service.client
    employer_id, headers = await register(client, unique_email("profile"))
    changed = await client.patch(
        "/api/employers/me",
        headers=headers,
        json={"description": "Now also in Leominster.", "settings": ["medical", "social_service"]},
    )
    assert changed.status_code == 200, changed.text
    [updated] = await reader.wait_for(employer_id, EmployerUpdated)
    assert updated.payload.description == "Now also in Leominster."
    assert updated.payload.settings == ("medical", "social_service")
    assert updated.payload.version == 2
    assert updated.payload.status == "pending"


async def test_another_employer_cannot_touch_an_opening(service: Running) -> None:
    client = service.client
    owner_id, owner = await register(client, unique_email("owner"))
    _, other = await register(client, unique_email("other"))
    opening_id = (await client.post("/api/openings", headers=owner, json=opening())).json()[
        "opening_id"
    ]
    answers = {
        "patch": await client.patch(
            f"/api/openings/{opening_id}", headers=other, json={"title": "x"}
        ),
        "close": await client.post(f"/api/openings/{opening_id}/close", headers=other),
        "stats": await client.get(f"/api/openings/{opening_id}/stats", headers=other),
        "anonymous close": await client.post(f"/api/openings/{opening_id}/close"),
        "employer approves": await client.post(
            f"/api/admin/employers/{owner_id}/approve", headers=other
        ),
    }
    # The owner awaits approval (manual mode): its opening is public nowhere, so another
    # employer gets the 404 of an unknown id, not a 403 that says it exists.
    assert {name: r.status_code for name, r in answers.items()} == {
        "patch": 404,
        "close": 404,
        "stats": 404,
        "anonymous close": 401,
        "employer approves": 401,
    }
    mine = await client.get("/api/employers/me/openings", headers=owner)
    assert mine.json()[0]["status"] == "open"
    assert mine.json()[0]["version"] == 1


async def test_reach_counts_each_event_once_under_redelivery(
    service: Running, kafka_bootstrap: str
) -> None:
    client = service.client
    employer_id, headers = await register(client, unique_email("reach"))
    await client.post(f"/api/admin/employers/{employer_id}/approve", headers=ADMIN)
    first = (await client.post("/api/openings", headers=headers, json=opening())).json()
    second = (await client.post("/api/openings", headers=headers, json=opening())).json()

    def sent(subscriber_id: str, *opening_ids: str) -> NotificationSent:
        now = datetime.now(UTC)
        return NotificationSent.create(
            {
                "message_id": f"<{uuid.uuid4()}@hwcollab.example>",
                "subscriber_id": subscriber_id,
                "kind": "digest",
                "opening_ids": list(opening_ids),
                "sent_at": now,
            },
            producer="notifier",
            occurred_at=now,
        )

    a, b = f"sub-{uuid.uuid4().hex[:8]}", f"sub-{uuid.uuid4().hex[:8]}"
    once = sent(a, first["opening_id"])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    event: Event
    try:
        for event in (
            once,
            once,  # redelivered: counted once
            sent(b, *[first["opening_id"], second["opening_id"]]),
        ):
            await producer.send_and_wait(event.topic, event.to_bytes(), key=event.key.encode())
    finally:
        await producer.stop()

    async def counted() -> bool:
        stats = await client.get(f"/api/openings/{first['opening_id']}/stats", headers=headers)
        notified: int = stats.json()["notified"]
        return notified >= 2

    await eventually(counted, timeout=60, what="reach of both subscribers counted")
    first_stats = await client.get(f"/api/openings/{first['opening_id']}/stats", headers=headers)
    second_stats = await client.get(f"/api/openings/{second['opening_id']}/stats", headers=headers)
    assert first_stats.json() == {"opening_id": first["opening_id"], "notified": 2}
    assert second_stats.json()["notified"] == 1

    # A batch of emails counts each of its pairs once (an email naming an opening twice too),
    # also when it is redelivered.
    c, d = f"sub-{uuid.uuid4().hex[:8]}", f"sub-{uuid.uuid4().hex[:8]}"
    batch = NotificationBatchSent.create(
        {
            "batch_id": str(uuid.uuid4()),
            "sent": [
                sent(c, first["opening_id"]).payload,
                sent(c, second["opening_id"]).payload,
                sent(d, first["opening_id"], first["opening_id"]).payload,
            ],
        },
        producer="notifier",
        occurred_at=datetime.now(UTC),
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for event in (batch, batch):
            await producer.send_and_wait(event.topic, event.to_bytes(), key=event.key.encode())
    finally:
        await producer.stop()

    async def batch_counted() -> bool:
        stats = await client.get(f"/api/openings/{second['opening_id']}/stats", headers=headers)
        notified: int = stats.json()["notified"]
        return notified >= 2

    await eventually(batch_counted, timeout=60, what="reach from the batch counted")
    first_stats = await client.get(f"/api/openings/{first['opening_id']}/stats", headers=headers)
    second_stats = await client.get(f"/api/openings/{second['opening_id']}/stats", headers=headers)
    assert first_stats.json()["notified"] == 4
    assert second_stats.json()["notified"] == 2


async def test_openings_close_when_they_expire(
    kafka_bootstrap: str, mongo_url: str, reader: TopicReader
) -> None:
    clock = FixedClock(datetime.now(UTC))
    settings = settings_for(
        kafka_bootstrap, mongo_url, employer_approval="auto", opening_expiry_interval_seconds=0.2
    )
    async with running(settings, clock=clock) as started:
        client = started.client
        email = unique_email("expiry")
        _, headers = await register(client, email)
        expires_at = (clock.now() + timedelta(days=2)).isoformat()
        opening_id = (
            await client.post("/api/openings", headers=headers, json=opening(expires_at=expires_at))
        ).json()["opening_id"]
        await reader.wait_for(opening_id, OpeningPosted)
        assert reader.of(opening_id, OpeningClosed) == []

        clock.advance(timedelta(days=2, minutes=1))
        [closed] = await reader.wait_for(opening_id, OpeningClosed)
        assert closed.payload.reason == "expired"
        assert (await client.get("/api/employers/me", headers=headers)).status_code == 401
        token = await client.post("/api/auth/token", json={"email": email, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        mine = (await client.get("/api/employers/me/openings", headers=headers)).json()
        assert (mine[0]["status"], mine[0]["close_reason"]) == ("closed", "expired")


async def test_operator_approves_with_the_cli(
    kafka_bootstrap: str, mongo_url: str, reader: TopicReader
) -> None:
    settings = settings_for(kafka_bootstrap, mongo_url)
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started, timeout=60, what="employer server started")
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        # Generous timeout: the machine running the suite may be busy (Argon2 and transactions).
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            employer_id, _ = await register(client, unique_email("cli"))
            runner = CliRunner()
            env = {"EMPLOYER_PUBLIC_URL": url, "ADMIN_TOKEN": ADMIN_TOKEN}
            listed = await asyncio.to_thread(runner.invoke, employers_cli, ["pending"], env=env)
            result = await asyncio.to_thread(
                runner.invoke, employers_cli, ["approve", employer_id], env=env
            )
            refused = await asyncio.to_thread(
                runner.invoke,
                employers_cli,
                ["approve", employer_id],
                env={**env, "ADMIN_TOKEN": "wrong-token"},
            )
            me = await client.get(f"/api/employers/{employer_id}")
        assert employer_id[:8] in listed.output
        assert result.exit_code == 0, result.output
        assert "approved" in result.output
        assert refused.exit_code == 1
        assert me.status_code == 200
        await reader.wait_for(employer_id, EmployerApproved)
    finally:
        server.should_exit = True
        await serving


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the form carries a CSRF token"
    return match.group(1)


async def test_pages_journey_sign_up_post_and_see_reach(
    service: Running, reader: TopicReader
) -> None:
    client = service.client
    email = unique_email("pages")
    page = await client.get("/signup")
    signed_up = await client.post(
        "/signup",
        data={
            "csrf_token": _csrf(page.text),
            "organization_name": "Pages Care Partners",
            "contact_email": email,
            "password": PASSWORD,
            "city": "Worcester",
            "state": "MA",
            "zip": "01608",
            "settings": ["medical"],
        },
    )
    assert signed_up.status_code == 202  # "Check your inbox"
    [asked] = await reader.wait_for_account_email(email, "verify_signup")
    link = httpx.URL(str(asked.payload.url))
    form = await client.get(f"{link.path}?{link.query.decode()}")
    token = link.params["token"]
    confirmed = await client.post(
        "/verify-email", data={"csrf_token": _csrf(form.text), "token": token}
    )
    assert confirmed.status_code == 303
    dashboard = await client.get("/dashboard")
    assert "Awaiting approval" in dashboard.text  # manual approval, after verification

    form = await client.get("/dashboard/openings/new")
    posted = await client.post(
        "/dashboard/openings/new",
        data={
            "csrf_token": _csrf(form.text),
            "action": "save",
            "title": "Care Coordinator II",
            "role": "care_coordinator",
            "setting": "medical",
            "employment_type": "part_time",
            "zip": "01608",
            "pay_period": "hour",
            "apply_url": "https://pages.example/jobs/7",
        },
    )
    assert posted.status_code == 303
    opening_id = posted.headers["location"].rsplit("=", 1)[1]
    [announced] = await reader.wait_for(opening_id, OpeningPosted)
    assert announced.payload.title == "Care Coordinator II"
    assert announced.payload.organization_name == "Pages Care Partners"
    assert announced.payload.employer_approved is False

    dashboard = await client.get("/dashboard")
    assert f'id="opening-{opening_id}"' in dashboard.text
    assert 'data-notified="0"' in dashboard.text


async def test_verified_sign_up_and_password_reset_over_the_topics(
    service: Running, reader: TopicReader
) -> None:
    """Sign-up answers alike for a new and a taken address; the emails are asked of the notifier
    on the employer topic; the account is in no other event until verified (and still pending
    under manual approval); a reset link ends the access token and leaves the API key."""
    client = service.client
    taken_email, new_email = unique_email("taken"), unique_email("new")
    taken_id, taken_auth = await register(client, taken_email)
    taken = await client.post("/api/employers", json=signup(taken_email))
    new = await client.post("/api/employers", json=signup(new_email))
    assert (taken.status_code, taken.json()) == (new.status_code, new.json())
    assert new.status_code == 202
    [already] = await reader.wait_for_account_email(taken_email, "already_registered")
    assert already.key == taken_id
    [verify] = await reader.wait_for_account_email(new_email, "verify_signup")
    new_id = verify.payload.employer_id
    unverified = await client.post(
        "/api/auth/token", json={"email": new_email, "password": PASSWORD}
    )
    assert unverified.status_code == 403
    assert reader.of(new_id, EmployerRegistered) == []
    token = httpx.URL(str(verify.payload.url)).params["token"]
    verified = await client.post("/api/employers/verify", json={"token": token})
    assert verified.json() == {"employer_id": new_id, "status": "pending"}
    [registered] = await reader.wait_for(new_id, EmployerRegistered)
    assert registered.payload.status == "pending"

    key = await client.post("/api/employers/me/api-keys", headers=taken_auth, json={"name": "ats"})
    by_key = {"Authorization": f"Bearer {key.json()['api_key']}"}
    asked = await client.post("/api/employers/password-reset", json={"email": taken_email})
    assert asked.status_code == 202
    [reset] = await reader.wait_for_account_email(taken_email, "password_reset")
    assert reset.payload.expires_at is not None
    changed = await client.post(
        "/api/employers/password-reset/confirm",
        json={
            "token": httpx.URL(str(reset.payload.url)).params["token"],
            "password": "a new integration passphrase",
        },
    )
    assert changed.status_code == 200
    assert (await client.get("/api/employers/me", headers=taken_auth)).status_code == 401
    assert (await client.get("/api/employers/me", headers=by_key)).status_code == 200
    stored = await service.app.state.runtime.db["password_resets"].count_documents(
        {"employer_id": taken_id}
    )
    assert stored == 0


async def test_a_restart_keeps_accounts_and_openings(kafka_bootstrap: str, mongo_url: str) -> None:
    # A group of its own: two members of one group in one process (this app and the module's
    # service) keep rebalancing on the embedded broker, and startup waits for the assignment.
    settings = settings_for(
        kafka_bootstrap,
        mongo_url,
        employer_approval="auto",
        consumer_group_suffix=f"-restart-{uuid.uuid4().hex[:8]}",
    )
    email = unique_email("restart")
    async with running(settings) as first:
        _, headers = await register(first.client, email)
        posted = await first.client.post("/api/openings", headers=headers, json=opening())
        opening_id = posted.json()["opening_id"]
    async with running(settings) as second:  # same database: indexes exist already
        token = await second.client.post(
            "/api/auth/token", json={"email": email, "password": PASSWORD}
        )
        found = await second.client.get("/api/openings", params={"zip": "01608"})
    assert token.status_code == 200
    assert [item["opening_id"] for item in found.json()["results"]] == [opening_id]
