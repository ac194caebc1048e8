"""Use cases driven by events: keep the read model, announce openings, request welcome emails,
and queue the confirmation and manage-link emails the subscriber service asks for and the account
emails the employer service asks for."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from pymongo.asynchronous.client_session import AsyncClientSession

from hwcollab_common.consuming import apply_once
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_notifier.announce import Announcer
from hwcollab_notifier.index_sync import IndexChange, ReplicaIndex
from hwcollab_notifier.jobs import JobQueue
from hwcollab_notifier.ledger import LINK_REQUEST_LIFETIME
from hwcollab_notifier.mail.composer import EMPLOYER_KINDS, employer_recipient
from hwcollab_notifier.repository import NotifierRepository
from hwcollab_schemas import Event
from hwcollab_schemas.delivery import DeliveryJob
from hwcollab_schemas.events import (
    EmployerAccountEmailRequested,
    EmployerApproved,
    EmployerRegistered,
    EmployerReinstated,
    EmployerRejected,
    EmployerSuspended,
    EmployerUpdated,
    OpeningClosed,
    OpeningPosted,
    OpeningTakenDown,
    OpeningUpdated,
    SubscriberConfirmationRequested,
    SubscriberDeleted,
    SubscriberManageLinkRequested,
    SubscriberProfile,
    SubscriberRegistered,
    SubscriberUnsubscribed,
    SubscriberUpdated,
)

__all__ = ["Announcer", "ReadModel", "link_request"]

log = logging.getLogger(__name__)


LinkEmailEvent = (
    SubscriberConfirmationRequested | SubscriberManageLinkRequested | EmployerAccountEmailRequested
)


def link_request(event: LinkEmailEvent, *, request_id: str, now: datetime) -> dict[str, object]:
    """The stored form of a link email request (``link_requests``). An employer's account email
    names its employer instead of a subscriber, and is dropped unsent once its link has expired."""
    expires_at = now + LINK_REQUEST_LIFETIME
    owner: dict[str, object]
    if isinstance(event, EmployerAccountEmailRequested):
        kind: str = EMPLOYER_KINDS[event.payload.kind]
        owner = {"employer_id": event.payload.employer_id}
        if event.payload.expires_at is not None:
            expires_at = min(expires_at, event.payload.expires_at)
    else:
        confirming = isinstance(event, SubscriberConfirmationRequested)
        kind = "confirmation" if confirming else "manage_link"
        owner = {"subscriber_id": event.payload.subscriber_id}
    return {
        "_id": request_id,
        "kind": kind,
        **owner,
        "payload": event.payload.model_dump(mode="json"),
        "status": "pending",
        "requested_at": now,
        "expires_at": expires_at,
    }


def recipient_of(event: LinkEmailEvent) -> str:
    """Whom a link email's delivery job is for (its key on the delivery topic)."""
    if isinstance(event, EmployerAccountEmailRequested):
        return employer_recipient(event.payload.employer_id)
    return event.payload.subscriber_id


