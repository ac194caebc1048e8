"""Validation rules of sign-ups and preferences, and the published profile."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from hwcollab_common.emails import email_key, normalize_email
from hwcollab_subscriber.domain import SignUp, new_subscriber, profile

BASE: dict[str, Any] = {"email": "sam@example.org", "roles": ["care_manager"], "zip": "10001"}


def errors_of(**changes: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        SignUp.model_validate({**BASE, **changes})
    return {str(e["loc"][0]): str(e["msg"]) for e in caught.value.errors()}


def test_defaults_follow_the_spec() -> None:
    sign_up = SignUp.model_validate(BASE)
    assert (sign_up.radius_miles, sign_up.remote_ok, sign_up.frequency) == (25, True, "immediate")
    assert (sign_up.digest_hour, sign_up.digest_weekday, sign_up.career_info) == (8, "mon", False)
    assert sign_up.settings == ()
    assert sign_up.min_pay_hourly is None


def test_unknown_role_lists_the_allowed_codes() -> None:
    message = errors_of(roles=["care_coordination", "surgeon"])["roles"]
    assert "'surgeon'" in message
    assert "care_coordination" in message
    assert "direct_support_professional" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("settings", ["hospital"]),
        ("credentials", ["md"]),
        ("employment_types", ["gig"]),
    ],
)
def test_unknown_codes_are_refused_with_the_allowed_ones(field: str, value: list[str]) -> None:
    message = errors_of(**{field: value})[field]
    assert "allowed:" in message


def test_at_least_one_role() -> None:
    assert "roles" in errors_of(roles=[])


@pytest.mark.parametrize("zip_code", ["00000", "1234", "ABCDE", "99999"])
def test_zip_must_be_a_real_us_zip(zip_code: str) -> None:
    assert "zip" in errors_of(zip=zip_code)


@pytest.mark.parametrize("radius", [0, 251, -5])
def test_radius_between_1_and_250(radius: int) -> None:
    assert "radius_miles" in errors_of(radius_miles=radius)


@pytest.mark.parametrize("address", ["not-an-email", "a@b", "two@@example.org", ""])
def test_email_syntax_is_checked(address: str) -> None:
    assert "email" in errors_of(email=address)


def test_email_normalization_and_key() -> None:
    address = normalize_email("  Jordan.Lee@EXAMPLE.org ")
    assert address == "Jordan.Lee@example.org"
    assert email_key(address) == email_key("jordan.lee@example.org")


def test_codes_are_deduplicated_and_name_cleaned() -> None:
    sign_up = SignUp.model_validate(
        {**BASE, "roles": ["care_manager", "care_manager"], "first_name": " Ana\r\nBcc: x "}
    )
    assert sign_up.roles == ("care_manager",)
    assert sign_up.first_name is not None
    assert "\n" not in sign_up.first_name


def test_profile_carries_the_place_of_the_zip() -> None:
    now = datetime(2026, 1, 5, tzinfo=UTC)
    pending = new_subscriber(subscriber_id="s1", sign_up=SignUp.model_validate(BASE), now=now)
    with pytest.raises(ValueError, match="pending"):
        profile(pending)
    active = pending.changed(now=now, status="active", confirmed_at=now)
    published = profile(active)
    assert (published.city, published.state, published.timezone) == (
        "New York",
        "NY",
        "America/New_York",
    )
    assert published.version == 2
    assert published.status == "active"
