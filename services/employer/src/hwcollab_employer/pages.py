"""Public HTML pages: Find a Local Employer, employer pages, the job board, sign-up and sign-in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from hwcollab_common.emails import email_key
from hwcollab_common.ratelimit import client_ip
from hwcollab_common.validation import field_errors
from hwcollab_employer import web
from hwcollab_employer.accounts import UNVERIFIED
from hwcollab_employer.api.accounts import SIGNUP_ACCEPTED
from hwcollab_employer.commands import EmployerSignup
from hwcollab_employer.context import Context
from hwcollab_employer.discovery import gone, job_posting, job_posting_script
from hwcollab_employer.domain import InvalidFieldsError, NotFoundError
from hwcollab_employer.listing import (
    BoardQuery,
    DirectoryQuery,
    Page,
    SearchParameters,
    board_query,
    directory_query,
)

router = APIRouter(include_in_schema=False)
Q = TypeVar("Q", DirectoryQuery, BoardQuery)

LOGIN_FAILED = "Incorrect email or password."


def _int(value: str | None) -> int | None:
    return int(value) if value and value.strip().isdigit() else None


def search_parameters(request: Request) -> tuple[SearchParameters, dict[str, str]]:
    args = request.query_params
    # The board's form sends a hidden "false" and, when ticked, the checkbox's "true".
    remote = args.getlist("remote")
    parameters = SearchParameters(
        zip=args.get("zip") or None,
        radius_miles=_int(args.get("radius_miles")),
        setting=args.get("setting") or None,
        role=args.get("role") or None,
        text=args.get("q") or None,
        remote=any(v in {"true", "on", "1"} for v in remote) if remote else None,
        page=_int(args.get("page")),
        page_size=_int(args.get("page_size")),
    )
    form = {key: args.get(key, "") for key in ("zip", "radius_miles", "setting", "role", "q")}
    form["remote"] = "false" if parameters.remote is False else "true"
    return parameters, form


def _page_links(request: Request, page: int, pages: int) -> dict[str, str | None]:
    def link(number: int) -> str:
        return "?" + request.url.include_query_params(page=number).query

    return {
        "previous": link(page - 1) if page > 1 else None,
        "next": link(page + 1) if page < pages else None,
    }


async def _search_page(
    request: Request,
    context: Context,
    *,
    title: str,
    template: str,
    query: Callable[[SearchParameters], Q],
    find: Callable[[Q], Awaitable[Page[Any]]],
    extra: dict[str, Any] | None = None,
) -> Response:
    """A search page: the form as sent, its field errors (422) or one page of results."""
    who = web.visitor(request, context)
    parameters, form = search_parameters(request)
    values: dict[str, Any] = {"page_title": title, "form": form, **(extra or {})}
    try:
        search = query(parameters)
    except InvalidFieldsError as error:
        values["errors"] = error.errors
        return web.render(request, context, who, template, values, status_code=422)
    found = await find(search)
    values |= {
        "results": found,
        "searched_near": search.near,
        "links": _page_links(request, found.page, found.pages),
    }
    return web.render(request, context, who, template, values)


@router.get("/", response_class=HTMLResponse)
async def directory_page(request: Request, context: Context) -> Response:
    return await _search_page(
        request,
        context,
        title="Find a Local Employer",
        template="employer/directory.html",
        query=directory_query,
        find=context.service.find_employers,
    )


@router.get("/employers/{employer_id}", response_class=HTMLResponse)
async def employer_page(
    request: Request, context: Context, employer_id: Annotated[str, Path(max_length=64)]
) -> Response:
    who = web.visitor(request, context)
    employer = await context.service.employer(employer_id)
    if not employer.approved and employer.employer_id != who.employer_id:
        raise NotFoundError(employer_id)
    openings = await context.service.open_openings_of(employer_id)
    values = {"page_title": employer.organization_name, "employer": employer, "openings": openings}
    return web.render(request, context, who, "employer/employer.html", values)


@router.get("/openings", response_class=HTMLResponse)
async def board_page(request: Request, context: Context) -> Response:
    query = request.url.query
    return await _search_page(
        request,
        context,
        title="Job board",
        template="employer/openings.html",
        query=board_query,
        find=context.service.find_openings,
        extra={"feed_url": "/openings.atom" + (f"?{query}" if query else "")},
    )


@router.get("/openings/{opening_id}", response_class=HTMLResponse)
async def opening_page(
    request: Request, context: Context, opening_id: Annotated[str, Path(max_length=64)]
) -> Response:
    who = web.visitor(request, context)
    opening = await context.service.any_opening(opening_id)
    owner = opening is not None and opening.employer_id == who.employer_id
    if opening is None or not (opening.employer_approved or owner):
        raise NotFoundError(opening_id)
    now = context.clock.now()
    if gone(opening, now=now) and not owner:
        values = {"page_title": "Opening closed", "opening": opening}
        return web.render(request, context, who, "employer/gone.html", values, status_code=410)
    employer = await context.service.employer(opening.employer_id)
    posting = job_posting(
        opening, employer=employer, public_url=context.settings.employer_public_url, now=now
    )
    values = {
        "page_title": opening.fields.title,
        "opening": opening,
        "owner": owner,
        "job_posting": job_posting_script(posting) if posting is not None else None,
    }
    return web.render(request, context, who, "employer/opening.html", values)


# --- sign-up, sign-in, sign-out ------------------------------------------------------------------

SIGNUP_FIELDS = (
    "organization_name",
    "contact_email",
    "website",
    "phone",
    "description",
    "street",
    "city",
    "state",
    "zip",
)


@router.get("/signup", response_class=HTMLResponse)
async def signup_page(request: Request, context: Context) -> Response:
    who = web.visitor(request, context)
    if who.session:
        return web.redirect("/dashboard")
    values = {"page_title": "Create an employer account", "form": {}, "selected_settings": []}
    return web.render(request, context, who, "employer/signup.html", values)


@router.post("/signup", response_class=HTMLResponse)
async def signup(request: Request, context: Context) -> Response:
    who = web.visitor(request, context)
    form = await request.form()
    web.check_csrf(who, form)
    context.limiter.hit(context.settings.signup_rate_limit, "signup", client_ip(request))
    entered = {name: web.text(form, name) for name in SIGNUP_FIELDS}
    settings = web.values(form, "settings")
    errors: dict[str, str] = {}
    try:
        signup_command = EmployerSignup.model_validate(
            {
                "organization_name": entered["organization_name"],
                "contact_email": entered["contact_email"],
                "password": web.text(form, "password"),
                "website": entered["website"],
                "phone": entered["phone"],
                "description": entered["description"],
                "address": {
                    "street": entered["street"],
                    "city": entered["city"],
                    "state": entered["state"],
                    "zip": entered["zip"],
                },
                "settings": settings,
            }
        )
    except ValidationError as error:
        errors = {name.removeprefix("address."): msg for name, msg in field_errors(error).items()}
    else:
        limit = context.settings.signup_rate_limit
        context.limiter.hit(limit, "signup-email", email_key(str(signup_command.contact_email)))
        await context.service.sign_up(signup_command)
        # The same page for a new address and one that has an account (its email says so).
        sent = {"page_title": "Check your inbox", "message": SIGNUP_ACCEPTED}
        return web.render(request, context, who, "employer/signup_sent.html", sent, status_code=202)
    values = {
        "page_title": "Create an employer account",
        "form": entered,
        "selected_settings": settings,
        "errors": errors,
    }
    return web.render(request, context, who, "employer/signup.html", values, status_code=422)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, context: Context) -> Response:
    who = web.visitor(request, context)
    if who.session:
        return web.redirect("/dashboard")
    values = {"page_title": "Sign in", "email": ""}
    return web.render(request, context, who, "employer/login.html", values)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, context: Context) -> Response:
    who = web.visitor(request, context)
    form = await request.form()
    web.check_csrf(who, form)
    email = web.text(form, "email")
    limit = context.settings.login_rate_limit
    context.limiter.hit(limit, "login-ip", client_ip(request))
    context.limiter.hit(limit, "login-email", email_key(email))
    employer = await context.service.authenticate(email, web.text(form, "password"))
    if employer is None:
        values = {"page_title": "Sign in", "email": email, "failure": LOGIN_FAILED}
        return web.render(request, context, who, "employer/login.html", values, status_code=401)
    if not employer.verified:
        values = {"page_title": "Sign in", "email": email, "failure": UNVERIFIED}
        return web.render(request, context, who, "employer/login.html", values, status_code=403)
    response = web.redirect("/dashboard")
    web.sign_in(response, context, employer)
    return response


@router.get("/logout", response_class=HTMLResponse)
async def logout_page(request: Request, context: Context) -> Response:
    who = web.visitor(request, context)
    if not who.session:
        return web.redirect("/")
    return web.render(request, context, who, "employer/logout.html", {"page_title": "Sign out"})


@router.post("/logout")
async def logout(request: Request, context: Context) -> Response:
    who = web.visitor(request, context)
    web.check_csrf(who, await request.form())
    response = web.redirect("/")
    web.sign_out(response)
    return response
