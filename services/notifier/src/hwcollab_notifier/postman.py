"""Sending a batch of emails, each exactly once: claim their Message-IDs, send, settle.

Order for a batch: (1) claim, in one bulk write, every Message-ID not yet sent and not held by
another sender's live lease (the claim names the ledger rows the message settles); (2) check the
suppression list for the whole batch; (3) send concurrently over the SMTP pool; (4) in ONE
transaction mark the messages and rows ``sent`` (suppressed ones ``dropped``, bounced ones
``failed``) and stage one ``notification.batch_sent`` (plus a ``notification.failed`` per
failure) in the outbox. A crash between (3) and (4) leaves the batch's claims in ``sending``:
once their lease runs out, a redelivered job, the sweeper or the next digest run sends the same
email again with the same Message-ID, which receivers that dedupe on Message-ID drop. That is
the one window left where a person can see an email twice: the emails of the batch in flight at
the crash.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import uuid4

from tenacity import RetryCallState

from hwcollab_common.clock import Clock
from hwcollab_common.emails import email_key
from hwcollab_common.errors import TransientError, is_transient
from hwcollab_common.mongo import Document
from hwcollab_common.retrying import AddedJitterBackoff, Sleep, retry, retry_policy
from hwcollab_common.tracing import SpanKind, span
from hwcollab_notifier import metrics
from hwcollab_notifier.domain import recorded
from hwcollab_notifier.mail import OutgoingEmail, SendOutcome
from hwcollab_notifier.ports import (
    SETTLED,
    Claim,
    DeliveryPorts,
    RowStatus,
    Settled,
    Settlement,
)
from hwcollab_schemas import Event
from hwcollab_schemas.events import (
    NotificationBatchSent,
    NotificationBatchSentPayload,
    NotificationFailed,
    NotificationFailedPayload,
    NotificationSentPayload,
)

log = logging.getLogger(__name__)

BATCH_EVENT_ITEMS = 1000
"""The most accepted emails one ``notification.batch_sent`` carries."""
SETTLE_RETRY_CAP_SECONDS = 5.0
SETTLE_BACKOFF = AddedJitterBackoff(base=0.2, cap=SETTLE_RETRY_CAP_SECONDS, jitter=0.0)
"""0.2 s, 0.4 s, … up to 5 s between attempts to settle a batch the SMTP server accepted."""


class Mailer(Protocol):
    async def send(self, email: OutgoingEmail) -> SendOutcome: ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One composed email of a batch and what its sending settles besides its own record: the
    ledger rows it announces (``pair_keys``: rows there are; ``new_rows``: pairs without a row
    yet, written once with the email's outcome), the welcome it is, or the link request it
    answers."""

    email: OutgoingEmail
    pair_keys: tuple[str, ...] = ()
    new_rows: tuple[Document, ...] = ()
    digest_key: str | None = None
    welcome_of: str | None = None
    link_request: str | None = None

    @property
    def row_keys(self) -> tuple[str, ...]:
        return self.pair_keys + tuple(str(row["_id"]) for row in self.new_rows)


@dataclass(slots=True)
class _Failure:
    item: Outgoing
    permanent: bool
    detail: str


@dataclass(slots=True)
class _Settling:
    """What the settling transaction of a batch writes."""

    sent: list[Outgoing]
    dropped: list[Outgoing]
    failed: list[_Failure]

    def __bool__(self) -> bool:
        return bool(self.sent or self.dropped or self.failed)

    @property
    def message_ids(self) -> list[str]:
        items = [*self.sent, *self.dropped, *(failure.item for failure in self.failed)]
        return [item.email.message_id for item in items]


