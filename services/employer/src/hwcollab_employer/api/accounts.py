"""Employer accounts over the JSON API: sign up and confirm the address, sign in, the
profile and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, Path, Request, Response
from fastapi.exceptions import HTTPException
from pydantic import BaseModel, ConfigDict, Field

from hwcollab_common.emails import email_key
from hwcollab_common.openapi import error_responses
from hwcollab_common.ratelimit import client_ip
from hwcollab_employer.accounts import UNVERIFIED, VERIFY_LINK_INVALID
from hwcollab_employer.api.dependencies import (
    SIGNED_IN,
    UNAUTHENTICATED,
    WRITE,
    EmployerId,
    LimitedWrite,
    api_router,
)
from hwcollab_employer.commands import Credentials, EmployerSignup, LinkToken, ProfilePatch
from hwcollab_employer.context import Context
from hwcollab_employer.resources import (
    Accepted,
    AccessToken,
    ApiKeyOut,
    EmployerMe,
    NewApiKeyOut,
    Registered,
)

router = api_router()


LOGIN_FAILED = "Incorrect email or password."

SIGNUP_EXAMPLE = {
    "organization_name": "Central Mass Care Partners",
    "contact_email": "hr@cmcp.example",
    "password": "a long passphrase here",
    "website": "https://cmcp.example",
    "description": "Community care coordination across Worcester County.",
    "phone": "508-555-0100",
    "address": {"street": "1 Main St", "city": "Worcester", "state": "MA", "zip": "01608"},
    "settings": ["medical", "social_service"],
}


SIGNUP_ACCEPTED = (
    "Thank you. We have emailed the address a link to confirm it; the account can sign in and "
    "post openings once it is confirmed. Already have an account? Sign in, or reset your "
    "password."
)


@router.post(
    "/employers",
    status_code=202,
    tags=["accounts"],
    summary="Sign up: create an employer account",
    description="Always `202` with the same body, whether the address is new or already has an "
    "account: a new address gets an email with a link that confirms it (`POST "
    "/api/employers/verify`), an address with an account an email that says so. Once "
    "confirmed, the account is approved at once or after an operator's review, as the "
    "deployment is set up.",
    responses={
        202: {"content": {"application/json": {"example": {"detail": SIGNUP_ACCEPTED}}}},
        **error_responses(400, 413, 429),
    },
)
async def register(
    context: Context,
    request: Request,
    signup: Annotated[EmployerSignup, Body(openapi_examples={"signup": {"value": SIGNUP_EXAMPLE}})],
) -> Accepted:
    limit = context.settings.signup_rate_limit
    context.limiter.hit(limit, "signup", client_ip(request))
    context.limiter.hit(limit, "signup-email", email_key(str(signup.contact_email)))
    await context.service.sign_up(signup)
    return Accepted(detail=SIGNUP_ACCEPTED)


class Verification(BaseModel):
    """``POST /api/employers/verify``: the token of the emailed confirmation link."""

    model_config = ConfigDict(extra="forbid")

    token: LinkToken


@router.post(
    "/employers/verify",
    tags=["accounts"],
    summary="Confirm the contact email of a new account with the emailed link's token",
    responses={
        200: {"description": "The account (confirmed now or before) and its status"},
        422: {
            "description": "The link is forged, has expired, or belongs to an earlier sign-up "
            "with the same address (`token`)",
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/HTTPValidationError"},
                    "example": {
                        "detail": [
                            {
                                "loc": ["body", "token"],
                                "msg": VERIFY_LINK_INVALID,
                                "type": "value_error",
                            }
                        ]
                    },
                }
            },
        },
        **error_responses(400, 413, 429),
    },
)
async def verify(context: Context, request: Request, body: Verification) -> Registered:
    context.limiter.hit(context.settings.login_rate_limit, "verify-ip", client_ip(request))
    employer, _ = await context.service.verify_email(body.token)
    return Registered(employer_id=employer.employer_id, status=employer.status)


@router.post(
    "/auth/token",
    tags=["accounts"],
    summary="Sign in: a bearer token for the API",
    responses=error_responses(400, 401, 403, 413, 429, s401=LOGIN_FAILED, s403=UNVERIFIED),
)
async def token(context: Context, request: Request, credentials: Credentials) -> AccessToken:
    limit = context.settings.login_rate_limit
    context.limiter.hit(limit, "login-ip", client_ip(request))
    context.limiter.hit(limit, "login-email", email_key(credentials.email))
    employer = await context.service.authenticate(credentials.email, credentials.password)
    if employer is None:
        raise HTTPException(401, LOGIN_FAILED, UNAUTHENTICATED)
    if not employer.verified:
        raise HTTPException(403, UNVERIFIED)
    return AccessToken(
        access_token=context.tokens.issue_access_token(
            employer.employer_id, session_version=employer.session_version
        ),
        expires_in=int(context.tokens.access_ttl.total_seconds()),
    )


@router.get(
    "/employers/me", tags=["accounts"], summary="Your organization's profile", responses=SIGNED_IN
)
async def me(context: Context, employer_id: EmployerId) -> EmployerMe:
    return EmployerMe.of(await context.service.employer(employer_id))


@router.patch("/employers/me", tags=["accounts"], summary="Change your profile", responses=WRITE)
async def patch_me(
    context: Context, employer_id: EmployerId, patch: ProfilePatch, _: None = LimitedWrite
) -> EmployerMe:
    return EmployerMe.of(await context.service.update_profile(employer_id, patch))


class ApiKeyRequest(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=100)] = "integration"


@router.post(
    "/employers/me/api-keys",
    status_code=201,
    tags=["accounts"],
    summary="Create an API key",
    responses=WRITE,
)
async def create_api_key(
    context: Context,
    employer_id: EmployerId,
    body: Annotated[ApiKeyRequest | None, Body()] = None,
    _: None = LimitedWrite,
) -> NewApiKeyOut:
    """The key is shown only in this answer; it is stored hashed. Use it as a bearer token."""
    name = (body or ApiKeyRequest()).name
    key = await context.service.create_api_key(employer_id, name=name)
    return NewApiKeyOut(api_key=key.secret, key_id=key.key_id, name=name)


@router.get(
    "/employers/me/api-keys",
    tags=["accounts"],
    summary="Your API keys (never the secret)",
    responses=SIGNED_IN,
)
async def list_api_keys(context: Context, employer_id: EmployerId) -> list[ApiKeyOut]:
    return [ApiKeyOut.of(record) for record in await context.service.api_keys(employer_id)]


@router.delete(
    "/employers/me/api-keys/{key_id}",
    status_code=204,
    tags=["accounts"],
    summary="Revoke a key",
    responses=error_responses(401, 404, s404="No such key of yours."),
)
async def revoke_api_key(
    context: Context, employer_id: EmployerId, key_id: Annotated[str, Path(max_length=64)]
) -> Response:
    await context.service.revoke_api_key(employer_id, key_id)
    return Response(status_code=204)
