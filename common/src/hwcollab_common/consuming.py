"""Idempotent event consumers: parse, dedupe on ``event_id``, dead-letter what cannot be used.

Acknowledgement policy: ``AckPolicy.NACK_ON_ERROR`` — the offset is committed only after the
handler returns, and a handler error seeks back so the message is delivered again. A message that
cannot be parsed, or whose handler keeps failing, is published to ``<topic>.dlq`` with the error in
its headers before it is acknowledged, so one bad message never blocks its partition.

Failures are of two kinds (see :func:`hwcollab_common.errors.is_transient`). A *transient* one —
MongoDB, Kafka or SMTP unreachable, a timeout, a 4xx SMTP reply, :class:`TransientError` — is
retried for as long as it lasts, with capped exponential backoff and jitter, and never
dead-lettered: a database outage must not park good events in the DLQ. Any other error counts
towards ``max_attempts`` and then dead-letters the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import Counter
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from hwcollab_common.errors import TransientError, is_transient
from hwcollab_common.mongo import Document, in_transaction
from hwcollab_common.retrying import HalvedJitterBackoff
from hwcollab_common.tracing import SpanKind, batch_parent, context_from, span
from hwcollab_schemas import Event, EventParseError, parse_event
from hwcollab_schemas.topics import dlq_topic

log = logging.getLogger(__name__)

PROCESSED_COLLECTION = "processed_events"

CONSUMED = Counter(
    "hwcollab_events_consumed_total",
    "Events taken from Kafka, by outcome",
    ["topic", "event_type", "outcome"],
)
DEAD_LETTERED = Counter(
    "hwcollab_events_dead_lettered_total", "Messages sent to a DLQ", ["topic", "reason"]
)

EventHandler = Callable[[Event], Awaitable[None]]
T = TypeVar("T")

__all__ = [
    "CONSUMED",
    "DEAD_LETTERED",
    "AlreadyProcessedError",
    "FailureDecision",
    "FailurePolicy",
    "ProcessedEvents",
    "Received",
    "TransientError",
    "UnusableMessageError",
    "apply_once",
    "dead_letter",
    "is_transient",
    "read_event",
    "subscribe_batches",
    "subscribe_events",
    "subscribe_messages",
]

# Kafka evicts a member that does not poll within this; one delivery waits at most
# ``retry_max_seconds`` before the handler returns, far below it (heartbeats run in the background).
MAX_POLL_INTERVAL_MS = 300_000


class AlreadyProcessedError(Exception):
    """Raised inside a transaction to abort it when the event was applied before."""


class ProcessedEvents:
    """The record of events a consumer has already applied (its inbox)."""

    def __init__(self, database: AsyncDatabase[Document], *, consumer: str) -> None:
        self._collection = database[PROCESSED_COLLECTION]
        self._consumer = consumer

    def _id(self, event: Event) -> str:
        return f"{self._consumer}:{event.event_id}"

    async def seen(self, event: Event) -> bool:
        return await self._collection.find_one({"_id": self._id(event)}, {"_id": 1}) is not None

    async def record(self, event: Event, *, session: AsyncClientSession | None) -> None:
        """Record ``event`` as applied; raises :class:`AlreadyProcessedError` for a repeat.

        Inside a transaction the duplicate-key error has already aborted it on the server, so the
        caller must let the exception leave the transaction rather than carry on.
        """
        try:
            await self._collection.insert_one(
                {
                    "_id": self._id(event),
                    "event_type": event.event_type,
                    "processed_at": datetime.now(UTC),
                },
                session=session,
            )
        except DuplicateKeyError as error:
            raise AlreadyProcessedError(str(event.event_id)) from error


async def apply_once(
    client: AsyncMongoClient[Document],
    processed: ProcessedEvents,
    event: Event,
    work: Callable[[AsyncClientSession], Awaitable[Any]],
) -> bool:
    """Run ``work`` and record ``event`` as processed in one transaction; skip a repeat.

    Returns False when the event had already been applied.
    """
    if await processed.seen(event):
        return False

    async def transaction(session: AsyncClientSession) -> None:
        await processed.record(event, session=session)
        await work(session)

    try:
        await in_transaction(client, transaction)
    except AlreadyProcessedError:
        return False
    return True


# A dead letter must itself fit on its DLQ topic (1 MiB a message by default, which is also the
# producer's own ``max_request_size``), or dead-lettering would fail and the original would be
# delivered again forever. A larger original is kept as a prefix, with its size and SHA-256.
DLQ_MAX_VALUE_BYTES = 256 * 1024
DLQ_MAX_KEY_BYTES = 1024


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """What goes to ``<topic>.dlq``: the original (or its prefix), and why, in headers."""

    key: bytes | None
    value: bytes
    headers: dict[str, str]


def dead_letter_record(
    *,
    topic: str,
    key: bytes | None,
    value: bytes,
    error: str,
    partition: int | None = None,
    offset: int | None = None,
    group_id: str | None = None,
    now: datetime | None = None,
) -> DeadLetterRecord:
    """The DLQ copy of a message: headers ``error``, ``original_topic``, ``failed_at``,
    ``original_partition`` / ``original_offset`` / ``consumer_group`` when known, and, for an
    original too large to copy whole, ``truncated=true``, ``original_size`` and ``sha256`` (of the
    whole original value; ``original_key_size`` likewise for an oversized key)."""
    headers = {
        "error": error.replace("\r", " ").replace("\n", " ")[:1000],
        "original_topic": topic,
        "failed_at": (now or datetime.now(UTC)).isoformat(),
    }
    if partition is not None:
        headers["original_partition"] = str(partition)
    if offset is not None:
        headers["original_offset"] = str(offset)
    if group_id is not None:
        headers["consumer_group"] = group_id
    if len(value) > DLQ_MAX_VALUE_BYTES:
        headers["truncated"] = "true"
        headers["original_size"] = str(len(value))
        headers["sha256"] = hashlib.sha256(value).hexdigest()
        value = value[:DLQ_MAX_VALUE_BYTES]
    if key is not None and len(key) > DLQ_MAX_KEY_BYTES:
        headers["truncated"] = "true"
        headers["original_key_size"] = str(len(key))
        key = key[:DLQ_MAX_KEY_BYTES]
    return DeadLetterRecord(key=key, value=value, headers=headers)


async def dead_letter(
    broker: KafkaBroker,
    *,
    topic: str,
    key: bytes | None,
    value: bytes,
    error: str,
    partition: int | None = None,
    offset: int | None = None,
    group_id: str | None = None,
) -> None:
    """Publish a message that cannot be used to ``<topic>.dlq``, with why in its headers (see
    :func:`dead_letter_record`; an oversized original is truncated so that the copy fits)."""
    record = dead_letter_record(
        topic=topic,
        key=key,
        value=value,
        error=error,
        partition=partition,
        offset=offset,
        group_id=group_id,
    )
    await broker.publish(record.value, dlq_topic(topic), key=record.key, headers=record.headers)
    DEAD_LETTERED.labels(topic, error.split(":", 1)[0][:40]).inc()
    log.warning(
        "dead-lettered a message from %s%s: %s",
        topic,
        " (truncated copy)" if "truncated" in record.headers else "",
        error[:500],
    )


class _Attempts:
    """Counts deliveries of failing events, bounded in memory."""

    def __init__(self, limit: int = 10_000) -> None:
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._limit = limit

    def bump(self, key: str) -> int:
        count = self._counts.pop(key, 0) + 1
        self._counts[key] = count
        if len(self._counts) > self._limit:
            self._counts.popitem(last=False)
        return count

    def clear(self, key: str) -> None:
        self._counts.pop(key, None)


@dataclass(frozen=True, slots=True)
class FailureDecision:
    """What to do with a message whose handler failed: wait ``delay`` seconds and have it
    delivered again, or dead-letter it."""

    action: Literal["retry", "dead_letter"]
    transient: bool
    attempt: int
    delay: float = 0.0


class FailurePolicy:
    """Transient failures: retried forever, waiting ``base`` · 2ⁿ seconds capped at ``cap``, with
    jitter (a random wait between half and all of it, so replicas do not retry in step). Other
    failures: retried with the same backoff until ``max_attempts`` deliveries, then dead-lettered.

    Attempts are counted per message (``tag``) in a bounded in-memory map; a success clears them.
    """

    def __init__(
        self,
        *,
        max_attempts: int = 5,
        base_seconds: float = 0.2,
        cap_seconds: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1 or base_seconds < 0 or cap_seconds < base_seconds:
            raise ValueError("need max_attempts >= 1 and 0 <= base_seconds <= cap_seconds")
        self.max_attempts = max_attempts
        self.base_seconds = base_seconds
        self.cap_seconds = cap_seconds
        self._waits = HalvedJitterBackoff(base=base_seconds, cap=cap_seconds, rng=rng)
        self._failures = _Attempts()
        self._outages = _Attempts()

    def backoff(self, attempt: int) -> float:
        """The wait after the ``attempt``-th failed delivery (1-based), jitter included."""
        return self._waits.delay(attempt)

    def failed(self, tag: str, error: BaseException) -> FailureDecision:
        if is_transient(error):
            attempt = self._outages.bump(tag)
            return FailureDecision("retry", True, attempt, self.backoff(attempt))
        attempt = self._failures.bump(tag)
        if attempt >= self.max_attempts:
            self.succeeded(tag)
            return FailureDecision("dead_letter", False, attempt)
        return FailureDecision("retry", False, attempt, self.backoff(attempt))

    def succeeded(self, tag: str) -> None:
        self._failures.clear(tag)
        self._outages.clear(tag)


def kafka_record(message: KafkaMessage) -> Any:
    """The aiokafka record behind ``message`` (topic, partition, offset, key)."""
    raw = message.raw_message
    return raw[-1] if isinstance(raw, tuple) else raw


@contextlib.contextmanager
def consumer_span(message: KafkaMessage, *, topic: str, group_id: str) -> Iterator[None]:
    """Handle ``message`` in a span that continues its producer's trace, with ``topic`` bound to
    every log line written meanwhile; what the handler binds (event or job ids) is unbound after."""
    attributes = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.consumer.group.name": group_id,
    }
    if "event_id" in message.headers:
        attributes["messaging.message.id"] = str(message.headers["event_id"])
    structlog.contextvars.bind_contextvars(topic=topic)
    try:
        with span(
            f"consume {topic}",
            kind=SpanKind.CONSUMER,
            parent=context_from(message.headers),
            attributes=attributes,
        ):
            yield
    finally:
        structlog.contextvars.unbind_contextvars("topic", "event_id", "event_type", "job_id")


async def settle_failure(
    message: KafkaMessage,
    error: Exception,
    *,
    broker: KafkaBroker,
    policy: FailurePolicy,
    tag: str,
    what: str,
    location: Mapping[str, Any],
) -> bool:
    """Settle a message whose handler raised ``error`` (call it from the ``except`` block):
    dead-letter it once the policy gives up (the message is then acked), or wait out the backoff
    and have it delivered again — through nack for an outage, so that a long outage does not log
    a framework traceback on every attempt. ``what`` names it in logs and metrics;
    ``location`` holds ``partition``, ``offset`` and ``group_id``.

    Returns True when the caller should re-raise (a failure that is not an outage, retried: the
    framework nacks the message and logs the traceback)."""
    record = kafka_record(message)
    topic: str = record.topic
    decision = policy.failed(tag, error)
    if decision.action == "dead_letter":
        CONSUMED.labels(topic, what, "dead_lettered").inc()
        log.exception("giving up on %s after %d attempts", what, decision.attempt)
        await dead_letter(
            broker,
            topic=topic,
            key=record.key,
            value=message.body,
            error=f"handler failed {decision.attempt} times: {type(error).__name__}: {error}",
            **location,
        )
        return False
    CONSUMED.labels(topic, what, "retried").inc()
    if decision.transient:
        log.warning(
            "handling %s hit an outage (attempt %d), retrying in %.1f s: %s: %s",
            what,
            decision.attempt,
            decision.delay,
            type(error).__name__,
            error,
        )
    else:
        log.warning(
            "handling %s failed (attempt %d of %d), will retry: %s: %s",
            what,
            decision.attempt,
            policy.max_attempts,
            type(error).__name__,
            error,
        )
    await asyncio.sleep(decision.delay)
    if decision.transient:
        await message.nack()
        return False
    return True


class UnusableMessageError(Exception):
    """A message its reader cannot make sense of: dead-lettered at once, never retried."""

    def __init__(self, reason: str, *, what: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.what = what


@dataclass(frozen=True, slots=True)
class Received(Generic[T]):
    """A message read into what its handler takes; ``what`` names it in logs and metrics and
    ``log_context`` is bound to every log line written while it is handled."""

    item: T
    what: str
    log_context: Mapping[str, str]


MessageReader = Callable[[bytes, str], Received[T]]


def subscribe_messages(
    broker: KafkaBroker,
    *topics: str,
    group_id: str,
    read: MessageReader[T],
    handle: Callable[[T], Awaitable[object]],
    policy: FailurePolicy,
    max_workers: int | None = None,
) -> None:
    """Register one consumer of ``topics`` in ``group_id``: ``read`` turns each message (its
    value and topic) into what ``handle`` takes, or raises :class:`UnusableMessageError` to have it
    dead-lettered; a failing ``handle`` is settled by ``policy`` (see :func:`settle_failure`).
    ``max_workers`` handles that many partitions at a time."""
    if policy.cap_seconds * 1000 * 4 > MAX_POLL_INTERVAL_MS:
        raise ValueError("the retry cap must stay well below the Kafka max poll interval")
    if not topics:
        raise ValueError("a consumer needs at least one topic")

    @broker.subscriber(
        *topics,
        group_id=group_id,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=2_000,
        max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        max_workers=max_workers,
        title=f"{group_id}:{','.join(topics)}",
    )
    async def consume(message: KafkaMessage) -> None:
        topic: str = kafka_record(message).topic
        with consumer_span(message, topic=topic, group_id=group_id):
            await consume_message(message)

    async def consume_message(message: KafkaMessage) -> None:
        record = kafka_record(message)
        value: bytes = message.body
        topic: str = record.topic
        location = {"partition": record.partition, "offset": record.offset, "group_id": group_id}
        try:
            received = read(value, topic)
        except UnusableMessageError as error:
            CONSUMED.labels(topic, error.what, "dead_lettered").inc()
            await dead_letter(
                broker, topic=topic, key=record.key, value=value, error=error.reason, **location
            )
            return
        structlog.contextvars.bind_contextvars(**received.log_context)
        tag = f"{topic}:{record.partition}:{record.offset}"
        try:
            await handle(received.item)
        except Exception as error:
            if await settle_failure(
                message,
                error,
                broker=broker,
                policy=policy,
                tag=tag,
                what=received.what,
                location=location,
            ):
                raise
            return
        policy.succeeded(tag)
        CONSUMED.labels(topic, received.what, "handled").inc()


class _Recent:
    """A bounded memory of message tags (oldest forgotten first)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._tags: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def add(self, tag: str) -> None:
        self._tags[tag] = None
        if len(self._tags) > self._limit:
            self._tags.popitem(last=False)

    def __contains__(self, tag: object) -> bool:
        return tag in self._tags


