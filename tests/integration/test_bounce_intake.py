"""Bounces and complaints that come back as email, end to end: the subscriber service and the
notifier in-process against real Kafka, MongoDB and the SMTP sink; a person signs up, an alert
goes out through the sink with its own bounce address, and a report about it is delivered over
SMTP to the notifier's bounce listener. A hard bounce marks the person bounced and they get
nothing more; a soft bounce counts and does not; a spam complaint unsubscribes; hostile input is
refused or ignored and counted, never acted on."""

from __future__ import annotations

import asyncio
import smtplib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from typer.testing import CliRunner

from hwcollab_cli.main import app as cli_app
from hwcollab_common.tokens import Purpose
from hwcollab_notifier.app import create_app as create_notifier
from hwcollab_notifier.settings import Settings as NotifierSettings
from hwcollab_schemas.events import OpeningDetails, OpeningPosted
from hwcollab_schemas.topics import NOTIFICATION_TOPIC, SUBSCRIBER_GROUP
from hwcollab_subscriber.app import create_app as create_subscriber
from hwcollab_subscriber.handlers import Links
from hwcollab_subscriber.settings import Settings as SubscriberSettings
from hwcollab_testing.kafka import fresh_notifier_groups, topic_ends
from hwcollab_testing.plugin import SmtpSink
from hwcollab_testing.processes import free_port
from hwcollab_testing.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "test-admin-token-for-the-notifier"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
BOUNCE_DOMAIN = "bounces.hwcollab.test"
KEY = "bounce-intake-test-link-signing-key-" + "x" * 20
REPORTS = Path(__file__).parents[2] / "services/notifier/tests/reports"
WORCESTER = (42.2626, -71.8023)
Document = dict[str, Any]


class World:
    def __init__(
        self,
        *,
        subscribers: httpx.AsyncClient,
        notifier: httpx.AsyncClient,
        links: Links,
        subscriber_db: AsyncDatabase[Document],
        producer: AIOKafkaProducer,
        sink: SmtpSink,
        bounce_port: int,
        notifier_url: str,
        notifier_db: AsyncDatabase[Document],
    ) -> None:
        self.subscribers = subscribers
        self.notifier = notifier
        self.links = links
        self.subscriber_db = subscriber_db
        self.producer = producer
        self.sink = sink
        self.bounce_port = bounce_port
        self.notifier_url = notifier_url
        self.notifier_db = notifier_db  # read only to wait for the notifier, never to assert on
        self.run = uuid.uuid4().hex[:6]

    async def cli(self, *args: str) -> str:
        """``hwcollab …`` against the notifier over HTTP, as an operator runs it."""
        common = ["--notifier-url", self.notifier_url, "--admin-token", TOKEN]
        result = await asyncio.to_thread(CliRunner().invoke, cli_app, [*args, *common])
        assert result.exit_code == 0, result.output
        return result.output

    async def subscribed(self, name: str) -> tuple[str, str]:
        """A confirmed immediate subscriber near Worcester, welcomed: (id, address)."""
        address = f"{name}-{self.run}@example.org"
        body = {
            "email": address,
            "first_name": "Ana",
            "roles": ["care_coordination"],
            "settings": ["medical"],
            "zip": "01608",
            "radius_miles": 30,
            "frequency": "immediate",
        }
        answer = await self.subscribers.post("/api/subscribers", json=body)
        assert answer.status_code == 202, answer.text
        found: list[Document] = []

        async def stored() -> bool:
            document = await self.subscriber_db["subscribers"].find_one({"email": address})
            found[:] = [document] if document is not None else []
            return bool(found)

        await eventually(stored, timeout=30, what=f"{address} signed up")
        subscriber_id = str(found[0]["_id"])
        confirm = await self.subscribers.post(
            "/api/subscribers/confirm",
            json={"token": self.links.token(Purpose.CONFIRM, subscriber_id)},
        )
        assert confirm.status_code == 200, confirm.text
        await eventually(
            lambda: any(
                "welcome" in str(m.message.get("X-HWcollab-Kind", ""))
                for m in self.sink.messages_to(address)
            ),
            timeout=60,
            what=f"welcome email to {address}",
        )
        return subscriber_id, address

    async def post_opening(self, name: str) -> str:
        now = datetime.now(UTC)
        opening_id = f"{name}-{self.run}-{uuid.uuid4().hex[:4]}"
        details = OpeningDetails(
            opening_id=opening_id,
            employer_id=f"employer-{self.run}",
            version=1,
            organization_name="Acme Care",
            employer_approved=True,
            title=f"Care Coordinator ({name})",
            role="care_coordinator",
            setting="medical",
            employment_type="full_time",
            zip="01609",
            lat=WORCESTER[0] + 0.01,
            lon=WORCESTER[1],
            apply_url="https://acme.example/apply",
            posted_at=now,
            expires_at=now + timedelta(days=30),
        )
        event = OpeningPosted.create(details, producer="test", occurred_at=now)
        await self.producer.send_and_wait(event.topic, event.to_bytes(), key=event.key.encode())
        return opening_id

    async def alert(self, address: str, opening_id: str) -> tuple[str, EmailMessage]:
        """The alert about ``opening_id`` as the sink received it: (envelope sender, message)."""
        found: list[tuple[str, EmailMessage]] = []

        def arrived() -> bool:
            found[:] = [
                (m.mail_from, m.message)
                for m in self.sink.messages_to(address)
                if opening_id in str(m.message.get("X-HWcollab-Opening-Ids", ""))
            ]
            return bool(found)

        await eventually(arrived, timeout=60, what=f"alert about {opening_id} to {address}")
        return found[0]

    def report(self, name: str, *, message_id: str, return_path: str, recipient: str) -> bytes:
        text = (REPORTS / name).read_text()
        for placeholder, value in {
            "@@MESSAGE_ID@@": message_id,
            "@@RETURN_PATH@@": return_path,
            "@@RECIPIENT@@": recipient,
            "@@FEEDBACK_ADDRESS@@": f"fbl@{BOUNCE_DOMAIN}",
        }.items():
            text = text.replace(placeholder, value)
        return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()

    async def deliver(self, raw: bytes, *, to: str) -> tuple[int, bytes]:
        """Deliver a report to the bounce listener over SMTP, as a relay would (null sender);
        the server's answer to DATA."""

        def send() -> tuple[int, bytes]:
            with smtplib.SMTP("127.0.0.1", self.bounce_port, timeout=30) as client:
                client.ehlo("relay.test")
                client.mail("<>")
                code, reply = client.rcpt(to)
                if code != 250:
                    return code, reply
                return client.data(raw)

        return await asyncio.to_thread(send)

    async def status_of(self, subscriber_id: str) -> str:
        document = await self.subscriber_db["subscribers"].find_one({"_id": subscriber_id})
        assert document is not None
        return str(document["status"])

    async def suppressed(self) -> set[str]:
        answer = await self.notifier.get(
            "/api/admin/suppressions", params={"limit": 1000}, headers=ADMIN
        )
        return {item["email"] for item in answer.json()["items"]}

    async def bounces(self) -> list[Document]:
        answer = await self.notifier.get("/api/admin/bounces", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        items: list[Document] = answer.json()["items"]
        return items


@asynccontextmanager
async def served(app: FastAPI, on_a_port: bool) -> AsyncIterator[str]:
    """The base URL of ``app`` (already started): over a real port when ``on_a_port`` (for the
    operator CLI), else the in-process one."""
    if not on_a_port:
        yield "http://notifier"
        return
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, timeout=30, what="notifier on HTTP")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


