"""The demo data set: loaded through the employer API into an empty directory, once."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from hwcollab_cli import demo

from .pages import Camera
from .stack import Stack

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]


def test_demo_data_fills_an_empty_directory_once(
    stack: Stack, lone_employer_service: str, page: Page, camera: Camera
) -> None:
    urls = {
        "subscriber_url": stack.subscriber_url,
        "employer_url": lone_employer_service,
        "notifier_url": stack.notifier_url,
    }
    loaded = demo.load(**urls, admin_token=stack.admin_token, timeout=60)
    expected_openings = sum(len(employer.openings) for employer in demo.EMPLOYERS)
    assert not loaded.skipped
    assert loaded.employers == len(demo.EMPLOYERS) >= 6
    assert loaded.openings == expected_openings >= 15
    assert all(account.endswith(".example") for account in loaded.accounts)

    again = demo.load(**urls, admin_token=stack.admin_token, timeout=60)
    assert again.skipped

    with httpx.Client(base_url=lone_employer_service, timeout=20) as api:
        directory = api.get("/api/directory", params={"page_size": 50}).json()
        board = api.get("/api/openings", params={"page_size": 50}).json()
        remote = [o for o in board["results"] if o["remote"]]
        signed_in = api.post(
            "/api/auth/token",
            json={"email": demo.EMPLOYERS[0].contact_email, "password": demo.DEMO_PASSWORD},
        )
    assert directory["total"] == len(demo.EMPLOYERS)
    assert board["total"] == expected_openings
    assert remote, "some demo openings are remote"
    assert {o["role"] for o in board["results"]} >= {
        "nurse_care_manager",
        "care_coordinator",
        "direct_support_professional",
    }
    assert signed_in.status_code == 200

    page.goto(f"{lone_employer_service}/?zip=01608&radius_miles=50")
    cards = page.locator("article.employer-card")
    expect(cards.first).to_contain_text("Quinsigamond Community Health Center")
    camera.shoot(page, "directory")
    page.goto(f"{lone_employer_service}/openings?zip=01608&radius_miles=50")
    expect(page.get_by_role("link", name="Nurse Care Manager — ACO Program")).to_be_visible()
    camera.shoot(page, "job-board")
