"""Two notifier processes in one consumer group on Apache Kafka.

A second replica that starts while the first is consuming gets its share of the opening and
delivery partitions within a rebalance, and both send. A replica SIGKILLed in the middle of a
burst leaves the group when its session times out; the survivor takes over its partitions and
finishes: every expected email arrives, and the only repeats are sends the dead process had
claimed (the documented crash window, same Message-ID). The group is the same before and after
the kill: nothing is moved by hand.
"""

from __future__ import annotations

import collections
import os
import signal
import time
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from hwcollab_notifier.mail import message_id_for
from hwcollab_schemas.topics import DELIVERY_TOPIC, OPENING_TOPIC
from hwcollab_testing.events import Place, Publish, event_publisher, posted, registered
from hwcollab_testing.kafka import fresh_notifier_groups, held_partitions
from hwcollab_testing.plugin import TOPIC_PARTITIONS, RunningService, ServiceStarter, SmtpSink
from hwcollab_testing.waiting import eventually

from .notifier_stack import log_lines, notifier_env, wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.slow]

SUBSCRIBERS = 20
OPENINGS = 20
SESSION_TIMEOUT = 10.0  # the consumers' session.timeout.ms (hwcollab_common.consuming)
GROUP_TOPICS = (OPENING_TOPIC, DELIVERY_TOPIC)
PLACE = Place(zip="55101", lat=44.95, lon=-93.10)  # nobody else's tests work around Saint Paul
ALL_PARTITIONS = set(range(TOPIC_PARTITIONS))


def ours(sink: SmtpSink, run: str) -> list[EmailMessage]:
    return [m.message for m in sink.snapshot() if run in str(m.message["To"])]


def immediate(sink: SmtpSink, run: str) -> list[EmailMessage]:
    return [m for m in ours(sink, run) if m["X-HWcollab-Opening-Ids"]]


def shares(replicas: list[RunningService]) -> dict[str, list[set[int]]]:
    """Per topic, the partitions each replica holds (from its log)."""
    return {
        topic: [held_partitions(replica.log_path, topic) for replica in replicas]
        for topic in GROUP_TOPICS
    }


def settled(replicas: list[RunningService]) -> bool:
    """Every partition of both topics is held by exactly one replica, and each replica holds
    some of each topic."""
    for held in shares(replicas).values():
        every = [partition for process in held for partition in process]
        if sorted(every) != sorted(ALL_PARTITIONS) or not all(held):
            return False
    return True


async def explain(replicas: list[RunningService]) -> str:
    lines = [f"{topic}: {held}" for topic, held in shares(replicas).items()]
    lines.extend(log_lines(replica.log_path) for replica in replicas)
    return "\n".join(lines)


def sent_by(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith('hwcollab_notifier_emails_sent_total{kind="immediate"}')
    )


async def welcome_subscribers(
    publish: Publish,
    sink: SmtpSink,
    *,
    run: str,
    prefix: str,
    now: datetime,
) -> dict[str, str]:
    """Register :data:`SUBSCRIBERS` people near :data:`PLACE` and wait for every welcome email
    (then the notifiers know them all); their addresses by subscriber id."""
    emails = {f"{prefix}{i}-{run}": f"{prefix}{i}-{run}@example.org" for i in range(SUBSCRIBERS)}
    for subscriber_id, email in emails.items():
        await publish(registered(subscriber_id, email, place=PLACE, now=now))
    await eventually(
        lambda: len({m["To"] for m in ours(sink, run)}) == SUBSCRIBERS,
        timeout=90,
        what="welcome emails",
    )
    return emails


async def start_pair(
    kafka_bootstrap: str,
    mongo_url: str,
    smtp_sink: SmtpSink,
    service_process: ServiceStarter,
    http: httpx.AsyncClient,
    *,
    run: str,
) -> tuple[list[RunningService], dict[str, str], float]:
    """The first replica, consuming every partition; then the second. Returns both, their
    settings, and the seconds from the second's start until both hold a share of both topics."""
    env = notifier_env(
        kafka_bootstrap=kafka_bootstrap,
        mongo_url=mongo_url,
        smtp=smtp_sink,
        database=f"test_notifier_replicas_{run}",
        # a group of the test's own that starts at the end of every topic: the shared broker
        # holds earlier tests' events, which this notifier would otherwise read and email
        group_suffix=await fresh_notifier_groups(kafka_bootstrap, label="replicas"),
        LOG_LEVEL="INFO",  # partition assignments are logged at INFO
    )
    first = service_process("notifier", env)
    await wait_ready(http, first.url)

    def first_holds_all() -> bool:
        return all(held == [ALL_PARTITIONS] for held in shares([first]).values())

    await eventually(
        first_holds_all,
        timeout=60,
        what="the first replica consuming every partition",
        explain=lambda: explain([first]),
    )
    joined = time.monotonic()
    second = service_process("notifier", env)
    await wait_ready(http, second.url)
    replicas = [first, second]
    await eventually(
        lambda: settled(replicas),
        timeout=SESSION_TIMEOUT + 30,
        what="partitions shared by both replicas",
        explain=lambda: explain(replicas),
    )
    return replicas, env, time.monotonic() - joined


