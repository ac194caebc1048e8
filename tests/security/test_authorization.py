"""Who may call each write endpoint: the owner, another employer, an anonymous caller, an
operator with the admin token.

The write routes are read from each app's route table: a new write route without an entry in the
matrix below fails the test, so that nobody adds one without deciding who may call it.

- Employer API: owner ok; another employer 403/404 with nothing of the resource in the answer;
  anonymous and the admin token 401; admin ok on admin routes only.
- Employer pages (cookie sessions): the same, except that an anonymous visitor is sent to the
  sign-in page (303 → /login).
- Subscriber routes carry a signed link token instead of a session: without one → 4xx and no
  change; a token acts only on the subscriber it names.
- Notifier routes are operator routes, but for the reach estimate (the employer service's own
  token) and the provider webhooks (an SNS signature, Postmark's credentials, the generic
  webhook's token): neither the admin token nor another's credentials open them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import pytest

from hwcollab_common.settings import DEV_REACH_TOKEN
from hwcollab_common.tokens import Purpose
from hwcollab_employer.app import create_app as create_employer_app
from hwcollab_employer.reach import NotifierReach, reach_source
from hwcollab_notifier.settings import DEV_BOUNCE_WEBHOOK_TOKEN, DEV_POSTMARK_WEBHOOK_PASSWORD
from hwcollab_testing.sns import ses_bounce, sns_host
from hwcollab_testing.waiting import eventually

from .support import (
    ADMIN_TOKEN,
    EMPLOYER_URL,
    NOTIFIER_URL,
    OPENING,
    PASSWORD,
    Account,
    Service,
    csrf_of,
    emailed_link,
    employer_settings,
    employer_signup,
    new_account,
    new_subscriber,
    owner_state,
    sign_in_browser,
    signed_up,
    subscriber_signup,
    token,
    token_of,
    unique,
    write_routes,
)

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
Who = Literal["public", "owner", "self", "admin", "link"]


@dataclass(frozen=True)
class Case:
    who: Who
    """public: anyone; owner: a resource of one employer; self: the caller's own account;
    admin: operators only; link: a subscriber's signed link token."""
    page: bool = False
    resource: Literal[
        "opening",
        "external_id",
        "api_key",
        "employer",
        "other_employer",
        "pending_employer",
        "suspended_employer",
        "",
    ] = ""
    json: dict[str, Any] | None = None
    form: dict[str, Any] = field(default_factory=dict)
    purpose: Purpose = Purpose.MANAGE
    paused: bool = False
    """The subscriber is paused first (resuming an active one changes nothing)."""
    asked: bool = False
    """The subscriber has been asked "still interested?" (keeping otherwise changes nothing)."""
    own_account: bool = False
    """It ends the caller's other sessions (a password change): run on an account of its own,
    not on the accounts the other cases share."""


REASON = {"reason": "Checked by the authorization matrix."}
OPENING_FORM = {k: v for k, v in OPENING.items() if isinstance(v, str)} | {"pay_period": "hour"}
PROFILE_FORM = {
    "organization_name": "Renamed Care",
    "description": "Changed.",
    "city": "Worcester",
    "state": "MA",
    "zip": "01608",
    "settings": "medical",
}

