"""Bounce and complaint events that email providers post to the notifier, read into the one
shape the intake acts on (:class:`ProviderReport`). Pure: validated payloads in, reports out.

- Amazon SES (through SNS): ``Bounce`` with ``bounceType`` Permanent → hard, Transient or
  Undetermined → soft; ``Complaint`` → complaint (``not-spam`` and the like are kept, not acted
  on, as for an ARF report); ``Delivery`` and other event types are not reports. Our Message-ID
  is read from the original header list (``mail.headers``; SES may give the email an id of its
  own), else ``mail.commonHeaders.messageId``.
- Postmark: ``RecordType`` Bounce with its ``Type`` (:data:`POSTMARK_TYPES`), or SpamComplaint.
  Postmark's own ``MessageID`` names its record, not our email: ours comes from ``Metadata``
  (``message_id``, set with an ``X-PM-Metadata-message_id`` header) or the ``Headers`` list.
- The generic endpoint (like listmonk's): ``{email, source, type, message_id?, meta?}``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator
from pydantic.alias_generators import to_camel

from hwcollab_notifier.mail.reports import MAX_FIELD, DeliveryReport, ReportKind

Source = Literal["ses", "postmark", "generic"]
SOURCES: tuple[Source, ...] = ("ses", "postmark", "generic")

_STATUS = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,300}>")
_BARE_MESSAGE_ID = re.compile(r"^[^<>\s@]{1,250}@[^<>\s@]{1,250}$")
MESSAGE_ID_PATTERN = r"^<?[^<>\s@]{1,250}@[^<>\s@]{1,250}>?$"

PostmarkAction = Literal["hard", "soft", "complaint", "ignored"]
POSTMARK_TYPES: dict[str, PostmarkAction] = {
    "HardBounce": "hard",
    "BadEmailAddress": "hard",
    "SoftBounce": "soft",
    "Transient": "soft",
    "DnsError": "soft",
    "Blocked": "soft",
    "SpamNotification": "soft",
    "SpamComplaint": "complaint",
    # About us, the provider or the message, not the address: recorded, never acted on.
    "AutoResponder": "ignored",
    "AddressChange": "ignored",
    "Unsubscribe": "ignored",
    "Subscribe": "ignored",
    "OpenRelayTest": "ignored",
    "Unknown": "ignored",
    "VirusNotification": "ignored",
    "ChallengeVerification": "ignored",
    "ManuallyDeactivated": "ignored",
    "Unconfirmed": "ignored",
    "SMTPApiError": "ignored",
    "InboundError": "ignored",
    "DMARCPolicy": "ignored",
    "TemplateRenderingFailed": "ignored",
}


@dataclass(frozen=True, slots=True)
class ProviderReport:
    """One provider event about one email, as the intake takes it."""

    source: Source
    event_id: str | None
    """The provider's id of the event, so that an event delivered twice is recorded once."""
    report: DeliveryReport | None
    """What to act on; None for an event that is kept but never acted on (``ignored``)."""
    ignored: str
    recipients: tuple[str, ...]
    raw: bytes

    @property
    def record_id(self) -> str | None:
        """The ``bounces`` id of an event with a provider id (32 hex digits, as the others)."""
        if not self.event_id:
            return None
        name = f"{self.source}:{self.event_id}".encode("utf-8", "surrogatepass")
        return hashlib.sha256(name).hexdigest()[:32]


def text(value: object) -> str:
    """One line of at most MAX_FIELD characters (folds, CR and LF removed), valid UTF-8 (JSON
    may carry lone surrogates, which no database stores)."""
    line = " ".join(str(value or "").split())[:MAX_FIELD]
    return line.encode("utf-8", "replace").decode("utf-8")


def message_id_of(value: object) -> str | None:
    """``<id@host>`` from a header value, or from a bare ``id@host``."""
    line = text(value)
    found = _MESSAGE_ID.search(line)
    if found:
        return found.group(0)
    return f"<{line}>" if _BARE_MESSAGE_ID.match(line) else None


# --- Amazon SES ---------------------------------------------------------------------------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class _SesModel(BaseModel):
    """SES's camelCase fields under Python names."""

    model_config = ConfigDict(
        extra="ignore", strict=True, alias_generator=to_camel, populate_by_name=True
    )


