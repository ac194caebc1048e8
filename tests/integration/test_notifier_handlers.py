"""The notifier's use cases against a real MongoDB, with the SMTP sender and the delivery topic
replaced by recording fakes and time by a FixedClock: read-model version guards, erasure, matching
into the ledger, re-checks before sending, the crash window, bounces, digests, frequency switches,
welcome emails and bulletins."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hwcollab_common.clock import FixedClock
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_notifier.delivery import Deliveries, Postman
from hwcollab_notifier.digests import DigestRunner
from hwcollab_notifier.domain import pair_key
from hwcollab_notifier.handlers import ReadModel
from hwcollab_notifier.index_sync import ReplicaIndex
from hwcollab_notifier.mail import OutgoingEmail, SendOutcome
from hwcollab_notifier.mail.sender import SmtpUnavailableError
from hwcollab_notifier.operations import Operations
from hwcollab_notifier.repository import NotifierRepository
from hwcollab_notifier.settings import Settings
from hwcollab_notifier.wiring import composer_for, wire_use_cases
from hwcollab_schemas import Event
from hwcollab_schemas.delivery import DeliveryJob
from hwcollab_schemas.events import (
    AccountEmailRequestedPayload,
    ConfirmationRequestedPayload,
    EmployerAccountEmailRequested,
    EmployerApproved,
    EmployerModeration,
    EmployerProfile,
    EmployerReinstated,
    EmployerSuspended,
    ManageLinkRequestedPayload,
    OpeningClosed,
    OpeningClosedPayload,
    OpeningDetails,
    OpeningPosted,
    OpeningTakenDown,
    OpeningTakenDownPayload,
    OpeningUpdated,
    SubscriberConfirmationRequested,
    SubscriberDeleted,
    SubscriberDeletedPayload,
    SubscriberManageLinkRequested,
    SubscriberProfile,
    SubscriberRegistered,
    SubscriberUnsubscribed,
    SubscriberUnsubscribedPayload,
    SubscriberUpdated,
)

pytestmark = pytest.mark.integration

# Tuesday 2026-11-24 10:00 in Worcester (EST): digests for daily subscribers went out at 13:00Z.
START = datetime(2026, 11, 24, 15, tzinfo=UTC)


@dataclass
class FakeMailer:
    """Records what would have gone over SMTP; answers with programmable outcomes."""

    sent: list[OutgoingEmail] = field(default_factory=list)
    answers: dict[str, SendOutcome] = field(default_factory=dict)
    away: bool = False
    """The server cannot be reached (an outage, not an answer about this email)."""

    async def send(self, email: OutgoingEmail) -> SendOutcome:
        if self.away:
            raise SmtpUnavailableError("connection refused")
        answer = self.answers.get(email.to, SendOutcome(status="sent", detail="250 OK", code=250))
        if answer.status == "sent":
            self.sent.append(email)
        return answer

    def to(self, address: str) -> list[OutgoingEmail]:
        return [e for e in self.sent if e.to == address]


class Killed(BaseException):
    """The process dies (nothing after this point runs)."""


class CrashAfterAccepting(FakeMailer):
    """The SMTP server accepts the message, then the process dies before hearing back."""

    async def send(self, email: OutgoingEmail) -> SendOutcome:
        self.sent.append(email)
        raise Killed("killed between SMTP acceptance and the ledger update")


@dataclass
class FakeJobQueue:
    jobs: list[DeliveryJob] = field(default_factory=list)

    async def put(self, jobs: Sequence[DeliveryJob]) -> None:
        self.jobs.extend(jobs)

    def take(self) -> list[DeliveryJob]:
        taken, self.jobs = self.jobs, []
        return taken


@dataclass
class Notifier:
    clock: FixedClock
    runtime: ServiceRuntime
    repo: NotifierRepository
    index: ReplicaIndex
    mailer: FakeMailer
    jobs: FakeJobQueue
    read_model: ReadModel
    deliveries: Deliveries
    digests: DigestRunner
    operations: Operations

    async def deliver_all(self) -> list[str]:
        """Run queued jobs (and those they queue) to completion, as the delivery group would."""
        outcomes = []
        while batch := self.jobs.take():
            outcomes += await self.deliveries.handle_batch(batch)
        return outcomes

    def deliveries_with(self, mailer: FakeMailer) -> Deliveries:
        """This notifier's deliveries through a sender of their own (another process)."""
        settings = Settings()
        postman = Postman(
            clock=self.clock,
            store=self.repo,
            mailer=mailer,
            lease=timedelta(seconds=settings.send_lease_seconds),
            max_attempts=settings.delivery_max_attempts,
        )
        return Deliveries(
            clock=self.clock,
            signer=self.runtime.signer,
            store=self.repo,
            composer=self.deliveries._composer,
            postman=postman,
            settings=settings,
            welcome_matches=self.deliveries._welcome_matches,
        )

    def digests_with(self, mailer: FakeMailer) -> DigestRunner:
        """This notifier's digest runs through a sender of their own (another process)."""
        deliveries = self.deliveries_with(mailer)
        return DigestRunner(
            clock=self.clock,
            store=self.repo,
            composer=deliveries._composer,
            postman=deliveries._postman,
            deliveries=deliveries,
            settings=Settings(digest_max_items=3),
        )

    async def outbox(self, event_type: str) -> list[dict[str, Any]]:
        return [doc async for doc in self.runtime.db["outbox"].find({"event_type": event_type})]


