"""Use cases against in-memory fakes: events, approval, ownership, expiry and reach."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from hwcollab_employer.accounts import EmailTakenError
from hwcollab_employer.commands import EmployerSignup, OpeningFields, OpeningPatch, ProfilePatch
from hwcollab_employer.domain import (
    ConflictError,
    Employer,
    ForbiddenError,
    InvalidFieldsError,
    Opening,
)
from hwcollab_schemas.events import (
    EmployerRegistered,
    NotificationBatchSent,
    NotificationSent,
    OpeningClosed,
    OpeningPosted,
    OpeningUpdated,
)

from .conftest import BodyFactory, Harness


async def _employer(
    harness: Harness,
    signup: BodyFactory,
    email: str = "hr@worcester-care.example",
    **changes: Any,
) -> Employer:
    return await harness.service.create_employer(
        EmployerSignup.model_validate(signup(email, **changes))
    )


async def _opening(
    harness: Harness, employer: Employer, opening_json: BodyFactory, **changes: Any
) -> Opening:
    fields = OpeningFields.model_validate(opening_json(**changes))
    return await harness.service.post_opening(employer.employer_id, fields)


async def test_auto_approval_registers_and_approves_at_once(
    harness: Harness, signup: BodyFactory
) -> None:
    employer = await _employer(harness, signup)
    assert employer.status == "approved"
    assert [e.event_type for e in harness.uow.events] == [
        "employer.registered",
        "employer.approved",
    ]
    profile = harness.uow.of_class(EmployerRegistered)[0].payload
    assert profile.employer_id == employer.employer_id
    assert (profile.city, profile.state, profile.zip) == ("Worcester", "MA", "01608")
    assert profile.lat == pytest.approx(42.26, abs=0.05)
    assert employer.password_hash.startswith("$argon2id$")


async def test_manual_approval_keeps_a_new_employer_pending(
    manual_harness: Harness, signup: BodyFactory
) -> None:
    employer = await _employer(manual_harness, signup)
    assert employer.status == "pending"
    assert [e.event_type for e in manual_harness.uow.events] == ["employer.registered"]


async def test_an_email_has_one_account(harness: Harness, signup: BodyFactory) -> None:
    await _employer(harness, signup)
    with pytest.raises(EmailTakenError):
        await _employer(harness, signup, "HR@Worcester-Care.example")
    assert len(harness.repository.employers) == 1


async def test_posting_publishes_everything_the_notifier_needs(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    employer = await _employer(harness, signup)
    opening = await _opening(harness, employer, opening_json)
    assert UUID(opening.opening_id).version == 4
    [posted] = harness.uow.of_class(OpeningPosted)
    assert posted.key == opening.opening_id
    details = posted.payload
    assert details.organization_name == "Worcester Care Partners"
    assert details.employer_approved is True
    assert (details.city, details.state, details.zip) == ("Worcester", "MA", "01608")
    assert details.lat is not None
    assert details.lon is not None
    assert details.version == 1
    assert details.expires_at == harness.clock.now() + timedelta(days=30)
    assert details.required_credentials == ("rn",)


async def test_pending_employer_posts_unannounced_until_approved(
    manual_harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    h = manual_harness
    employer = await _employer(h, signup)
    first = await _opening(h, employer, opening_json)
    closed = await _opening(
        h, employer, opening_json, title="Care Coordinator", role="care_coordinator"
    )
    await h.service.close_opening(employer.employer_id, closed.opening_id)
    assert all(e.payload.employer_approved is False for e in h.uow.of_class(OpeningPosted))

    h.uow.events.clear()
    await h.service.approve(employer.employer_id)
    assert [e.event_type for e in h.uow.events] == ["employer.approved", "opening.updated"]
    updated = h.uow.of_class(OpeningUpdated)[0].payload
    assert updated.opening_id == first.opening_id
    assert updated.employer_approved is True
    assert updated.version == 2

    h.uow.events.clear()
    await h.service.approve(employer.employer_id)
    assert h.uow.events == []  # approving twice changes nothing


async def test_edit_publishes_full_details_with_a_new_version(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    employer = await _employer(harness, signup)
    opening = await _opening(harness, employer, opening_json)
    patch = OpeningPatch(title="Nurse Care Manager II", pay_max=50)
    edited = await harness.service.edit_opening(employer.employer_id, opening.opening_id, patch)
    [updated] = harness.uow.of_class(OpeningUpdated)
    assert updated.payload.version == edited.version == 2
    assert updated.payload.title == "Nurse Care Manager II"
    assert updated.payload.pay_max == 50
    assert updated.payload.role == "nurse_care_manager"


async def test_edit_is_validated_as_a_whole(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    employer = await _employer(harness, signup)
    opening = await _opening(harness, employer, opening_json)
    with pytest.raises(InvalidFieldsError) as caught:
        await harness.service.edit_opening(
            employer.employer_id, opening.opening_id, OpeningPatch(pay_min=60)
        )
    assert "pay_max" in caught.value.errors
    with pytest.raises(InvalidFieldsError) as caught:
        await harness.service.edit_opening(
            employer.employer_id,
            opening.opening_id,
            OpeningPatch(expires_at=harness.clock.now() + timedelta(days=181)),
        )
    assert caught.value.errors == {"expires_at": "must be within 180 days"}
    assert harness.uow.of_type("opening.updated") == []


async def test_only_the_owner_changes_an_opening(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    owner = await _employer(harness, signup)
    other = await _employer(harness, signup, "jobs@other.example")
    opening = await _opening(harness, owner, opening_json)
    with pytest.raises(ForbiddenError):
        await harness.service.edit_opening(
            other.employer_id, opening.opening_id, OpeningPatch(title="Mine")
        )
    with pytest.raises(ForbiddenError):
        await harness.service.close_opening(other.employer_id, opening.opening_id)
    with pytest.raises(ForbiddenError):
        await harness.service.stats(other.employer_id, opening.opening_id)
    assert harness.repository.openings[opening.opening_id].version == 1


async def test_close_publishes_once_and_a_closed_opening_stays_closed(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    employer = await _employer(harness, signup)
    opening = await _opening(harness, employer, opening_json)
    await harness.service.close_opening(employer.employer_id, opening.opening_id)
    with pytest.raises(ConflictError):
        await harness.service.close_opening(employer.employer_id, opening.opening_id)
    with pytest.raises(ConflictError):
        await harness.service.edit_opening(
            employer.employer_id, opening.opening_id, OpeningPatch(title="Again")
        )
    [closed] = harness.uow.of_class(OpeningClosed)
    assert closed.payload.reason == "closed"
    assert closed.payload.version == 2


async def test_expiry_closes_openings_past_expires_at(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    employer = await _employer(harness, signup)
    soon = harness.clock.now() + timedelta(days=3)
    short = await _opening(harness, employer, opening_json, expires_at=soon.isoformat())
    long = await _opening(
        harness, employer, opening_json, title="Care Manager", role="care_manager"
    )

    assert await harness.service.expire_due() == 0
    harness.clock.advance(timedelta(days=3, seconds=1))
    assert await harness.service.expire_due() == 1
    assert await harness.service.expire_due() == 0

    [closed] = harness.uow.of_class(OpeningClosed)
    assert closed.payload.opening_id == short.opening_id
    assert closed.payload.reason == "expired"
    assert harness.repository.openings[long.opening_id].is_open


async def test_expires_at_must_be_future_and_within_180_days(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    employer = await _employer(harness, signup)
    for when, message in [
        (harness.clock.now() - timedelta(minutes=1), "must be in the future"),
        (harness.clock.now() + timedelta(days=180, minutes=1), "must be within 180 days"),
    ]:
        with pytest.raises(InvalidFieldsError) as caught:
            await _opening(harness, employer, opening_json, expires_at=when.isoformat())
        assert caught.value.errors == {"expires_at": message}
    assert harness.repository.openings == {}
    assert harness.uow.of_type("opening.posted") == []


def _sent(subscriber_id: str, *opening_ids: str) -> NotificationSent:
    return NotificationSent.create(
        {
            "message_id": f"<{uuid4()}@hwcollab>",
            "subscriber_id": subscriber_id,
            "kind": "immediate",
            "opening_ids": list(opening_ids),
            "sent_at": datetime(2026, 3, 2, 16, tzinfo=UTC),
        },
        producer="notifier",
        occurred_at=datetime(2026, 3, 2, 16, tzinfo=UTC),
    )


async def test_reach_counts_each_event_once(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    employer = await _employer(harness, signup)
    a = await _opening(harness, employer, opening_json)
    b = await _opening(harness, employer, opening_json, title="Care Manager", role="care_manager")
    first = _sent("s1", a.opening_id)
    await harness.service.record_notification(first)
    await harness.service.record_notification(first)  # redelivered
    await harness.service.record_notification(_sent("s2", a.opening_id, b.opening_id))
    await harness.service.record_notification(_sent("s3", a.opening_id, a.opening_id))
    stats_a = await harness.service.stats(employer.employer_id, a.opening_id)
    stats_b = await harness.service.stats(employer.employer_id, b.opening_id)
    assert (stats_a.notified, stats_b.notified) == (3, 1)


def _batch(*emails: tuple[str, tuple[str, ...]]) -> NotificationBatchSent:
    return NotificationBatchSent.create(
        {
            "batch_id": str(uuid4()),
            "sent": [
                _sent(subscriber_id, *opening_ids).payload for subscriber_id, opening_ids in emails
            ],
        },
        producer="notifier",
        occurred_at=datetime(2026, 3, 2, 16, tzinfo=UTC),
    )


async def test_a_batch_counts_each_of_its_pairs_once_in_one_transaction(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    employer = await _employer(harness, signup)
    a = await _opening(harness, employer, opening_json)
    b = await _opening(harness, employer, opening_json, title="Care Manager", role="care_manager")
    await harness.service.record_notification(_sent("s1", a.opening_id))
    batch = _batch(
        ("s0", (a.opening_id,)),
        ("s2", (a.opening_id, b.opening_id)),  # a digest naming both
        ("s3", (a.opening_id,)),
        ("s3", (a.opening_id,)),  # the same pair twice in one batch
        ("s4", ()),  # a welcome email names no opening
    )
    await harness.service.record_notification(batch)
    await harness.service.record_notification(batch)  # redelivered: applied once
    stats_a = await harness.service.stats(employer.employer_id, a.opening_id)
    stats_b = await harness.service.stats(employer.employer_id, b.opening_id)
    assert (stats_a.notified, stats_b.notified) == (4, 1)
    assert str(batch.event_id) in harness.uow.applied


async def test_a_batch_that_fails_changes_no_count(
    harness: Harness,
    signup: BodyFactory,
    opening_json: BodyFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    employer = await _employer(harness, signup)
    a = await _opening(harness, employer, opening_json)
    batch = _batch(("s1", (a.opening_id,)), ("s2", (a.opening_id,)))
    record = harness.repository.count_reach
    calls = 0

    async def failing(counts: Mapping[str, int]) -> None:
        nonlocal calls
        calls += 1
        await record(counts)
        raise RuntimeError("the transaction is cut off")

    monkeypatch.setattr(harness.repository, "count_reach", failing)
    with pytest.raises(RuntimeError):
        await harness.service.record_notification(batch)
    assert calls == 1  # the whole batch is one write, not one per email
    monkeypatch.setattr(harness.repository, "count_reach", record)
    assert (await harness.service.stats(employer.employer_id, a.opening_id)).notified == 0
    await harness.service.record_notification(batch)  # redelivered after the failure
    assert (await harness.service.stats(employer.employer_id, a.opening_id)).notified == 2


async def test_renaming_the_organization_refreshes_open_openings(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    employer = await _employer(harness, signup)
    await _opening(harness, employer, opening_json)
    harness.uow.events.clear()
    await harness.service.update_profile(
        employer.employer_id, ProfilePatch(organization_name="Worcester Care Collaborative")
    )
    assert [e.event_type for e in harness.uow.events] == ["employer.updated", "opening.updated"]
    [updated] = harness.uow.of_class(OpeningUpdated)
    assert updated.payload.organization_name == "Worcester Care Collaborative"
