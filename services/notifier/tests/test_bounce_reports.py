"""Reading delivery status notifications (RFC 3464) and complaint reports (ARF, RFC 5965) as
mail systems write them (``reports/*.eml``), and refusing what is not one."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwcollab_notifier.mail.reports import MalformedReportError, read_report

REPORTS = Path(__file__).parent / "reports"
MESSAGE_ID = "<immediate.0f3a9c@hwcollab.example>"
RETURN_PATH = "bounces+abcdefgh@bounce.hwcollab.example"
RECIPIENT = "nurse@care.example"


def report(name: str, *, message_id: str = MESSAGE_ID) -> bytes:
    """A sample with this test's addresses, in wire format (CRLF)."""
    text = (REPORTS / name).read_text()
    for placeholder, value in {
        "@@MESSAGE_ID@@": message_id,
        "@@RETURN_PATH@@": RETURN_PATH,
        "@@RECIPIENT@@": RECIPIENT,
        "@@FEEDBACK_ADDRESS@@": "fbl@bounce.hwcollab.example",
    }.items():
        text = text.replace(placeholder, value)
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


@pytest.mark.parametrize(
    ("name", "kind", "status"),
    [
        ("postfix_5.1.1.eml", "hard", "5.1.1"),
        ("exchange_5.1.10.eml", "hard", "5.1.10"),
        ("gmail_5.1.1.eml", "hard", "5.1.1"),
        ("mailbox_full_4.2.2.eml", "soft", "4.2.2"),
    ],
)
def test_delivery_status_notifications(name: str, kind: str, status: str) -> None:
    read = read_report(report(name))
    assert (read.kind, read.status) == (kind, status)
    assert read.recipient == RECIPIENT
    assert read.original_message_id == MESSAGE_ID
    assert read.return_paths == (RETURN_PATH,)
    assert status in read.diagnostic


def test_arf_abuse_report_is_a_complaint() -> None:
    read = read_report(report("arf_abuse.eml"))
    assert (read.kind, read.feedback_type) == ("complaint", "abuse")
    assert read.original_message_id == MESSAGE_ID
    assert read.return_paths[0] == RETURN_PATH
    assert read.recipient == RECIPIENT


def test_delay_warning_is_not_a_failure() -> None:
    raw = report("mailbox_full_4.2.2.eml").replace(b"Action: failed", b"Action: delayed")
    assert read_report(raw).kind == "delayed"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not a report"),
        (b"\x00\xff\xfe garbage \r\n\r\n\x00", "not a report"),
        (b"Subject: hello\r\n\r\nI am out of the office.\r\n", "not a report"),
        (
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n"
            b"--x\r\nContent-Type: text/plain\r\n\r\nsorry\r\n--x--\r\n",
            "without its message/delivery-status",
        ),
        (
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n"
            b"--x\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; a\r\n\r\n"
            b"Final-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 55.x; rm -rf\r\n"
            b"--x--\r\n",
            "valid Status",
        ),
        (
            b"Content-Type: multipart/report; report-type=disposition-notification; boundary=x"
            b"\r\n\r\n--x--\r\n",
            "unknown report type",
        ),
        (
            b"Content-Type: multipart/report; report-type=feedback-report; boundary=x\r\n\r\n"
            b"--x\r\nContent-Type: message/feedback-report\r\n\r\nUser-Agent: x\r\n--x--\r\n",
            "without a Feedback-Type",
        ),
    ],
)
def test_what_is_not_a_readable_report_is_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedReportError, match=reason):
        read_report(raw)


def test_a_report_without_the_returned_message_names_none() -> None:
    raw = report("postfix_5.1.1.eml")
    cut = raw[: raw.index(b"Content-Description: Undelivered Message Headers")]
    read = read_report(cut)
    assert read.kind == "hard"
    assert read.original_message_id is None


def test_header_injection_in_report_fields_stays_one_line() -> None:
    raw = report("arf_abuse.eml").replace(
        f"Original-Mail-From: <{RETURN_PATH}>".encode(),
        f"Original-Mail-From: <{RETURN_PATH}>\r\n\tBcc: victim@example.org".encode(),
    )
    read = read_report(raw)
    assert read.return_paths[0] == RETURN_PATH
    assert all("\n" not in field and "\r" not in field for field in (read.diagnostic,))


def test_a_huge_text_part_is_read_without_trouble() -> None:
    raw = report("postfix_5.1.1.eml").replace(
        b"This is the mail system", b"x" * 2_000_000 + b"\r\nThis is the mail system"
    )
    assert read_report(raw).kind == "hard"