@pytest.fixture
async def notifier(mongo_url: str) -> AsyncIterator[Notifier]:
    settings = Settings(
        mongodb_url=mongo_url,
        mongodb_database=f"test_notifier_{uuid.uuid4().hex[:12]}",
        send_lease_seconds=60,
        sweep_stale_seconds=30,
        digest_max_items=3,
        delivery_batch_size=2,  # batches of two: every path runs over several batches
    )
    clock = FixedClock(START)
    runtime = ServiceRuntime(settings, name="notifier", clock=clock)
    repo = NotifierRepository(runtime.db)
    await repo.ensure_indexes()
    index = ReplicaIndex()
    await index.load(repo.all_subscribers(), now=clock.now())
    jobs = FakeJobQueue()
    mailer = FakeMailer()
    uses = wire_use_cases(
        runtime=runtime,
        settings=settings,
        repository=repo,
        index=index,
        jobs=jobs,
        mailer=mailer,
        composer=composer_for(settings, runtime),
    )
    yield Notifier(
        clock,
        runtime,
        repo,
        index,
        mailer,
        jobs,
        uses.read_model,
        uses.deliveries,
        uses.digests,
        uses.operations,
    )
    await runtime.mongo.drop_database(settings.mongodb_database)
    await runtime.mongo.close()


def profile(subscriber_id: str, *, version: int = 1, **changes: Any) -> SubscriberProfile:
    fields: dict[str, Any] = {
        "subscriber_id": subscriber_id,
        "version": version,
        "email": f"{subscriber_id}@example.org",
        "first_name": "Ana",
        "roles": ("care_coordination",),
        "zip": "01608",
        "city": "Worcester",
        "state": "MA",
        "lat": 42.2626,
        "lon": -71.8023,
        "timezone": "America/New_York",
        "confirmed_at": START - timedelta(days=1),
    }
    return SubscriberProfile(**(fields | changes))


def opening(opening_id: str, *, version: int = 1, **changes: Any) -> OpeningDetails:
    fields: dict[str, Any] = {
        "opening_id": opening_id,
        "employer_id": "employer-1",
        "version": version,
        "organization_name": "Acme Care",
        "employer_approved": True,
        "title": f"Care Coordinator {opening_id}",
        "role": "care_coordinator",
        "setting": "medical",
        "employment_type": "full_time",
        "zip": "01609",
        "city": "Worcester",
        "state": "MA",
        "lat": 42.2751,
        "lon": -71.8174,
        "pay_min": 25,
        "pay_max": 30,
        "description": "Coordinate care for older adults.",
        "apply_url": "https://acme.example/apply",
        "posted_at": START - timedelta(hours=1),
        "expires_at": START + timedelta(days=30),
    }
    return OpeningDetails(**(fields | changes))


def at(clock: FixedClock, cls: type[Event], payload: Any) -> Event:
    return cls.create(payload, producer="test", occurred_at=clock.now())


async def register(n: Notifier, *profiles: SubscriberProfile) -> None:
    for p in profiles:
        await n.read_model.on_subscriber(at(n.clock, SubscriberRegistered, p))


async def post(n: Notifier, *openings: OpeningDetails) -> None:
    for o in openings:
        await n.read_model.on_opening(at(n.clock, OpeningPosted, o))


async def test_a_new_opening_reaches_exactly_the_matching_immediate_subscribers(
    notifier: Notifier,
) -> None:
    n = notifier
    await register(
        n,
        profile("near"),
        profile("far", zip="90001", lat=33.97, lon=-118.25, timezone="America/Los_Angeles"),
        profile("other-role", roles=("direct_support",)),
        profile("daily", frequency="daily"),
    )
    await n.deliver_all()
    welcomes = {e.to for e in n.mailer.sent if e.kind == "welcome"}
    assert welcomes == {f"{s}@example.org" for s in ("near", "far", "other-role", "daily")}
    n.mailer.sent.clear()

    event = at(n.clock, OpeningPosted, opening("o1"))
    await n.read_model.on_opening(event)
    await n.read_model.on_opening(event)  # redelivered
    jobs = list(n.jobs.jobs)
    assert [(j.kind, j.subscriber_id, j.opening_id) for j in jobs] == [("immediate", "near", "o1")]
    await n.deliver_all()
    assert [(e.to, e.kind, e.opening_ids) for e in n.mailer.sent] == [
        ("near@example.org", "immediate", ("o1",))
    ]
    # the daily subscriber's pair waits in the digest queue
    assert (await n.repo.pair(pair_key("daily", "o1")) or {}).get("channel") == "digest"
    # a redelivered job, and an edit of the opening, send nothing new
    await n.deliveries.handle(jobs[0])
    await n.read_model.on_opening(
        at(n.clock, OpeningUpdated, opening("o1", version=2, title="Senior"))
    )
    await n.deliver_all()
    assert len(n.mailer.sent) == 1
    sent = await n.outbox("notification.batch_sent")
    assert len([d for d in sent if b'"immediate"' in d["value"]]) == 1


