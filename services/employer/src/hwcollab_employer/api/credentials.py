"""Passwords and the contact email over the JSON API: forgotten password, a new password, a
new contact email."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import BackgroundTasks, Body, Request
from pydantic import BaseModel, ConfigDict

from hwcollab_common.emails import email_key
from hwcollab_common.openapi import error_responses
from hwcollab_common.ratelimit import client_ip
from hwcollab_employer.accounts import EMAIL_LINK_INVALID, RESET_LINK_INVALID, WRONG_CURRENT
from hwcollab_employer.api.dependencies import WRITE, EmployerId, api_router
from hwcollab_employer.commands import (
    EmailChange,
    LinkToken,
    PasswordChange,
    PasswordResetConfirmation,
    PasswordResetRequest,
)
from hwcollab_employer.context import Context, EmployerContext
from hwcollab_employer.resources import Accepted, AccessToken

router = api_router()


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
