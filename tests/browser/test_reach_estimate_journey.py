"""Journey: an employer writing an opening sees its estimated reach change as the form changes
(a script asks a little after each edit), and, without script, by pressing "Check reach"."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .pages import Camera, Visitors
from .stack import Stack
from .support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

FAIRBANKS = "99701"  # no journey has subscribers in Alaska
FEWER = "Fewer than 10 active subscribers would be emailed now."


def _sign_in(page: Page, stack: Stack, contact: str) -> None:
    page.goto(stack.employer_url + "/login")
    page.get_by_label("Email").fill(contact)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard"))


def _fill(page: Page) -> None:
    page.get_by_label("Job title").fill("Care Coordinator")
    page.locator("#field-role").select_option("care_coordinator")
    page.locator("#field-setting").select_option("social_service")
    page.locator("#field-employment_type").select_option("part_time")
    page.get_by_label("ZIP code of the workplace").fill(FAIRBANKS)


def test_the_estimate_follows_the_form_with_and_without_script(
    stack: Stack, visitors: Visitors, camera: Camera
) -> None:
    contact = stack.address("hr.fairbanks")
    stack.register_employer(
        name="Interior Alaska Care",
        contact=contact,
        zip_code=FAIRBANKS,
        city="Fairbanks",
        state="AK",
    )
    page = visitors.new_page()
    _sign_in(page, stack, contact)
    page.goto(stack.employer_url + "/dashboard/openings/new")
    estimate = page.locator("#reach-text")
    expect(estimate).to_contain_text("Choose the role")
    _fill(page)
    expect(estimate).to_have_text(FEWER)  # nobody pressed anything
    camera.shoot(page, "estimate")

    plain = visitors.new_page(javascript=False)
    _sign_in(plain, stack, contact)
    plain.goto(stack.employer_url + "/dashboard/openings/new")
    _fill(plain)
    plain.get_by_role("button", name="Check reach").click()
    expect(plain.locator("#reach-text")).to_have_text(FEWER)
    expect(plain.get_by_label("ZIP code of the workplace")).to_have_value(FAIRBANKS)
    assert visitors.dialogs == []
