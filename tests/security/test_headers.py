"""Security headers on every HTML page of every service, and pages that satisfy their own
Content-Security-Policy (nothing inline, nothing from another origin).

Every HTML route of each app must have an entry here: a new page without one fails the test."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from html.parser import HTMLParser

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from hwcollab_common.tokens import Purpose

from .support import (
    ADMIN_TOKEN,
    EMPLOYER_URL,
    PASSWORD,
    SIGNER,
    Account,
    Service,
    csrf_of,
    emailed_link,
    employer_signup,
    methods_of,
    new_account,
    new_subscriber,
    routes_of,
    token,
    unique,
)

pytestmark = pytest.mark.integration

DOCS = ("/docs", "/redoc")
PageUrls = dict[str, tuple[str, httpx.AsyncClient]]
LD_JSON = "application/ld+json"
# Pages made to be framed by other sites (an employer's listing on their own website): any
# ancestor may frame them; everything else about their policy is the same.
FRAMABLE = frozenset({"/employers/{employer_id}/embed"})


def html_routes(app: FastAPI) -> set[str]:
    return {
        route.path
        for route in routes_of(app)
        if "GET" in methods_of(route) and route.response_class is HTMLResponse
    }


class InlineContent(HTMLParser):
    """What a strict CSP would block: inline scripts, styles and handlers, foreign sources."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"<{tag} {name}=…>")
            if name in {"href", "src", "action"} and (value or "").lower().startswith(
                ("javascript:", "http:", "https:", "//")
            ):
                external_ok = tag == "a"  # links to other sites are fine; loading from them is not
                if not external_ok or (value or "").lower().startswith("javascript:"):
                    self.problems.append(f"<{tag} {name}={value}>")
        # A JSON-LD block is data, never run: no script policy applies to it.
        if tag == "script" and not values.get("src") and values.get("type") != LD_JSON:
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")


def assert_secure_headers(answer: httpx.Response, *, what: str, framable: bool = False) -> None:
    headers = answer.headers
    policy = headers.get("Content-Security-Policy", "")
    directives = {d.split()[0]: d for d in (p.strip() for p in policy.split(";")) if d}
    if framable:
        assert directives.get("frame-ancestors") == "frame-ancestors *", (what, policy)
        assert "X-Frame-Options" not in headers, what
    else:
        assert directives.get("frame-ancestors") == "frame-ancestors 'none'", (what, policy)
        assert headers.get("X-Frame-Options") == "DENY", what
    assert "default-src" in directives, (what, policy)
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("Referrer-Policy") in {"no-referrer", "strict-origin-when-cross-origin"}
    if answer.url.path not in DOCS:
        assert directives.get("script-src") == "script-src 'self'", (what, policy)
        assert "'unsafe-inline'" not in policy, (what, policy)


async def check_pages(app: FastAPI, urls: PageUrls) -> int:
    assert html_routes(app) == set(urls), "every HTML page needs an entry in this test"
    checked = 0
    for route, (url, client) in urls.items():
        answer = await client.get(url)
        assert answer.status_code == 200, (route, answer.status_code, answer.text[:300])
        assert answer.headers["content-type"].startswith("text/html"), route
        assert_secure_headers(answer, what=route, framable=route in FRAMABLE)
        parser = InlineContent()
        parser.feed(answer.text)
        assert not parser.problems, (route, parser.problems)
        checked += 1
    return checked


async def check_other_answers(service: Service, client: httpx.AsyncClient, api_path: str) -> None:
    """Docs, JSON, errors and assets carry the headers too."""
    for path in (*DOCS, "/openapi.json", "/healthz", api_path, "/no-such-page"):
        answer = await client.get(path)
        assert_secure_headers(answer, what=path)


