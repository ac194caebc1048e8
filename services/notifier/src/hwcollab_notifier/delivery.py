"""Sending one email exactly once: claim its Message-ID, re-check, send, record — and the delivery
jobs (immediate, welcome, bulletin) that end in such a send.

Order of a send: (1) claim the Message-ID in ``messages`` with a lease and mark the ledger rows
``sending`` — before SMTP; (2) check suppression; (3) SMTP; (4) in one transaction mark the
message and rows ``sent`` and stage ``notification.sent`` in the outbox. A crash between (3) and
(4) leaves the claim in ``sending``: once its lease runs out, a redelivered job or the sweeper sends
the same bytes again with the same Message-ID, which receivers that dedupe on Message-ID drop. That
is the one window left where a person can see an email twice.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol
from uuid import uuid4

from pymongo.asynchronous.client_session import AsyncClientSession

from hwcollab_common.runtime import ServiceRuntime
from hwcollab_common.tokens import Purpose
from hwcollab_notifier import metrics
from hwcollab_notifier.domain import (
    announceable,
    criteria_of,
    distance_between,
    opening_criteria,
    pair_key,
    see_all_url,
)
from hwcollab_notifier.mail import EmailComposer, OpeningView, OutgoingEmail, Recipient, SendOutcome
from hwcollab_notifier.matching.reference import matches
from hwcollab_notifier.repository import NotifierRepository
from hwcollab_notifier.settings import Settings
from hwcollab_schemas import Event
from hwcollab_schemas.delivery import DeliveryJob
from hwcollab_schemas.events import (
    NotificationFailed,
    NotificationFailedPayload,
    NotificationSent,
    NotificationSentPayload,
    OpeningDetails,
    SubscriberProfile,
)

log = logging.getLogger(__name__)

ExtraWork = Callable[[AsyncClientSession], Awaitable[None]]


class Mailer(Protocol):
    async def send(self, email: OutgoingEmail) -> SendOutcome: ...


@dataclass(frozen=True, slots=True)
class Reader:
    """A subscriber who may be written to now (active), with their profile."""

    profile: SubscriberProfile


class Postman:
    """Sends composed emails once each (see the module docstring)."""

    def __init__(
        self,
        *,
        runtime: ServiceRuntime,
        repository: NotifierRepository,
        mailer: Mailer,
        settings: Settings,
    ) -> None:
        self._runtime = runtime
        self._repo = repository
        self._mailer = mailer
        self._settings = settings
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"
        self._lease = timedelta(seconds=settings.send_lease_seconds)

    async def send(
        self,
        email: OutgoingEmail,
        *,
        pair_keys: Sequence[str] = (),
        after_sent: ExtraWork | None = None,
        digest_key: str | None = None,
    ) -> str:
        """Send ``email`` unless it was sent already; the outcome ("sent", "skipped", …)."""
        clock = self._runtime.clock
        claim = await self._repo.claim_message(
            message_id=email.message_id,
            kind=email.kind,
            subscriber_id=email.subscriber_id,
            opening_ids=email.opening_ids,
            owner=self._owner,
            now=clock.now(),
            lease=self._lease,
            digest_key=digest_key,
        )
        if claim is None:
            await self._settle_rows(email.message_id, pair_keys)
            metrics.EMAILS_SKIPPED.labels(email.kind, "claimed").inc()
            return "skipped"
        if pair_keys:
            await self._repo.mark_rows(
                pair_keys, status="sending", message_id=email.message_id, now=clock.now()
            )
        if await self._repo.is_suppressed(email.to):
            await self._repo.finish_message(email.message_id, status="dropped", now=clock.now())
            await self._repo.mark_rows(
                pair_keys, status="dropped", reason="suppressed", now=clock.now()
            )
            metrics.EMAILS_SKIPPED.labels(email.kind, "suppressed").inc()
            return "suppressed"
        outcome = await self._mailer.send(email)
        if outcome.status == "sent":
            await self._record_sent(email, pair_keys=pair_keys, after_sent=after_sent)
            return "sent"
        attempts = int(claim.get("attempts", 1))
        if (
            outcome.status == "permanent_failure"
            or attempts >= self._settings.delivery_max_attempts
        ):
            await self._record_failed(
                email,
                pair_keys=pair_keys,
                permanent=outcome.status == "permanent_failure",
                detail=outcome.detail,
            )
            return "failed"
        await self._repo.finish_message(
            email.message_id, status="retry", now=clock.now(), detail=outcome.detail
        )
        await self._repo.retry_rows(pair_keys, now=clock.now(), detail=outcome.detail)
        metrics.EMAILS_RETRIED.labels(email.kind).inc()
        log.warning("sending %s failed for now (%s); will try again", email.kind, outcome.detail)
        return "retry"

    async def _settle_rows(self, message_id: str, pair_keys: Sequence[str]) -> None:
        """Rows left open by a crash after their message was settled take the message's state."""
        message = await self._repo.message(message_id)
        if pair_keys and message is not None and message["status"] in ("sent", "failed", "dropped"):
            await self._repo.mark_rows(
                pair_keys,
                status=message["status"],
                message_id=message_id,
                now=self._runtime.clock.now(),
            )

    async def _record_sent(
        self, email: OutgoingEmail, *, pair_keys: Sequence[str], after_sent: ExtraWork | None
    ) -> None:
        now = self._runtime.clock.now()
        event = NotificationSent.create(
            NotificationSentPayload(
                message_id=email.message_id,
                subscriber_id=email.subscriber_id,
                kind=email.kind,
                opening_ids=email.opening_ids,
                sent_at=now,
            ),
            producer="notifier",
            occurred_at=now,
        )

        async def work(session: AsyncClientSession) -> tuple[None, list[Event]]:
            await self._repo.finish_message(
                email.message_id, status="sent", now=now, session=session
            )
            await self._repo.mark_rows(
                pair_keys, status="sent", message_id=email.message_id, now=now, session=session
            )
            if after_sent is not None:
                await after_sent(session)
            return None, [event]

        await self._runtime.commit(work)
        metrics.EMAILS_SENT.labels(email.kind).inc()

    async def _record_failed(
        self, email: OutgoingEmail, *, pair_keys: Sequence[str], permanent: bool, detail: str
    ) -> None:
        now = self._runtime.clock.now()
        event = NotificationFailed.create(
            NotificationFailedPayload(
                message_id=email.message_id,
                subscriber_id=email.subscriber_id,
                kind=email.kind,
                opening_ids=email.opening_ids,
                permanent=permanent,
                reason=detail[:1000] or "delivery failed",
                failed_at=now,
            ),
            producer="notifier",
            occurred_at=now,
        )

        async def work(session: AsyncClientSession) -> tuple[None, list[Event]]:
            if permanent:
                await self._repo.suppress(
                    email.to, reason=f"bounce: {detail}", now=now, session=session
                )
            await self._repo.finish_message(
                email.message_id, status="failed", now=now, detail=detail, session=session
            )
            await self._repo.mark_rows(
                pair_keys, status="failed", reason=detail[:300], now=now, session=session
            )
            return None, [event]

        await self._runtime.commit(work)
        metrics.EMAILS_FAILED.labels(email.kind, str(permanent).lower()).inc()
        log.warning("gave up on a %s email (permanent=%s): %s", email.kind, permanent, detail)