def owner_name() -> str:
    """This sender's name in claims: host, process id and a nonce (two apps in one process)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"


class Postman:
    """Sends batches of composed emails once each (see the module docstring)."""

    def __init__(
        self,
        *,
        clock: Clock,
        store: DeliveryPorts,
        mailer: Mailer,
        lease: timedelta,
        max_attempts: int,
        owner: str | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._store = store
        self._mailer = mailer
        self._lease = lease
        self._max_attempts = max_attempts
        self.owner = owner or owner_name()
        self._in_flight: set[str] = set()

    async def send(self, item: Outgoing) -> str:
        """Send one email (a batch of one); its outcome."""
        [outcome] = await self.send_batch([item])
        return outcome

    async def send_batch(self, items: Sequence[Outgoing]) -> list[str]:
        """Send every email of ``items`` not sent already; one outcome per item ("sent",
        "skipped", "suppressed", "failed", "retry"). Raises a :class:`TransientError` after
        settling the rest when the SMTP server was unreachable for some of them: those claims
        are given back uncounted and their rows wait, so the caller retries them."""
        outcomes: dict[str, str] = {}
        first: dict[str, Outgoing] = {}
        for item in items:
            if item.email.message_id not in self._in_flight:
                first.setdefault(item.email.message_id, item)
        now = self._clock.now()
        claims = [
            Claim(
                message_id=message_id,
                kind=item.email.kind,
                subscriber_id=item.email.subscriber_id,
                opening_ids=tuple(item.email.opening_ids),
                digest_key=item.digest_key,
                pair_keys=item.pair_keys,
            )
            for message_id, item in first.items()
        ]
        attempts = await self._store.claim_messages(
            claims, owner=self.owner, now=now, lease=self._lease
        )
        # A send of this process still in flight (its job consumer and its sweeper may meet on a
        # message whose lease ran out while a slow batch was sending) is never doubled.
        claimed = set(attempts) - self._in_flight
        await self._not_claimed([item for i, item in first.items() if i not in claimed], outcomes)
        batch = [item for i, item in first.items() if i in claimed]
        self._in_flight |= claimed
        skipped = len(first) - len(batch)
        if skipped:
            metrics.EMAILS_SKIPPED.labels(items[0].email.kind, "claimed").inc(skipped)
        renewing = asyncio.create_task(self._keep_claims([i.email.message_id for i in batch]))
        try:
            return await self._deliver(
                items, batch, attempts=attempts, outcomes=outcomes, renewing=renewing
            )
        finally:
            self._in_flight -= claimed
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)

    async def _not_claimed(self, items: Sequence[Outgoing], outcomes: dict[str, str]) -> None:
        """Messages another sender holds are "skipped"; those settled already (the crash of a
        sender after its settlement, or a repeated job) bring their rows and requests along.

        A skipped pair without a row gets a ``pending`` one: if the sender holding it died
        (after SMTP, say), this job is done with, and the sweeper sends the message again once
        the dead sender's lease has run out. If that sender settles, the row takes its outcome
        from the message at the next sweep."""
        if not items:
            return
        known = await self._store.messages_by_id(item.email.message_id for item in items)
        settled_elsewhere: dict[Settled, list[Outgoing]] = {}
        held: list[Outgoing] = []
        for item in items:
            status = known.get(item.email.message_id, {}).get("status")
            final = next((s for s in SETTLED if s == status), None)
            if final is None:
                outcomes[item.email.message_id] = "skipped"
                held.append(item)
            else:
                settled_elsewhere.setdefault(final, []).append(item)
        await self._record(held, status="pending", now=self._clock.now())
        for status, done in settled_elsewhere.items():
            await self._follow_message(done, status=status)

    async def _keep_claims(self, message_ids: list[str]) -> None:
        """Renew the batch's leases every third of a lease while it is being sent."""
        if not message_ids:
            return
        every = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            await self._renew(message_ids)

    async def _renew(self, message_ids: list[str]) -> None:
        """Extend the batch's leases; a failure is logged and counted, and the batch goes on (its
        leases may run out meanwhile, and another sender may then take an email over)."""
        try:
            await self._store.renew_claims(
                message_ids, owner=self.owner, now=self._clock.now(), lease=self._lease
            )
        except Exception as error:
            metrics.CLAIM_RENEWAL_FAILURES.inc()
            log.warning("renewing the claims of a batch failed: %r", error)

    async def _deliver(
        self,
        items: Sequence[Outgoing],
        batch: list[Outgoing],
        *,
        attempts: Mapping[str, int],
        outcomes: dict[str, str],
        renewing: asyncio.Task[None],
    ) -> list[str]:
        """Suppression, SMTP and settlement of the claimed ``batch`` of ``items``."""
        suppressed = await self._store.suppressed_among(item.email.to for item in batch)
        settling = _Settling(sent=[], dropped=[], failed=[])
        to_send: list[Outgoing] = []
        for item in batch:
            if email_key(item.email.to) in suppressed:
                settling.dropped.append(item)
            else:
                to_send.append(item)
        results = await asyncio.gather(
            *(self._smtp(item.email) for item in to_send), return_exceptions=True
        )
        renewing.cancel()  # the settlement renews between its own attempts
        await asyncio.gather(renewing, return_exceptions=True)
        outages: list[tuple[Outgoing, Exception]] = []
        later: list[tuple[Outgoing, str]] = []
        for item, result in zip(to_send, results, strict=True):
            if isinstance(result, Exception):
                outages.append((item, result))
            elif isinstance(result, BaseException):
                raise result  # cancelled or exiting: the claims stay until their lease ends
            elif result.status == "sent":
                settling.sent.append(item)
            elif (
                result.status == "permanent_failure"
                or attempts[item.email.message_id] >= self._max_attempts
            ):
                permanent = result.status == "permanent_failure"
                settling.failed.append(_Failure(item, permanent, result.detail))
            else:
                later.append((item, result.detail))
        if settling:
            await self._settle(settling)
        for item in settling.sent:
            outcomes[item.email.message_id] = "sent"
        for item in settling.dropped:
            outcomes[item.email.message_id] = "suppressed"
        for failure in settling.failed:
            outcomes[failure.item.email.message_id] = "failed"
        for item, detail in later:
            await self._retry_later(item, detail=detail)
            outcomes[item.email.message_id] = "retry"
        if outages:
            await self._give_back([item for item, _ in outages], outages[0][1])
        return [outcomes.get(item.email.message_id, "skipped") for item in items]

    async def _smtp(self, email: OutgoingEmail) -> SendOutcome:
        with span(
            "smtp send",
            kind=SpanKind.CLIENT,
            attributes={"email.kind": email.kind, "email.message_id": email.message_id},
        ) as sending:
            outcome = await self._mailer.send(email)
            if sending is not None:
                sending.set_attribute("email.outcome", outcome.status)
            return outcome

    async def _follow_message(self, items: Sequence[Outgoing], *, status: Settled) -> None:
        """Rows and requests left open by a crash after their message was settled take the
        message's state (a redelivered job, or the sweeper, after the settling transaction)."""
        now = self._clock.now()
        keys = [key for item in items for key in item.pair_keys]
        await self._store.set_rows(keys, status=status, now=now)
        await self._record(items, status=status, now=now)
        requests = [item.link_request for item in items if item.link_request]
        await self._store.finish_link_requests(requests, status=status, now=now)
        if status == "sent":
            welcomes = [item.welcome_of for item in items if item.welcome_of]
            await self._store.finish_welcomes(welcomes, now=now)

    async def _settle(self, settling: _Settling) -> None:
        now = self._clock.now()
        events: list[Event] = []
        for start in range(0, len(settling.sent), BATCH_EVENT_ITEMS):
            chunk = settling.sent[start : start + BATCH_EVENT_ITEMS]
            events.append(
                NotificationBatchSent.create(
                    NotificationBatchSentPayload(
                        batch_id=str(uuid4()),
                        sent=tuple(
                            NotificationSentPayload(
                                message_id=item.email.message_id,
                                subscriber_id=item.email.subscriber_id,
                                kind=item.email.kind,
                                opening_ids=item.email.opening_ids,
                                sent_at=now,
                            )
                            for item in chunk
                        ),
                    ),
                    producer="notifier",
                    occurred_at=now,
                )
            )
        for failure in settling.failed:
            email = failure.item.email
            events.append(
                NotificationFailed.create(
                    NotificationFailedPayload(
                        message_id=email.message_id,
                        subscriber_id=email.subscriber_id,
                        kind=email.kind,
                        opening_ids=email.opening_ids,
                        permanent=failure.permanent,
                        reason=failure.detail[:1000] or "delivery failed",
                        failed_at=now,
                    ),
                    producer="notifier",
                    occurred_at=now,
                )
            )

        async def work(tx: Settlement) -> list[Event]:
            await _finish(tx, settling.sent, status="sent", now=now)
            await _finish(tx, settling.dropped, status="dropped", now=now, reason="suppressed")
            for failure in settling.failed:
                if failure.permanent:
                    await tx.suppress(
                        failure.item.email.to, reason=f"bounce: {failure.detail}", now=now
                    )
                await _finish(
                    tx, [failure.item], status="failed", now=now, reason=failure.detail[:300]
                )
            return events

        # The server accepted these emails: recording them is the only way on. An outage (or a
        # conflict with a transaction a dead process left open) is waited out here, holding the
        # claims, rather than leaving them to be sent again.
        size = len(settling.sent) + len(settling.dropped) + len(settling.failed)

        def waiting(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "settling a batch of %d emails failed for now (attempt %d), retrying in %.1f s: %r",
                size,
                state.attempt_number,
                state.upcoming_sleep,
                error,
            )

        tried = 0

        async def settle_once() -> None:
            nonlocal tried
            tried += 1
            if tried > 1:
                await self._renew(settling.message_ids)  # held through the wait
            await self._store.settle(work)

        settle = retry_policy(
            attempts=None,
            on=is_transient,
            wait=SETTLE_BACKOFF,
            sleep=self._sleep,
            before_sleep=waiting,
        )
        await retry(settle, settle_once)
        # The pairs that had no row get theirs now, after the transaction: SecantusDB pays for a
        # duplicate key inside one with the whole transaction, and a pair recorded meanwhile
        # (a settlement that followed this message, a welcome) keeps the row it has. A crash
        # here leaves them to the redelivered job, which finds their message settled.
        await self._record(settling.sent, status="sent", now=now)
        await self._record(settling.dropped, status="dropped", now=now, reason="suppressed")
        for failure in settling.failed:
            await self._record(
                [failure.item], status="failed", now=now, reason=failure.detail[:300]
            )
        for item in settling.sent:
            metrics.EMAILS_SENT.labels(item.email.kind).inc()
        for item in settling.dropped:
            metrics.EMAILS_SKIPPED.labels(item.email.kind, "suppressed").inc()
        for failure in settling.failed:
            kind = failure.item.email.kind
            metrics.EMAILS_FAILED.labels(kind, str(failure.permanent).lower()).inc()
            log.warning(
                "gave up on a %s email (permanent=%s): %s", kind, failure.permanent, failure.detail
            )

    async def _retry_later(self, item: Outgoing, *, detail: str) -> None:
        """A 4xx about this email that outlasted the sender's retries: the rows go back to
        ``pending`` for the sweeper, and the attempt counts."""
        now = self._clock.now()
        await self._store.retry_messages([item.email.message_id], now=now, detail=detail)
        await self._store.set_rows(
            item.pair_keys, status="pending", now=now, reason=detail, count=True
        )
        await self._record([item], status="pending", now=now, reason=detail, count=True)
        metrics.EMAILS_RETRIED.labels(item.email.kind).inc()
        log.warning("sending %s failed for now (%s); will try again", item.email.kind, detail)

    async def _record(
        self,
        items: Sequence[Outgoing],
        *,
        status: RowStatus,
        now: datetime,
        reason: str | None = None,
        count: bool = False,
    ) -> None:
        """Write the rows of the pairs of ``items`` that had none, with this outcome (one insert;
        a pair that has a row by now keeps it). A pending one goes to the sweeper."""
        rows = [
            recorded(row, status=status, now=now, reason=reason, count=count)
            for item in items
            for row in item.new_rows
        ]
        if rows:
            await self._store.add_pairs(rows)

    async def _give_back(self, items: Sequence[Outgoing], error: Exception) -> None:
        """The server is away (refused, 421, cut off): give the claims back uncounted and let
        the caller retry until it returns: consumers redeliver, the sweeper runs again."""
        now = self._clock.now()
        detail = str(error)
        await self._store.release_messages(
            [item.email.message_id for item in items], owner=self.owner, now=now, detail=detail
        )
        await self._store.set_rows(
            [key for item in items for key in item.pair_keys],
            status="pending",
            now=now,
            reason=detail,
        )
        await self._record(items, status="pending", now=now, reason=detail)
        for item in items:
            metrics.EMAILS_RETRIED.labels(item.email.kind).inc()
        if not isinstance(error, TransientError):
            log.error("sending a batch failed unexpectedly: %r", error)
        raise error


async def _finish(
    tx: Settlement,
    items: Sequence[Outgoing],
    *,
    status: Settled,
    now: datetime,
    reason: str | None = None,
) -> None:
    if not items:
        return
    await tx.finish_messages(
        [item.email.message_id for item in items],
        status=status,
        now=now,
        detail=reason or "",
    )
    await tx.finish_rows(
        [key for item in items for key in item.pair_keys],
        status=status,
        now=now,
        reason=reason,
    )
    if status == "sent":
        await tx.finish_welcomes([i.welcome_of for i in items if i.welcome_of], now=now)
    await tx.finish_digests([i.email.subscriber_id for i in items if i.digest_key])
    await tx.finish_link_requests(
        [i.link_request for i in items if i.link_request],
        status=status,
        now=now,
    )
