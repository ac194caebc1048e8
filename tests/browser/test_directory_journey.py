"""Journey 6: a visitor finds local employers by ZIP, opens one and sees its open openings."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .pages import Camera
from .stack import Stack

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]


BURLINGTON = "05401"
SOUTH_BURLINGTON = "05403"


def test_journey6_visitor_finds_a_local_employer_and_its_openings(
    stack: Stack, page: Page, camera: Camera
) -> None:
    champlain = stack.register_employer(
        name="Champlain Valley Developmental Services",
        contact=stack.address("hr.cvds"),
        zip_code=SOUTH_BURLINGTON,
        city="South Burlington",
        state="VT",
        settings=("social_service",),
        description="Residential and community supports for adults with disabilities.",
    )
    stack.register_employer(
        name="Lake Region Community Health",
        contact=stack.address("hr.lrch"),
        zip_code=BURLINGTON,
        city="Burlington",
        state="VT",
        description="A community health center on the shores of Lake Champlain.",
    )
    dsp = {"role": "direct_support_professional", "setting": "social_service"}
    open_one = stack.post_opening(
        champlain, title="Direct Support Professional — Shared Living", zip=SOUTH_BURLINGTON, **dsp
    )
    closed_one = stack.post_opening(
        champlain, title="Overnight Awake DSP", zip=SOUTH_BURLINGTON, **dsp
    )
    stack.close_opening(champlain, closed_one["opening_id"])

    page.goto(stack.employer_url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Find a Local Employer")
    camera.shoot(page, "directory", phone=True)
    page.get_by_label("ZIP code").fill(BURLINGTON)
    page.get_by_label("Within").select_option("25")
    page.get_by_role("button", name="Search").click()
    results = page.locator("article.employer-card")
    expect(results).to_have_count(2)
    # Nearest first: Burlington itself, then South Burlington.
    expect(results.nth(0)).to_contain_text("Lake Region Community Health")
    expect(results.nth(1)).to_contain_text("Champlain Valley Developmental Services")
    expect(results.nth(1).locator(".open-count")).to_have_text("1 open opening")
    camera.shoot(page, "directory-results", phone=True)

    page.get_by_role("link", name="Champlain Valley Developmental Services").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Champlain Valley Developmental Services"
    )
    openings = page.locator("article.opening-card")
    expect(openings).to_have_count(1)
    expect(openings).to_contain_text(open_one["title"])
    expect(page.get_by_text(closed_one["title"])).to_have_count(0)
    camera.shoot(page, "employer", phone=True)

    openings.get_by_role("link", name=open_one["title"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(open_one["title"])
    expect(page.get_by_role("button", name="Apply")).to_have_attribute(
        "href", "https://careers.example/apply"
    )
    camera.shoot(page, "opening", phone=True)

    page.goto(f"{stack.employer_url}/openings?zip={BURLINGTON}&radius_miles=25")
    expect(page.get_by_role("link", name=open_one["title"])).to_be_visible()
    expect(page.get_by_text(closed_one["title"])).to_have_count(0)
    camera.shoot(page, "job-board", phone=True)
