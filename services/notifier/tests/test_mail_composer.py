"""The hand-built MIME bytes are checked by parsing them with the stdlib parser (policy=default)."""

import email
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwcollab_common.clock import FixedClock
from hwcollab_notifier.mail.composer import DIGEST_LIMIT, EmailComposer, OutgoingEmail
from hwcollab_notifier.mail.mime import clean_header_text
from hwcollab_schemas.events import AccountEmailKind

from .mail_examples import opening, recipient

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def composer() -> EmailComposer:
    return EmailComposer(
        mail_from="HWcollab Opportunities <opportunities@hwcollab.example>",
        postal_address="100 Main Street, Worcester, MA 01608",
        subscriber_public_url="http://subs.example:8001",
        employer_public_url="http://jobs.example:8002",
        clock=FixedClock(NOW),
    )


def parse(sent: OutgoingEmail) -> EmailMessage:
    message = email.message_from_bytes(sent.data, policy=default)
    assert isinstance(message, EmailMessage)
    assert not message.defects
    return message


def bodies(message: EmailMessage) -> tuple[str, str]:
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    text, html = (p.get_content() for p in parts)
    assert isinstance(text, str)
    assert isinstance(html, str)
    return text.replace("\r\n", "\n"), html.replace("\r\n", "\n")


def test_immediate_email_has_every_header_and_both_parts(composer: EmailComposer) -> None:
    sent = composer.immediate(recipient(), opening())
    message = parse(sent)

    assert message["From"] == "HWcollab Opportunities <opportunities@hwcollab.example>"
    assert message["To"] == "pat@example.org"
    assert message["Subject"] == "New opening: Nurse Care Manager at Worcester Community Health"
    assert message["Date"].datetime == NOW
    assert message["Message-ID"] == sent.message_id
    assert re.fullmatch(r"<immediate\.[0-9a-f]{32}@hwcollab\.example>", sent.message_id)
    assert message["MIME-Version"] == "1.0"
    assert message["List-Unsubscribe"] == "<http://subs.example:8001/unsubscribe?token=UNSUB>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] == "HWcollab Opportunities <opportunities.hwcollab.example>"
    assert message["X-HWcollab-Opening-Ids"] == "op-1"
    assert (sent.kind, sent.opening_ids, sent.subscriber_id) == ("immediate", ("op-1",), "sub-1")

    text, html = bodies(message)
    for part in (text, html):
        assert "Hi Pat," in part
        assert "Nurse Care Manager" in part
        assert "Worcester Community Health" in part
        assert "Worcester, MA · 12 miles away" in part
        assert "$38–$45 an hour · Full time · Medical" in part
        assert "Coordinate care for adults with complex needs." in part
        assert "100 Main Street, Worcester, MA 01608" in part
    assert "Apply: https://jobs.example.org/apply/1?src=hw&x=1" in text
    assert 'href="https://jobs.example.org/apply/1?src=hw&amp;x=1"' in html
    for link in ("preferences?token=MANAGE", "pause?token=MANAGE", "unsubscribe?token=UNSUB"):
        assert link in text
        assert link in html
    # CSS is inlined, the layout is a single 600px column, and the branding is there.
    assert 'style="max-width: 600px' in html
    assert "<table" not in html
    assert "HWcollab Opportunities" in html


def test_lines_respect_smtp_limits(composer: EmailComposer) -> None:
    sent = composer.digest(
        recipient(),
        [opening(n, title="Care Coordinator " * 7) for n in range(30)],
        total=30,
        see_all_url="http://jobs.example:8002/openings?zip=01608&radius_miles=25",
        period="weekly",
        digest_key="2026-W48",
    )
    head, _, body = sent.data.partition(b"\r\n\r\n")
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    assert all(len(line) <= 998 for line in body.split(b"\r\n"))
    assert b"\n" not in sent.data.replace(b"\r\n", b"")


def test_greeting_without_a_first_name(composer: EmailComposer) -> None:
    text, html = bodies(parse(composer.immediate(recipient(first_name=None), opening())))
    assert text.startswith("Hello,\n")
    assert "Hello," in html
    assert "Hi " not in text


