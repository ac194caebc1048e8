"""Helpers for reliability tests that run notifier processes against the shared Kafka, MongoDB and
an SMTP sink: settings, waiting, dead letters, counting. The
events they publish come from ``hwcollab_testing.events``.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer

from hwcollab_common.kafka_admin import topic_partitions
from hwcollab_schemas.topics import ALL_TOPICS, dlq_topic
from hwcollab_testing.plugin import SmtpSink
from hwcollab_testing.waiting import eventually


def log_lines(path: Path, *, words: Sequence[str] = ("WARNING", "ERROR"), last: int = 30) -> str:
    """The last ``last`` lines of a service's log that carry one of ``words``."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as error:
        return f"({path}: {error})"
    picked = [line[:400] for line in lines if any(word in line for word in words)]
    return f"{path.name}, last {min(last, len(picked))} of {len(picked)} lines:\n" + "\n".join(
        picked[-last:]
    )


async def wait_ready(http: httpx.AsyncClient, url: str, *, timeout: float = 60) -> None:
    async def ready() -> bool:
        try:
            return (await http.get(f"{url}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(ready, timeout=timeout, what=f"{url} ready")


def notifier_env(
    *,
    kafka_bootstrap: str,
    mongo_url: str,
    smtp: SmtpSink,
    database: str,
    group_suffix: str,
    **overrides: str,
) -> dict[str, str]:
    """Settings of a notifier under test: short leases and sweeps so recovery shows in seconds."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MONGODB_URL": mongo_url,
        "MONGODB_DATABASE": database,
        "SMTP_HOST": smtp.host,
        "SMTP_PORT": str(smtp.port),
        "DELIVERY_CONCURRENCY": "1",
        "SEND_LEASE_SECONDS": "8",
        "SWEEP_INTERVAL_SECONDS": "2",
        "SWEEP_STALE_SECONDS": "6",
        "INDEX_REFRESH_SECONDS": "1",
        "OUTBOX_POLL_SECONDS": "0.2",
        "LOG_LEVEL": "WARNING",
        "CONSUMER_GROUP_SUFFIX": group_suffix,
    }
    env.update(overrides)
    return env


async def dead_letters_containing(bootstrap: str, needle: str) -> list[tuple[str, bytes]]:
    """Every message on any ``.dlq`` topic whose value contains ``needle``: (topic, value)."""
    found: list[tuple[str, bytes]] = []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        # Other tests dead-letter payloads of several megabytes.
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(bootstrap, [dlq_topic(topic) for topic in ALL_TOPICS])
        if not partitions:
            return found
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        left = {tp for tp in partitions if ends[tp] > 0}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while left and loop.time() < deadline:
            batch = await consumer.getmany(*left, timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    if needle.encode() in (record.value or b""):
                        found.append((tp.topic, record.value))
                    if record.offset + 1 >= ends[tp]:
                        left.discard(tp)
        assert not left, f"dead-letter topics not read to their end: {sorted(map(str, left))}"
    finally:
        await consumer.stop()
    return found


def mail_of(sink: SmtpSink, run: str) -> list[EmailMessage]:
    """Messages the sink received for this run's addresses, in order of arrival."""
    return [m.message for m in sink.snapshot() if run in str(m.message["To"])]


def opening_emails(messages: Iterable[EmailMessage]) -> list[EmailMessage]:
    return [m for m in messages if m["X-HWcollab-Kind"] == "immediate"]


def recipient(message: EmailMessage) -> str:
    return parseaddr(str(message["To"]))[1].lower()


def pairs_in(messages: Iterable[EmailMessage]) -> collections.Counter[tuple[str, str]]:
    """How many times each (recipient, opening) pair arrived."""
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for message in messages:
        for opening_id in str(message["X-HWcollab-Opening-Ids"] or "").split(","):
            if opening_id.strip():
                counts[(recipient(message), opening_id.strip())] += 1
    return counts


@dataclass(frozen=True)
class Figures:
    name: str
    expected: int
    delivered: int
    lost: int
    duplicated: int

    def line(self, **extra: object) -> str:
        more = "".join(f" {key}={value}" for key, value in extra.items())
        return (
            f"FIGURES {self.name} expected={self.expected} delivered={self.delivered} "
            f"lost={self.lost} duplicated={self.duplicated}{more}"
        )


def figures(
    name: str, *, expected: set[tuple[str, str]], got: collections.Counter[tuple[str, str]]
) -> Figures:
    """``delivered``: expected pairs that arrived; ``duplicated``: extra copies of any pair."""
    return Figures(
        name=name,
        expected=len(expected),
        delivered=len(expected & got.keys()),
        lost=len(expected - got.keys()),
        duplicated=sum(n - 1 for n in got.values() if n > 1),
    )
