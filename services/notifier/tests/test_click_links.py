"""Links to openings in alerts, digests and welcome emails go through the subscriber service's
signed click redirect, one token per reader and link; the manage, pause and unsubscribe links and
the List-Unsubscribe header stay as they were; and the "still interested?" email."""

import email
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default

import pytest

from hwcollab_common.clicks import ClickLinks
from hwcollab_common.clock import FixedClock
from hwcollab_common.tokens import LinkSigner
from hwcollab_notifier.mail.composer import EmailComposer, OutgoingEmail

from .mail_examples import opening, recipient

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
SUBSCRIBERS = "http://subs.example:8001"
EMPLOYERS = "http://jobs.example:8002"
KEY = "unit-test-link-signing-key-0123456789"
REDIRECT = re.compile(re.escape(SUBSCRIBERS) + r"/r\?token=([A-Za-z0-9_.\-]+)")


def clicks() -> ClickLinks:
    return ClickLinks(
        LinkSigner(KEY, clock=FixedClock(NOW)),
        subscriber_public_url=SUBSCRIBERS,
        employer_public_url=EMPLOYERS,
    )


@pytest.fixture(scope="module")
def composer() -> EmailComposer:
    return EmailComposer(
        mail_from="HWcollab Opportunities <opportunities@hwcollab.example>",
        postal_address="100 Main Street, Worcester, MA 01608",
        subscriber_public_url=SUBSCRIBERS,
        employer_public_url=EMPLOYERS,
        clock=FixedClock(NOW),
        clicks=clicks(),
    )


def parts(sent: OutgoingEmail) -> tuple[EmailMessage, str, str]:
    message = email.message_from_bytes(sent.data, policy=default)
    assert isinstance(message, EmailMessage)
    text, html = (p.get_content().replace("\r\n", "\n") for p in message.iter_parts())
    return message, text, html


def targets(body: str) -> list[tuple[str, str, str, str]]:
    """(subscriber, opening, link, target) of every redirect link in ``body``, in order."""
    reader = clicks()
    found: list[tuple[str, str, str, str]] = []
    for token in REDIRECT.findall(body.replace("&amp;", "&")):
        click = reader.read(token)
        found.append((click.subscriber_id, click.opening_id, click.link, click.target))
    return found


def test_an_alert_links_its_opening_through_the_redirect(composer: EmailComposer) -> None:
    message, text, html = parts(composer.immediate(recipient(), opening(7)))
    apply_url = "https://jobs.example.org/apply/7?src=hw&x=1"
    page = f"{EMPLOYERS}/openings/op-7"
    assert targets(text) == [
        ("sub-1", "op-7", "apply", apply_url),
        ("sub-1", "op-7", "details", page),
    ]
    # The title and "See details" both lead to the page, the button to the apply link.
    assert targets(html) == [
        ("sub-1", "op-7", "details", page),
        ("sub-1", "op-7", "apply", apply_url),
        ("sub-1", "op-7", "details", page),
    ]
    for body in (text, html.replace("&amp;", "&")):
        assert apply_url not in body
        assert page not in body
    # Manage, pause, unsubscribe and the one-click header are untouched.
    assert message["List-Unsubscribe"] == f"<{SUBSCRIBERS}/unsubscribe?token=UNSUB>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"Manage preferences: {SUBSCRIBERS}/preferences?token=MANAGE" in text
    assert f"Unsubscribe: {SUBSCRIBERS}/unsubscribe?token=UNSUB" in text
    assert "<img" not in html  # no tracking pixel


def test_each_reader_and_opening_of_a_digest_gets_links_of_their_own(
    composer: EmailComposer,
) -> None:
    openings = [opening(n) for n in range(1, 4)]
    _, pat, _ = parts(
        composer.digest(
            recipient(),
            openings,
            total=3,
            see_all_url=f"{EMPLOYERS}/openings?zip=01608",
            period="daily",
            digest_key="d-1",
        )
    )
    _, sam, _ = parts(
        composer.digest(
            recipient(subscriber_id="sub-2", email="sam@example.org"),
            openings,
            total=3,
            see_all_url=f"{EMPLOYERS}/openings?zip=01608",
            period="daily",
            digest_key="d-1",
        )
    )
    assert {(s, o, link) for s, o, link, _ in targets(pat)} == {
        ("sub-1", f"op-{n}", link) for n in range(1, 4) for link in ("apply", "details")
    }
    assert {s for s, *_ in targets(sam)} == {"sub-2"}
    assert set(REDIRECT.findall(pat)).isdisjoint(REDIRECT.findall(sam))


def test_welcome_email_links_go_through_the_redirect(composer: EmailComposer) -> None:
    _, text, _ = parts(
        composer.welcome(
            recipient(), [opening(4)], total=1, see_all_url=f"{EMPLOYERS}/openings?zip=01608"
        )
    )
    assert {link for _, _, link, _ in targets(text)} == {"apply", "details"}


def test_an_apply_link_that_is_not_web_is_neither_shown_nor_signed(
    composer: EmailComposer,
) -> None:
    _, text, html = parts(
        composer.immediate(recipient(), opening(5, apply_url="javascript:alert(1)"))
    )
    assert [link for _, _, link, _ in targets(text)] == ["details"]
    assert "javascript:" not in text
    assert "javascript:" not in html


def test_still_interested_email() -> None:
    composer = EmailComposer(
        mail_from="HWcollab Opportunities <opportunities@hwcollab.example>",
        postal_address="100 Main Street, Worcester, MA 01608",
        subscriber_public_url=SUBSCRIBERS,
        employer_public_url=EMPLOYERS,
        clock=FixedClock(NOW),
    )
    keep = f"{SUBSCRIBERS}/keep?token=k"
    manage = f"{SUBSCRIBERS}/preferences?token=m"
    sent = composer.still_interested(
        request_id="still_interested-request",
        subscriber_id="sub-1",
        email="pat@example.org",
        first_name="Pat",
        manage_url=manage,
        keep_url=keep,
        pause_after=datetime(2026, 12, 8, 15, 0, tzinfo=UTC),
    )
    message, text, html = parts(sent)
    assert sent.kind == "still_interested"
    assert message["X-HWcollab-Kind"] == "still_interested"
    assert message["Subject"] == "Do you still want HWcollab Opportunities job alerts?"
    assert message["List-Unsubscribe"] is None
    assert text.startswith("Hi Pat,")
    assert f"Keep me subscribed: {keep}" in text
    assert f'href="{keep}"' in html
    assert manage in text
    assert f'href="{manage}"' in html
    assert "pause your job alerts after December 8, 2026" in text
    assert "December 8, 2026" in html
    assert "100 Main Street, Worcester, MA 01608" in text
