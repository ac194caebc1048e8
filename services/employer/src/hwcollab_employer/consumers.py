"""Kafka consumers of the employer service: reach counts from ``notification.sent`` and
``notification.batch_sent``."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from hwcollab_common.consuming import subscribe_events
from hwcollab_employer.handlers import EmployerService
from hwcollab_schemas import Event
from hwcollab_schemas.events import NotificationBatchSent, NotificationSent
from hwcollab_schemas.topics import EMPLOYER_GROUP, NOTIFICATION_TOPIC


def register_consumers(
    broker: KafkaBroker, service: EmployerService, *, group_suffix: str = ""
) -> None:
    async def on_notification(event: Event) -> None:
        if isinstance(event, NotificationSent | NotificationBatchSent):
            await service.record_notification(event)

    subscribe_events(
        broker, NOTIFICATION_TOPIC, group_id=EMPLOYER_GROUP + group_suffix, handle=on_notification
    )
