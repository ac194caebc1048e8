"""Changing the password and the contact email, signed in, over in-memory fakes: the current
password required, the sessions that end and the API keys that do not, the new address confirmed
from its link (the old one told), and the account page."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx

from hwcollab_employer.accounts import EMAIL_LINK_INVALID, WRONG_CURRENT
from hwcollab_employer.password_rules import TOO_COMMON
from hwcollab_schemas.events import EmployerAccountEmailRequested

from .conftest import ADMIN_HEADERS, BodyFactory, Harness
from .test_pages import _csrf

EMAIL = "hr@worcester-care.example"
NEW_EMAIL = "jobs@worcester-care.example"
PASSWORD = "a very long passphrase"
NEW_PASSWORD = "another long passphrase"


async def _account(client: httpx.AsyncClient, signup: BodyFactory) -> dict[str, str]:
    created = await client.post("/api/admin/employers", headers=ADMIN_HEADERS, json=signup(EMAIL))
    assert created.status_code == 201, created.text
    return await _bearer(client)


async def _bearer(
    client: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD
) -> dict[str, str]:
    issued = await client.post("/api/auth/token", json={"email": email, "password": password})
    assert issued.status_code == 200, issued.text
    return {"Authorization": f"Bearer {issued.json()['access_token']}"}


async def _browser_sign_in(
    client: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD
) -> None:
    page = await client.get("/login")
    signed_in = await client.post(
        "/login", data={"csrf_token": _csrf(page.text), "email": email, "password": password}
    )
    assert signed_in.status_code == 303, signed_in.text


def _emails(harness: Harness, kind: str) -> list[EmployerAccountEmailRequested]:
    return [
        e for e in harness.uow.of_class(EmployerAccountEmailRequested) if e.payload.kind == kind
    ]


def _token(url: str | None) -> str:
    assert url is not None
    return parse_qs(urlsplit(url).query)["token"][0]


async def test_changing_the_password_needs_the_current_one(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client, harness.client() as browser:
        bearer = await _account(client, signup)
        await _browser_sign_in(browser)
        key = await client.post("/api/employers/me/api-keys", headers=bearer, json={"name": "k"})
        by_key = {"Authorization": f"Bearer {key.json()['api_key']}"}
        wrong = await client.post(
            "/api/employers/me/password",
            headers=bearer,
            json={"current_password": "not my password at all", "new_password": NEW_PASSWORD},
        )
        common = await client.post(
            "/api/employers/me/password",
            headers=bearer,
            json={"current_password": PASSWORD, "new_password": "Password1234"},
        )
        anonymous = await client.post(
            "/api/employers/me/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        changed = await client.post(
            "/api/employers/me/password",
            headers=bearer,
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        fresh = {"Authorization": f"Bearer {changed.json()['access_token']}"}
        old_token = await client.get("/api/employers/me", headers=bearer)
        new_token = await client.get("/api/employers/me", headers=fresh)
        with_key = await client.get("/api/employers/me", headers=by_key)
        old_password = await client.post(
            "/api/auth/token", json={"email": EMAIL, "password": PASSWORD}
        )
        other_browser = await browser.get("/dashboard")
    assert wrong.status_code == 422
    assert wrong.json()["detail"] == [
        {"loc": ["body", "current_password"], "msg": WRONG_CURRENT, "type": "value_error"}
    ]
    assert common.status_code == 422
    assert common.json()["detail"][0]["loc"] == ["body", "new_password"]
    assert TOO_COMMON in common.json()["detail"][0]["msg"]
    assert anonymous.status_code == 401
    assert changed.status_code == 200
    assert changed.json()["token_type"] == "bearer"
    assert (old_token.status_code, new_token.status_code, with_key.status_code) == (401, 200, 200)
    assert old_password.status_code == 401
    assert other_browser.status_code == 303  # signed out


async def test_the_contact_email_changes_only_from_the_link(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client:
        bearer = await _account(client, signup)
        wrong = await client.post(
            "/api/employers/me/email",
            headers=bearer,
            json={"new_email": NEW_EMAIL, "password": "not my password at all"},
        )
        same = await client.post(
            "/api/employers/me/email",
            headers=bearer,
            json={"new_email": EMAIL.upper(), "password": PASSWORD},
        )
        asked = await client.post(
            "/api/employers/me/email",
            headers=bearer,
            json={"new_email": NEW_EMAIL, "password": PASSWORD},
        )
        before = (await client.get("/api/employers/me", headers=bearer)).json()["contact_email"]
        [confirm] = _emails(harness, "email_change_confirm")
        [notice] = _emails(harness, "email_change_notice")
        token = _token(confirm.payload.url)
        confirmed = await client.post("/api/employers/email/confirm", json={"token": token})
        again = await client.post("/api/employers/email/confirm", json={"token": token})
        after = (await client.get("/api/employers/me", headers=bearer)).json()["contact_email"]
        old_address = await client.post(
            "/api/auth/token", json={"email": EMAIL, "password": PASSWORD}
        )
        await _bearer(client, email=NEW_EMAIL)
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["body", "password"]
    assert same.status_code == 422
    assert same.json()["detail"][0]["loc"] == ["body", "new_email"]
    assert asked.status_code == 202
    assert before == EMAIL  # nothing changes until the link is used
    assert (confirm.payload.email, notice.payload.email) == (NEW_EMAIL, EMAIL)
    assert confirm.payload.url is not None
    assert confirm.payload.url.startswith("http://127.0.0.1:8002/confirm-email?token=")
    assert confirm.payload.expires_at == harness.clock.now() + timedelta(hours=24)
    assert notice.payload.url is None
    assert confirmed.status_code == again.status_code == 200
    assert after == NEW_EMAIL
    assert old_address.status_code == 401


async def test_a_link_of_before_another_change_or_its_expiry_does_nothing(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client:
        bearer = await _account(client, signup)
        for address in ("first@new.example", "second@new.example"):
            await client.post(
                "/api/employers/me/email",
                headers=bearer,
                json={"new_email": address, "password": PASSWORD},
            )
        first, second = (_token(e.payload.url) for e in _emails(harness, "email_change_confirm"))
        assert (
            await client.post("/api/employers/email/confirm", json={"token": second})
        ).status_code == 200
        stale = await client.post("/api/employers/email/confirm", json={"token": first})
        await client.post(
            "/api/employers/me/email",
            headers=bearer,
            json={"new_email": "third@new.example", "password": PASSWORD},
        )
        third = _token(_emails(harness, "email_change_confirm")[-1].payload.url)
        harness.clock.advance(timedelta(hours=24, seconds=1))
        late = await client.post("/api/employers/email/confirm", json={"token": third})
        page = await client.get(f"/confirm-email?token={third}")
        me = (
            await client.get(
                "/api/employers/me", headers=await _bearer(client, "second@new.example")
            )
        ).json()
    assert stale.status_code == late.status_code == 422
    assert stale.json()["detail"][0] == {
        "loc": ["body", "token"],
        "msg": EMAIL_LINK_INVALID,
        "type": "value_error",
    }
    assert page.status_code == 410
    assert me["contact_email"] == "second@new.example"


async def test_a_taken_new_address_gets_the_same_answer_and_no_link(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client:
        bearer = await _account(client, signup)
        other = await client.post(
            "/api/admin/employers", headers=ADMIN_HEADERS, json=signup("hr@other.example")
        )
        free = await client.post(
            "/api/employers/me/email",
            headers=bearer,
            json={"new_email": NEW_EMAIL, "password": PASSWORD},
        )
        taken = await client.post(
            "/api/employers/me/email",
            headers=bearer,
            json={"new_email": "hr@other.example", "password": PASSWORD},
        )
    assert free.status_code == taken.status_code == 202
    assert free.json() == taken.json()
    [already] = _emails(harness, "already_registered")
    assert (already.payload.email, already.payload.employer_id) == (
        "hr@other.example",
        other.json()["employer_id"],
    )
    assert len(_emails(harness, "email_change_confirm")) == 1  # only the free address's
    assert len(_emails(harness, "email_change_notice")) == 2  # the old address hears of both


async def test_the_account_page(harness: Harness, signup: BodyFactory) -> None:
    async with harness.client() as client, harness.client() as elsewhere:
        await _account(client, signup)
        await _browser_sign_in(client)
        await _browser_sign_in(elsewhere)
        assert (await client.get("/dashboard")).text.count('href="/dashboard/account"') == 1
        page = await client.get("/dashboard/account")
        csrf = _csrf(page.text)
        wrong = await client.post(
            "/dashboard/account/password",
            data={"csrf_token": csrf, "current_password": "wrong", "new_password": NEW_PASSWORD},
        )
        changed = await client.post(
            "/dashboard/account/password",
            data={"csrf_token": csrf, "current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        page = await client.get("/dashboard/account?changed=password")
        ended = await elsewhere.get("/dashboard")
        bad_email = await client.post(
            "/dashboard/account/email",
            data={"csrf_token": _csrf(page.text), "new_email": "nope", "password": NEW_PASSWORD},
        )
        asked = await client.post(
            "/dashboard/account/email",
            data={"csrf_token": _csrf(page.text), "new_email": NEW_EMAIL, "password": NEW_PASSWORD},
        )
        token = _token(_emails(harness, "email_change_confirm")[-1].payload.url)
        shown = await client.get(f"/confirm-email?token={token}")
        still = (await client.get("/dashboard/account")).text
        confirmed = await client.post(
            "/confirm-email", data={"csrf_token": _csrf(shown.text), "token": token}
        )
        forged = await client.post(
            "/confirm-email", data={"csrf_token": _csrf(shown.text), "token": "forged"}
        )
    assert page.status_code == 200
    assert EMAIL in page.text
    assert wrong.status_code == 422
    assert 'id="field-current_password-error"' in wrong.text
    assert WRONG_CURRENT in wrong.text
    assert changed.status_code == 303  # this browser stays signed in…
    assert "Your password has been changed" in page.text
    assert ended.status_code == 303  # …the other one does not
    assert bad_email.status_code == 422
    assert 'id="field-new_email-error"' in bad_email.text
    assert asked.status_code == 303
    assert asked.headers["location"] == "/dashboard/account?changed=email"
    assert shown.status_code == 200
    assert shown.headers["Referrer-Policy"] == "no-referrer"
    assert "Confirm this address" in shown.text
    assert f"<strong>{EMAIL}</strong>" in still  # the GET changed nothing
    assert confirmed.status_code == 200
    assert f"Your contact email is now {NEW_EMAIL}" in confirmed.text
    assert forged.status_code == 410
