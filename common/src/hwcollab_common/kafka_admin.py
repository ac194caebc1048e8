"""Kafka topic creation: every topic of the product and its dead-letter twin."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import TopicAlreadyExistsError, for_code  # type: ignore[import-untyped]

from hwcollab_schemas.topics import ALL_TOPICS, DLQ_SUFFIX, dlq_topic

__all__ = ["ensure_topics", "product_topics"]


def product_topics() -> list[str]:
    """Every topic the product uses, each followed by its ``.dlq`` twin."""
    return [name for topic in ALL_TOPICS for name in (topic, dlq_topic(topic))]


async def ensure_topics(
    bootstrap: str,
    topics: Iterable[str],
    *,
    partitions: int,
    replication: int = 1,
) -> None:
    """Create each topic and its ``<topic>.dlq`` twin; existing topics are kept as they are.

    Brokers that auto-create topics on first use make them with a single partition, so topics are
    created explicitly before any service starts.
    """
    names: list[str] = []
    for topic in topics:
        twins = (topic,) if topic.endswith(DLQ_SUFFIX) else (topic, dlq_topic(topic))
        names.extend(name for name in twins if name not in names)
    if not names:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="hwcollab-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [
                NewTopic(name=name, num_partitions=partitions, replication_factor=replication)
                for name in missing
            ]
        )
        for topic_error in response.topic_errors:
            name, code = topic_error[0], topic_error[1]
            if code == 0:
                continue
            error_type = for_code(code)
            if error_type is TopicAlreadyExistsError:
                continue
            raise error_type(f"cannot create topic {name!r}: {topic_error[-1]}")
    finally:
        await admin.close()
