from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hwcollab_common.clock import FixedClock
from hwcollab_common.tokens import LinkSigner, Purpose, TokenExpiredError, TokenInvalidError

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
