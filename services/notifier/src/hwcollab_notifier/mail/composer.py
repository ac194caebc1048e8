"""Writes every email the notifier sends: HTML (Jinja2, CSS inlined once at load) + plain text,
with the headers SPEC §7 asks for, as ready-to-send RFC 5322 bytes.

Links to openings (their page and the apply link) in alerts, digests and welcome emails go through
the subscriber service's click redirect (:mod:`hwcollab_common.clicks`), signed per reader and
link here: no database work, one HMAC per link. No tracking pixel."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Any, Literal, get_args

import css_inline
import jinja2
import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

from hwcollab_common.clicks import ClickLinks
from hwcollab_common.clock import Clock, SystemClock
from hwcollab_notifier.mail.bounces import BounceAddresses
from hwcollab_notifier.mail.mime import (
    alternative_message,
    clean_address,
    clean_header_text,
    clean_token,
    list_header,
    raw_header,
    safe_id,
    text_header,
)
from hwcollab_notifier.mail.signing import DkimSigner
from hwcollab_notifier.mail.views import OpeningView, Recipient
from hwcollab_schemas.events import AccountEmailKind, NotificationKind

EmailKind = NotificationKind
"""Every kind of email the notifier sends: the kinds its notification events name."""
KINDS: tuple[EmailKind, ...] = get_args(NotificationKind)
EMPLOYER_KINDS: Mapping[AccountEmailKind, EmailKind] = {
    "verify_signup": "employer_verify_signup",
    "already_registered": "employer_already_registered",
    "password_reset": "employer_password_reset",
    "email_change_confirm": "employer_email_change_confirm",
    "email_change_notice": "employer_email_change_notice",
}
EMPLOYER_SUBJECTS: Mapping[AccountEmailKind, str] = {
    "verify_signup": "Confirm your HWcollab employer account",
    "already_registered": "You already have an HWcollab employer account",
    "password_reset": "Reset your HWcollab employer password",
    "email_change_confirm": "Confirm your new HWcollab contact email",
    "email_change_notice": "Your HWcollab contact email is being changed",
}
EMPLOYER_RECIPIENT_PREFIX = "employer:"
"""Account emails are recorded under ``employer:<employer id>`` where subscribers' emails have
the subscriber id: no subscriber has such an id, so what the subscriber service does with a
bounce or complaint (mark the person bounced, unsubscribe them) touches nobody."""


def employer_recipient(employer_id: str) -> str:
    return f"{EMPLOYER_RECIPIENT_PREFIX}{employer_id}"


TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "email"
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
    envelope_sender: str = ""
    """The SMTP envelope sender (MAIL FROM): its own VERP bounce address, or empty for the
    sender's default (the MAIL_FROM address)."""


def message_id_for(kind: str, subscriber_id: str, key: str, *, domain: str) -> str:
    """A deterministic Message-ID per (kind, subscriber, key): redelivery yields the same id."""
    digest = hashlib.sha256(f"{kind}|{subscriber_id}|{key}".encode()).hexdigest()[:32]
    return f"<{kind}.{digest}@{domain}>"


