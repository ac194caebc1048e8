"""Kafka consumers of the subscriber service: bounces from the notifier mark the address, spam
complaints unsubscribe it."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from hwcollab_common.consuming import subscribe_events
from hwcollab_schemas import Event
from hwcollab_schemas.events import NotificationComplained, NotificationFailed
from hwcollab_schemas.topics import NOTIFICATION_TOPIC, SUBSCRIBER_GROUP
from hwcollab_subscriber.handlers import SubscriberService


def register_consumers(
    broker: KafkaBroker, service: SubscriberService, *, group_suffix: str = ""
) -> None:
    async def on_notification(event: Event) -> None:
        if isinstance(event, NotificationFailed):
            await service.notification_failed(event)
        elif isinstance(event, NotificationComplained):
            await service.notification_complained(event)

    subscribe_events(
        broker, NOTIFICATION_TOPIC, group_id=SUBSCRIBER_GROUP + group_suffix, handle=on_notification
    )
