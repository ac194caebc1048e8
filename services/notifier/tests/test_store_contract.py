"""One contract for the delivery ports, run against the in-memory fake and the MongoDB store side
by side: the unit tests of the batch logic are only as good as the fake is true."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from hwcollab_common.mongo import Document
from hwcollab_common.outbox import OUTBOX_COLLECTION
from hwcollab_notifier.domain import ledger_row
from hwcollab_notifier.ports import Channel, Claim, DeliveryPorts, Settlement
from hwcollab_notifier.repository import NotifierRepository
from hwcollab_schemas import Event
from hwcollab_schemas.events import NotificationFailed, NotificationFailedPayload

from .fakes import FakeDeliveryStore

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


@dataclass
class Subject:
    """A store under contract, and how to put documents into it and read its outbox."""

    store: DeliveryPorts
    seed: Any
    outbox: Any


@pytest.fixture(params=["fake", pytest.param("mongo", marks=pytest.mark.integration)])
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    if request.param == "fake":
        fake = FakeDeliveryStore()

        async def seed_fake(collection: str, *docs: Document) -> None:
            fake.seed(collection, *docs)

        async def fake_outbox() -> list[str]:
            return [e.event_type for e in fake.events]

        yield Subject(fake, seed_fake, fake_outbox)
        return
    mongo_url: str = request.getfixturevalue("mongo_url")
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongo_url, tz_aware=True)
    name = f"test_store_contract_{uuid.uuid4().hex[:12]}"
    repository = NotifierRepository(client[name])
    await repository.ensure_indexes()

    async def seed_mongo(collection: str, *docs: Document) -> None:
        await client[name][collection].insert_many(list(docs))

    async def mongo_outbox() -> list[str]:
        return [d["event_type"] async for d in client[name][OUTBOX_COLLECTION].find()]

    try:
        yield Subject(repository, seed_mongo, mongo_outbox)
    finally:
        await client.drop_database(name)
        await client.close()


def row(
    subscriber_id: str, opening_id: str, *, channel: Channel = "immediate", minute: int = 0
) -> Document:
    return ledger_row(
        subscriber_id=subscriber_id,
        opening_id=opening_id,
        channel=channel,
        now=NOW + timedelta(minutes=minute),
    )


def claim(message_id: str) -> Claim:
    return Claim(message_id=message_id, kind="immediate", subscriber_id="s1", opening_ids=("o1",))


async def test_bulk_reads_answer_by_id_and_leave_out_what_is_missing(subject: Subject) -> None:
    await subject.seed("subscribers", {"_id": "s1", "status": "active"}, {"_id": "s2"})
    await subject.seed("openings", {"_id": "o1", "status": "open", "details": {"x": 1}})
    await subject.seed("employers", {"_id": "e1", "status": "approved"})
    store = subject.store
    assert set(await store.subscribers_by_id(["s1", "s2", "s3", "s1"])) == {"s1", "s2"}
    assert (await store.subscribers_by_id(["s1"]))["s1"]["status"] == "active"
    assert set(await store.openings_by_id(["o1", "o2"])) == {"o1"}
    assert set(await store.employers_by_id(["e1"])) == {"e1"}
    assert await store.subscribers_by_id([]) == {}
    assert [d["_id"] for d in await store.live_openings()] == ["o1"]


async def test_suppression_is_checked_for_a_whole_batch_on_normalized_addresses(
    subject: Subject,
) -> None:
    async def suppress(tx: Settlement) -> Sequence[Event]:
        await tx.suppress(" Gone@Example.org", reason="bounce", now=NOW)
        return []

    await subject.store.settle(suppress)
    found = await subject.store.suppressed_among(["gone@example.org", "GONE@example.org ", "x@y.z"])
    assert found == {"gone@example.org"}


async def test_pairs_are_recorded_once_and_read_in_bulk(subject: Subject) -> None:
    store = subject.store
    rows = [
        row("s1", "o1"),
        row("s2", "o1", channel="digest", minute=2),
        row("s2", "o2", channel="digest", minute=1),
    ]
    assert sorted(await store.add_pairs(rows)) == sorted(r["_id"] for r in rows)
    assert await store.add_pairs([row("s1", "o1"), row("s3", "o1")]) == [row("s3", "o1")["_id"]]
    assert set(await store.rows_by_key([rows[0]["_id"], "missing"])) == {rows[0]["_id"]}
    digest = await store.open_rows_of(["s2", "s1"], channel="digest")
    assert [r["opening_id"] for r in digest] == ["o2", "o1"]  # oldest match first
    assert await store.subscribers_with_digest_rows() == ["s2"]


async def test_rows_move_on_only_while_open(subject: Subject) -> None:
    store = subject.store
    first, second = row("s1", "o1"), row("s2", "o1")
    await store.add_pairs([first, second])
    await store.set_rows([first["_id"]], status="pending", now=NOW, reason="452", count=True)
    await store.set_rows([second["_id"]], status="dropped", now=NOW, reason="paused")
    await store.set_rows([first["_id"], second["_id"]], status="sent", now=NOW)
    rows = await store.rows_by_key([first["_id"], second["_id"]])
    assert (rows[first["_id"]]["status"], rows[first["_id"]]["attempts"]) == ("sent", 1)
    assert rows[second["_id"]]["status"] == "dropped"  # settled rows stay as they are


async def test_a_message_is_claimed_by_one_sender_at_a_time_and_remembers_who(
    subject: Subject,
) -> None:
    store = subject.store
    ids = ["<a>", "<b>", "<c>"]
    assert await store.claim_messages(
        [claim(i) for i in ids], owner="p1", now=NOW, lease=LEASE
    ) == dict.fromkeys(ids, 1)
    # Live leases: nobody else, not even the same owner again.
    assert await store.claim_messages(
        [claim("<a>"), claim("<d>")], owner="p2", now=NOW, lease=LEASE
    ) == {"<d>": 1}

    async def sent(tx: Settlement) -> Sequence[Event]:
        await tx.finish_messages(["<b>"], status="sent", now=NOW)
        return []

    await store.settle(sent)
    await store.release_messages(["<c>"], owner="p1", now=NOW, detail="421 away")
    # A renewal by someone else changes nothing; the holder's own keeps its claim past the lease.
    await store.renew_claims(["<a>", "<d>"], owner="p1", now=NOW + LEASE, lease=LEASE)
    await store.renew_claims(["<a>", "<d>"], owner="p2", now=NOW + LEASE, lease=LEASE)
    held = NOW + LEASE + timedelta(seconds=1)
    assert (
        await store.claim_messages([claim("<a>"), claim("<d>")], owner="p3", now=held, lease=LEASE)
        == {}
    )
    records = await store.messages_by_id(["<a>"])
    assert records["<a>"]["lease_until"] == NOW + 2 * LEASE
    # The holder dies: nobody renews, and once the renewed lease runs out the claim is free.
    # After the lease: the crashed "<a>" again, never the sent "<b>", the released "<c>" at once.
    later = NOW + 2 * LEASE + timedelta(seconds=1)
    claimed = await store.claim_messages(
        [claim(i) for i in ids], owner="p2", now=later, lease=LEASE
    )
    assert claimed == {"<a>": 2, "<c>": 1}  # the attempt each claim is
    records = await store.messages_by_id(ids)
    assert [c["owner"] for c in records["<a>"]["claims"]] == ["p1", "p2"]
    assert records["<a>"]["attempts"] == 2
    assert records["<c>"]["attempts"] == 1  # the outage did not count
    assert records["<b>"]["status"] == "sent"
    assert records["<a>"]["subscriber_id"] == "s1"
    await store.retry_messages(["<a>"], now=later, detail="452 mailbox full")
    assert (await store.messages_by_id(["<a>"]))["<a>"]["status"] == "retry"


async def test_a_settlement_commits_everything_with_its_events_or_nothing(subject: Subject) -> None:
    store = subject.store
    pair = row("s1", "o1")
    await store.add_pairs([pair])
    await subject.seed("subscribers", {"_id": "s1", "status": "active", "welcome_pending": True})
    await subject.seed("link_requests", {"_id": "r1", "status": "pending"})
    await store.claim_messages([claim("<m>")], owner="p1", now=NOW, lease=LEASE)
    event = NotificationFailed.create(
        NotificationFailedPayload(
            message_id="<m>",
            subscriber_id="s1",
            kind="immediate",
            opening_ids=("o1",),
            permanent=True,
            reason="550",
            failed_at=NOW,
        ),
        producer="notifier",
        occurred_at=NOW,
    )

    async def failing(tx: Settlement) -> Sequence[Event]:
        await tx.finish_messages(["<m>"], status="failed", now=NOW)
        await tx.finish_rows([pair["_id"]], status="failed", now=NOW)
        raise RuntimeError("cut off mid-settlement")

    with pytest.raises(RuntimeError):
        await store.settle(failing)
    assert (await store.messages_by_id(["<m>"]))["<m>"]["status"] == "sending"
    assert (await store.rows_by_key([pair["_id"]]))[pair["_id"]]["status"] == "pending"
    assert await subject.outbox() == []

    async def settles(tx: Settlement) -> Sequence[Event]:
        await tx.finish_messages(["<m>"], status="sent", now=NOW)
        await tx.finish_rows([pair["_id"]], status="sent", now=NOW)
        await tx.finish_welcomes(["s1"], now=NOW)
        await tx.finish_link_requests(["r1"], status="sent", now=NOW)
        return [event]

    await store.settle(settles)
    message = (await store.messages_by_id(["<m>"]))["<m>"]
    assert message["status"] == "sent"
    assert "lease_until" not in message
    assert (await store.rows_by_key([pair["_id"]]))[pair["_id"]]["status"] == "sent"
    assert (await store.subscribers_by_id(["s1"]))["s1"]["welcome_pending"] is False
    assert (await store.link_requests_by_id(["r1"]))["r1"]["status"] == "sent"
    assert await subject.outbox() == ["notification.failed"]


async def test_bulk_reads_and_writes_span_many_chunks(subject: Subject) -> None:
    """More ids than one query carries (``IN_CHUNK``): every one is read and written."""
    store = subject.store
    readers = [f"s{n:03d}" for n in range(250)]
    rows = [row(s, "o1", channel="digest", minute=250 - n) for n, s in enumerate(readers)]
    await store.add_pairs(rows)
    assert len(await store.rows_by_key([r["_id"] for r in rows])) == 250
    digest = await store.open_rows_of(reversed(readers), channel="digest")
    assert [r["subscriber_id"] for r in digest] == readers[::-1]  # oldest match first
    await store.set_rows([r["_id"] for r in rows], status="dropped", now=NOW, reason="closed")
    assert await store.open_rows_of(readers, channel="digest") == []
    claims = [Claim(f"<m{n}>", "immediate", s, ("o1",)) for n, s in enumerate(readers)]
    assert len(await store.claim_messages(claims, owner="p1", now=NOW, lease=LEASE)) == 250
    later = NOW + LEASE + timedelta(seconds=1)
    assert set(await store.claim_messages(claims, owner="p2", now=later, lease=LEASE)) == {
        c.message_id for c in claims
    }


async def test_digests_left_unsettled_are_found_with_their_rows(subject: Subject) -> None:
    store = subject.store
    key = "daily:2026-03-02"
    first = Claim("<d1>", "digest", "s1", ("o1", "o2"), digest_key=key, pair_keys=("k1", "k2"))
    second = Claim("<d2>", "digest", "s2", ("o1",), digest_key=key, pair_keys=("k3",))
    await store.claim_messages([first, second, claim("<i1>")], owner="p1", now=NOW, lease=LEASE)

    async def sent(tx: Settlement) -> Sequence[Event]:
        await tx.finish_messages(["<d2>"], status="sent", now=NOW)
        await tx.finish_digests(["s2"])
        return []

    await store.settle(sent)
    found = await store.unsettled_digests(["s1", "s2", "s3"])
    assert found == [
        {
            "subscriber_id": "s1",
            "message_id": "<d1>",
            "digest_key": key,
            "pair_keys": ["k1", "k2"],
            "claimed_at": NOW,
        }
    ]
    # Sent again after the lease: it stays the open one until it settles.
    later = NOW + LEASE + timedelta(seconds=1)
    assert await store.claim_messages([first], owner="p2", now=later, lease=LEASE) == {"<d1>": 2}
    assert [d["message_id"] for d in await store.unsettled_digests(["s1"])] == ["<d1>"]
    # A newer digest of someone whose open one had nothing left to send takes its place.
    newer = Claim("<d3>", "digest", "s1", ("o3",), digest_key="daily:2026-03-03", pair_keys=("k4",))
    await store.claim_messages([newer], owner="p2", now=later, lease=LEASE)
    [found_newer] = await store.unsettled_digests(["s1"])
    assert (found_newer["message_id"], found_newer["pair_keys"]) == ("<d3>", ["k4"])
