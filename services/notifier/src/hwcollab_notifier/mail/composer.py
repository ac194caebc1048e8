"""Writes every email the notifier sends: HTML (Jinja2, CSS inlined once at load) + plain text,
with the headers SPEC §7 asks for, as ready-to-send RFC 5322 bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from hwcollab_common.clock import Clock
from hwcollab_notifier.mail.views import OpeningView, Recipient

EmailKind = Literal["immediate", "digest", "welcome", "confirmation", "manage_link", "bulletin"]
DIGEST_LIMIT = 25
"""A digest or welcome email lists at most this many openings, then links to the rest."""


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """A composed email: the envelope facts the sender and the ledger need, and the full message."""

    message_id: str
    """With angle brackets, as in the header: ``<immediate.3f2a…@hwcollab.example>``."""
    to: str
    subject: str
    kind: EmailKind
    opening_ids: tuple[str, ...]
    subscriber_id: str
    data: bytes
    """The whole RFC 5322 message (CRLF line endings), ready for SMTP DATA."""


def message_id_for(kind: str, subscriber_id: str, key: str, *, domain: str) -> str:
    """A deterministic Message-ID per (kind, subscriber, key): redelivery yields the same id."""
    digest = hashlib.sha256(f"{kind}|{subscriber_id}|{key}".encode()).hexdigest()[:32]
    return f"<{kind}.{digest}@{domain}>"


class EmailComposer:
    """Renders and encodes emails; build one per process (templates compile at construction)."""

    def __init__(
        self,
        *,
        mail_from: str,
        postal_address: str,
        list_id: str = "HWcollab Opportunities <opportunities.hwcollab.example>",
        subscriber_public_url: str,
        employer_public_url: str,
        message_id_domain: str = "hwcollab.example",
        clock: Clock | None = None,
    ) -> None:
        raise NotImplementedError

    def immediate(self, recipient: Recipient, opening: OpeningView) -> OutgoingEmail:
        """One new matching opening; subject "New opening: <title> at <organization>".

        Message-ID key: the opening id."""
        raise NotImplementedError

    def digest(
        self,
        recipient: Recipient,
        openings: Sequence[OpeningView],
        *,
        total: int,
        see_all_url: str,
        period: Literal["daily", "weekly"],
        digest_key: str,
    ) -> OutgoingEmail:
        """A daily/weekly digest listing up to 25 openings, with "see all N" when ``total`` is
        larger; subject "5 new openings for you this week". Message-ID key: ``digest_key``."""
        raise NotImplementedError

    def welcome(
        self, recipient: Recipient, openings: Sequence[OpeningView], *, total: int, see_all_url: str
    ) -> OutgoingEmail:
        """Sent once after confirmation, with current matches (may be empty)."""
        raise NotImplementedError

    def confirmation(
        self, *, subscriber_id: str, email: str, first_name: str | None, confirm_url: str
    ) -> OutgoingEmail:
        """The double opt-in email (transactional: no List-Unsubscribe). Key: the confirm URL."""
        raise NotImplementedError

    def manage_link(
        self,
        *,
        subscriber_id: str,
        email: str,
        first_name: str | None,
        manage_url: str,
        already_subscribed: bool,
    ) -> OutgoingEmail:
        """The preferences link (transactional: no List-Unsubscribe). Key: the manage URL."""
        raise NotImplementedError

    def bulletin(
        self, recipient: Recipient, *, bulletin_id: str, subject: str, body_markdown: str
    ) -> OutgoingEmail:
        """A career-information bulletin written in Markdown (raw HTML disabled, output
        sanitized). Message-ID key: ``bulletin_id``."""
        raise NotImplementedError
