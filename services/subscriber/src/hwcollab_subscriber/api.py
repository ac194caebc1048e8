"""JSON API under ``/api`` (SPEC section 6): thin — parse, rate-limit, call a use case, answer."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from hwcollab_common.bearer import require_bearer
from hwcollab_common.emails import InvalidEmailError, normalize_email
from hwcollab_common.openapi import error_responses
from hwcollab_schemas.taxonomy import taxonomy_document
from hwcollab_subscriber.dependencies import AppSettings, Limits, Service
from hwcollab_subscriber.domain import (
    PausedReason,
    PreferencesChange,
    SignUp,
    Status,
    Subscriber,
)

SIGN_UP_EXAMPLE: dict[str, Any] = {
    "email": "jordan@example.org",
    "first_name": "Jordan",
    "roles": ["care_coordination", "nurse_care_manager"],
    "settings": ["medical", "behavioral_health"],
    "credentials": ["rn"],
    "employment_types": ["full_time"],
    "zip": "01608",
    "radius_miles": 25,
    "remote_ok": True,
    "frequency": "daily",
    "digest_hour": 8,
    "digest_weekday": "mon",
    "min_pay_hourly": 28.5,
    "career_info": True,
}
ACCEPTED_MESSAGE = (
    "Thanks! If this address can receive job alerts, an email is on its way. "
    "Please open the link in it to confirm."
)
TokenQuery = Annotated[
    str,
    Query(
        min_length=1,
        max_length=1000,
        description="The signed token from the link we emailed.",
        openapi_examples={"token": {"value": "ImZhNTM5MDg5MjcifQ.Z0M4dg.6YV0u3y2mJxw"}},
    ),
]


class Accepted(BaseModel):
    status: str = "accepted"
    message: str = Field(examples=[ACCEPTED_MESSAGE])


class ConfirmRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"token": "ImFiYzEyMyI.ZxY1.Sg"}]})

    token: Annotated[str, Field(min_length=1, max_length=1000)]


class Confirmed(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"subscriber_id": "0f1e2d3c", "status": "active"}]}
    )

    subscriber_id: str
    status: Status


class LinkRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "jordan@example.org"}]})

    email: Annotated[str, Field(min_length=3, max_length=320)]


class PreferencesView(PreferencesChange):
    """The profile as the subscriber sees it (the address cannot be changed here)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **{k: v for k, v in SIGN_UP_EXAMPLE.items() if k != "email"},
                    "subscriber_id": "0f1e2d3c",
                    "email": "jordan@example.org",
                    "status": "active",
                    "paused": False,
                }
            ]
        }
    )

    subscriber_id: str
    email: str
    status: Status
    last_engaged_at: datetime | None = Field(
        default=None, description="When they last opened a job from one of our emails."
    )
    still_interested_asked_at: datetime | None = Field(
        default=None,
        description='When we asked "still interested?" (pending until kept, clicked or saved).',
    )
    paused_reason: PausedReason | None = Field(
        default=None, description='"inactive" when we paused the alerts for lack of answer.'
    )

    @classmethod
    def of(cls, subscriber: Subscriber) -> PreferencesView:
        return cls.model_validate(
            {
                **subscriber.preferences.model_dump(),
                "subscriber_id": subscriber.subscriber_id,
                "email": subscriber.email,
                "status": subscriber.status,
                "paused": subscriber.status == "paused",
                "last_engaged_at": subscriber.last_engaged_at,
                "still_interested_asked_at": subscriber.sunset_notice_at,
                "paused_reason": subscriber.paused_reason
                if subscriber.status == "paused"
                else None,
            }
        )


TOKEN_ERRORS = error_responses(
    400,
    401,
    404,
    409,
    s400="The token is not valid (tampered, or made for another purpose).",
    s401="The token has expired; ask for a new link.",
    s404="The subscriber no longer exists (erased).",
    s409="The subscription is not in a state that allows this.",
)
TOKEN_BODY_ERRORS = TOKEN_ERRORS | error_responses(
    400,
    413,
    s400="The token is not valid (tampered, or made for another purpose), or the request body "
    "could not be read (it is not UTF-8 encoded JSON).",
)

router = APIRouter(prefix="/api", tags=["subscribers"], responses=error_responses(503))


@router.get("/taxonomy", summary="Roles, families, settings, credentials, employment types")
async def get_taxonomy() -> dict[str, Any]:
    return taxonomy_document()