@asynccontextmanager
async def bounce_world(
    kafka_bootstrap: str,
    mongo_url: str,
    smtp_sink: SmtpSink,
    *,
    label: str,
    serve_http: bool,
    **notifier: Any,
) -> AsyncIterator[World]:
    """The subscriber service and a notifier (``notifier`` settings on top of the common ones) in
    consumer groups of their own, on a fresh database each; with ``serve_http`` the notifier also
    listens on a real port, for the operator CLI."""
    suffix = await fresh_notifier_groups(kafka_bootstrap, label=label)
    await topic_ends(kafka_bootstrap, (NOTIFICATION_TOPIC,), group_id=SUBSCRIBER_GROUP + suffix)
    common: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka_bootstrap,
        "mongodb_url": mongo_url,
        "link_signing_key": KEY,
        "outbox_poll_seconds": 0.1,
        "consumer_group_suffix": suffix,
        "admin_token": TOKEN,
    }
    subscriber_db = f"test_subscriber_{uuid.uuid4().hex[:10]}"
    subscriber_app = create_subscriber(
        SubscriberSettings(
            **common,
            mongodb_database=subscriber_db,
            signup_rate_limit="10000/minute",
            signup_address_rate_limit="10000/minute",
        )
    )
    notifier_app = create_notifier(
        NotifierSettings(
            **common,
            mongodb_database=f"test_notifier_{uuid.uuid4().hex[:12]}",
            smtp_host=smtp_sink.host,
            smtp_port=smtp_sink.port,
            index_refresh_seconds=1.0,
            digest_interval_seconds=3600,
            smtp_max_attempts=2,
            smtp_backoff_base_seconds=0.05,
            soft_bounce_limit=2,
            **notifier,
        )
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(mongo_url, tz_aware=True)
    try:
        async with (
            LifespanManager(subscriber_app, startup_timeout=90, shutdown_timeout=60),
            LifespanManager(notifier_app, startup_timeout=90, shutdown_timeout=60),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=subscriber_app),
                base_url="http://subscriber.test",
            ) as subscribers,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=notifier_app), base_url="http://notifier"
            ) as notifier_http,
        ):

            async def ready() -> bool:
                return (await notifier_http.get("/readyz")).status_code == 200

            await eventually(ready, timeout=60, what="notifier ready")
            async with served(notifier_app, serve_http) as notifier_url:
                yield World(
                    subscribers=subscribers,
                    notifier=notifier_http,
                    links=subscriber_app.state.links,
                    subscriber_db=mongo[subscriber_db],
                    producer=producer,
                    sink=smtp_sink,
                    bounce_port=int(notifier.get("bounce_listen_port", 0)),
                    notifier_url=notifier_url,
                    notifier_db=notifier_app.state.runtime.db,
                )
    finally:
        await producer.stop()
        await mongo.close()


