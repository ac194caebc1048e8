"""Kafka topic creation: every topic of the product and its dead-letter twin."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import (
    ConfigResource,
    ConfigResourceType,
)
from aiokafka.errors import TopicAlreadyExistsError, for_code

from hwcollab_schemas.topics import ALL_TOPICS, DLQ_SUFFIX, dlq_topic, retention_ms

__all__ = ["ensure_topics", "product_topics", "topic_configs", "topic_partitions"]


def topic_configs(topic: str, *, replication: int) -> dict[str, str]:
    """The settings every product topic gets, on any cluster.

    ``min.insync.replicas`` with the producers' ``acks=all``: a write is acknowledged only once
    that many replicas have it (2 of 3 in production; 1 on a single node). No unclean leader
    election: a replica that missed writes never becomes leader and drops them. Retention: see
    :data:`hwcollab_schemas.topics.TOPIC_RETENTION_MS`.
    """
    configs = {
        "min.insync.replicas": str(max(1, min(2, replication - 1))),
        "unclean.leader.election.enable": "false",
    }
    retention = retention_ms(topic)
    if retention is not None:
        configs["retention.ms"] = str(retention)
    return configs


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
    """Create each topic and its ``<topic>.dlq`` twin with :func:`topic_configs`; an existing
    topic keeps its partitions and gets those settings again (so a changed retention applies).

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
        present = [name for name in names if name in existing]
        if present:
            answers = await admin.alter_configs(
                [
                    ConfigResource(
                        ConfigResourceType.TOPIC,
                        name,
                        configs=topic_configs(name, replication=replication),
                    )
                    for name in present
                ]
            )
            for answer in answers:
                for code, message, _kind, name in answer.resources:
                    if code != 0:
                        raise for_code(code)(f"cannot configure topic {name!r}: {message}")
        if not missing:
            return
        response = await admin.create_topics(
            [
                NewTopic(
                    name=name,
                    num_partitions=partitions,
                    replication_factor=replication,
                    topic_configs=topic_configs(name, replication=replication),
                )
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


async def topic_partitions(bootstrap: str, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of ``topics`` that the cluster knows (none for a topic it does not).

    Asked of the cluster's metadata through the admin client: a consumer's
    ``partitions_for_topic`` only knows topics it subscribed to (``topics()`` fetches the
    cluster's metadata but does not keep it), so for any other topic it answers nothing.
    """
    wanted = list(dict.fromkeys(topics))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="hwcollab-admin")
    await admin.start()
    try:
        described = await admin.describe_topics(wanted)
    finally:
        await admin.close()
    found = {
        entry["topic"]: sorted(p["partition"] for p in entry["partitions"])
        for entry in described
        if entry["error_code"] == 0
    }
    return [TopicPartition(topic, p) for topic in wanted for p in found.get(topic, ())]
