"""Use cases against an in-memory store: events, statuses, idempotence, tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hwcollab_common.clock import FixedClock
from hwcollab_common.tokens import Purpose, TokenExpiredError, TokenInvalidError
from hwcollab_schemas.events import (
    NotificationComplained,
    NotificationComplainedPayload,
    NotificationFailed,
    NotificationFailedPayload,
    SubscriberProfile,
)
from hwcollab_subscriber.domain import PreferencesChange, SignUp
from hwcollab_subscriber.handlers import (
    Links,
    NotSubscribedError,
    SubscriberService,
    SubscriptionGoneError,
)


@pytest.fixture
def body(helpers: Any) -> dict[str, Any]:
    result: dict[str, Any] = helpers.sign_up_body()
    return result


async def signed_up(service: SubscriberService, store: Any, body: dict[str, Any]) -> str:
    await service.sign_up(SignUp.model_validate(body))
    return str(store.only().subscriber_id)


async def confirmed(
    service: SubscriberService, store: Any, links: Links, body: dict[str, Any]
) -> str:
    subscriber_id = await signed_up(service, store, body)
    await service.confirm(links.token(Purpose.CONFIRM, subscriber_id))
    return subscriber_id


def failed(subscriber_id: str, *, permanent: bool) -> NotificationFailed:
    now = datetime(2026, 3, 2, tzinfo=UTC)
    return NotificationFailed.create(
        NotificationFailedPayload(
            message_id="m1",
            subscriber_id=subscriber_id,
            kind="immediate",
            permanent=permanent,
            reason="550 no such user",
            failed_at=now,
        ),
        producer="notifier",
        occurred_at=now,
    )


async def test_sign_up_creates_a_pending_subscriber_and_asks_for_confirmation(
    service: SubscriberService, store: Any, links: Links, body: dict[str, Any], helpers: Any
) -> None:
    subscriber_id = await signed_up(service, store, body)
    subscriber = store.only()
    assert subscriber.status == "pending"
    assert subscriber.email == "Jordan.Lee@example.org"
    payload = helpers.payload_of(store.events, "subscriber.confirmation_requested")
    assert payload.subscriber_id == subscriber_id
    assert payload.first_name == "Jordan"
    assert payload.confirm_url.startswith("https://alerts.example.org/confirm?token=")
    assert links.verify(Purpose.CONFIRM, helpers.token_from(payload.confirm_url)) == subscriber_id
    assert [e.key for e in store.events] == [subscriber_id]


async def test_pending_address_gets_one_confirmation_per_window(
    service: SubscriberService, store: Any, clock: FixedClock, body: dict[str, Any]
) -> None:
    for _ in range(3):
        await service.sign_up(SignUp.model_validate({**body, "email": "jordan.lee@EXAMPLE.org"}))
    assert len(store.rows) == 1
    assert len(store.events_of("subscriber.confirmation_requested")) == 1
    clock.advance(timedelta(minutes=10))
    await service.sign_up(SignUp.model_validate(body))
    assert len(store.events_of("subscriber.confirmation_requested")) == 2


async def test_pending_sign_up_again_takes_the_latest_preferences(
    service: SubscriberService, store: Any, body: dict[str, Any]
) -> None:
    await service.sign_up(SignUp.model_validate(body))
    await service.sign_up(SignUp.model_validate({**body, "zip": "10001", "frequency": "weekly"}))
    subscriber = store.only()
    assert (subscriber.preferences.zip, subscriber.preferences.frequency) == ("10001", "weekly")
    assert len(store.events) == 1


async def test_confirm_activates_and_publishes_the_full_profile(
    service: SubscriberService, store: Any, links: Links, body: dict[str, Any], helpers: Any
) -> None:
    subscriber_id = await signed_up(service, store, body)
    token = links.token(Purpose.CONFIRM, subscriber_id)
    subscriber = await service.confirm(token)
    assert subscriber.status == "active"
    published: SubscriberProfile = helpers.payload_of(store.events, "subscriber.registered")
    assert published.subscriber_id == subscriber_id
    assert published.version == 2
    assert published.email == "Jordan.Lee@example.org"
    assert published.first_name == "Jordan"
    assert published.roles == ("care_coordination", "nurse_care_manager")
    assert (published.zip, published.city, published.state) == ("01608", "Worcester", "MA")
    assert published.timezone == "America/New_York"
    assert 42 < published.lat < 43
    assert (published.frequency, published.digest_hour, published.digest_weekday) == (
        "daily",
        7,
        "tue",
    )
    assert published.min_pay_hourly == 30
    assert published.career_info is True
    again = await service.confirm(token)
    assert again.status == "active"
    assert len(store.events_of("subscriber.registered")) == 1


async def test_tokens_are_purpose_bound_tamper_evident_and_expire(
    service: SubscriberService, store: Any, links: Links, clock: FixedClock, body: dict[str, Any]
) -> None:
    subscriber_id = await signed_up(service, store, body)
    with pytest.raises(TokenInvalidError):
        await service.confirm(links.token(Purpose.MANAGE, subscriber_id))
    token = links.token(Purpose.CONFIRM, subscriber_id)
    with pytest.raises(TokenInvalidError):
        await service.confirm(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    clock.advance(timedelta(days=7, seconds=1))
    with pytest.raises(TokenExpiredError):
        await service.confirm(token)
    assert store.only().status == "pending"


async def test_active_address_signing_up_again_gets_its_preferences_link(
    service: SubscriberService,
    store: Any,
    links: Links,
    clock: FixedClock,
    body: dict[str, Any],
    helpers: Any,
) -> None:
    subscriber_id = await confirmed(service, store, links, body)
    await service.sign_up(SignUp.model_validate({**body, "zip": "10001"}))
    await service.sign_up(SignUp.model_validate(body))
    assert len(store.rows) == 1
    assert store.only().preferences.zip == "01608"
    payload = helpers.payload_of(store.events, "subscriber.manage_link_requested")
    assert payload.reason == "already_subscribed"
    assert links.verify(Purpose.MANAGE, helpers.token_from(payload.manage_url)) == subscriber_id
    assert payload.manage_url.startswith("https://alerts.example.org/preferences?token=")


async def test_changing_preferences_publishes_an_update_with_a_new_version(
    service: SubscriberService, store: Any, links: Links, body: dict[str, Any], helpers: Any
) -> None:
    subscriber_id = await confirmed(service, store, links, body)
    token = links.token(Purpose.MANAGE, subscriber_id)
    change = PreferencesChange.model_validate(
        helpers.preferences_body(frequency="weekly", digest_weekday="fri", radius_miles=80)
    )
    subscriber = await service.change_preferences(token, change)
    assert subscriber.preferences.radius_miles == 80
    update = helpers.payload_of(store.events, "subscriber.updated")
    assert (update.version, update.frequency, update.digest_weekday) == (3, "weekly", "fri")
    await service.change_preferences(token, change)  # no change, no event
    assert len(store.events_of("subscriber.updated")) == 1
    paused = await service.change_preferences(
        token, PreferencesChange.model_validate({**change.model_dump(), "paused": True})
    )
    assert paused.status == "paused"
    assert store.events[-1].payload.status == "paused"


async def test_pause_and_resume_are_idempotent(
    service: SubscriberService, store: Any, links: Links, body: dict[str, Any]
) -> None:
    subscriber_id = await confirmed(service, store, links, body)
    token = links.token(Purpose.MANAGE, subscriber_id)
    assert (await service.set_paused(token, paused=True)).status == "paused"
    await service.set_paused(token, paused=True)
    assert (await service.set_paused(token, paused=False)).status == "active"
    updates = store.events_of("subscriber.updated")
    assert [e.payload.status for e in updates] == ["paused", "active"]
    assert [e.payload.version for e in updates] == [3, 4]


async def test_preferences_need_a_confirmed_subscription(
    service: SubscriberService, store: Any, links: Links, body: dict[str, Any]
) -> None:
    subscriber_id = await signed_up(service, store, body)
    with pytest.raises(NotSubscribedError, match="confirm"):
        await service.preferences(links.token(Purpose.MANAGE, subscriber_id))


async def test_unsubscribe_is_idempotent_and_a_new_sign_up_starts_over(
    service: SubscriberService, store: Any, links: Links, body: dict[str, Any], helpers: Any
) -> None:
    subscriber_id = await confirmed(service, store, links, body)
    token = links.token(Purpose.UNSUBSCRIBE, subscriber_id)
    assert (await service.unsubscribe(token, reason="one_click")) is not None
    await service.unsubscribe(token, reason="one_click")
    gone = helpers.payload_of(store.events, "subscriber.unsubscribed")
    assert (gone.subscriber_id, gone.version, gone.reason) == (subscriber_id, 3, "one_click")
    with pytest.raises(NotSubscribedError):
        await service.preferences(links.token(Purpose.MANAGE, subscriber_id))
    await service.sign_up(SignUp.model_validate(body))
    assert store.only().status == "pending"
    assert len(store.events_of("subscriber.confirmation_requested")) == 2
    await service.confirm(links.token(Purpose.CONFIRM, subscriber_id))
    assert len(store.events_of("subscriber.registered")) == 2


async def test_erasure_removes_the_subscriber_and_the_event_has_no_personal_data(
    service: SubscriberService, store: Any, links: Links, body: dict[str, Any], helpers: Any
) -> None:
    subscriber_id = await confirmed(service, store, links, body)
    token = links.token(Purpose.MANAGE, subscriber_id)
    await service.erase(token)
    await service.erase(token)
    assert store.rows == {}
    (deleted,) = store.events_of("subscriber.deleted")
    assert deleted.payload.model_dump() == {"subscriber_id": subscriber_id, "version": 3}
    raw = deleted.to_bytes().lower()
    assert b"jordan" not in raw
    assert b"01608" not in raw
    with pytest.raises(SubscriptionGoneError):
        await service.preferences(token)
    assert (
        await service.unsubscribe(links.token(Purpose.UNSUBSCRIBE, subscriber_id), reason="page")
        is None
    )


async def test_permanent_bounce_marks_bounced_once(
    service: SubscriberService, store: Any, links: Links, body: dict[str, Any], helpers: Any
) -> None:
    subscriber_id = await confirmed(service, store, links, body)
    await service.notification_failed(failed(subscriber_id, permanent=False))
    assert store.only().status == "active"
    event = failed(subscriber_id, permanent=True)
    await service.notification_failed(event)
    await service.notification_failed(event)
    assert store.only().status == "bounced"
    (update,) = store.events_of("subscriber.updated")
    assert (update.payload.status, update.payload.version) == ("bounced", 3)
    token = links.token(Purpose.MANAGE, subscriber_id)
    kept = await service.change_preferences(
        token, PreferencesChange.model_validate(helpers.preferences_body(radius_miles=5))
    )
    assert kept.status == "bounced"
    with pytest.raises(NotSubscribedError):
        await service.set_paused(token, paused=False)
    await service.sign_up(SignUp.model_validate(body))
    assert store.only().status == "pending"


async def test_spam_complaint_unsubscribes_once(
    service: SubscriberService, store: Any, links: Links, body: dict[str, Any], helpers: Any
) -> None:
    subscriber_id = await confirmed(service, store, links, body)
    now = datetime(2026, 3, 2, tzinfo=UTC)
    event = NotificationComplained.create(
        NotificationComplainedPayload(
            message_id="m1",
            subscriber_id=subscriber_id,
            kind="immediate",
            feedback_type="abuse",
            complained_at=now,
        ),
        producer="notifier",
        occurred_at=now,
    )
    await service.notification_complained(event)
    await service.notification_complained(event)
    assert store.only().status == "unsubscribed"
    payload = helpers.payload_of(store.events, "subscriber.unsubscribed")
    assert (payload.subscriber_id, payload.reason) == (subscriber_id, "complaint")
    assert len(store.events_of("subscriber.unsubscribed")) == 1


async def test_bounced_confirmation_is_not_announced(
    service: SubscriberService, store: Any, body: dict[str, Any]
) -> None:
    subscriber_id = await signed_up(service, store, body)
    await service.notification_failed(failed(subscriber_id, permanent=True))
    assert store.only().status == "bounced"
    assert store.events_of("subscriber.updated") == []


async def test_manage_link_request_is_silent_about_unknown_addresses(
    service: SubscriberService, store: Any, links: Links, body: dict[str, Any], helpers: Any
) -> None:
    await service.request_manage_link("nobody@example.org")
    assert store.events == []
    subscriber_id = await confirmed(service, store, links, body)
    await service.request_manage_link("JORDAN.LEE@example.org")
    payload = helpers.payload_of(store.events, "subscriber.manage_link_requested")
    assert payload.reason == "requested"
    assert payload.subscriber_id == subscriber_id