def test_message_id_is_deterministic_per_subscriber_and_opening(composer: EmailComposer) -> None:
    first = composer.immediate(recipient(), opening(1))
    assert composer.immediate(recipient(), opening(1)).message_id == first.message_id
    assert composer.immediate(recipient(), opening(2)).message_id != first.message_id
    other = recipient(subscriber_id="sub-2")
    assert composer.immediate(other, opening(1)).message_id != first.message_id


def test_remote_opening_without_pay(composer: EmailComposer) -> None:
    view = opening(place="Remote", distance_miles=None, pay=None)
    text, html = bodies(parse(composer.immediate(recipient(), view)))
    assert "Remote\n" in text
    assert "miles away" not in text
    assert "Full time · Medical" in text
    assert "Remote<br>" in html


def test_hostile_opening_text_renders_as_text(composer: EmailComposer) -> None:
    hostile = opening(
        title='<script>alert("x")</script> Care\r\nBcc: victim@example.org',
        organization_name="Evil & Co\r\nX-Injected: yes",
        summary='<img src=x onerror="alert(1)"> "quoted" & more',
    )
    sent = composer.immediate(recipient(), hostile)
    message = parse(sent)
    assert message["Bcc"] is None
    assert message["X-Injected"] is None
    assert message["Subject"] == (
        'New opening: <script>alert("x")</script> Care Bcc: victim@example.org'
        " at Evil & Co X-Injected: yes"
    )
    _, html = bodies(message)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<img" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert "Evil &amp; Co" in html


def test_header_injection_through_recipient_and_subject_is_neutralized(
    composer: EmailComposer,
) -> None:
    sneaky = recipient(
        email="pat@example.org\r\nBcc: victim@example.org",
        unsubscribe_url="http://subs.example/unsubscribe?token=U\r\nX-Evil: 1",
    )
    sent = composer.bulletin(
        sneaky, bulletin_id="b-1", subject="News\nX-Evil: 2\rBcc: a@b.c", body_markdown="Hi"
    )
    message = parse(sent)
    assert message["Bcc"] is None
    assert message["X-Evil"] is None
    assert b"\r\nTo: pat@example.orgBccvictim@example.org\r\n" in sent.data
    assert sent.to == "pat@example.orgBccvictim@example.org"
    assert message["Subject"] == "News X-Evil: 2 Bcc: a@b.c"
    assert message["List-Unsubscribe"] == "<http://subs.example/unsubscribe?token=UX-Evil:1>"


def test_non_ascii_subject_is_encoded_and_round_trips(composer: EmailComposer) -> None:
    view = opening(title="Coordinadora de atención — Señora Niño", organization_name="Ünïcode Ltd")
    sent = composer.immediate(recipient(first_name="Zoë"), view)
    head = sent.data.partition(b"\r\n\r\n")[0]
    assert head.isascii()
    assert b"=?utf-8?b?" in head
    message = parse(sent)
    assert message["Subject"] == (
        "New opening: Coordinadora de atención — Señora Niño at Ünïcode Ltd"
    )
    text, _ = bodies(message)
    assert text.startswith("Hi Zoë,")


def test_text_that_looks_like_an_encoded_word_is_kept_literally(composer: EmailComposer) -> None:
    sent = composer.immediate(recipient(), opening(title="=?utf-8?q?=0D=0ABcc:_x?="))
    assert parse(sent)["Subject"].startswith("New opening: =?utf-8?q?=0D=0ABcc:_x?= at")


def test_digest_lists_at_most_25_and_links_to_the_rest(composer: EmailComposer) -> None:
    see_all = "http://jobs.example:8002/openings?zip=01608&radius_miles=25"
    openings = [opening(n) for n in range(30)]
    sent = composer.digest(
        recipient(), openings, total=42, see_all_url=see_all, period="weekly", digest_key="w48"
    )
    message = parse(sent)
    assert message["Subject"] == "42 new openings for you this week"
    ids = [i.strip() for i in message["X-HWcollab-Opening-Ids"].split(",")]
    assert ids == [f"op-{n}" for n in range(DIGEST_LIMIT)]
    assert sent.opening_ids == tuple(ids)
    text, html = bodies(message)
    assert text.count("Apply: ") == DIGEST_LIMIT
    assert html.count(">Apply</a>") == DIGEST_LIMIT
    assert f"See all 42 openings: {see_all}" in text
    assert "See all 42 openings</a>" in html
    assert re.fullmatch(r"<digest\.[0-9a-f]{32}@hwcollab\.example>", sent.message_id)