async def test_an_opening_reaches_someone_who_signed_up_on_another_replica_a_moment_ago(
    notifier: Notifier,
) -> None:
    """The registration was applied by another replica (read model written, this replica's
    index not yet fed) and its welcome already went out without the opening."""
    n = notifier
    newcomer = profile("newcomer")
    await n.repo.save_subscriber(newcomer, now=n.clock.now(), welcome_pending=False, session=None)
    await post(n, opening("o1"))
    assert [(j.subscriber_id, j.opening_id) for j in n.jobs.jobs] == [("newcomer", "o1")]


async def test_late_and_repeated_subscriber_events_never_win_over_newer_ones(
    notifier: Notifier,
) -> None:
    n = notifier
    await n.read_model.on_subscriber(at(n.clock, SubscriberUpdated, profile("s", version=3)))
    await n.read_model.on_subscriber(
        at(n.clock, SubscriberRegistered, profile("s", version=2, zip="90001"))
    )
    stored = await n.repo.subscriber("s")
    assert stored is not None
    assert (stored["version"], stored["zip"]) == (3, "01608")

    await n.read_model.on_subscriber(
        at(n.clock, SubscriberDeleted, SubscriberDeletedPayload(subscriber_id="s", version=5))
    )
    await n.read_model.on_subscriber(at(n.clock, SubscriberUpdated, profile("s", version=4)))
    tombstone = await n.repo.subscriber("s")
    assert tombstone == {"_id": "s", "version": 5, "status": "deleted", "changed_at": START}
    assert "s" not in n.index.index


async def test_deleting_a_subscriber_erases_their_data_and_keeps_only_hashes(
    notifier: Notifier,
) -> None:
    n = notifier
    await register(n, profile("gone"), profile("weekly", frequency="weekly"))
    await post(n, opening("o1"))
    await n.deliver_all()
    assert n.mailer.to("gone@example.org")
    # the relay has published the notification events (they stay a while for audit)
    await n.runtime.db["outbox"].update_many({}, {"$set": {"status": "sent"}})
    # a bounce report about one of their emails, kept for operators
    await n.runtime.db["bounces"].insert_one(
        {"_id": "b1", "subscriber_id": "gone", "email": "gone@example.org", "raw": b"To: gone"}
    )
    await n.read_model.on_subscriber(
        at(n.clock, SubscriberDeleted, SubscriberDeletedPayload(subscriber_id="gone", version=2))
    )
    await n.read_model.on_subscriber(
        at(n.clock, SubscriberDeleted, SubscriberDeletedPayload(subscriber_id="weekly", version=2))
    )
    for collection in ("subscribers", "ledger", "messages", "outbox", "bounces"):
        async for doc in n.runtime.db[collection].find({}):
            text = repr(doc)
            assert "gone@example.org" not in text
            assert "'subscriber_id': 'gone'" not in text
            assert "'subscriber_id': 'weekly'" not in text
    published = [doc async for doc in n.runtime.db["outbox"].find({"status": "sent"})]
    assert not [doc for doc in published if doc["key"] in {"gone", "weekly"}]
    # the weekly person's waiting digest row is gone; the sent pair stays, as a hash
    assert await n.repo.pair(pair_key("weekly", "o1")) is None
    kept = await n.repo.pair(pair_key("gone", "o1"))
    assert kept is not None
    assert kept["status"] == "sent"


async def test_status_suppression_and_the_opening_are_checked_again_just_before_sending(
    notifier: Notifier,
) -> None:
    n = notifier
    await register(n, profile("paused"), profile("gone"), profile("suppressed"), profile("ok"))
    await n.deliver_all()
    n.mailer.sent.clear()
    await post(n, opening("o1"), opening("o2"))
    # one job per opening and pair of readers
    assert [len(job.recipients) for job in n.jobs.jobs] == [2, 2, 2, 2]
    # between matching and sending: one pauses, one unsubscribes, one is suppressed, o2 closes
    await n.read_model.on_subscriber(
        at(n.clock, SubscriberUpdated, profile("paused", version=2, status="paused"))
    )
    await n.read_model.on_subscriber(
        at(
            n.clock,
            SubscriberUnsubscribed,
            SubscriberUnsubscribedPayload(subscriber_id="gone", version=2),
        )
    )
    await n.repo.suppress("Suppressed@Example.org", reason="test", now=n.clock.now())
    await n.read_model.on_opening(
        at(
            n.clock,
            OpeningClosed,
            OpeningClosedPayload(
                opening_id="o2", employer_id="employer-1", version=2, closed_at=n.clock.now()
            ),
        )
    )
    await n.deliver_all()
    assert [(e.to, e.opening_ids) for e in n.mailer.sent] == [("ok@example.org", ("o1",))]
    assert (await n.repo.pair(pair_key("paused", "o1")) or {}).get("status") == "dropped"