@dataclass(frozen=True, slots=True)
class _Taken(Generic[T]):
    tag: str
    record: Any
    received: Received[T]


def _text_headers(record: Any) -> dict[str, str]:
    """A Kafka record's headers as text (the trace context is read from them)."""
    return {
        key: bytes(value or b"").decode(errors="replace") for key, value in record.headers or ()
    }


def subscribe_batches(
    broker: KafkaBroker,
    topic: str,
    *,
    group_id: str,
    read: MessageReader[T],
    handle: Callable[[Sequence[T]], Awaitable[object]],
    policy: FailurePolicy,
    max_records: int,
    consumers: int = 1,
    batch_timeout_ms: int = 200,
) -> None:
    """Register ``consumers`` members of ``group_id`` that take ``topic`` in batches of up to
    ``max_records`` messages and hand what ``read`` makes of them to ``handle`` in one call.

    Offsets are committed once the batch is settled. A message ``read`` cannot use is
    dead-lettered at once and left out of the batch. When ``handle`` hits an outage (see
    :func:`is_transient`) the whole batch waits out the backoff and is delivered again, for as
    long as the outage lasts, never dead-lettered. Any other failure runs the batch's messages
    again one at a time, so that only the message at fault is retried ``policy.max_attempts``
    times and then dead-lettered.
    """
    if policy.cap_seconds * 1000 * 4 > MAX_POLL_INTERVAL_MS:
        raise ValueError("the retry cap must stay well below the Kafka max poll interval")
    dead = _Recent()  # a batch delivered again after an outage keeps its poison out

    async def take(records: Sequence[Any]) -> list[_Taken[T]]:
        taken: list[_Taken[T]] = []
        for record in records:
            tag = f"{record.topic}:{record.partition}:{record.offset}"
            if tag in dead:
                continue
            value: bytes = record.value or b""
            try:
                received = read(value, record.topic)
            except UnusableMessageError as error:
                CONSUMED.labels(record.topic, error.what, "dead_lettered").inc()
                await dead_letter(
                    broker,
                    topic=record.topic,
                    key=record.key,
                    value=value,
                    error=error.reason,
                    partition=record.partition,
                    offset=record.offset,
                    group_id=group_id,
                )
                dead.add(tag)
                continue
            taken.append(_Taken(tag, record, received))
        return taken

    async def outage(message: KafkaMessage, tag: str, what: str, error: Exception) -> None:
        decision = policy.failed(tag, error)
        CONSUMED.labels(topic, what, "retried").inc()
        log.warning(
            "handling a batch of %s hit an outage (attempt %d), retrying in %.1f s: %s: %s",
            what,
            decision.attempt,
            decision.delay,
            type(error).__name__,
            error,
        )
        await asyncio.sleep(decision.delay)
        await message.nack()

    async def one_by_one(message: KafkaMessage, taken: Sequence[_Taken[T]]) -> None:
        for item in taken:
            while True:
                try:
                    await handle([item.received.item])
                except Exception as error:
                    if is_transient(error):
                        await outage(message, item.tag, item.received.what, error)
                        return
                    decision = policy.failed(item.tag, error)
                    if decision.action == "dead_letter":
                        CONSUMED.labels(topic, item.received.what, "dead_lettered").inc()
                        log.exception(
                            "giving up on %s after %d attempts", item.tag, decision.attempt
                        )
                        await dead_letter(
                            broker,
                            topic=topic,
                            key=item.record.key,
                            value=item.record.value or b"",
                            error=f"handler failed {decision.attempt} times: "
                            f"{type(error).__name__}: {error}",
                            partition=item.record.partition,
                            offset=item.record.offset,
                            group_id=group_id,
                        )
                        dead.add(item.tag)
                        break
                    CONSUMED.labels(topic, item.received.what, "retried").inc()
                    log.warning(
                        "handling %s failed (attempt %d of %d), will retry: %s: %s",
                        item.received.what,
                        decision.attempt,
                        policy.max_attempts,
                        type(error).__name__,
                        error,
                    )
                    await asyncio.sleep(decision.delay)
                    continue
                policy.succeeded(item.tag)
                CONSUMED.labels(topic, item.received.what, "handled").inc()
                break

    async def consume(message: KafkaMessage) -> None:
        raw = message.raw_message
        records: Sequence[Any] = raw if isinstance(raw, tuple) else (raw,)
        structlog.contextvars.bind_contextvars(topic=topic)
        parent, links = batch_parent([context_from(_text_headers(r)) for r in records])
        try:
            with span(
                f"consume {topic}",
                kind=SpanKind.CONSUMER,
                parent=parent,
                links=links,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": topic,
                    "messaging.consumer.group.name": group_id,
                    "messaging.batch.message_count": len(records),
                },
            ):
                taken = await take(records)
                if not taken:
                    return
                first = taken[0]
                try:
                    await handle([item.received.item for item in taken])
                except Exception as error:
                    if is_transient(error):
                        await outage(message, first.tag, first.received.what, error)
                    else:
                        log.warning(
                            "a batch of %d failed (%s: %s); handling its messages one at a time",
                            len(taken),
                            type(error).__name__,
                            error,
                        )
                        await one_by_one(message, taken)
                    return
                policy.succeeded(first.tag)
                for item in taken:
                    CONSUMED.labels(topic, item.received.what, "handled").inc()
        finally:
            structlog.contextvars.unbind_contextvars("topic")

    for number in range(consumers):
        # A function per member: FastStream registers each handler once.
        async def member(message: KafkaMessage) -> None:
            await consume(message)

        broker.subscriber(
            topic,
            group_id=group_id,
            batch=True,
            max_records=max_records,
            batch_timeout_ms=batch_timeout_ms,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=2_000,
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
            title=f"{group_id}:{topic}:{number}",
        )(member)


