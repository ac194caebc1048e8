"""The batched delivery path on in-memory ports: bulk reads and claims, one settlement per batch,
re-checks on the batch's snapshot, and each email's own fate when it bounces or waits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hwcollab_common.clock import FixedClock
from hwcollab_common.errors import TransientError
from hwcollab_common.tokens import LinkSigner
from hwcollab_notifier.announce import immediate_jobs
from hwcollab_notifier.delivery import Deliveries
from hwcollab_notifier.digests import DigestRunner
from hwcollab_notifier.domain import ledger_row, pair_key
from hwcollab_notifier.mail import EmailComposer, SendOutcome
from hwcollab_notifier.ports import Channel
from hwcollab_notifier.postman import Postman
from hwcollab_notifier.settings import Settings
from hwcollab_schemas.events import (
    NotificationBatchSent,
    NotificationBatchSentPayload,
    NotificationFailedPayload,
    OpeningDetails,
    SubscriberProfile,
)
from hwcollab_testing.events import Place, posted, registered

from .fakes import FakeDeliveryStore, FakeMailer, opening_document, subscriber_document

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
DULUTH = Place(zip="55802", lat=46.78, lon=-92.10)
MIAMI = Place(zip="33101", lat=25.77, lon=-80.19, timezone="America/New_York")
LEASE = timedelta(seconds=300)


def profile(subscriber_id: str, *, place: Place = DULUTH, **changes: Any) -> SubscriberProfile:
    event = registered(subscriber_id, f"{subscriber_id}@example.org", place=place, now=NOW)
    assert isinstance(event.payload, SubscriberProfile)
    return event.payload.model_copy(update=changes)


def opening(opening_id: str, *, employer_id: str = "e1") -> OpeningDetails:
    event = posted(opening_id, employer_id=employer_id, place=DULUTH, now=NOW - timedelta(hours=1))
    assert isinstance(event.payload, OpeningDetails)
    return event.payload


@dataclass
class Notifier:
    store: FakeDeliveryStore
    mailer: FakeMailer
    clock: FixedClock
    deliveries: Deliveries
    digests: DigestRunner
    postman: Postman

    def readers(self, *profiles: SubscriberProfile, **fields: Any) -> None:
        self.store.seed("subscribers", *(subscriber_document(p, **fields) for p in profiles))

    def openings(self, *openings: OpeningDetails) -> None:
        self.store.seed("openings", *(opening_document(o) for o in openings))
        self.store.seed(
            "employers", *({"_id": o.employer_id, "status": "approved"} for o in openings)
        )

    async def pairs(
        self,
        subscriber_ids: list[str],
        opening_id: str,
        channel: Channel = "immediate",
        *,
        recorded: bool = False,
    ) -> list[str]:
        """The pairs' keys; their rows as the announcer leaves them: none for an immediate pair
        (unless ``recorded``: a reader whose welcome was pending, or a row held back)."""
        rows = [
            ledger_row(
                subscriber_id=s, opening_id=opening_id, channel=channel, now=self.clock.now()
            )
            for s in subscriber_ids
        ]
        if channel == "immediate" and not recorded:
            return [str(row["_id"]) for row in rows]
        return await self.store.add_pairs(rows)

    def row(self, subscriber_id: str, opening_id: str) -> dict[str, Any]:
        return self.store.collections["ledger"][pair_key(subscriber_id, opening_id)]

    def postman_of(self, mailer: FakeMailer, *, owner: str) -> Postman:
        return Postman(
            clock=self.clock,
            store=self.store,
            mailer=mailer,
            lease=LEASE,
            max_attempts=3,
            owner=owner,
        )

    def deliveries_with(self, postman: Postman) -> Deliveries:
        return build_deliveries(self.store, self.clock, postman)


def build_deliveries(store: FakeDeliveryStore, clock: FixedClock, postman: Postman) -> Deliveries:
    settings = Settings(delivery_batch_size=200, delivery_max_attempts=3)

    async def no_welcome_matches(profiles: Any) -> None:
        return None

    return Deliveries(
        clock=clock,
        signer=LinkSigner("unit-test-link-signing-key-0123456789", clock=clock),
        store=store,
        composer=EmailComposer(
            mail_from="HWcollab <opportunities@hwcollab.example>",
            postal_address="1 Main St, Duluth MN",
            subscriber_public_url="https://alerts.example.org",
            employer_public_url="https://jobs.example.org",
            clock=clock,
        ),
        postman=postman,
        settings=settings,
        welcome_matches=no_welcome_matches,
    )


@pytest.fixture
def notifier() -> Notifier:
    store, mailer, clock = FakeDeliveryStore(), FakeMailer(), FixedClock(NOW)
    postman = Postman(
        clock=clock, store=store, mailer=mailer, lease=LEASE, max_attempts=3, owner="host:1:a"
    )
    deliveries = build_deliveries(store, clock, postman)
    digests = DigestRunner(
        clock=clock,
        store=store,
        composer=deliveries._composer,
        postman=postman,
        deliveries=deliveries,
        settings=Settings(delivery_batch_size=200, digest_max_items=25),
    )
    return Notifier(store, mailer, clock, deliveries, digests, postman)


def test_an_openings_matches_become_a_few_jobs_not_one_per_pair() -> None:
    pairs = [(f"s{i}", "o1") for i in range(1200)] + [("s1", "o2")]
    jobs = immediate_jobs(pairs, now=NOW, size=500)
    assert [len(job.recipients) for job in jobs] == [500, 500, 200, 1]
    assert {(s, job.opening_id) for job in jobs for s in job.recipients} == set(pairs)
    assert jobs[-1].subscriber_ids == ()
    assert jobs[-1].subscriber_id == "s1"


@pytest.mark.parametrize("recorded", [False, True], ids=["new pairs", "recorded pairs"])
async def test_a_batch_is_sent_once_with_a_handful_of_store_calls_and_one_event(
    notifier: Notifier, recorded: bool
) -> None:
    # New pairs have no ledger row until they are settled; recorded ones (a reader whose
    # welcome was pending at the match, a row the sweeper re-queues) have a pending one.
    readers = [profile(f"s{i}") for i in range(150)]
    notifier.readers(*readers)
    notifier.openings(opening("o1"))
    await notifier.pairs([r.subscriber_id for r in readers], "o1", recorded=recorded)
    [job] = immediate_jobs([(r.subscriber_id, "o1") for r in readers], now=NOW, size=500)
    notifier.store.calls.clear()

    outcomes = await notifier.deliveries.handle_batch([job])

    assert outcomes == ["sent"] * 150
    assert len({e.to for e in notifier.mailer.sent}) == 150 == len(notifier.mailer.sent)
    # No per-email round trips: the same few calls for 150 emails as for one.
    assert sum(notifier.store.calls.values()) <= 10, notifier.store.calls
    assert notifier.store.calls["settle"] == 1
    [event] = notifier.store.events
    assert isinstance(event, NotificationBatchSent)
    assert {item.message_id for item in event.payload.sent} == {
        e.message_id for e in notifier.mailer.sent
    }
    ledger = notifier.store.collections["ledger"]
    assert len(ledger) == 150
    assert {r["status"] for r in ledger.values()} == {"sent"}
    assert {m["status"] for m in notifier.store.collections["messages"].values()} == {"sent"}

    # The same job again (a redelivery): nothing more goes out.
    assert set(await notifier.deliveries.handle_batch([job])) == {"done"}
    assert len(notifier.mailer.sent) == 150


@pytest.mark.parametrize("change", ["paused", "unsubscribed", "bounced", "erased"])
async def test_a_person_who_changed_after_the_batch_was_formed_gets_nothing(
    notifier: Notifier, change: str
) -> None:
    stays, leaves = profile("stays"), profile("leaves")
    notifier.readers(stays, leaves)
    notifier.openings(opening("o1"))
    await notifier.pairs(["stays", "leaves"], "o1")
    [job] = immediate_jobs([("stays", "o1"), ("leaves", "o1")], now=NOW, size=500)
    # The change reaches the read model after the job was queued, before it is handled.
    subscribers = notifier.store.collections["subscribers"]
    if change == "erased":
        subscribers["leaves"] = {"_id": "leaves", "version": 2, "status": "deleted"}
    else:
        subscribers["leaves"]["status"] = change

    outcomes = await notifier.deliveries.handle_batch([job])

    assert [e.to for e in notifier.mailer.sent] == ["stays@example.org"]
    assert outcomes[0] == "sent"
    assert outcomes[1] in ("paused", "not active", "done")
    assert notifier.row("leaves", "o1")["status"] == "dropped"
    # The row of an erased person is the one erasure leaves: it names nobody.
    assert ("subscriber_id" in notifier.row("leaves", "o1")) is (change != "erased")
    assert not any(
        m["subscriber_id"] == "leaves" for m in notifier.store.collections["messages"].values()
    )


async def test_a_suppressed_address_a_closed_opening_and_a_lost_match_are_dropped_alone(
    notifier: Notifier,
) -> None:
    ok, suppressed, moved = profile("ok"), profile("sup"), profile("moved", place=MIAMI)
    notifier.readers(ok, suppressed, moved)
    notifier.openings(opening("o1"), opening("closed"))
    notifier.store.collections["openings"]["closed"]["status"] = "closed"
    notifier.store.seed(
        "suppressions", {"_id": subscriber_document(suppressed)["email_hash"], "email": "x"}
    )
    await notifier.pairs(["ok", "sup", "moved"], "o1")
    await notifier.pairs(["ok"], "closed")
    jobs = immediate_jobs(
        [("ok", "o1"), ("sup", "o1"), ("moved", "o1"), ("ok", "closed")], now=NOW, size=500
    )

    outcomes = await notifier.deliveries.handle_batch(jobs)

    assert sorted(outcomes) == sorted(["sent", "suppressed", "no longer matches", "opening closed"])
    assert [e.to for e in notifier.mailer.sent] == ["ok@example.org"]
    assert notifier.row("sup", "o1")["reason"] == "suppressed"
    assert notifier.row("moved", "o1")["status"] == "dropped"
    assert notifier.row("ok", "closed")["reason"] == "opening closed"


async def test_a_bounce_and_a_full_mailbox_settle_only_their_own_email(notifier: Notifier) -> None:
    readers = [profile(f"s{i}") for i in range(5)]
    notifier.readers(*readers)
    notifier.openings(opening("o1"))
    await notifier.pairs([r.subscriber_id for r in readers], "o1")
    notifier.mailer.replies["s1@example.org"] = lambda e: SendOutcome(
        "permanent_failure", "550 5.1.1 no such user", 550
    )
    notifier.mailer.replies["s2@example.org"] = lambda e: SendOutcome(
        "transient_failure", "452 4.2.2 mailbox full", 452
    )
    jobs = immediate_jobs([(r.subscriber_id, "o1") for r in readers], now=NOW, size=500)

    outcomes = await notifier.deliveries.handle_batch(jobs)

    assert outcomes == ["sent", "failed", "retry", "sent", "sent"]
    assert notifier.row("s1", "o1")["status"] == "failed"
    assert await notifier.store.suppressed_among(["s1@example.org"]) == {"s1@example.org"}
    assert (notifier.row("s2", "o1")["status"], notifier.row("s2", "o1")["attempts"]) == (
        "pending",
        1,
    )
    types = [e.event_type for e in notifier.store.events]
    assert sorted(types) == ["notification.batch_sent", "notification.failed"]
    [batch] = notifier.store.events_of("notification.batch_sent")
    assert isinstance(batch.payload, NotificationBatchSentPayload)
    assert len(batch.payload.sent) == 3

    # The full mailbox is tried again (by the sweeper) until DELIVERY_MAX_ATTEMPTS, then fails.
    for _ in range(2):
        await notifier.deliveries.immediate([("s2", "o1")])
    assert notifier.row("s2", "o1")["status"] == "failed"
    failures = [e.payload for e in notifier.store.events_of("notification.failed")]
    [failed] = [
        p for p in failures if isinstance(p, NotificationFailedPayload) and p.subscriber_id == "s2"
    ]
    assert failed.permanent is False


async def test_an_smtp_outage_records_what_went_out_and_gives_the_rest_back_uncounted(
    notifier: Notifier,
) -> None:
    readers = [profile(f"s{i}") for i in range(4)]
    notifier.readers(*readers)
    notifier.openings(opening("o1"))
    await notifier.pairs([r.subscriber_id for r in readers], "o1")
    notifier.mailer.away = {"s2@example.org", "s3@example.org"}
    jobs = immediate_jobs([(r.subscriber_id, "o1") for r in readers], now=NOW, size=500)

    with pytest.raises(TransientError):
        await notifier.deliveries.handle_batch(jobs)

    assert {notifier.row(f"s{i}", "o1")["status"] for i in (0, 1)} == {"sent"}
    assert {notifier.row(f"s{i}", "o1")["status"] for i in (2, 3)} == {"pending"}
    messages = notifier.store.collections["messages"]
    waiting = [m for m in messages.values() if m["status"] == "retry"]
    assert len(waiting) == 2
    assert {m["attempts"] for m in waiting} == {0}

    notifier.mailer.away.clear()  # the server is back; the consumer delivers the batch again
    assert await notifier.deliveries.handle_batch(jobs) == ["done", "done", "sent", "sent"]
    assert sorted(e.to for e in notifier.mailer.sent) == [f"s{i}@example.org" for i in range(4)]


async def test_a_batch_cut_short_after_smtp_is_sent_again_with_its_message_ids_by_the_next_sender(
    notifier: Notifier,
) -> None:
    readers = [profile(f"s{i}") for i in range(3)]
    notifier.readers(*readers)
    notifier.openings(opening("o1"))
    await notifier.pairs([r.subscriber_id for r in readers], "o1")
    jobs = immediate_jobs([(r.subscriber_id, "o1") for r in readers], now=NOW, size=500)
    crashed_mailer = FakeMailer()
    crashed = notifier.deliveries_with(notifier.postman_of(crashed_mailer, owner="host:111:a"))
    notifier.store.fail_next_settle = SystemExit("killed between SMTP and the settlement")

    with pytest.raises(SystemExit):
        await crashed.handle_batch(jobs)
    assert len(crashed_mailer.sent) == 3

    # Within the lease nobody sends them; after it, the next sender does, with the same ids.
    again = notifier.deliveries_with(notifier.postman_of(notifier.mailer, owner="host:222:b"))
    assert set(await again.handle_batch(jobs)) == {"skipped"}
    notifier.clock.advance(LEASE + timedelta(seconds=1))
    assert await again.handle_batch(jobs) == ["sent"] * 3
    assert [e.message_id for e in notifier.mailer.sent] == [
        e.message_id for e in crashed_mailer.sent
    ]
    for record in notifier.store.collections["messages"].values():
        assert [c["owner"] for c in record["claims"]] == ["host:111:a", "host:222:b"]
        assert record["status"] == "sent"


async def test_a_digest_run_pages_through_subscribers_and_sends_one_digest_each(
    notifier: Notifier,
) -> None:
    readers = [profile(f"d{i}", frequency="daily") for i in range(450)]
    notifier.readers(*readers)
    notifier.readers(profile("paused", frequency="daily"), status="paused")
    notifier.openings(opening("o1"), opening("o2"), opening("gone"))
    notifier.store.collections["openings"]["gone"]["status"] = "closed"
    ids = [r.subscriber_id for r in readers]
    for opening_id in ("o1", "o2", "gone"):
        await notifier.pairs([*ids, "paused"], opening_id, channel="digest")
    notifier.clock.advance(timedelta(days=1))
    notifier.store.calls.clear()

    run = await notifier.digests.run_due()

    assert (run.subscribers, run.sent, run.dropped_openings) == (451, 450, 450)
    assert run.outcomes == {"sent": 450, "not active": 1}
    assert len(notifier.mailer.sent) == 450
    assert {tuple(sorted(e.opening_ids)) for e in notifier.mailer.sent} == {("o1", "o2")}
    # Three pages of at most 200: about a dozen calls each, never one per digest.
    assert sum(notifier.store.calls.values()) <= 3 * 12, notifier.store.calls
    assert notifier.store.calls["settle"] == 3
    paused = notifier.store.collections["ledger"][pair_key("paused", "o1")]
    assert paused["status"] == "pending"  # paused people's rows wait

    again = await notifier.digests.run_due()
    assert again.sent == 0
    assert len(notifier.mailer.sent) == 450


async def test_a_settlement_that_meets_an_outage_is_retried_and_never_resends(
    notifier: Notifier,
) -> None:
    readers = [profile(f"s{i}") for i in range(3)]
    notifier.readers(*readers)
    notifier.openings(opening("o1"))
    await notifier.pairs([r.subscriber_id for r in readers], "o1")
    jobs = immediate_jobs([(r.subscriber_id, "o1") for r in readers], now=NOW, size=500)
    notifier.store.fail_next_settle = TransientError("write conflict with a dead transaction")

    assert await notifier.deliveries.handle_batch(jobs) == ["sent"] * 3

    assert notifier.store.calls["settle"] == 2
    assert len(notifier.mailer.sent) == 3
    assert {r["status"] for r in notifier.store.collections["ledger"].values()} == {"sent"}
    assert len(notifier.store.events_of("notification.batch_sent")) == 1
