"""What the security tests share: the services as in-process apps on real MongoDB and Kafka,
clients for each kind of caller, and employer accounts signed in over the API and the pages."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute, _iter_included_route_candidates
from pymongo.asynchronous.database import AsyncDatabase
from starlette.types import ASGIApp

from hwcollab_common.tokens import LinkSigner, Purpose
from hwcollab_employer.settings import Settings as EmployerSettings
from hwcollab_subscriber.repository import SUBSCRIBERS
from hwcollab_subscriber.settings import Settings as SubscriberSettings

ADMIN_TOKEN = "security-admin-token-0123456789abcdef"
LINK_SIGNING_KEY = "security-link-signing-key-0123456789abcdef"
PASSWORD = "a long passphrase for tests"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


SUBSCRIBER_URL = "http://subscriber.security.test"
EMPLOYER_URL = "http://employer.security.test"
NOTIFIER_URL = "http://notifier.security.test"
GENEROUS = "10000/minute"


def common_settings(kafka_bootstrap: str, mongo_url: str, name: str) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    return {
        "hwcollab_env": "test",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "mongodb_url": mongo_url,
        "mongodb_database": f"security_{name}_{run}",
        "consumer_group_suffix": f"-security-{run}",
        "subscriber_public_url": SUBSCRIBER_URL,
        "employer_public_url": EMPLOYER_URL,
        "link_signing_key": LINK_SIGNING_KEY,
        "admin_token": ADMIN_TOKEN,
        "outbox_poll_seconds": 0.2,
    }


def subscriber_settings(kafka_bootstrap: str, mongo_url: str, **changes: Any) -> SubscriberSettings:
    values = common_settings(kafka_bootstrap, mongo_url, "subscriber") | {
        "signup_rate_limit": GENEROUS,
        "signup_address_rate_limit": GENEROUS,
        "link_rate_limit": GENEROUS,
        "link_address_rate_limit": GENEROUS,
    }
    return SubscriberSettings(**(values | changes))


def employer_settings(kafka_bootstrap: str, mongo_url: str, **changes: Any) -> EmployerSettings:
    values = common_settings(kafka_bootstrap, mongo_url, "employer") | {
        "employer_approval": "auto",
        "employer_session_key": "security-session-key-0123456789abcdef",
        "login_rate_limit": GENEROUS,
        "signup_rate_limit": GENEROUS,
        "write_rate_limit": GENEROUS,
        "password_reset_rate_limit": GENEROUS,
    }
    return EmployerSettings(**(values | changes))


def methods_of(route: APIRoute) -> set[str]:
    """The route's HTTP methods (FastAPI fills them in: ``GET`` when none are given)."""
    assert route.methods is not None
    return route.methods


def routes_of(app: FastAPI) -> list[APIRoute]:
    """Every FastAPI route of the app, with its full path, through included routers.

    FastAPI 0.165 keeps included routers as branches in ``app.routes``; its own route matching
    flattens them with this helper (no public equivalent yet)."""
    return [r for r in _iter_included_route_candidates(app.routes) if isinstance(r, APIRoute)]


def write_routes(app: FastAPI) -> set[str]:
    """``"METHOD /path"`` of every route of the app that changes something."""
    return {
        f"{method} {route.path}"
        for route in routes_of(app)
        for method in methods_of(route) & WRITE_METHODS
    }


@dataclass
class Service:
    """One service's app (lifespan running) and its database, for state checks."""

    app: FastAPI
    asgi: ASGIApp
    """The app as its lifespan manager serves it (with the state its lifespan set)."""
    db: AsyncDatabase[dict[str, Any]]
    base_url: str

    def client(self, *, ip: str = "127.0.0.1", **headers: str) -> httpx.AsyncClient:
        """A caller from ``ip`` (rate limits are per client address)."""
        transport = httpx.ASGITransport(app=self.asgi, client=(ip, 40000))
        return httpx.AsyncClient(
            transport=transport, base_url=self.base_url, headers=headers, timeout=30.0
        )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def employer_signup(email: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "organization_name": f"Security Test Care {email.split('@')[0]}",
        "contact_email": email,
        "password": PASSWORD,
        "description": "Care coordination for tests.",
        "address": {"city": "Worcester", "state": "MA", "zip": "01608"},
        "settings": ["medical"],
    }
    return body | changes


OPENING: dict[str, Any] = {
    "title": "Care Coordinator",
    "role": "care_coordinator",
    "setting": "medical",
    "required_credentials": [],
    "employment_type": "full_time",
    "zip": "01608",
    "description": "Coordinate care.",
    "apply_url": "https://careers.example/apply",
}


def csrf_of(html: str) -> str:
    found = _CSRF_FIELD.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


