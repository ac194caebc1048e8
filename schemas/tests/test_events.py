from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from hwcollab_schemas import Event, EventParseError, parse_event
from hwcollab_schemas.events import (
    EVENT_CLASSES,
    AccountEmailRequestedPayload,
    ConfirmationRequestedPayload,
    EmployerAccountEmailRequested,
    EmployerApproved,
    EmployerModeration,
    EmployerProfile,
    EmployerRegistered,
    EmployerReinstated,
    EmployerRejected,
    EmployerSuspended,
    EmployerUpdated,
    ManageLinkRequestedPayload,
    NotificationBatchSent,
    NotificationBatchSentPayload,
    NotificationComplained,
    NotificationComplainedPayload,
    NotificationFailed,
    NotificationFailedPayload,
    NotificationSent,
    NotificationSentPayload,
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
from hwcollab_schemas.registry import MAX_EVENT_BYTES
from hwcollab_schemas.topics import (
    EMPLOYER_TOPIC,
    NOTIFICATION_TOPIC,
    OPENING_TOPIC,
    SUBSCRIBER_TOPIC,
)

NOW = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)

PROFILE = SubscriberProfile(
    subscriber_id="s-1",
    version=2,
    email="pat@example.org",
    first_name="Pat",
    roles=("care_management",),
    credentials=("rn",),
    zip="01608",
    lat=42.26,
    lon=-71.80,
    timezone="America/New_York",
    radius_miles=30,
    confirmed_at=NOW,
)
EMPLOYER = EmployerProfile(
    employer_id="e-1",
    version=1,
    organization_name="Worcester Community Health",
    city="Worcester",
    state="MA",
    zip="01608",
    lat=42.26,
    lon=-71.80,
    settings=("medical",),
    status="approved",
)
OPENING = OpeningDetails(
    opening_id="o-1",
    employer_id="e-1",
    version=1,
    organization_name="Worcester Community Health",
    employer_approved=True,
    title="Nurse Care Manager",
    role="nurse_care_manager",
    setting="medical",
    required_credentials=("rn",),
    employment_type="full_time",
    zip="01501",
    lat=42.19,
    lon=-71.84,
    pay_min=80000,
    pay_max=95000,
    pay_period="year",
    apply_url="https://jobs.example.org/1",
    posted_at=NOW,
    expires_at=NOW + timedelta(days=30),
)