def test_daily_digest_of_one(composer: EmailComposer) -> None:
    sent = composer.digest(
        recipient(), [opening()], total=1, see_all_url="http://x", period="daily", digest_key="d"
    )
    message = parse(sent)
    assert message["Subject"] == "1 new opening for you today"
    text, _ = bodies(message)
    assert "See all" not in text


def test_welcome_with_and_without_matches(composer: EmailComposer) -> None:
    with_matches = parse(
        composer.welcome(recipient(), [opening(1), opening(2)], total=2, see_all_url="http://x")
    )
    assert with_matches["Subject"] == "Welcome to HWcollab Opportunities"
    assert with_matches["X-HWcollab-Opening-Ids"] == "op-1, op-2" or with_matches[
        "X-HWcollab-Opening-Ids"
    ] == ("op-1,op-2")
    text, _ = bodies(with_matches)
    assert "2 openings match your preferences today:" in text

    empty = parse(composer.welcome(recipient(), [], total=0, see_all_url="http://x"))
    assert empty["X-HWcollab-Opening-Ids"] is None
    text, html = bodies(empty)
    assert "Nothing matches right now" in text
    assert "Nothing matches right now" in html


def test_confirmation_is_transactional(composer: EmailComposer) -> None:
    url = "http://subs.example:8001/confirm?token=abc"
    sent = composer.confirmation(
        request_id="confirmation-request",
        subscriber_id="sub-9",
        email="new@example.org",
        first_name=None,
        confirm_url=url,
    )
    message = parse(sent)
    assert message["List-Unsubscribe"] is None
    assert message["List-Unsubscribe-Post"] is None
    assert message["Subject"] == "Please confirm your HWcollab Opportunities subscription"
    assert sent.kind == "confirmation"
    assert sent.subscriber_id == "sub-9"
    text, html = bodies(message)
    assert url in text
    assert f'href="{url}"' in html
    assert "100 Main Street, Worcester, MA 01608" in text
    assert "100 Main Street, Worcester, MA 01608" in html


def test_a_link_email_is_one_email_per_request_not_per_link(composer: EmailComposer) -> None:
    # Signed links carry a timestamp of whole seconds: a person who signs up, unsubscribes and
    # signs up again within one second is sent the same link twice, and must get both emails.
    url = "http://subs.example:8001/confirm?token=same-second"

    def confirmation(request_id: str) -> str:
        sent = composer.confirmation(
            request_id=request_id,
            subscriber_id="sub-9",
            email="new@example.org",
            first_name=None,
            confirm_url=url,
        )
        return sent.message_id

    assert confirmation("request-1") != confirmation("request-2")
    assert confirmation("request-1") == confirmation("request-1")  # a redelivered request


@pytest.mark.parametrize("already_subscribed", [True, False])
def test_manage_link_email(composer: EmailComposer, already_subscribed: bool) -> None:
    url = "http://subs.example:8001/preferences?token=m"
    sent = composer.manage_link(
        request_id="manage_link-request",
        subscriber_id="sub-1",
        email="pat@example.org",
        first_name="Pat",
        manage_url=url,
        already_subscribed=already_subscribed,
    )
    message = parse(sent)
    assert message["List-Unsubscribe"] is None
    text, _ = bodies(message)
    assert url in text
    assert ("already subscribed" in text) is already_subscribed
    assert "100 Main Street" in text


ACCOUNT_URL = "http://jobs.example:8002/account/link?token=T"