@dataclass
class Account:
    """An employer with a bearer token (API) and a signed-in browser (pages)."""

    employer_id: str
    email: str
    token: str
    api: httpx.AsyncClient
    browser: httpx.AsyncClient

    async def csrf(self) -> str:
        page = await self.browser.get("/dashboard")
        assert page.status_code == 200, page.text
        return csrf_of(page.text)

    async def post_opening(self, **changes: Any) -> dict[str, Any]:
        answer = await self.api.post("/api/openings", json=OPENING | changes)
        assert answer.status_code == 201, answer.text
        opening: dict[str, Any] = answer.json()
        return opening

    async def api_key_id(self) -> str:
        answer = await self.api.post("/api/employers/me/api-keys", json={"name": "matrix"})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["key_id"])

    async def close(self) -> None:
        await self.api.aclose()
        await self.browser.aclose()


async def owner_state(owner: Account) -> list[Any]:
    """Everything of an employer's that a write could change — but its reach ("notified"),
    which grows on its own as the notifier emails matching subscribers."""
    state = []
    for path in ("/api/employers/me", "/api/employers/me/openings", "/api/employers/me/api-keys"):
        answer = (await owner.api.get(path)).json()
        if isinstance(answer, list):
            answer = [{k: v for k, v in item.items() if k != "notified"} for item in answer]
        state.append(answer)
    return state


async def emailed_link(
    employer: Service, employer_id: str, kind: str, *, email: str | None = None
) -> str:
    """The link of the newest account email of ``kind`` the employer service asked for, for
    the employer (or to ``email``): read from its outbox, as the notifier gets it."""
    cursor = employer.db["outbox"].find({"event_type": "employer.account_email_requested"})
    urls = [
        payload["url"]
        async for document in cursor
        if (payload := json.loads(document["value"])["payload"])["kind"] == kind
        and (payload["employer_id"] == employer_id or payload["email"] == email)
    ]
    assert urls, f"no {kind} email for {employer_id or email}"
    return str(urls[-1])


async def signed_up(employer: Service, client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    """Sign up as an employer does, and confirm with the emailed link; the new account's id."""
    sent = await client.post("/api/employers", json=body)
    assert sent.status_code == 202, sent.text
    link = await emailed_link(employer, "", "verify_signup", email=body["contact_email"].lower())
    verified = await client.post("/api/employers/verify", json={"token": token_of(link)})
    assert verified.status_code == 200, verified.text
    return str(verified.json()["employer_id"])


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


async def sign_in_browser(browser: httpx.AsyncClient, email: str) -> httpx.Response:
    """Sign in through the pages as a browser does: the form's CSRF token, then POST."""
    form = await browser.get("/login")
    return await browser.post(
        "/login",
        data={"csrf_token": csrf_of(form.text), "email": email, "password": PASSWORD},
    )


async def new_account(employer: Service, *, name: str = "employer") -> Account:
    email = f"{unique(name)}@security.example"
    async with employer.client() as anonymous:
        employer_id = await signed_up(employer, anonymous, employer_signup(email))
        credentials = {"email": email, "password": PASSWORD}
        issued = await anonymous.post("/api/auth/token", json=credentials)
        assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    browser = employer.client()
    signed_in = await sign_in_browser(browser, email)
    assert signed_in.status_code == 303, signed_in.text
    return Account(
        employer_id=employer_id,
        email=email,
        token=token,
        api=employer.client(Authorization=f"Bearer {token}"),
        browser=browser,
    )


SIGNER = LinkSigner(LINK_SIGNING_KEY)


def token(purpose: Purpose, subscriber_id: str) -> str:
    return SIGNER.sign(purpose, subscriber_id)


def subscriber_signup(email: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"email": email, "roles": ["care_coordination"], "zip": "01608"}
    return body | changes


async def subscriber_document(service: Service, email: str) -> dict[str, Any] | None:
    document: dict[str, Any] | None = await service.db[SUBSCRIBERS].find_one(
        {"email_key": email.casefold()}
    )
    return document


async def new_subscriber(service: Service, *, confirmed: bool = True, **changes: Any) -> str:
    """A subscriber signed up over the API (and confirmed with its link); its id."""
    email = f"{unique('subscriber')}@security.example"
    async with service.client() as client:
        answer = await client.post("/api/subscribers", json=subscriber_signup(email, **changes))
        assert answer.status_code == 202, answer.text
        document = await subscriber_document(service, email)
        assert document is not None
        subscriber_id = str(document["_id"])
        if confirmed:
            body = {"token": token(Purpose.CONFIRM, subscriber_id)}
            confirmation = await client.post("/api/subscribers/confirm", json=body)
            assert confirmation.status_code == 200, confirmation.text
    return subscriber_id
