"""Cross-service contracts seen through the JSON APIs and the inbox, on the journeys' stack: the
welcome email after confirming, and a hard bounce that stops all mail to an address."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from hwcollab_common.tokens import LinkSigner, Purpose
from hwcollab_testing.smtp import SmtpSink
from hwcollab_testing.waiting import eventually_sync

from .mail import Inbox
from .stack import Stack, subscribe

# Marked ``browser`` as well: these run with the journeys, on their stack (browser tests run last).
pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

ALBANY = "12207"
SYRACUSE = "13202"


def confirm_over_api(stack: Stack, inbox: Inbox, address: str) -> str:
    """Confirm with the emailed token over the JSON API; answers the subscriber id."""
    mail = inbox.wait(address, lambda m: "/confirm" in m.text, what="confirmation email")
    token = parse_qs(urlsplit(mail.link("/confirm")).query)["token"][0]
    with stack.notifier_learns("subscriber.registered"):
        answer = httpx.post(
            f"{stack.subscriber_url}/api/subscribers/confirm", json={"token": token}, timeout=20
        )
        assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "active"
    subscriber_id: str = answer.json()["subscriber_id"]
    return subscriber_id


def test_welcome_email_lists_the_openings_that_already_match(stack: Stack, inbox: Inbox) -> None:
    token = stack.register_employer(
        name="Capital District Care Coordination",
        contact=stack.address("hr.cdcc"),
        zip_code=ALBANY,
        city="Albany",
        state="NY",
    )
    coordinator = {"role": "care_coordinator", "setting": "social_service", "zip": ALBANY}
    first = stack.post_opening(token, title="Care Coordinator — Albany", **coordinator)
    closed = stack.post_opening(token, title="Care Coordinator — Troy", **coordinator)
    with stack.notifier_learns("opening.closed"):
        stack.close_opening(token, closed["opening_id"])

    address = stack.address("kim.albany")
    stack.sign_up(address, roles=["care_coordination"], zip=ALBANY, radius_miles=10)
    confirm_over_api(stack, inbox, address)
    welcome = inbox.wait(address, lambda m: m.kind == "welcome", what="the welcome email")
    assert welcome.opening_ids == [first["opening_id"]]
    assert first["title"] in welcome.text
    assert closed["title"] not in welcome.text
    assert welcome.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"


def test_a_hard_bounce_marks_the_subscriber_and_stops_mail(
    stack: Stack, inbox: Inbox, smtp_sink: SmtpSink
) -> None:
    bouncing = stack.address("gone.syracuse")
    control = stack.address("control.syracuse")
    wishes = {"roles": ["care_management"], "zip": SYRACUSE, "radius_miles": 20}
    stack.sign_up(bouncing, **wishes)
    subscriber_id = confirm_over_api(stack, inbox, bouncing)
    inbox.wait(bouncing, lambda m: m.kind == "welcome", what="the welcome email")
    subscribe(stack, inbox, control, **wishes)
    token = stack.register_employer(
        name="Onondaga Care Management",
        contact=stack.address("hr.ocm"),
        zip_code=SYRACUSE,
        city="Syracuse",
        state="NY",
    )
    smtp_sink.fail_permanently(bouncing)
    manage = LinkSigner(stack.env["LINK_SIGNING_KEY"]).sign(Purpose.MANAGE, subscriber_id)

    def status() -> str:
        answer = httpx.get(
            f"{stack.subscriber_url}/api/preferences", params={"token": manage}, timeout=20
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["status"])

    first = stack.post_opening(token, title="Care Manager", role="care_manager", zip=SYRACUSE)
    inbox.wait(control, lambda m: first["opening_id"] in m.opening_ids, what="control")
    eventually_sync(lambda: status() == "bounced", timeout=60, what="the subscriber is bounced")

    # The mailbox would accept mail again, but the address stays suppressed: nothing is sent.
    smtp_sink.permanent_failures.discard(bouncing.lower())
    second = stack.post_opening(token, title="Case Manager", role="case_manager", zip=SYRACUSE)
    inbox.wait(control, lambda m: second["opening_id"] in m.opening_ids, what="control")
    assert not inbox.about(bouncing, second["opening_id"])