class SesHeader(_SesModel):
    name: str = Field(max_length=1000)
    value: str = Field(max_length=64 * 1024)


class SesCommonHeaders(_SesModel):
    message_id: str | None = Field(None, max_length=1000)


class SesMail(_SesModel):
    message_id: str = Field(min_length=1, max_length=300)
    destination: list[str] = Field(default_factory=list, max_length=100)
    headers: list[SesHeader] = Field(default_factory=list, max_length=500)
    common_headers: SesCommonHeaders | None = None


class SesBouncedRecipient(_SesModel):
    email_address: str = Field(min_length=3, max_length=320)
    status: str | None = Field(None, max_length=40)
    action: str | None = Field(None, max_length=40)
    diagnostic_code: str | None = Field(None, max_length=10_000)


class SesBounce(_SesModel):
    bounce_type: Literal["Permanent", "Transient", "Undetermined"]
    bounce_sub_type: str = Field("", max_length=100)
    bounced_recipients: list[SesBouncedRecipient] = Field(min_length=1, max_length=100)
    feedback_id: str = Field(min_length=1, max_length=300)


class SesComplainedRecipient(_SesModel):
    email_address: str = Field(min_length=3, max_length=320)


class SesComplaint(_SesModel):
    complained_recipients: list[SesComplainedRecipient] = Field(min_length=1, max_length=100)
    complaint_feedback_type: str | None = Field(None, max_length=100)
    feedback_id: str = Field(min_length=1, max_length=300)


class SesEvent(_SesModel):
    """An SES notification (``notificationType``) or event publishing record (``eventType``)."""

    notification_type: str | None = Field(None, max_length=40)
    event_type: str | None = Field(None, max_length=40)
    mail: SesMail
    bounce: SesBounce | None = None
    complaint: SesComplaint | None = None

    @property
    def type(self) -> str:
        return self.notification_type or self.event_type or ""

    @model_validator(mode="after")
    def _has_its_part(self) -> SesEvent:
        if not self.type:
            raise ValueError("notificationType or eventType is required")
        if self.type == "Bounce" and self.bounce is None:
            raise ValueError("a Bounce notification needs its bounce object")
        if self.type == "Complaint" and self.complaint is None:
            raise ValueError("a Complaint notification needs its complaint object")
        return self


def ses_message_id(mail: SesMail) -> str | None:
    for header in mail.headers:
        if header.name.strip().lower() == "message-id":
            return message_id_of(header.value)
    if mail.common_headers is not None and mail.common_headers.message_id:
        return message_id_of(mail.common_headers.message_id)
    return None


def ses_report(event: SesEvent, *, raw: bytes) -> ProviderReport | None:
    """The report in an SES event; None for an event that is no report (a delivery, a send)."""
    message_id = ses_message_id(event.mail)
    if event.type == "Bounce" and event.bounce is not None:
        bounce = event.bounce
        first = bounce.bounced_recipients[0]
        kind: ReportKind = "hard" if bounce.bounce_type == "Permanent" else "soft"
        status = text(first.status).split(" ", 1)[0]
        if not _STATUS.match(status) or status[0] == "2":
            status = "5.0.0" if kind == "hard" else "4.0.0"
        diagnostic = text(first.diagnostic_code) or text(
            f"{bounce.bounce_type} {bounce.bounce_sub_type}"
        )
        return ProviderReport(
            source="ses",
            event_id=bounce.feedback_id,
            report=DeliveryReport(
                kind=kind,
                status=status,
                diagnostic=diagnostic,
                recipient=text(first.email_address),
                original_message_id=message_id,
            ),
            ignored="",
            recipients=tuple(text(r.email_address) for r in bounce.bounced_recipients),
            raw=raw,
        )
    if event.type == "Complaint" and event.complaint is not None:
        complaint = event.complaint
        # A complaint without a type comes from a feedback loop that sends none (Yahoo's).
        feedback_type = text(complaint.complaint_feedback_type).lower() or "abuse"
        recipients = tuple(text(r.email_address) for r in complaint.complained_recipients)
        return ProviderReport(
            source="ses",
            event_id=complaint.feedback_id,
            report=DeliveryReport(
                kind="complaint",
                status="",
                diagnostic=f"feedback-type {feedback_type}",
                recipient=recipients[0],
                original_message_id=message_id,
                feedback_type=feedback_type,
            ),
            ignored="",
            recipients=recipients,
            raw=raw,
        )
    return None


