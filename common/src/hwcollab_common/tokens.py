"""Signed, purpose-bound, expiring link tokens (confirm, manage, unsubscribe, keep, click), and
signed claims that expire at a set time (:class:`ExpiringSigner`: sessions, bearer tokens).

``itsdangerous`` signs ``(subject id)`` with HMAC-SHA1 keyed per purpose (its salt) and checks in
constant time. Key rotation: the current key signs; older keys listed as fallbacks still verify.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from itsdangerous import (
    BadData,
    SignatureExpired,
    TimestampSigner,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)

from hwcollab_common.clock import Clock, SystemClock


class Purpose(StrEnum):
    CONFIRM = "confirm"
    MANAGE = "manage"
    UNSUBSCRIBE = "unsubscribe"
    KEEP = "keep"
    """The "keep me subscribed" button of the still-interested email."""
    CLICK = "click"
    """A link in an alert that goes through the click redirect (subscriber, opening, target)."""
    EMPLOYER_VERIFY = "employer-verify"
    """An employer's sign-up: confirms its contact email."""
    EMPLOYER_EMAIL_CHANGE = "employer-email-change"
    """An employer's new contact email: confirms it."""


MAX_AGE: dict[Purpose, timedelta | None] = {
    Purpose.CONFIRM: timedelta(days=7),
    Purpose.MANAGE: timedelta(days=90),
    Purpose.UNSUBSCRIBE: None,
    Purpose.KEEP: timedelta(days=90),
    Purpose.CLICK: timedelta(days=365),
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
        # Emails are composed in bulk (a digest signs a link per opening): build each
        # purpose's serializer once.
        self._serializers: dict[Purpose, URLSafeTimedSerializer] = {}

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        serializer = self._serializers.get(purpose)
        if serializer is None:
            serializer = self._serializers[purpose] = URLSafeTimedSerializer(
                self._keys,
                salt=f"hwcollab.{purpose.value}",
                signer=_ClockedSigner,
                signer_kwargs={"clock": self._clock},
            )
        return serializer

    def sign(self, purpose: Purpose, subject_id: str) -> str:
        return str(self._serializer(purpose).dumps(subject_id))

    def sign_claims(self, purpose: Purpose, claims: tuple[str, ...]) -> str:
        """A token carrying several strings (e.g. subscriber, opening and target of a click)."""
        return str(self._serializer(purpose).dumps(list(claims)))

    def _load(self, purpose: Purpose, token: str) -> Any:
        max_age = MAX_AGE[purpose]
        try:
            return self._serializer(purpose).loads(
                token, max_age=int(max_age.total_seconds()) if max_age else None
            )
        except SignatureExpired as error:
            raise TokenExpiredError from error
        except BadData as error:
            raise TokenInvalidError from error

    def verify(self, purpose: Purpose, token: str) -> str:
        """The subject id the token was made for; raises :class:`TokenError` otherwise."""
        subject = self._load(purpose, token)
        if not isinstance(subject, str) or not subject:
            raise TokenInvalidError
        return subject

    def verify_claims(self, purpose: Purpose, token: str, *, count: int) -> tuple[str, ...]:
        """The ``count`` strings a :meth:`sign_claims` token carries; raises :class:`TokenError`
        otherwise."""
        claims = self._load(purpose, token)
        if (
            not isinstance(claims, list)
            or len(claims) != count
            or not all(isinstance(claim, str) for claim in claims)
        ):
            raise TokenInvalidError
        return tuple(claims)


class ExpiringSigner:
    """Signs a few claims with their expiry inside the signed payload (``exp``, Unix seconds),
    checked against an injected clock: sessions and bearer tokens that must end at a set time.

    The token is ``itsdangerous.URLSafeSerializer``'s (JSON, HMAC keyed by ``salt``) of the claims
    followed by ``exp``; a distinct salt per kind keeps one kind from being accepted as another.
    Key rotation as for :class:`LinkSigner`: the current key signs, fallback keys still verify.
    """

    def __init__(
        self,
        key: str,
        *,
        salt: str,
        clock: Clock,
        fallback_keys: tuple[str, ...] = (),
    ) -> None:
        if not key:
            raise ValueError("a signing key is required")
        self._serializer = URLSafeSerializer([*fallback_keys, key], salt=salt)
        self._clock = clock

    def sign(self, claims: Mapping[str, object], *, ttl: timedelta) -> tuple[str, datetime]:
        """The token and the moment it expires (whole seconds)."""
        expires = int((self._clock.now() + ttl).timestamp())
        token = self._serializer.dumps({**claims, "exp": expires})
        return str(token), datetime.fromtimestamp(expires, tz=UTC)

    def verify(self, token: str | None) -> tuple[dict[str, Any], datetime] | None:
        """The claims (``exp`` taken out) and the expiry of a genuine, unexpired token; None
        otherwise."""
        if not token:
            return None
        try:
            data = self._serializer.loads(token)
        except BadData:
            return None
        if not isinstance(data, dict):
            return None
        expires = data.pop("exp", None)
        if not isinstance(expires, int) or expires <= self._clock.now().timestamp():
            return None
        return data, datetime.fromtimestamp(expires, tz=UTC)