class ReadModel:
    """Applies subscriber, employer and opening events once each, newest version wins."""

    def __init__(
        self,
        *,
        runtime: ServiceRuntime,
        repository: NotifierRepository,
        index: ReplicaIndex,
        announcer: Announcer,
        jobs: JobQueue,
    ) -> None:
        self._runtime = runtime
        self._repo = repository
        self._index = index
        self._announcer = announcer
        self._jobs = jobs

    async def _once(
        self, event: Event, work: Callable[[AsyncClientSession], Awaitable[None]]
    ) -> bool:
        return await apply_once(self._runtime.mongo, self._runtime.processed, event, work)

    # --- subscribers --------------------------------------------------------------------------

    async def on_subscriber(self, event: Event) -> None:
        if isinstance(event, SubscriberRegistered | SubscriberUpdated):
            await self._profile(
                event.payload, registered=isinstance(event, SubscriberRegistered), event=event
            )
        elif isinstance(event, SubscriberUnsubscribed):
            await self._status(
                event, event.payload.subscriber_id, event.payload.version, "unsubscribed"
            )
        elif isinstance(event, SubscriberDeleted):
            await self._status(event, event.payload.subscriber_id, event.payload.version, "deleted")
        elif isinstance(event, SubscriberConfirmationRequested | SubscriberManageLinkRequested):
            await self._link_email(event)

    async def _link_email(self, event: LinkEmailEvent) -> None:
        """Stored, then handed to the delivery consumers like every other email: an SMTP outage
        delays this email, not the events behind it on the subscriber's (or employer's)
        partition."""
        now = self._runtime.clock.now()
        request_id = str(event.event_id)
        subscriber_id = recipient_of(event)

        async def work(session: AsyncClientSession) -> None:
            await self._repo.save_link_request(
                link_request(event, request_id=request_id, now=now), session=session
            )

        await self._once(event, work)
        # Also on a repeated event: a crash may have come between storing and queuing.
        await self._jobs.put(
            [
                DeliveryJob(
                    kind="link", subscriber_id=subscriber_id, request_id=request_id, created_at=now
                )
            ]
        )

    async def _profile(self, profile: SubscriberProfile, *, registered: bool, event: Event) -> None:
        now = self._runtime.clock.now()
        outcome: dict[str, bool] = {}

        async def work(session: AsyncClientSession) -> None:
            previous = await self._repo.subscriber(profile.subscriber_id, session=session)
            if previous is not None and previous["version"] >= profile.version:
                return
            welcome = (
                registered
                and profile.status == "active"
                and (previous is None or not previous.get("welcomed_at"))
            )
            await self._repo.save_subscriber(
                profile, now=now, welcome_pending=True if welcome else None, session=session
            )
            was_digest = previous is not None and previous.get("frequency") in ("daily", "weekly")
            if was_digest and profile.frequency == "immediate":
                await self._repo.switch_to_immediate(
                    profile.subscriber_id, now=now, session=session
                )
                outcome["switched"] = True
            if profile.status == "bounced":
                await self._repo.drop_open_rows(
                    profile.subscriber_id, reason="bounced", now=now, session=session
                )
            outcome["applied"] = True
            outcome["welcome"] = welcome

        await self._once(event, work)
        if not outcome.get("applied"):
            return
        self._index.apply(
            IndexChange(
                profile.subscriber_id,
                profile.version,
                profile if profile.status == "active" else None,
            )
        )
        jobs: list[DeliveryJob] = []
        if outcome.get("welcome"):
            jobs.append(
                DeliveryJob(kind="welcome", subscriber_id=profile.subscriber_id, created_at=now)
            )
        if outcome.get("switched"):
            rows = await self._repo.rows_of(profile.subscriber_id, channel="immediate")
            jobs.extend(
                DeliveryJob(
                    kind="immediate",
                    subscriber_id=profile.subscriber_id,
                    opening_id=row["opening_id"],
                    created_at=now,
                )
                for row in rows
            )
        await self._jobs.put(jobs)

    async def _status(self, event: Event, subscriber_id: str, version: int, status: str) -> None:
        now = self._runtime.clock.now()
        applied: list[bool] = []

        async def work(session: AsyncClientSession) -> None:
            current = await self._repo.subscriber_version(subscriber_id, session=session)
            if current >= version:
                return
            if status == "deleted":
                await self._repo.erase_subscriber(
                    subscriber_id, version=version, now=now, session=session
                )
            else:
                await self._repo.set_subscriber_status(
                    subscriber_id, version=version, status=status, now=now, session=session
                )
                await self._repo.drop_open_rows(
                    subscriber_id, reason=status, now=now, session=session
                )
            applied.append(True)

        await self._once(event, work)
        if applied:
            self._index.apply(IndexChange(subscriber_id, version, None))

    # --- employers and openings ---------------------------------------------------------------

    async def on_employer(self, event: Event) -> None:
        if isinstance(event, EmployerAccountEmailRequested):
            await self._link_email(event)
            return
        # A suspension or rejection is the employer's new status: deliveries and digests read it
        # just before sending, so queued emails of its openings are dropped from then on. A
        # reinstatement announces its openings again, which tells only readers never told: the
        # ledger has one row per (subscriber, opening), ever.
        if not isinstance(
            event,
            EmployerRegistered
            | EmployerUpdated
            | EmployerApproved
            | EmployerRejected
            | EmployerSuspended
            | EmployerReinstated,
        ):
            return
        profile = event.payload
        now = self._runtime.clock.now()

        async def work(session: AsyncClientSession) -> None:
            await self._repo.save_employer(profile, now=now, session=session)

        await self._once(event, work)
        if profile.status == "approved":
            # the openings may have arrived approved before the employer did
            async for doc in self._repo.openings_of(profile.employer_id):
                await self._announcer.announce(str(doc["_id"]))

    async def on_opening(self, event: Event) -> None:
        now = self._runtime.clock.now()
        if isinstance(event, OpeningPosted | OpeningUpdated):
            details = event.payload

            async def save(session: AsyncClientSession) -> None:
                current = await self._repo.opening_version(details.opening_id, session=session)
                if current < details.version:
                    await self._repo.save_opening(details, now=now, session=session)

            await self._once(event, save)
            # Also on a repeated event: a crash may have come between saving and announcing.
            await self._announcer.announce(details.opening_id)
        elif isinstance(event, OpeningClosed | OpeningTakenDown):
            closed = event.payload
            closed_at = (
                event.payload.taken_down_at
                if isinstance(event, OpeningTakenDown)
                else event.payload.closed_at
            )

            async def close(session: AsyncClientSession) -> None:
                current = await self._repo.opening_version(closed.opening_id, session=session)
                if current < closed.version:
                    await self._repo.close_opening(
                        closed.opening_id,
                        employer_id=closed.employer_id,
                        version=closed.version,
                        closed_at=closed_at,
                        session=session,
                    )

            await self._once(event, close)
