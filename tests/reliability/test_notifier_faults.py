"""Faults on the notifier's sending path, with real processes: nothing lost, nothing sent twice.

1. A notifier SIGKILLed in the middle of a burst of 10,000 opening emails, then started again:
   every (subscriber, opening) email arrives. The kill happens while the sink holds back the 250
   reply to one message, so the documented window (SMTP accepted the emails of a batch, the
   process died before settling it) is open for certain: the emails of the batch in flight, and
   no others, arrive twice; provably from the window: each such message record was claimed by the
   killed process and last by the restarted one, and both copies carry the same Message-ID.
2. The SMTP server away for 30 s — connections refused, then a 421 greeting, then 421 to every
   MAIL FROM — and back: everything arrives once, no ledger row fails, no dead letter. A
   preferences link asked for in the outage arrives afterwards, once, and the same person's next
   change, right behind the request on their partition, is applied during the outage.

A process killed inside a MongoDB transaction leaves it open, and writers of the documents it
touched wait until the server ends it, after a minute idle (mongod does so on its own; the
``TransactionReaper`` of each test database server makes SecantusDB do the same): on a slow
machine, where the sweeper is often mid-transaction, the restarted notifier may spend that
minute.

Each test prints a ``FIGURES`` line (expected, delivered, lost, duplicated).

The burst is ``NOTIFIER_FAULT_SUBSCRIBERS`` × ``NOTIFIER_FAULT_OPENINGS`` immediate emails (100 ×
100 = 10,000 by default): subscribers arrive as events, each applied in its own transaction and
welcomed by email, about 6 a second on the test database, so 10,000 subscribers × 1 opening would
spend half an hour registering; 100 × 100 gives the same 10,000 deliveries in a fraction of that
(each opening is one delivery job of 100 readers).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from hwcollab_testing.events import (
    Place,
    Publish,
    event_publisher,
    manage_link_requested,
    posted,
    registered,
)
from hwcollab_testing.kafka import fresh_notifier_groups
from hwcollab_testing.plugin import RunningService, ServiceStarter, SmtpSink, private_mongo
from hwcollab_testing.processes import free_port
from hwcollab_testing.smtp import SmtpSinkServer
from hwcollab_testing.waiting import eventually

from .notifier_stack import (
    dead_letters_containing,
    figures,
    log_lines,
    mail_of,
    notifier_env,
    opening_emails,
    pairs_in,
    recipient,
    wait_ready,
)

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.slow]

SUBSCRIBERS = int(os.environ.get("NOTIFIER_FAULT_SUBSCRIBERS", "100"))
OPENINGS = int(os.environ.get("NOTIFIER_FAULT_OPENINGS", "100"))
BATCH = 500
"""``DELIVERY_BATCH_SIZE`` of the notifiers under test: the most emails one batch has in flight."""
DULUTH = Place(zip="55802", lat=46.78, lon=-92.10)
FARGO = Place(zip="58102", lat=46.88, lon=-96.79)


@pytest.fixture
def outage_sink() -> Any:
    """A sink of this test's own: stopping it must not disturb other tests' mail."""
    server = SmtpSinkServer(host="127.0.0.1", port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Burst:
    """A notifier of a test's own database that has welcomed ``emails`` (subscriber id → address)
    at ``place``; ``post_openings`` then publishes ``opening_ids`` near them."""

    run: str
    env: dict[str, str]
    database: AsyncDatabase[dict[str, Any]]
    place: Place
    emails: dict[str, str]
    opening_ids: list[str]
    now: datetime
    notifier: RunningService
    http: httpx.AsyncClient
    publish: Publish

    @property
    def expected(self) -> set[tuple[str, str]]:
        """Every (email, opening) pair that must arrive."""
        return {(email, opening) for email in self.emails.values() for opening in self.opening_ids}

    async def post_openings(self) -> None:
        for opening_id in self.opening_ids:
            await self.publish(
                posted(opening_id, employer_id=f"e-{self.run}", place=self.place, now=self.now)
            )


@dataclass(frozen=True)
class FaultStack:
    """What the fault tests run a notifier against: the shared Kafka, a MongoDB server and an
    SMTP server of the test's own (the SMTP server it can take away)."""

    kafka_bootstrap: str
    mongo_url: str
    outage_sink: SmtpSinkServer
    service_process: ServiceStarter

    @property
    def sink(self) -> SmtpSink:
        return self.outage_sink.sink

    @asynccontextmanager
    async def welcomed_subscribers(
        self,
        *,
        label: str,
        prefix: str,
        subscribers: int,
        openings: int,
        place: Place,
        welcome_timeout: float,
        **overrides: str,
    ) -> AsyncIterator[Burst]:
        """Start a notifier in groups of its own (settings ``overrides``), publish
        ``subscribers`` registrations at ``place`` and wait for every welcome email."""
        run = uuid.uuid4().hex[:8]
        database = f"test_notifier_faults_{label}_{run}"
        env = notifier_env(
            kafka_bootstrap=self.kafka_bootstrap,
            mongo_url=self.mongo_url,
            smtp=self.sink,
            database=database,
            group_suffix=await fresh_notifier_groups(self.kafka_bootstrap, label=label),
            DELIVERY_BATCH_SIZE=str(BATCH),
            **overrides,
        )
        emails = {
            f"{prefix}{i}-{run}": f"{prefix}{i}-{run}@example.org" for i in range(subscribers)
        }
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.mongo_url)
        try:
            async with (
                httpx.AsyncClient(timeout=5.0) as http,
                event_publisher(self.kafka_bootstrap) as publish,
            ):
                notifier = self.service_process("notifier", env)
                await wait_ready(http, notifier.url)
                now = datetime.now(UTC)
                for subscriber_id, email in emails.items():
                    await publish(registered(subscriber_id, email, place=place, now=now))

                async def welcomed() -> bool:
                    return len({recipient(m) for m in mail_of(self.sink, run)}) == subscribers

                await eventually(welcomed, timeout=welcome_timeout, what="every welcome email")
                yield Burst(
                    run=run,
                    env=env,
                    database=mongo[database],
                    place=place,
                    emails=emails,
                    opening_ids=[f"{label}{i}-{run}" for i in range(openings)],
                    now=now,
                    notifier=notifier,
                    http=http,
                    publish=publish,
                )
        finally:
            await mongo.close()


