"""Kafka topic names and consumer group ids: the only place they are spelled out."""

from __future__ import annotations

from typing import Final

SUBSCRIBER_TOPIC: Final = "hwcollab.subscriber.v1"
EMPLOYER_TOPIC: Final = "hwcollab.employer.v1"
OPENING_TOPIC: Final = "hwcollab.opening.v1"
NOTIFICATION_TOPIC: Final = "hwcollab.notification.v1"

# The notifier's internal work queue: one delivery job per (subscriber, email), keyed by
# subscriber id so that one subscriber's jobs stay ordered on one partition.
DELIVERY_TOPIC: Final = "hwcollab.notifier.delivery.v1"

PUBLIC_TOPICS: Final = (SUBSCRIBER_TOPIC, EMPLOYER_TOPIC, OPENING_TOPIC, NOTIFICATION_TOPIC)
ALL_TOPICS: Final = (*PUBLIC_TOPICS, DELIVERY_TOPIC)

DLQ_SUFFIX: Final = ".dlq"

_DAY_MS: Final = 24 * 60 * 60 * 1000

# How long each topic keeps its records (``retention.ms``; a dead-letter twin keeps its topic's).
# Topics that carry personal data (subscribers' events, whom the notifier emailed, its delivery
# jobs) keep them 7 days: an erased person's events are gone from Kafka a week later, so a replay
# cannot bring them back. The services' databases, not the topics, are the records of state.
TOPIC_RETENTION_MS: Final[dict[str, int]] = {
    SUBSCRIBER_TOPIC: 7 * _DAY_MS,
    NOTIFICATION_TOPIC: 7 * _DAY_MS,
    DELIVERY_TOPIC: 7 * _DAY_MS,
    EMPLOYER_TOPIC: 30 * _DAY_MS,
    OPENING_TOPIC: 30 * _DAY_MS,
}


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of ``topic``: messages that cannot be parsed or validated."""
    return topic + DLQ_SUFFIX


def retention_ms(topic: str) -> int | None:
    """How long ``topic`` (or its dead-letter twin) keeps its records; None for a topic that is
    not the product's (the broker's default applies)."""
    return TOPIC_RETENTION_MS.get(topic.removesuffix(DLQ_SUFFIX))


# Consumer groups. Replicas of one service share its group, so partitions spread over them.
SUBSCRIBER_GROUP: Final = "hwcollab-subscriber"
EMPLOYER_GROUP: Final = "hwcollab-employer"
NOTIFIER_GROUP: Final = "hwcollab-notifier"
NOTIFIER_DELIVERY_GROUP: Final = "hwcollab-notifier-delivery"