async def test_a_second_replica_takes_a_share_of_the_partitions_and_both_send(
    kafka_bootstrap: str,
    mongo_url: str,
    smtp_sink: SmtpSink,
    service_process: ServiceStarter,
) -> None:
    run = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(timeout=5.0) as http, event_publisher(kafka_bootstrap) as publish:
        replicas, _, rebalance_seconds = await start_pair(
            kafka_bootstrap, mongo_url, smtp_sink, service_process, http, run=run
        )
        now = datetime.now(UTC)
        await welcome_subscribers(publish, smtp_sink, run=run, prefix="j", now=now)
        opening_ids = [f"join{i}-{run}" for i in range(OPENINGS)]
        for opening_id in opening_ids:
            await publish(posted(opening_id, employer_id=f"e-{run}", place=PLACE, now=now))
        expected = SUBSCRIBERS * OPENINGS
        await eventually(
            lambda: len(immediate(smtp_sink, run)) >= expected,
            timeout=180,
            what="every immediate email",
            explain=lambda: explain(replicas),
        )
        sent = [sent_by((await http.get(f"{r.url}/metrics")).text) for r in replicas]

    counts = collections.Counter(m["Message-ID"] for m in immediate(smtp_sink, run))
    print(
        f"\nFIGURES notifier-join rebalance_seconds={rebalance_seconds:.1f} "
        f"shares={shares(replicas)} sent_per_replica={[int(n) for n in sent]}"
    )
    assert len(counts) == expected
    assert max(counts.values()) == 1
    assert all(n > 0 for n in sent), f"both replicas send: {sent}"


async def test_a_killed_replica_loses_nothing_and_the_survivor_takes_over(
    kafka_bootstrap: str,
    mongo_url: str,
    smtp_sink: SmtpSink,
    service_process: ServiceStarter,
) -> None:
    run = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(timeout=5.0) as http, event_publisher(kafka_bootstrap) as publish:
        (first, second), env, _ = await start_pair(
            kafka_bootstrap, mongo_url, smtp_sink, service_process, http, run=run
        )
        now = datetime.now(UTC)
        emails = await welcome_subscribers(publish, smtp_sink, run=run, prefix="r", now=now)

        opening_ids = [f"burst{i}-{run}" for i in range(OPENINGS)]
        for opening_id in opening_ids:
            await publish(posted(opening_id, employer_id=f"e-{run}", place=PLACE, now=now))
        # Killed as soon as the burst is under way: openings may still be unmatched on its
        # partitions, delivery jobs unconsumed, sends claimed.
        await eventually(
            lambda: len(immediate(smtp_sink, run)) > 0, timeout=90, what="sending under way"
        )
        os.kill(first.pid, signal.SIGKILL)
        killed_at, killed_at_time = len(immediate(smtp_sink, run)), time.monotonic()

        await eventually(
            lambda: all(held == [ALL_PARTITIONS] for held in shares([second]).values()),
            timeout=SESSION_TIMEOUT + 30,
            what="the survivor holding every partition",
            explain=lambda: explain([second]),
        )
        takeover_seconds = time.monotonic() - killed_at_time

        expected = {
            message_id_for("immediate", subscriber_id, opening_id, domain="hwcollab.example")
            for subscriber_id in emails
            for opening_id in opening_ids
        }
        await eventually(
            lambda: {m["Message-ID"] for m in immediate(smtp_sink, run)} >= expected,
            timeout=180,
            what="every expected email",
            explain=lambda: explain([second]),
        )
        survivor_sent = sent_by((await http.get(f"{second.url}/metrics")).text)

    counts = collections.Counter(m["Message-ID"] for m in immediate(smtp_sink, run))
    twice = sorted(mid for mid, n in counts.items() if n > 1)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    try:
        messages = mongo[env["MONGODB_DATABASE"]]["messages"]
        claimed = {
            doc["_id"]: [claim["owner"] for claim in doc.get("claims", [])]
            async for doc in messages.find({"_id": {"$in": twice}}, {"claims": 1})
        }
    finally:
        await mongo.close()
    print(
        f"\nFIGURES notifier-kill expected={len(expected)} delivered={len(set(counts))} "
        f"lost={len(expected - set(counts))} duplicated={len(twice)} "
        f"arrived_before_kill={killed_at} survivor_sent={survivor_sent:.0f} "
        f"takeover_seconds={takeover_seconds:.1f}"
    )
    assert set(counts) == expected
    assert killed_at < len(expected), "the replica was killed after the burst, not during it"
    assert max(counts.values()) <= 2
    # A repeat is a send the dead process had claimed and not settled when it died.
    for message_id in twice:
        owners = claimed.get(message_id, [])
        assert any(f":{first.pid}:" in owner for owner in owners), (message_id, owners)
    assert takeover_seconds <= SESSION_TIMEOUT + 30
