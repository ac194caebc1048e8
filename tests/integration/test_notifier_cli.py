"""``hwcollab suppression …`` and ``hwcollab dlq …`` against a running notifier process."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from hwcollab_cli.main import app
from hwcollab_schemas.topics import (
    EMPLOYER_TOPIC,
)
from hwcollab_testing.kafka import fresh_notifier_groups
from hwcollab_testing.plugin import ServiceStarter, SmtpSink

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "cli-test-admin-token"


async def test_operators_manage_suppressions_and_dead_letters_from_the_cli(
    kafka_bootstrap: str,
    mongo_url: str,
    smtp_sink: SmtpSink,
    service_process: ServiceStarter,
) -> None:
    notifier = service_process(
        "notifier",
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "MONGODB_URL": mongo_url,
            "MONGODB_DATABASE": f"test_notifier_cli_{uuid.uuid4().hex[:12]}",
            "SMTP_HOST": smtp_sink.host,
            "SMTP_PORT": str(smtp_sink.port),
            "ADMIN_TOKEN": TOKEN,
            "CONSUMER_GROUP_SUFFIX": await fresh_notifier_groups(kafka_bootstrap),
        },
    )
    runner = CliRunner()
    common = ["--notifier-url", notifier.url, "--admin-token", TOKEN]

    def cli(*args: str) -> str:
        result = runner.invoke(app, [*args, *common])
        assert result.exit_code == 0, result.output
        return result.output

    assert "suppressed" in cli("suppression", "add", "Someone@Example.org", "--reason", "asked")
    assert "someone@example.org" in cli("suppression", "list")
    assert "no longer suppressed" in cli("suppression", "remove", "someone@example.org")
    assert "someone@example.org" not in cli("suppression", "list")
    refused = runner.invoke(
        app, ["suppression", "list", "--notifier-url", notifier.url, "--admin-token", "wrong"]
    )
    assert refused.exit_code == 1
    assert "401" in refused.output

    marker = uuid.uuid4().hex
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(EMPLOYER_TOPIC, f"not json {marker}".encode(), key=b"x")
    finally:
        await producer.stop()

    async def dead_lettered() -> bool:
        async with httpx.AsyncClient() as http:
            response = await http.get(
                f"{notifier.url}/api/admin/dlq",
                params={"topic": EMPLOYER_TOPIC, "limit": 1000},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        return marker in response.text

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not await dead_lettered():
        assert loop.time() < deadline, "the poison message never reached the DLQ"
        await asyncio.sleep(0.25)
    listing = cli("dlq", "list", EMPLOYER_TOPIC, "--json", "--limit", "1000")
    assert marker in listing
    assert "not JSON" in listing
    assert "replayed 0 message(s)" in cli("dlq", "replay", EMPLOYER_TOPIC, "-m", "0:999999999")
