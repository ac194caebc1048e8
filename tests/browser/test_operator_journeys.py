"""Operators at work on the operator page: approve and reject sign-ups, suspend an employer whose
openings are still waiting in a digest (they are dropped, not sent), reinstate it (nobody hears
of an opening twice) and take down one opening."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from pymongo import MongoClient

from hwcollab_testing.smtp import SmtpSink
from hwcollab_testing.waiting import eventually_sync

from .mail import Inbox, Mail
from .pages import Camera, Visitors
from .stack import Stack, subscribe
from .support import MAIL_TIMEOUT, PASSWORD, next_local_time

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

# Wilkes-Barre, PA, with care-coordination roles: no other journey's openings reach here.
WILKES_BARRE = "18701"
HAZLETON = "18201"
WISHES = {"roles": ["care_coordination"], "zip": WILKES_BARRE, "radius_miles": 10}
COORDINATOR = {"role": "care_coordinator", "setting": "social_service", "zip": WILKES_BARRE}


def _awaiting_approval(stack: Stack, name: str) -> str:
    """An employer that signed up while approval was manual (this stack approves at once)."""
    stack.register_employer(
        name=name,
        contact=stack.address(f"hr.{name.split()[0].lower()}"),
        zip_code=WILKES_BARRE,
        city="Wilkes-Barre",
        state="PA",
    )
    with stack.employer_api() as api:
        found = api.get(
            "/api/admin/employers",
            params={"status": "approved", "limit": 500},
            headers={"Authorization": f"Bearer {stack.admin_token}"},
        )
    employer_id: str
    [employer_id] = [
        e["employer_id"] for e in found.json()["results"] if e["organization_name"] == name
    ]
    client: MongoClient[dict[str, Any]] = MongoClient(stack.env["MONGODB_URL"])
    with client:
        employers = client[f"browser_employer_{stack.run_id}"]["employers"]
        employers.update_one({"_id": employer_id}, {"$set": {"status": "pending"}})
    return employer_id


def _sign_in_as_operator(page: Page, stack: Stack) -> None:
    page.goto(stack.employer_url + "/operators")
    page.get_by_label("Operator token").fill(stack.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Operators")


def _done(page: Page, what: str) -> None:
    expect(page.locator("#operator-done")).to_have_text(f"Done: {what}.")


def test_operators_decide_on_employers_and_openings(
    stack: Stack, inbox: Inbox, page: Page, visitors: Visitors, camera: Camera
) -> None:
    now_reader = stack.address("sam.wilkesbarre")
    daily_reader = stack.address("kit.wilkesbarre")
    subscribe(stack, inbox, now_reader, **WISHES)
    subscribe(stack, inbox, daily_reader, frequency="daily", **WISHES)
    contact = stack.address("hr.luzerne")
    token = stack.register_employer(
        name="Luzerne Care Coordination",
        contact=contact,
        zip_code=WILKES_BARRE,
        city="Wilkes-Barre",
        state="PA",
        settings=("social_service",),
    )
    first = stack.post_opening(token, title="Care Coordinator — Wyoming Valley", **COORDINATOR)
    inbox.wait(now_reader, lambda m: first["opening_id"] in m.opening_ids, what="the opening")
    refused_id = _awaiting_approval(stack, "Questionable Staffing LLC")
    welcome_id = _awaiting_approval(stack, "Back Mountain Supports")

    # Sign-ups awaiting approval: one approved, one rejected with a reason.
    with stack.notifier_learns("employer.approved"):
        _sign_in_as_operator(page, stack)
        camera.shoot(page, "operators")
        page.get_by_role("button", name="Approve Back Mountain Supports").click()
        _done(page, "approved")
    expect(page.locator(f"#pending-{welcome_id}")).to_have_count(0)
    refused = page.locator(f"#pending-{refused_id}")
    refused.get_by_label("Reason to Questionable Staffing LLC").fill("Not a care employer.")
    refused.get_by_role("button", name="Reject Questionable Staffing LLC").click()
    _done(page, "rejected")
    expect(page.locator(f"#pending-{refused_id}")).to_have_count(0)

    # The first opening waits in the daily reader's digest; the employer is suspended meanwhile.
    row = page.locator(f"#opening-{first['opening_id']}")
    row.get_by_label("Reason to Luzerne Care Coordination").fill("Openings under review.")
    with stack.notifier_learns("employer.suspended"):
        row.get_by_role("button", name="Suspend Luzerne Care Coordination").click()
        _done(page, "suspended")
    expect(page.locator("#suspended-title + ul")).to_contain_text("Openings under review.")
    assert stack.opening(first["opening_id"]).status_code == 404
    eight = next_local_time(WILKES_BARRE, hour=8, after=datetime.now(UTC))
    stack.run_digests(eight)
    assert [m for m in inbox.to(daily_reader) if m.opening_ids] == []

    # The employer sees why on its dashboard.
    employer_page = visitors.new_page()
    employer_page.goto(stack.employer_url + "/login")
    employer_page.get_by_label("Email").fill(contact)
    employer_page.get_by_label("Password").fill(PASSWORD)
    employer_page.get_by_role("button", name="Sign in").click()
    expect(employer_page.locator("#approval-status")).to_contain_text("Suspended by HWcollab")
    expect(employer_page.locator("#moderation-reason")).to_have_text("Openings under review.")
    camera.shoot(employer_page, "suspended-dashboard")

    # Reinstated: listed again, and nobody hears of the first opening a second time.
    suspended = page.locator("#suspended-title + ul li").filter(has_text="Luzerne Care")
    with stack.notifier_learns("employer.reinstated"):
        suspended.get_by_role("button", name="Reinstate Luzerne Care Coordination").click()
        _done(page, "reinstated")
    assert stack.opening(first["opening_id"]).status_code == 200
    second = stack.post_opening(token, title="Care Coordinator — Back Mountain", **COORDINATOR)
    third = stack.post_opening(token, title="Care Coordinator — Pittston", **COORDINATOR)
    for opening in (second, third):

        def names(mail: Mail, o: dict[str, Any] = opening) -> bool:
            return o["opening_id"] in mail.opening_ids

        inbox.wait(now_reader, names, what="new")
    assert len(inbox.about(now_reader, first["opening_id"])) == 1

    # One opening taken down before the next digest: the digest has the other one only.
    page.reload()
    taken = page.locator(f"#opening-{third['opening_id']}")
    taken.get_by_label("Reason to Care Coordinator — Pittston").fill("Duplicate posting.")
    with stack.notifier_learns("opening.taken_down"):
        taken.get_by_role("button", name="Take down Care Coordinator — Pittston").click()
        _done(page, "taken down")
    expect(page.locator(f"#opening-{third['opening_id']}")).to_contain_text("Taken down")
    assert stack.opening(third["opening_id"]).status_code == 404
    stack.run_digests(eight + timedelta(days=1))
    digest = inbox.wait(daily_reader, lambda m: len(m.opening_ids) > 0, what="the next digest")
    assert digest.opening_ids == [second["opening_id"]]

    employer_page.reload()
    row = employer_page.locator(f"#opening-{third['opening_id']}")
    expect(row).to_contain_text("Taken down by HWcollab")
    expect(row).to_contain_text("Duplicate posting.")
    expect(employer_page.locator("#approval-status")).to_contain_text(re.compile("Listed in"))


def _counter(stack: Stack, name: str, **labels: str) -> float:
    """The notifier's ``name`` counter summed over the series that carry ``labels``."""
    text = httpx.get(f"{stack.notifier_url}/metrics", timeout=10.0).text
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and all(label in line for label in wanted)
    )