EXAMPLES: list[Event] = [
    SubscriberRegistered.create(PROFILE, producer="subscriber", occurred_at=NOW),
    SubscriberUpdated.create(PROFILE, producer="subscriber", occurred_at=NOW),
    SubscriberUnsubscribed.create(
        SubscriberUnsubscribedPayload(subscriber_id="s-1", version=3),
        producer="subscriber",
        occurred_at=NOW,
    ),
    SubscriberDeleted.create(
        SubscriberDeletedPayload(subscriber_id="s-1", version=4),
        producer="subscriber",
        occurred_at=NOW,
    ),
    SubscriberConfirmationRequested.create(
        ConfirmationRequestedPayload(
            subscriber_id="s-1", email="pat@example.org", confirm_url="http://x/confirm?token=t"
        ),
        producer="subscriber",
        occurred_at=NOW,
    ),
    SubscriberManageLinkRequested.create(
        ManageLinkRequestedPayload(
            subscriber_id="s-1", email="pat@example.org", manage_url="http://x/preferences?t=1"
        ),
        producer="subscriber",
        occurred_at=NOW,
    ),
    EmployerRegistered.create(EMPLOYER, producer="employer", occurred_at=NOW),
    EmployerUpdated.create(EMPLOYER, producer="employer", occurred_at=NOW),
    EmployerApproved.create(EMPLOYER, producer="employer", occurred_at=NOW),
    OpeningPosted.create(OPENING, producer="employer", occurred_at=NOW),
    OpeningUpdated.create(OPENING, producer="employer", occurred_at=NOW),
    OpeningClosed.create(
        OpeningClosedPayload(opening_id="o-1", employer_id="e-1", version=2, closed_at=NOW),
        producer="employer",
        occurred_at=NOW,
    ),
    NotificationSent.create(
        NotificationSentPayload(
            message_id="<a@b>",
            subscriber_id="s-1",
            kind="immediate",
            opening_ids=("o-1",),
            sent_at=NOW,
        ),
        producer="notifier",
        occurred_at=NOW,
    ),
    NotificationBatchSent.create(
        NotificationBatchSentPayload(
            batch_id="b-1",
            sent=(
                NotificationSentPayload(
                    message_id="<a@b>",
                    subscriber_id="s-1",
                    kind="immediate",
                    opening_ids=("o-1",),
                    sent_at=NOW,
                ),
            ),
        ),
        producer="notifier",
        occurred_at=NOW,
    ),
    NotificationFailed.create(
        NotificationFailedPayload(
            message_id="<a@b>",
            subscriber_id="s-1",
            kind="immediate",
            permanent=True,
            reason="550 no such user",
            failed_at=NOW,
        ),
        producer="notifier",
        occurred_at=NOW,
    ),
    # Added later: appended so that the examples above keep their places.
    EmployerRejected.create(
        EmployerModeration(
            **EMPLOYER.model_dump() | {"status": "rejected", "reason": "Not a care employer."}
        ),
        producer="employer",
        occurred_at=NOW,
    ),
    EmployerSuspended.create(
        EmployerModeration(
            **EMPLOYER.model_dump() | {"status": "suspended", "reason": "Fake openings."}
        ),
        producer="employer",
        occurred_at=NOW,
    ),
    EmployerReinstated.create(
        EmployerModeration(**EMPLOYER.model_dump()), producer="employer", occurred_at=NOW
    ),
    OpeningTakenDown.create(
        OpeningTakenDownPayload(
            opening_id="o-1",
            employer_id="e-1",
            version=3,
            reason="Misleading pay.",
            taken_down_at=NOW,
        ),
        producer="employer",
        occurred_at=NOW,
    ),
    NotificationComplained.create(
        NotificationComplainedPayload(
            message_id="<a@b>",
            subscriber_id="s-1",
            kind="immediate",
            feedback_type="abuse",
            complained_at=NOW,
        ),
        producer="notifier",
        occurred_at=NOW,
    ),
    EmployerAccountEmailRequested.create(
        AccountEmailRequestedPayload(
            employer_id="e-1",
            email="hr@cmcp.example",
            organization_name="Central Mass Care Partners",
            kind="password_reset",
            url="https://employers.hwcollab.example/reset-password?token=abc",
            expires_at=NOW + timedelta(minutes=30),
        ),
        producer="employer",
        occurred_at=NOW,
    ),
]


def test_every_event_type_has_an_example() -> None:
    assert {type(e) for e in EXAMPLES} == set(EVENT_CLASSES)


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.event_type)
def test_round_trip(event: Event) -> None:
    parsed = parse_event(event.to_bytes(), topic=event.topic)
    assert parsed == event
    assert type(parsed) is type(event)


def test_keys_are_aggregate_ids() -> None:
    by_type = {e.event_type: e for e in EXAMPLES}
    assert by_type["subscriber.registered"].key == "s-1"
    assert by_type["opening.posted"].key == "o-1"
    assert by_type["employer.approved"].key == "e-1"
    assert by_type["notification.sent"].key == "s-1"
    assert by_type["notification.batch_sent"].key == "b-1"
    assert by_type["opening.posted"].topic == OPENING_TOPIC
    assert by_type["notification.failed"].topic == NOTIFICATION_TOPIC


def test_events_are_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        EXAMPLES[0].producer = "other"  # type: ignore[misc]


def test_occurred_at_is_normalized_to_utc() -> None:
    raw = json.loads(EXAMPLES[0].to_bytes())
    raw["occurred_at"] = "2026-11-24T08:00:00-05:00"
    assert parse_event(json.dumps(raw)).occurred_at == NOW


