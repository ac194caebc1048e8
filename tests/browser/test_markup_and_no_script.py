"""Employer text with markup is shown as text on every page and in the email; the core flows
work with JavaScript turned off."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from .mail import Inbox
from .pages import Camera, Visitors
from .stack import Stack, subscribe
from .support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]


PORTLAND_ME = "04101"
HOSTILE_TITLE = "Care Manager <script>alert(1)</script> \"Lead\" & 'Senior'"
HOSTILE_ORG = 'O\'Brien & "Partners" <script>alert(2)</script>'
HOSTILE_TEXT = (
    "We say \"hello\" & 'welcome'.\n\n<img src=x onerror=alert(3)><script>alert(4)</script>"
)


def assert_text_not_markup(page: Page) -> None:
    scripts = page.locator("script")
    for index in range(scripts.count()):
        script = scripts.nth(index)
        text = script.text_content() or ""
        if script.get_attribute("type") == "application/ld+json":
            # schema.org data about the opening: the hostile text is in it as data, escaped so
            # that it cannot end the element, and it is never run.
            assert "<" not in text, text
            json.loads(text)
        else:
            assert "alert" not in text
    expect(page.locator("img[src=x]")).to_have_count(0)


def test_markup_in_employer_text_is_shown_as_text_everywhere(
    stack: Stack, inbox: Inbox, page: Page, camera: Camera
) -> None:
    reader = stack.address("sam.portland")
    subscribe(stack, inbox, reader, roles=["care_management"], zip=PORTLAND_ME, radius_miles=25)
    token = stack.register_employer(
        name=HOSTILE_ORG,
        contact=stack.address("hr.obrien"),
        zip_code=PORTLAND_ME,
        city="Portland",
        state="ME",
        description=HOSTILE_TEXT,
    )
    opening = stack.post_opening(
        token,
        title=HOSTILE_TITLE,
        role="care_manager",
        zip=PORTLAND_ME,
        description=HOSTILE_TEXT,
    )
    opening_id = opening["opening_id"]

    page.goto(f"{stack.employer_url}/openings?zip={PORTLAND_ME}")
    expect(page.get_by_role("link", name=HOSTILE_TITLE)).to_be_visible()
    assert_text_not_markup(page)
    camera.shoot(page, "job-board")

    page.goto(f"{stack.employer_url}/openings/{opening_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(HOSTILE_TITLE)
    expect(page.get_by_text("<img src=x onerror=alert(3)>", exact=False)).to_be_visible()
    assert_text_not_markup(page)
    camera.shoot(page, "opening")

    page.get_by_role("link", name=HOSTILE_ORG).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(HOSTILE_ORG)
    expect(page.get_by_role("link", name=HOSTILE_TITLE)).to_be_visible()
    assert_text_not_markup(page)
    camera.shoot(page, "employer")

    page.goto(f"{stack.employer_url}/?zip={PORTLAND_ME}")
    expect(page.get_by_role("link", name=HOSTILE_ORG)).to_be_visible()
    assert_text_not_markup(page)
    camera.shoot(page, "directory")

    # The organization's own dashboard shows it as text too.
    page.goto(stack.employer_url + "/login")
    page.get_by_label("Email").fill(stack.address("hr.obrien"))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(HOSTILE_ORG)
    expect(page.get_by_role("link", name=HOSTILE_TITLE, exact=True)).to_be_visible()
    assert_text_not_markup(page)
    camera.shoot(page, "dashboard")

    mail = inbox.wait(
        reader, lambda m: opening_id in m.opening_ids, what="the email about the opening"
    )
    assert HOSTILE_TITLE in mail.text
    assert "<script>" not in mail.html
    assert "onerror=alert" not in mail.html or "&lt;img" in mail.html
    camera.show_mail(page, mail, "email")
    expect(page.get_by_text(HOSTILE_TITLE).first).to_be_visible()
    assert_text_not_markup(page)


def test_nojs_core_flows_work_without_javascript(
    stack: Stack, inbox: Inbox, visitors: Visitors
) -> None:
    """Sign up for alerts, confirm, and post an opening with JavaScript turned off."""
    page = visitors.new_page(javascript=False)
    reader = stack.address("nojs.hartford")
    page.goto(stack.subscriber_url + "/")
    page.get_by_label("Email address").fill(reader)
    page.locator("#field-roles-care_coordination").check()
    page.get_by_label("ZIP code").fill("06103")
    page.get_by_label("Distance (miles)").fill("10")
    page.get_by_role("button", name="Sign up for job alerts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")
    confirmation = inbox.wait(reader, lambda m: "/confirm" in m.text, what="confirmation")
    page.goto(confirmation.link("/confirm"))
    page.get_by_role("button", name="Yes, send me job alerts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are subscribed")

    contact = stack.address("hr.nojs")
    stack.register_employer(
        name="No Script Health", contact=contact, zip_code="06103", city="Hartford", state="CT"
    )
    page.goto(stack.employer_url + "/login")
    page.get_by_label("Email").fill(contact)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Post an opening").click()
    page.get_by_label("Job title").fill("Care Coordinator (no script)")
    page.locator("#field-role").select_option("care_coordinator")
    page.locator("#field-setting").select_option("social_service")
    page.locator("#field-employment_type").select_option("part_time")
    page.get_by_label("ZIP code of the workplace").fill("06103")
    page.get_by_label("Apply link").fill("https://careers.example/apply")
    page.get_by_role("button", name="Post opening").click()
    expect(page).to_have_url(re.compile(r"/dashboard\?posted="))
    opening_id = page.url.rsplit("posted=", 1)[1]
    expect(page.locator(f"#opening-{opening_id}")).to_contain_text("Care Coordinator (no script)")
    page.locator(f"#opening-{opening_id}").get_by_role("button", name=re.compile("Close")).click()
    expect(page.locator(f"#opening-{opening_id}")).to_contain_text("Closed")