@pytest.mark.parametrize(
    ("kind", "url", "subject", "says"),
    [
        ("verify_signup", ACCOUNT_URL, "Confirm your HWcollab employer account", "48 hours"),
        ("already_registered", None, "You already have an HWcollab employer account", "Sign in"),
        ("password_reset", ACCOUNT_URL, "Reset your HWcollab employer password", "30 minutes"),
        (
            "email_change_confirm",
            ACCOUNT_URL,
            "Confirm your new HWcollab contact email",
            "24 hours",
        ),
        ("email_change_notice", None, "Your HWcollab contact email is being changed", "change"),
    ],
)
def test_employer_account_emails(
    composer: EmailComposer, kind: AccountEmailKind, url: str | None, subject: str, says: str
) -> None:
    lives = {"verify_signup": 48 * 60, "password_reset": 30, "email_change_confirm": 24 * 60}
    expires_at = NOW + timedelta(minutes=lives[kind]) if kind in lives else None
    sent = composer.employer_account(
        request_id="event-1",
        employer_id="e-1",
        email="hr@cmcp.example",
        organization_name="Central Mass Care Partners",
        kind=kind,
        url=url,
        expires_at=expires_at,
    )
    message = parse(sent)
    assert (sent.kind, sent.to, message["Subject"]) == (
        f"employer_{kind}",
        "hr@cmcp.example",
        subject,
    )
    assert message["List-Unsubscribe"] is None  # transactional
    assert sent.subscriber_id == "employer:e-1"  # no subscriber's id: bounces touch nobody
    assert re.fullmatch(rf"<employer_{kind}\.[0-9a-f]{{32}}@hwcollab\.example>", sent.message_id)
    text, html = bodies(message)
    for body in (text, html):
        assert "Central Mass Care Partners" in body
        assert says in body
        assert "100 Main Street" in body
    if url is None:
        assert "http://jobs.example:8002/login" in text
        assert 'href="http://jobs.example:8002/forgot-password"' in html
    else:
        assert url in text
        assert f'href="{url}"' in html
    again = composer.employer_account(
        request_id="event-1",
        employer_id="e-1",
        email="hr@cmcp.example",
        organization_name="Central Mass Care Partners",
        kind=kind,
        url=url,
        expires_at=expires_at,
    )
    assert again.message_id == sent.message_id  # a redelivered request is the same email


def test_bulletin_markdown_is_rendered_and_sanitized(composer: EmailComposer) -> None:
    markdown = (
        "# Care management careers\n\nRead **this** [guide](https://hwcollab.example/guide).\n\n"
        "<script>alert(1)</script>\n\n[bad](javascript:alert(1))"
    )
    sent = composer.bulletin(
        recipient(), bulletin_id="b-7", subject="Career news", body_markdown=markdown
    )
    message = parse(sent)
    assert message["List-Unsubscribe"] is not None
    text, html = bodies(message)
    assert "<h1>Care management careers</h1>" in html
    assert "<strong>this</strong>" in html
    assert '<a href="https://hwcollab.example/guide"' in html
    assert "<script>" not in html
    assert 'href="javascript:' not in html
    assert "# Care management careers" in text
    assert "Unsubscribe: http://subs.example:8001/unsubscribe?token=UNSUB" in text


@settings(max_examples=200, deadline=None)
@given(subject=st.text(max_size=300), first_name=st.text(max_size=100))
def test_any_subject_round_trips_without_adding_headers(subject: str, first_name: str) -> None:
    composer = EmailComposer(
        mail_from="HWcollab Opportunities <opportunities@hwcollab.example>",
        postal_address="100 Main Street, Worcester, MA 01608",
        subscriber_public_url="http://subs.example:8001",
        employer_public_url="http://jobs.example:8002",
        clock=FixedClock(NOW),
    )
    sent = composer.bulletin(
        recipient(first_name=first_name), bulletin_id="b", subject=subject, body_markdown="Hi"
    )
    head = sent.data.partition(b"\r\n\r\n")[0]
    assert head.isascii()
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    message = parse(sent)
    assert message["Subject"] == clean_header_text(subject)
    assert sorted(message.keys()) == sorted(
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "List-Id",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
            "X-HWcollab-Kind",
            "MIME-Version",
            "Content-Type",
        ]
    )
