"""Use cases of the subscriber service: sign-up, double opt-in, preferences, pause, unsubscribe,
erasure, bounces, and engagement (clicks, "still interested?", pause for inactivity). Each one is
a transaction of the store that returns the events to publish."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar
from uuid import uuid4

from hwcollab_common.clicks import Click, ClickLinks
from hwcollab_common.clock import Clock
from hwcollab_common.emails import email_key, normalize_email
from hwcollab_common.errors import is_transient
from hwcollab_common.retrying import LinearJitterBackoff, Sleep, retry, retry_policy
from hwcollab_common.tokens import LinkSigner, Purpose
from hwcollab_schemas import Event
from hwcollab_schemas.events import (
    ConfirmationRequestedPayload,
    ManageLinkRequestedPayload,
    NotificationComplained,
    NotificationFailed,
    SubscriberConfirmationRequested,
    SubscriberDeleted,
    SubscriberDeletedPayload,
    SubscriberManageLinkRequested,
    SubscriberRegistered,
    SubscriberUnsubscribed,
    SubscriberUnsubscribedPayload,
    SubscriberUpdated,
)
from hwcollab_subscriber.domain import (
    DEFAULT_RESEND_WINDOW,
    PreferencesChange,
    SignUp,
    Subscriber,
    new_subscriber,
    profile,
)
from hwcollab_subscriber.ports import (
    DuplicateEmailError,
    StaleSubscriberError,
    Subscribers,
    SubscriberStore,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
PRODUCER = "subscriber"
MAX_ATTEMPTS = 12
# The most a loser of a concurrent change waits before its n-th retry is n times this.
CONTENTION_PAUSE_SECONDS = 0.005
UnsubscribeReason = Literal["one_click", "page", "preferences"]
ENGAGEMENT_EVERY = timedelta(hours=1)
"""A subscriber's clicks are recorded at most once in this window (one write per click else)."""


@dataclass(frozen=True, slots=True)
class SunsetPolicy:
    """When silent subscribers are asked "still interested?", and paused when they do not say."""

    after: timedelta | None = timedelta(days=180)
    """No click, keep or resume for this long (since confirming): asked once. None: never."""
    grace: timedelta = timedelta(days=14)
    """Asked this long ago without an answer: paused with reason "inactive"."""
    batch: int = 1000
    """At most this many subscribers asked, and as many paused, per run."""


@dataclass(frozen=True, slots=True)
class SunsetRun:
    as_of: datetime
    noticed: int
    paused: int


class SubscriptionGoneError(Exception):
    """The link names a subscriber who no longer exists (erased)."""

    reason = "We no longer hold this subscription. You can sign up again at any time."


