"""The real-process fixtures work: Kafka round-trip, MongoDB transactions, SMTP sink failures."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from hwcollab_cli import components
from hwcollab_cli.processes import ManagedProcess, free_port, port_accepts
from hwcollab_schemas.topics import OPENING_TOPIC, dlq_topic
from hwcollab_testing import plugin
from hwcollab_testing.plugin import ServiceStarter
from hwcollab_testing.smtp import SmtpSink

pytestmark = pytest.mark.integration


async def test_kafka_round_trips_a_message_through_a_consumer_group(kafka_bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        assert await producer.partitions_for(OPENING_TOPIC) == {0, 1, 2, 3}
        assert await producer.partitions_for(dlq_topic(OPENING_TOPIC)) == {0, 1, 2, 3}
        marker = uuid.uuid4().hex.encode()
        await producer.send_and_wait(OPENING_TOPIC, marker, key=b"opening-1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        OPENING_TOPIC,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"fixture-test-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:

        async def read_marker() -> bytes:
            async for record in consumer:
                if record.value == marker:
                    assert record.key == b"opening-1"
                    value: bytes = record.value
                    return value
            raise AssertionError("consumer ended")

        assert await asyncio.wait_for(read_marker(), timeout=30) == marker
        await consumer.commit()
    finally:
        await consumer.stop()


async def test_mongo_enforces_unique_indexes_and_commits_transactions(mongo_url: str) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    db = client[f"fixture_{uuid.uuid4().hex[:8]}"]
    try:
        await db.people.create_index("email", unique=True)
        await db.people.insert_one({"email": "a@example.org"})
        with pytest.raises(DuplicateKeyError):
            await db.people.insert_one({"email": "a@example.org"})

        async with client.start_session() as session, await session.start_transaction():
            await db.people.insert_one({"email": "b@example.org"}, session=session)
            await db.outbox.insert_one({"event": "registered"}, session=session)
        assert await db.people.count_documents({}) == 2
        assert await db.outbox.count_documents({}) == 1

        async with client.start_session() as session:
            await session.start_transaction()
            await db.people.insert_one({"email": "c@example.org"}, session=session)
            await session.abort_transaction()
        assert await db.people.count_documents({"email": "c@example.org"}) == 0
    finally:
        await client.drop_database(db.name)
        await client.close()


async def test_smtp_sink_records_messages_and_applies_programmed_failures(
    smtp_sink: SmtpSink,
) -> None:
    smtp_sink.clear()
    smtp_sink.fail_permanently("gone@example.org")
    smtp_sink.fail_transiently("busy@example.org", 2)

    await aiosmtplib.send(
        "Subject: Hello\r\nFrom: from@example.org\r\nTo: ok@example.org\r\n\r\nBody\r\n",
        sender="from@example.org",
        recipients=["ok@example.org"],
        hostname=smtp_sink.host,
        port=smtp_sink.port,
    )
    received = smtp_sink.wait_for(lambda messages: len(messages) == 1, timeout=5)[0]
    assert received.mail_from == "from@example.org"
    assert received.rcpt_tos == ("ok@example.org",)
    assert received.message["Subject"] == "Hello"
    assert b"Body" in received.raw

    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await aiosmtplib.send(
            "Subject: x\r\n\r\nx\r\n",
            sender="from@example.org",
            recipients=["gone@example.org"],
            hostname=smtp_sink.host,
            port=smtp_sink.port,
        )
    assert refused.value.recipients[0].code == 550

    codes = []
    for _ in range(3):
        try:
            await aiosmtplib.send(
                "Subject: retry\r\n\r\nx\r\n",
                sender="from@example.org",
                recipients=["busy@example.org"],
                hostname=smtp_sink.host,
                port=smtp_sink.port,
            )
            codes.append(250)
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes.append(error.recipients[0].code)
    assert codes == [451, 451, 250]
    assert len(smtp_sink.messages_to("busy@example.org")) == 1
    assert smtp_sink.messages_to("gone@example.org") == []


@pytest.mark.slow
async def test_a_transaction_left_open_by_a_killed_client_ends_within_about_a_minute(
    mongo_url: str,
) -> None:
    """As with mongod: a writer of a document that a SIGKILLed client's transaction holds waits
    until the server ends that transaction, idle for 60 s, and then goes through."""
    database = f"fixture_orphan_{uuid.uuid4().hex[:8]}"
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    try:
        documents = client[database]["documents"]
        await documents.insert_one({"_id": 1, "value": "before"})
        holder = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pymongo import MongoClient\n"
            "documents = MongoClient(sys.argv[1])[sys.argv[2]]['documents']\n"
            "session = documents.database.client.start_session()\n"
            "session.start_transaction()\n"
            "documents.update_one({'_id': 1}, {'$set': {'value': 'held'}}, session=session)\n"
            "print('holding', flush=True)\n"
            "time.sleep(600)\n",
            mongo_url,
            database,
            stdout=asyncio.subprocess.PIPE,
        )
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), timeout=30) == b"holding\n"
        holder.kill()  # SIGKILL: the transaction stays open on the server
        await holder.wait()
        killed = time.monotonic()

        await asyncio.wait_for(
            documents.update_one({"_id": 1}, {"$set": {"value": "after"}}), timeout=90
        )
        waited = time.monotonic() - killed
        print(f"\nFIGURES orphaned_transaction writer_waited_s={waited:.1f}")
        assert await documents.find_one({"_id": 1}) == {"_id": 1, "value": "after"}
        assert 55 < waited < 80, f"the writer waited {waited:.0f} s"
    finally:
        await client.drop_database(database)
        await client.close()


def test_a_kafka_node_keeps_its_storage_and_records_across_a_sigkill(tmp_path: Path) -> None:
    """``KafkaNode`` formats its storage once; a node killed with SIGKILL and started again on the
    same directory is the same cluster and still has what it acknowledged."""
    node = components.KafkaNode(
        port=free_port(), controller_port=free_port(), data_dir=tmp_path / "kafka", partitions=1
    )
    marker = uuid.uuid4().hex.encode()

    def run(work: Callable[[], Coroutine[Any, Any, object]]) -> object:
        node.prepare()
        process = ManagedProcess(name="kafka", argv=node.argv(), log_path=tmp_path / "kafka.log")
        process.start()
        try:
            process.wait_ready(lambda: port_accepts(node.port), timeout=90)
            components.create_topics_when_ready(node.bootstrap, partitions=1, timeout=90)
            return asyncio.run(work())
        finally:
            process.kill()

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=node.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(OPENING_TOPIC, marker)
        finally:
            await producer.stop()

    async def consume() -> list[bytes]:
        consumer = AIOKafkaConsumer(
            OPENING_TOPIC, bootstrap_servers=node.bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=10_000)
            return [record.value for records in batch.values() for record in records]
        finally:
            await consumer.stop()

    meta = tmp_path / "kafka" / "log" / "meta.properties"
    run(produce)
    cluster = meta.read_text()
    assert run(consume) == [marker]
    assert meta.read_text() == cluster, "formatted once, then kept"


def test_a_kafka_node_without_its_jars_says_how_to_get_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HWCOLLAB_KAFKA_LIBS", str(tmp_path / "nowhere"))
    node = components.KafkaNode(port=1, controller_port=2, data_dir=tmp_path / "kafka")
    with pytest.raises(components.KafkaNotInstalledError, match="run `make install`"):
        node.argv()


def test_a_service_whose_port_was_taken_meanwhile_starts_on_another(
    kafka_bootstrap: str,
    mongo_url: str,
    service_process: ServiceStarter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process may bind a port between its picking and the service's start; the
    starter must not take that process's answers for the service's."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    taken_port = taken.getsockname()[1]
    ports = iter([taken_port])
    monkeypatch.setattr(plugin, "free_port", lambda: next(ports, None) or free_port())
    try:
        employer = service_process(
            "employer",
            {
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "MONGODB_URL": mongo_url,
                "MONGODB_DATABASE": f"test_port_taken_{uuid.uuid4().hex[:12]}",
            },
        )
    finally:
        taken.close()
    assert employer.port != taken_port
    assert plugin.listens(employer.pid, employer.port)
    assert httpx.get(f"{employer.url}/healthz", timeout=5).status_code == 200