EMPLOYER_MATRIX: dict[str, Case] = {
    "POST /api/employers": Case("public"),
    "POST /api/employers/verify": Case("public"),  # the emailed token is the key
    "POST /api/admin/employers": Case(
        "admin", json=employer_signup(f"{unique('matrix-admin')}@security.example")
    ),
    "POST /api/auth/token": Case("public"),
    "POST /api/employers/password-reset": Case("public"),
    "POST /api/employers/password-reset/confirm": Case("public"),  # the emailed token is the key
    "PATCH /api/employers/me": Case("self", json={"description": "Changed."}),
    # The caller's own account; the current password is part of the request.
    "POST /api/employers/me/password": Case(
        "self", json={"current_password": PASSWORD, "new_password": PASSWORD}, own_account=True
    ),
    "POST /api/employers/me/email": Case(
        "self", json={"new_email": "matrix-new@security.example", "password": PASSWORD}
    ),
    "POST /api/employers/email/confirm": Case("public"),  # the emailed token is the key
    "POST /api/employers/me/api-keys": Case("self", json={"name": "matrix"}),
    "DELETE /api/employers/me/api-keys/{key_id}": Case("owner", resource="api_key"),
    "POST /api/openings": Case("self", json=OPENING),
    "POST /api/openings/estimate": Case("self", json=OPENING),
    "PATCH /api/openings/{opening_id}": Case("owner", resource="opening", json={"title": "X"}),
    "PATCH /api/openings/by-external-id/{external_id}": Case(
        "owner", resource="external_id", json={"title": "X"}
    ),
    "POST /api/openings/{opening_id}/close": Case("owner", resource="opening"),
    "POST /api/admin/employers/{employer_id}/approve": Case("admin", resource="employer"),
    "POST /api/admin/employers/{employer_id}/reject": Case(
        "admin", resource="pending_employer", json=REASON
    ),
    "POST /api/admin/employers/{employer_id}/suspend": Case(
        "admin", resource="other_employer", json=REASON
    ),
    "POST /api/admin/employers/{employer_id}/reinstate": Case(
        "admin", resource="suspended_employer", json=REASON
    ),
    "POST /api/admin/openings/{opening_id}/take-down": Case(
        "admin", resource="opening", json=REASON
    ),
    "POST /signup": Case("public", page=True),
    "POST /verify-email": Case("public", page=True),  # the emailed token is the key
    "POST /login": Case("public", page=True),
    "POST /forgot-password": Case("public", page=True),
    "POST /reset-password": Case("public", page=True),  # the emailed token is the key
    "POST /logout": Case("public", page=True),  # signs out whoever sends it (CSRF-checked)
    "POST /dashboard/openings/new": Case("self", page=True, form=OPENING_FORM),
    "POST /dashboard/openings/estimate": Case("self", page=True, form=OPENING_FORM),
    "POST /dashboard/openings/{opening_id}/edit": Case(
        "owner", page=True, resource="opening", form=OPENING_FORM | {"title": "Edited"}
    ),
    "POST /dashboard/openings/{opening_id}/close": Case("owner", page=True, resource="opening"),
    "POST /dashboard/api-keys": Case("self", page=True, form={"name": "matrix"}),
    "POST /dashboard/api-keys/{key_id}/revoke": Case("owner", page=True, resource="api_key"),
    "POST /dashboard/profile": Case("self", page=True, form=PROFILE_FORM),
    "POST /dashboard/account/password": Case(
        "self",
        page=True,
        form={"current_password": PASSWORD, "new_password": PASSWORD},
        own_account=True,
    ),
    "POST /dashboard/account/email": Case(
        "self", page=True, form={"new_email": "matrix-page@security.example", "password": PASSWORD}
    ),
    "POST /confirm-email": Case("public", page=True),  # the emailed token is the key
    "POST /operators/login": Case("public", page=True),
    "POST /operators/logout": Case("admin", page=True),
    "POST /operators/employers/{employer_id}/approve": Case(
        "admin", page=True, resource="pending_employer"
    ),
    "POST /operators/employers/{employer_id}/reject": Case(
        "admin", page=True, resource="pending_employer", form=REASON
    ),
    "POST /operators/employers/{employer_id}/suspend": Case(
        "admin", page=True, resource="other_employer", form=REASON
    ),
    "POST /operators/employers/{employer_id}/reinstate": Case(
        "admin", page=True, resource="suspended_employer"
    ),
    "POST /operators/openings/{opening_id}/take-down": Case(
        "admin", page=True, resource="opening", form=REASON
    ),
}