@pytest.fixture(scope="module")
async def world(kafka_bootstrap: str, mongo_url: str, smtp_sink: SmtpSink) -> AsyncIterator[World]:
    async with bounce_world(
        kafka_bootstrap,
        mongo_url,
        smtp_sink,
        label="bounces",
        serve_http=True,
        lag_sample_seconds=5.0,
        bounce_domain=BOUNCE_DOMAIN,
        bounce_listen_host="127.0.0.1",
        bounce_listen_port=free_port(),
    ) as world:
        yield world


async def test_a_hard_bounce_marks_the_subscriber_bounced_and_stops_their_mail(
    world: World,
) -> None:
    subscriber_id, address = await world.subscribed("hard")
    control_id, control = await world.subscribed("control")
    opening = await world.post_opening("first")
    return_path, alert = await world.alert(address, opening)
    await world.alert(control, opening)
    assert return_path.startswith("bounces+")
    assert return_path.endswith("@" + BOUNCE_DOMAIN)

    dsn = world.report(
        "postfix_5.1.1.eml",
        message_id=str(alert["Message-ID"]),
        return_path=return_path,
        recipient=address,
    )
    code, reply = await world.deliver(dsn, to=return_path)
    assert code == 250, reply

    async def bounced() -> bool:
        return await world.status_of(subscriber_id) == "bounced"

    await eventually(bounced, timeout=60, what=f"{address} marked bounced")
    assert address in await world.suppressed()
    (record,) = [b for b in await world.bounces() if b.get("subscriber_id") == subscriber_id]
    assert (record["outcome"], record["status"], record["email"]) == ("hard", "5.1.1", address)
    listed = await world.cli("bounces", "list", "--outcome", "hard", "--json")
    assert record["bounce_id"] in listed
    shown = await world.cli("bounces", "show", record["bounce_id"])
    assert "User unknown in virtual" in shown
    assert "5.1.1" in shown

    before = len(world.sink.messages_to(address))
    second = await world.post_opening("second")
    await world.alert(control, second)
    assert len(world.sink.messages_to(address)) == before
    assert await world.status_of(control_id) == "active"


async def test_a_soft_bounce_counts_and_the_limit_of_them_counts_as_hard(world: World) -> None:
    subscriber_id, address = await world.subscribed("soft")
    opening = await world.post_opening("soft")
    return_path, alert = await world.alert(address, opening)
    full = world.report(
        "mailbox_full_4.2.2.eml",
        message_id=str(alert["Message-ID"]),
        return_path=return_path,
        recipient=address,
    )
    for _ in range(2):  # the same report twice is still one soft bounce
        code, _reply = await world.deliver(full, to=return_path)
        assert code == 250

    records = [b for b in await world.bounces() if b.get("subscriber_id") == subscriber_id]
    assert [(b["outcome"], b["soft_count"]) for b in records] == [("soft", 1), ("soft", 1)]
    assert address not in await world.suppressed()
    assert await world.status_of(subscriber_id) == "active"
    return_path, alert = await world.alert(address, await world.post_opening("after-soft"))

    # The second soft bounce (of another email) within SOFT_BOUNCE_DAYS counts as hard.
    again = world.report(
        "mailbox_full_4.2.2.eml",
        message_id=str(alert["Message-ID"]),
        return_path=return_path,
        recipient=address,
    )
    code, _reply = await world.deliver(again, to=return_path)
    assert code == 250

    async def bounced() -> bool:
        return await world.status_of(subscriber_id) == "bounced"

    await eventually(bounced, timeout=60, what=f"{address} bounced after two soft bounces")
    assert address in await world.suppressed()
    latest = next(b for b in await world.bounces() if b.get("subscriber_id") == subscriber_id)
    assert (latest["outcome"], latest["soft_count"]) == ("hard", 2)


