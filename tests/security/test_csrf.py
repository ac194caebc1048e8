"""CSRF on every cookie-authenticated form POST: the employer's pages check a token tied to the
browser's session (or, before sign-in, to a signed cookie). A missing, wrong or another session's
token gets 403 and changes nothing. The subscriber service sets no cookies at all: its forms are
authorized by the signed token in their URL, which a forging site cannot know."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hwcollab_common.tokens import Purpose

from .support import (
    ADMIN_TOKEN,
    OPENING,
    PASSWORD,
    Account,
    Service,
    csrf_of,
    new_account,
    new_subscriber,
    owner_state,
    sign_in_browser,
    token,
    unique,
    write_routes,
)

pytestmark = pytest.mark.integration

OPENING_FORM = {k: v for k, v in OPENING.items() if isinstance(v, str)} | {"pay_period": "hour"}
# form route → the fields of a genuine submission (without csrf_token)
FORMS: dict[str, dict[str, Any]] = {
    "POST /signup": {
        "organization_name": "Forged Signup Care",
        "contact_email": "forged-signup@security.example",
        "password": PASSWORD,
        "city": "Worcester",
        "state": "MA",
        "zip": "01608",
    },
    "POST /login": {"email": "{email}", "password": PASSWORD},
    # A token nobody was sent: the genuine submission is refused by the link (410), not CSRF.
    "POST /verify-email": {"token": "not-a-sent-token"},
    "POST /forgot-password": {"email": "{email}"},
    # A token nobody was sent: the genuine submission is refused by the link (410), not CSRF.
    "POST /reset-password": {"token": "not-a-sent-token", "password": "a new long passphrase"},
    "POST /logout": {},
    "POST /dashboard/openings/new": OPENING_FORM,
    "POST /dashboard/openings/estimate": OPENING_FORM,
    "POST /dashboard/openings/{opening_id}/edit": OPENING_FORM | {"title": "Forged"},
    "POST /dashboard/openings/{opening_id}/close": {},
    "POST /dashboard/api-keys": {"name": "forged"},
    "POST /dashboard/api-keys/{key_id}/revoke": {},
    # A wrong current password: the genuine submission reaches the check (422) and changes
    # nothing of the accounts the other cases share.
    "POST /dashboard/account/password": {
        "current_password": "not the password",
        "new_password": "a new long passphrase",
    },
    "POST /dashboard/account/email": {
        "new_email": "csrf-new@security.example",
        "password": PASSWORD,
    },
    "POST /confirm-email": {"token": "not-a-sent-token"},
    "POST /dashboard/profile": {
        "organization_name": "Forged Name",
        "city": "Worcester",
        "state": "MA",
        "zip": "01608",
    },
}


SIGNED_OUT_FORMS = (
    "/signup",
    "/login",
    "/verify-email",
    "/forgot-password",
    "/reset-password",
    "/confirm-email",
)


# The operator page's forms: checked against the operator session's own token.
OPERATOR_FORMS: dict[str, dict[str, Any]] = {
    "POST /operators/login": {"token": ADMIN_TOKEN},
    "POST /operators/logout": {},
    "POST /operators/employers/{employer_id}/approve": {},
    "POST /operators/employers/{employer_id}/reject": {"reason": "Forged."},
    "POST /operators/employers/{employer_id}/suspend": {"reason": "Forged."},
    "POST /operators/employers/{employer_id}/reinstate": {},
    "POST /operators/openings/{opening_id}/take-down": {"reason": "Forged."},
}


def test_every_form_post_is_listed(employer: Service) -> None:
    pages = {r for r in write_routes(employer.app) if not r.split(" ", 1)[1].startswith("/api/")}
    assert pages == set(FORMS) | set(OPERATOR_FORMS)


@pytest.mark.parametrize("route", sorted(OPERATOR_FORMS))
async def test_operator_forms_without_the_right_csrf_token_are_refused(
    route: str, employer: Service, accounts: tuple[Account, Account]
) -> None:
    owner, other = accounts
    path = route.split(" ", 1)[1].format(
        employer_id=owner.employer_id, opening_id=(await owner.post_opening())["opening_id"]
    )
    before = await owner_state(owner)
    async with employer.client() as browser:
        sign_in = await browser.get("/operators")
        if path != "/operators/login":
            credentials = {"csrf_token": csrf_of(sign_in.text), "token": ADMIN_TOKEN}
            assert (await browser.post("/operators/login", data=credentials)).status_code == 303
        wrong = {
            "missing": {},
            "empty": {"csrf_token": ""},
            "wrong": {"csrf_token": "x" * 32},
            "an employer session's": {"csrf_token": await other.csrf()},
        }
        for name, extra in wrong.items():
            answer = await browser.post(path, data=OPERATOR_FORMS[route] | extra)
            assert answer.status_code == 403, (route, name, answer.status_code)
            assert "operator" not in answer.headers.get("set-cookie", ""), (route, name)
            assert await owner_state(owner) == before, f"{route} with a {name} token changed state"


@pytest.fixture(scope="module")
async def accounts(employer: Service) -> AsyncIterator[tuple[Account, Account]]:
    owner = await new_account(employer, name="csrf")
    other = await new_account(employer, name="csrf-other")
    yield owner, other
    await owner.close()
    await other.close()


@pytest.mark.parametrize("route", sorted(FORMS))
async def test_forms_without_the_right_csrf_token_are_refused(
    route: str, employer: Service, accounts: tuple[Account, Account]
) -> None:
    owner, other = accounts
    path = route.split(" ", 1)[1].format(
        opening_id=(await owner.post_opening())["opening_id"], key_id=await owner.api_key_id()
    )
    form = {k: v.format(email=owner.email) for k, v in FORMS[route].items()}
    before = await owner_state(owner)
    signed_in = path not in SIGNED_OUT_FORMS
    # A browser of its own: signing out (or in) must not touch the shared accounts.
    async with employer.client() as browser:
        if signed_in:
            assert (await sign_in_browser(browser, owner.email)).status_code == 303
        else:
            await browser.get(path)  # the form sets the pre-sign-in CSRF cookie
        wrong = {
            "missing": {},
            "empty": {"csrf_token": ""},
            "wrong": {"csrf_token": "x" * 32},
            "another session's": {"csrf_token": await other.csrf()},
        }
        for name, extra in wrong.items():
            answer = await browser.post(path, data=form | extra)
            assert answer.status_code == 403, (route, name, answer.status_code)
            assert "session" not in answer.headers.get("set-cookie", ""), (route, name)
            assert await owner_state(owner) == before, f"{route} with a {name} token changed state"
        # A cross-site POST carries the cookies but cannot read the token: without the
        # form's token the session alone is not enough (checked above); with it, it works.
        page = await browser.get("/dashboard" if signed_in else "/login")
        answer = await browser.post(path, data=form | {"csrf_token": csrf_of(page.text)})
        assert answer.status_code in (200, 201, 202, 303, 410, 422), (route, answer.text[:300])
        assert answer.status_code != 422 or "Incorrect password" in answer.text, route


async def test_session_cookies_are_http_only_and_same_site(employer: Service) -> None:
    async with employer.client() as browser:
        form = await browser.get("/login")
        pre = form.headers["set-cookie"].lower()
        assert "httponly" in pre
        assert "samesite=lax" in pre
        account = await new_account(employer, name="cookie")
        try:
            answer = await browser.post(
                "/login",
                data={
                    "csrf_token": csrf_of(form.text),
                    "email": account.email,
                    "password": PASSWORD,
                },
            )
            session = ";".join(answer.headers.get_list("set-cookie")).lower()
            assert "hwcollab_employer_session=" in session
            assert "httponly" in session
            assert "samesite=lax" in session
        finally:
            await account.close()


async def test_subscriber_pages_set_no_cookies(subscriber: Service) -> None:
    subscriber_id = await new_subscriber(subscriber)
    manage = token(Purpose.MANAGE, subscriber_id)
    async with subscriber.client() as client:
        answers: list[httpx.Response] = [
            await client.get("/"),
            await client.post(
                "/",
                data={
                    "email": f"{unique('c')}@security.example",
                    "roles": "care_manager",
                    "zip": "01608",
                },
            ),
            await client.get("/preferences", params={"token": manage}),
            await client.post("/pause", params={"token": manage}),
            await client.get("/preferences/link"),
            await client.get("/keep", params={"token": token(Purpose.KEEP, subscriber_id)}),
        ]
    for answer in answers:
        assert answer.status_code == 200, answer.text[:200]
        assert "set-cookie" not in answer.headers, answer.request.url