def test_a_suspension_drops_the_emails_already_queued(
    stack: Stack, inbox: Inbox, smtp_sink: SmtpSink
) -> None:
    """The mail server is away while an opening's email waits to go; the employer is suspended
    meanwhile: when the server is back, the email is dropped, not sent."""
    reader = stack.address("jo.hazleton")
    subscribe(stack, inbox, reader, roles=["care_coordination"], zip=HAZLETON, radius_miles=5)
    token = stack.register_employer(
        name="Hazleton Care Partners",
        contact=stack.address("hr.hazleton"),
        zip_code=HAZLETON,
        city="Hazleton",
        state="PA",
    )
    coordinator = COORDINATOR | {"zip": HAZLETON}
    admin = {"Authorization": f"Bearer {stack.admin_token}"}
    retried = _counter(stack, "hwcollab_notifier_emails_retried_total", kind="immediate")
    dropped = _counter(
        stack, "hwcollab_notifier_emails_skipped_total", kind="immediate", reason="opening closed"
    )
    smtp_sink.set_busy(True)
    try:
        queued = stack.post_opening(token, title="Care Coordinator — Hazleton", **coordinator)
        eventually_sync(
            lambda: (
                _counter(stack, "hwcollab_notifier_emails_retried_total", kind="immediate")
                > retried
            ),
            timeout=MAIL_TIMEOUT,
            what="the email waiting for the mail server",
        )
        with stack.notifier_learns("employer.suspended"), stack.employer_api() as api:
            employers = api.get("/api/employers/me", headers={"Authorization": f"Bearer {token}"})
            employer_id = employers.json()["employer_id"]
            suspended = api.post(
                f"/api/admin/employers/{employer_id}/suspend",
                json={"reason": "Under review."},
                headers=admin,
            )
            assert suspended.status_code == 200, suspended.text
    finally:
        smtp_sink.set_busy(False)
    eventually_sync(
        lambda: (
            _counter(
                stack,
                "hwcollab_notifier_emails_skipped_total",
                kind="immediate",
                reason="opening closed",
            )
            > dropped
        ),
        timeout=MAIL_TIMEOUT,
        what="the queued email dropped",
    )
    assert inbox.about(reader, queued["opening_id"]) == []
    assert stack.reach(token, queued["opening_id"]) == 0