# --- Postmark -----------------------------------------------------------------------------------


class PostmarkHeader(_Loose):
    Name: str = Field(max_length=1000)
    Value: str = Field(max_length=64 * 1024)


class PostmarkEvent(_Loose):
    """A Postmark Bounce or SpamComplaint webhook (other record types are acknowledged)."""

    RecordType: str = Field(min_length=1, max_length=40)
    ID: int | None = Field(None, ge=0)
    Type: str | None = Field(None, max_length=60)
    TypeCode: int | None = None
    MessageID: str | None = Field(None, max_length=100)
    Email: str | None = Field(None, max_length=320)
    Description: str | None = Field(None, max_length=10_000)
    Details: str | None = Field(None, max_length=10_000)
    Metadata: dict[str, str] = Field(default_factory=dict, max_length=50)
    Headers: list[PostmarkHeader] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _bounce_fields(self) -> PostmarkEvent:
        if self.RecordType in ("Bounce", "SpamComplaint"):
            missing = [f for f in ("ID", "Type", "Email") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"a {self.RecordType} record needs {', '.join(missing)}")
        return self


def postmark_message_id(event: PostmarkEvent) -> str | None:
    for key, value in event.Metadata.items():
        if key.lower().replace("-", "_") == "message_id":
            return message_id_of(value)
    for header in event.Headers:
        if header.Name.strip().lower() == "message-id":
            return message_id_of(header.Value)
    return None


def postmark_report(event: PostmarkEvent, *, raw: bytes) -> ProviderReport | None:
    """The report in a Postmark webhook; None for a record that is no report."""
    if event.RecordType not in ("Bounce", "SpamComplaint"):
        return None
    kind = "SpamComplaint" if event.RecordType == "SpamComplaint" else text(event.Type)
    action = POSTMARK_TYPES.get(kind, "ignored")
    recipient = text(event.Email)
    diagnostic = text(event.Details) or text(event.Description) or kind
    event_id = f"{event.RecordType}:{event.ID}"
    if action == "ignored":
        why = "an unknown Postmark type" if kind not in POSTMARK_TYPES else "not about the address"
        return ProviderReport(
            source="postmark",
            event_id=event_id,
            report=None,
            ignored=f"Postmark {text(kind)}: {why}",
            recipients=(recipient,),
            raw=raw,
        )
    report = DeliveryReport(
        kind=action,
        status="" if action == "complaint" else ("5.0.0" if action == "hard" else "4.0.0"),
        diagnostic=f"{kind}: {diagnostic}"[:MAX_FIELD],
        recipient=recipient,
        original_message_id=postmark_message_id(event),
        feedback_type="abuse" if action == "complaint" else None,
    )
    return ProviderReport(
        source="postmark",
        event_id=event_id,
        report=report,
        ignored="",
        recipients=(recipient,),
        raw=raw,
    )


# --- generic ------------------------------------------------------------------------------------


class GenericBounce(BaseModel):
    """A bounce or complaint any system can post (as listmonk's ``/webhooks/bounce``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    email: EmailStr = Field(description="The address that bounced or complained.")
    source: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Who reports it (a provider, a mailbox), for operators.",
    )
    type: Literal["hard", "soft", "complaint"]
    message_id: str | None = Field(
        None,
        pattern=MESSAGE_ID_PATTERN,
        description="The Message-ID of our email (with or without <>): without it, or for an "
        "email we did not send to that address, the report is kept and counted, not acted on.",
    )
    meta: dict[str, Any] | None = Field(None, description="Kept with the report as sent.")


def generic_report(body: GenericBounce, *, raw: bytes) -> ProviderReport:
    address = str(body.email)
    report = DeliveryReport(
        kind=body.type,
        status={"hard": "5.0.0", "soft": "4.0.0", "complaint": ""}[body.type],
        diagnostic=text(f"{body.type} reported by {body.source}"),
        recipient=address,
        original_message_id=message_id_of(body.message_id) if body.message_id else None,
        feedback_type="abuse" if body.type == "complaint" else None,
    )
    return ProviderReport(
        source="generic", event_id=None, report=report, ignored="", recipients=(address,), raw=raw
    )
