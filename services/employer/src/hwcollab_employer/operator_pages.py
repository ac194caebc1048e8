"""The operator page: pending and suspended employers and the newest openings, with approve,
reject, suspend, reinstate and take-down buttons.

An operator signs in with the ``ADMIN_TOKEN`` (the same secret the admin API takes as a bearer
token); the session is a signed, expiring cookie scoped to ``/operators`` that carries its own
CSRF token, which every form of the page sends back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from hwcollab_common.ratelimit import client_ip
from hwcollab_common.validation import field_errors
from hwcollab_employer import web
from hwcollab_employer.commands import ModerationReason, ReinstatementNote
from hwcollab_employer.context import Context, EmployerContext
from hwcollab_employer.domain import InvalidFieldsError
from hwcollab_employer.security import constant_time_equal, csrf_matches

router = APIRouter(prefix="/operators", include_in_schema=False)

OPERATOR_COOKIE = "hwcollab_employer_operator"
HOME = "/operators"
SIGN_IN_FAILED = "That is not the operator token."
RECENT_OPENINGS = 50

EmployerPath = Annotated[str, Path(max_length=64)]
OpeningPath = Annotated[str, Path(max_length=64)]


class OperatorSignInRequiredError(Exception):
    """An operator action without an operator session (→ the operator sign-in)."""


def _operator_csrf(request: Request, context: EmployerContext) -> str | None:
    return context.tokens.read_operator_session(request.cookies.get(OPERATOR_COOKIE))


async def _operator_form(request: Request, context: EmployerContext) -> FormData:
    """The form of a signed-in operator, its CSRF token checked."""
    csrf = _operator_csrf(request, context)
    if csrf is None:
        raise OperatorSignInRequiredError
    form = await request.form()
    given = form.get("csrf_token")
    if not csrf_matches(csrf, given if isinstance(given, str) else None):
        raise HTTPException(403, "This form has expired. Please go back, reload and try again.")
    return form


def _reason(form: FormData, *, required: bool) -> str | None:
    try:
        if required:
            return ModerationReason.model_validate({"reason": web.text(form, "reason")}).reason
        return ReinstatementNote.model_validate({"reason": web.text(form, "reason")}).reason
    except ValidationError as error:
        raise InvalidFieldsError(field_errors(error)) from error


@router.get("", response_class=HTMLResponse)
async def operator_page(request: Request, context: Context) -> Response:
    who = web.visitor(request, context)
    csrf = _operator_csrf(request, context)
    if csrf is None:
        sign_in = {"page_title": "Operators: sign in", "failure": None}
        return web.render(request, context, who, "employer/operator_login.html", sign_in)
    service = context.service
    values: dict[str, object] = {
        "page_title": "Operators",
        "operator_csrf": csrf,
        "done": request.query_params.get("done", "")[:200],
        "pending": await service.employers_with_status("pending", limit=100),
        "suspended": await service.employers_with_status("suspended", limit=100),
        "openings": await service.recent_openings(limit=RECENT_OPENINGS),
    }
    return web.render(request, context, who, "employer/operators.html", values)


@router.post("/login", response_class=HTMLResponse)
async def operator_login(request: Request, context: Context) -> Response:
    who = web.visitor(request, context)
    form = await request.form()
    web.check_csrf(who, form)
    context.limiter.hit(context.settings.login_rate_limit, "operator-login", client_ip(request))
    expected = context.settings.admin_token.get_secret_value()
    if not constant_time_equal(web.text(form, "token"), expected):
        values = {"page_title": "Operators: sign in", "failure": SIGN_IN_FAILED}
        return web.render(
            request, context, who, "employer/operator_login.html", values, status_code=401
        )
    cookie, _ = context.tokens.issue_operator_session()
    response = web.redirect(HOME)
    response.set_cookie(
        OPERATOR_COOKIE,
        cookie,
        max_age=int(context.tokens.session_ttl.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=context.settings.secure_cookies,
        path=HOME,
    )
    return response


@router.post("/logout")
async def operator_logout(request: Request, context: Context) -> Response:
    await _operator_form(request, context)
    response = web.redirect(HOME)
    response.delete_cookie(OPERATOR_COOKIE, path=HOME)
    return response


async def _decided(
    request: Request,
    context: EmployerContext,
    *,
    decide: Callable[[FormData], Awaitable[str]],
) -> Response:
    form = await _operator_form(request, context)
    done = await decide(form)
    return web.redirect(f"{HOME}?done={done}")


@router.post("/employers/{employer_id}/approve")
async def approve(request: Request, context: Context, employer_id: EmployerPath) -> Response:
    async def decide(_: FormData) -> str:
        await context.service.approve(employer_id)
        return "approved"

    return await _decided(request, context, decide=decide)


@router.post("/employers/{employer_id}/reject")
async def reject(request: Request, context: Context, employer_id: EmployerPath) -> Response:
    async def decide(form: FormData) -> str:
        reason = _reason(form, required=True)
        assert reason is not None
        await context.service.reject(employer_id, reason=reason)
        return "rejected"

    return await _decided(request, context, decide=decide)


@router.post("/employers/{employer_id}/suspend")
async def suspend(request: Request, context: Context, employer_id: EmployerPath) -> Response:
    async def decide(form: FormData) -> str:
        reason = _reason(form, required=True)
        assert reason is not None
        await context.service.suspend(employer_id, reason=reason)
        return "suspended"

    return await _decided(request, context, decide=decide)


@router.post("/employers/{employer_id}/reinstate")
async def reinstate(request: Request, context: Context, employer_id: EmployerPath) -> Response:
    async def decide(form: FormData) -> str:
        await context.service.reinstate(employer_id, reason=_reason(form, required=False))
        return "reinstated"

    return await _decided(request, context, decide=decide)


@router.post("/openings/{opening_id}/take-down")
async def take_down(request: Request, context: Context, opening_id: OpeningPath) -> Response:
    async def decide(form: FormData) -> str:
        reason = _reason(form, required=True)
        assert reason is not None
        await context.service.take_down(opening_id, reason=reason)
        return "taken-down"

    return await _decided(request, context, decide=decide)
