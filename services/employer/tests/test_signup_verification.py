"""Verified sign-up over in-memory fakes: the same 202 for a new and a taken address, the
account usable only from the emailed link (POST), an already-registered email instead for a
taken address, manual approval after verification, and the pages."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx

from hwcollab_employer.accounts import UNVERIFIED, VERIFY_LINK_INVALID
from hwcollab_schemas.events import EmployerAccountEmailRequested

from .conftest import ADMIN_HEADERS, BodyFactory, Harness
from .test_pages import _csrf, _signup_form

EMAIL = "hr@worcester-care.example"
PASSWORD = "a very long passphrase"


def _emails(harness: Harness, kind: str) -> list[EmployerAccountEmailRequested]:
    return [
        e for e in harness.uow.of_class(EmployerAccountEmailRequested) if e.payload.kind == kind
    ]


def _token(harness: Harness) -> str:
    url = _emails(harness, "verify_signup")[-1].payload.url
    assert url is not None
    assert url.startswith("http://127.0.0.1:8002/verify-email?token=")
    return parse_qs(urlsplit(url).query)["token"][0]


async def _sign_in(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/auth/token", json={"email": EMAIL, "password": password})


async def test_new_and_taken_addresses_get_the_same_answer(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client:
        taken = await client.post(
            "/api/admin/employers", headers=ADMIN_HEADERS, json=signup("hr@taken.example")
        )
        assert taken.status_code == 201
        harness.uow.events.clear()
        new = await client.post("/api/employers", json=signup(EMAIL))
        again = await client.post("/api/employers", json=signup("HR@Taken.example"))
    assert new.status_code == again.status_code == 202
    assert new.json() == again.json()
    assert "confirm" in new.json()["detail"]
    # Nothing about the account is in any answer; only emails differ, and only their readers
    # see them.
    [verify] = _emails(harness, "verify_signup")
    [already] = _emails(harness, "already_registered")
    assert verify.payload.email == EMAIL
    assert verify.payload.expires_at == harness.clock.now() + timedelta(hours=48)
    assert (already.payload.email, already.payload.employer_id) == (
        "hr@taken.example",
        taken.json()["employer_id"],
    )
    assert already.payload.url is None
    # The new account is in no event until it is verified.
    assert not harness.uow.of_type("employer.registered")
    [employer] = [e for e in harness.repository.employers.values() if e.contact_email == EMAIL]
    assert employer.status == "unverified"
    assert len(harness.repository.employers) == 2


async def test_an_unverified_account_cannot_sign_in_or_be_listed(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client:
        await client.post("/api/employers", json=signup(EMAIL))
        right = await _sign_in(client)
        wrong = await _sign_in(client, password="not the password at all")
        page = await client.get("/login")
        form = await client.post(
            "/login", data={"csrf_token": _csrf(page.text), "email": EMAIL, "password": PASSWORD}
        )
        directory = await client.get("/api/directory")
        [employer] = harness.repository.employers.values()
        approve = await client.post(
            f"/api/admin/employers/{employer.employer_id}/approve", headers=ADMIN_HEADERS
        )
    assert right.status_code == 403
    assert right.json() == {"detail": UNVERIFIED}
    assert wrong.status_code == 401  # without the password, nothing about the account
    assert wrong.json() == {"detail": "Incorrect email or password."}
    assert form.status_code == 403
    assert "confirm your email address first" in form.text
    assert directory.json()["total"] == 0
    assert approve.status_code == 409
    assert "not confirmed" in approve.json()["detail"]


async def test_the_link_verifies_once_and_auto_approval_applies(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client:
        await client.post("/api/employers", json=signup(EMAIL))
        token = _token(harness)
        verified = await client.post("/api/employers/verify", json={"token": token})
        again = await client.post("/api/employers/verify", json={"token": token})
        signed_in = await _sign_in(client)
    assert verified.status_code == again.status_code == 200
    assert verified.json()["status"] == "approved"
    assert again.json() == verified.json()
    assert signed_in.status_code == 200
    assert [e.event_type for e in harness.uow.events if e.event_type.startswith("employer.")] == [
        "employer.account_email_requested",
        "employer.registered",
        "employer.approved",
    ]


async def test_manual_approval_still_applies_after_verification(
    manual_harness: Harness, signup: BodyFactory
) -> None:
    async with manual_harness.client() as client:
        await client.post("/api/employers", json=signup(EMAIL))
        verified = await client.post(
            "/api/employers/verify", json={"token": _token(manual_harness)}
        )
        employer_id = verified.json()["employer_id"]
        approved = await client.post(
            f"/api/admin/employers/{employer_id}/approve", headers=ADMIN_HEADERS
        )
    assert verified.json()["status"] == "pending"
    assert not manual_harness.uow.of_type("employer.approved")[:-1]
    assert approved.json()["status"] == "approved"
    assert [e.event_type for e in manual_harness.uow.of_type("employer.registered")] == [
        "employer.registered"
    ]


async def test_signing_up_again_before_verifying_replaces_the_first_sign_up(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client:
        await client.post("/api/employers", json=signup(EMAIL, organization_name="First Try"))
        first = _token(harness)
        await client.post(
            "/api/employers",
            json=signup(EMAIL, organization_name="Second Try", password="the second passphrase"),
        )
        second = _token(harness)
        stale = await client.post("/api/employers/verify", json={"token": first})
        verified = await client.post("/api/employers/verify", json={"token": second})
        old_password = await _sign_in(client)
        new_password = await _sign_in(client, password="the second passphrase")
    assert stale.status_code == 422
    assert stale.json()["detail"][0] == {
        "loc": ["body", "token"],
        "msg": VERIFY_LINK_INVALID,
        "type": "value_error",
    }
    assert verified.status_code == 200
    [employer] = harness.repository.employers.values()
    assert employer.organization_name == "Second Try"
    assert (old_password.status_code, new_password.status_code) == (401, 200)


async def test_expired_and_forged_links_are_refused(harness: Harness, signup: BodyFactory) -> None:
    async with harness.client() as client:
        await client.post("/api/employers", json=signup(EMAIL))
        token = _token(harness)
        forged = await client.post("/api/employers/verify", json={"token": token[:-3] + "abc"})
        harness.clock.advance(timedelta(hours=48, seconds=1))
        late = await client.post("/api/employers/verify", json={"token": token})
        page = await client.get(f"/verify-email?token={token}")
    assert forged.status_code == late.status_code == 422
    assert page.status_code == 410
    assert "Sign up again" in page.text
    [employer] = harness.repository.employers.values()
    assert employer.status == "unverified"


async def test_a_password_reset_confirms_the_address_too(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client:
        await client.post("/api/employers", json=signup(EMAIL))
        await client.post("/api/employers/password-reset", json={"email": EMAIL})
        [reset] = _emails(harness, "password_reset")
        assert reset.payload.url is not None
        token = parse_qs(urlsplit(reset.payload.url).query)["token"][0]
        changed = await client.post(
            "/api/employers/password-reset/confirm",
            json={"token": token, "password": "a fresh long passphrase"},
        )
        signed_in = await _sign_in(client, password="a fresh long passphrase")
    assert changed.status_code == signed_in.status_code == 200
    assert harness.uow.of_type("employer.registered")


async def test_the_pages_sign_up_confirm_and_sign_in_once(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client:
        await client.post(
            "/api/admin/employers", headers=ADMIN_HEADERS, json=signup("hr@taken.example")
        )
        page = await client.get("/signup")
        new = await client.post("/signup", data=_signup_form(_csrf(page.text)))
        taken = await client.post(
            "/signup", data=_signup_form(_csrf(page.text), contact_email="hr@taken.example")
        )
        token = _token(harness)
        shown = await client.get(f"/verify-email?token={token}")
        [employer] = [e for e in harness.repository.employers.values() if e.contact_email == EMAIL]
        still = employer.status  # the GET confirmed nothing (mail scanners follow links)
        confirmed = await client.post(
            "/verify-email", data={"csrf_token": _csrf(shown.text), "token": token}
        )
        dashboard = await client.get("/dashboard")
    async with harness.client() as someone_else:
        shown = await someone_else.get(f"/verify-email?token={token}")
        reused = await someone_else.post(
            "/verify-email", data={"csrf_token": _csrf(shown.text), "token": token}
        )
    assert new.status_code == taken.status_code == 202

    def main(html: str) -> str:
        return re.sub(r'value="[^"]*"', "", html)

    assert main(new.text) == main(taken.text)
    assert "Check your inbox" in new.text
    assert "hwcollab_employer_session" not in new.headers.get("set-cookie", "")
    assert still == "unverified"
    assert shown.status_code == 200
    assert "Confirm my email address" in shown.text
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == "/dashboard"
    assert dashboard.status_code == 200
    # A link used again signs nobody in.
    assert reused.status_code == 200
    assert "already confirmed" in reused.text
    assert "hwcollab_employer_session" not in reused.headers.get("set-cookie", "")
