"""Engagement and sunsetting against the in-memory store with an injected clock: clicks through
the redirect are recorded, only the silent are asked "still interested?" (one email each), the
unanswered are paused with reason "inactive", and a click, a keep or a resume undoes it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar

import pytest

from hwcollab_common.clicks import ClickLink, ClickLinks
from hwcollab_common.clock import FixedClock
from hwcollab_common.tokens import LinkSigner, Purpose, TokenExpiredError, TokenInvalidError
from hwcollab_schemas.envelope import Event
from hwcollab_schemas.events import SubscriberManageLinkRequested, SubscriberUpdated
from hwcollab_subscriber.domain import PreferencesChange, SignUp
from hwcollab_subscriber.handlers import (
    Links,
    NotSubscribedError,
    SubscriberService,
    SunsetPolicy,
)

from .conftest import EMPLOYER_URL, PUBLIC_URL, SIGNING_KEY, FakeStore

DAY = timedelta(days=1)
STILL_INTERESTED = "subscriber.manage_link_requested"

E = TypeVar("E", bound=Event)


def as_class(events: Sequence[Event], kind: type[E]) -> list[E]:
    """The events, each of which the service wrote as a ``kind``, typed as such."""
    typed = [e for e in events if isinstance(e, kind)]
    assert len(typed) == len(events)
    return typed


@pytest.fixture
def service(store: FakeStore, links: Links, clock: FixedClock) -> SubscriberService:
    return SubscriberService(
        store=store,
        links=links,
        clock=clock,
        sunset=SunsetPolicy(after=timedelta(days=180), grace=timedelta(days=14)),
    )


async def confirmed(
    service: SubscriberService, store: FakeStore, links: Links, helpers: Any, name: str
) -> str:
    await service.sign_up(SignUp.model_validate(helpers.sign_up_body(email=f"{name}@example.org")))
    subscriber = next(s for s in store.rows.values() if s.email == f"{name}@example.org")
    await service.confirm(links.token(Purpose.CONFIRM, subscriber.subscriber_id))
    return subscriber.subscriber_id


def asked(store: FakeStore) -> list[str]:
    """Subscribers sent the "still interested?" email, in order."""
    return [
        e.payload.subscriber_id
        for e in as_class(store.events_of(STILL_INTERESTED), SubscriberManageLinkRequested)
        if e.payload.reason == "still_interested"
    ]


def click_url(
    links: Links, subscriber_id: str, link: ClickLink = "details", apply_url: str = ""
) -> str:
    return links.clicks.url(subscriber_id, "op-7", link, apply_url=apply_url)


def token_of(url: str) -> str:
    return url.split("token=", 1)[1]


# --- the click redirect ---------------------------------------------------------------------------


async def test_a_click_records_engagement_once_an_hour_and_goes_to_the_opening(
    service: SubscriberService, store: FakeStore, links: Links, clock: FixedClock, helpers: Any
) -> None:
    jordan = await confirmed(service, store, links, helpers, "jordan")
    version = store.rows[jordan].version

    click = await service.click(token_of(click_url(links, jordan)))
    assert click.target == f"{EMPLOYER_URL}/openings/op-7"
    assert (click.subscriber_id, click.opening_id, click.link) == (jordan, "op-7", "details")
    assert store.rows[jordan].last_engaged_at == clock.now()
    assert store.rows[jordan].version == version + 1

    first = clock.now()
    clock.advance(timedelta(minutes=59))
    apply = "https://careers.example.org/apply?id=7&src=hw"
    click = await service.click(token_of(click_url(links, jordan, "apply", apply)))
    assert click.target == apply
    assert store.rows[jordan].last_engaged_at == first  # within the hour: no write
    assert store.rows[jordan].version == version + 1

    clock.advance(timedelta(minutes=2))
    await service.click(token_of(click_url(links, jordan)))
    assert store.rows[jordan].last_engaged_at == clock.now()
    assert store.events_of("subscriber.updated") == []  # nothing for the notifier to learn


async def test_a_click_of_someone_erased_or_unknown_still_leads_to_the_opening(
    service: SubscriberService, links: Links
) -> None:
    click = await service.click(token_of(click_url(links, "nobody")))
    assert click.target == f"{EMPLOYER_URL}/openings/op-7"


async def test_click_tokens_cannot_be_forged_or_point_elsewhere(
    service: SubscriberService, links: Links, clock: FixedClock
) -> None:
    genuine = token_of(click_url(links, "sub-1"))
    other_key = ClickLinks(
        LinkSigner("another-deployment-link-signing-key-0123456789", clock=clock),
        subscriber_public_url=PUBLIC_URL,
        employer_public_url=EMPLOYER_URL,
    )
    signer = LinkSigner(SIGNING_KEY, clock=clock)
    bad = {
        "tampered": genuine[:-12] + ("A" if genuine[-12] != "A" else "B") + genuine[-11:],
        "another key": token_of(
            other_key.url("sub-1", "op-7", "apply", apply_url="https://evil.example")
        ),
        "another purpose": signer.sign(Purpose.MANAGE, "sub-1"),
        "a manage token's claims": signer.sign_claims(
            Purpose.MANAGE, ("sub-1", "op-7", "a", "https://evil.example")
        ),
        "not a web target": signer.sign_claims(
            Purpose.CLICK, ("sub-1", "op-7", "a", "javascript:alert(1)")
        ),
        "unknown link": signer.sign_claims(Purpose.CLICK, ("sub-1", "op-7", "x", "")),
        "too few claims": signer.sign_claims(Purpose.CLICK, ("sub-1", "op-7")),
        "garbage": "not-a-token",
    }
    for name, token in bad.items():
        with pytest.raises(TokenInvalidError):
            await service.click(token)
        assert name
    # A details link ignores any target: the page comes from the opening id and the settings.
    sneaky = signer.sign_claims(Purpose.CLICK, ("sub-1", "op-7", "d", "https://evil.example"))
    assert (await service.click(sneaky)).target == f"{EMPLOYER_URL}/openings/op-7"
    # An opening id cannot leave the employer's site either.
    odd = signer.sign_claims(Purpose.CLICK, ("sub-1", "../../x?//evil.example", "d", ""))
    assert (await service.click(odd)).target.startswith(f"{EMPLOYER_URL}/openings/..%2F")

    clock.advance(timedelta(days=366))
    with pytest.raises(TokenExpiredError):
        await service.click(genuine)


# --- sunsetting -----------------------------------------------------------------------------------


async def test_only_the_silent_are_asked_once_and_the_unanswered_are_paused(
    service: SubscriberService, store: FakeStore, links: Links, clock: FixedClock, helpers: Any
) -> None:
    silent = await confirmed(service, store, links, helpers, "silent")
    clicker = await confirmed(service, store, links, helpers, "clicker")
    chose_pause = await confirmed(service, store, links, helpers, "paused")
    await service.set_paused(links.token(Purpose.MANAGE, chose_pause), paused=True)
    await service.sign_up(SignUp.model_validate(helpers.sign_up_body(email="pending@example.org")))

    clock.advance(100 * DAY)
    await service.click(token_of(click_url(links, clicker)))

    clock.advance(81 * DAY)  # 181 days after confirming, 81 after the click
    run = await service.run_sunset()
    assert (run.noticed, run.paused) == (1, 0)
    assert asked(store) == [silent]
    [request] = [
        e.payload
        for e in as_class(store.events_of(STILL_INTERESTED), SubscriberManageLinkRequested)
    ]
    assert request.email == "silent@example.org"
    assert request.keep_url is not None
    assert request.keep_url.startswith(f"{PUBLIC_URL}/keep?token=")
    assert links.verify(Purpose.KEEP, request.keep_url.split("token=")[1]) == silent
    assert request.pause_after == clock.now() + 14 * DAY
    assert store.rows[silent].sunset_notice_at == clock.now()

    clock.advance(13 * DAY)
    assert (await service.run_sunset()).paused == 0  # one email only, and not paused yet
    assert asked(store) == [silent]

    clock.advance(DAY)
    updated_before = len(store.events_of("subscriber.updated"))
    run = await service.run_sunset()
    assert (run.noticed, run.paused) == (0, 1)
    assert store.rows[silent].status == "paused"
    assert store.rows[silent].paused_reason == "inactive"
    assert store.rows[silent].sunset_notice_at is None
    [paused_event] = as_class(
        store.events_of("subscriber.updated")[updated_before:], SubscriberUpdated
    )
    assert paused_event.payload.subscriber_id == silent
    assert paused_event.payload.status == "paused"  # the notifier stops mailing them
    assert store.rows[clicker].status == "active"
    assert store.rows[clicker].sunset_notice_at is None
    assert store.rows[chose_pause].paused_reason is None

    # 180 days after the click, the clicker is asked in turn; nobody is asked twice.
    clock.advance(100 * DAY)
    await service.run_sunset()
    assert asked(store) == [silent, clicker]
    await service.run_sunset()
    assert asked(store) == [silent, clicker]


async def test_asked_then_clicked_is_not_paused(
    service: SubscriberService, store: FakeStore, links: Links, clock: FixedClock, helpers: Any
) -> None:
    jordan = await confirmed(service, store, links, helpers, "jordan")
    clock.advance(200 * DAY)
    await service.run_sunset()
    assert asked(store) == [jordan]
    clock.advance(3 * DAY)
    await service.click(token_of(click_url(links, jordan)))
    assert store.rows[jordan].sunset_notice_at is None
    clock.advance(30 * DAY)
    run = await service.run_sunset()
    assert (run.noticed, run.paused) == (0, 0)
    assert store.rows[jordan].status == "active"


async def test_keep_answers_the_notice_and_ends_a_pause_for_inactivity(
    service: SubscriberService, store: FakeStore, links: Links, clock: FixedClock, helpers: Any
) -> None:
    kept_in_time = await confirmed(service, store, links, helpers, "intime")
    kept_late = await confirmed(service, store, links, helpers, "late")
    clock.advance(181 * DAY)
    await service.run_sunset()

    kept = await service.keep(links.token(Purpose.KEEP, kept_in_time))
    assert (kept.status, kept.sunset_notice_at, kept.kept_at) == ("active", None, clock.now())
    again = await service.keep(links.token(Purpose.KEEP, kept_in_time))
    assert again.version == kept.version  # repeating changes nothing

    clock.advance(15 * DAY)
    await service.run_sunset()
    assert store.rows[kept_in_time].status == "active"
    assert store.rows[kept_late].paused_for_inactivity

    updated_before = len(store.events_of("subscriber.updated"))
    back = await service.keep(links.token(Purpose.KEEP, kept_late))
    assert (back.status, back.paused_reason) == ("active", None)
    [resumed] = as_class(store.events_of("subscriber.updated")[updated_before:], SubscriberUpdated)
    assert resumed.payload.status == "active"
    # Kept just now: not asked again at the next run.
    await service.run_sunset()
    assert asked(store) == [kept_in_time, kept_late]


async def test_resuming_after_a_pause_for_inactivity_counts_as_interest(
    service: SubscriberService, store: FakeStore, links: Links, clock: FixedClock, helpers: Any
) -> None:
    jordan = await confirmed(service, store, links, helpers, "jordan")
    riley = await confirmed(service, store, links, helpers, "riley")
    clock.advance(181 * DAY)
    await service.run_sunset()
    clock.advance(14 * DAY)
    await service.run_sunset()
    assert store.rows[jordan].paused_for_inactivity
    assert store.rows[riley].paused_for_inactivity

    resumed = await service.set_paused(links.token(Purpose.MANAGE, jordan), paused=False)
    assert (resumed.status, resumed.paused_reason, resumed.kept_at) == ("active", None, clock.now())
    # The preferences form with "pause" unticked resumes the same way.
    form = PreferencesChange.model_validate({**helpers.preferences_body(), "paused": False})
    saved = await service.change_preferences(links.token(Purpose.MANAGE, riley), form)
    assert (saved.status, saved.paused_reason, saved.kept_at) == ("active", None, clock.now())
    await service.run_sunset()
    assert sorted(asked(store)) == sorted([jordan, riley])  # not asked again


async def test_saving_the_preferences_page_answers_the_notice(
    service: SubscriberService, store: FakeStore, links: Links, clock: FixedClock, helpers: Any
) -> None:
    jordan = await confirmed(service, store, links, helpers, "jordan")
    clock.advance(181 * DAY)
    await service.run_sunset()
    assert store.rows[jordan].sunset_notice_at is not None
    same = PreferencesChange.model_validate(helpers.preferences_body())
    await service.change_preferences(links.token(Purpose.MANAGE, jordan), same)
    assert store.rows[jordan].sunset_notice_at is None
    clock.advance(20 * DAY)
    assert (await service.run_sunset()).paused == 0


async def test_a_pause_chosen_by_the_subscriber_is_theirs(
    service: SubscriberService, store: FakeStore, links: Links, clock: FixedClock, helpers: Any
) -> None:
    jordan = await confirmed(service, store, links, helpers, "jordan")
    clock.advance(181 * DAY)
    await service.run_sunset()
    await service.set_paused(links.token(Purpose.MANAGE, jordan), paused=True)
    assert store.rows[jordan].paused_reason is None
    clock.advance(30 * DAY)
    assert (await service.run_sunset()).paused == 0  # only active subscribers are paused


async def test_keep_of_an_ended_subscription_is_refused(
    service: SubscriberService, store: FakeStore, links: Links, helpers: Any
) -> None:
    jordan = await confirmed(service, store, links, helpers, "jordan")
    await service.unsubscribe(links.token(Purpose.UNSUBSCRIBE, jordan), reason="page")
    with pytest.raises(NotSubscribedError):
        await service.keep(links.token(Purpose.KEEP, jordan))


async def test_sunsetting_can_be_turned_off(
    store: FakeStore, links: Links, clock: FixedClock, helpers: Any
) -> None:
    service = SubscriberService(
        store=store, links=links, clock=clock, sunset=SunsetPolicy(after=None)
    )
    await confirmed(service, store, links, helpers, "jordan")
    clock.advance(1000 * DAY)
    run = await service.run_sunset()
    assert (run.noticed, run.paused) == (0, 0)
    assert asked(store) == []


async def test_a_run_asks_at_most_a_batch(
    store: FakeStore, links: Links, clock: FixedClock, helpers: Any
) -> None:
    service = SubscriberService(store=store, links=links, clock=clock, sunset=SunsetPolicy(batch=2))
    for name in ("a", "b", "c"):
        await confirmed(service, store, links, helpers, name)
    clock.advance(181 * DAY)
    assert (await service.run_sunset()).noticed == 2
    assert (await service.run_sunset()).noticed == 1
    assert (await service.run_sunset()).noticed == 0


async def test_signing_up_again_starts_afresh(
    service: SubscriberService, store: FakeStore, links: Links, clock: FixedClock, helpers: Any
) -> None:
    jordan = await confirmed(service, store, links, helpers, "jordan")
    clock.advance(181 * DAY)
    await service.run_sunset()
    await service.unsubscribe(links.token(Purpose.UNSUBSCRIBE, jordan), reason="page")
    clock.advance(30 * DAY)
    await service.sign_up(SignUp.model_validate(helpers.sign_up_body(email="jordan@example.org")))
    await service.confirm(links.token(Purpose.CONFIRM, jordan))
    assert store.rows[jordan].sunset_notice_at is None
    run = await service.run_sunset()
    assert (run.noticed, run.paused) == (0, 0)
    assert store.rows[jordan].status == "active"
