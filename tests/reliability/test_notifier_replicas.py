"""Two notifier processes in one consumer group; a burst of openings; one process is killed
(SIGKILL) mid-way. Every expected email arrives, each Message-ID at most twice and only for the
few sends the dead process had in flight (the documented window), and the survivor finishes."""

from __future__ import annotations

import collections
import os
import signal
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from hwcollab_notifier.mail import message_id_for
from hwcollab_testing.events import Place, event_publisher, posted, registered
from hwcollab_testing.kafka import fresh_notifier_groups
from hwcollab_testing.plugin import ServiceStarter, SmtpSink
from hwcollab_testing.waiting import eventually

from .notifier_stack import notifier_env, wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.slow]

SUBSCRIBERS = 10
OPENINGS = 15
CONCURRENCY = 1  # delivery consumers per process: one group member each
PLACE = Place(zip="55101", lat=44.95, lon=-93.10)  # nobody else's tests work around Saint Paul


def received(sink: SmtpSink) -> list[EmailMessage]:
    return [m.message for m in sink.snapshot()]


async def test_a_killed_replica_loses_nothing_and_the_survivor_takes_over(
    kafka_bootstrap: str,
    mongo_url: str,
    smtp_sink: SmtpSink,
    service_process: ServiceStarter,
) -> None:
    run = uuid.uuid4().hex[:8]
    env = notifier_env(
        kafka_bootstrap=kafka_bootstrap,
        mongo_url=mongo_url,
        smtp=smtp_sink,
        database=f"test_notifier_replicas_{run}",
        group_suffix=await fresh_notifier_groups(kafka_bootstrap),
        DELIVERY_CONCURRENCY=str(CONCURRENCY),
    )
    first = service_process("notifier", env)
    second = service_process("notifier", env)
    async with httpx.AsyncClient(timeout=5.0) as http, event_publisher(kafka_bootstrap) as publish:
        for replica in (first, second):
            await wait_ready(http, replica.url)

        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
        try:
            now = datetime.now(UTC)
            emails = {f"r{i}-{run}": f"r{i}-{run}@example.org" for i in range(SUBSCRIBERS)}
            for subscriber_id, email in emails.items():
                await publish(registered(subscriber_id, email, place=PLACE, now=now))

            def ours() -> list[EmailMessage]:
                return [m for m in received(smtp_sink) if run in str(m["To"])]

            async def welcomed() -> bool:
                return len({m["To"] for m in ours()}) == SUBSCRIBERS

            await eventually(welcomed, timeout=90, what="welcome emails")

            opening_ids = [f"burst{i}-{run}" for i in range(OPENINGS)]
            for opening_id in opening_ids:
                await publish(posted(opening_id, employer_id=f"e-{run}", place=PLACE, now=now))

            def immediate() -> list[EmailMessage]:
                return [m for m in ours() if m["X-HWcollab-Opening-Ids"]]

            # Kill once every opening is matched (its pairs are in the ledger) and sending is
            # under way: the broker used in tests never expires a dead member from its group, so
            # what the dead process had not consumed of the opening topic would stay unconsumed.
            # The survivor must finish the sending: stuck delivery jobs, claimed sends.
            ledger = mongo[env["MONGODB_DATABASE"]]["ledger"]

            async def matched() -> bool:
                count = await ledger.count_documents({"channel": "immediate"})
                return count == SUBSCRIBERS * OPENINGS

            await eventually(matched, timeout=90, what="every pair matched")
            os.kill(first.pid, signal.SIGKILL)
            killed_at = len(immediate())

            expected = {
                message_id_for("immediate", subscriber_id, opening_id, domain="hwcollab.example")
                for subscriber_id in emails
                for opening_id in opening_ids
            }

            async def all_arrived() -> bool:
                return {m["Message-ID"] for m in immediate()} >= expected

            await eventually(all_arrived, timeout=180, what="every expected email")
        finally:
            await mongo.close()

        counts = collections.Counter(m["Message-ID"] for m in immediate())
        assert set(counts) == expected
        twice = [mid for mid, n in counts.items() if n > 1]
        assert max(counts.values()) <= 2
        assert len(twice) <= CONCURRENCY
        metrics = (await http.get(f"{second.url}/metrics")).text
        sent_by_survivor = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith('hwcollab_notifier_emails_sent_total{kind="immediate"}')
        )
        assert killed_at < len(expected), "the replica was killed after the burst, not during it"
        assert sent_by_survivor >= len(expected) - killed_at
        print(
            f"\n{len(expected)} emails expected; {killed_at} had arrived when a replica was "
            f"killed; survivor sent {sent_by_survivor:.0f}; {len(twice)} Message-IDs twice"
        )
