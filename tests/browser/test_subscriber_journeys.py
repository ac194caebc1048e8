"""Journeys of a job seeker: sign up and confirm (1); change the radius, then unsubscribe with one
click from the mail client (5)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from .mail import Inbox, Mail
from .pages import Camera, focus_indicator
from .stack import Stack, subscribe
from .support import miles

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]


def fill_signup(
    page: Page,
    *,
    email: str,
    first_name: str,
    roles: list[str],
    credentials: list[str],
    zip_code: str,
    radius: int,
    frequency: str,
) -> None:
    page.get_by_label("Email address").fill(email)
    page.get_by_label("First name (optional)").fill(first_name)
    for code in roles:
        page.locator(f"#field-roles-{code}").check()
    for code in credentials:
        page.locator(f"#field-credentials-{code}").check()
    page.get_by_label("ZIP code").fill(zip_code)
    page.get_by_label("Distance (miles)").fill(str(radius))
    page.locator(f"#field-frequency-{frequency}").check()


def test_journey1_care_manager_signs_up_and_confirms(
    stack: Stack, inbox: Inbox, page: Page, camera: Camera
) -> None:
    address = stack.address("maria.worcester")
    page.goto(stack.subscriber_url + "/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Stay informed")
    expect(page.locator("#field-zip")).to_have_value("")
    expect(page.locator("#field-radius_miles")).to_have_value("25")
    camera.shoot(page, "signup", phone=True)
    # Keyboard users: the first Tab reaches the skip link, and focus is always visible.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    for control in (
        page.locator("#field-email"),
        page.locator("#field-roles-care_management"),
        page.get_by_role("button", name="Sign up for job alerts"),
    ):
        assert focus_indicator(control), f"no visible focus on {control}"

    # A mistake first: the error is shown next to the field, and what was typed is kept.
    fill_signup(
        page,
        email=address,
        first_name="Maria",
        roles=["care_management"],
        credentials=["rn"],
        zip_code="0160",
        radius=30,
        frequency="immediate",
    )
    page.get_by_role("button", name="Sign up for job alerts").click()
    zip_field = page.locator("#field-zip")
    expect(zip_field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#field-zip-error")).to_be_visible()
    assert "field-zip-error" in (zip_field.get_attribute("aria-describedby") or "")
    expect(page.locator("#field-email")).to_have_value(address)
    expect(page.locator("#field-roles-care_management")).to_be_checked()
    camera.shoot(page, "signup-error")

    page.get_by_label("ZIP code").fill("01608")
    page.get_by_role("button", name="Sign up for job alerts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")
    camera.shoot(page, "check-inbox")

    confirmation = inbox.wait(address, lambda m: "/confirm" in m.text, what="confirmation email")
    assert "Maria" in confirmation.text
    page.goto(confirmation.link("/confirm"))
    camera.shoot(page, "confirm")
    page.get_by_role("button", name="Yes, send me job alerts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are subscribed")
    camera.shoot(page, "confirmed")

    page.get_by_role("link", name="Change your preferences").click()
    expect(page.locator("#field-radius_miles")).to_have_value("30")
    expect(page.locator("#field-zip")).to_have_value("01608")
    expect(page.locator("#field-roles-care_management")).to_be_checked()
    expect(page.locator("#field-credentials-rn")).to_be_checked()
    expect(page.locator("#field-frequency-immediate")).to_be_checked()
    camera.shoot(page, "preferences", phone=True)


# Journey 5 happens around Hartford, CT, with care-coordination roles: no other journey's
# openings reach these subscribers.
HOME = "06103"  # Hartford, CT
NEAR = "06105"  # Hartford (West End)
FARTHER = "06457"  # Middletown, CT


def wait_for_opening(inbox: Inbox, address: str, opening_id: str, *, what: str) -> Mail:
    return inbox.wait(address, lambda m: opening_id in m.opening_ids, what=what)


def test_journey5_radius_change_then_one_click_unsubscribe(
    stack: Stack, inbox: Inbox, page: Page, camera: Camera
) -> None:
    assert miles(HOME, NEAR) < 10 < miles(HOME, FARTHER) < 25
    reader = stack.address("jordan.hartford")
    control = stack.address("control.hartford")  # the same wishes with 25 miles from the start
    preferences = {"roles": ["care_coordination"], "zip": HOME, "first_name": "Jordan"}
    subscribe(stack, inbox, reader, radius_miles=10, **preferences)
    subscribe(stack, inbox, control, radius_miles=25, **preferences)
    token = stack.register_employer(
        name="Capitol Region Care Partners",
        contact=stack.address("hr.crcp"),
        zip_code=HOME,
        city="Hartford",
        state="CT",
    )
    coordinator = {"role": "care_coordinator", "setting": "social_service"}

    # 10 miles: Middletown (about 15 mi) does not reach the reader, Hartford does.
    far = stack.post_opening(
        token, title="Care Coordinator — Middletown", zip=FARTHER, **coordinator
    )
    near = stack.post_opening(token, title="Care Coordinator — West End", zip=NEAR, **coordinator)
    wait_for_opening(inbox, control, far["opening_id"], what="the Middletown opening (control)")
    mail = wait_for_opening(inbox, reader, near["opening_id"], what="the West End opening")
    assert not inbox.about(reader, far["opening_id"]), "an opening beyond 10 miles was emailed"

    page.goto(mail.link("/preferences"))
    camera.shoot(page, "preferences")
    page.get_by_label("Distance (miles)").fill("25")
    with stack.notifier_learns("subscriber.updated"):
        page.get_by_role("button", name="Save preferences").click()
        expect(page.get_by_role("status").filter(has_text="saved")).to_be_visible()
    expect(page.locator("#field-radius_miles")).to_have_value("25")
    camera.shoot(page, "preferences-saved")

    # 25 miles now: the next Middletown opening reaches the reader.
    wider = stack.post_opening(
        token, title="Care Coordinator II — Middletown", zip=FARTHER, **coordinator
    )
    latest = wait_for_opening(inbox, reader, wider["opening_id"], what="Middletown after 25 mi")
    assert latest.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"

    # One-click unsubscribe, as a mail client does it (RFC 8058).
    with stack.notifier_learns("subscriber.unsubscribed"):
        answer = httpx.post(
            latest.unsubscribe_url, data={"List-Unsubscribe": "One-Click"}, timeout=20.0
        )
        assert answer.status_code == 200, answer.text
    before = len(inbox.to(reader))
    after_unsubscribe = stack.post_opening(
        token, title="Senior Care Coordinator", zip=NEAR, **coordinator
    )
    wait_for_opening(
        inbox, control, after_unsubscribe["opening_id"], what="the last opening (control)"
    )
    assert len(inbox.to(reader)) == before, [m.describe() for m in inbox.to(reader)[before:]]

    # The unsubscribe page now says so instead of offering the button again.
    page.goto(latest.unsubscribe_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    expect(page.get_by_role("button", name="Unsubscribe")).to_have_count(0)
    camera.shoot(page, "unsubscribe-page")