@pytest.fixture
def stack(
    kafka_bootstrap: str,
    tmp_path: Path,
    artifacts_dir: Path,
    outage_sink: SmtpSinkServer,
    service_process: ServiceStarter,
) -> Iterator[FaultStack]:
    # A database server of the test's own: 10,000 emails write about 40,000 documents, and on
    # the session's server, with everything earlier tests left there, that takes twice as long.
    with private_mongo(tmp_path / "mongo", artifacts_dir, label="mongo-faults") as mongo_url:
        yield FaultStack(kafka_bootstrap, mongo_url, outage_sink, service_process)


@pytest.mark.timeout(1200)  # 10,000 emails on the embedded test database take minutes
async def test_a_notifier_killed_mid_burst_and_restarted_sends_every_email_once(
    stack: FaultStack,
) -> None:
    started = time.monotonic()
    sink = stack.sink
    async with stack.welcomed_subscribers(
        label="kill",
        prefix="k",
        subscribers=SUBSCRIBERS,
        openings=OPENINGS,
        place=DULUTH,
        welcome_timeout=120,
    ) as burst:
        run, env, expected, first = burst.run, burst.env, burst.expected, burst.notifier
        messages = burst.database["messages"]
        registered_after = time.monotonic() - started
        # A quarter into the burst the sink takes a message but keeps its 250 back, and the
        # notifier is killed while it waits: the window is open for certain, not by chance.
        quarter = len(expected) // 4
        arrived = 0

        def a_quarter_in(m: Any) -> bool:
            # Sees each message once, in order of arrival: counting here keeps the sink's
            # thread from scanning everything it received on every message.
            nonlocal arrived
            if m.message["X-HWcollab-Kind"] == "immediate" and run in str(m.message["To"]):
                arrived += 1
                return arrived >= quarter
            return False

        held = sink.hold_reply(a_quarter_in)
        await burst.post_openings()

        async def under_way() -> bool:
            return held.is_set()

        async def progress() -> str:
            ledger = burst.database["ledger"]
            rows = {
                status: await ledger.count_documents({"status": status})
                for status in ("pending", "sending", "sent", "dropped", "failed")
            }
            return f"{arrived} of {quarter} opening emails arrived; ledger rows {rows}"

        # About 20-50 emails a second on the embedded test database, which the read model's
        # announcing shares with the delivery batches.
        await eventually(under_way, timeout=300, what="a quarter of the burst", explain=progress)
        first.kill()  # SIGKILL
        sink.release_reply()
        arrived_before_kill = len(opening_emails(mail_of(sink, run)))
        assert arrived_before_kill < len(expected), "killed after the burst, not during it"

        # Restarted in the same groups: Kafka expires the dead member after its session timeout
        # and the new process resumes at the committed offsets (uncommitted jobs come again).
        second = stack.service_process("notifier", env)
        await wait_ready(burst.http, second.url)

        async def all_arrived() -> bool:
            return pairs_in(opening_emails(mail_of(sink, run))).keys() >= expected

        async def explain() -> str:
            return await unsettled(messages, first=first.pid, second=second.pid) + "\n".join(
                log_lines(service.log_path) for service in (first, second)
            )

        await eventually(all_arrived, timeout=600, what="every expected email", explain=explain)

        async def settled() -> bool:
            # Nothing left to claim: no further copy can be on its way.
            return await messages.count_documents({"status": {"$ne": "sent"}}) == 0

        await eventually(
            settled, timeout=120, what="every message recorded as sent", explain=explain
        )

        received = opening_emails(mail_of(sink, run))
        got = pairs_in(received)
        result = figures("notifier_kill_restart", expected=expected, got=got)
        # Where each pair's copies arrived, read once (10,000 messages' headers are slow to parse).
        arrivals: dict[tuple[str, str], list[int]] = {}
        for position, message in enumerate(received):
            for pair in pairs_in([message]):
                arrivals.setdefault(pair, []).append(position)
        duplicated = sorted(pair for pair, n in got.items() if n > 1)
        records = {
            record["_id"]: record
            async for record in messages.find(
                {"_id": {"$in": [str(received[arrivals[p][0]]["Message-ID"]) for p in duplicated]}}
            )
        }
        window: list[tuple[str, str]] = []
        for email, opening in duplicated:
            positions = arrivals[(email, opening)]
            copies = [received[position] for position in positions]
            [message_id] = {str(m["Message-ID"]) for m in copies}  # one Message-ID for both
            record = records.get(message_id)
            assert record is not None, f"{email} {opening}: no message record"
            claimers = [int(str(c["owner"]).split(":")[1]) for c in record.get("claims", [])]
            # Sent by the killed process in its batch in flight (the first copy arrived before
            # the kill) and claimed again, after its lease, by the restarted one: the window.
            where = (
                f"{email} {opening}: copies at {positions} of which"
                f" {arrived_before_kill} arrived before the kill; claimed by {claimers}"
                f" (killed {first.pid}, restarted {second.pid}); record {record}"
            )
            assert len(copies) == 2, where
            assert positions[0] < arrived_before_kill, where
            assert claimers[0] == first.pid, where
            assert claimers[-1] == second.pid, where
            window.append((email, opening))
        dead = await dead_letters_containing(stack.kafka_bootstrap, run)
        print(
            "\n"
            + result.line(
                window_duplicates=len(window),
                dead_letters=len(dead),
                arrived_before_kill=arrived_before_kill,
                registered_s=round(registered_after),
                total_s=round(time.monotonic() - started),
            )
        )
        assert result.lost == 0
        # Only the window repeats an email, once per email of a batch in flight at the kill: the
        # delivery consumer's (DELIVERY_CONCURRENCY=1), whose one reply the sink held back, and,
        # on a slow machine where rows wait past SWEEP_STALE_SECONDS, at most one sweep's batch.
        assert result.duplicated == len(window)
        assert 1 <= len(window) <= 2 * BATCH
        assert dead == []