async def test_a_spam_complaint_unsubscribes(world: World) -> None:
    subscriber_id, address = await world.subscribed("complains")
    opening = await world.post_opening("complaint")
    return_path, alert = await world.alert(address, opening)
    arf = world.report(
        "arf_abuse.eml",
        message_id=str(alert["Message-ID"]),
        return_path=return_path,
        recipient=address,
    )
    # Feedback loops report to a fixed address: the token is found in the report.
    code, reply = await world.deliver(arf, to=f"fbl@{BOUNCE_DOMAIN}")
    assert code == 250, reply

    async def unsubscribed() -> bool:
        return await world.status_of(subscriber_id) == "unsubscribed"

    await eventually(unsubscribed, timeout=60, what=f"{address} unsubscribed")
    assert address in await world.suppressed()

    forgiven = await world.cli("bounces", "forgive", address)
    assert f"{address} no longer suppressed; 1 bounce(s) forgiven" in forgiven
    assert address not in await world.suppressed()

    # Forgiven, the address is mailed again: the person signs up again, the confirmation
    # arrives, and so does the next opening.
    before = len(world.sink.messages_to(address))
    again = await world.subscribers.post(
        "/api/subscribers",
        json={
            "email": address,
            "roles": ["care_coordination"],
            "settings": ["medical"],
            "zip": "01608",
            "radius_miles": 30,
            "frequency": "immediate",
        },
    )
    assert again.status_code == 202, again.text
    await eventually(
        lambda: len(world.sink.messages_to(address)) > before,
        timeout=60,
        what=f"a confirmation email to the forgiven {address}",
    )
    confirm = await world.subscribers.post(
        "/api/subscribers/confirm",
        json={"token": world.links.token(Purpose.CONFIRM, subscriber_id)},
    )
    assert confirm.status_code == 200, confirm.text

    async def active_again() -> bool:
        known = await world.notifier_db["subscribers"].find_one({"_id": subscriber_id})
        return known is not None and known.get("status") == "active"

    await eventually(active_again, timeout=60, what="the notifier sees the person active again")
    await world.alert(address, await world.post_opening("forgiven"))


async def test_hostile_reports_are_refused_or_counted_never_acted_on(world: World) -> None:
    subscriber_id, address = await world.subscribed("target")
    opening = await world.post_opening("target")
    return_path, alert = await world.alert(address, opening)
    before = {b["bounce_id"] for b in await world.bounces()}

    def dsn(**changes: str) -> bytes:
        fields = {
            "message_id": str(alert["Message-ID"]),
            "return_path": return_path,
            "recipient": address,
        }
        return world.report("postfix_5.1.1.eml", **(fields | changes))

    # Recipients: another domain, a forged or tampered token.
    local, _, _ = return_path.partition("@")
    tampered = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + BOUNCE_DOMAIN
    for recipient in (
        "postmaster@elsewhere.example",
        tampered,
        "bounces+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@" + BOUNCE_DOMAIN,
    ):
        code, _reply = await world.deliver(dsn(), to=recipient)
        assert code == 550, recipient
    # 20 MB: refused before it is stored.
    huge = dsn() + (b"x" * 76 + b"\r\n") * (20 * 1024 * 1024 // 78)
    code, _reply = await world.deliver(huge, to=return_path)
    assert code == 552
    # Stored and counted, never acted on: junk, a Message-ID that is not the token's (a real
    # message of another person's, say), a report naming no message.
    for raw, outcome in (
        (b"Subject: hi\r\n\r\nnot a report\r\n", "malformed"),
        (dsn(message_id="<someone-else@hwcollab.example>"), "unknown_message"),
        (dsn().split(b"Content-Description: Undelivered Message Headers")[0], "unknown_message"),
    ):
        code, reply = await world.deliver(raw, to=return_path)
        assert code == 250, reply
        new = [b for b in await world.bounces() if b["bounce_id"] not in before]
        assert new[0]["outcome"] == outcome
        before.add(new[0]["bounce_id"])
    # A header smuggled into the token: refused, or read as a plain address of the domain,
    # and then the report (which names no bounce address of ours) names no message of ours.
    smuggling = dsn(return_path="someone@elsewhere.example")
    code, _reply = await world.deliver(smuggling, to=f"{local}%0d%0aBcc:x@{BOUNCE_DOMAIN}")
    assert code in (250, 550)
    smuggled = [b for b in await world.bounces() if b["bounce_id"] not in before]
    assert all(b["outcome"] == "unknown_message" for b in smuggled), smuggled
    assert address not in await world.suppressed()
    assert await world.status_of(subscriber_id) == "active"
    metrics = (await world.notifier.get("/metrics")).text
    assert 'hwcollab_notifier_bounces_total{outcome="unknown_message"}' in metrics