SUBSCRIBER_MATRIX: dict[str, Case] = {
    "POST /api/subscribers": Case("public"),
    "POST /api/preferences/link": Case("public"),
    "POST /": Case("public", page=True),
    "POST /preferences/link": Case("public", page=True),
    "POST /api/subscribers/confirm": Case("link", purpose=Purpose.CONFIRM),
    "DELETE /api/subscribers": Case("link"),
    "PUT /api/preferences": Case(
        "link", json={"roles": ["care_manager"], "zip": "01610", "paused": True}
    ),
    "POST /confirm": Case("link", page=True, purpose=Purpose.CONFIRM),
    "POST /preferences": Case("link", page=True, form={"roles": "care_manager", "zip": "01610"}),
    "POST /pause": Case("link", page=True),
    "POST /resume": Case("link", page=True, paused=True),
    "POST /unsubscribe": Case(
        "link", page=True, purpose=Purpose.UNSUBSCRIBE, form={"List-Unsubscribe": "One-Click"}
    ),
    "POST /erase": Case("link", page=True),
    "POST /keep": Case("link", page=True, purpose=Purpose.KEEP, asked=True),
    "POST /api/admin/sunset/run": Case("admin"),
}

NOTIFIER_MATRIX: dict[str, dict[str, Any] | None] = {
    "POST /api/admin/digests/run": None,
    "POST /api/admin/dlq/replay": {"topic": "hwcollab.opening.v1", "messages": []},
    "POST /api/admin/suppressions": {"email": "suppressed@security.example"},
    "DELETE /api/admin/suppressions/{email}": None,
    "POST /api/admin/bulletins": {"subject": "Matrix", "body_markdown": "Hello."},
    "POST /api/admin/bounces/forgive": {"email": "forgiven@security.example"},
}
# Called by the employer service only, with a token of its own (REACH_TOKEN), not ADMIN_TOKEN.
NOTIFIER_INTERNAL: dict[str, dict[str, Any]] = {
    "POST /api/internal/reach": {
        "role": "care_coordinator",
        "setting": "medical",
        "employment_type": "full_time",
        "lat": 42.26,
        "lon": -71.8,
    },
}


# Called by email providers, each authenticated its own way (tests/security/conftest.py enables
# them with the development credentials).
POSTMARK_BOUNCE = {
    "RecordType": "Bounce",
    "ID": 42,
    "Type": "HardBounce",
    "Email": "nobody@security.example",
    "Metadata": {"message_id": "<never.sent@hwcollab.example>"},
}
GENERIC_BOUNCE = {"email": "nobody@security.example", "source": "matrix", "type": "hard"}
NOTIFIER_WEBHOOKS = (
    "POST /api/webhooks/ses",
    "POST /api/webhooks/postmark",
    "POST /api/webhooks/bounces",
)


def test_every_write_route_has_a_matrix_entry(
    subscriber: Service, employer: Service, notifier: Service
) -> None:
    assert write_routes(employer.app) == set(EMPLOYER_MATRIX)
    assert write_routes(subscriber.app) == set(SUBSCRIBER_MATRIX)
    assert write_routes(notifier.app) == set(NOTIFIER_MATRIX) | set(NOTIFIER_INTERNAL) | set(
        NOTIFIER_WEBHOOKS
    )


# --- employer --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def accounts(employer: Service, notifier: Service) -> AsyncIterator[tuple[Account, Account]]:
    # The employer's reach estimates go to this package's notifier, in process.
    reach = NotifierReach(
        base_url=NOTIFIER_URL,
        token=DEV_REACH_TOKEN,
        timeout_seconds=10.0,
        transport=httpx.ASGITransport(app=notifier.asgi),
    )
    employer.app.dependency_overrides[reach_source] = lambda: reach

    async def index_loaded() -> bool:
        async with notifier.client() as client:
            return (await client.get("/readyz")).status_code == 200

    await eventually(index_loaded, timeout=60, what="the notifier's match index")
    owner = await new_account(employer, name="owner")
    other = await new_account(employer, name="other")
    yield owner, other
    await owner.close()
    await other.close()
    employer.app.dependency_overrides.pop(reach_source, None)
    await reach.aclose()


