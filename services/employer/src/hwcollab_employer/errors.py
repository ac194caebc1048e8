"""Errors as answers: JSON under ``/api`` (422 with field messages, 404, 403, 409), pages
otherwise (the same status with a readable page)."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from hwcollab_employer import web
from hwcollab_employer.accounts import EmailTakenError
from hwcollab_employer.domain import (
    ConflictError,
    ForbiddenError,
    InvalidFieldsError,
    NotFoundError,
)
from hwcollab_employer.operator_pages import HOME as OPERATOR_HOME
from hwcollab_employer.operator_pages import OperatorSignInRequiredError
from hwcollab_employer.reach import NOT_APPROVED_MESSAGE, NotApprovedError

MESSAGES = {
    403: "This belongs to another employer.",
    404: "Not found.",
    409: "That cannot be done now.",
}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _page(
    request: Request, status: int, message: str, headers: Mapping[str, str] | None
) -> Response:
    context = request.app.state.employer
    who = web.visitor(request, context)
    titles = {401: "Please sign in", 403: "Not allowed", 404: "Not found", 429: "Slow down"}
    values = {"page_title": titles.get(status, "Something went wrong"), "message": message}
    response = web.render(request, context, who, "employer/error.html", values, status_code=status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _answer(
    request: Request, status: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status, headers=dict(headers or {}))
    return _page(request, status, message, headers)


def install_error_handlers(app: FastAPI) -> None:
    async def invalid(request: Request, error: Exception) -> Response:
        assert isinstance(error, InvalidFieldsError)
        detail = [
            {"loc": [error.location, *field.split(".")], "msg": message, "type": "value_error"}
            for field, message in error.errors.items()
        ]
        if _is_api(request):
            return JSONResponse({"detail": detail}, status_code=422)
        return _page(request, 422, str(error), None)

    async def not_found(request: Request, _: Exception) -> Response:
        return _answer(request, 404, MESSAGES[404])

    async def forbidden(request: Request, _: Exception) -> Response:
        return _answer(request, 403, MESSAGES[403])

    async def not_approved(request: Request, _: Exception) -> Response:
        return _answer(request, 403, NOT_APPROVED_MESSAGE)

    async def conflict(request: Request, error: Exception) -> Response:
        return _answer(request, 409, str(error) or MESSAGES[409])

    async def email_taken(request: Request, _: Exception) -> Response:
        return _answer(request, 409, "An account with this email already exists.")

    async def sign_in_first(_: Request, __: Exception) -> Response:
        return web.redirect("/login")

    async def operator_sign_in_first(_: Request, __: Exception) -> Response:
        return web.redirect(OPERATOR_HOME)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if _is_api(request) or request.url.path in {"/healthz", "/readyz", "/metrics"}:
            return JSONResponse(
                {"detail": error.detail}, status_code=error.status_code, headers=error.headers
            )
        return _page(request, error.status_code, str(error.detail), error.headers)

    app.add_exception_handler(InvalidFieldsError, invalid)
    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(ForbiddenError, forbidden)
    app.add_exception_handler(NotApprovedError, not_approved)
    app.add_exception_handler(ConflictError, conflict)
    app.add_exception_handler(EmailTakenError, email_taken)
    app.add_exception_handler(web.SignInRequiredError, sign_in_first)
    app.add_exception_handler(OperatorSignInRequiredError, operator_sign_in_first)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(HTTPException, http_error)
