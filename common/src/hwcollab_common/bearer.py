"""Bearer-token checks for operator and service-to-service routes (ADMIN_TOKEN, REACH_TOKEN): a
constant-time compare and the one 401 answer."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import SecretStr


def require_bearer(
    credentials: HTTPAuthorizationCredentials | None, expected: SecretStr, *, what: str
) -> None:
    """Nothing when ``credentials`` carry ``expected`` (compared in constant time); a 401 with
    ``WWW-Authenticate: Bearer`` and "a valid ``what`` is required" otherwise, also when
    ``expected`` is empty."""
    wanted = expected.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials else b""
    if not wanted or not hmac.compare_digest(given, wanted):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"a valid {what} is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
