"""The bearer check of operator and service routes: the right token passes, anything else (none,
another, a prefix of it, any token when none is configured) is the one 401."""

from __future__ import annotations

import pytest
from fastapi import HTTPException
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import SecretStr

from hwcollab_common.bearer import require_bearer

TOKEN = SecretStr("s3cret-operator-token")


def _given(token: str) -> HTTPAuthorizationCredentials:
    return HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)


def test_the_configured_token_passes() -> None:
    require_bearer(_given("s3cret-operator-token"), TOKEN, what="admin token")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, TOKEN),
        (_given("wrong"), TOKEN),
        (_given("s3cret-operator"), TOKEN),
        (_given(""), SecretStr("")),
        (None, SecretStr("")),
    ],
)
def test_anything_else_is_a_401_that_asks_for_a_bearer_token(
    given: HTTPAuthorizationCredentials | None, expected: SecretStr
) -> None:
    with pytest.raises(HTTPException) as refused:
        require_bearer(given, expected, what="reach token")
    assert refused.value.status_code == 401
    assert refused.value.detail == "a valid reach token is required"
    assert refused.value.headers == {"WWW-Authenticate": "Bearer"}