class NotSubscribedError(Exception):
    """The subscriber is not in a state that allows this; ``reason`` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Links:
    """The signed links the subscriber service hands out, all under ``SUBSCRIBER_PUBLIC_URL``,
    and the click-through links of alerts it follows."""

    def __init__(self, signer: LinkSigner, *, public_url: str, employer_public_url: str) -> None:
        self._signer = signer
        self._base = public_url.rstrip("/")
        self.clicks = ClickLinks(
            signer, subscriber_public_url=public_url, employer_public_url=employer_public_url
        )
        self.job_board = f"{employer_public_url.rstrip('/')}/openings"

    def token(self, purpose: Purpose, subscriber_id: str) -> str:
        return self._signer.sign(purpose, subscriber_id)

    def confirm(self, subscriber_id: str) -> str:
        return f"{self._base}/confirm?token={self.token(Purpose.CONFIRM, subscriber_id)}"

    def manage(self, subscriber_id: str) -> str:
        return f"{self._base}/preferences?token={self.token(Purpose.MANAGE, subscriber_id)}"

    def keep(self, subscriber_id: str) -> str:
        return f"{self._base}/keep?token={self.token(Purpose.KEEP, subscriber_id)}"

    def verify(self, purpose: Purpose, token: str) -> str:
        """The subscriber id; raises :class:`hwcollab_common.tokens.TokenError`."""
        return self._signer.verify(purpose, token)


class SubscriberService:
    def __init__(
        self,
        *,
        store: SubscriberStore,
        links: Links,
        clock: Clock,
        resend_window: timedelta = DEFAULT_RESEND_WINDOW,
        sunset: SunsetPolicy | None = None,
        new_id: Callable[[], str] = lambda: uuid4().hex,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._store = store
        self._links = links
        self._clock = clock
        self._resend_window = resend_window
        self._sunset = sunset or SunsetPolicy()
        self._new_id = new_id
        # Concurrent changes of one subscriber or address: the loser runs again after a brief,
        # random pause, so two contenders do not meet again in step.
        self._contended = LinearJitterBackoff(step=CONTENTION_PAUSE_SECONDS, rng=rng)
        self._sleep = sleep

    # --- helpers ---------------------------------------------------------------------------------

    async def _retrying(
        self, work: Callable[[Subscribers], Awaitable[tuple[T, Sequence[Event]]]]
    ) -> T:
        """Run ``work`` again when a concurrent change of the same subscriber or address won."""
        policy = retry_policy(
            attempts=MAX_ATTEMPTS,
            on=(DuplicateEmailError, StaleSubscriberError),
            wait=self._contended,
            sleep=self._sleep,
        )
        return await retry(policy, self._store.transact, work)

    def _event(self, cls: type[Event], payload: object) -> Event:
        return cls.create(payload, producer=PRODUCER, occurred_at=self._clock.now())

    def _confirmation(self, subscriber: Subscriber) -> Event:
        return self._event(
            SubscriberConfirmationRequested,
            ConfirmationRequestedPayload(
                subscriber_id=subscriber.subscriber_id,
                email=subscriber.email,
                first_name=subscriber.first_name,
                confirm_url=self._links.confirm(subscriber.subscriber_id),
            ),
        )

    def _manage_link(
        self, subscriber: Subscriber, reason: Literal["requested", "already_subscribed"]
    ) -> Event:
        return self._manage_link_event(subscriber, reason=reason)

    def _still_interested(self, subscriber: Subscriber, *, pause_after: datetime) -> Event:
        return self._manage_link_event(
            subscriber,
            reason="still_interested",
            keep_url=self._links.keep(subscriber.subscriber_id),
            pause_after=pause_after,
        )

    def _manage_link_event(self, subscriber: Subscriber, **reasons: Any) -> Event:
        """The manage-link email the notifier sends, for ``reason`` (and what goes with it)."""
        return self._event(
            SubscriberManageLinkRequested,
            ManageLinkRequestedPayload(
                subscriber_id=subscriber.subscriber_id,
                email=subscriber.email,
                first_name=subscriber.first_name,
                manage_url=self._links.manage(subscriber.subscriber_id),
                **reasons,
            ),
        )

    def _updated(self, subscriber: Subscriber) -> Event:
        return self._event(SubscriberUpdated, profile(subscriber))

    async def _load(self, subscribers: Subscribers, purpose: Purpose, token: str) -> Subscriber:
        subscriber_id = self._links.verify(purpose, token)
        subscriber = await subscribers.get(subscriber_id)
        if subscriber is None:
            raise SubscriptionGoneError
        return subscriber

    async def _load_managed(self, subscribers: Subscribers, token: str) -> Subscriber:
        subscriber = await self._load(subscribers, Purpose.MANAGE, token)
        if subscriber.status == "pending":
            raise NotSubscribedError(
                "Please confirm your address first: open the link in the email we sent you."
            )
        if subscriber.status == "unsubscribed" or subscriber.confirmed_at is None:
            raise NotSubscribedError(
                "You have unsubscribed. To get job alerts again, please sign up again."
            )
        return subscriber

    # --- sign-up and confirmation ----------------------------------------------------------------

    async def sign_up(self, command: SignUp) -> None:
        """Start (or restart) a double opt-in. Says nothing about whether the address was known."""

        async def work(subscribers: Subscribers) -> tuple[None, Sequence[Event]]:
            now = self._clock.now()
            existing = await subscribers.find_by_email_key(email_key(command.email))
            if existing is None:
                subscriber = new_subscriber(subscriber_id=self._new_id(), sign_up=command, now=now)
                await subscribers.add(subscriber)
                return None, [self._confirmation(subscriber)]
            window, prefs = self._resend_window, command.preferences()
            if existing.status == "pending":
                resend = existing.may_resend(existing.confirmation_sent_at, now=now, window=window)
                if not resend and prefs == existing.preferences and command.email == existing.email:
                    return None, []
                changed = existing.changed(
                    now=now,
                    email=command.email,
                    preferences=prefs,
                    confirmation_sent_at=now if resend else existing.confirmation_sent_at,
                )
                await subscribers.save(changed, read_version=existing.version)
                return None, [self._confirmation(changed)] if resend else []
            if existing.status in ("unsubscribed", "bounced"):
                # A fresh double opt-in: the address has to prove again that it reads its mail.
                restarted = existing.changed(
                    now=now,
                    email=command.email,
                    preferences=prefs,
                    status="pending",
                    confirmed_at=None,
                    confirmation_sent_at=now,
                )
                await subscribers.save(restarted, read_version=existing.version)
                return None, [self._confirmation(restarted)]
            # active or paused: never a duplicate; remind them where their preferences are.
            if not existing.may_resend(existing.manage_link_sent_at, now=now, window=window):
                return None, []
            reminded = existing.changed(now=now, manage_link_sent_at=now)
            await subscribers.save(reminded, read_version=existing.version)
            return None, [self._manage_link(reminded, "already_subscribed")]

        await self._retrying(work)

    async def confirm(self, token: str) -> Subscriber:
        """Activate a pending subscriber; repeating a confirmation changes nothing."""

        async def work(subscribers: Subscribers) -> tuple[Subscriber, Sequence[Event]]:
            subscriber = await self._load(subscribers, Purpose.CONFIRM, token)
            if subscriber.status in ("active", "paused"):
                return subscriber, []
            if subscriber.status != "pending":
                raise NotSubscribedError(
                    "This confirmation link is no longer valid. Please sign up again."
                )
            now = self._clock.now()
            # A new subscription: nothing left over from an earlier one (a notice, a pause).
            active = subscriber.changed(
                now=now,
                status="active",
                confirmed_at=now,
                sunset_notice_at=None,
                paused_reason=None,
            )
            await subscribers.save(active, read_version=subscriber.version)
            return active, [self._event(SubscriberRegistered, profile(active))]

        return await self._retrying(work)

    async def request_manage_link(self, email: str) -> None:
        """Email the preferences link to a subscribed address (or the confirmation to a pending
        one); silent about addresses we do not know."""
        key = email_key(normalize_email(email))

        async def work(subscribers: Subscribers) -> tuple[None, Sequence[Event]]:
            subscriber = await subscribers.find_by_email_key(key)
            if subscriber is None or subscriber.status == "unsubscribed":
                return None, []
            now = self._clock.now()
            if subscriber.status == "pending":
                sent = subscriber.confirmation_sent_at
                if not subscriber.may_resend(sent, now=now, window=self._resend_window):
                    return None, []
                resent = subscriber.changed(now=now, confirmation_sent_at=now)
                await subscribers.save(resent, read_version=subscriber.version)
                return None, [self._confirmation(resent)]
            sent_to = subscriber.changed(now=now, manage_link_sent_at=now)
            await subscribers.save(sent_to, read_version=subscriber.version)
            return None, [self._manage_link(sent_to, "requested")]

        await self._retrying(work)

    # --- preferences, pause, resume --------------------------------------------------------------

    async def lookup(self, purpose: Purpose, token: str) -> Subscriber | None:
        """The subscriber a valid token names, or None when erased; changes nothing."""
        subscriber_id = self._links.verify(purpose, token)

        async def work(subscribers: Subscribers) -> tuple[Subscriber | None, Sequence[Event]]:
            return await subscribers.get(subscriber_id), []

        return await self._store.transact(work)

    async def preferences(self, token: str) -> Subscriber:
        async def work(subscribers: Subscribers) -> tuple[Subscriber, Sequence[Event]]:
            return await self._load_managed(subscribers, token), []

        return await self._store.transact(work)

    async def change_preferences(self, token: str, change: PreferencesChange) -> Subscriber:
        """Replace the preferences; ``paused`` pauses or resumes. A bounced address stays bounced
        (only a new sign-up, confirmed again, brings it back)."""

        async def work(subscribers: Subscribers) -> tuple[Subscriber, Sequence[Event]]:
            current = await self._load_managed(subscribers, token)
            now = self._clock.now()
            status = current.status
            if status != "bounced":
                status = "paused" if change.paused else "active"
            prefs = change.preferences()
            # Saving the page answers a pending "still interested?"; unticking pause ends a
            # pause for inactivity like the resume button does.
            answered = current.sunset_notice_at is not None or (
                status == "active" and current.paused_for_inactivity
            )
            if prefs == current.preferences and status == current.status and not answered:
                return current, []
            changes: dict[str, Any] = {"preferences": prefs, "status": status}
            if answered:
                changes = current.interest_changes(now=now) | changes
            if status != current.status:
                changes["paused_reason"] = None  # paused or resumed by the subscriber
            changed = current.changed(now=now, **changes)
            await subscribers.save(changed, read_version=current.version)
            published = changed.status != current.status or prefs != current.preferences
            return changed, [self._updated(changed)] if published else []

        return await self._retrying(work)

    async def set_paused(self, token: str, *, paused: bool) -> Subscriber:
        """Pause or resume mail; repeating it changes nothing."""

        async def work(subscribers: Subscribers) -> tuple[Subscriber, Sequence[Event]]:
            subscriber = await self._load_managed(subscribers, token)
            if subscriber.status == "bounced":
                raise NotSubscribedError(
                    "Mail to your address could not be delivered, so we stopped sending it. "
                    "Please sign up again with an address that works."
                )
            status = "paused" if paused else "active"
            if subscriber.status == status:
                return subscriber, []
            now = self._clock.now()
            changes: dict[str, Any] = {"status": status, "paused_reason": None}
            if not paused:
                changes = subscriber.interest_changes(now=now) | changes
            changed = subscriber.changed(now=now, **changes)
            await subscribers.save(changed, read_version=subscriber.version)
            return changed, [self._updated(changed)]

        return await self._retrying(work)

    # --- engagement and sunsetting ---------------------------------------------------------------

    async def click(self, token: str) -> Click:
        """A click through an alert's redirect: where it goes, with the reader's engagement
        recorded (at most once per :data:`ENGAGEMENT_EVERY`). Raises
        :class:`hwcollab_common.tokens.TokenError` for a bad token; an outage of the database
        costs the record, never the reader's way to the opening."""
        click = self._links.clicks.read(token)
        try:
            await self._store.record_engagement(
                click.subscriber_id, now=self._clock.now(), every=ENGAGEMENT_EVERY
            )
        except Exception as error:
            if not is_transient(error):
                raise
            log.warning("could not record a click (%s); sending the reader on", error)
        return click

    async def keep(self, token: str) -> Subscriber:
        """ "Keep me subscribed": the pending notice is answered, a pause for inactivity ends.
        Repeating it changes nothing."""

        async def work(subscribers: Subscribers) -> tuple[Subscriber, Sequence[Event]]:
            subscriber = await self._load(subscribers, Purpose.KEEP, token)
            if subscriber.status not in ("active", "paused"):
                raise NotSubscribedError(
                    "This subscription has ended, so there is nothing to keep. "
                    "To get job alerts again, please sign up again."
                )
            if not subscriber.awaits_answer:
                return subscriber, []
            now = self._clock.now()
            kept = subscriber.changed(now=now, **subscriber.interest_changes(now=now))
            await subscribers.save(kept, read_version=subscriber.version)
            return kept, [self._updated(kept)] if kept.status != subscriber.status else []

        return await self._retrying(work)

    async def run_sunset(self, as_of: datetime | None = None) -> SunsetRun:
        """Pause those asked "still interested?" ``grace`` ago who did not answer, then ask the
        newly silent (one email each). Each subscriber is one transaction, checked again on
        the record read in it."""
        now = as_of or self._clock.now()
        policy = self._sunset
        if policy.after is None:
            return SunsetRun(as_of=now, noticed=0, paused=0)
        paused = noticed = 0
        grace = policy.grace
        for subscriber_id in await self._store.unanswered_ids(
            cutoff=now - grace, limit=policy.batch
        ):
            paused += await self._sunset_one(
                subscriber_id,
                lambda s: s.notice_unanswered(now=now, grace=grace),
                lambda s: (
                    s.changed(
                        now=now, status="paused", paused_reason="inactive", sunset_notice_at=None
                    ),
                    self._updated,
                ),
            )
        after = policy.after
        for subscriber_id in await self._store.silent_ids(cutoff=now - after, limit=policy.batch):
            noticed += await self._sunset_one(
                subscriber_id,
                lambda s: s.is_silent(now=now, after=after),
                lambda s: (
                    s.changed(now=now, sunset_notice_at=now),
                    lambda asked: self._still_interested(asked, pause_after=now + grace),
                ),
            )
        if noticed or paused:
            log.info("sunset: %d asked whether still interested, %d paused", noticed, paused)
        return SunsetRun(as_of=now, noticed=noticed, paused=paused)

    async def _sunset_one(
        self,
        subscriber_id: str,
        applies: Callable[[Subscriber], bool],
        step: Callable[[Subscriber], tuple[Subscriber, Callable[[Subscriber], Event]]],
    ) -> int:
        async def work(subscribers: Subscribers) -> tuple[int, Sequence[Event]]:
            subscriber = await subscribers.get(subscriber_id)
            if subscriber is None or not applies(subscriber):
                return 0, []
            changed, event = step(subscriber)
            await subscribers.save(changed, read_version=subscriber.version)
            return 1, [event(changed)]

        return await self._retrying(work)

    # --- leaving ---------------------------------------------------------------------------------

    async def unsubscribe(self, token: str, *, reason: UnsubscribeReason) -> Subscriber | None:
        """Stop all mail at once. Idempotent; an erased subscriber is already unsubscribed."""

        async def work(subscribers: Subscribers) -> tuple[Subscriber | None, Sequence[Event]]:
            subscriber_id = self._links.verify(Purpose.UNSUBSCRIBE, token)
            subscriber = await subscribers.get(subscriber_id)
            if subscriber is None or subscriber.status == "unsubscribed":
                return subscriber, []
            gone = subscriber.changed(now=self._clock.now(), status="unsubscribed")
            await subscribers.save(gone, read_version=subscriber.version)
            payload = SubscriberUnsubscribedPayload(
                subscriber_id=gone.subscriber_id, version=gone.version, reason=reason
            )
            return gone, [self._event(SubscriberUnsubscribed, payload)]

        return await self._retrying(work)

    async def erase(self, token: str) -> None:
        """Delete the subscriber and their personal data; the event carries only the id."""

        async def work(subscribers: Subscribers) -> tuple[None, Sequence[Event]]:
            subscriber_id = self._links.verify(Purpose.MANAGE, token)
            subscriber = await subscribers.get(subscriber_id)
            if subscriber is None:
                return None, []
            await subscribers.erase(subscriber_id)
            payload = SubscriberDeletedPayload(
                subscriber_id=subscriber_id, version=subscriber.version + 1
            )
            return None, [self._event(SubscriberDeleted, payload)]

        await self._retrying(work)

    # --- bounces ---------------------------------------------------------------------------------

    async def notification_failed(self, event: NotificationFailed) -> None:
        """A permanent failure means the address does not take mail: stop matching it."""
        if not event.payload.permanent:
            return

        async def work(subscribers: Subscribers) -> tuple[None, Sequence[Event]]:
            subscriber = await subscribers.get(event.payload.subscriber_id)
            if subscriber is None or subscriber.status not in ("pending", "active", "paused"):
                return None, []
            bounced = subscriber.changed(now=self._clock.now(), status="bounced")
            await subscribers.save(bounced, read_version=subscriber.version)
            # A pending address was never announced, so there is nothing to tell the others.
            return None, [] if subscriber.status == "pending" else [self._updated(bounced)]

        await self._once_retrying(event, work)

    async def notification_complained(self, event: NotificationComplained) -> None:
        """A spam complaint about one of our emails: the person is unsubscribed, as if they had
        used the link (an erased or already unsubscribed person stays as they are)."""

        async def work(subscribers: Subscribers) -> tuple[None, Sequence[Event]]:
            subscriber = await subscribers.get(event.payload.subscriber_id)
            if subscriber is None or subscriber.status == "unsubscribed":
                return None, []
            gone = subscriber.changed(now=self._clock.now(), status="unsubscribed")
            await subscribers.save(gone, read_version=subscriber.version)
            payload = SubscriberUnsubscribedPayload(
                subscriber_id=gone.subscriber_id, version=gone.version, reason="complaint"
            )
            return None, [self._event(SubscriberUnsubscribed, payload)]

        await self._once_retrying(event, work)

    async def _once_retrying(
        self,
        event: Event,
        work: Callable[[Subscribers], Awaitable[tuple[None, Sequence[Event]]]],
    ) -> None:
        policy = retry_policy(attempts=MAX_ATTEMPTS, on=StaleSubscriberError, sleep=self._sleep)
        await retry(policy, self._store.transact_once, event, work)