async def unsettled(
    messages: AsyncCollection[dict[str, Any]], *, first: int, second: int, last: int = 10
) -> str:
    """What the messages not yet sent look like (who claimed them, when, what went wrong)."""
    pids = {str(first): "killed", str(second): "restarted"}
    now = datetime.now(UTC)
    found = [
        message
        async for message in messages.find({"status": {"$ne": "sent"}}).sort("created_at", 1)
    ]
    lines = [f"{len(found)} messages not sent (the last {min(last, len(found))}), now {now:%T}:"]
    for message in found[-last:]:
        claims = [
            f"{pids.get(str(c['owner']).split(':')[1], c['owner'])}@{c['at']:%T}"
            for c in message.get("claims", [])
        ]
        lease = message.get("lease_until")
        lines.append(
            f"  {message['_id']} {message.get('kind')} {message['status']}"
            f" attempts={message.get('attempts')} claims={claims}"
            f" lease_until={lease and f'{lease:%T}'} detail={message.get('detail', '')!r}"
        )
    return "\n".join(lines) + "\n"


OUTAGE_SUBSCRIBERS = 20
OUTAGE_OPENINGS = 5
REFUSED_SECONDS = 12.0
GREETING_421_SECONDS = 10.0
MAIL_421_SECONDS = 8.0