def read_event(value: bytes, topic: str) -> Received[Event]:
    """An event from ``topic``; a message that is not one of its events is unusable."""
    try:
        event = parse_event(value, topic=topic)
    except EventParseError as error:
        raise UnusableMessageError(error.reason, what=error.event_type or "unknown") from error
    return Received(
        event,
        what=event.event_type,
        log_context={"event_id": str(event.event_id), "event_type": event.event_type},
    )


def subscribe_events(
    broker: KafkaBroker,
    *topics: str,
    group_id: str,
    handle: EventHandler,
    max_attempts: int = 5,
    retry_base_seconds: float = 0.2,
    retry_max_seconds: float = 30.0,
) -> None:
    """Register one consumer of ``topics`` in ``group_id`` that hands typed events to ``handle``.

    One consumer per group and process: several members of one group in one process would only
    rebalance against each other.

    ``handle`` must be idempotent (see :func:`apply_once`). A transient failure (see
    :func:`is_transient`) is retried until it passes, with backoff from ``retry_base_seconds``
    doubling up to ``retry_max_seconds``; any other failure is retried the same way until
    ``max_attempts`` deliveries, then the message is dead-lettered and the consumer goes on.
    """
    policy = FailurePolicy(
        max_attempts=max_attempts, base_seconds=retry_base_seconds, cap_seconds=retry_max_seconds
    )
    subscribe_messages(
        broker, *topics, group_id=group_id, read=read_event, handle=handle, policy=policy
    )