async def _other_employer(employer: Service, case: Case) -> str:
    """An employer of its own for a decision that would change what the owner may do."""
    account = await new_account(employer, name="decided")
    await account.close()
    async with employer.client(**ADMIN) as admin:
        if case.resource == "suspended_employer":
            url = f"/api/admin/employers/{account.employer_id}/suspend"
            assert (await admin.post(url, json=REASON)).status_code == 200
    if case.resource == "pending_employer":
        await employer.db["employers"].update_one(
            {"_id": account.employer_id}, {"$set": {"status": "pending"}}
        )
    return account.employer_id


async def _resource_url(case: Case, path: str, owner: Account, employer: Service) -> str:
    if case.resource in ("other_employer", "pending_employer", "suspended_employer"):
        return path.format(employer_id=await _other_employer(employer, case))
    if case.resource == "opening":
        return path.format(opening_id=(await owner.post_opening())["opening_id"])
    if case.resource == "external_id":
        external_id = unique("REQ")
        await owner.post_opening(external_id=external_id)
        return path.format(external_id=external_id)
    if case.resource == "api_key":
        return path.format(key_id=await owner.api_key_id())
    if case.resource == "employer":
        return path.format(employer_id=owner.employer_id)
    return path


async def _page_post(client: httpx.AsyncClient, url: str, form: dict[str, Any]) -> httpx.Response:
    """A form POST with the CSRF token this client's own pages carry (so that only the
    authorization decides)."""
    page = await client.get("/login")
    csrf = csrf_of(page.text) if "csrf_token" in page.text else ""
    if page.status_code == 303 or not csrf:
        csrf = csrf_of((await client.get("/dashboard")).text)
    return await client.post(url, data=form | {"csrf_token": csrf})


