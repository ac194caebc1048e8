"""The notifier's Kafka consumers; thin: parse, hand to a handler.

- Read model: subscriber, employer and opening topics in ``NOTIFIER_GROUP`` (partitions spread
  over replicas; each event applied once).
- Index feed: the subscriber topic again, in a group of this process's own, so that every replica
  sees every subscriber change (from the latest offset; the read-model refresh covers the rest).
- Deliveries: ``DELIVERY_TOPIC`` in ``NOTIFIER_DELIVERY_GROUP``, a batch of jobs at a time.
"""

from __future__ import annotations

import logging
import os
import socket
from uuid import uuid4

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from hwcollab_common.consuming import (
    FailurePolicy,
    Received,
    UnusableMessageError,
    subscribe_batches,
    subscribe_events,
)
from hwcollab_notifier.delivery import Deliveries
from hwcollab_notifier.handlers import ReadModel
from hwcollab_notifier.index_sync import IndexChange, ReplicaIndex
from hwcollab_schemas import Event, EventParseError, parse_event
from hwcollab_schemas.delivery import DeliveryJob
from hwcollab_schemas.events import (
    SubscriberDeleted,
    SubscriberRegistered,
    SubscriberUnsubscribed,
    SubscriberUpdated,
)
from hwcollab_schemas.topics import (
    DELIVERY_TOPIC,
    EMPLOYER_TOPIC,
    NOTIFIER_DELIVERY_GROUP,
    NOTIFIER_GROUP,
    OPENING_TOPIC,
    SUBSCRIBER_TOPIC,
)

log = logging.getLogger(__name__)


def index_group_id() -> str:
    """A group of this process's own (two apps in one process get two groups, too)."""
    return f"hwcollab-notifier-index-{socket.gethostname()}-{os.getpid()}-{uuid4().hex[:6]}"


def register_read_model(
    broker: KafkaBroker, read_model: ReadModel, *, group_id: str = NOTIFIER_GROUP
) -> None:
    handlers = {
        SUBSCRIBER_TOPIC: read_model.on_subscriber,
        EMPLOYER_TOPIC: read_model.on_employer,
        OPENING_TOPIC: read_model.on_opening,
    }

    async def handle(event: Event) -> None:
        await handlers[event.topic](event)

    subscribe_events(broker, *handlers, group_id=group_id, handle=handle)


def register_index_feed(broker: KafkaBroker, index: ReplicaIndex, *, group_id: str) -> None:
    @broker.subscriber(
        SUBSCRIBER_TOPIC,
        group_id=group_id,
        auto_offset_reset="latest",
        ack_policy=AckPolicy.ACK_FIRST,
        title=f"{group_id}:{SUBSCRIBER_TOPIC}",
    )
    async def feed(message: KafkaMessage) -> None:
        try:
            event = parse_event(message.body, topic=SUBSCRIBER_TOPIC)
        except EventParseError:
            return  # the read-model consumer dead-letters it
        if isinstance(event, SubscriberRegistered | SubscriberUpdated):
            profile = event.payload
            index.apply(
                IndexChange(
                    profile.subscriber_id,
                    profile.version,
                    profile if profile.status == "active" else None,
                )
            )
        elif isinstance(event, SubscriberUnsubscribed | SubscriberDeleted):
            index.apply(IndexChange(event.payload.subscriber_id, event.payload.version, None))


def register_deliveries(
    broker: KafkaBroker,
    deliveries: Deliveries,
    *,
    concurrency: int,
    batch_jobs: int = 8,
    group_id: str = NOTIFIER_DELIVERY_GROUP,
    max_attempts: int = 5,
    retry_base_seconds: float = 0.2,
    retry_max_seconds: float = 10.0,
) -> None:
    """Delivery jobs in batches of up to ``batch_jobs`` records, ``concurrency`` consumers (and
    so partitions) at a time. An outage (SMTP server unreachable or answering 421, MongoDB away:
    see ``is_transient``) holds the batch and retries it until the outage ends, every
    ``retry_max_seconds`` at most: nothing is dead-lettered or dropped for it. A job that keeps
    failing otherwise is retried alone ``max_attempts`` times, then dead-lettered."""
    policy = FailurePolicy(
        max_attempts=max_attempts, base_seconds=retry_base_seconds, cap_seconds=retry_max_seconds
    )
    subscribe_batches(
        broker,
        DELIVERY_TOPIC,
        group_id=group_id,
        read=read_job,
        handle=deliveries.handle_batch,
        policy=policy,
        max_records=batch_jobs,
        consumers=concurrency,
    )


def read_job(value: bytes, topic: str) -> Received[DeliveryJob]:
    """A delivery job; a message that is not one is unusable."""
    try:
        job = DeliveryJob.model_validate_json(value)
    except ValidationError as error:
        reason = f"invalid delivery job: {error.errors()[0]['msg']}"
        raise UnusableMessageError(reason, what="delivery") from error
    what = f"delivery.{job.kind}"
    return Received(job, what=what, log_context={"job_id": str(job.job_id), "event_type": what})