async def test_openings_wait_for_their_employer_to_be_approved(notifier: Notifier) -> None:
    n = notifier
    await register(n, profile("s"))
    await n.deliver_all()
    n.mailer.sent.clear()
    await post(n, opening("o1", employer_approved=False))
    assert n.jobs.jobs == []
    # the employer service approves: employer.approved and opening.updated, in either order
    await n.read_model.on_opening(
        at(n.clock, OpeningUpdated, opening("o1", version=2, employer_approved=True))
    )
    employer = EmployerProfile(
        employer_id="employer-1",
        version=2,
        organization_name="Acme Care",
        city="Worcester",
        state="MA",
        zip="01609",
        lat=42.27,
        lon=-71.81,
        status="approved",
    )
    await n.read_model.on_employer(at(n.clock, EmployerApproved, employer))
    await n.deliver_all()
    assert [e.opening_ids for e in n.mailer.sent] == [("o1",)]


async def test_a_crash_after_smtp_resends_once_with_the_same_message_id(
    notifier: Notifier,
) -> None:
    n = notifier
    await register(n, profile("s"))
    await n.deliver_all()
    await post(n, opening("o1"))
    [job] = n.jobs.take()
    # The first attempt got as far as SMTP acceptance, then the process died.
    crashed_mailer = CrashAfterAccepting()
    crashed = n.deliveries_with(crashed_mailer)
    with pytest.raises(Killed):
        await crashed.handle(job)
    [first] = crashed_mailer.sent
    assert (await n.repo.message(first.message_id) or {}).get("status") == "sending"
    assert await n.repo.pair(pair_key("s", "o1")) is None  # written with the outcome

    # Redelivered while the dead sender's lease holds: nothing is sent, and the pair is left
    # pending for the sweeper.
    assert await n.deliveries.handle(job) == "skipped"
    assert (await n.repo.pair(pair_key("s", "o1")) or {}).get("status") == "pending"
    # After the lease, the sweeper sends it again with the same Message-ID; then never again.
    n.clock.advance(timedelta(minutes=6))
    assert await n.operations.sweep() == 1
    [second] = n.mailer.to("s@example.org")[-1:]
    assert second.message_id == first.message_id
    assert await n.deliveries.handle(job) == "done"
    assert (await n.repo.pair(pair_key("s", "o1")) or {}).get("status") == "sent"


async def test_a_permanent_failure_suppresses_the_address_and_says_so(notifier: Notifier) -> None:
    n = notifier
    await register(n, profile("bouncy"))
    n.mailer.answers["bouncy@example.org"] = SendOutcome(
        status="permanent_failure", detail="550 no such user", code=550
    )
    await n.deliver_all()
    assert await n.repo.is_suppressed("bouncy@example.org")
    [failed] = await n.outbox("notification.failed")
    assert b'"permanent":true' in failed["value"]
    # later mail to the address is not even tried
    n.mailer.answers.clear()
    await post(n, opening("o1"))
    await n.deliver_all()
    assert n.mailer.to("bouncy@example.org") == []


async def test_digests_go_out_at_the_local_hour_without_closed_openings_and_once(
    notifier: Notifier,
) -> None:
    n = notifier
    await register(n, profile("d", frequency="daily"), profile("w", frequency="weekly"))
    await n.deliver_all()
    n.mailer.sent.clear()
    await post(n, *(opening(f"o{i}") for i in range(5)))
    await n.read_model.on_opening(
        at(
            n.clock,
            OpeningClosed,
            OpeningClosedPayload(
                opening_id="o4", employer_id="employer-1", version=2, closed_at=n.clock.now()
            ),
        )
    )
    assert n.jobs.jobs == []
    # Not yet: today's 08:00 EST (13:00Z) was before these matches.
    run = await n.digests.run_due(START + timedelta(hours=1))
    assert run.sent == 0
    # Wednesday 08:00 EST: the daily digest, capped at 3 with all 4 counted, o4 dropped.
    run = await n.digests.run_due(datetime(2026, 11, 25, 13, tzinfo=UTC))
    assert (run.sent, run.dropped_openings) == (1, 1)
    [digest] = n.mailer.sent
    assert (digest.to, digest.kind) == ("d@example.org", "digest")
    assert len(digest.opening_ids) == 3
    assert "o4" not in digest.opening_ids
    assert "4 new" in digest.subject
    text = email.message_from_bytes(digest.data, policy=email.policy.default)
    plain = text.get_body(preferencelist=("plain",))
    assert plain is not None
    assert "See all 4 openings: http://127.0.0.1:8002/openings?zip=01608&radius_miles=25" in (
        plain.get_content()
    )
    # The same instant again (another replica, the periodic task): nothing more.
    assert (await n.digests.run_due(datetime(2026, 11, 25, 13, 30, tzinfo=UTC))).sent == 0
    # Monday 08:00 EST: the weekly one.
    await n.digests.run_due(datetime(2026, 11, 30, 13, tzinfo=UTC))
    assert [e.to for e in n.mailer.sent] == ["d@example.org", "w@example.org"]
    # And with nothing new, no email at all.
    await n.digests.run_due(datetime(2026, 12, 7, 13, tzinfo=UTC))
    assert len(n.mailer.sent) == 2


