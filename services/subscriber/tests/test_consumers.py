"""Consumer wiring: a permanent bounce on the notification topic reaches the use case."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from faststream.kafka import KafkaBroker, TestKafkaBroker

from hwcollab_common.tokens import Purpose
from hwcollab_schemas.events import (
    NotificationFailed,
    NotificationFailedPayload,
    NotificationSent,
    NotificationSentPayload,
)
from hwcollab_schemas.topics import NOTIFICATION_TOPIC
from hwcollab_subscriber.consumers import register_consumers
from hwcollab_subscriber.domain import SignUp
from hwcollab_subscriber.handlers import Links, SubscriberService


async def test_a_permanent_failure_marks_bounced_and_a_sent_mail_changes_nothing(
    service: SubscriberService, store: Any, links: Links, helpers: Any
) -> None:
    await service.sign_up(SignUp.model_validate(helpers.sign_up_body()))
    subscriber_id = store.only().subscriber_id
    await service.confirm(links.token(Purpose.CONFIRM, subscriber_id))
    now = datetime(2026, 3, 2, tzinfo=UTC)
    sent = NotificationSent.create(
        NotificationSentPayload(
            message_id="m0", subscriber_id=subscriber_id, kind="welcome", sent_at=now
        ),
        producer="notifier",
        occurred_at=now,
    )
    failed = NotificationFailed.create(
        NotificationFailedPayload(
            message_id="m1",
            subscriber_id=subscriber_id,
            kind="immediate",
            permanent=True,
            reason="550 5.1.1 no such mailbox",
            failed_at=now,
        ),
        producer="notifier",
        occurred_at=now,
    )
    broker = KafkaBroker()
    register_consumers(broker, service)
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(sent.to_bytes(), NOTIFICATION_TOPIC, key=subscriber_id.encode())
        assert store.only().status == "active"
        await test_broker.publish(failed.to_bytes(), NOTIFICATION_TOPIC, key=subscriber_id.encode())
    assert store.only().status == "bounced"
    assert store.events[-1].event_type == "subscriber.updated"
    assert store.events[-1].payload.status == "bounced"