async def test_an_smtp_outage_of_30_seconds_delays_mail_but_loses_and_repeats_none(
    stack: FaultStack,
) -> None:
    started = time.monotonic()
    sink = stack.sink
    async with stack.welcomed_subscribers(
        label="smtp",
        prefix="o",
        subscribers=OUTAGE_SUBSCRIBERS,
        openings=OUTAGE_OPENINGS,
        place=FARGO,
        welcome_timeout=60,
        # Few, quick tries per send: the outage, not the sender's own budget, must be waited out.
        SMTP_MAX_ATTEMPTS="3",
        SMTP_BACKOFF_BASE_SECONDS="0.1",
        SMTP_TIMEOUT_SECONDS="5",
        DELIVERY_MAX_ATTEMPTS="2",
    ) as burst:
        run, expected, publish, now = burst.run, burst.expected, burst.publish, burst.now
        await burst.post_openings()

        async def first_arrived() -> bool:
            return bool(opening_emails(mail_of(sink, run)))

        await eventually(first_arrived, timeout=60, what="the first opening email")
        stack.outage_sink.stop()  # connections refused, pooled ones cut
        before_outage = len(opening_emails(mail_of(sink, run)))
        outage_began = time.monotonic()
        # Someone asks for their preferences link in the outage, then changes their radius:
        # the email waits for SMTP, the change right behind it on the partition does not.
        reader_id, reader_email = next(iter(burst.emails.items()))
        await publish(manage_link_requested(reader_id, reader_email, now=now))
        change = registered(
            reader_id, reader_email, place=FARGO, now=now, version=2, radius_miles=40
        )
        await publish(change)
        subscribers = burst.database["subscribers"]

        async def change_applied() -> bool:
            found = await subscribers.find_one({"_id": reader_id}, {"radius_miles": 1})
            return found is not None and found["radius_miles"] == 40

        await eventually(
            change_applied, timeout=REFUSED_SECONDS - 2, what="the change, during the outage"
        )
        await asyncio.sleep(REFUSED_SECONDS - (time.monotonic() - outage_began))
        stack.outage_sink.greet_with_421()
        await asyncio.sleep(GREETING_421_SECONDS)
        sink.set_busy(True)  # before the port opens: no send slips in between
        stack.outage_sink.start()
        await asyncio.sleep(MAIL_421_SECONDS)
        sink.set_busy(False)
        during_outage = len(opening_emails(mail_of(sink, run))) - before_outage
        back_at = time.monotonic()

        async def all_arrived() -> bool:
            return pairs_in(opening_emails(mail_of(sink, run))).keys() >= expected

        await eventually(all_arrived, timeout=90, what="every expected email")
        caught_up_s = time.monotonic() - back_at

        def manage_links() -> list[EmailMessage]:
            return [m for m in mail_of(sink, run) if m["X-HWcollab-Kind"] == "manage_link"]

        async def link_arrived() -> bool:
            return bool(manage_links())

        await eventually(link_arrived, timeout=60, what="the preferences link email")

        ledger = burst.database["ledger"]

        async def settled() -> bool:
            return await ledger.count_documents({"status": {"$ne": "sent"}}) == 0

        await eventually(settled, timeout=30, what="every ledger row sent")

        got = pairs_in(opening_emails(mail_of(sink, run)))
        result = figures("notifier_smtp_outage", expected=expected, got=got)
        dead = await dead_letters_containing(stack.kafka_bootstrap, run)
        failed = await burst.database["messages"].count_documents({"status": "failed"})
        print(
            "\n"
            + result.line(
                before_outage=before_outage,
                during_outage=during_outage,
                caught_up_s=round(caught_up_s),
                dead_letters=len(dead),
                total_s=round(time.monotonic() - started),
            )
        )
        assert result.lost == 0
        assert result.duplicated == 0
        assert before_outage < len(expected), "the outage began after the last email"
        assert during_outage == 0
        assert failed == 0
        assert dead == []
        [link] = manage_links()
        assert recipient(link) == reader_email
