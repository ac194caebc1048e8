"""No CR or LF from user input ever reaches an email header: every kind of email composed with
line breaks (CR, LF, CRLF, and the Unicode ones) in every value a person or an employer chose —
first name, address, opening title, organization, bulletin subject, link URLs — parses with the
stdlib parser into exactly the headers the composer writes, each on its own line."""

from __future__ import annotations

import email
from dataclasses import replace
from email.message import EmailMessage
from email.policy import default

import pytest

from hwcollab_notifier.mail.composer import OutgoingEmail
from hwcollab_notifier.mail.views import OpeningView

from .test_stored_xss import composer, recipient, view

BREAKS = ("\r\n", "\n", "\r", "\u2028", "\u0085", "\x0b", "\x0c")
EXPECTED_HEADERS = {
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "X-HWcollab-Kind",
}
WITH_LIST = {"List-Id", "List-Unsubscribe", "List-Unsubscribe-Post"}
WITH_OPENINGS = {"X-HWcollab-Opening-Ids"}


def injection(line_break: str) -> str:
    return f"Bad{line_break}Bcc: victim@example.org{line_break}{line_break}<b>body</b>"


def every_email(line_break: str) -> dict[str, OutgoingEmail]:
    text = injection(line_break)
    opening: OpeningView = replace(
        view("plain"),
        title=f"Title {text}",
        organization_name=f"Org {text}",
        opening_id=f"op{text}",
    )
    who = replace(
        recipient(f"Pat {text}"),
        email=f"pat@example.org{text}",
        unsubscribe_url=f"http://subs.example:8001/unsubscribe?token=U{text}",
    )
    mail = composer()
    return {
        "immediate": mail.immediate(who, opening),
        "digest": mail.digest(
            who,
            [opening],
            total=1,
            see_all_url="http://jobs.example:8002/openings",
            period="weekly",
            digest_key=f"d{text}",
        ),
        "welcome": mail.welcome(
            who, [opening], total=1, see_all_url="http://jobs.example:8002/openings"
        ),
        "confirmation": mail.confirmation(
            request_id="confirmation-request",
            subscriber_id=f"sub{text}",
            email=who.email,
            first_name=who.first_name,
            confirm_url=f"http://subs.example:8001/confirm?token=C{text}",
        ),
        "manage link": mail.manage_link(
            request_id="manage_link-request",
            subscriber_id=f"sub{text}",
            email=who.email,
            first_name=who.first_name,
            manage_url=f"http://subs.example:8001/preferences?token=M{text}",
            already_subscribed=False,
        ),
        "bulletin": mail.bulletin(
            who, bulletin_id=f"b{text}", subject=f"News {text}", body_markdown="Hello."
        ),
    }


@pytest.mark.parametrize("line_break", BREAKS, ids=[repr(b) for b in BREAKS])
def test_no_line_break_from_input_reaches_a_header(line_break: str) -> None:
    for kind, sent in every_email(line_break).items():
        head = sent.data.partition(b"\r\n\r\n")[0]
        assert b"\nBcc" not in head, kind
        assert b"\r\n\r\n" not in head, kind
        message = email.message_from_bytes(sent.data, policy=default)
        assert isinstance(message, EmailMessage)
        assert not message.defects, (kind, message.defects)
        names = set(message.keys())
        expected = set(EXPECTED_HEADERS)
        if kind in ("immediate", "digest", "welcome", "bulletin"):
            expected |= WITH_LIST
        if kind in ("immediate", "digest", "welcome"):
            expected |= WITH_OPENINGS
        assert names == expected, (kind, names ^ expected)
        assert len(message.keys()) == len(names), (kind, "a header appears twice")
        for name, value in message.items():
            unfolded = str(value)
            assert "\r" not in unfolded, (kind, name, unfolded)
            assert "\n" not in unfolded, (kind, name, unfolded)
            assert "\u2028" not in unfolded, (kind, name)
            assert "\u0085" not in unfolded, (kind, name)
        # The whole message is one body: the injected blank line did not end the headers early.
        assert message.get_content_type() == "multipart/alternative", kind
