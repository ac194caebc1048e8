"""The click redirect, the "keep me subscribed" page, what the preferences page says about
engagement and sunsetting, and the operators' sunset run, over HTTP on the real app."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from hwcollab_common.clock import FixedClock
from hwcollab_common.settings import DEV_ADMIN_TOKEN
from hwcollab_common.tokens import LinkSigner, Purpose
from hwcollab_subscriber.domain import SignUp
from hwcollab_subscriber.handlers import SubscriberService

from .conftest import EMPLOYER_URL, PUBLIC_URL, SIGNING_KEY, FakeStore

DAY = timedelta(days=1)


class Site:
    def __init__(self, http: httpx.AsyncClient, service: SubscriberService, app: Any) -> None:
        self.http = http
        self.service = service
        self.links = app.state.links

    async def subscriber(self, helpers: Any, store: FakeStore, name: str = "jordan") -> str:
        body = helpers.sign_up_body(email=f"{name}@example.org")
        await self.service.sign_up(SignUp.model_validate(body))
        subscriber = next(s for s in store.rows.values() if s.email == f"{name}@example.org")
        await self.service.confirm(self.links.token(Purpose.CONFIRM, subscriber.subscriber_id))
        return subscriber.subscriber_id

    def token(self, purpose: Purpose, subscriber_id: str) -> str:
        return str(self.links.token(purpose, subscriber_id))

    def click(self, subscriber_id: str, link: str = "details", apply_url: str = "") -> str:
        url: str = self.links.clicks.url(subscriber_id, "op-7", link, apply_url=apply_url)
        return url.removeprefix(PUBLIC_URL)


@pytest.fixture
async def site(store: FakeStore, clock: FixedClock, helpers: Any) -> AsyncIterator[Site]:
    app, service = helpers.make_app(store, clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:
        yield Site(http, service, app)


def text_of(page: httpx.Response) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.text)))


async def test_the_redirect_records_engagement_and_goes_to_the_opening(
    site: Site, store: FakeStore, clock: FixedClock, helpers: Any
) -> None:
    jordan = await site.subscriber(helpers, store)
    manage = site.token(Purpose.MANAGE, jordan)
    page = await site.http.get("/preferences", params={"token": manage})
    assert "You have not opened a job from our emails yet." in text_of(page)

    answer = await site.http.get(site.click(jordan))
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{EMPLOYER_URL}/openings/op-7"
    assert answer.headers["cache-control"] == "no-store"
    assert store.rows[jordan].last_engaged_at == clock.now()

    apply = "https://careers.example.org/apply?id=7&src=hw"
    answer = await site.http.get(site.click(jordan, "apply", apply))
    assert (answer.status_code, answer.headers["location"]) == (303, apply)

    page = await site.http.get("/preferences", params={"token": manage})
    assert "Last opened a job from our email: March 2, 2026" in text_of(page)


@pytest.mark.parametrize(
    ("token", "status", "heading"),
    [
        ("not-a-token", 400, "This link is not valid"),
        ("", 400, "This link is not valid"),
        (None, 400, "This link is not valid"),
        ("expired", 410, "This link has expired"),
    ],
)
async def test_a_bad_click_link_gets_a_page_that_leads_to_the_job_board(
    site: Site, clock: FixedClock, token: str | None, status: int, heading: str
) -> None:
    if token == "expired":
        old = LinkSigner(SIGNING_KEY, clock=FixedClock(clock.now() - 400 * DAY))
        token = old.sign_claims(Purpose.CLICK, ("sub-1", "op-7", "d", ""))
    params = {} if token is None else {"token": token}
    answer = await site.http.get("/r", params=params)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/html")
    assert heading in answer.text
    assert f'href="{EMPLOYER_URL}/openings"' in answer.text
    assert "location" not in answer.headers


async def test_the_notice_shows_with_a_keep_button_and_keeping_clears_it(
    site: Site, store: FakeStore, clock: FixedClock, helpers: Any
) -> None:
    jordan = await site.subscriber(helpers, store)
    clock.advance(181 * DAY)
    await site.service.run_sunset()
    manage = site.token(Purpose.MANAGE, jordan)
    page = await site.http.get("/preferences", params={"token": manage})
    text = text_of(page)
    assert "Still interested?" in text
    assert "we asked on August 30, 2026" in text
    assert "we pause your alerts after September 13, 2026" in text
    [action] = re.findall(r'action="(/keep\?token=[^"]+)"', page.text)

    keep_token = site.token(Purpose.KEEP, jordan)
    shown = await site.http.get("/keep", params={"token": keep_token})
    assert shown.status_code == 200
    assert "Keep me subscribed" in shown.text
    assert store.rows[jordan].sunset_notice_at is not None  # GET changes nothing

    kept = await site.http.post(html.unescape(action))
    assert kept.status_code == 200
    assert "You are still subscribed" in kept.text
    assert store.rows[jordan].sunset_notice_at is None
    page = await site.http.get("/preferences", params={"token": manage})
    assert "Still interested?" not in text_of(page)


async def test_a_pause_for_inactivity_is_explained_and_resumed(
    site: Site, store: FakeStore, clock: FixedClock, helpers: Any
) -> None:
    jordan = await site.subscriber(helpers, store)
    clock.advance(181 * DAY)
    await site.service.run_sunset()
    clock.advance(14 * DAY)
    await site.service.run_sunset()
    manage = site.token(Purpose.MANAGE, jordan)
    page = await site.http.get("/preferences", params={"token": manage})
    assert "paused because you had not opened our emails in a while" in text_of(page)
    assert re.search(r'action="/resume\?token=[^"]+"', page.text)

    resumed = await site.http.post("/resume", params={"token": manage})
    assert resumed.status_code == 200
    assert store.rows[jordan].status == "active"
    page = await site.http.get("/preferences", params={"token": manage})
    assert "had not opened our emails" not in text_of(page)


async def test_operators_run_the_sunset_at_a_given_instant(
    site: Site, store: FakeStore, clock: FixedClock, helpers: Any
) -> None:
    jordan = await site.subscriber(helpers, store)
    refused = await site.http.post("/api/admin/sunset/run")
    assert refused.status_code == 401
    wrong = await site.http.post("/api/admin/sunset/run", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    admin = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
    bad = await site.http.post("/api/admin/sunset/run", params={"as_of": "12345"}, headers=admin)
    assert bad.status_code == 422
    as_of = (clock.now() + 181 * DAY).isoformat()
    answer = await site.http.post("/api/admin/sunset/run", params={"as_of": as_of}, headers=admin)
    assert answer.status_code == 200
    assert answer.json()["noticed"] == 1
    assert answer.json()["paused"] == 0
    assert store.rows[jordan].sunset_notice_at is not None

    view = await site.http.get(
        "/api/preferences", params={"token": site.token(Purpose.MANAGE, jordan)}
    )
    assert view.json()["still_interested_asked_at"] is not None
    assert view.json()["last_engaged_at"] is None
