"""Employer accounts on the whole product: "Forgot your password?" in the browser, the link
arriving by email through the notifier and the SMTP sink, the new password ending the other
sessions; and the same request over HTTP telling nobody whether an account uses an address."""

from __future__ import annotations

import re
import statistics
import time

import httpx
import pytest
from playwright.sync_api import Page, expect

from hwcollab_testing.waiting import eventually_sync

from .mail import Inbox, Mail
from .pages import Camera, Visitors
from .stack import Stack
from .support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

NEW_PASSWORD = "a brand new passphrase for tests"
ROUNDS = 7
MAX_RATIO = 3.0


def _sign_in(page: Page, stack: Stack, contact: str, password: str = PASSWORD) -> None:
    page.goto(stack.employer_url + "/login")
    page.get_by_label("Email").fill(contact)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard"))


def _reset_mail(inbox: Inbox, contact: str) -> Mail:
    return inbox.wait(
        contact, lambda m: m.kind == "employer_password_reset", what="the password reset email"
    )


def test_an_employer_who_forgot_the_password_chooses_a_new_one(
    stack: Stack, inbox: Inbox, visitors: Visitors, camera: Camera
) -> None:
    contact = stack.address("hr.forgetful")
    old_token = stack.register_employer(
        name="Forgetful Family Services", contact=contact, zip_code="01608", city="Worcester"
    )
    elsewhere = visitors.new_page()
    _sign_in(elsewhere, stack, contact)

    page = visitors.new_page()
    page.goto(stack.employer_url + "/login")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Forgot your password?")
    camera.shoot(page, "forgot-password", phone=True)
    page.get_by_label("Email").fill(contact.upper())  # as typed, in any case
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("status")).to_contain_text("If an employer account uses this address")

    mail = _reset_mail(inbox, contact)
    assert mail.subject == "Reset your HWcollab employer password"
    assert "30 minutes" in mail.text
    assert mail.header("List-Unsubscribe") == ""  # transactional
    link = mail.link("/reset-password")
    assert f'href="{link}"' in mail.html

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new password")
    camera.shoot(page, "choose-new-password")
    page.get_by_label("New password").fill("password1234")  # on the breached list
    page.get_by_role("button", name="Change my password").click()
    expect(page.locator("#field-password-error")).to_contain_text("common passwords")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change my password").click()
    expect(page).to_have_url(re.compile(r"/dashboard"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Forgetful Family Services")

    # The other browser and the API token of before are signed out; the old password is gone.
    elsewhere.goto(stack.employer_url + "/dashboard")
    expect(elsewhere).to_have_url(re.compile(r"/login"))
    with stack.employer_api() as api:
        me = api.get("/api/employers/me", headers={"Authorization": f"Bearer {old_token}"})
        old = api.post("/api/auth/token", json={"email": contact, "password": PASSWORD})
        new = api.post("/api/auth/token", json={"email": contact, "password": NEW_PASSWORD})
    assert (me.status_code, old.status_code, new.status_code) == (401, 401, 200)

    # The link worked once.
    page.goto(link)
    expect(page.get_by_role("alert")).to_contain_text("expired or was already used")
    expect(page.get_by_role("link", name="Ask for a new link")).to_be_visible()


def test_reset_requests_over_http_tell_nobody_whether_an_account_exists(
    stack: Stack, inbox: Inbox
) -> None:
    contact = stack.address("hr.resetprobe")
    stack.register_employer(
        name="Probe Care Partners", contact=contact, zip_code="01608", city="Worcester"
    )
    free_addresses: list[str] = []
    times: dict[str, list[float]] = {"taken": [], "free": []}
    answers: set[tuple[int, str]] = set()
    with stack.employer_api() as api:
        for round_ in range(ROUNDS + 1):
            free = stack.address(f"nobody{round_}")
            free_addresses.append(free)
            for which, address in (("taken", contact), ("free", free)):
                started = time.perf_counter()
                answer = api.post("/api/employers/password-reset", json={"email": address})
                elapsed = time.perf_counter() - started
                answers.add((answer.status_code, answer.text))
                if round_:
                    times[which].append(elapsed)
    assert len(answers) == 1, answers  # the same status and body, byte for byte
    [(status, _)] = answers
    assert status == 202
    taken, free_median = statistics.median(times["taken"]), statistics.median(times["free"])
    ratio = max(taken, free_median) / max(min(taken, free_median), 1e-4)
    print(f"reset over HTTP: taken {taken * 1000:.1f} ms, free {free_median * 1000:.1f} ms")
    assert ratio < MAX_RATIO, (taken, free_median)

    # Each request for the taken address is an email; a free address gets none.
    eventually_sync(
        lambda: (
            len([m for m in inbox.to(contact) if m.kind == "employer_password_reset"]) == ROUNDS + 1
        ),
        timeout=60,
        what="one reset email per request",
    )
    assert not [m for address in free_addresses for m in inbox.to(address)]
    with httpx.Client(base_url=stack.employer_url, timeout=20.0) as api:
        bad = api.post("/api/employers/password-reset", json={"email": "not an address"})
    assert bad.status_code == 422


def _signup_body(address: str) -> dict[str, object]:
    return {
        "organization_name": "Probe Sign-up Care",
        "contact_email": address,
        "password": PASSWORD,
        "address": {"city": "Worcester", "state": "MA", "zip": "01608"},
        "settings": ["medical"],
    }


def test_sign_up_over_http_tells_nobody_whether_an_account_exists(
    stack: Stack, inbox: Inbox
) -> None:
    contact = stack.address("hr.signupprobe")
    stack.register_employer(
        name="Sign-up Probe Partners", contact=contact, zip_code="01608", city="Worcester"
    )
    rounds = 3  # each request hashes a password with Argon2, on purpose slow
    free_addresses: list[str] = []
    times: dict[str, list[float]] = {"taken": [], "free": []}
    answers: set[tuple[int, str]] = set()
    with stack.employer_api() as api:
        for round_ in range(rounds + 1):
            free = stack.address(f"newcomer{round_}")
            free_addresses.append(free)
            for which, address in (("taken", contact), ("free", free)):
                started = time.perf_counter()
                answer = api.post("/api/employers", json=_signup_body(address))
                elapsed = time.perf_counter() - started
                answers.add((answer.status_code, answer.text))
                if round_:
                    times[which].append(elapsed)
    assert len(answers) == 1, answers
    [(status, _)] = answers
    assert status == 202
    taken, free_median = statistics.median(times["taken"]), statistics.median(times["free"])
    ratio = max(taken, free_median) / max(min(taken, free_median), 1e-4)
    print(f"sign-up over HTTP: taken {taken * 1000:.1f} ms, free {free_median * 1000:.1f} ms")
    assert ratio < MAX_RATIO, (taken, free_median)

    # The owner of the taken address reads that they have an account; each free address gets a
    # link that makes its account usable.
    already = inbox.wait(
        contact, lambda m: m.kind == "employer_already_registered", what="already registered"
    )
    assert "already have" in already.text
    assert already.link("/forgot-password")
    newcomer = free_addresses[-1]
    verification = inbox.wait(
        newcomer, lambda m: m.kind == "employer_verify_signup", what="the confirmation email"
    )
    token = httpx.URL(verification.link("/verify-email")).params["token"]
    with stack.employer_api() as api:
        before = api.post("/api/auth/token", json={"email": newcomer, "password": PASSWORD})
        verified = api.post("/api/employers/verify", json={"token": token})
        after = api.post("/api/auth/token", json={"email": newcomer, "password": PASSWORD})
    assert before.status_code == 403
    assert verified.status_code == 200
    assert verified.json()["status"] == "approved"
    assert after.status_code == 200


def test_an_employer_changes_the_password_and_the_contact_email(
    stack: Stack, inbox: Inbox, visitors: Visitors, camera: Camera
) -> None:
    contact = stack.address("hr.moving")
    new_contact = stack.address("talent.moving")
    stack.register_employer(
        name="Moving Care Collaborative", contact=contact, zip_code="01608", city="Worcester"
    )
    elsewhere = visitors.new_page()
    _sign_in(elsewhere, stack, contact)
    page = visitors.new_page()
    _sign_in(page, stack, contact)
    page.get_by_role("link", name="Password and contact email").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Account")
    camera.shoot(page, "account", phone=True)

    # The password, with the current one.
    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#field-current_password-error")).to_have_text("Incorrect password.")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password has been changed")
    elsewhere.goto(stack.employer_url + "/dashboard")
    expect(elsewhere).to_have_url(re.compile(r"/login"))  # the other browser is signed out

    # The contact email: confirmed from the new address, the old one told.
    page.get_by_label("New contact email").fill(new_contact)
    page.locator("#field-password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Send confirmation link").click()
    expect(page.get_by_role("status")).to_contain_text("We have emailed the new address")
    expect(page.locator("main")).to_contain_text(contact)  # not changed yet
    notice = inbox.wait(
        contact, lambda m: m.kind == "employer_email_change_notice", what="the notice"
    )
    assert "Moving Care Collaborative" in notice.text
    assert new_contact not in notice.text
    confirm = inbox.wait(
        new_contact, lambda m: m.kind == "employer_email_change_confirm", what="the link"
    )
    page.goto(confirm.link("/confirm-email"))
    page.get_by_role("button", name="Confirm this address").click()
    expect(page.get_by_role("status")).to_contain_text(f"Your contact email is now {new_contact}")

    with stack.employer_api() as api:
        old = api.post("/api/auth/token", json={"email": contact, "password": NEW_PASSWORD})
        new = api.post("/api/auth/token", json={"email": new_contact, "password": NEW_PASSWORD})
    assert (old.status_code, new.status_code) == (401, 200)
    # From now on the account's emails go to the new address.
    page.goto(stack.employer_url + "/forgot-password")
    page.get_by_label("Email").fill(new_contact)
    page.get_by_role("button", name="Email me a link").click()
    _reset_mail(inbox, new_contact)
