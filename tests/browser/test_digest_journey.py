"""Journey 4: a daily subscriber gets nothing at once, then one digest at 08:00 their time with the
openings that still are open."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from .mail import Inbox, Mail
from .pages import Camera
from .stack import Stack, subscribe
from .support import miles, next_local_time

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

# Around Manchester, NH, with direct-support roles: no other journey's openings (nor the demo
# data's) reach here.
MANCHESTER = "03101"
EAST_SIDE = "03104"
SOUTH_SIDE = "03103"


def test_journey4_daily_digest_at_eight_local_time_without_the_closed_opening(
    stack: Stack, inbox: Inbox, page: Page, camera: Camera
) -> None:
    assert max(miles(MANCHESTER, EAST_SIDE), miles(MANCHESTER, SOUTH_SIDE)) < 10
    daily = stack.address("lee.manchester")
    control = stack.address("control.manchester")  # the same wishes, immediately
    wishes = {"roles": ["direct_support"], "zip": MANCHESTER, "radius_miles": 15}
    subscribe(stack, inbox, daily, frequency="daily", first_name="Lee", **wishes)
    subscribe(stack, inbox, control, frequency="immediate", **wishes)
    token = stack.register_employer(
        name="Merrimack River Community Supports",
        contact=stack.address("hr.pvcs"),
        zip_code=MANCHESTER,
        city="Manchester",
        state="NH",
        settings=("social_service",),
    )
    dsp = {"role": "direct_support_professional", "setting": "social_service"}
    first = stack.post_opening(
        token, title="Direct Support Professional — Day", zip=EAST_SIDE, **dsp
    )
    second = stack.post_opening(
        token, title="Direct Support Professional — Evenings", zip=SOUTH_SIDE, **dsp
    )
    closing = stack.post_opening(token, title="Relief DSP", zip=MANCHESTER, **dsp)
    for opening in (first, second, closing):

        def names(mail: Mail, o: dict[str, Any] = opening) -> bool:
            return o["opening_id"] in mail.opening_ids

        inbox.wait(control, names, what="control")
    # Nothing at once for the daily subscriber (only the confirmation).
    assert [m.subject for m in inbox.to(daily) if m.opening_ids] == []

    with stack.notifier_learns("opening.closed"):
        stack.close_opening(token, closing["opening_id"])

    eight = next_local_time(MANCHESTER, hour=8, after=datetime.now(UTC))
    assert eight.astimezone(ZoneInfo("America/New_York")).hour == 8
    run = stack.run_digests(eight)
    assert run["sent"] >= 1, run
    digest = inbox.wait(daily, lambda m: len(m.opening_ids) > 0, what="the daily digest")
    assert sorted(digest.opening_ids) == sorted([first["opening_id"], second["opening_id"]])
    assert digest.subject.startswith("2 new openings"), digest.subject
    assert "Relief DSP" not in digest.text
    assert first["title"] in digest.text
    assert second["title"] in digest.text
    assert "Hi Lee," in digest.text
    camera.show_mail(page, digest, "digest-email")

    # The same run again sends no second digest; the immediate subscriber never gets one.
    stack.run_digests(eight)
    assert len([m for m in inbox.to(daily) if m.opening_ids]) == 1
    assert all(len(m.opening_ids) <= 1 for m in inbox.to(control))

    page.goto(digest.labelled("Details"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        re.compile(r"Direct Support Professional — (Day|Evenings)")
    )
    camera.shoot(page, "opening-from-digest")
