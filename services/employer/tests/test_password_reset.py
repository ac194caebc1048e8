"""Password reset over in-memory fakes: the same answer for known and unknown addresses, the
emailed single-use link (only its hash stored), 30 minutes, the limits, ending every session but
not API keys, and the two pages."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx

from hwcollab_employer.accounts import RESET_LINK_INVALID
from hwcollab_employer.password_rules import TOO_COMMON
from hwcollab_employer.security import link_token_hash
from hwcollab_schemas.events import EmployerAccountEmailRequested

from .conftest import ADMIN_HEADERS, BodyFactory, Harness
from .test_pages import _csrf

PASSWORD = "a very long passphrase"
NEW_PASSWORD = "another long passphrase"
EMAIL = "hr@worcester-care.example"


async def _sign_up(client: httpx.AsyncClient, signup: BodyFactory, email: str = EMAIL) -> str:
    response = await client.post("/api/admin/employers", headers=ADMIN_HEADERS, json=signup(email))
    assert response.status_code == 201, response.text
    return str(response.json()["employer_id"])


async def _token(
    client: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD
) -> httpx.Response:
    return await client.post("/api/auth/token", json={"email": email, "password": password})


def _reset_emails(harness: Harness) -> list[EmployerAccountEmailRequested]:
    return [
        e
        for e in harness.uow.of_class(EmployerAccountEmailRequested)
        if e.payload.kind == "password_reset"
    ]


def _link_token(harness: Harness) -> str:
    url = _reset_emails(harness)[-1].payload.url
    assert url is not None
    assert url.startswith("http://127.0.0.1:8002/reset-password?token=")
    return parse_qs(urlsplit(url).query)["token"][0]


async def test_known_and_unknown_addresses_get_the_same_answer(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client:
        employer_id = await _sign_up(client, signup)
        known = await client.post("/api/employers/password-reset", json={"email": EMAIL.upper()})
        unknown = await client.post(
            "/api/employers/password-reset", json={"email": "nobody@nowhere.example"}
        )
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert "30 minutes" in known.json()["detail"]
    [email] = _reset_emails(harness)  # only the known address is written to
    assert (email.payload.employer_id, email.payload.email) == (employer_id, EMAIL)
    assert email.payload.organization_name == "Worcester Care Partners"
    assert email.payload.expires_at == harness.clock.now() + timedelta(minutes=30)
    assert email.key == employer_id
    token = _link_token(harness)
    stored = harness.repository.password_resets[link_token_hash(token)]  # only the hash is kept
    assert stored.employer_id == employer_id
    # The unknown address did the same work: a decoy nobody has the token of.
    [decoy] = [r for r in harness.repository.password_resets.values() if r is not stored]
    assert decoy.employer_id == ""
    assert len(token) >= 43  # 256 random bits


async def test_requests_are_limited_per_client_and_per_address(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client:
        await _sign_up(client, signup)
    answers = []
    for i in range(6):  # six clients, one address: the address's limit (5/hour)
        async with harness.client(ip=f"10.0.0.{i}") as client:
            answer = await client.post("/api/employers/password-reset", json={"email": EMAIL})
            answers.append(answer.status_code)
    assert answers == [202] * 5 + [429]
    async with harness.client(ip="10.0.1.1") as client:  # one client, many addresses
        for i in range(5):
            ok = await client.post(
                "/api/employers/password-reset", json={"email": f"{i}@x.example"}
            )
            assert ok.status_code == 202
        limited = await client.post("/api/employers/password-reset", json={"email": "z@x.example"})
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert len(_reset_emails(harness)) == 5


async def test_the_link_works_once_ends_sessions_and_keeps_api_keys(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client:
        await _sign_up(client, signup)
        old = {"Authorization": f"Bearer {(await _token(client)).json()['access_token']}"}
        created = await client.post("/api/employers/me/api-keys", headers=old, json={"name": "a"})
        key = {"Authorization": f"Bearer {created.json()['api_key']}"}
        await client.post("/api/employers/password-reset", json={"email": EMAIL})
        await client.post("/api/employers/password-reset", json={"email": EMAIL})
        first_url = _reset_emails(harness)[0].payload.url
        assert first_url is not None
        first_token = parse_qs(urlsplit(first_url).query)["token"][0]
        token = _link_token(harness)
        changed = await client.post(
            "/api/employers/password-reset/confirm",
            json={"token": token, "password": NEW_PASSWORD},
        )
        again = await client.post(
            "/api/employers/password-reset/confirm",
            json={"token": token, "password": "yet another passphrase"},
        )
        other_link = await client.post(
            "/api/employers/password-reset/confirm",
            json={"token": first_token, "password": "yet another passphrase"},
        )
        old_password = await _token(client)
        new_password = await _token(client, password=NEW_PASSWORD)
        ended = await client.get("/api/employers/me", headers=old)
        by_key = await client.get("/api/employers/me", headers=key)
        fresh = {"Authorization": f"Bearer {new_password.json()['access_token']}"}
        signed_in = await client.get("/api/employers/me", headers=fresh)
    assert changed.status_code == 200
    assert changed.json() == {"detail": "Your password has been changed. Sign in with it."}
    for used in (again, other_link):  # once; and the other links of the account stop too
        assert used.status_code == 422
        assert used.json()["detail"][0]["loc"] == ["body", "token"]
        assert used.json()["detail"][0]["msg"] == RESET_LINK_INVALID
    assert old_password.status_code == 401
    assert new_password.status_code == 200
    assert ended.status_code == 401  # the access token of before the reset
    assert by_key.status_code == 200  # API keys are not sessions
    assert signed_in.status_code == 200
    assert harness.repository.password_resets == {}  # the other links went with it


async def test_the_link_expires_after_30_minutes(harness: Harness, signup: BodyFactory) -> None:
    async with harness.client() as client:
        await _sign_up(client, signup)
        await client.post("/api/employers/password-reset", json={"email": EMAIL})
        token = _link_token(harness)
        harness.clock.advance(timedelta(minutes=30))
        late = await client.post(
            "/api/employers/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
        )
        page = await client.get(f"/reset-password?token={token}")
        still = await _token(client)
    assert late.status_code == 422
    assert late.json()["detail"][0]["loc"] == ["body", "token"]
    assert page.status_code == 410
    assert "expired or was already used" in page.text
    assert still.status_code == 200


async def test_a_refused_password_leaves_the_link_usable(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client:
        await _sign_up(client, signup)
        await client.post("/api/employers/password-reset", json={"email": EMAIL})
        token = _link_token(harness)
        common = await client.post(
            "/api/employers/password-reset/confirm",
            json={"token": token, "password": "Password1234"},
        )
        unknown = await client.post(
            "/api/employers/password-reset/confirm",
            json={"token": "not-a-token", "password": NEW_PASSWORD},
        )
        good = await client.post(
            "/api/employers/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
        )
    assert common.status_code == 422
    assert common.json()["detail"][0]["loc"] == ["body", "password"]
    assert TOO_COMMON in common.json()["detail"][0]["msg"]
    assert unknown.status_code == 422
    assert good.status_code == 200


async def test_the_pages_forgot_and_choose_a_new_password(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client:
        await _sign_up(client, signup)
        login = await client.get("/login")
        assert 'href="/forgot-password"' in login.text
        forgot = await client.get("/forgot-password")
        csrf = _csrf(forgot.text)
        unknown = await client.post(
            "/forgot-password", data={"csrf_token": csrf, "email": "nobody@x.example"}
        )
        known = await client.post("/forgot-password", data={"csrf_token": csrf, "email": EMAIL})
        forged = await client.post("/forgot-password", data={"csrf_token": "x", "email": EMAIL})
        token = _link_token(harness)
        form = await client.get(f"/reset-password?token={token}")
        await client.get(f"/reset-password?token={token}")  # a mail scanner: nothing used up
        short = await client.post(
            "/reset-password",
            data={"csrf_token": _csrf(form.text), "token": token, "password": "short"},
        )
        changed = await client.post(
            "/reset-password",
            data={"csrf_token": _csrf(form.text), "token": token, "password": NEW_PASSWORD},
        )
        dashboard = await client.get("/dashboard")
    assert unknown.status_code == known.status_code == 202

    def main(html: str) -> str:
        return re.sub(r'name="csrf_token" value="[^"]+"', "", html)

    assert main(unknown.text) == main(known.text)
    assert "If an employer account uses this address" in known.text
    assert forged.status_code == 403
    assert len(_reset_emails(harness)) == 1
    assert form.status_code == 200
    assert f'name="token" value="{token}"' in form.text
    assert short.status_code == 422
    assert 'id="field-password-error"' in short.text
    assert changed.status_code == 303
    assert changed.headers["location"] == "/dashboard"
    assert dashboard.status_code == 200  # signed in with the new session


async def test_a_reset_signs_out_the_other_browsers(harness: Harness, signup: BodyFactory) -> None:
    async with harness.client() as elsewhere, harness.client() as here:
        await _sign_up(elsewhere, signup)
        page = await elsewhere.get("/login")
        await elsewhere.post(
            "/login", data={"csrf_token": _csrf(page.text), "email": EMAIL, "password": PASSWORD}
        )
        assert (await elsewhere.get("/dashboard")).status_code == 200
        await here.post("/api/employers/password-reset", json={"email": EMAIL})
        token = _link_token(harness)
        form = await here.get(f"/reset-password?token={token}")
        await here.post(
            "/reset-password",
            data={"csrf_token": _csrf(form.text), "token": token, "password": NEW_PASSWORD},
        )
        kept = await here.get("/dashboard")
        ended = await elsewhere.get("/dashboard")
    assert kept.status_code == 200
    assert ended.status_code == 303
    assert ended.headers["location"] == "/login"
