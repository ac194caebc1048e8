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
from datetime import timedelta
from typing import Protocol
from uuid import uuid4

from pymongo.asynchronous.client_session import AsyncClientSession

from hwcollab_common.errors import TransientError
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_common.tracing import SpanKind, span
from hwcollab_notifier import metrics
from hwcollab_notifier.mail import OutgoingEmail, SendOutcome
from hwcollab_notifier.repository import NotifierRepository
from hwcollab_notifier.settings import Settings
from hwcollab_schemas import Event
from hwcollab_schemas.events import (
    NotificationFailed,
    NotificationFailedPayload,
    NotificationSent,
    NotificationSentPayload,
)

log = logging.getLogger(__name__)

ExtraWork = Callable[[AsyncClientSession], Awaitable[None]]


class Mailer(Protocol):
    async def send(self, email: OutgoingEmail) -> SendOutcome: ...


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
        try:
            with span(
                "smtp send",
                kind=SpanKind.CLIENT,
                attributes={"email.kind": email.kind, "email.message_id": email.message_id},
            ) as sending:
                outcome = await self._mailer.send(email)
                if sending is not None:
                    sending.set_attribute("email.outcome", outcome.status)
        except TransientError as outage:
            # The server is away (refused, 421, cut off): give the claim back uncounted and let
            # the caller retry until it returns: consumers redeliver, the sweeper runs again.
            await self._repo.release_message(
                email.message_id, owner=self._owner, now=clock.now(), detail=str(outage)
            )
            await self._repo.retry_rows(pair_keys, now=clock.now(), detail=str(outage), count=False)
            metrics.EMAILS_RETRIED.labels(email.kind).inc()
            raise
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