@router.post(
    "/subscribers",
    status_code=202,
    summary="Sign up (double opt-in)",
    description=(
        "Always answers 202 with the same body, whether the address is new, pending or already "
        "subscribed. A new or pending address gets a confirmation email (at most one per "
        "window); a subscribed one gets a link to its preferences instead of a duplicate."
    ),
    responses=error_responses(
        400, 413, 429, s429="Too many sign-ups from this client or for this address."
    ),
)
async def sign_up(
    service: Service,
    limits: Limits,
    command: Annotated[
        SignUp, Body(openapi_examples={"care coordinator": {"value": SIGN_UP_EXAMPLE}})
    ],
) -> Accepted:
    limits.sign_up(command.email)
    await service.sign_up(command)
    return Accepted(message=ACCEPTED_MESSAGE)


@router.post(
    "/subscribers/confirm",
    summary="Confirm an address (publishes subscriber.registered)",
    responses=TOKEN_BODY_ERRORS,
)
async def confirm(service: Service, body: ConfirmRequest) -> Confirmed:
    subscriber = await service.confirm(body.token)
    return Confirmed(subscriber_id=subscriber.subscriber_id, status=subscriber.status)


@router.delete(
    "/subscribers",
    status_code=204,
    summary="Erase the subscriber and their personal data (publishes subscriber.deleted)",
    responses=TOKEN_ERRORS,
)
async def erase(service: Service, token: TokenQuery) -> Response:
    await service.erase(token)
    return Response(status_code=204)


@router.get("/preferences", summary="Read the preferences", responses=TOKEN_ERRORS)
async def get_preferences(service: Service, token: TokenQuery) -> PreferencesView:
    return PreferencesView.of(await service.preferences(token))


@router.put(
    "/preferences",
    summary="Replace the preferences (publishes subscriber.updated)",
    description="Every sign-up field but the email, plus `paused` to pause or resume mail.",
    responses=TOKEN_BODY_ERRORS,
)
async def put_preferences(
    service: Service,
    token: TokenQuery,
    change: Annotated[
        PreferencesChange,
        Body(
            openapi_examples={
                "weekly, paused": {
                    "value": {
                        **{k: v for k, v in SIGN_UP_EXAMPLE.items() if k != "email"},
                        "frequency": "weekly",
                        "digest_weekday": "fri",
                        "paused": True,
                    }
                }
            }
        ),
    ],
) -> PreferencesView:
    return PreferencesView.of(await service.change_preferences(token, change))


@router.post(
    "/preferences/link",
    status_code=202,
    summary="Email me my preferences link",
    description="Always 202; a link is emailed only if the address is subscribed.",
    responses=error_responses(
        400, 413, 429, s429="Too many requests from this client or for this address."
    ),
)
async def request_link(service: Service, limits: Limits, body: LinkRequest) -> Accepted:
    limits.link_request(body.email)
    try:
        normalize_email(body.email)
    except InvalidEmailError as error:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", "email"), "msg": str(error), "input": None}]
        ) from error
    await service.request_manage_link(body.email)
    return Accepted(
        message="If this address is subscribed, we have emailed it a link to its preferences."
    )


# --- operators ------------------------------------------------------------------------------------

bearer = HTTPBearer(
    scheme_name="OperatorToken", description="The operators' `ADMIN_TOKEN`.", auto_error=False
)
_ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]")


def _iso_instant(value: object) -> object:
    """Only ISO-8601 text: a bare number would otherwise be read as a Unix timestamp."""
    if isinstance(value, str) and not _ISO_INSTANT.match(value):
        raise ValueError("must be an ISO-8601 instant with an offset, e.g. 2026-11-24T13:00:00Z")
    return value


def require_admin(
    settings: AppSettings,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """A 401 unless the bearer token is ADMIN_TOKEN."""
    require_bearer(credentials, settings.admin_token, what="admin token")


class SunsetRunOut(BaseModel):
    as_of: datetime
    noticed: int = Field(description='Subscribers sent the "still interested?" email.')
    paused: int = Field(description='Subscribers paused for not answering it (reason "inactive").')


admin_router = APIRouter(
    prefix="/api/admin",
    tags=["operators"],
    dependencies=[Depends(require_admin)],
    responses=error_responses(401, 503, s401="A valid admin token is required."),
)


@admin_router.post(
    "/sunset/run",
    summary="Ask the silent whether they are still interested, pause the unanswered",
    description=(
        "What the periodic sunset task does (`SUNSET_AFTER_DAYS`, `SUNSET_GRACE_DAYS`), at "
        "`as_of` (default now), for operators and tests. Nothing happens when "
        "`SUNSET_AFTER_DAYS` is 0."
    ),
)
async def run_sunset(
    service: Service,
    as_of: Annotated[
        AwareDatetime | None,
        BeforeValidator(_iso_instant),
        Query(description="ISO-8601 instant with offset", examples=["2026-11-24T13:00:00Z"]),
    ] = None,
) -> SunsetRunOut:
    run = await service.run_sunset(as_of)
    return SunsetRunOut(as_of=run.as_of, noticed=run.noticed, paused=run.paused)