async def test_a_digest_cut_off_after_smtp_goes_out_again_the_same_and_once(
    notifier: Notifier,
) -> None:
    n = notifier
    await register(n, profile("d", frequency="daily"))
    await n.deliver_all()
    n.mailer.sent.clear()
    await post(n, opening("o1"), opening("o2"))
    crashed_mailer = CrashAfterAccepting()
    with pytest.raises(Killed):
        await n.digests_with(crashed_mailer).run_due(datetime(2026, 11, 25, 13, tzinfo=UTC))
    [first] = crashed_mailer.sent
    # A match made after the crash waits for the next digest instead of joining this one.
    n.clock.advance(timedelta(hours=23))
    await post(n, opening("o3"))
    await n.digests.run_due(datetime(2026, 11, 26, 13, tzinfo=UTC))
    [again] = n.mailer.sent
    assert (again.message_id, again.opening_ids) == (first.message_id, first.opening_ids)
    assert again.subject == first.subject
    await n.digests.run_due(datetime(2026, 11, 27, 13, tzinfo=UTC))
    assert [e.opening_ids for e in n.mailer.sent[1:]] == [("o3",)]
    await n.digests.run_due(datetime(2026, 11, 28, 13, tzinfo=UTC))
    assert len(n.mailer.sent) == 2


async def test_switching_frequency_never_sends_an_opening_twice(notifier: Notifier) -> None:
    n = notifier
    await register(n, profile("s", frequency="daily"))
    await n.deliver_all()
    n.mailer.sent.clear()
    await post(n, opening("o1"))
    await n.read_model.on_subscriber(
        at(n.clock, SubscriberUpdated, profile("s", version=2, frequency="immediate"))
    )
    await n.deliver_all()
    assert [(e.kind, e.opening_ids) for e in n.mailer.sent] == [("immediate", ("o1",))]
    await n.read_model.on_subscriber(
        at(n.clock, SubscriberUpdated, profile("s", version=3, frequency="daily"))
    )
    await post(n, opening("o2"))
    await n.digests.run_due(datetime(2026, 11, 26, 13, tzinfo=UTC))
    assert [(e.kind, e.opening_ids) for e in n.mailer.sent] == [
        ("immediate", ("o1",)),
        ("digest", ("o2",)),
    ]


async def test_welcome_lists_openings_that_already_match_and_they_are_not_sent_again(
    notifier: Notifier,
) -> None:
    n = notifier
    await post(n, opening("o1"), opening("o2", role="direct_support_professional"))
    await register(n, profile("new"))
    await register(n, profile("new"))  # registered again (redelivery): one welcome
    await n.deliver_all()
    [welcome] = n.mailer.sent
    assert (welcome.kind, welcome.opening_ids) == ("welcome", ("o1",))
    await n.read_model.on_opening(at(n.clock, OpeningUpdated, opening("o1", version=2)))
    await n.deliver_all()
    assert len(n.mailer.sent) == 1


async def test_an_immediate_pair_is_recorded_once_with_its_outcome_and_a_new_reader_s_at_once(
    notifier: Notifier,
) -> None:
    """An immediate pair has no ledger row until its email has an outcome, except a reader
    whose welcome is still to go: the welcome lists the openings that match, so their pair is
    recorded at the match, and the opening reaches them in one of the two emails, never both."""
    n = notifier
    await register(n, profile("known"))
    await n.deliver_all()
    n.mailer.sent.clear()
    await register(n, profile("newcomer"))  # confirmed; the welcome job is still queued
    welcome_jobs = n.jobs.take()

    await post(n, opening("o1"))
    assert await n.repo.pair(pair_key("known", "o1")) is None
    reserved = await n.repo.pair(pair_key("newcomer", "o1"))
    assert reserved is not None
    assert (reserved["channel"], reserved["status"]) == ("immediate", "pending")
    opening_jobs = n.jobs.take()
    assert sorted(s for j in opening_jobs for s in j.recipients) == ["known", "newcomer"]

    # The welcome goes first and finds the pair taken: the alert carries the opening.
    await n.deliveries.handle_batch(welcome_jobs)
    await n.deliveries.handle_batch(opening_jobs)
    mentions = [(e.to, e.kind) for e in n.mailer.sent if "o1" in e.opening_ids]
    assert sorted(mentions) == [
        ("known@example.org", "immediate"),
        ("newcomer@example.org", "immediate"),
    ]
    for subscriber_id in ("known", "newcomer"):
        row = await n.repo.pair(pair_key(subscriber_id, "o1"))
        assert row is not None
        assert (row["channel"], row["status"], row["subscriber_id"]) == (
            "immediate",
            "sent",
            subscriber_id,
        )
    opening_doc = await n.repo.openings.find_one({"_id": "o1"})
    assert opening_doc is not None
    assert opening_doc["announced_matches"] == 2