class EmailTemplates:
    """The compiled HTML and text templates, one pair per kind of email.

    HTML templates are assembled in two stages (see ``_layout.html``): the layout is resolved and
    its CSS inlined once here, so that rendering a message is a single Jinja pass with no CSS
    work; the per-message Jinja environment autoescapes everything.
    """

    def __init__(self, directory: Path = TEMPLATE_DIR) -> None:
        loader = jinja2.FileSystemLoader(directory)
        layout = jinja2.Environment(
            loader=loader,
            block_start_string="[%",
            block_end_string="%]",
            variable_start_string="[[",
            variable_end_string="]]",
            comment_start_string="[#",
            comment_end_string="#]",
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
        html_env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
        # The text part is text/plain: HTML-escaping it would show "&amp;" to the reader.
        text_env = jinja2.Environment(
            loader=loader,
            autoescape=False,  # noqa: S701
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            undefined=jinja2.StrictUndefined,
            # Includes would otherwise stat their file on every message.
            auto_reload=False,
        )
        self.html: dict[str, jinja2.Template] = {}
        self.text: dict[str, jinja2.Template] = {}
        for kind in KINDS:
            inlined = inliner.inline(layout.get_template(f"{kind}.html").render())
            self.html[kind] = html_env.from_string(inlined)
            self.text[kind] = text_env.get_template(f"{kind}.txt")


_DEFAULT_TEMPLATES: EmailTemplates | None = None


def default_templates() -> EmailTemplates:
    """The package's templates, compiled on first use and shared by every composer."""
    global _DEFAULT_TEMPLATES
    if _DEFAULT_TEMPLATES is None:
        _DEFAULT_TEMPLATES = EmailTemplates()
    return _DEFAULT_TEMPLATES


def _greeting(first_name: str | None) -> str:
    name = clean_header_text(first_name) if first_name else ""
    return f"Hi {name}," if name else "Hello,"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _time_left(expires_at: datetime | None, *, now: datetime) -> str:
    """How long a link still works, as a reader takes it in: "30 minutes", "48 hours", "7 days"
    (rounded up; empty when the link does not expire)."""
    if expires_at is None:
        return ""
    minutes = max(1, math.ceil((expires_at - now).total_seconds() / 60))
    if minutes <= 120:
        return _plural(minutes, "minute")
    hours = math.ceil(minutes / 60)
    return _plural(hours, "hour") if hours <= 72 else _plural(math.ceil(hours / 24), "day")


class EmailComposer:
    """Renders and encodes emails; cheap to build, templates are compiled once per process."""

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
        templates: EmailTemplates | None = None,
        signer: DkimSigner | None = None,
        bounces: BounceAddresses | None = None,
        clicks: ClickLinks | None = None,
        postmark_metadata: bool = False,
    ) -> None:
        """``signer``: every message gets its DKIM signature here, once, as it is written.
        ``bounces``: every message gets a bounce address of its own as envelope sender.
        ``clicks``: links to openings go through the click redirect (else straight to them).
        ``postmark_metadata``: every message names its Message-ID in Postmark's metadata
        header (Postmark removes it and returns it with a bounce or complaint)."""
        name, address = parseaddr(clean_header_text(mail_from))
        if "@" not in address:
            raise ValueError(f"MAIL_FROM has no address: {mail_from!r}")
        self.mail_from_address = address
        self.subscriber_public_url = subscriber_public_url.rstrip("/")
        self.employer_public_url = employer_public_url.rstrip("/")
        self._domain = safe_id(message_id_domain)
        self._clock: Clock = clock or SystemClock()
        self._templates = templates or default_templates()
        self._from = raw_header("From", formataddr((name, address), charset="utf-8"))
        self._list_id = text_header("List-Id", list_id)
        self._postal_address = clean_header_text(postal_address)
        self._markdown = MarkdownIt("commonmark", {"html": False})
        self._bulletin_cache: tuple[str, Markup] | None = None
        self._signer = signer
        self._bounces = bounces
        self._clicks = clicks
        self._postmark_metadata = postmark_metadata

    def immediate(self, recipient: Recipient, opening: OpeningView) -> OutgoingEmail:
        """One new matching opening; subject "New opening: <title> at <organization>".

        Message-ID key: the opening id."""
        subject = f"New opening: {opening.title} at {opening.organization_name}"
        return self._compose(
            "immediate",
            recipient,
            subject=subject,
            key=opening.opening_id,
            opening_ids=(opening.opening_id,),
            context={"opening": self._tracked(recipient, opening)},
        )

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
        shown = tuple(openings[:DIGEST_LIMIT])
        total = max(total, len(shown))
        when = "today" if period == "daily" else "this week"
        subject = f"{_plural(total, 'new opening')} for you {when}"
        headline = f"{_plural(total, 'new opening')} matched your preferences {when}" + (
            f". Here are the newest {len(shown)}:" if total > len(shown) else ":"
        )
        return self._compose(
            "digest",
            recipient,
            subject=subject,
            key=digest_key,
            opening_ids=tuple(o.opening_id for o in shown),
            context={
                "openings": [self._tracked(recipient, o) for o in shown],
                "total": total,
                "total_exceeds_shown": total > len(shown),
                "see_all_url": see_all_url,
                "headline": headline,
            },
        )

    def welcome(
        self, recipient: Recipient, openings: Sequence[OpeningView], *, total: int, see_all_url: str
    ) -> OutgoingEmail:
        """Sent once after confirmation, with current matches (may be empty).

        Message-ID key: "welcome" (one per subscriber)."""
        shown = tuple(openings[:DIGEST_LIMIT])
        total = max(total, len(shown))
        if total > len(shown):
            headline = (
                f"{_plural(total, 'opening')} match your preferences today; here are {len(shown)}:"
            )
        else:
            headline = f"{_plural(total, 'opening')} match your preferences today:"
        return self._compose(
            "welcome",
            recipient,
            subject="Welcome to HWcollab Opportunities",
            key="welcome",
            opening_ids=tuple(o.opening_id for o in shown),
            context={
                "openings": [self._tracked(recipient, o) for o in shown],
                "total": total,
                "total_exceeds_shown": total > len(shown),
                "see_all_url": see_all_url,
                "headline": headline,
            },
        )

    def confirmation(
        self,
        *,
        request_id: str,
        subscriber_id: str,
        email: str,
        first_name: str | None,
        confirm_url: str,
    ) -> OutgoingEmail:
        """The double opt-in email (transactional: no List-Unsubscribe). Key: the request (one
        email per event of the subscriber service: two sign-ups in the same second carry the same
        link and are still two emails)."""
        return self._compose(
            "confirmation",
            None,
            to=email,
            first_name=first_name,
            subscriber_id=subscriber_id,
            subject="Please confirm your HWcollab Opportunities subscription",
            key=request_id,
            opening_ids=(),
            context={"confirm_url": confirm_url},
        )

    def manage_link(
        self,
        *,
        request_id: str,
        subscriber_id: str,
        email: str,
        first_name: str | None,
        manage_url: str,
        already_subscribed: bool,
    ) -> OutgoingEmail:
        """The preferences link (transactional: no List-Unsubscribe). Key: the request."""
        subject = (
            "You are already subscribed to HWcollab Opportunities"
            if already_subscribed
            else "Your HWcollab Opportunities preferences link"
        )
        return self._compose(
            "manage_link",
            None,
            to=email,
            first_name=first_name,
            subscriber_id=subscriber_id,
            subject=subject,
            key=request_id,
            opening_ids=(),
            context={"manage_url": manage_url, "already_subscribed": already_subscribed},
        )

    def still_interested(
        self,
        *,
        request_id: str,
        subscriber_id: str,
        email: str,
        first_name: str | None,
        manage_url: str,
        keep_url: str,
        pause_after: datetime | None,
    ) -> OutgoingEmail:
        """The one "still interested?" email to a subscriber who has not opened a job from our
        emails for a long time, with the "keep me subscribed" link (transactional: no
        List-Unsubscribe; the preferences page has it). Key: the request."""
        pause_date = (
            f"{pause_after:%B} {pause_after.day}, {pause_after.year}"
            if pause_after
            else "two weeks"
        )
        return self._compose(
            "still_interested",
            None,
            to=email,
            first_name=first_name,
            subscriber_id=subscriber_id,
            subject="Do you still want HWcollab Opportunities job alerts?",
            key=request_id,
            opening_ids=(),
            context={"manage_url": manage_url, "keep_url": keep_url, "pause_date": pause_date},
        )

    def employer_account(
        self,
        *,
        request_id: str,
        employer_id: str,
        email: str,
        organization_name: str,
        kind: AccountEmailKind,
        url: str | None,
        expires_at: datetime | None = None,
    ) -> OutgoingEmail:
        """An email about an employer's account (transactional: no List-Unsubscribe). Key: the
        request (one email per event of the employer service)."""
        base = self.employer_public_url
        return self._compose(
            EMPLOYER_KINDS[kind],
            None,
            to=email,
            subscriber_id=employer_recipient(employer_id),
            subject=EMPLOYER_SUBJECTS[kind],
            key=request_id,
            opening_ids=(),
            context={
                "organization_name": clean_header_text(organization_name),
                "url": url or "",
                "link_life": _time_left(expires_at, now=self._clock.now()),
                "sign_in_url": f"{base}/login",
                "reset_url": f"{base}/forgot-password",
            },
        )

    def bulletin(
        self, recipient: Recipient, *, bulletin_id: str, subject: str, body_markdown: str
    ) -> OutgoingEmail:
        """A career-information bulletin written in Markdown (raw HTML disabled, output
        sanitized). Message-ID key: ``bulletin_id``."""
        return self._compose(
            "bulletin",
            recipient,
            subject=subject,
            key=bulletin_id,
            opening_ids=(),
            context={
                "body_html": self._bulletin_html(body_markdown),
                "body_markdown": body_markdown,
            },
        )

    def _bulletin_html(self, body_markdown: str) -> Markup:
        # A bulletin goes to many readers in a row: render and sanitize its body once.
        cached = self._bulletin_cache
        if cached is not None and cached[0] == body_markdown:
            return cached[1]
        html = Markup(nh3.clean(self._markdown.render(body_markdown)))  # noqa: S704
        self._bulletin_cache = (body_markdown, html)
        return html

    def _tracked(self, recipient: Recipient, opening: OpeningView) -> OpeningView:
        """The opening with its links through the click redirect, for this reader."""
        if self._clicks is None:
            return opening
        clicks, reader, opening_id = self._clicks, recipient.subscriber_id, opening.opening_id
        apply_url = opening.apply_url
        if apply_url.startswith(("https://", "http://")):  # the templates show no other
            apply_url = clicks.url(reader, opening_id, "apply", apply_url=apply_url)
        return replace(
            opening,
            details_url=clicks.url(reader, opening_id, "details"),
            apply_url=apply_url,
        )

    def _compose(
        self,
        kind: EmailKind,
        recipient: Recipient | None,
        *,
        subject: str,
        key: str,
        opening_ids: tuple[str, ...],
        context: Mapping[str, Any],
        to: str = "",
        first_name: str | None = None,
        subscriber_id: str = "",
    ) -> OutgoingEmail:
        if recipient is not None:
            to, first_name, subscriber_id = (
                recipient.email,
                recipient.first_name,
                recipient.subscriber_id,
            )
        to = clean_address(to)
        subject = clean_header_text(subject)
        message_id = message_id_for(kind, subscriber_id, key, domain=self._domain)
        headers = [
            self._from,
            raw_header("To", to),
            text_header("Subject", subject),
            raw_header("Date", format_datetime(self._clock.now())),
            raw_header("Message-ID", message_id),
        ]
        values: dict[str, Any] = {
            "subject": subject,
            "greeting": _greeting(first_name),
            "email": to,
            "postal_address": self._postal_address,
        }
        if recipient is not None:
            unsubscribe_url = clean_token(recipient.unsubscribe_url)
            headers += (
                self._list_id,
                raw_header("List-Unsubscribe", f"<{unsubscribe_url}>"),
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            )
            values |= {
                "manage_url": recipient.manage_url,
                "pause_url": recipient.pause_url,
                "unsubscribe_url": recipient.unsubscribe_url,
            }
        ids = tuple(safe_id(i) for i in opening_ids)
        if ids:
            headers.append(list_header("X-HWcollab-Opening-Ids", ids))
        headers.append(raw_header("X-HWcollab-Kind", kind))
        if self._postmark_metadata:
            headers.append(raw_header("X-PM-Metadata-message_id", message_id))
        values.update(context)
        data = alternative_message(
            headers=b"".join(headers),
            text=self._templates.text[kind].render(values),
            html=self._templates.html[kind].render(values),
        )
        if self._signer is not None:
            data = self._signer.sign(data)
        return OutgoingEmail(
            message_id=message_id,
            to=to,
            subject=subject,
            kind=kind,
            opening_ids=ids,
            subscriber_id=subscriber_id,
            data=data,
            envelope_sender=self._envelope_sender(message_id, subscriber_id),
        )

    def _envelope_sender(self, message_id: str, subscriber_id: str) -> str:
        if self._bounces is None or not subscriber_id:
            return ""
        return self._bounces.address_for(message_id=message_id, subscriber_id=subscriber_id) or ""
