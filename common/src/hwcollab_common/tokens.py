"""Signed, purpose-bound, expiring link tokens (confirm, manage, unsubscribe).

``itsdangerous`` signs ``(subject id)`` with HMAC-SHA1 keyed per purpose (its salt) and checks in
constant time. Key rotation: the current key signs; older keys listed as fallbacks still verify.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from hwcollab_common.clock import Clock, SystemClock


class Purpose(StrEnum):
    CONFIRM = "confirm"
    MANAGE = "manage"
    UNSUBSCRIBE = "unsubscribe"
    EMPLOYER_VERIFY = "employer-verify"
    """An employer's sign-up: confirms its contact email."""
    EMPLOYER_EMAIL_CHANGE = "employer-email-change"
    """An employer's new contact email: confirms it."""


MAX_AGE: dict[Purpose, timedelta | None] = {
    Purpose.CONFIRM: timedelta(days=7),
    Purpose.MANAGE: timedelta(days=90),
    Purpose.UNSUBSCRIBE: None,
    Purpose.EMPLOYER_VERIFY: timedelta(hours=48),
    Purpose.EMPLOYER_EMAIL_CHANGE: timedelta(hours=24),
}


class TokenError(Exception):
    """A link token that cannot be honoured; ``reason`` is safe to show to the person."""

    reason = "This link is not valid."


class TokenExpiredError(TokenError):
    reason = "This link has expired."


class TokenInvalidError(TokenError):
    reason = "This link is not valid. Please use the latest link we sent you."


class _ClockedSigner(TimestampSigner):
    """Takes its time from an injected clock, so that expiry is testable."""

    def __init__(self, *args: Any, clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock.now().timestamp())


class LinkSigner:
    def __init__(
        self, key: str, *, fallback_keys: tuple[str, ...] = (), clock: Clock | None = None
    ) -> None:
        if not key:
            raise ValueError("a link signing key is required")
        # itsdangerous signs with the last key and verifies with any of them.
        self._keys = [*fallback_keys, key]
        self._clock = clock or SystemClock()

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            self._keys,
            salt=f"hwcollab.{purpose.value}",
            signer=_ClockedSigner,
            signer_kwargs={"clock": self._clock},
        )

    def sign(self, purpose: Purpose, subject_id: str) -> str:
        return str(self._serializer(purpose).dumps(subject_id))

    def verify(self, purpose: Purpose, token: str) -> str:
        """The subject id the token was made for; raises :class:`TokenError` otherwise."""
        max_age = MAX_AGE[purpose]
        try:
            subject = self._serializer(purpose).loads(
                token, max_age=int(max_age.total_seconds()) if max_age else None
            )
        except SignatureExpired as error:
            raise TokenExpiredError from error
        except BadData as error:
            raise TokenInvalidError from error
        if not isinstance(subject, str) or not subject:
            raise TokenInvalidError
        return subject