class Deliveries:
    """Turns delivery jobs into emails: re-checks the reader and the opening just before sending."""

    def __init__(
        self,
        *,
        runtime: ServiceRuntime,
        repository: NotifierRepository,
        composer: EmailComposer,
        postman: Postman,
        settings: Settings,
        welcome_matches: Callable[[SubscriberProfile], Awaitable[list[str]]],
    ) -> None:
        self._runtime = runtime
        self._repo = repository
        self._composer = composer
        self._postman = postman
        self._settings = settings
        self._welcome_matches = welcome_matches

    async def handle(self, job: DeliveryJob) -> str:
        if job.kind == "immediate" and job.opening_id is not None:
            return await self.immediate(job.subscriber_id, job.opening_id)
        if job.kind == "welcome":
            return await self.welcome(job.subscriber_id)
        if job.kind == "bulletin" and job.bulletin_id is not None:
            return await self.bulletin(job.subscriber_id, job.bulletin_id)
        log.warning("ignoring an incomplete %s delivery job", job.kind)
        return "ignored"

    def recipient(self, profile: SubscriberProfile) -> Recipient:
        signer = self._runtime.signer
        base = self._settings.subscriber_public_url
        manage = signer.sign(Purpose.MANAGE, profile.subscriber_id)
        unsubscribe = signer.sign(Purpose.UNSUBSCRIBE, profile.subscriber_id)
        return Recipient(
            subscriber_id=profile.subscriber_id,
            email=profile.email,
            first_name=profile.first_name,
            manage_url=f"{base}/preferences?token={manage}",
            unsubscribe_url=f"{base}/unsubscribe?token={unsubscribe}",
            pause_url=f"{base}/pause?token={manage}",
        )

    async def reader(self, subscriber_id: str) -> SubscriberProfile | None:
        doc = await self._repo.subscriber(subscriber_id)
        if doc is None or doc.get("status") != "active" or "email" not in doc:
            return None
        return SubscriberProfile.model_validate({k: v for k, v in doc.items() if k != "_id"})

    async def live_opening(self, opening_id: str) -> OpeningDetails | None:
        """The opening if it may still be announced (open, unexpired, employer approved)."""
        doc = await self._repo.opening(opening_id)
        if doc is None or "details" not in doc or doc.get("status") != "open":
            return None
        details = OpeningDetails.model_validate(doc["details"])
        employer = await self._repo.employer(details.employer_id)
        status = employer.get("status") if employer else None
        if not announceable(details, employer_status=status, now=self._runtime.clock.now()):
            return None
        return details

    def view(self, profile: SubscriberProfile, details: OpeningDetails) -> OpeningView:
        return OpeningView.from_details(
            details,
            distance_miles=distance_between(profile, details),
            employer_public_url=self._settings.employer_public_url,
            subscriber_zip=profile.zip,
            subscriber_credentials=profile.credentials,
        )

    async def _drop(self, keys: Sequence[str], *, kind: str, reason: str) -> str:
        await self._repo.mark_rows(
            keys, status="dropped", reason=reason, now=self._runtime.clock.now()
        )
        metrics.EMAILS_SKIPPED.labels(kind, reason).inc()
        return reason

    async def immediate(self, subscriber_id: str, opening_id: str) -> str:
        key = pair_key(subscriber_id, opening_id)
        row = await self._repo.pair(key)
        if row is None or row.get("status") not in ("pending", "sending"):
            return "done"
        if row.get("channel") != "immediate":
            return "not immediate"
        profile = await self.reader(subscriber_id)
        if profile is None:
            subscriber = await self._repo.subscriber(subscriber_id)
            if subscriber is not None and subscriber.get("status") == "paused":
                return await self._drop([key], kind="immediate", reason="paused")
            return await self._drop([key], kind="immediate", reason="not active")
        details = await self.live_opening(opening_id)
        if details is None:
            return await self._drop([key], kind="immediate", reason="opening closed")
        if not matches(criteria_of(profile), opening_criteria(details)):
            return await self._drop([key], kind="immediate", reason="no longer matches")
        email = self._composer.immediate(self.recipient(profile), self.view(profile, details))
        return await self._postman.send(email, pair_keys=[key])

    async def welcome(self, subscriber_id: str) -> str:
        doc = await self._repo.subscriber(subscriber_id)
        if doc is None or not doc.get("welcome_pending"):
            return "done"
        profile = await self.reader(subscriber_id)
        if profile is None:
            await self._repo.finish_welcome(
                subscriber_id, now=self._runtime.clock.now(), session=None
            )
            return "not active"
        await self._welcome_matches(profile)
        rows = await self._repo.rows_of(subscriber_id, channel="welcome")
        views: list[OpeningView] = []
        keys: list[str] = []
        for row in rows:
            details = await self.live_opening(row["opening_id"])
            if details is None:
                await self._drop([row["_id"]], kind="welcome", reason="opening closed")
                continue
            keys.append(row["_id"])
            views.append(self.view(profile, details))
        limit = self._settings.digest_max_items
        email = self._composer.welcome(
            self.recipient(profile),
            views[:limit],
            total=len(views),
            see_all_url=see_all_url(self._settings.employer_public_url, profile),
        )
        now = self._runtime.clock.now()

        async def welcomed(session: AsyncClientSession) -> None:
            await self._repo.finish_welcome(subscriber_id, now=now, session=session)

        return await self._postman.send(email, pair_keys=keys, after_sent=welcomed)

    async def bulletin(self, subscriber_id: str, bulletin_id: str) -> str:
        profile = await self.reader(subscriber_id)
        bulletin = await self._repo.bulletin(bulletin_id)
        if profile is None or not profile.career_info or bulletin is None:
            metrics.EMAILS_SKIPPED.labels("bulletin", "not eligible").inc()
            return "not eligible"
        email = self._composer.bulletin(
            self.recipient(profile),
            bulletin_id=bulletin_id,
            subject=bulletin["subject"],
            body_markdown=bulletin["body_markdown"],
        )
        return await self._postman.send(email)
