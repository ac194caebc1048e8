"""Every page and endpoint of the subscriber service that takes a link token refuses a tampered,
an expired and a wrong-purpose token (and one signed with another key) with a clear 4xx — a page
for pages, JSON under /api — and changes nothing: the subscriber's record and outbox stay as
they were. Every token-taking route of the app must have an entry here.

The click redirect of alert emails (``GET /r``) is no open redirect: it goes only where a token
signed with the deployment's key says (an opening's page here, or the apply link the notifier
signed), and a bad or expired token gets a page leading to the job board."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hwcollab_common.clicks import ClickLinks
from hwcollab_common.clock import FixedClock
from hwcollab_common.outbox import OUTBOX_COLLECTION
from hwcollab_common.tokens import MAX_AGE, LinkSigner, Purpose

from .support import (
    EMPLOYER_URL,
    LINK_SIGNING_KEY,
    SUBSCRIBER_URL,
    Service,
    methods_of,
    new_subscriber,
    routes_of,
    token,
)

pytestmark = pytest.mark.integration

# route → (purpose of its token, form or JSON body of a genuine call)
TOKEN_ROUTES: dict[str, tuple[Purpose, dict[str, Any] | None]] = {
    "GET /confirm": (Purpose.CONFIRM, None),
    "POST /confirm": (Purpose.CONFIRM, None),
    "POST /api/subscribers/confirm": (Purpose.CONFIRM, None),
    "GET /preferences": (Purpose.MANAGE, None),
    "POST /preferences": (Purpose.MANAGE, {"roles": "care_manager", "zip": "01610"}),
    "GET /api/preferences": (Purpose.MANAGE, None),
    "PUT /api/preferences": (Purpose.MANAGE, {"roles": ["care_manager"], "zip": "01610"}),
    "GET /pause": (Purpose.MANAGE, None),
    "POST /pause": (Purpose.MANAGE, None),
    "GET /resume": (Purpose.MANAGE, None),
    "POST /resume": (Purpose.MANAGE, None),
    "GET /erase": (Purpose.MANAGE, None),
    "POST /erase": (Purpose.MANAGE, None),
    "DELETE /api/subscribers": (Purpose.MANAGE, None),
    "GET /unsubscribe": (Purpose.UNSUBSCRIBE, None),
    "POST /unsubscribe": (Purpose.UNSUBSCRIBE, {"List-Unsubscribe": "One-Click"}),
    "GET /keep": (Purpose.KEEP, None),
    "POST /keep": (Purpose.KEEP, None),
}
# Token routes with answers of their own, tested below.
CLICK_ROUTES = {"GET /r"}
ADMIN_ROUTES = {"POST /api/admin/sunset/run"}
PUBLIC_ROUTES = {
    "GET /",
    "POST /",
    "GET /preferences/link",
    "POST /preferences/link",
    "POST /api/subscribers",
    "POST /api/preferences/link",
    "GET /api/taxonomy",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
}
OTHER_KEY = LinkSigner("another-deployment-link-signing-key-0123456789")


def test_every_token_route_is_listed(subscriber: Service) -> None:
    routes = {f"{m} {r.path}" for r in routes_of(subscriber.app) for m in methods_of(r) - {"HEAD"}}
    assert routes - PUBLIC_ROUTES - CLICK_ROUTES - ADMIN_ROUTES == set(TOKEN_ROUTES)


def tampered(value: str) -> str:
    """One character in the middle of the signature changed (the last base64 character may
    carry only padding bits, so changing it may not change the signature at all)."""
    at = len(value) - 10
    return value[:at] + ("A" if value[at] != "A" else "B") + value[at + 1 :]


def forged(purpose: Purpose, subscriber_id: str) -> str:
    """Another subscriber's id with this subscriber's timestamp and signature."""
    payload_of_other = token(purpose, "someone-else").split(".", 1)[0]
    return payload_of_other + "." + token(purpose, subscriber_id).split(".", 1)[1]


def expired(purpose: Purpose, subscriber_id: str) -> str | None:
    max_age = MAX_AGE[purpose]
    if max_age is None:
        return None  # unsubscribe links never expire (SPEC 6)
    issued = datetime.now(UTC) - max_age - timedelta(minutes=5)
    return LinkSigner(LINK_SIGNING_KEY, clock=FixedClock(issued)).sign(purpose, subscriber_id)


def bad_tokens(purpose: Purpose, subscriber_id: str) -> dict[str, tuple[str, int]]:
    """name → (token, the status it must get)."""
    wrong = next(p for p in Purpose if p is not purpose)
    found = {
        "tampered": (tampered(token(purpose, subscriber_id)), 400),
        "forged subject": (forged(purpose, subscriber_id), 400),
        "wrong purpose": (token(wrong, subscriber_id), 400),
        "another key": (OTHER_KEY.sign(purpose, subscriber_id), 400),
        "garbage": ("not-a-token", 400),
    }
    late = expired(purpose, subscriber_id)
    if late is not None:
        found["expired"] = (late, 401)
    return found


async def _state(subscriber: Service, subscriber_id: str) -> tuple[Any, int]:
    record = await subscriber.db["subscribers"].find_one({"_id": subscriber_id})
    events = await subscriber.db[OUTBOX_COLLECTION].count_documents({"key": subscriber_id})
    return record, events


@pytest.mark.parametrize("route", sorted(TOKEN_ROUTES))
async def test_bad_tokens_get_a_clear_refusal_and_change_nothing(
    route: str, subscriber: Service
) -> None:
    method, path = route.split(" ", 1)
    purpose, body = TOKEN_ROUTES[route]
    subscriber_id = await new_subscriber(subscriber, confirmed=purpose is not Purpose.CONFIRM)
    before = await _state(subscriber, subscriber_id)
    is_page = not path.startswith("/api/")
    async with subscriber.client() as client:
        for name, (value, status) in bad_tokens(purpose, subscriber_id).items():
            if path == "/api/subscribers/confirm":
                answer = await client.post(path, json={"token": value})
            elif is_page:
                answer = await client.request(method, path, params={"token": value}, data=body)
            else:
                answer = await client.request(method, path, params={"token": value}, json=body)
            what = f"{route} with a {name} token"
            assert answer.status_code == status, (what, answer.status_code, answer.text[:300])
            if is_page:
                assert answer.headers["content-type"].startswith("text/html"), what
                heading = "has expired" if status == 401 else "is not valid"
                assert f"This link {heading}" in answer.text, what
                assert "Email me a new link" in answer.text, what
            else:
                detail = answer.json()["detail"]
                assert "link" in detail.lower(), (what, detail)
            assert await _state(subscriber, subscriber_id) == before, f"{what} changed state"
        # The genuine token works (so the refusals above were about the token alone).
        genuine = token(purpose, subscriber_id)
        if path == "/api/subscribers/confirm":
            answer = await client.post(path, json={"token": genuine})
        elif is_page:
            answer = await client.request(method, path, params={"token": genuine}, data=body)
        else:
            answer = await client.request(method, path, params={"token": genuine}, json=body)
        assert answer.status_code in (200, 204), (route, answer.text[:300])


def click_token(signer: LinkSigner, claims: tuple[str, ...]) -> str:
    return signer.sign_claims(Purpose.CLICK, claims)


async def test_the_click_redirect_goes_only_where_a_signed_token_says(
    subscriber: Service,
) -> None:
    subscriber_id = await new_subscriber(subscriber)
    clicks = ClickLinks(
        LinkSigner(LINK_SIGNING_KEY),
        subscriber_public_url=SUBSCRIBER_URL,
        employer_public_url=EMPLOYER_URL,
    )
    apply_url = "https://careers.example.org/apply?job=7"
    genuine = clicks.url(subscriber_id, "op-7", "apply", apply_url=apply_url)
    genuine_token = genuine.split("token=", 1)[1]
    signer = LinkSigner(LINK_SIGNING_KEY)
    late = LinkSigner(LINK_SIGNING_KEY, clock=FixedClock(datetime.now(UTC) - timedelta(days=400)))
    evil = "https://evil.example/phish"
    bad = {
        "tampered": (tampered(genuine_token), 400),
        "another key": (
            OTHER_KEY.sign_claims(Purpose.CLICK, (subscriber_id, "op-7", "a", evil)),
            400,
        ),
        "another purpose": (
            signer.sign_claims(Purpose.MANAGE, (subscriber_id, "op-7", "a", evil)),
            400,
        ),
        "a manage token": (token(Purpose.MANAGE, subscriber_id), 400),
        "a script target": (
            click_token(signer, (subscriber_id, "op-7", "a", "javascript:alert(1)")),
            400,
        ),
        "a target without a host": (
            click_token(signer, (subscriber_id, "op-7", "a", "https:")),
            400,
        ),
        "garbage": ("not-a-token", 400),
        "expired": (click_token(late, (subscriber_id, "op-7", "d", "")), 410),
    }
    before = await _state(subscriber, subscriber_id)
    async with subscriber.client() as client:
        for name, (value, status) in bad.items():
            answer = await client.get("/r", params={"token": value})
            assert answer.status_code == status, (name, answer.status_code, answer.text[:300])
            assert "location" not in answer.headers, name
            assert answer.headers["content-type"].startswith("text/html"), name
            assert f'href="{EMPLOYER_URL}/openings"' in answer.text, name
            assert evil not in answer.text, name
        assert await _state(subscriber, subscriber_id) == before
        # Redirect parameters next to a genuine token are ignored.
        answer = await client.get(
            "/r", params={"token": genuine_token, "url": evil, "next": evil, "target": evil}
        )
        assert (answer.status_code, answer.headers["location"]) == (303, apply_url)
        # A details link goes to the opening's page here, whatever else the token carries.
        details = click_token(signer, (subscriber_id, "//evil.example", "d", evil))
        answer = await client.get("/r", params={"token": details})
        assert answer.status_code == 303
        assert answer.headers["location"] == f"{EMPLOYER_URL}/openings/%2F%2Fevil.example"
    record, _ = await _state(subscriber, subscriber_id)
    assert record["last_engaged_at"] is not None
