"""Engagement and sunsetting, in Cheyenne, WY (no other journey has subscribers in Wyoming): a
reader opens a job from an alert through the click redirect and sees it on their preferences
page; months later (the subscriber service's sunset run, at an instant the journey chooses) both
readers are asked "still interested?"; the one who keeps their alerts goes on getting openings,
the one who stays silent is paused, sees why on their page, and resumes.

The sunset run at a chosen instant acts on every subscriber of the stack, as the digest run
does: journeys that ran before this one are done with theirs, later ones sign up afresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from .mail import Inbox
from .pages import Camera
from .stack import Stack, subscribe

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

CHEYENNE = "82001"
NORTH_CHEYENNE = "82009"
WISHES: dict[str, Any] = {"roles": ["care_management"], "zip": CHEYENNE, "radius_miles": 10}
CARE_MANAGER = {"role": "care_manager", "setting": "social_service"}
APPLY = "https://careers.frontier-care.example/apply/cm-1"


def run_sunset(stack: Stack, as_of: datetime) -> dict[str, Any]:
    answer = httpx.post(
        f"{stack.subscriber_url}/api/admin/sunset/run",
        params={"as_of": as_of.isoformat()},
        headers={"Authorization": f"Bearer {stack.admin_token}"},
        timeout=120.0,
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_engagement_is_recorded_and_only_the_silent_are_paused(
    stack: Stack, inbox: Inbox, page: Page, camera: Camera
) -> None:
    reader = stack.address("casey.cheyenne")
    silent = stack.address("quiet.cheyenne")
    subscribe(stack, inbox, reader, first_name="Casey", **WISHES)
    subscribe(stack, inbox, silent, first_name="Robin", **WISHES)
    token = stack.register_employer(
        name="Frontier Care Partners",
        contact=stack.address("hr.frontier"),
        zip_code=CHEYENNE,
        city="Cheyenne",
        state="WY",
    )
    opening = stack.post_opening(
        token, title="Care Manager — Cheyenne", zip=NORTH_CHEYENNE, apply_url=APPLY, **CARE_MANAGER
    )
    opening_id = opening["opening_id"]
    alert = inbox.wait(reader, lambda m: opening_id in m.opening_ids, what="the alert")
    inbox.wait(silent, lambda m: opening_id in m.opening_ids, what="the silent reader's alert")

    # Every link to the opening goes through the subscriber service's redirect.
    details, apply = alert.labelled("Details"), alert.labelled("Apply")
    for link in (details, apply):
        assert link.startswith(f"{stack.subscriber_url}/r?token="), link
    assert f"/openings/{opening_id}" not in alert.text
    assert APPLY not in alert.text
    assert alert.header("List-Unsubscribe").startswith(f"<{stack.subscriber_url}/unsubscribe?")

    preferences = alert.link("/preferences")
    page.goto(preferences)
    expect(page.locator("#engagement")).to_have_text(
        "You have not opened a job from our emails yet."
    )

    # The reader follows the link and lands on the opening.
    page.goto(details)
    expect(page).to_have_url(f"{stack.employer_url}/openings/{opening_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Care Manager — Cheyenne")
    # The apply link leads to the employer's own site (no internet here: read the redirect).
    answer = httpx.get(apply, follow_redirects=False, timeout=20.0)
    assert (answer.status_code, answer.headers["location"]) == (303, APPLY)

    today = datetime.now(UTC)
    page.goto(preferences)
    expect(page.locator("#engagement")).to_have_text(
        f"Last opened a job from our email: {today:%B} {today.day}, {today.year}"
    )
    camera.shoot(page, "preferences-engagement")

    # Six months on, both are asked once whether to keep their alerts.
    asked_at = today + timedelta(days=181)
    first = run_sunset(stack, asked_at)
    assert first["noticed"] >= 2, first
    ask = inbox.wait(reader, lambda m: m.kind == "still_interested", what="still interested?")
    inbox.wait(silent, lambda m: m.kind == "still_interested", what="the silent reader's ask")
    assert ask.subject == "Do you still want HWcollab Opportunities job alerts?"
    assert "Hi Casey," in ask.text
    run_sunset(stack, asked_at + timedelta(hours=1))  # one email only
    for who in (reader, silent):
        assert len([m for m in inbox.to(who) if m.kind == "still_interested"]) == 1

    # The reader keeps them: the link shows a button, the button keeps.
    page.goto(ask.labelled("Keep me subscribed"))
    camera.shoot(page, "keep")
    page.get_by_role("button", name="Keep me subscribed").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are still subscribed")

    # Two weeks later the silent one is paused (and the notifier learns it); the reader is not.
    with stack.notifier_learns("subscriber.updated"):
        paused = run_sunset(stack, asked_at + timedelta(days=14))
    assert paused["paused"] >= 1, paused
    page.goto(inbox.to(silent)[-1].link("/preferences"))
    notice = page.locator("#inactive-pause")
    expect(notice).to_contain_text("paused because you had not opened our emails in a while")
    camera.shoot(page, "paused-inactive")
    page.goto(preferences)
    expect(page.locator("#inactive-pause")).to_have_count(0)

    later = stack.post_opening(
        token, title="Senior Care Manager — Cheyenne", zip=CHEYENNE, **CARE_MANAGER
    )
    inbox.wait(reader, lambda m: later["opening_id"] in m.opening_ids, what="the next alert")
    assert not inbox.about(silent, later["opening_id"]), "a paused reader was emailed"

    # The paused reader resumes from their page.
    page.goto(inbox.to(silent)[-1].link("/preferences"))
    with stack.notifier_learns("subscriber.updated"):
        page.locator("#inactive-pause").get_by_role("button", name="Resume my alerts").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Your alerts are back on")
