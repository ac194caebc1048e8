"""Account pages for employers who are not signed in: "Confirm your email address" (the sign-up
link), "Forgot your password?" and "Choose a new password". An emailed link's GET only shows a
form and uses nothing up (mail scanners follow links); the form's POST acts."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from hwcollab_common.ratelimit import client_ip
from hwcollab_common.validation import field_errors
from hwcollab_employer import web
from hwcollab_employer.api import RESET_REQUESTED, request_reset_later
from hwcollab_employer.commands import PasswordResetConfirmation, PasswordResetRequest
from hwcollab_employer.context import Context
from hwcollab_employer.domain import InvalidFieldsError
from hwcollab_employer.handlers import RESET_LINK_INVALID, VERIFY_LINK_INVALID

router = APIRouter(include_in_schema=False)


def _no_referrer(response: Response) -> Response:
    """The address of a link's page carries its token: no other site may learn it."""
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


FORGOT_TITLE = "Forgot your password?"
VERIFY_TITLE = "Confirm your email address"
RESET_TITLE = "Choose a new password"


@router.get("/forgot-password", response_class=HTMLResponse)
async def forgot_password_page(request: Request, context: Context) -> Response:
    who = web.visitor(request, context)
    values = {"page_title": FORGOT_TITLE, "email": "", "sent": False}
    return web.render(request, context, who, "employer/forgot_password.html", values)


@router.post("/forgot-password", response_class=HTMLResponse)
async def forgot_password(
    request: Request, context: Context, background: BackgroundTasks
) -> Response:
    """The same page, at once, whether or not an account uses the address."""
    who = web.visitor(request, context)
    form = await request.form()
    web.check_csrf(who, form)
    email = web.text(form, "email")
    try:
        asked = PasswordResetRequest.model_validate({"email": email})
    except ValidationError as error:
        values = {
            "page_title": FORGOT_TITLE,
            "email": email,
            "sent": False,
            "errors": field_errors(error),
        }
        return web.render(
            request, context, who, "employer/forgot_password.html", values, status_code=422
        )
    request_reset_later(context, request, str(asked.email), background)
    values = {"page_title": FORGOT_TITLE, "sent": True, "message": RESET_REQUESTED}
    return web.render(
        request, context, who, "employer/forgot_password.html", values, status_code=202
    )


def _reset_page(
    request: Request,
    context: Context,
    who: web.Visitor,
    *,
    token: str,
    usable: bool,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    values = {
        "page_title": RESET_TITLE,
        "token": token,
        "usable": usable,
        "message": RESET_LINK_INVALID,
        "errors": errors or {},
    }
    return _no_referrer(
        web.render(
            request, context, who, "employer/reset_password.html", values, status_code=status_code
        )
    )


@router.get("/reset-password", response_class=HTMLResponse)
async def reset_password_page(request: Request, context: Context) -> Response:
    """The form, when the link still works (reading it uses nothing up: mail scanners that
    follow links do no harm); otherwise why not, with a way to ask again."""
    who = web.visitor(request, context)
    token = request.query_params.get("token", "")[:200]
    usable = bool(token) and await context.service.password_reset_usable(token)
    return _reset_page(
        request, context, who, token=token, usable=usable, status_code=200 if usable else 410
    )


@router.post("/reset-password", response_class=HTMLResponse)
async def reset_password(request: Request, context: Context) -> Response:
    who = web.visitor(request, context)
    form = await request.form()
    web.check_csrf(who, form)
    context.limiter.hit(context.settings.login_rate_limit, "reset-confirm-ip", client_ip(request))
    token = web.text(form, "token")
    try:
        confirmed = PasswordResetConfirmation.model_validate(
            {"token": token, "password": form.get("password") or ""}
        )
    except ValidationError as error:
        errors = field_errors(error)
        if "token" in errors:
            return _reset_page(request, context, who, token="", usable=False, status_code=410)
        return _reset_page(
            request, context, who, token=token, usable=True, errors=errors, status_code=422
        )
    try:
        employer = await context.service.reset_password(confirmed.token, confirmed.password)
    except InvalidFieldsError:
        return _reset_page(request, context, who, token="", usable=False, status_code=410)
    response = web.redirect("/dashboard")
    web.sign_in(response, context, employer)
    return response


def _verify_page(
    request: Request,
    context: Context,
    who: web.Visitor,
    *,
    token: str = "",
    usable: bool = False,
    confirmed_before: bool = False,
    status_code: int = 200,
) -> Response:
    values = {
        "page_title": VERIFY_TITLE,
        "token": token,
        "usable": usable,
        "confirmed_before": confirmed_before,
        "message": VERIFY_LINK_INVALID,
    }
    return _no_referrer(
        web.render(
            request, context, who, "employer/verify_email.html", values, status_code=status_code
        )
    )


@router.get("/verify-email", response_class=HTMLResponse)
async def verify_email_page(request: Request, context: Context) -> Response:
    """A button that confirms (the GET changes nothing); why not, when the link is bad."""
    who = web.visitor(request, context)
    token = request.query_params.get("token", "")[:200]
    usable = bool(token) and await context.service.verification_usable(token)
    return _verify_page(
        request, context, who, token=token, usable=usable, status_code=200 if usable else 410
    )


@router.post("/verify-email", response_class=HTMLResponse)
async def verify_email(request: Request, context: Context) -> Response:
    """Confirms the address and signs this browser in — the first time only: a link used again
    (it may sit in a mailbox others read) says "already confirmed" and signs nobody in."""
    who = web.visitor(request, context)
    form = await request.form()
    web.check_csrf(who, form)
    context.limiter.hit(context.settings.login_rate_limit, "verify-ip", client_ip(request))
    token = web.text(form, "token")[:200]
    try:
        employer, confirmed_now = await context.service.verify_email(token)
    except InvalidFieldsError:
        return _verify_page(request, context, who, status_code=410)
    if not confirmed_now:
        return _verify_page(request, context, who, confirmed_before=True)
    response = web.redirect("/dashboard")
    web.sign_in(response, context, employer)
    return response