async def test_confirmation_emails_go_once_per_request(notifier: Notifier) -> None:
    n = notifier
    event = at(
        n.clock,
        SubscriberConfirmationRequested,
        ConfirmationRequestedPayload(
            subscriber_id="p",
            email="pending@example.org",
            confirm_url="http://127.0.0.1:8001/confirm?token=abc",
        ),
    )
    await n.read_model.on_subscriber(event)
    await n.read_model.on_subscriber(event)  # redelivered: queued again, sent once
    assert n.mailer.sent == []  # the read model only stores and queues
    assert await n.deliver_all() == ["sent", "done"]
    [sent] = n.mailer.sent
    assert (sent.kind, sent.to) == ("confirmation", "pending@example.org")
    message = email.message_from_bytes(sent.data, policy=email.policy.default)
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    assert "http://127.0.0.1:8001/confirm?token=abc" in plain.get_content()
    request = await n.repo.link_request(str(event.event_id))
    assert request is not None
    assert request["status"] == "sent"


def manage_link_requested(n: Notifier, subscriber_id: str, address: str) -> Event:
    return at(
        n.clock,
        SubscriberManageLinkRequested,
        ManageLinkRequestedPayload(
            subscriber_id=subscriber_id,
            email=address,
            first_name="Rosa",
            manage_url=f"http://127.0.0.1:8001/preferences?token={subscriber_id}",
            reason="already_subscribed",
        ),
    )


async def test_an_smtp_outage_delays_a_link_email_but_not_the_events_behind_it(
    notifier: Notifier,
) -> None:
    n = notifier
    ask = manage_link_requested(n, "rosa", "rosa@example.org")
    await n.read_model.on_subscriber(ask)
    # The next event of the same partition is applied at once, whatever SMTP is doing.
    await register(n, profile("rosa", email="rosa@example.org"))
    assert (await n.repo.subscriber("rosa") or {}).get("status") == "active"
    [link_job, welcome_job] = n.jobs.take()
    assert (link_job.kind, link_job.request_id) == ("link", str(ask.event_id))
    assert welcome_job.kind == "welcome"

    n.mailer.away = True  # the SMTP server is down for this attempt
    with pytest.raises(SmtpUnavailableError):
        await n.deliveries.handle(link_job)
    n.mailer.away = False
    request = await n.repo.link_request(str(ask.event_id))
    assert request is not None
    assert request["status"] == "pending"

    # The job's redelivery or, as here, the sweeper sends it once SMTP is back.
    n.clock.advance(timedelta(minutes=1))
    await n.operations.sweep()
    kinds = sorted(e.kind for e in n.mailer.to("rosa@example.org"))
    assert kinds == ["manage_link", "welcome"]
    [manage] = [e for e in n.mailer.sent if e.kind == "manage_link"]
    assert "already subscribed" in manage.subject
    assert await n.deliveries.handle(link_job) == "done"
    assert len(n.mailer.to("rosa@example.org")) == 2


async def test_link_emails_expire_and_leave_with_the_person(notifier: Notifier) -> None:
    n = notifier
    late = manage_link_requested(n, "late", "late@example.org")
    gone = manage_link_requested(n, "gone", "gone@example.org")
    await n.read_model.on_subscriber(late)
    await n.read_model.on_subscriber(gone)
    await register(n, profile("gone", email="gone@example.org"))
    n.jobs.take()  # the jobs are lost (say, a broker outage): the sweeper finds the requests

    await n.read_model.on_subscriber(
        at(n.clock, SubscriberDeleted, SubscriberDeletedPayload(subscriber_id="gone", version=2))
    )
    assert await n.repo.link_request(str(gone.event_id)) is None  # erased with the person

    n.clock.advance(timedelta(days=8))  # past the life of a link request
    await n.operations.sweep()
    assert n.mailer.to("late@example.org") == []
    request = await n.repo.link_request(str(late.event_id))
    assert request is not None
    assert request["status"] == "dropped"


async def test_a_still_interested_request_is_sent_once_with_its_keep_link(
    notifier: Notifier,
) -> None:
    n = notifier
    keep = "http://127.0.0.1:8001/keep?token=k-rosa"
    ask = at(
        n.clock,
        SubscriberManageLinkRequested,
        ManageLinkRequestedPayload(
            subscriber_id="rosa",
            email="rosa@example.org",
            first_name="Rosa",
            manage_url="http://127.0.0.1:8001/preferences?token=m-rosa",
            reason="still_interested",
            keep_url=keep,
            pause_after=n.clock.now() + timedelta(days=14),
        ),
    )
    await n.read_model.on_subscriber(ask)
    await n.read_model.on_subscriber(ask)  # redelivered: queued again, sent once
    assert await n.deliver_all() == ["sent", "done"]
    [sent] = n.mailer.to("rosa@example.org")
    assert sent.kind == "still_interested"
    message = email.message_from_bytes(sent.data, policy=email.policy.default)
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    assert f"Keep me subscribed: {keep}" in plain.get_content()


