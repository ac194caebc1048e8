"""What the JSON API's routes share: who is asking (employer bearer token or API key,
operator token), the answers each kind of operation documents, write limits and the
search parameters of the job board and the directory."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.exceptions import HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hwcollab_common.openapi import error_responses
from hwcollab_common.ratelimit import client_ip
from hwcollab_employer.commands import EXTERNAL_ID_MAX, EXTERNAL_ID_PATTERN
from hwcollab_employer.context import Context
from hwcollab_employer.idempotency import (
    IDEMPOTENCY_HEADER,
    KEY_MAX_LENGTH,
    KEY_PATTERN,
    principal_of,
)
from hwcollab_employer.listing import MAX_PAGE, MAX_PAGE_SIZE, MAX_RADIUS_MILES
from hwcollab_employer.security import api_key_id, constant_time_equal
from hwcollab_schemas import taxonomy

UNAUTHENTICATED = {"WWW-Authenticate": "Bearer"}


def api_router(*, tags: list[str | Enum] | None = None, operators: bool = False) -> APIRouter:
    """A router of the JSON API (under ``/api``; any route may answer 503); with ``operators``,
    every route of it needs the ``ADMIN_TOKEN`` bearer."""
    return APIRouter(
        prefix="/api",
        tags=tags,
        responses=error_responses(503),
        dependencies=[Depends(require_admin)] if operators else None,
    )


employer_bearer = HTTPBearer(
    scheme_name="EmployerToken",
    description="An access token from `POST /api/auth/token`, or an API key.",
    auto_error=False,
)
operator_bearer = HTTPBearer(
    scheme_name="OperatorToken",
    description="The operators' `ADMIN_TOKEN`.",
    auto_error=False,
)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(employer_bearer)]
OperatorBearer = Annotated[HTTPAuthorizationCredentials | None, Depends(operator_bearer)]

# What each kind of operation can answer besides its success (and 422, 503 everywhere).
SIGNED_IN = error_responses(401)
WRITE = error_responses(400, 401, 413, 429)
OWN_OPENING = error_responses(401, 403, 404)
OWN_OPENING_WRITE = error_responses(400, 401, 403, 404, 409, 413, 429)
OWN_OPENING_ACTION = error_responses(401, 403, 404, 409, 429)
OPERATORS = error_responses(401, s401="An operator token is required.")


def _bearer(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return credentials.credentials.strip() or None if credentials else None


async def current_employer_id(context: Context, credentials: Bearer) -> str:
    """The employer a bearer access token or API key belongs to; 401 otherwise (also for an
    access token from before the employer's last password reset or change)."""
    token = _bearer(credentials)
    employer_id: str | None = None
    if token:
        claims = context.tokens.read_access_token(token)
        if claims is not None:
            current = await context.service.session_version(claims.employer_id)
            employer_id = claims.employer_id if current == claims.session_version else None
        else:
            employer_id = await context.service.employer_of_api_key(token)
    if employer_id is None:
        raise HTTPException(401, "Not signed in or the token has expired.", UNAUTHENTICATED)
    return employer_id


def require_admin(context: Context, credentials: OperatorBearer) -> None:
    token = _bearer(credentials)
    expected = context.settings.admin_token.get_secret_value()
    if token is None or not constant_time_equal(token, expected):
        raise HTTPException(401, "An operator token is required.", UNAUTHENTICATED)


EmployerId = Annotated[str, Depends(current_employer_id)]
OpeningId = Annotated[str, Path(min_length=1, max_length=64)]
ExternalIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=EXTERNAL_ID_MAX,
        pattern=EXTERNAL_ID_PATTERN,
        description="The `external_id` you gave the opening",
    ),
]


def current_principal(context: Context, credentials: Bearer, employer_id: EmployerId) -> str:
    """Whose idempotency keys a request's are: its API key's, else its employer's."""
    token = _bearer(credentials) or ""
    by_key = context.tokens.access_token_subject(token) is None
    return principal_of(employer_id=employer_id, api_key_id=api_key_id(token) if by_key else None)


Principal = Annotated[str, Depends(current_principal)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        min_length=1,
        max_length=KEY_MAX_LENGTH,
        pattern=KEY_PATTERN,
        description="Any unique string of yours (e.g. a UUID) for this opening, up to 255 "
        "printable characters. A retry with the same key and body within 24 hours gets the "
        "first answer again and creates nothing; the same key with another body is refused "
        "(422). Kept per API key, or per employer for access tokens.",
        examples=["6f1c2a4e-ats-req-42"],
    ),
]


def _limit_writes(context: Context, request: Request) -> None:
    context.limiter.hit(context.settings.write_rate_limit, "write", client_ip(request))


LimitedWrite = Depends(_limit_writes)

# The search parameters the job board and the directory share.
ZipQuery = Annotated[
    str | None, Query(max_length=10, description="5-digit US ZIP code", examples=["01608"])
]
RadiusQuery = Annotated[
    int | None,
    Query(ge=1, le=MAX_RADIUS_MILES, description="Miles around the ZIP code (default 25)"),
]
RoleQuery = Annotated[
    str | None,
    Query(max_length=64, description="A role or role-family code of `/api/taxonomy`"),
]
SettingQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        description="A setting code of `/api/taxonomy`",
        json_schema_extra={"enum": list(taxonomy.SETTING_CODES)},
    ),
]
PageQuery = Annotated[int | None, Query(ge=1, le=MAX_PAGE, description="Page number (from 1)")]
PageSizeQuery = Annotated[
    int | None, Query(ge=1, le=MAX_PAGE_SIZE, description="Results per page (default 20)")
]
