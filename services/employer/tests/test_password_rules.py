"""Password rules: the minimum length and the shipped list of common breached passwords, on their
own and as sign-up answers them (API 422 with the field, the form's message next to the field)."""

from __future__ import annotations

import gzip

import pytest
from pydantic import BaseModel, ValidationError

from hwcollab_common.validation import field_errors
from hwcollab_employer.password_rules import (
    COMMON_PASSWORDS_FILE,
    PASSWORD_MIN,
    TOO_COMMON,
    NewPassword,
    common_passwords,
    is_common,
)

from .conftest import BodyFactory, Harness
from .test_pages import _csrf, _signup_form


class _Form(BaseModel):
    password: NewPassword


def _problem(password: str) -> str | None:
    try:
        _Form(password=password)
    except ValidationError as error:
        return field_errors(error)["password"]
    return None


def test_the_shipped_list_is_djangos_twenty_thousand_read_from_the_package() -> None:
    assert COMMON_PASSWORDS_FILE.name == "common-passwords.txt.gz"
    assert (COMMON_PASSWORDS_FILE.parent / "NOTICE.md").read_text().count("BSD") >= 1
    with gzip.open(COMMON_PASSWORDS_FILE, "rt") as lines:
        assert sum(1 for _ in lines) == 20_000
    assert len(common_passwords()) > 19_000  # a few differ only in case
    assert all(p == p.lower() for p in common_passwords())


@pytest.mark.parametrize(
    "password", ["password1234", "PASSWORD1234", "Q1W2E3R4T5Y6", " leavemealone "]
)
def test_common_passwords_are_refused_whatever_their_case(password: str) -> None:
    assert is_common(password)
    assert _problem(password) == TOO_COMMON


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", f"Use at least {PASSWORD_MIN} characters."),
        ("x" * 11, f"Use at least {PASSWORD_MIN} characters."),
        ("x" * 257, "Use at most 256 characters."),
        ("a very long passphrase", None),
        ("correct horse battery staple", None),
    ],
)
def test_length_comes_first(password: str, message: str | None) -> None:
    assert _problem(password) == message


async def test_api_sign_up_answers_422_on_the_password_field(
    harness: Harness, signup: BodyFactory
) -> None:
    async with harness.client() as client:
        common = await client.post("/api/employers", json=signup(password="Password1234"))
        short = await client.post("/api/employers", json=signup(password="short"))
    assert common.status_code == short.status_code == 422
    [problem] = common.json()["detail"]
    assert problem["loc"] == ["body", "password"]
    assert TOO_COMMON in problem["msg"]
    assert short.json()["detail"][0]["loc"] == ["body", "password"]
    assert harness.repository.employers == {}


async def test_the_sign_up_form_shows_the_message_next_to_the_field(harness: Harness) -> None:
    async with harness.client() as client:
        page = await client.get("/signup")
        response = await client.post(
            "/signup", data=_signup_form(_csrf(page.text), password="qwertyuiop[]")
        )
    assert response.status_code == 422
    assert 'id="field-password-error"' in response.text
    assert "list of common passwords" in response.text
    assert harness.repository.employers == {}
