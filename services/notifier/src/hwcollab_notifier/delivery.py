"""Delivery jobs (immediate, welcome, bulletin, link) turned into emails: the reader, the opening
and the match are checked again just before each send; the send itself is the
:class:`.Postman`'s."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from hwcollab_common.runtime import ServiceRuntime
from hwcollab_common.tokens import Purpose
from hwcollab_notifier import metrics
from hwcollab_notifier.announce import live_opening
from hwcollab_notifier.domain import (
    criteria_of,
    distance_between,
    opening_criteria,
    pair_key,
    see_all_url,
)
from hwcollab_notifier.mail import EmailComposer, OpeningView, OutgoingEmail, Recipient
from hwcollab_notifier.matching.reference import matches
from hwcollab_notifier.postman import Mailer, Postman
from hwcollab_notifier.repository import NotifierRepository
from hwcollab_notifier.settings import Settings
from hwcollab_schemas.delivery import DeliveryJob
from hwcollab_schemas.events import (
    ConfirmationRequestedPayload,
    ManageLinkRequestedPayload,
    OpeningDetails,
    SubscriberProfile,
)

__all__ = ["Deliveries", "Mailer", "Postman"]

log = logging.getLogger(__name__)


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
        if job.kind == "link" and job.request_id is not None:
            return await self.link(job.request_id)
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
        found = await live_opening(self._repo, opening_id, now=self._runtime.clock.now())
        return None if found is None else found[0]

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

    async def link(self, request_id: str) -> str:
        """A confirmation or manage-link email the subscriber service asked for (stored by the
        read model): sent once, whatever the reader's status — these are the links that change
        it."""
        request = await self._repo.link_request(request_id)
        if request is None or request.get("status") != "pending":
            return "done"
        now = self._runtime.clock.now()
        if request["expires_at"] <= now:
            await self._repo.finish_link_request(request_id, status="dropped", now=now)
            metrics.EMAILS_SKIPPED.labels(request["kind"], "expired").inc()
            return "expired"
        email = self._link_email(request)

        async def sent(session: AsyncClientSession) -> None:
            await self._repo.finish_link_request(
                request_id, status="sent", now=now, session=session
            )

        outcome = await self._postman.send(email, after_sent=sent)
        if outcome != "sent":
            # Settled some other way (failed for good, suppressed, or sent by a run that did
            # not get to record it here): the request follows its message.
            message = await self._repo.message(email.message_id)
            status = message.get("status") if message else None
            if status in ("sent", "failed", "dropped"):
                await self._repo.finish_link_request(request_id, status=status, now=now)
        return outcome

    def _link_email(self, request: dict[str, Any]) -> OutgoingEmail:
        if request["kind"] == "confirmation":
            confirm = ConfirmationRequestedPayload.model_validate(request["payload"])
            return self._composer.confirmation(
                subscriber_id=confirm.subscriber_id,
                email=confirm.email,
                first_name=confirm.first_name,
                confirm_url=confirm.confirm_url,
            )
        manage = ManageLinkRequestedPayload.model_validate(request["payload"])
        return self._composer.manage_link(
            subscriber_id=manage.subscriber_id,
            email=manage.email,
            first_name=manage.first_name,
            manage_url=manage.manage_url,
            already_subscribed=manage.reason == "already_subscribed",
        )
