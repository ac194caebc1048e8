"""``hwcollab suppression …`` and ``hwcollab dlq …`` against a running notifier process."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from hwcollab_cli.main import app
from hwcollab_schemas.topics import (
    EMPLOYER_TOPIC,
)
from hwcollab_testing.events import Place, event_publisher, posted, registered
from hwcollab_testing.kafka import fresh_notifier_groups
from hwcollab_testing.plugin import ServiceStarter, SmtpSink
from hwcollab_testing.waiting import eventually

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
        await producer.send_and_wait(
            EMPLOYER_TOPIC, f"not json [bold]{marker}[/bold]".encode(), key=b"x"
        )
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

    await eventually(dead_lettered, timeout=60, interval=0.25, what="the poison message in the DLQ")
    listing = cli("dlq", "list", EMPLOYER_TOPIC, "--json", "--limit", "1000")
    assert marker in listing
    assert "not JSON" in listing
    assert "replayed 0 message(s)" in cli("dlq", "replay", EMPLOYER_TOPIC, "-m", "0:999999999")

    def ours(*filters: str) -> list[dict[str, Any]]:
        output = cli("dlq", "list", EMPLOYER_TOPIC, "--json", "--limit", "1000", *filters)
        messages: list[dict[str, Any]] = json.loads(output)["messages"]
        return messages

    found = ours("--contains", marker, "--reason", "NOT json")
    assert found
    assert all(m["headers"]["error"].startswith("not JSON") for m in found)
    assert all(m["headers"]["original_topic"] == EMPLOYER_TOPIC for m in found)
    assert ours("--contains", marker, "--reason", "schema_version") == []
    assert "[bold]" in cli("dlq", "list", EMPLOYER_TOPIC, "--contains", marker)  # text, not markup

    dry = cli("dlq", "replay", EMPLOYER_TOPIC, "--contains", marker, "--dry-run")
    assert f"would replay {len(found)} message(s)" in dry
    assert len(ours("--contains", marker)) == len(found)
    assert "replayed 0 message(s)" in cli(
        "dlq", "replay", EMPLOYER_TOPIC, "--contains", marker, "--reason", "no such reason"
    )
    # Replayed as it is, a message that still cannot be parsed is dead-lettered again.
    assert f"replayed {len(found)} message(s)" in cli(
        "dlq", "replay", EMPLOYER_TOPIC, "--contains", marker
    )
    await eventually(
        lambda: len(ours("--contains", marker)) >= 2 * len(found),
        timeout=60,
        interval=0.25,
        what="the replayed poison dead-lettered again",
    )


async def test_operators_follow_an_opening_s_fan_out_from_the_cli(
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
            "MONGODB_DATABASE": f"test_notifier_fanout_{uuid.uuid4().hex[:12]}",
            "SMTP_HOST": smtp_sink.host,
            "SMTP_PORT": str(smtp_sink.port),
            "ADMIN_TOKEN": TOKEN,
            "CONSUMER_GROUP_SUFFIX": await fresh_notifier_groups(kafka_bootstrap),
        },
    )
    run = uuid.uuid4().hex[:10]
    place = Place(zip="59802", lat=46.8721, lon=-113.9940, timezone="America/Denver")
    emails = [f"fanout-{run}-{n}@example.org" for n in range(12)]
    opening_id = f"fanout-{run}"
    now = datetime.now(UTC)
    runner = CliRunner()
    common = ["--notifier-url", notifier.url, "--admin-token", TOKEN]

    def fanout(*args: str) -> Any:
        return runner.invoke(app, ["fanout", *args, *common])

    unknown = fanout(opening_id)
    assert unknown.exit_code == 1
    assert "404" in unknown.output

    async with event_publisher(kafka_bootstrap) as publish:
        for n, email in enumerate(emails):
            await publish(registered(f"fanout-{run}-{n}", email, place=place, now=now))

        def welcomed() -> bool:
            return all(smtp_sink.messages_to(email) for email in emails)

        await eventually(welcomed, timeout=120, what="every subscriber's welcome email")
        await publish(posted(opening_id, employer_id=f"e-{run}", place=place, now=now))

    async def matched() -> bool:
        async with httpx.AsyncClient() as http:
            answer = await http.get(
                f"{notifier.url}/api/admin/openings/{opening_id}/fanout",
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        return answer.status_code == 200 and answer.json()["matches"] == len(emails)

    await eventually(matched, timeout=60, what="the opening's matches in the ledger")
    watched = await asyncio.to_thread(fanout, opening_id, "--watch", "--interval", "0.2")
    assert watched.exit_code == 0, watched.output
    assert f"{len(emails)}/{len(emails)}" in watched.output
    answer = json.loads(fanout(opening_id, "--json").output)
    assert answer == {
        "opening_id": opening_id,
        "matches": len(emails),
        "pending": 0,
        "sent": len(emails),
        "dropped": 0,
        "failed": 0,
    }
    announced = [
        m
        for email in emails
        for m in smtp_sink.messages_to(email)
        if opening_id in str(m.message["X-HWcollab-Opening-Ids"] or "")
    ]
    assert len(announced) == len(emails)
