"""What the delivery use cases need from storage, as typed ports: bulk reads of the read model,
the ledger, the message claims, and one unit of work that settles a batch with its events.

Every method takes or returns a whole batch, so that a batch of a few hundred emails costs a
handful of database commands. :class:`~hwcollab_notifier.repository.NotifierRepository` is the
MongoDB implementation; ``services/notifier/tests/fakes.py`` holds the in-memory one, and
``test_store_contract.py`` runs both through the same checks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from hwcollab_common.mongo import Document
from hwcollab_schemas import Event

Channel = Literal["immediate", "digest", "welcome"]
RowStatus = Literal["pending", "sending", "sent", "dropped", "failed"]
MessageStatus = Literal["sending", "retry", "sent", "failed", "dropped"]
Settled = Literal["sent", "failed", "dropped"]
SETTLED: tuple[Settled, ...] = ("sent", "failed", "dropped")
OPEN_LEDGER: tuple[RowStatus, ...] = ("pending", "sending")
"""A ledger row not settled yet (``sending``: written by earlier versions, counts as pending)."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to send one Message-ID, asked for in bulk (see :meth:`Messages.claim_messages`)."""

    message_id: str
    kind: str
    subscriber_id: str
    opening_ids: tuple[str, ...]
    digest_key: str | None = None
    pair_keys: tuple[str, ...] = ()
    """The ledger rows the message settles: a digest that did not finish goes out again with
    exactly these."""


class ReadModelView(Protocol):
    """A snapshot of the read model for a batch: one query per kind of document."""

    async def subscribers_by_id(self, ids: Iterable[str]) -> dict[str, Document]: ...

    async def openings_by_id(self, ids: Iterable[str]) -> dict[str, Document]: ...

    async def employers_by_id(self, ids: Iterable[str]) -> dict[str, Document]: ...

    async def suppressed_among(self, emails: Iterable[str]) -> set[str]:
        """The normalized addresses among ``emails`` that must never be written to."""
        ...

    async def bulletins_by_id(self, ids: Iterable[str]) -> dict[str, Document]: ...

    async def link_requests_by_id(self, ids: Iterable[str]) -> dict[str, Document]: ...

    async def live_openings(self) -> list[Document]:
        """Every stored opening with status ``open`` and its details."""
        ...


class Ledger(Protocol):
    """The (subscriber, opening) pairs."""

    async def add_pairs(self, rows: Sequence[Document]) -> list[str]:
        """Insert rows, skipping pairs that exist; the ids actually inserted."""
        ...

    async def rows_by_key(self, keys: Iterable[str]) -> dict[str, Document]: ...

    async def subscribers_with_digest_rows(self) -> list[str]:
        """Subscribers with digest rows not yet sent."""
        ...

    async def open_rows_of(
        self, subscriber_ids: Iterable[str], *, channel: Channel
    ) -> list[Document]:
        """Pending and sending rows of these subscribers on ``channel``, oldest match first."""
        ...

    async def set_rows(
        self,
        keys: Iterable[str],
        *,
        status: RowStatus,
        now: datetime,
        reason: str | None = None,
        count: bool = False,
    ) -> None:
        """Open rows of ``keys`` take ``status``; ``count`` adds an attempt (a held-back 4xx)."""
        ...

    async def finish_welcomes(self, subscriber_ids: Iterable[str], *, now: datetime) -> None: ...

    async def finish_link_requests(
        self, request_ids: Iterable[str], *, status: MessageStatus, now: datetime
    ) -> None: ...


class Messages(Protocol):
    """One record per Message-ID: who may send it, and how it ended."""

    async def messages_by_id(self, ids: Iterable[str]) -> dict[str, Document]: ...

    async def claim_messages(
        self, claims: Sequence[Claim], *, owner: str, now: datetime, lease: timedelta
    ) -> dict[str, int]:
        """Claim every message not sent, not failed for good and not held by a live lease, in
        one write; the ids claimed, each with the attempt this claim is (1 for a new message).
        Each claim is remembered (``claims: [{owner, at}]``)."""
        ...

    async def unsettled_digests(self, subscriber_ids: Iterable[str]) -> list[Document]:
        """The digests of these subscribers claimed and not settled (a run that died between
        SMTP and its settlement, or an outage): ``subscriber_id``, ``message_id``,
        ``digest_key`` and ``pair_keys`` each; at most one per subscriber."""
        ...

    async def renew_claims(
        self, ids: Iterable[str], *, owner: str, now: datetime, lease: timedelta
    ) -> None:
        """Extend the leases ``owner`` still holds on these messages: a batch that takes longer
        to send than one lease keeps its claims while its process lives."""
        ...

    async def release_messages(
        self, ids: Iterable[str], *, owner: str, now: datetime, detail: str
    ) -> None:
        """Give claims back after an outage: ``retry`` at once, the attempt not counted."""
        ...

    async def retry_messages(self, ids: Iterable[str], *, now: datetime, detail: str) -> None:
        """Claims whose send was refused for now (a 4xx that outlasted the sender's retries)."""
        ...


class Settlement(Protocol):
    """Writes inside the one transaction that settles a batch."""

    async def finish_messages(
        self, ids: Iterable[str], *, status: MessageStatus, now: datetime, detail: str = ""
    ) -> None: ...

    async def finish_rows(
        self, keys: Iterable[str], *, status: RowStatus, now: datetime, reason: str | None = None
    ) -> None: ...

    async def finish_welcomes(self, subscriber_ids: Iterable[str], *, now: datetime) -> None: ...

    async def finish_digests(self, subscriber_ids: Iterable[str]) -> None:
        """These subscribers' open digests are settled: none is left to send again."""
        ...

    async def finish_link_requests(
        self, request_ids: Iterable[str], *, status: MessageStatus, now: datetime
    ) -> None: ...

    async def suppress(self, email: str, *, reason: str, now: datetime) -> None: ...


SettleWork = Callable[[Settlement], Awaitable[Sequence[Event]]]


class UnitOfWork(Protocol):
    async def settle(self, work: SettleWork) -> None:
        """Run ``work`` in one transaction and stage the events it returns in the outbox."""
        ...


class DeliveryPorts(ReadModelView, Ledger, Messages, UnitOfWork, Protocol):
    """Everything the delivery use cases touch, as one object to inject."""
