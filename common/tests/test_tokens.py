from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import URLSafeSerializer

from hwcollab_common.clock import FixedClock
from hwcollab_common.tokens import (
    ExpiringSigner,
    LinkSigner,
    Purpose,
    TokenExpiredError,
    TokenInvalidError,
)

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def signer(clock: FixedClock, key: str = "a" * 40, fallbacks: tuple[str, ...] = ()) -> LinkSigner:
    return LinkSigner(key, fallback_keys=fallbacks, clock=clock)


def test_round_trip_per_purpose() -> None:
    s = signer(FixedClock(START))
    for purpose in Purpose:
        assert s.verify(purpose, s.sign(purpose, "sub-1")) == "sub-1"


def test_purpose_is_bound() -> None:
    s = signer(FixedClock(START))
    token = s.sign(Purpose.UNSUBSCRIBE, "sub-1")
    with pytest.raises(TokenInvalidError):
        s.verify(Purpose.MANAGE, token)


def test_tampering_is_detected() -> None:
    s = signer(FixedClock(START))
    token = s.sign(Purpose.MANAGE, "sub-1")
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    with pytest.raises(TokenInvalidError):
        s.verify(Purpose.MANAGE, forged)
    with pytest.raises(TokenInvalidError):
        s.verify(Purpose.MANAGE, "garbage")
    other_key = signer(FixedClock(START), key="b" * 40)
    with pytest.raises(TokenInvalidError):
        other_key.verify(Purpose.MANAGE, token)


@pytest.mark.parametrize(
    ("purpose", "valid_for"),
    [(Purpose.CONFIRM, timedelta(days=7)), (Purpose.MANAGE, timedelta(days=90))],
)
def test_expiry(purpose: Purpose, valid_for: timedelta) -> None:
    clock = FixedClock(START)
    s = signer(clock)
    token = s.sign(purpose, "sub-1")
    clock.advance(valid_for - timedelta(minutes=1))
    assert s.verify(purpose, token) == "sub-1"
    clock.advance(timedelta(minutes=2))
    with pytest.raises(TokenExpiredError):
        s.verify(purpose, token)


def test_unsubscribe_never_expires() -> None:
    clock = FixedClock(START)
    s = signer(clock)
    token = s.sign(Purpose.UNSUBSCRIBE, "sub-1")
    clock.advance(timedelta(days=3650))
    assert s.verify(Purpose.UNSUBSCRIBE, token) == "sub-1"


def test_rotation_keeps_old_links_working() -> None:
    clock = FixedClock(START)
    old = signer(clock, key="old" * 12)
    token = old.sign(Purpose.UNSUBSCRIBE, "sub-1")
    rotated = signer(clock, key="new" * 12, fallbacks=("old" * 12,))
    assert rotated.verify(Purpose.UNSUBSCRIBE, token) == "sub-1"
    fresh = rotated.sign(Purpose.UNSUBSCRIBE, "sub-1")
    with pytest.raises(TokenInvalidError):
        old.verify(Purpose.UNSUBSCRIBE, fresh)


def expiring(
    clock: FixedClock, *, salt: str = "hwcollab.test", key: str = "k" * 40
) -> ExpiringSigner:
    return ExpiringSigner(key, salt=salt, clock=clock)


def test_expiring_claims_round_trip_until_their_expiry() -> None:
    clock = FixedClock(START)
    s = expiring(clock)
    token, expires = s.sign({"sub": "employer-1", "csrf": "c"}, ttl=timedelta(hours=1))

    assert expires == START + timedelta(hours=1)
    assert s.verify(token) == ({"sub": "employer-1", "csrf": "c"}, expires)
    clock.advance(timedelta(minutes=59, seconds=59))
    assert s.verify(token) is not None
    clock.advance(timedelta(seconds=1))
    assert s.verify(token) is None


def test_expiring_claims_are_bound_to_their_salt_and_key() -> None:
    clock = FixedClock(START)
    token, _ = expiring(clock, salt="hwcollab.session").sign({"sub": "e"}, ttl=timedelta(hours=1))

    assert expiring(clock, salt="hwcollab.access").verify(token) is None
    assert expiring(clock, salt="hwcollab.session", key="z" * 40).verify(token) is None
    assert expiring(clock, salt="hwcollab.session").verify(token[:-2] + "xx") is None
    assert expiring(clock).verify("") is None
    assert expiring(clock).verify(None) is None


def test_a_retired_key_still_verifies_as_a_fallback() -> None:
    clock = FixedClock(START)
    token, _ = expiring(clock, key="old" * 14).sign({"sub": "e"}, ttl=timedelta(hours=1))
    rotated = ExpiringSigner(
        "new" * 14, salt="hwcollab.test", clock=clock, fallback_keys=("old" * 14,)
    )
    assert rotated.verify(token) == ({"sub": "e"}, START + timedelta(hours=1))


def test_the_format_is_itsdangerous_url_safe_claims_with_exp() -> None:
    """Tokens signed before this signer existed (the employer's sessions and bearer tokens:
    ``URLSafeSerializer`` of the claims and ``exp``) verify; new ones are the same bytes."""
    clock = FixedClock(START)
    exp = int((START + timedelta(hours=2)).timestamp())
    issued_before = URLSafeSerializer("k" * 40, salt="hwcollab.test").dumps(
        {"sub": "e", "exp": exp}
    )

    assert expiring(clock).verify(issued_before) == ({"sub": "e"}, START + timedelta(hours=2))
    assert expiring(clock).sign({"sub": "e"}, ttl=timedelta(hours=2))[0] == issued_before


def test_claims_without_a_whole_second_expiry_are_refused() -> None:
    clock = FixedClock(START)
    serializer = URLSafeSerializer("k" * 40, salt="hwcollab.test")
    for payload in ({"sub": "e"}, {"sub": "e", "exp": "never"}, ["sub", "e"]):
        assert expiring(clock).verify(serializer.dumps(payload)) is None
