"""Account pages: "Confirm your email address" (the sign-up link), "Forgot your password?",
"Choose a new password", the signed-in account page (change the password, change the contact
email) and "Confirm your new contact email". An emailed link's GET only shows a
form and uses nothing up (mail scanners follow links); the form's POST acts."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from hwcollab_common.ratelimit import client_ip
from hwcollab_common.validation import field_errors
from hwcollab_employer import web
from hwcollab_employer.accounts import EMAIL_LINK_INVALID, RESET_LINK_INVALID, VERIFY_LINK_INVALID
from hwcollab_employer.api.credentials import RESET_REQUESTED, request_reset_later
from hwcollab_employer.commands import (
    EmailChange,
    PasswordChange,
    PasswordResetConfirmation,
    PasswordResetRequest,
)
from hwcollab_employer.context import Context
from hwcollab_employer.domain import InvalidFieldsError

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


# --- the signed-in account page -------------------------------------------------------------

ACCOUNT_TITLE = "Account"
NOTICES = {
    "password": "Your password has been changed. Other browsers have been signed out.",
    "email": "We have emailed the new address a link to confirm it, and told the current "
    "address. Your contact email changes when the link is used (within 24 hours).",
}


async def _account_page(
    request: Request,
    context: Context,
    who: web.Visitor,
    employer_id: str,
    *,
    password_errors: dict[str, str] | None = None,
    email_errors: dict[str, str] | None = None,
    new_email: str = "",
    status_code: int = 200,
) -> Response:
    employer = await context.service.employer(employer_id)
    values = {
        "page_title": ACCOUNT_TITLE,
        "contact_email": employer.contact_email,
        "notice": NOTICES.get(request.query_params.get("changed", "")),
        "password_errors": password_errors or {},
        "email_errors": email_errors or {},
        "new_email": new_email,
    }
    return web.render(
        request, context, who, "employer/account.html", values, status_code=status_code
    )


def _limit_account_change(request: Request, context: Context, employer_id: str) -> None:
    limit = context.settings.login_rate_limit
    context.limiter.hit(limit, "account-ip", client_ip(request))
    context.limiter.hit(limit, "account-employer", employer_id)


@router.get("/dashboard/account", response_class=HTMLResponse)
async def account_page(request: Request, context: Context) -> Response:
    who, employer_id = web.signed_in(request, context)
    return await _account_page(request, context, who, employer_id)


@router.post("/dashboard/account/password", response_class=HTMLResponse)
async def change_password(request: Request, context: Context) -> Response:
    """The new password; this browser stays signed in (with a new session), others do not."""
    who, employer_id = web.signed_in(request, context)
    form = await request.form()
    web.check_csrf(who, form)
    _limit_account_change(request, context, employer_id)
    try:
        change = PasswordChange.model_validate(
            {
                "current_password": form.get("current_password") or "",
                "new_password": form.get("new_password") or "",
            }
        )
        employer = await context.service.change_password(
            employer_id, current=change.current_password, new=change.new_password
        )
    except ValidationError as error:
        errors = field_errors(error)
    except InvalidFieldsError as error:
        errors = error.errors
    else:
        response = web.redirect("/dashboard/account?changed=password")
        web.sign_in(response, context, employer)
        return response
    return await _account_page(
        request, context, who, employer_id, password_errors=errors, status_code=422
    )


@router.post("/dashboard/account/email", response_class=HTMLResponse)
async def change_email(request: Request, context: Context) -> Response:
    who, employer_id = web.signed_in(request, context)
    form = await request.form()
    web.check_csrf(who, form)
    _limit_account_change(request, context, employer_id)
    new_email = web.text(form, "new_email")
    try:
        change = EmailChange.model_validate(
            {"new_email": new_email, "password": form.get("password") or ""}
        )
        await context.service.request_email_change(
            employer_id, new_email=str(change.new_email), password=change.password
        )
    except ValidationError as error:
        errors = field_errors(error)
    except InvalidFieldsError as error:
        errors = error.errors
    else:
        return web.redirect("/dashboard/account?changed=email")
    return await _account_page(
        request,
        context,
        who,
        employer_id,
        email_errors=errors,
        new_email=new_email,
        status_code=422,
    )


def _confirm_email_page(
    request: Request,
    context: Context,
    who: web.Visitor,
    *,
    token: str = "",
    usable: bool = False,
    contact_email: str = "",
    status_code: int = 200,
) -> Response:
    values = {
        "page_title": "Confirm your new contact email",
        "token": token,
        "usable": usable,
        "changed": bool(contact_email),
        "contact_email": contact_email,
        "message": EMAIL_LINK_INVALID,
    }
    return _no_referrer(
        web.render(
            request, context, who, "employer/confirm_email.html", values, status_code=status_code
        )
    )


@router.get("/confirm-email", response_class=HTMLResponse)
async def confirm_email_page(request: Request, context: Context) -> Response:
    """A button that confirms (the GET changes nothing); why not, when the link is bad."""
    who = web.visitor(request, context)
    token = request.query_params.get("token", "")[:200]
    usable = bool(token) and await context.service.email_change_usable(token)
    return _confirm_email_page(
        request, context, who, token=token, usable=usable, status_code=200 if usable else 410
    )


@router.post("/confirm-email", response_class=HTMLResponse)
async def confirm_email(request: Request, context: Context) -> Response:
    who = web.visitor(request, context)
    form = await request.form()
    web.check_csrf(who, form)
    context.limiter.hit(context.settings.login_rate_limit, "verify-ip", client_ip(request))
    try:
        employer, _ = await context.service.confirm_email_change(web.text(form, "token")[:200])
    except InvalidFieldsError:
        return _confirm_email_page(request, context, who, status_code=410)
    return _confirm_email_page(request, context, who, contact_email=employer.contact_email)