async def _operator_page_post(
    employer: Service, url: str, case: Case, *, owner: Account, before: list[Any]
) -> None:
    """An operator page's form: anyone without an operator session — anonymous, a bearer
    admin token, a signed-in employer — is sent to the operator sign-in, changing nothing."""
    async with employer.client() as anonymous, employer.client(**ADMIN) as admin:
        for name, stranger in {
            "anonymous": anonymous,
            "admin token": admin,
            "employer": owner.browser,
        }.items():
            answer = await _page_post(stranger, url, case.form)
            assert answer.status_code == 303, (url, name, answer.status_code, answer.text[:200])
            assert answer.headers["location"] == "/operators", (url, name)
    assert await owner_state(owner) == before, f"{url}: refused calls changed state"
    async with employer.client() as operator:
        sign_in = await operator.get("/operators")
        token = {"csrf_token": csrf_of(sign_in.text), "token": ADMIN_TOKEN}
        assert (await operator.post("/operators/login", data=token)).status_code == 303
        page = await operator.get("/operators")
        answer = await operator.post(url, data=case.form | {"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 303, (url, answer.status_code, answer.text[:300])
    assert answer.headers["location"].startswith("/operators"), url


def _refused_like_a_stranger(answer: httpx.Response, *, page: bool, what: str) -> None:
    if page:
        assert answer.status_code == 303, (what, answer.status_code, answer.text[:200])
        assert answer.headers["location"] == "/login", what
    else:
        assert answer.status_code == 401, (what, answer.status_code, answer.text[:200])


def _refused_as_another_employer(answer: httpx.Response, url: str, *, what: str) -> None:
    assert answer.status_code in (403, 404), (what, answer.status_code, answer.text[:200])
    resource_id = url.split("/")[-2] if url.endswith(("/close", "/edit", "/revoke")) else ""
    assert "Care Coordinator" not in answer.text, what  # nothing of the resource leaks
    if resource_id:
        assert "Coordinate care" not in answer.text, what


@pytest.mark.parametrize(
    "route", sorted(r for r, c in EMPLOYER_MATRIX.items() if c.who != "public")
)
async def test_employer_write_routes(
    route: str, employer: Service, accounts: tuple[Account, Account]
) -> None:
    owner, other = accounts
    case = EMPLOYER_MATRIX[route]
    if case.own_account:
        owner = await new_account(employer, name="own")
    try:
        await _check_employer_route(route, case, employer, owner, other)
    finally:
        if case.own_account:
            await owner.close()


async def _check_employer_route(
    route: str, case: Case, employer: Service, owner: Account, other: Account
) -> None:
    method, path = route.split(" ", 1)
    url = await _resource_url(case, path, owner, employer)
    before = await owner_state(owner)

    async with employer.client() as anonymous, employer.client(**ADMIN) as admin:
        if case.page and case.who == "admin":
            await _operator_page_post(employer, url, case, owner=owner, before=before)
            return
        if case.page:
            owner_browser = employer.client()
            assert (await sign_in_browser(owner_browser, owner.email)).status_code == 303
            strangers = {"anonymous": anonymous, "admin token": admin}
            for name, stranger in strangers.items():
                answer = await _page_post(stranger, url, case.form)
                _refused_like_a_stranger(answer, page=True, what=f"{route} as {name}")
            if case.who == "owner":
                answer = await _page_post(other.browser, url, case.form)
                _refused_as_another_employer(answer, url, what=f"{route} as another employer")
            assert await owner_state(owner) == before, f"{route}: refused calls changed state"
            try:
                answer = await _page_post(owner_browser, url, case.form)
            finally:
                await owner_browser.aclose()
            assert answer.status_code in (200, 201, 303), (route, answer.text[:300])
            assert answer.headers.get("location") != "/login", route
            return

        callers = {"anonymous": anonymous, "owner": owner.api, "other": other.api, "admin": admin}
        allowed_caller = "admin" if case.who == "admin" else "owner"
        # The caller who may goes last: until then, nothing may have changed.
        for name in sorted(callers, key=lambda name: name == allowed_caller):
            caller = callers[name]
            if name == "other" and case.who == "self":
                continue  # /me routes act on the caller's own account
            answer = await caller.request(method, url, json=case.json)
            what = f"{route} as {name}"
            allowed = name == allowed_caller
            if allowed:
                assert answer.status_code in (200, 201, 202, 204), (what, answer.text[:300])
            elif name == "other" and case.who == "owner":
                _refused_as_another_employer(answer, url, what=what)
            else:
                assert answer.status_code in (401, 403), (what, answer.status_code)
                if name == "anonymous" or case.who != "admin":
                    assert answer.status_code == 401, what
            if not allowed:
                assert await owner_state(owner) == before, f"{what} changed state"


async def test_employer_public_write_routes(
    employer: Service, accounts: tuple[Account, Account]
) -> None:
    owner, _ = accounts
    async with employer.client() as anonymous:
        email = f"{unique('public')}@security.example"
        await signed_up(employer, anonymous, employer_signup(email))
        credentials = {"email": email, "password": PASSWORD}
        assert (await anonymous.post("/api/auth/token", json=credentials)).status_code == 200
    async with employer.client() as browser:
        assert (await sign_in_browser(browser, owner.email)).status_code == 303
        dashboard = await browser.get("/dashboard")
        signed_out = await browser.post("/logout", data={"csrf_token": csrf_of(dashboard.text)})
        assert signed_out.status_code == 303
        assert (await browser.get("/dashboard")).headers["location"] == "/login"
    async with employer.client() as browser:
        form = await browser.get("/signup")
        signup = {
            "csrf_token": csrf_of(form.text),
            "organization_name": "Page Signup Care",
            "contact_email": f"{unique('page')}@security.example",
            "password": PASSWORD,
            "city": "Worcester",
            "state": "MA",
            "zip": "01608",
            "settings": "medical",
        }
        answer = await browser.post("/signup", data=signup)
        assert answer.status_code == 202  # "Check your inbox"
        link = await emailed_link(employer, "", "verify_signup", email=signup["contact_email"])
        form = await browser.get(link.removeprefix(EMPLOYER_URL))
        forged = await browser.post(
            "/verify-email", data={"csrf_token": csrf_of(form.text), "token": "forged"}
        )
        assert forged.status_code == 410
        answer = await browser.post(
            "/verify-email", data={"csrf_token": csrf_of(form.text), "token": token_of(link)}
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/dashboard"
    await _anyone_may_reset_a_password_with_the_emailed_link_only(employer)


async def _anyone_may_reset_a_password_with_the_emailed_link_only(employer: Service) -> None:
    account = await new_account(employer, name="reset")
    async with employer.client() as anonymous:
        asked = await anonymous.post("/api/employers/password-reset", json={"email": account.email})
        assert asked.status_code == 202
        token = token_of(await emailed_link(employer, account.employer_id, "password_reset"))
        guessed = await anonymous.post(
            "/api/employers/password-reset/confirm",
            json={"token": token[:-2] + "xx", "password": "a guessed long passphrase"},
        )
        assert guessed.status_code == 422
        reset = await anonymous.post(
            "/api/employers/password-reset/confirm",
            json={"token": token, "password": "a new long passphrase"},
        )
        assert reset.status_code == 200
        form = await anonymous.get("/forgot-password")
        page = await anonymous.post(
            "/forgot-password",
            data={"csrf_token": csrf_of(form.text), "email": account.email},
        )
        assert page.status_code == 202
        token = token_of(await emailed_link(employer, account.employer_id, "password_reset"))
        form = await anonymous.get(f"/reset-password?token={token}")
        forged = await anonymous.post(
            "/reset-password",
            data={"csrf_token": csrf_of(form.text), "token": "forged", "password": PASSWORD},
        )
        assert forged.status_code == 410
        chosen = await anonymous.post(
            "/reset-password",
            data={"csrf_token": csrf_of(form.text), "token": token, "password": PASSWORD},
        )
        assert chosen.status_code == 303
    # The reset ended the account's API session (access token) of before.
    assert (await account.api.get("/api/employers/me")).status_code == 401
    await account.close()


# --- subscriber ------------------------------------------------------------------------------


def _subscriber_call(
    client: httpx.AsyncClient, method: str, path: str, case: Case, link: str | None
) -> Any:
    params = {} if link is None or path == "/api/subscribers/confirm" else {"token": link}
    json = case.json
    if path == "/api/subscribers/confirm":
        json = {} if link is None else {"token": link}
    if case.page:
        return client.request(method, path, params=params, data=case.form)
    return client.request(method, path, params=params, json=json)


@pytest.mark.parametrize(
    "route", sorted(r for r, c in SUBSCRIBER_MATRIX.items() if c.who == "link")
)
async def test_subscriber_link_routes(route: str, subscriber: Service) -> None:
    method, path = route.split(" ", 1)
    case = SUBSCRIBER_MATRIX[route]
    confirmed = case.purpose is not Purpose.CONFIRM
    mine = await new_subscriber(subscriber, confirmed=confirmed)
    theirs = await new_subscriber(subscriber, confirmed=confirmed)
    collection = subscriber.db["subscribers"]
    if case.paused:
        async with subscriber.client() as client:
            for subscriber_id in (mine, theirs):
                paused = await client.post(
                    "/pause", params={"token": token(Purpose.MANAGE, subscriber_id)}
                )
                assert paused.status_code == 200, paused.text
    if case.asked:
        for subscriber_id in (mine, theirs):
            await collection.update_one(
                {"_id": subscriber_id}, {"$set": {"sunset_notice_at": datetime.now(UTC)}}
            )
    before = await collection.find_one({"_id": mine})
    async with subscriber.client() as anonymous, subscriber.client(**ADMIN) as admin:
        for name, caller in {"anonymous": anonymous, "admin token": admin}.items():
            answer = await _subscriber_call(caller, method, path, case, None)
            assert 400 <= answer.status_code < 500, (route, name, answer.status_code)
        # Another subscriber's token acts on that subscriber only.
        answer = await _subscriber_call(anonymous, method, path, case, token(case.purpose, theirs))
        assert answer.status_code in (200, 202, 204), (route, answer.text[:300])
        assert await collection.find_one({"_id": mine}) == before, f"{route} changed another"
        answer = await _subscriber_call(anonymous, method, path, case, token(case.purpose, mine))
        assert answer.status_code in (200, 202, 204), (route, answer.text[:300])
        assert await collection.find_one({"_id": mine}) != before, f"{route} did nothing"


async def test_subscriber_admin_routes_are_for_operators_only(subscriber: Service) -> None:
    routes = sorted(r for r, c in SUBSCRIBER_MATRIX.items() if c.who == "admin")
    assert routes == ["POST /api/admin/sunset/run"]
    manage = token(Purpose.MANAGE, await new_subscriber(subscriber))
    async with subscriber.client() as anonymous, subscriber.client(**ADMIN) as admin:
        for route in routes:
            method, path = route.split(" ", 1)
            for name, headers in {
                "anonymous": {},
                "a wrong token": {"Authorization": "Bearer not-the-admin-token"},
                "a subscriber's link token": {"Authorization": f"Bearer {manage}"},
            }.items():
                answer = await anonymous.request(method, path, headers=headers)
                assert answer.status_code == 401, (route, name, answer.text[:300])
            answer = await admin.request(method, path)
            assert answer.status_code == 200, (route, answer.text[:300])


async def test_subscriber_public_write_routes(subscriber: Service) -> None:
    async with subscriber.client() as anonymous:
        email = f"{unique('public')}@security.example"
        assert (
            await anonymous.post("/api/subscribers", json=subscriber_signup(email))
        ).status_code == 202
        assert (
            await anonymous.post("/api/preferences/link", json={"email": email})
        ).status_code == 202
        form = {
            "email": f"{unique('page')}@security.example",
            "roles": "care_manager",
            "zip": "01608",
        }
        assert (await anonymous.post("/", data=form)).status_code == 200
        assert (await anonymous.post("/preferences/link", data={"email": email})).status_code == 200


# --- notifier --------------------------------------------------------------------------------


@pytest.mark.parametrize("route", sorted(NOTIFIER_MATRIX))
async def test_notifier_routes_are_for_operators_only(
    route: str, notifier: Service, accounts: tuple[Account, Account]
) -> None:
    owner, _ = accounts
    method, path = route.split(" ", 1)
    url = path.format(email="suppressed@security.example")
    body = NOTIFIER_MATRIX[route]
    employer_token = {"Authorization": f"Bearer {owner.token}"}
    wrong = {"Authorization": f"Bearer {ADMIN_TOKEN}x"}
    async with (
        notifier.client() as anonymous,
        notifier.client(**employer_token) as employer_caller,
        notifier.client(**wrong) as guesser,
        notifier.client(**ADMIN) as admin,
    ):
        for name, caller in {
            "anonymous": anonymous,
            "employer": employer_caller,
            "wrong token": guesser,
        }.items():
            answer = await caller.request(method, url, json=body)
            assert answer.status_code == 401, (route, name, answer.status_code)
        if method == "DELETE":
            suppress = NOTIFIER_MATRIX["POST /api/admin/suppressions"]
            assert (await admin.post("/api/admin/suppressions", json=suppress)).status_code == 201
        answer = await admin.request(method, url, json=body)
        assert answer.status_code in (200, 201, 202, 204), (route, answer.text[:300])


@pytest.mark.parametrize("route", sorted(NOTIFIER_INTERNAL))
async def test_notifier_internal_routes_want_their_own_token(
    route: str, notifier: Service, accounts: tuple[Account, Account]
) -> None:
    owner, _ = accounts
    method, path = route.split(" ", 1)
    body = NOTIFIER_INTERNAL[route]
    callers = {
        "anonymous": {},
        "employer": {"Authorization": f"Bearer {owner.token}"},
        "operator": ADMIN,
        "wrong token": {"Authorization": f"Bearer {DEV_REACH_TOKEN}x"},
    }
    for name, headers in callers.items():
        async with notifier.client(**headers) as caller:
            answer = await caller.request(method, path, json=body)
        assert answer.status_code == 401, (route, name, answer.status_code)
    async with notifier.client(Authorization=f"Bearer {DEV_REACH_TOKEN}") as employer_service:
        answer = await employer_service.request(method, path, json=body)
    assert answer.status_code == 200, (route, answer.text[:300])


async def test_another_employer_learns_nothing_of_an_unlisted_opening(
    security_kafka: str, mongo_url: str
) -> None:
    """An employer awaiting approval has openings nobody else can see: another employer gets the
    same 404 for them as for an id that does not exist (not a 403 that tells it exists)."""
    app = create_employer_app(
        employer_settings(security_kafka, mongo_url, employer_approval="manual")
    )
    service = Service(app, app, app.state.runtime.db, EMPLOYER_URL)
    pending, other = (
        await new_account(service, name="pending"),
        await new_account(service, name="peer"),
    )
    try:
        hidden = (await pending.post_opening())["opening_id"]
        for path in (f"/api/openings/{hidden}", "/api/openings/no-such-opening"):
            patched = await other.api.patch(path, json={"title": "Mine now"})
            closed = await other.api.post(f"{path}/close")
            assert (patched.status_code, closed.status_code) == (404, 404), path
            assert patched.json() == closed.json() == {"detail": "Not found."}
        public = await other.api.get(f"/api/openings/{hidden}")
        assert public.status_code == 404
        assert (
            await pending.api.patch(f"/api/openings/{hidden}", json={"title": "T"})
        ).status_code == 200
    finally:
        await pending.close()
        await other.close()
        await app.state.runtime.mongo.close()


async def test_provider_webhooks_want_their_own_credentials(
    notifier: Service, accounts: tuple[Account, Account]
) -> None:
    owner, _ = accounts
    bearers = {
        "anonymous": {},
        "employer": {"Authorization": f"Bearer {owner.token}"},
        "operator": ADMIN,
        "reach token": {"Authorization": f"Bearer {DEV_REACH_TOKEN}"},
        "wrong token": {"Authorization": f"Bearer {DEV_BOUNCE_WEBHOOK_TOKEN}x"},
    }
    for name, headers in bearers.items():
        async with notifier.client(**headers) as caller:
            for path, body in (
                ("/api/webhooks/bounces", GENERIC_BOUNCE),
                ("/api/webhooks/postmark", POSTMARK_BOUNCE),
            ):
                answer = await caller.post(path, json=body)
                assert answer.status_code == 401, (path, name, answer.status_code)
    async with notifier.client() as caller:
        for user, password in (
            ("postmark", DEV_POSTMARK_WEBHOOK_PASSWORD + "x"),
            ("admin", ADMIN_TOKEN),
        ):
            answer = await caller.post(
                "/api/webhooks/postmark", json=POSTMARK_BOUNCE, auth=(user, password)
            )
            assert answer.status_code == 401, (user, answer.status_code)
        # Signed, but by a key of our own whose certificate is not on an SNS host: refused, as
        # is the same message presented with any bearer token.
        with sns_host() as host:
            message = host.notification(
                ses_bounce(message_id="<never.sent@hwcollab.example>", recipient="a@b.example")
            )
            for headers in bearers.values():
                answer = await caller.post("/api/webhooks/ses", json=message, headers=headers)
                assert answer.status_code == 401, answer.text
                assert "certificate" in answer.json()["detail"]  # (the topic is allowed)
            assert host.fetches() == 0
        right = await caller.post(
            "/api/webhooks/postmark",
            json=POSTMARK_BOUNCE,
            auth=("postmark", DEV_POSTMARK_WEBHOOK_PASSWORD),
        )
        assert right.status_code == 200, right.text
    async with notifier.client(Authorization=f"Bearer {DEV_BOUNCE_WEBHOOK_TOKEN}") as provider:
        right = await provider.post("/api/webhooks/bounces", json=GENERIC_BOUNCE)
        assert right.status_code == 200, right.text
        assert right.json()["outcome"] == "unknown_message"
