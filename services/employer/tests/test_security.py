"""Credentials: Argon2id hashes, token kinds and expiry, API key shape, production settings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from itsdangerous import URLSafeSerializer
from pydantic import ValidationError

from hwcollab_employer.security import TokenAuthority, api_key_hash, api_key_id, new_api_key
from hwcollab_employer.settings import Settings

from .conftest import Harness


@pytest.fixture
def tokens(harness: Harness) -> TokenAuthority:
    return TokenAuthority(
        "k" * 40,
        clock=harness.clock,
        access_ttl=timedelta(hours=1),
        session_ttl=timedelta(hours=8),
    )


def test_access_tokens_and_sessions_are_not_interchangeable(tokens: TokenAuthority) -> None:
    access = tokens.issue_access_token("employer-1")
    cookie, session = tokens.issue_session("employer-1")
    assert tokens.access_token_subject(access) == "employer-1"
    assert tokens.read_session(cookie) == session
    assert tokens.access_token_subject(cookie) is None
    assert tokens.read_session(access) is None


def test_tampered_or_foreign_tokens_are_refused(harness: Harness, tokens: TokenAuthority) -> None:
    access = tokens.issue_access_token("employer-1")
    other_key = TokenAuthority(
        "z" * 40, clock=harness.clock, access_ttl=timedelta(hours=1), session_ttl=timedelta(hours=1)
    )
    assert tokens.access_token_subject(access[:-3] + "abc") is None
    assert other_key.access_token_subject(access) is None
    assert tokens.access_token_subject("") is None


def test_sessions_expire(harness: Harness, tokens: TokenAuthority) -> None:
    cookie, _ = tokens.issue_session("employer-1")
    harness.clock.advance(timedelta(hours=8))
    assert tokens.read_session(cookie) is None


def test_tokens_and_sessions_signed_before_stay_valid(
    harness: Harness, tokens: TokenAuthority
) -> None:
    """Sessions and bearer tokens already out there (itsdangerous, the expiry in the payload)."""
    exp = int((harness.clock.now() + timedelta(hours=1)).timestamp())
    access = URLSafeSerializer("k" * 40, salt="hwcollab.employer.access").dumps(
        {"sub": "employer-1", "exp": exp}
    )
    cookie = URLSafeSerializer("k" * 40, salt="hwcollab.employer.session").dumps(
        {"sub": "employer-1", "csrf": "form-token", "exp": exp}
    )
    operator = URLSafeSerializer("k" * 40, salt="hwcollab.employer.operator").dumps(
        {"sub": "operator", "csrf": "operator-form", "exp": exp}
    )

    assert tokens.access_token_subject(access) == "employer-1"
    session = tokens.read_session(cookie)
    assert session is not None
    assert (session.employer_id, session.csrf_token) == ("employer-1", "form-token")
    assert tokens.read_operator_session(operator) == "operator-form"


def test_api_keys_carry_their_id_and_are_stored_as_a_hash() -> None:
    key = new_api_key()
    assert api_key_id(key.secret) == key.key_id
    assert key.secret_hash == api_key_hash(key.secret)
    assert key.secret not in key.secret_hash
    assert api_key_id("not-a-key") is None
    assert api_key_id("hwk_short_x") is None


def test_production_refuses_the_development_session_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWCOLLAB_ENV", "prod")
    monkeypatch.setenv("LINK_SIGNING_KEY", "l" * 40)
    monkeypatch.setenv("ADMIN_TOKEN", "a" * 40)
    monkeypatch.setenv("REACH_TOKEN", "r" * 40)
    with pytest.raises(ValidationError, match="EMPLOYER_SESSION_KEY"):
        Settings()
    monkeypatch.setenv("EMPLOYER_SESSION_KEY", "s" * 40)
    monkeypatch.setenv("REACH_TOKEN", "short")
    with pytest.raises(ValidationError, match="REACH_TOKEN"):
        Settings()
    monkeypatch.setenv("REACH_TOKEN", "r" * 40)
    assert Settings().employer_session_key.get_secret_value() == "s" * 40


def test_cookies_are_secure_behind_https(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPLOYER_PUBLIC_URL", "https://employers.hwcollab.example/")
    settings = Settings()
    assert settings.secure_cookies
    assert settings.employer_public_url == "https://employers.hwcollab.example"
