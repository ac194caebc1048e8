"""Every rate-limited route answers 429 with Retry-After once a client passes its limit — JSON
under /api, a page elsewhere — and other clients are not affected.

Apps with low limits of their own (2 a minute), on real MongoDB; each route is driven from a
client address of its own, since the limits count per client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from itertools import count
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hwcollab_employer.app import create_app as create_employer_app
from hwcollab_subscriber.app import create_app as create_subscriber_app

from .support import (
    EMPLOYER_URL,
    OPENING,
    PASSWORD,
    SUBSCRIBER_URL,
    Service,
    csrf_of,
    employer_settings,
    signed_up,
    subscriber_settings,
    unique,
)

pytestmark = pytest.mark.integration

LIMIT = "2/minute"
_addresses = count(1)
Request = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


def client_of(service: Service) -> httpx.AsyncClient:
    """A client with an address no other test in this module uses."""
    return service.client(ip=f"10.9.0.{next(_addresses)}")


@pytest.fixture(scope="module")
async def limited_subscriber(security_kafka: str, mongo_url: str) -> AsyncIterator[Service]:
    app: FastAPI = create_subscriber_app(
        subscriber_settings(
            security_kafka,
            mongo_url,
            signup_rate_limit=LIMIT,
            link_rate_limit=LIMIT,
        )
    )
    yield Service(app, app, app.state.runtime.db, SUBSCRIBER_URL)
    await app.state.runtime.mongo.close()


@pytest.fixture(scope="module")
async def limited_employer(security_kafka: str, mongo_url: str) -> AsyncIterator[Service]:
    app: FastAPI = create_employer_app(
        employer_settings(
            security_kafka,
            mongo_url,
            signup_rate_limit=LIMIT,
            login_rate_limit=LIMIT,
            write_rate_limit=LIMIT,
            estimate_rate_limit=LIMIT,
            password_reset_rate_limit=LIMIT,
        )
    )
    yield Service(app, app, app.state.runtime.db, EMPLOYER_URL)
    await app.state.runtime.mongo.close()


async def assert_limited(client: httpx.AsyncClient, request: Request, *, what: str) -> None:
    answers = [await request(client, n) for n in range(3)]
    statuses = [a.status_code for a in answers]
    assert statuses[2] == 429, (what, statuses, answers[2].text[:300])
    assert all(s != 429 for s in statuses[:2]), (what, statuses)
    retry_after = answers[2].headers.get("Retry-After", "")
    assert retry_after.isdigit(), (what, retry_after)
    assert 1 <= int(retry_after) <= 60, (what, retry_after)
    if "/api/" in str(answers[2].url):
        assert "Too many requests" in answers[2].json()["detail"], what
    else:
        assert answers[2].headers["content-type"].startswith("text/html"), what


async def test_subscriber_routes(limited_subscriber: Service) -> None:
    def email(n: int) -> str:
        return f"{unique(f'limit{n}')}@security.example"

    requests: dict[str, Request] = {
        "POST /api/subscribers": lambda c, n: c.post(
            "/api/subscribers", json={"email": email(n), "roles": ["care_manager"], "zip": "01608"}
        ),
        "POST /": lambda c, n: c.post(
            "/", data={"email": email(n), "roles": "care_manager", "zip": "01608"}
        ),
        "POST /api/preferences/link": lambda c, n: c.post(
            "/api/preferences/link", json={"email": email(n)}
        ),
        "POST /preferences/link": lambda c, n: c.post(
            "/preferences/link", data={"email": email(n)}
        ),
    }
    for what, request in requests.items():
        async with client_of(limited_subscriber) as client:
            await assert_limited(client, request, what=what)
    # Another client is not held back by them.
    async with client_of(limited_subscriber) as other:
        assert (await requests["POST /api/preferences/link"](other, 0)).status_code == 202


async def test_subscriber_per_address_limit(security_kafka: str, mongo_url: str) -> None:
    app = create_subscriber_app(
        subscriber_settings(
            security_kafka,
            mongo_url,
            signup_address_rate_limit=LIMIT,
            link_address_rate_limit=LIMIT,
        )
    )
    service = Service(app, app, app.state.runtime.db, SUBSCRIBER_URL)
    address = f"{unique('target')}@security.example"
    for path, body in (
        ("/api/subscribers", {"email": address, "roles": ["care_manager"], "zip": "01608"}),
        ("/api/preferences/link", {"email": address}),
    ):

        async def from_new_client(
            _: httpx.AsyncClient, n: int, path: str = path, body: Mapping[str, object] = body
        ) -> httpx.Response:
            async with client_of(service) as client:
                return await client.post(path, json=body)

        async with client_of(service) as unused:
            await assert_limited(unused, from_new_client, what=f"{path} for one address")


async def test_employer_routes(limited_employer: Service) -> None:
    owner_email = f"{unique('limit-owner')}@security.example"
    signup: dict[str, Any] = {
        "organization_name": "Limited Care",
        "contact_email": owner_email,
        "password": PASSWORD,
        "address": {"city": "Worcester", "state": "MA", "zip": "01608"},
        "settings": ["medical"],
    }
    async with client_of(limited_employer) as setup:
        await signed_up(limited_employer, setup, signup)
        credentials = {"email": owner_email, "password": PASSWORD}
        issued = await setup.post("/api/auth/token", json=credentials)
        assert issued.status_code == 200, issued.text
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}

    async def opening_id() -> str:
        async with limited_employer.client(ip="10.9.1.1", **bearer) as other_address:
            posted = await other_address.post("/api/openings", json=OPENING)
            assert posted.status_code == 201, posted.text
            return str(posted.json()["opening_id"])

    def fresh() -> str:
        return f"{unique('nobody')}@security.example"

    def signup_of(n: int) -> dict[str, object]:
        return signup | {"contact_email": f"{unique(f'limit{n}')}@security.example"}

    async def page_post(
        client: httpx.AsyncClient, path: str, form: dict[str, str], *, form_page: str = ""
    ) -> httpx.Response:
        client.cookies.clear()  # a sign-up signs in; the next one starts signed out
        page = await client.get(form_page or path)
        return await client.post(path, data=form | {"csrf_token": csrf_of(page.text)})

    first_opening, second_opening = await opening_id(), await opening_id()
    requests: dict[str, Request] = {
        "POST /api/employers": lambda c, n: c.post("/api/employers", json=signup_of(n)),
        "POST /api/auth/token": lambda c, n: c.post(
            "/api/auth/token", json={"email": fresh(), "password": "wrong password"}
        ),
        "POST /login": lambda c, n: page_post(
            c, "/login", {"email": fresh(), "password": "wrong password"}
        ),
        "POST /signup": lambda c, n: page_post(
            c,
            "/signup",
            {
                "organization_name": "Limited Page Care",
                "contact_email": f"{unique(f'page{n}')}@security.example",
                "password": PASSWORD,
                "city": "Worcester",
                "state": "MA",
                "zip": "01608",
            },
        ),
        "POST /api/employers/verify": lambda c, n: c.post(
            "/api/employers/verify", json={"token": f"guess-{n}"}
        ),
        "POST /verify-email": lambda c, n: page_post(
            c, "/verify-email", {"token": f"guess-{n}"}, form_page="/login"
        ),
        "POST /api/employers/me/password": lambda c, n: c.post(
            "/api/employers/me/password",
            json={"current_password": f"guess {n}", "new_password": "a new long passphrase"},
            headers=bearer,
        ),
        "POST /api/employers/email/confirm": lambda c, n: c.post(
            "/api/employers/email/confirm", json={"token": f"guess-{n}"}
        ),
        "POST /api/employers/password-reset": lambda c, n: c.post(
            "/api/employers/password-reset", json={"email": fresh()}
        ),
        "POST /forgot-password": lambda c, n: page_post(c, "/forgot-password", {"email": fresh()}),
        "POST /api/employers/password-reset/confirm": lambda c, n: c.post(
            "/api/employers/password-reset/confirm",
            json={"token": f"guess-{n}", "password": "a new long passphrase"},
        ),
        "POST /reset-password": lambda c, n: page_post(
            c,
            "/reset-password",
            {"token": f"guess-{n}", "password": "a new long passphrase"},
            form_page="/login",  # a link nobody was sent shows no form; its CSRF cookie is one
        ),
        "PATCH /api/employers/me": lambda c, n: c.patch(
            "/api/employers/me", json={"description": f"Changed {n}"}, headers=bearer
        ),
        "POST /api/employers/me/api-keys": lambda c, n: c.post(
            "/api/employers/me/api-keys", json={"name": f"k{n}"}, headers=bearer
        ),
        "POST /api/openings": lambda c, n: c.post("/api/openings", json=OPENING, headers=bearer),
        # Per employer: the same bearer from any address.
        "POST /api/openings/estimate": lambda c, n: c.post(
            "/api/openings/estimate", json=OPENING, headers=bearer
        ),
        "PATCH /api/openings/{opening_id}": lambda c, n: c.patch(
            f"/api/openings/{first_opening}", json={"title": f"Title {n}"}, headers=bearer
        ),
        "POST /api/openings/{opening_id}/close": lambda c, n: c.post(
            f"/api/openings/{second_opening}/close", headers=bearer
        ),
    }
    for what, request in requests.items():
        async with client_of(limited_employer) as client:
            await assert_limited(client, request, what=what)

    # Sign-in is also limited per address, whichever client tries it.
    target = fresh()

    async def from_new_client(_: httpx.AsyncClient, n: int) -> httpx.Response:
        async with client_of(limited_employer) as client:
            body = {"email": target, "password": f"guess {n}"}
            return await client.post("/api/auth/token", json=body)

    async with client_of(limited_employer) as unused:
        await assert_limited(unused, from_new_client, what="sign-in for one address")

    # So is "Forgot your password?", for a known address and an unknown one alike.
    for asked_about in (owner_email, fresh()):

        async def reset_from_new_client(
            _: httpx.AsyncClient, n: int, email: str = asked_about
        ) -> httpx.Response:
            async with client_of(limited_employer) as client:
                return await client.post("/api/employers/password-reset", json={"email": email})

        async with client_of(limited_employer) as unused:
            await assert_limited(unused, reset_from_new_client, what="reset for one address")