async def test_subscriber_pages(subscriber: Service) -> None:
    pending = await new_subscriber(subscriber, confirmed=False)
    active = await new_subscriber(subscriber)
    manage = token(Purpose.MANAGE, active)
    async with subscriber.client() as client:
        urls: PageUrls = {
            "/": ("/", client),
            "/confirm": (f"/confirm?token={token(Purpose.CONFIRM, pending)}", client),
            "/preferences": (f"/preferences?token={manage}", client),
            "/preferences/link": ("/preferences/link", client),
            "/pause": (f"/pause?token={manage}", client),
            "/resume": (f"/resume?token={manage}", client),
            "/unsubscribe": (f"/unsubscribe?token={token(Purpose.UNSUBSCRIBE, active)}", client),
            "/erase": (f"/erase?token={manage}", client),
            "/keep": (f"/keep?token={token(Purpose.KEEP, active)}", client),
        }
        assert await check_pages(subscriber.app, urls) == len(urls)
        await check_other_answers(subscriber, client, "/api/taxonomy")
        # An error page (bad token) is a page too.
        assert_secure_headers(await client.get("/preferences?token=x"), what="token error page")
        assert (await client.get("/preferences?token=x")).headers["Referrer-Policy"] == (
            "no-referrer"
        )
        # The click redirect's page for a bad link, and the redirect itself.
        assert_secure_headers(await client.get("/r?token=x"), what="bad click link page")
        click = SIGNER.sign_claims(Purpose.CLICK, (active, "op-1", "d", ""))
        redirect = await client.get("/r", params={"token": click})
        assert redirect.status_code == 303
        assert redirect.headers["Referrer-Policy"] == "no-referrer"
        assert redirect.headers["Cache-Control"] == "no-store"


async def _link(employer: Service, client: httpx.AsyncClient, kind: str) -> str:
    """A working link of an account email of ``kind`` (a new sign-up's, or its reset's)."""
    email = f"{unique('linked')}@security.example"
    await client.post("/api/employers", json=employer_signup(email))
    if kind == "password_reset":
        await client.post("/api/employers/password-reset", json={"email": email})
    link = await emailed_link(employer, "", kind, email=email)
    return link.removeprefix(EMPLOYER_URL)


async def _email_change_link(employer: Service, owner: Account) -> str:
    body = {"new_email": f"{unique('moved')}@security.example", "password": PASSWORD}
    asked = await owner.api.post("/api/employers/me/email", json=body)
    assert asked.status_code == 202, asked.text
    link = await emailed_link(employer, owner.employer_id, "email_change_confirm")
    return link.removeprefix(EMPLOYER_URL)


async def test_employer_pages(employer: Service) -> None:
    owner: Account = await new_account(employer, name="headers")
    try:
        opening = await owner.post_opening()
        opening_id = opening["opening_id"]
        async with employer.client() as anonymous, employer.client() as operator:
            sign_in = await operator.get("/operators")
            assert_secure_headers(sign_in, what="the operator sign-in")
            credentials = {"csrf_token": csrf_of(sign_in.text), "token": ADMIN_TOKEN}
            assert (await operator.post("/operators/login", data=credentials)).status_code == 303
            urls: PageUrls = {
                "/operators": ("/operators", operator),
                "/": ("/", anonymous),
                "/employers/{employer_id}": (f"/employers/{owner.employer_id}", anonymous),
                "/employers/{employer_id}/embed": (
                    f"/employers/{owner.employer_id}/embed",
                    anonymous,
                ),
                "/openings": ("/openings", anonymous),
                "/openings/{opening_id}": (f"/openings/{opening_id}", anonymous),
                "/signup": ("/signup", anonymous),
                "/login": ("/login", anonymous),
                "/forgot-password": ("/forgot-password", anonymous),
                "/verify-email": (await _link(employer, anonymous, "verify_signup"), anonymous),
                "/reset-password": (await _link(employer, anonymous, "password_reset"), anonymous),
                "/logout": ("/logout", owner.browser),
                "/dashboard": ("/dashboard", owner.browser),
                "/dashboard/openings/new": ("/dashboard/openings/new", owner.browser),
                "/dashboard/openings/{opening_id}/edit": (
                    f"/dashboard/openings/{opening_id}/edit",
                    owner.browser,
                ),
                "/dashboard/profile": ("/dashboard/profile", owner.browser),
                "/dashboard/account": ("/dashboard/account", owner.browser),
                "/confirm-email": (await _email_change_link(employer, owner), anonymous),
            }
            assert await check_pages(employer.app, urls) == len(urls)
            # Their URL carries a token.
            for linked in ("/verify-email", "/reset-password", "/confirm-email"):
                answer = await anonymous.get(urls[linked][0])
                assert answer.headers["Referrer-Policy"] == "no-referrer", linked
            await check_other_answers(employer, anonymous, "/api/taxonomy")
            script = await anonymous.get("/assets/employer/employer.js")
            assert script.status_code == 200
            assert_secure_headers(script, what="employer.js")
    finally:
        await owner.close()


async def test_notifier_has_no_pages_but_its_answers_carry_the_headers(notifier: Service) -> None:
    assert html_routes(notifier.app) == set()
    async with notifier.client() as client:
        await check_other_answers(notifier, client, "/api/admin/suppressions")


Fetch = Callable[[], Awaitable[httpx.Response]]
