"""Bounce and complaint intake: every report that reaches the bounce domain is stored (with its
raw bytes, for 30 days) and, when it is about an email we sent, acted on in the same place the
notifier already settles an SMTP server's 5xx:

- a hard bounce (``5.x.x``), or the SOFT_BOUNCE_LIMIT-th soft bounce (``4.x.x``) of an address
  within SOFT_BOUNCE_DAYS, suppresses the address and stages ``notification.failed``
  (``permanent: true``): the subscriber service marks the person bounced;
- a spam complaint (ARF ``Feedback-Type: abuse``) suppresses the address and stages
  ``notification.complained``: the subscriber service unsubscribes the person;
- a report we cannot read, or one that names no message we sent (no valid VERP token, no
  Message-ID, a Message-ID that is not the token's, or no such message record for that
  subscriber), is stored and counted, never acted on.

The message is found by its ``_id`` (the Message-ID the report returns) and checked against the
token's hash and subscriber: no index on ``messages`` is needed for it.

Provider webhooks (SES, Postmark, the generic endpoint: :mod:`hwcollab_notifier.bounce_webhooks`)
come in through :meth:`BounceIntake.receive_provider_report` and meet the same rules and the
same storage. They carry no VERP token: the message is found by the Message-ID they name, and
the address they report must be the one its subscriber has, or nothing is done. An event the
provider sent twice (same provider id) is recorded once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args
from uuid import uuid4

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from hwcollab_common.clock import Clock
from hwcollab_common.emails import email_key
from hwcollab_common.mongo import Document, in_transaction
from hwcollab_common.outbox import stage_events
from hwcollab_notifier import metrics
from hwcollab_notifier.bounce_records import BounceRecords
from hwcollab_notifier.domain import hash_id
from hwcollab_notifier.mail.bounces import BounceAddresses, BounceToken, message_hash
from hwcollab_notifier.mail.reports import DeliveryReport, MalformedReportError, read_report
from hwcollab_notifier.provider_reports import ProviderReport
from hwcollab_notifier.repository import NotifierRepository
from hwcollab_schemas import Event
from hwcollab_schemas.events import (
    NotificationComplained,
    NotificationComplainedPayload,
    NotificationFailed,
    NotificationFailedPayload,
    NotificationKind,
)

log = logging.getLogger(__name__)

Outcome = Literal[
    "hard", "soft", "complaint", "unknown_message", "malformed", "ignored", "duplicate"
]
OUTCOMES: tuple[Outcome, ...] = (
    "hard",
    "soft",
    "complaint",
    "unknown_message",
    "malformed",
    "ignored",
    "duplicate",
)
for _outcome in OUTCOMES:  # every outcome on the dashboard from the start, at 0
    metrics.BOUNCES.labels(_outcome)
KEPT_FOR = timedelta(days=30)
"""A stored report (and its raw bytes) is removed this long after it arrived."""
COMPLAINT_TYPES = frozenset({"abuse", "fraud"})
"""ARF feedback types that mean "I did not want this" (``not-spam``, ``virus``… do not)."""


@dataclass(frozen=True, slots=True)
class IntakeResult:
    bounce_id: str
    outcome: Outcome
    detail: str


class BounceIntake:
    """Reads, stores and acts on one report at a time (see the module's rules)."""

    def __init__(
        self,
        *,
        clock: Clock,
        repository: NotifierRepository,
        records: BounceRecords,
        addresses: BounceAddresses | None,
        soft_limit: int,
        soft_window: timedelta,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._clock = clock
        self._repository = repository
        self._records = records
        self._addresses = addresses
        self._soft_limit = soft_limit
        self._soft_window = soft_window
        self._on_commit = on_commit

    def accepts_recipient(self, address: str) -> bool:
        """Whether a report may be addressed to ``address``: any address at the bounce domain
        (feedback loops and postmaster mail arrive there too), but a VERP address only when its
        token is ours."""
        if self._addresses is None:
            return False
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at or domain.lower() != self._addresses.domain:
            return False
        if local.lower().startswith("bounces+"):
            return self._addresses.parse(address) is not None
        return True

    async def receive(
        self, raw: bytes, *, mail_from: str, recipients: Sequence[str]
    ) -> IntakeResult:
        now = self._clock.now()
        document: Document = {
            "_id": uuid4().hex,
            "received_at": now,
            "expires_at": now + KEPT_FOR,
            "mail_from": mail_from[:320],
            "recipients": [r[:320] for r in recipients[:10]],
            "size": len(raw),
            "raw": raw,
            "forgiven_at": None,
        }
        try:
            report = read_report(raw)
        except MalformedReportError as error:
            return await self._store(document, "malformed", str(error))
        document |= {
            "kind": report.kind,
            "status": report.status,
            "diagnostic": report.diagnostic,
            "feedback_type": report.feedback_type,
            "message_id": report.original_message_id,
            "reported_recipient": report.recipient,
        }
        token = self._token(recipients, report)
        if report.kind == "delayed":
            return await self._store(document, "ignored", "a delay warning, not a failure")
        if report.kind == "complaint" and report.feedback_type not in COMPLAINT_TYPES:
            return await self._store(
                document, "ignored", f"feedback type {report.feedback_type} is not a complaint"
            )
        found = await self._our_message(token, report)
        if isinstance(found, str):
            return await self._store(document, "unknown_message", found)
        token, message = found
        subscriber = await self._repository.subscriber(token.subscriber_id)
        email = (subscriber or {}).get("email")
        document["subscriber_id"] = token.subscriber_id
        if not email:
            return await self._store(document, "ignored", "the subscriber has been erased")
        document |= {"email": email, "email_hash": hash_id(email_key(email))}
        return await self._act(
            document, report=report, subscriber_id=token.subscriber_id, message=message, now=now
        )

    async def receive_provider_report(self, event: ProviderReport) -> IntakeResult:
        """Record (and act on) a provider's event: the same rules as a report by email, the
        message found by the Message-ID it names and checked against the address it reports."""
        now = self._clock.now()
        report = event.report
        document: Document = {
            "_id": event.record_id or uuid4().hex,
            "source": event.source,
            "received_at": now,
            "expires_at": now + KEPT_FOR,
            "mail_from": "",
            "recipients": [r[:320] for r in event.recipients[:10]],
            "size": len(event.raw),
            "raw": event.raw,
            "forgiven_at": None,
        }
        if report is None:
            return await self._store(document, "ignored", event.ignored)
        document |= {
            "kind": report.kind,
            "status": report.status,
            "diagnostic": report.diagnostic,
            "feedback_type": report.feedback_type,
            "message_id": report.original_message_id,
            "reported_recipient": report.recipient,
        }
        if report.kind == "delayed":
            return await self._store(document, "ignored", "a delay warning, not a failure")
        if report.kind == "complaint" and report.feedback_type not in COMPLAINT_TYPES:
            return await self._store(
                document, "ignored", f"feedback type {report.feedback_type} is not a complaint"
            )
        message_id = report.original_message_id
        if message_id is None:
            return await self._store(
                document, "unknown_message", "the event names no Message-ID of ours"
            )
        message = await self._repository.message(message_id)
        if message is None:
            return await self._store(document, "unknown_message", "no such message was sent")
        subscriber_id = message.get("subscriber_id")
        subscriber = (
            await self._repository.subscriber(str(subscriber_id)) if subscriber_id else None
        )
        email = (subscriber or {}).get("email")
        if not subscriber_id or not email:
            return await self._store(document, "ignored", "the subscriber has been erased")
        document["subscriber_id"] = str(subscriber_id)
        reported = {email_key(r) for r in event.recipients}
        if email_key(str(email)) not in reported:
            # Another address than the subscriber's: they changed it since, or the event is
            # not about this email. Acting would suppress an address nobody reported.
            return await self._store(
                document, "unknown_message", "the reported address is not the subscriber's"
            )
        document |= {"email": email, "email_hash": hash_id(email_key(str(email)))}
        return await self._act(
            document, report=report, subscriber_id=str(subscriber_id), message=message, now=now
        )

    def _token(self, recipients: Sequence[str], report: DeliveryReport) -> BounceToken | None:
        # The envelope recipient first (VERP), then what the report says was the sender.
        if self._addresses is None:
            return None
        for address in (*recipients, *report.return_paths):
            token = self._addresses.parse(address)
            if token is not None:
                return token
        return None

    async def _our_message(
        self, token: BounceToken | None, report: DeliveryReport
    ) -> tuple[BounceToken, Document] | str:
        """The message the report is about, or why it names none we sent."""
        if token is None:
            return "no bounce address of ours in the report"
        message_id = report.original_message_id
        if message_id is None:
            return "the report does not return the message's Message-ID"
        if message_hash(message_id) != token.message_hash:
            return "the returned Message-ID is not the one the bounce address names"
        message = await self._repository.message(message_id)
        if message is None or message.get("subscriber_hash") != hash_id(token.subscriber_id):
            return "no such message was sent to that subscriber"
        return token, message

    async def _act(
        self,
        document: Document,
        *,
        report: DeliveryReport,
        subscriber_id: str,
        message: Document,
        now: datetime,
    ) -> IntakeResult:
        email = str(document["email"])
        # Every kind the composer writes is a notification kind; an unknown one is not a reason
        # to refuse the report.
        recorded = str(message.get("kind"))
        kind: NotificationKind = (
            recorded if recorded in get_args(NotificationKind) else "immediate"  # type: ignore[assignment]
        )
        message_id = str(message["_id"])
        if report.kind == "complaint":
            event: Event = NotificationComplained.create(
                NotificationComplainedPayload(
                    message_id=message_id,
                    subscriber_id=subscriber_id,
                    kind=kind,
                    feedback_type=report.feedback_type or "abuse",
                    complained_at=now,
                ),
                producer="notifier",
                occurred_at=now,
            )
            reason = f"complaint: {report.feedback_type}"
            return await self._store(
                document, "complaint", reason, suppress=(email, reason), events=[event]
            )
        if report.kind == "soft":
            earlier = await self._records.soft_bounced_messages(
                str(document["email_hash"]), since=now - self._soft_window
            )
            count = len(earlier | {message_id})
            document["soft_count"] = count
            if count < self._soft_limit:
                return await self._store(
                    document, "soft", f"soft bounce {count} of {self._soft_limit}"
                )
            days = self._soft_window / timedelta(days=1)
            reason = f"bounce: {count} soft bounces in {days:g} days, last {report.status}"
        else:
            reason = f"bounce: {report.status} {report.diagnostic}".strip()
        event = NotificationFailed.create(
            NotificationFailedPayload(
                message_id=message_id,
                subscriber_id=subscriber_id,
                kind=kind,
                opening_ids=tuple(message.get("opening_ids") or ()),
                permanent=True,
                reason=reason[:1000],
                failed_at=now,
            ),
            producer="notifier",
            occurred_at=now,
        )
        return await self._store(document, "hard", reason, suppress=(email, reason), events=[event])

    async def _store(
        self,
        document: Document,
        outcome: Outcome,
        detail: str,
        *,
        suppress: tuple[str, str] | None = None,
        events: Sequence[Event] = (),
    ) -> IntakeResult:
        document |= {"outcome": outcome, "detail": detail[:1000]}
        now = document["received_at"]

        async def work(session: AsyncClientSession) -> None:
            await self._records.bounces.insert_one(document, session=session)
            if suppress is not None:
                email, reason = suppress
                await self._repository.suppress(
                    email, reason=reason[:300], now=now, session=session
                )
            await stage_events(self._repository.db, events, session=session)

        try:
            await in_transaction(self._repository.db.client, work)
        except DuplicateKeyError:
            # The provider delivered this event before (its id makes the record's): recorded
            # and acted on once.
            metrics.BOUNCES.labels("duplicate").inc()
            log.info("bounce report %s received again; ignored", document["_id"])
            return IntakeResult(str(document["_id"]), "duplicate", "received before")
        if events and self._on_commit is not None:
            self._on_commit()
        metrics.BOUNCES.labels(outcome).inc()
        log.info("bounce report %s: %s (%s)", document["_id"], outcome, detail[:200])
        return IntakeResult(str(document["_id"]), outcome, detail)
