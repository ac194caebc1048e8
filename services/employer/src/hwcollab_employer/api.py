"""JSON API of the employer service (SPEC section 6): thin — parse, call the service, answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import (
    APIRouter,
    BackgroundTasks,
    Body,
    Depends,
    Header,
    Path,
    Query,
    Request,
    Response,
)
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from hwcollab_common.emails import email_key
from hwcollab_common.openapi import error_responses
from hwcollab_common.ratelimit import client_ip
from hwcollab_employer.accounts import (
    EMAIL_LINK_INVALID,
    RESET_LINK_INVALID,
    UNVERIFIED,
    VERIFY_LINK_INVALID,
    WRONG_CURRENT,
)
from hwcollab_employer.commands import (
    EXTERNAL_ID_MAX,
    EXTERNAL_ID_PATTERN,
    Credentials,
    EmailChange,
    EmployerSignup,
    LinkToken,
    OpeningFields,
    OpeningPatch,
    PasswordChange,
    PasswordResetConfirmation,
    PasswordResetRequest,
    ProfilePatch,
)
from hwcollab_employer.context import Context, EmployerContext
from hwcollab_employer.domain import NotFoundError, Opening
from hwcollab_employer.idempotency import (
    IDEMPOTENCY_HEADER,
    KEY_MAX_LENGTH,
    KEY_PATTERN,
    POST_OPENING,
    IdempotencyClaim,
    StoredAnswer,
    fingerprint,
    principal_of,
)
from hwcollab_employer.listing import (
    MAX_PAGE,
    MAX_PAGE_SIZE,
    MAX_RADIUS_MILES,
    SearchParameters,
    board_query,
    directory_query,
)
from hwcollab_employer.reach import (
    UNAVAILABLE_MESSAGE,
    Reach,
    ReachUnavailableError,
    estimate_reach,
)
from hwcollab_employer.resources import (
    Accepted,
    AccessToken,
    ApiKeyOut,
    DirectoryPage,
    EmployerMe,
    EmployerPublic,
    NewApiKeyOut,
    OpeningOut,
    OpeningsPage,
    OpeningStatsOut,
    OwnOpening,
    Registered,
    RoleSuggestion,
)
from hwcollab_employer.security import api_key_id, constant_time_equal
from hwcollab_schemas import taxonomy
from hwcollab_schemas.reach import ReachEstimate

LOGIN_FAILED = "Incorrect email or password."
UNAUTHENTICATED = {"WWW-Authenticate": "Bearer"}

router = APIRouter(prefix="/api", responses=error_responses(503))

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
REPLAYED_HEADER = "Idempotent-Replayed"
POSTED_OPENING: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "The opening (the first one again for a repeated `Idempotency-Key`)",
        "headers": {
            REPLAYED_HEADER: {
                "description": "`true` when this is the answer to an earlier request with the "
                "same `Idempotency-Key`",
                "schema": {"type": "string", "enum": ["true"]},
            }
        },
    }
}


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


# --- taxonomy ------------------------------------------------------------------------------------


@router.get("/taxonomy", tags=["taxonomy"], summary="Roles, families, settings, credentials, …")
async def get_taxonomy() -> dict[str, Any]:
    return taxonomy.taxonomy_document()


@router.get("/taxonomy/suggest", tags=["taxonomy"], summary="The canonical role for a job title")
async def suggest(
    title: Annotated[str, Query(max_length=200, examples=["RN Care Manager - Health Home"])],
) -> RoleSuggestion:
    code = taxonomy.suggest_role(title)
    return RoleSuggestion(role=code, title=taxonomy.ROLES[code].title if code else None)


# --- accounts ------------------------------------------------------------------------------------

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


RESET_REQUESTED = (
    "If an employer account uses this address, we have emailed it a link to choose a new "
    "password. The link works once, for 30 minutes."
)
CHANGED_MESSAGE = "Your password has been changed. Sign in with it."
RESET_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Always this answer, whether or not an account uses the address; the "
        "email (when there is an account) goes out a moment later",
        "content": {"application/json": {"example": {"detail": RESET_REQUESTED}}},
    },
    422: {
        "description": "The email is not a valid address",
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/HTTPValidationError"},
                "example": {
                    "detail": [
                        {
                            "loc": ["body", "email"],
                            "msg": "value is not a valid email address",
                            "type": "value_error",
                        }
                    ]
                },
            }
        },
    },
    **error_responses(
        400,
        413,
        429,
        s429="Too many requests from this client or about this address "
        "(`PASSWORD_RESET_RATE_LIMIT`); wait `Retry-After` seconds.",
    ),
}


def request_reset_later(
    context: EmployerContext, request: Request, email: str, background: BackgroundTasks
) -> None:
    """Count the request against both limits, then ask for the email after the answer is sent:
    known and unknown addresses answer alike, in the same time."""
    limit = context.settings.password_reset_rate_limit
    context.limiter.hit(limit, "reset-ip", client_ip(request))
    context.limiter.hit(limit, "reset-email", email_key(email))
    background.add_task(context.service.request_password_reset, email)


@router.post(
    "/employers/password-reset",
    status_code=202,
    tags=["accounts"],
    summary="Forgot your password? Email a link to choose a new one",
    responses=RESET_RESPONSES,
)
async def request_password_reset(
    context: Context,
    request: Request,
    body: Annotated[
        PasswordResetRequest,
        Body(openapi_examples={"reset": {"value": {"email": "hr@cmcp.example"}}}),
    ],
    background: BackgroundTasks,
) -> Accepted:
    """A single-use link valid for 30 minutes goes to the address when an account uses it. The
    answer is the same either way."""
    request_reset_later(context, request, str(body.email), background)
    return Accepted(detail=RESET_REQUESTED)


@router.post(
    "/employers/password-reset/confirm",
    tags=["accounts"],
    summary="Choose a new password with the emailed link's token",
    responses={
        200: {"content": {"application/json": {"example": {"detail": CHANGED_MESSAGE}}}},
        422: {
            "description": "The password is too short or too common (`password`), or the link "
            "has expired or was already used (`token`)",
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/HTTPValidationError"},
                    "example": {
                        "detail": [
                            {
                                "loc": ["body", "token"],
                                "msg": RESET_LINK_INVALID,
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
async def confirm_password_reset(
    context: Context, request: Request, body: PasswordResetConfirmation
) -> Accepted:
    """Uses the link up, ends every session and access token of the account (its API keys keep
    working), and stops its other reset links."""
    context.limiter.hit(context.settings.login_rate_limit, "reset-confirm-ip", client_ip(request))
    await context.service.reset_password(body.token, body.password)
    return Accepted(detail=CHANGED_MESSAGE)


def _field_error(field: str, message: str, description: str) -> dict[str, Any]:
    """A documented 422 whose example is a message on ``field``."""
    example = {"detail": [{"loc": ["body", field], "msg": message, "type": "value_error"}]}
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/HTTPValidationError"},
                "example": example,
            }
        },
    }


def _limit_account_change(context: EmployerContext, request: Request, employer_id: str) -> None:
    """A wrong current password is a guess: limited like sign-in, per client and per account."""
    limit = context.settings.login_rate_limit
    context.limiter.hit(limit, "account-ip", client_ip(request))
    context.limiter.hit(limit, "account-employer", employer_id)


@router.post(
    "/employers/me/password",
    tags=["accounts"],
    summary="Change your password (the current one required)",
    responses={
        200: {
            "description": "A new access token: every other session and access token has ended "
            "(API keys keep working)"
        },
        422: _field_error(
            "current_password",
            WRONG_CURRENT,
            "The current password is wrong (`current_password`), or the new one is too short "
            "or too common (`new_password`)",
        ),
        **WRITE,
    },
)
async def change_password(
    context: Context, request: Request, employer_id: EmployerId, body: PasswordChange
) -> AccessToken:
    _limit_account_change(context, request, employer_id)
    employer = await context.service.change_password(
        employer_id, current=body.current_password, new=body.new_password
    )
    return AccessToken(
        access_token=context.tokens.issue_access_token(
            employer.employer_id, session_version=employer.session_version
        ),
        expires_in=int(context.tokens.access_ttl.total_seconds()),
    )


EMAIL_CHANGE_REQUESTED = (
    "We have emailed the new address a link to confirm it, and told the current address. Your "
    "contact email changes when the link is used (within 24 hours)."
)
EMAIL_CHANGED = "Your contact email has been changed."


@router.post(
    "/employers/me/email",
    status_code=202,
    tags=["accounts"],
    summary="Change your contact email: a link to confirm it goes to the new address",
    responses={
        202: {
            "description": "The same answer whatever the new address; the contact email "
            "changes only when the emailed link is used",
            "content": {"application/json": {"example": {"detail": EMAIL_CHANGE_REQUESTED}}},
        },
        422: _field_error(
            "password",
            WRONG_CURRENT,
            "The password is wrong (`password`), or the new address is not one or is the "
            "current one (`new_email`)",
        ),
        **WRITE,
    },
)
async def change_email(
    context: Context, request: Request, employer_id: EmployerId, body: EmailChange
) -> Accepted:
    _limit_account_change(context, request, employer_id)
    await context.service.request_email_change(
        employer_id, new_email=str(body.new_email), password=body.password
    )
    return Accepted(detail=EMAIL_CHANGE_REQUESTED)


class EmailConfirmation(BaseModel):
    """``POST /api/employers/email/confirm``: the token of the emailed link."""

    model_config = ConfigDict(extra="forbid")

    token: LinkToken


@router.post(
    "/employers/email/confirm",
    tags=["accounts"],
    summary="Confirm a new contact email with the emailed link's token",
    responses={
        200: {"content": {"application/json": {"example": {"detail": EMAIL_CHANGED}}}},
        422: _field_error(
            "token",
            EMAIL_LINK_INVALID,
            "The link is forged or expired, the address was changed again since, or another "
            "account has the new address now (`token`)",
        ),
        **error_responses(400, 413, 429),
    },
)
async def confirm_email(context: Context, request: Request, body: EmailConfirmation) -> Accepted:
    context.limiter.hit(context.settings.login_rate_limit, "verify-ip", client_ip(request))
    await context.service.confirm_email_change(body.token)
    return Accepted(detail=EMAIL_CHANGED)


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


@router.get(
    "/employers/me/openings",
    tags=["openings"],
    summary="All your openings, newest first",
    responses=SIGNED_IN,
)
async def my_openings(context: Context, employer_id: EmployerId) -> list[OwnOpening]:
    base = context.settings.employer_public_url
    return [
        OwnOpening.own(opening, base_url=base)
        for opening in await context.service.own_openings(employer_id)
    ]


@router.get(
    "/employers/{employer_id}",
    tags=["directory"],
    summary="An approved employer",
    responses=error_responses(404, s404="No approved employer with this id."),
)
async def public_employer(
    context: Context, employer_id: Annotated[str, Path(max_length=64)]
) -> EmployerPublic:
    employer = await context.service.employer(employer_id)
    if not employer.approved:
        raise NotFoundError(employer_id)
    return EmployerPublic.of(employer)


# --- openings ------------------------------------------------------------------------------------

OPENING_EXAMPLE = {
    "title": "RN Care Manager - Health Home",
    "role": "health_home_care_manager",
    "setting": "medical",
    "required_credentials": ["rn"],
    "employment_type": "full_time",
    "zip": "01608",
    "pay_min": 38,
    "pay_max": 46,
    "pay_period": "hour",
    "description": "Coordinate care for adults enrolled in our health home.",
    "apply_url": "https://cmcp.example/jobs/42",
}


@router.post(
    "/openings",
    status_code=201,
    response_model=OwnOpening,
    tags=["openings"],
    summary="Post an opening",
    description="Matching subscribers are emailed within seconds (or in their next digest). "
    "Send an `Idempotency-Key` header to retry safely: the same key and body within 24 hours "
    "answer the first opening again (with `Idempotent-Replayed: true`) and email nobody twice. "
    "Two requests with one key at the same moment create one opening: the second waits for "
    "the first and answers as it did.",
    responses=POSTED_OPENING
    | error_responses(
        400,
        401,
        404,
        409,
        413,
        429,
        s404="Your account no longer exists.",
        s409="Another of your openings has this `external_id`, or a request with this "
        "`Idempotency-Key` is still being processed.",
    ),
)
async def post_opening(
    context: Context,
    employer_id: EmployerId,
    principal: Principal,
    fields: Annotated[OpeningFields, Body(openapi_examples={"rn": {"value": OPENING_EXAMPLE}})],
    idempotency_key: IdempotencyKey = None,
    _: None = LimitedWrite,
) -> Any:
    base_url = context.settings.employer_public_url
    if idempotency_key is None:
        opening = await context.service.post_opening(employer_id, fields)
        return OwnOpening.own(opening, base_url=base_url)

    def answer(opening: Opening) -> StoredAnswer:
        body = OwnOpening.own(opening, base_url=base_url).model_dump(mode="json")
        return StoredAnswer(status=201, body=body)

    claim = IdempotencyClaim(
        principal=principal,
        key=idempotency_key,
        fingerprint=fingerprint(POST_OPENING, fields.model_dump(mode="json")),
    )
    stored = await context.service.post_opening_once(
        employer_id, fields, claim=claim, answer=answer
    )
    headers = {REPLAYED_HEADER: "true"} if stored.replayed else {}
    return JSONResponse(stored.body, status_code=stored.status, headers=headers)


def _limit_estimates(context: Context, employer_id: EmployerId) -> None:
    context.limiter.hit(context.settings.estimate_rate_limit, "estimate", employer_id)


@router.post(
    "/openings/estimate",
    tags=["openings"],
    summary="Estimated reach of an opening before posting it",
    description="The same body as `POST /api/openings`, validated the same way; nothing is "
    "stored or sent. Answers how many active subscribers the opening would reach now (at once "
    "or in their digest) from the notifier's match index, rounded: fewer than 10 is `null`, "
    "larger counts have two significant figures; and the one or two criteria that leave out "
    "most people, each based on at least 10 people. For approved employers only, limited per "
    "employer. 503 when the notifier cannot answer within a moment: posting still works.",
    responses=error_responses(
        400,
        401,
        403,
        413,
        429,
        503,
        s403="Reach estimates are for approved employers only.",
        s429="Too many estimates from this employer; wait `Retry-After` seconds.",
        s503="The estimate is unavailable right now (the notifier is away or busy, or the "
        "database cannot be reached); the opening can still be posted.",
    ),
)
async def estimate_opening(
    context: Context,
    employer_id: EmployerId,
    source: Reach,
    fields: Annotated[OpeningFields, Body(openapi_examples={"rn": {"value": OPENING_EXAMPLE}})],
    _: None = Depends(_limit_estimates),
) -> ReachEstimate:
    try:
        return await estimate_reach(context.service, source, employer_id=employer_id, fields=fields)
    except ReachUnavailableError:
        raise HTTPException(503, UNAVAILABLE_MESSAGE, {"Retry-After": "5"}) from None


@router.get("/openings", tags=["openings"], summary="The job board: open openings, nearest first")
async def list_openings(
    context: Context,
    zip: ZipQuery = None,
    radius_miles: RadiusQuery = None,
    role: RoleQuery = None,
    setting: SettingQuery = None,
    remote: Annotated[bool | None, Query(description="include remote openings (default)")] = None,
    q: Annotated[str | None, Query(max_length=200, description="words in title or text")] = None,
    page: PageQuery = None,
    page_size: PageSizeQuery = None,
) -> OpeningsPage:
    query = board_query(
        SearchParameters(
            zip=zip,
            radius_miles=radius_miles,
            role=role,
            setting=setting,
            text=q,
            remote=remote,
            page=page,
            page_size=page_size,
        )
    )
    found = await context.service.find_openings(query)
    return OpeningsPage.of(found, base_url=context.settings.employer_public_url)


@router.get(
    "/openings/{opening_id}",
    tags=["openings"],
    summary="One opening",
    responses=error_responses(404, s404="No such opening, or its employer is not approved."),
)
async def get_opening(context: Context, opening_id: OpeningId) -> OpeningOut:
    opening = await context.service.opening(opening_id)
    return OpeningOut.of(opening, base_url=context.settings.employer_public_url)


@router.patch(
    "/openings/{opening_id}",
    tags=["openings"],
    summary="Edit your opening",
    description="Only the fields sent change. A closed opening cannot be edited (409).",
    responses=OWN_OPENING_WRITE,
)
async def patch_opening(
    context: Context,
    employer_id: EmployerId,
    opening_id: OpeningId,
    patch: OpeningPatch,
    _: None = LimitedWrite,
) -> OwnOpening:
    opening = await context.service.edit_opening(employer_id, opening_id, patch)
    return OwnOpening.own(opening, base_url=context.settings.employer_public_url)


@router.get(
    "/openings/by-external-id/{external_id}",
    tags=["openings"],
    summary="Your opening by your own external_id",
    responses=error_responses(401, 404, s404="None of your openings has this external_id."),
)
async def get_opening_by_external_id(
    context: Context, employer_id: EmployerId, external_id: ExternalIdPath
) -> OwnOpening:
    opening = await context.service.own_opening_by_external_id(employer_id, external_id)
    return OwnOpening.own(opening, base_url=context.settings.employer_public_url)


@router.patch(
    "/openings/by-external-id/{external_id}",
    tags=["openings"],
    summary="Edit your opening by your own external_id",
    description="As `PATCH /api/openings/{opening_id}`, for the opening you gave this "
    "`external_id` (an ATS updates by its own requisition id).",
    responses=error_responses(
        400, 401, 404, 409, 413, 429, s404="None of your openings has this external_id."
    ),
)
async def patch_opening_by_external_id(
    context: Context,
    employer_id: EmployerId,
    external_id: ExternalIdPath,
    patch: OpeningPatch,
    _: None = LimitedWrite,
) -> OwnOpening:
    opening = await context.service.edit_opening_by_external_id(employer_id, external_id, patch)
    return OwnOpening.own(opening, base_url=context.settings.employer_public_url)


@router.post(
    "/openings/{opening_id}/close",
    tags=["openings"],
    summary="Close your opening",
    responses=OWN_OPENING_ACTION,
)
async def close_opening(
    context: Context, employer_id: EmployerId, opening_id: OpeningId, _: None = LimitedWrite
) -> OwnOpening:
    opening = await context.service.close_opening(employer_id, opening_id)
    return OwnOpening.own(opening, base_url=context.settings.employer_public_url)


@router.get(
    "/openings/{opening_id}/stats",
    tags=["openings"],
    summary="Reach of your opening",
    responses=OWN_OPENING,
)
async def opening_stats(
    context: Context, employer_id: EmployerId, opening_id: OpeningId
) -> OpeningStatsOut:
    stats = await context.service.stats(employer_id, opening_id)
    return OpeningStatsOut(opening_id=stats.opening_id, notified=stats.notified)


# --- directory -----------------------------------------------------------------------------------


@router.get("/directory", tags=["directory"], summary="Find a Local Employer: nearest first")
async def directory(
    context: Context,
    zip: ZipQuery = None,
    radius_miles: RadiusQuery = None,
    setting: SettingQuery = None,
    role: RoleQuery = None,
    q: Annotated[str | None, Query(max_length=200, description="Words in the name or text")] = None,
    page: PageQuery = None,
    page_size: PageSizeQuery = None,
) -> DirectoryPage:
    query = directory_query(
        SearchParameters(
            zip=zip,
            radius_miles=radius_miles,
            setting=setting,
            role=role,
            text=q,
            page=page,
            page_size=page_size,
        )
    )
    return DirectoryPage.of(await context.service.find_employers(query))