def test_newer_optional_fields_are_ignored() -> None:
    raw = json.loads(EXAMPLES[9].to_bytes())
    raw["payload"]["video_url"] = "https://example.org/v"
    assert parse_event(json.dumps(raw)) == EXAMPLES[9]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"payload": {}}', "missing event_type"),
        (b'{"event_type": "opening.teleported"}', "unknown event_type"),
    ],
)
def test_malformed_messages_are_rejected(raw: bytes, reason: str) -> None:
    with pytest.raises(EventParseError, match=reason):
        parse_event(raw)


def test_oversized_messages_are_rejected_before_parsing() -> None:
    raw = json.loads(EXAMPLES[9].to_bytes())
    raw["padding"] = "x" * MAX_EVENT_BYTES
    with pytest.raises(EventParseError, match="too large"):
        parse_event(json.dumps(raw))
    with pytest.raises(EventParseError, match="too large"):
        parse_event(json.dumps(raw).encode())
    del raw["padding"]
    raw["payload"]["description"] = "\u00e9" * 5000  # the largest real description, escaped
    assert parse_event(json.dumps(raw)).payload == EXAMPLES[9].payload.model_copy(
        update={"description": "\u00e9" * 5000}
    )


def test_future_schema_version_is_rejected() -> None:
    raw = json.loads(EXAMPLES[9].to_bytes())
    raw["schema_version"] = 2
    with pytest.raises(EventParseError, match="newer than the supported"):
        parse_event(json.dumps(raw))


def test_wrong_topic_is_rejected() -> None:
    with pytest.raises(EventParseError, match="does not belong"):
        parse_event(EXAMPLES[9].to_bytes(), topic=SUBSCRIBER_TOPIC)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("payload", "role"), "astronaut", "unknown role"),
        (("payload", "required_credentials"), ["md"], "unknown credential"),
        (("payload", "zip"), "1234", "zip"),
        (("payload", "apply_url"), "javascript:alert(1)", "apply_url"),
        (("payload", "pay_min"), 100000, "pay_min must not exceed pay_max"),
        (("occurred_at",), "2026-11-24T08:00:00", "timezone"),
        (("event_id",), "not-a-uuid", "event_id"),
    ],
)
def test_invalid_payloads_are_rejected_with_the_field(
    path: tuple[str, ...], value: object, message: str
) -> None:
    raw = json.loads(EXAMPLES[9].to_bytes())
    target = raw
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(EventParseError, match=message):
        parse_event(json.dumps(raw))


def test_non_remote_opening_needs_a_place() -> None:
    raw = json.loads(EXAMPLES[9].to_bytes())
    raw["payload"]["lat"] = None
    with pytest.raises(EventParseError, match="needs zip, lat and lon"):
        parse_event(json.dumps(raw))


def test_pay_is_converted_to_hourly() -> None:
    assert OPENING.pay_max_hourly() == pytest.approx(95000 / 2080)
    hourly = OPENING.model_copy(update={"pay_period": "hour", "pay_min": 25, "pay_max": None})
    assert hourly.pay_max_hourly() == 25
    unstated = OPENING.model_copy(update={"pay_min": None, "pay_max": None})
    assert unstated.pay_max_hourly() is None


@pytest.mark.parametrize(
    ("kind", "url", "valid"),
    [
        ("verify_signup", "https://e.example/verify?token=t", True),
        ("password_reset", None, False),
        ("already_registered", None, True),
        ("email_change_notice", "https://e.example/x", False),
    ],
)
def test_account_emails_carry_a_link_exactly_when_their_kind_has_one(
    kind: str, url: str | None, valid: bool
) -> None:
    body = {
        "employer_id": "e-1",
        "email": "hr@cmcp.example",
        "organization_name": "Central Mass Care Partners",
        "kind": kind,
        "url": url,
    }
    if valid:
        assert AccountEmailRequestedPayload.model_validate(body).url == url
    else:
        with pytest.raises(ValueError, match="url is required"):
            AccountEmailRequestedPayload.model_validate(body)


def test_the_account_email_event_is_keyed_by_employer_on_the_employer_topic() -> None:
    [event] = [e for e in EXAMPLES if isinstance(e, EmployerAccountEmailRequested)]
    assert (event.topic, event.key) == (EMPLOYER_TOPIC, "e-1")