def account_email(n: Notifier, kind: str, *, minutes: int | None = 30) -> Event:
    link = kind in {"verify_signup", "password_reset", "email_change_confirm"}
    return at(
        n.clock,
        EmployerAccountEmailRequested,
        AccountEmailRequestedPayload.model_validate(
            {
                "employer_id": "e-9",
                "email": "hr@cmcp.example",
                "organization_name": "Central Mass Care Partners",
                "kind": kind,
                "url": f"http://127.0.0.1:8002/{kind}?token=t" if link else None,
                "expires_at": n.clock.now() + timedelta(minutes=minutes) if minutes else None,
            }
        ),
    )


async def test_employer_account_emails_go_through_the_link_path_once_per_request(
    notifier: Notifier,
) -> None:
    n = notifier
    reset = account_email(n, "password_reset")
    notice = account_email(n, "already_registered", minutes=None)
    for event in (reset, reset, notice):  # the reset redelivered: queued again, sent once
        await n.read_model.on_employer(event)
    assert n.mailer.sent == []  # the read model only stores and queues
    jobs = list(n.jobs.jobs)
    assert {(j.kind, j.subscriber_id) for j in jobs} == {("link", "employer:e-9")}
    assert await n.deliver_all() == ["sent", "done", "sent"]
    by_kind = {e.kind: e for e in n.mailer.to("hr@cmcp.example")}
    assert set(by_kind) == {"employer_password_reset", "employer_already_registered"}
    message = email.message_from_bytes(
        by_kind["employer_password_reset"].data, policy=email.policy.default
    )
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    assert "http://127.0.0.1:8002/password_reset?token=t" in plain.get_content()
    assert "30 minutes" in plain.get_content()
    request = await n.repo.link_request(str(reset.event_id))
    assert request is not None
    assert (request["status"], request["employer_id"], request.get("subscriber_id")) == (
        "sent",
        "e-9",
        None,
    )
    # The settled batch is published like every other email's, under the employer recipient.
    batches = await n.outbox("notification.batch_sent")
    sent = [item for b in batches for item in json.loads(b["value"])["payload"]["sent"]]
    assert {(item["subscriber_id"], item["kind"]) for item in sent} == {
        ("employer:e-9", "employer_password_reset"),
        ("employer:e-9", "employer_already_registered"),
    }


async def test_an_account_email_is_never_sent_after_its_link_expired(notifier: Notifier) -> None:
    n = notifier
    reset = account_email(n, "password_reset", minutes=30)
    await n.read_model.on_employer(reset)
    n.jobs.take()  # the job is lost: the sweeper finds the request, but too late
    n.clock.advance(timedelta(minutes=31))
    await n.operations.sweep()
    assert n.mailer.sent == []
    request = await n.repo.link_request(str(reset.event_id))
    assert request is not None
    assert request["status"] == "dropped"


async def test_bulletins_reach_active_subscribers_who_opted_in(notifier: Notifier) -> None:
    n = notifier
    await register(
        n,
        profile("yes", career_info=True),
        profile("no"),
        profile("paused", career_info=True, status="paused"),
    )
    await n.deliver_all()
    n.mailer.sent.clear()
    bulletin_id, recipients = await n.operations.start_bulletin(
        subject="CCM exam prep", body_markdown="Join us on **May 3**."
    )
    assert recipients == 1
    await n.deliver_all()
    assert [(e.to, e.kind) for e in n.mailer.sent] == [("yes@example.org", "bulletin")]
    assert bulletin_id


class QueueThatDies(FakeJobQueue):
    """Takes the first ``survive`` jobs, then fails as a crashed process would mid-queue."""

    def __init__(self, survive: int) -> None:
        super().__init__()
        self.survive = survive

    async def put(self, jobs: Sequence[DeliveryJob]) -> None:
        await super().put(jobs[: self.survive])
        if len(jobs) > self.survive:
            raise ConnectionError("process died while queuing")


async def test_a_bulletin_cut_short_while_queuing_is_queued_again_and_sent_once_each(
    notifier: Notifier,
) -> None:
    n = notifier
    await register(n, *(profile(f"reader{i}", career_info=True) for i in range(3)))
    await n.deliver_all()
    n.mailer.sent.clear()
    dying = QueueThatDies(survive=1)
    n.operations._jobs = dying
    with pytest.raises(ConnectionError):
        await n.operations.start_bulletin(subject="Exam prep", body_markdown="See you **soon**.")
    n.jobs.jobs.extend(dying.take())
    await n.deliver_all()
    assert len(n.mailer.sent) == 2  # the readers of the one job queued

    n.operations._jobs = n.jobs
    n.clock.advance(timedelta(minutes=10))
    await n.operations.sweep()
    await n.deliver_all()
    await n.operations.sweep()  # queued now: nothing more to do
    assert not n.jobs.jobs
    assert sorted(e.to for e in n.mailer.sent if e.kind == "bulletin") == [
        f"reader{i}@example.org" for i in range(3)
    ]


