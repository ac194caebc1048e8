"""The product's topics on the broker carry the settings that matter to correctness: retention of
personal data, no unclean leader election, acknowledged writes on every in-sync replica."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import (
    ConfigResource,
    ConfigResourceType,
)

from hwcollab_common.kafka_admin import ensure_topics, product_topics, topic_partitions
from hwcollab_schemas.topics import (
    DELIVERY_TOPIC,
    EMPLOYER_TOPIC,
    NOTIFICATION_TOPIC,
    OPENING_TOPIC,
    SUBSCRIBER_TOPIC,
    dlq_topic,
)
from hwcollab_testing.plugin import TOPIC_PARTITIONS
from hwcollab_testing.waiting import eventually

pytestmark = pytest.mark.integration

WEEK_MS = 7 * 24 * 60 * 60 * 1000
MONTH_MS = 30 * 24 * 60 * 60 * 1000
DECADE_MS = str(3650 * 24 * 60 * 60 * 1000)  # a harmless change on the shared broker
SETTINGS = ("retention.ms", "min.insync.replicas", "unclean.leader.election.enable")


async def topic_settings(bootstrap: str, topics: list[str]) -> dict[str, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        answers: list[Any] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in topics]
        )
    finally:
        await admin.close()
    found: dict[str, dict[str, str]] = {}
    for answer in answers:
        for _code, _message, _kind, name, entries in answer.resources:
            found[name] = {entry[0]: entry[1] for entry in entries if entry[0] in SETTINGS}
    return found


async def test_every_topic_keeps_personal_data_a_week_and_never_elects_an_unclean_leader(
    kafka_bootstrap: str,
) -> None:
    found = await topic_settings(kafka_bootstrap, product_topics())
    retention = {name: int(settings["retention.ms"]) for name, settings in found.items()}
    for topic in (SUBSCRIBER_TOPIC, NOTIFICATION_TOPIC, DELIVERY_TOPIC):
        assert retention[topic] == retention[dlq_topic(topic)] == WEEK_MS, topic
    for topic in (EMPLOYER_TOPIC, OPENING_TOPIC):
        assert retention[topic] == retention[dlq_topic(topic)] == MONTH_MS, topic
    for name, settings in found.items():
        assert settings["unclean.leader.election.enable"] == "false", name
        assert settings["min.insync.replicas"] == "1", name  # one node, one replica
    assert set(found) == set(product_topics())


async def test_creating_topics_again_keeps_their_partitions_and_restores_their_settings(
    kafka_bootstrap: str,
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        (answer,) = await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC, SUBSCRIBER_TOPIC, configs={"retention.ms": DECADE_MS}
                )
            ]
        )
    finally:
        await admin.close()
    assert [resource[0] for resource in answer.resources] == [0]

    async def retention_is(value: str) -> bool:
        found = await topic_settings(kafka_bootstrap, [SUBSCRIBER_TOPIC])
        return found[SUBSCRIBER_TOPIC]["retention.ms"] == value

    # the brokers apply a committed change a moment later
    await eventually(lambda: retention_is(DECADE_MS), timeout=10, what="the changed retention")

    await ensure_topics(kafka_bootstrap, [SUBSCRIBER_TOPIC], partitions=TOPIC_PARTITIONS + 3)

    await eventually(lambda: retention_is(str(WEEK_MS)), timeout=10, what="retention restored")
    partitions = await topic_partitions(kafka_bootstrap, [SUBSCRIBER_TOPIC])
    assert len(partitions) == TOPIC_PARTITIONS


async def test_partitions_of_an_unknown_topic_are_none(kafka_bootstrap: str) -> None:
    found = await topic_partitions(kafka_bootstrap, ["hwcollab.no-such-topic", OPENING_TOPIC])
    assert {tp.topic for tp in found} == {OPENING_TOPIC}
    assert sorted(tp.partition for tp in found) == list(range(TOPIC_PARTITIONS))
