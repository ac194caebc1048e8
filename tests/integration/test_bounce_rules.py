"""The bounce rules against a real MongoDB, time on a FixedClock: the soft-bounce window, forgiven
bounces, delay warnings, feedback that is no complaint, erased people, and what is staged."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hwcollab_common.clock import FixedClock
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_notifier.bounce_intake import BounceIntake
from hwcollab_notifier.bounce_records import BounceRecords, forgive_address
from hwcollab_notifier.domain import hash_id
from hwcollab_notifier.mail import BounceAddresses
from hwcollab_notifier.repository import NotifierRepository
from hwcollab_notifier.settings import Settings

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 24, 15, tzinfo=UTC)
DOMAIN = "bounces.hwcollab.test"
REPORTS = Path(__file__).parents[2] / "services/notifier/tests/reports"


@dataclass
class Intake:
    clock: FixedClock
    repo: NotifierRepository
    records: BounceRecords
    intake: BounceIntake
    addresses: BounceAddresses
    sent: int = 0

    async def subscriber(self, name: str) -> str:
        await self.repo.subscribers.insert_one(
            {"_id": name, "email": f"{name}@example.org", "status": "active", "version": 2}
        )
        return name

    async def email(self, subscriber_id: str) -> tuple[str, str]:
        """A message record as the postman leaves it: (Message-ID, its bounce address)."""
        self.sent += 1
        message_id = f"<immediate.{self.sent}.{uuid.uuid4().hex[:6]}@hwcollab.example>"
        await self.repo.messages.insert_one(
            {
                "_id": message_id,
                "kind": "immediate",
                "subscriber_id": subscriber_id,
                "subscriber_hash": hash_id(subscriber_id),
                "opening_ids": ["o1"],
                "status": "sent",
            }
        )
        address = self.addresses.address_for(message_id=message_id, subscriber_id=subscriber_id)
        assert address is not None
        return message_id, address

    async def report(
        self, name: str, subscriber_id: str, *, email: tuple[str, str] | None = None
    ) -> str:
        message_id, return_path = email or await self.email(subscriber_id)
        text = (REPORTS / name).read_text()
        for placeholder, value in {
            "@@MESSAGE_ID@@": message_id,
            "@@RETURN_PATH@@": return_path,
            "@@RECIPIENT@@": f"{subscriber_id}@example.org",
            "@@FEEDBACK_ADDRESS@@": f"fbl@{DOMAIN}",
        }.items():
            text = text.replace(placeholder, value)
        raw = text.replace("\n", "\r\n").encode()
        result = await self.intake.receive(raw, mail_from="", recipients=[return_path])
        return result.outcome

    async def staged(self, subscriber_id: str) -> list[str]:
        cursor = self.repo.db["outbox"].find({"key": subscriber_id})
        return [str(doc["event_type"]) async for doc in cursor]


@pytest.fixture
async def bounces(mongo_url: str) -> AsyncIterator[Intake]:
    settings = Settings(
        mongodb_url=mongo_url, mongodb_database=f"test_bounces_{uuid.uuid4().hex[:12]}"
    )
    clock = FixedClock(START)
    runtime = ServiceRuntime(settings, name="notifier", clock=clock)
    repo = NotifierRepository(runtime.db)
    await repo.ensure_indexes()
    records = BounceRecords(runtime.db)
    await records.ensure_indexes()
    addresses = BounceAddresses(domain=DOMAIN, key="k" * 40)
    intake = BounceIntake(
        clock=clock,
        repository=repo,
        records=records,
        addresses=addresses,
        soft_limit=3,
        soft_window=timedelta(days=7),
    )
    try:
        yield Intake(clock, repo, records, intake, addresses)
    finally:
        await runtime.db.client.drop_database(runtime.db.name)


async def test_soft_bounces_of_different_emails_within_the_window_count_as_hard(
    bounces: Intake,
) -> None:
    b = bounces
    person = await b.subscriber("full")
    assert await b.report("mailbox_full_4.2.2.eml", person) == "soft"
    b.clock.advance(timedelta(days=8))  # the first one falls out of the window
    assert await b.report("mailbox_full_4.2.2.eml", person) == "soft"
    assert await b.report("mailbox_full_4.2.2.eml", person) == "soft"
    assert not await b.repo.is_suppressed("full@example.org")
    assert await b.staged(person) == []
    assert await b.report("mailbox_full_4.2.2.eml", person) == "hard"
    assert await b.repo.is_suppressed("full@example.org")
    assert await b.staged(person) == ["notification.failed"]
    failed = await b.repo.db["outbox"].find_one({"key": person})
    assert failed is not None
    assert b'"permanent":true' in failed["value"]


async def test_forgiven_bounces_no_longer_count(bounces: Intake) -> None:
    b = bounces
    person = await b.subscriber("forgiven")
    for _ in range(3):
        await b.report("mailbox_full_4.2.2.eml", person)
    assert await b.repo.is_suppressed("forgiven@example.org")
    assert await forgive_address(
        "Forgiven@Example.org", repository=b.repo, records=b.records, now=b.clock.now()
    ) == (True, 3)
    assert not await b.repo.is_suppressed("forgiven@example.org")
    assert await b.report("mailbox_full_4.2.2.eml", person) == "soft"


async def test_warnings_and_other_feedback_are_kept_not_acted_on(bounces: Intake) -> None:
    b = bounces
    person = await b.subscriber("kept")
    message_id, return_path = await b.email(person)
    delayed = (
        (REPORTS / "mailbox_full_4.2.2.eml")
        .read_text()
        .replace("Action: failed", "Action: delayed")
        .replace("@@MESSAGE_ID@@", message_id)
        .replace("@@RETURN_PATH@@", return_path)
        .replace("@@RECIPIENT@@", "kept@example.org")
    )
    result = await b.intake.receive(delayed.encode(), mail_from="", recipients=[return_path])
    assert result.outcome == "ignored"
    not_spam = (
        (REPORTS / "arf_abuse.eml")
        .read_text()
        .replace("Feedback-Type: abuse", "Feedback-Type: not-spam")
        .replace("@@MESSAGE_ID@@", message_id)
        .replace("@@RETURN_PATH@@", return_path)
        .replace("@@RECIPIENT@@", "kept@example.org")
        .replace("@@FEEDBACK_ADDRESS@@", f"fbl@{DOMAIN}")
    )
    result = await b.intake.receive(not_spam.encode(), mail_from="", recipients=[f"fbl@{DOMAIN}"])
    assert result.outcome == "ignored"
    assert not await b.repo.is_suppressed("kept@example.org")
    assert await b.staged(person) == []
    total, listed = await b.records.list(limit=10, offset=0)
    assert total == 2
    assert all("raw" not in doc for doc in listed)
    shown = await b.records.get(str(listed[0]["_id"]))
    assert shown is not None
    assert bytes(shown["raw"]).startswith(b"From: ")
    assert shown["expires_at"] == START + timedelta(days=30)


async def test_a_complaint_suppresses_and_stages_an_unsubscribe(bounces: Intake) -> None:
    b = bounces
    person = await b.subscriber("angry")
    assert await b.report("arf_abuse.eml", person) == "complaint"
    assert await b.repo.is_suppressed("angry@example.org")
    assert await b.staged(person) == ["notification.complained"]


async def test_a_report_about_another_persons_email_or_an_erased_one_is_not_acted_on(
    bounces: Intake,
) -> None:
    b = bounces
    victim = await b.subscriber("victim")
    other = await b.subscriber("other")
    # A token of the other person's with the victim's Message-ID: the hash does not match.
    victim_email = await b.email(victim)
    _, other_address = await b.email(other)
    assert (
        await b.report("postfix_5.1.1.eml", victim, email=(victim_email[0], other_address))
        == "unknown_message"
    )
    # The token names the victim's message, but no such message record exists.
    ghost_id = "<never-sent@hwcollab.example>"
    ghost = b.addresses.address_for(message_id=ghost_id, subscriber_id=victim)
    assert ghost is not None
    assert await b.report("postfix_5.1.1.eml", victim, email=(ghost_id, ghost)) == (
        "unknown_message"
    )
    assert not await b.repo.is_suppressed("victim@example.org")
    # An erased person: the report is kept and counted only.
    await b.repo.subscribers.replace_one(
        {"_id": other}, {"_id": other, "status": "deleted", "version": 3}
    )
    assert await b.report("postfix_5.1.1.eml", other) == "ignored"
    assert await b.staged(victim) == []
    assert await b.staged(other) == []