async def test_transient_failures_are_tried_again_and_finally_reported(
    notifier: Notifier,
) -> None:
    n = notifier
    await register(n, profile("flaky"))
    await n.deliver_all()
    await post(n, opening("o1"))
    n.mailer.answers["flaky@example.org"] = SendOutcome(
        status="transient_failure", detail="451 try later", code=451
    )
    assert await n.deliver_all() == ["retry"]
    assert (await n.repo.pair(pair_key("flaky", "o1")) or {}).get("status") == "pending"
    # The sweeper tries again later; the server recovers on the second try.
    n.clock.advance(timedelta(minutes=1))
    n.mailer.answers.clear()
    assert await n.operations.sweep() == 1
    assert [e.opening_ids for e in n.mailer.to("flaky@example.org")][-1] == ("o1",)

    await post(n, opening("o2"))
    n.mailer.answers["flaky@example.org"] = SendOutcome(
        status="transient_failure", detail="451 try later", code=451
    )
    outcomes = await n.deliver_all()
    for _ in range(n.deliveries._settings.delivery_max_attempts):
        n.clock.advance(timedelta(minutes=1))
        await n.operations.sweep()
    assert outcomes == ["retry"]
    assert (await n.repo.pair(pair_key("flaky", "o2")) or {}).get("status") == "failed"
    [failed] = await n.outbox("notification.failed")
    assert b'"permanent":false' in failed["value"]
    assert not await n.repo.is_suppressed("flaky@example.org")


class SlowMailer(FakeMailer):
    """Holds every send until released, so that two senders can meet on one message."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def send(self, email: OutgoingEmail) -> SendOutcome:
        await self.release.wait()
        return await super().send(email)


async def test_a_job_and_the_sweeper_in_one_process_never_send_one_message_twice(
    notifier: Notifier,
) -> None:
    n = notifier
    await register(n, profile("s"))
    await n.deliver_all()
    await post(n, opening("o1"))
    [job] = n.jobs.take()
    slow = SlowMailer()
    deliveries = n.deliveries_with(slow)
    first = asyncio.create_task(deliveries.handle(job))
    await asyncio.sleep(0)  # let the first claim
    while await n.repo.messages.find_one({"subscriber_id": "s", "status": "sending"}) is None:
        await asyncio.sleep(0.01)
    second = await deliveries.handle(job)
    slow.release.set()
    assert (await first, second) == ("sent", "skipped")
    assert len(slow.sent) == 1


def _moderated(version: int, status: str, reason: str | None = None) -> EmployerModeration:
    return EmployerModeration(
        employer_id="employer-1",
        version=version,
        organization_name="Acme Care",
        city="Worcester",
        state="MA",
        zip="01609",
        lat=42.27,
        lon=-71.81,
        status=status,
        reason=reason,
    )


async def test_a_suspension_drops_queued_emails_and_digests_and_reinstating_tells_nobody_again(
    notifier: Notifier,
) -> None:
    n = notifier
    await register(n, profile("now"), profile("daily", frequency="daily"))
    await n.deliver_all()
    n.mailer.sent.clear()
    await n.read_model.on_employer(at(n.clock, EmployerApproved, _moderated(1, "approved")))
    await post(n, opening("o1"))
    assert [job.recipients for job in n.jobs.jobs] == [("now",)]

    # Suspended between matching and sending: the employer's status alone stops both.
    suspended = _moderated(2, "suspended", "Fake openings.")
    await n.read_model.on_employer(at(n.clock, EmployerSuspended, suspended))
    await n.deliver_all()
    assert n.mailer.sent == []
    assert (await n.repo.pair(pair_key("now", "o1")) or {}).get("status") == "dropped"
    run = await n.digests.run_due(datetime(2026, 11, 25, 13, tzinfo=UTC))
    assert (run.sent, run.dropped_openings) == (0, 1)

    # The employer service republishes its openings unapproved, then approved on reinstatement.
    await n.read_model.on_opening(
        at(n.clock, OpeningUpdated, opening("o1", version=2, employer_approved=False))
    )
    await n.read_model.on_employer(at(n.clock, EmployerReinstated, _moderated(3, "approved")))
    await n.read_model.on_opening(at(n.clock, OpeningUpdated, opening("o1", version=3)))
    await n.deliver_all()
    await n.digests.run_due(datetime(2026, 11, 26, 13, tzinfo=UTC))
    assert n.mailer.sent == []

    # A reader who arrives after the reinstatement is told, once.
    await register(n, profile("late"))
    await n.deliver_all()
    await post(n, opening("o2"))
    await n.deliver_all()
    assert sorted((e.to, e.opening_ids) for e in n.mailer.sent if e.kind == "immediate") == [
        ("late@example.org", ("o2",)),
        ("now@example.org", ("o2",)),
    ]


async def test_a_taken_down_opening_is_not_sent(notifier: Notifier) -> None:
    n = notifier
    await register(n, profile("s"))
    await n.deliver_all()
    n.mailer.sent.clear()
    await post(n, opening("o1"))
    payload = OpeningTakenDownPayload(
        opening_id="o1",
        employer_id="employer-1",
        version=2,
        reason="Misleading pay.",
        taken_down_at=n.clock.now(),
    )
    await n.read_model.on_opening(at(n.clock, OpeningTakenDown, payload))
    await n.deliver_all()
    assert n.mailer.sent == []
    assert (await n.repo.pair(pair_key("s", "o1")) or {}).get("status") == "dropped"
