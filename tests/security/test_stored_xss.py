"""Stored XSS: hostile text in every field an employer supplies renders as text — in the
employer's pages (directory, profile page, job board, opening page, dashboard and its forms) and
in the notifier's emails — never as a tag, an attribute or a ``javascript:`` link."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from hwcollab_common.clock import FixedClock
from hwcollab_notifier.mail.composer import EmailComposer, OutgoingEmail
from hwcollab_notifier.mail.views import OpeningView, Recipient
from hwcollab_schemas.events import OpeningDetails

from .support import PASSWORD, Service, sign_in_browser, signed_up, unique

HOSTILE = (
    """"'><script>alert(1)</script><img src=x onerror=alert(2)>"""
    "<a href=javascript:alert(3)>x</a>{{7*7}}"
)
HOSTILE_URL = "https://evil.example/\"'><script>alert(4)</script>"
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


class Markup(HTMLParser):
    """Tags, attributes and text of a document, as a browser's parser sees them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, tuple(sorted(name for name, _ in attrs))))
        self.attributes += [(tag, name, value or "") for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def injected(self) -> list[str]:
        """What only an injection would put here."""
        found = [f"<{tag}>" for tag, _ in self.tags if tag in {"script", "img", "iframe"}]
        found = [f for f in found if f != "<script>"]
        for tag, name, value in self.attributes:
            if name.startswith("on"):
                found.append(f"<{tag} {name}>")
            if name in {"href", "src", "action"} and value.strip().lower().startswith(
                "javascript:"
            ):
                found.append(f"<{tag} {name}={value}>")
            if tag == "script" and name == "src" and not value.startswith("/assets/"):
                found.append(f"<script {name}={value}>")
        scripts = [t for t, _ in self.tags if t == "script"]
        src_scripts = [a for a in self.attributes if a[0] == "script" and a[1] == "src"]
        # JSON-LD (schema.org data on opening pages) is data, never run; hostile text inside it
        # is escaped so that it cannot end the element (a second <script> would show here).
        data_blocks = [
            a
            for a in self.attributes
            if a[0] == "script" and a[1:] == ("type", "application/ld+json")
        ]
        if len(scripts) != len(src_scripts) + len(data_blocks):
            found.append("<script> without src")
        return found

    def shows(self, value: str) -> bool:
        """The value is on the page as text (or as an attribute's whole value)."""
        text = "".join(self.text)
        return value in text or any(v == value for _, _, v in self.attributes)


# --- employer pages --------------------------------------------------------------------------


@pytest.mark.integration
async def test_employer_pages_render_hostile_fields_as_text(employer: Service) -> None:
    marker = unique("xss").replace("-", "")
    contact = f"{marker}@security.example"
    organization = f"{marker} {HOSTILE}"[:200]
    profile = {
        "organization_name": organization,
        "contact_email": contact,
        "password": PASSWORD,
        "website": HOSTILE_URL,
        "description": f"{marker}\n{HOSTILE}\n{HOSTILE}",
        "phone": "508-555-0100",
        "address": {"street": HOSTILE, "city": HOSTILE[:100], "state": "MA", "zip": "01608"},
        "settings": ["medical"],
    }
    opening_fields: dict[str, Any] = {
        "title": f"{marker} {HOSTILE}"[:120],
        "role": "care_coordinator",
        "setting": "medical",
        "required_credentials": ["rn"],
        "employment_type": "full_time",
        "zip": "01608",
        "pay_min": 30,
        "pay_max": 40,
        "description": f"{HOSTILE}\n\n{HOSTILE}",
        "apply_url": HOSTILE_URL,
    }
    async with employer.client() as anonymous:
        refused = await anonymous.post(
            "/api/employers",
            json=profile | {"contact_email": f"js{contact}", "website": "javascript:alert(1)"},
        )
        assert refused.status_code == 422  # a javascript: URL is never stored
        employer_id = await signed_up(employer, anonymous, profile)
        issued = await anonymous.post(
            "/api/auth/token", json={"email": contact, "password": PASSWORD}
        )
        bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        posted = await anonymous.post("/api/openings", json=opening_fields, headers=bearer)
        assert posted.status_code == 201, posted.text
        opening_id = posted.json()["opening_id"]
        refused = await anonymous.post(
            "/api/openings",
            json=opening_fields | {"apply_url": "javascript:alert(1)"},
            headers=bearer,
        )
        assert refused.status_code == 422

        browser = employer.client()
        assert (await sign_in_browser(browser, contact)).status_code == 303
        pages: dict[str, tuple[httpx.AsyncClient, list[str]]] = {
            f"/?q={marker}": (anonymous, [organization]),
            f"/employers/{employer_id}": (anonymous, [organization, HOSTILE_URL, HOSTILE]),
            f"/openings?q={marker}": (anonymous, [opening_fields["title"], organization]),
            f"/openings/{opening_id}": (
                anonymous,
                [opening_fields["title"], organization, HOSTILE_URL, HOSTILE],
            ),
            "/dashboard": (browser, [opening_fields["title"]]),
            "/dashboard/profile": (browser, [organization, HOSTILE_URL, HOSTILE]),
            f"/dashboard/openings/{opening_id}/edit": (
                browser,
                [opening_fields["title"], HOSTILE_URL, opening_fields["description"]],
            ),
        }
        try:
            for url, (client, shown) in pages.items():
                answer = await client.get(url)
                assert answer.status_code == 200, (url, answer.text[:300])
                page = Markup(answer.text)
                assert not page.injected(), (url, page.injected())
                for value in shown:
                    assert page.shows(value), (url, value)
                assert "<script>alert" not in answer.text, url
        finally:
            await browser.aclose()


# --- email -----------------------------------------------------------------------------------


def composer() -> EmailComposer:
    return EmailComposer(
        mail_from="HWcollab Opportunities <opportunities@hwcollab.example>",
        postal_address="100 Main Street, Worcester, MA 01608",
        subscriber_public_url="http://subs.example:8001",
        employer_public_url="http://jobs.example:8002",
        clock=FixedClock(NOW),
    )


def details(text: str, *, apply_url: str) -> OpeningDetails:
    return OpeningDetails(
        opening_id="op-1",
        employer_id="emp-1",
        version=1,
        organization_name=f"Org {text}"[:200],
        employer_approved=True,
        title=f"Title {text}"[:120],
        role="care_coordinator",
        setting="medical",
        required_credentials=("rn",),
        employment_type="full_time",
        zip="01608",
        city=f"City {text}",
        state="MA",
        lat=42.26,
        lon=-71.80,
        pay_min=30,
        pay_max=40,
        description=f"Description {text}",
        apply_url=apply_url,
        posted_at=NOW,
        expires_at=NOW + timedelta(days=30),
    )


def view(text: str, *, apply_url: str = "https://jobs.example.org/apply/1") -> OpeningView:
    return OpeningView.from_details(
        details(text, apply_url=apply_url),
        distance_miles=3.0,
        employer_public_url="http://jobs.example:8002",
        subscriber_zip="01608",
        subscriber_credentials=("rn",),
    )


def recipient(first_name: str) -> Recipient:
    return Recipient(
        subscriber_id="sub-1",
        email="pat@example.org",
        first_name=first_name,
        manage_url="http://subs.example:8001/preferences?token=M",
        unsubscribe_url="http://subs.example:8001/unsubscribe?token=U",
        pause_url="http://subs.example:8001/pause?token=M",
    )


def every_email(text: str, opening: OpeningView) -> dict[str, OutgoingEmail]:
    mail = composer()
    who = recipient(f"Pat {text}")
    return {
        "immediate": mail.immediate(who, opening),
        "digest": mail.digest(
            who,
            [opening],
            total=1,
            see_all_url="http://jobs.example:8002/openings",
            period="daily",
            digest_key="d1",
        ),
        "welcome": mail.welcome(
            who, [opening], total=1, see_all_url="http://jobs.example:8002/openings"
        ),
        "confirmation": mail.confirmation(
            request_id="confirmation-request",
            subscriber_id="sub-1",
            email="pat@example.org",
            first_name=f"Pat {text}",
            confirm_url="http://subs.example:8001/confirm?token=C",
        ),
        "manage link": mail.manage_link(
            request_id="manage_link-request",
            subscriber_id="sub-1",
            email="pat@example.org",
            first_name=f"Pat {text}",
            manage_url="http://subs.example:8001/preferences?token=M",
            already_subscribed=True,
        ),
        "bulletin": mail.bulletin(
            who, bulletin_id="b1", subject=f"News {text}", body_markdown=f"Hello {text}"
        ),
        "still interested": mail.still_interested(
            request_id="still_interested-request",
            subscriber_id="sub-1",
            email="pat@example.org",
            first_name=f"Pat {text}",
            manage_url="http://subs.example:8001/preferences?token=M",
            keep_url="http://subs.example:8001/keep?token=K",
            pause_after=None,
        ),
    }


def html_of(sent: OutgoingEmail) -> str:
    message = email.message_from_bytes(sent.data, policy=default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    html = part.get_content()
    assert isinstance(html, str)
    return html


def test_emails_render_hostile_openings_as_text() -> None:
    """The same tags and attributes as an email of harmless values: nothing was injected."""
    benign = every_email("plain", view("plain"))
    hostile = every_email(HOSTILE, view(HOSTILE, apply_url=HOSTILE_URL))
    for kind, sent in hostile.items():
        html = html_of(sent)
        markup, reference = Markup(html), Markup(html_of(benign[kind]))
        assert markup.tags == reference.tags, kind
        assert not markup.injected(), (kind, markup.injected())
        assert "<script>alert" not in html, kind
        if kind in ("immediate", "digest", "welcome"):
            assert markup.shows(f"Title {HOSTILE}"), kind
            assert ("a", "href", HOSTILE_URL) in markup.attributes, kind  # quoted, not broken out


def test_a_javascript_apply_link_is_not_made_a_link() -> None:
    """Openings are validated at the source (http/https only), and the email does not trust it:
    a ``javascript:`` apply URL that got this far is shown as text, never as a link."""
    opening = view("plain")
    hostile = OpeningView(
        **{
            **{f: getattr(opening, f) for f in OpeningView.__dataclass_fields__},
            "apply_url": "javascript:alert(1)",
        }
    )
    for kind, sent in every_email("plain", hostile).items():
        markup = Markup(html_of(sent))
        assert not markup.injected(), (kind, markup.injected())
