"""Reading the reports that come back to the bounce domain: delivery status notifications
(RFC 3464, ``multipart/report; report-type=delivery-status``) and complaint reports (ARF,
RFC 5965, ``report-type=feedback-report``). Pure: bytes in, a :class:`DeliveryReport` out.

Why the standard library's ``email`` package and not ``flufl.bounce``: flufl.bounce answers which
addresses a bounce names, by a few dozen heuristics over vendor formats, but not whether it is
permanent or temporary, nor which message it is about; here the address comes from the signed
VERP token (:mod:`hwcollab_notifier.mail.bounces`), and what is left to read is the structured
part RFC 3464 and RFC 5965 define (``Action``, ``Status``, ``Feedback-Type``) and the returned
message's ``Message-ID``, which ``email`` parses (it knows ``message/delivery-status``).
A report without that structure is refused as malformed rather than guessed at.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import Message
from typing import Literal

ReportKind = Literal["hard", "soft", "complaint", "delayed"]

MAX_FIELD = 500
_STATUS = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,300}>")
_ADDRESS = re.compile(r"<?([^<>\s;]{1,320}@[^<>\s;]{1,255})>?")


class MalformedReportError(ValueError):
    """The bytes are not a delivery status notification or complaint report we can read."""


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What a report says about the one message it returns."""

    kind: ReportKind
    status: str
    """The RFC 3463 status (``5.1.1``); empty for a complaint."""
    diagnostic: str
    recipient: str | None
    """The address the report says failed (``Final-Recipient``), as the report has it."""
    original_message_id: str | None
    """The Message-ID of the returned message (or ARF ``Original-Message-ID``)."""
    return_paths: tuple[str, ...] = ()
    """Envelope senders the report names (ARF ``Original-Mail-From``, the returned headers'
    ``Return-Path``): where a complaint sent to a plain feedback address finds its VERP token."""
    feedback_type: str | None = None


def _text(value: object) -> str:
    """A header value as one line of at most MAX_FIELD characters (folds and CR/LF removed)."""
    return " ".join(str(value or "").split())[:MAX_FIELD]


def _address(value: object) -> str | None:
    """``rfc822; someone@example.com`` → ``someone@example.com``."""
    text = _text(value)
    text = text.split(";", 1)[1] if ";" in text else text
    found = _ADDRESS.search(text.strip())
    return found.group(1) if found else None


def _message_id(value: object) -> str | None:
    found = _MESSAGE_ID.search(_text(value))
    return found.group(0) if found else None


def _returned_headers(part: Message) -> Message | None:
    """The headers of the message a report returns (``message/rfc822`` or
    ``text/rfc822-headers``)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload[0] if payload and isinstance(payload[0], Message) else None
    if isinstance(payload, str):
        return email.message_from_string(payload, policy=email.policy.compat32)
    return None


def _field_blocks(part: Message) -> list[Message]:
    """The field groups of a ``message/delivery-status`` or ``message/feedback-report`` part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    if isinstance(payload, str):
        # A part the parser left as text (a transfer encoding, an unknown subtype): its field
        # groups are separated by blank lines.
        text = part.get_payload(decode=True)
        decoded = text.decode("utf-8", "replace") if isinstance(text, bytes) else payload
        return [
            email.message_from_string(block.strip() + "\n", policy=email.policy.compat32)
            for block in re.split(r"\r?\n\s*\r?\n", decoded)
            if block.strip()
        ]
    return []


def _kind(action: str, status: str) -> ReportKind | None:
    if action in ("delivered", "relayed", "expanded"):
        return None
    if action == "delayed":
        return "delayed"
    if status.startswith("5."):
        return "hard"
    if status.startswith("4."):
        return "soft"
    return "hard" if action == "failed" else None


def read_report(raw: bytes) -> DeliveryReport:
    """The report in ``raw``; raises :class:`MalformedReportError` for anything else."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
    except (ValueError, TypeError, LookupError) as error:  # the parser is lenient; to be sure
        raise MalformedReportError(f"unreadable message: {error}") from None
    if message.get_content_type() != "multipart/report":
        raise MalformedReportError(f"not a report: {_text(message.get_content_type())}")
    report_type = _text(message.get_param("report-type", "")).lower()
    parts = [p for p in message.walk() if p is not message]
    returned = next(
        (
            _returned_headers(p)
            for p in parts
            if p.get_content_type() in ("message/rfc822", "text/rfc822-headers")
        ),
        None,
    )
    returned_id = _message_id(returned.get("Message-ID")) if returned is not None else None
    returned_path = _address(returned.get("Return-Path")) if returned is not None else None
    if report_type == "delivery-status":
        return _delivery_status(parts, returned_id=returned_id, returned_path=returned_path)
    if report_type == "feedback-report":
        return _feedback(parts, returned_id=returned_id, returned_path=returned_path)
    raise MalformedReportError(f"unknown report type: {report_type or '(none)'}")


def _delivery_status(
    parts: list[Message], *, returned_id: str | None, returned_path: str | None
) -> DeliveryReport:
    status_part = next(
        (p for p in parts if p.get_content_type() == "message/delivery-status"), None
    )
    if status_part is None:
        raise MalformedReportError("a delivery-status report without its message/delivery-status")
    blocks = _field_blocks(status_part)
    per_recipient = [b for b in blocks[1:] if b.get("Action") or b.get("Status")]
    if not per_recipient:
        raise MalformedReportError("a delivery-status report that names no recipient")
    # One email has one recipient: the first block whose outcome is a failure speaks for it.
    for block in per_recipient:
        action = _text(block.get("Action")).lower()
        status_text = _text(block.get("Status")).split(" ", 1)[0]
        if not _STATUS.match(status_text):
            raise MalformedReportError(
                f"a recipient without a valid Status: {status_text or '(none)'}"
            )
        kind = _kind(action, status_text)
        if kind is None:
            continue
        return DeliveryReport(
            kind=kind,
            status=status_text,
            diagnostic=_text(block.get("Diagnostic-Code")),
            recipient=_address(block.get("Final-Recipient") or block.get("Original-Recipient")),
            original_message_id=returned_id,
            return_paths=tuple(p for p in (returned_path,) if p),
        )
    raise MalformedReportError("a delivery-status report without a failed recipient")


def _feedback(
    parts: list[Message], *, returned_id: str | None, returned_path: str | None
) -> DeliveryReport:
    feedback_part = next(
        (p for p in parts if p.get_content_type() == "message/feedback-report"), None
    )
    if feedback_part is None:
        raise MalformedReportError("a feedback report without its message/feedback-report")
    fields = Message()
    for block in _field_blocks(feedback_part):
        for name, value in block.items():
            fields[name] = value
    feedback_type = _text(fields.get("Feedback-Type")).lower()
    if not feedback_type:
        raise MalformedReportError("a feedback report without a Feedback-Type")
    mail_from = _address(fields.get("Original-Mail-From"))
    return DeliveryReport(
        kind="complaint",
        status="",
        diagnostic=f"feedback-type {feedback_type}",
        recipient=_address(fields.get("Original-Rcpt-To")),
        original_message_id=returned_id or _message_id(fields.get("Original-Message-ID")),
        return_paths=tuple(p for p in (mail_from, returned_path) if p),
        feedback_type=feedback_type,
    )
