"""What every HTML page shares: templates, the signed-in session cookie and CSRF checks.

Sessions: ``hwcollab_employer_session`` holds a signed, expiring session (employer id, its CSRF
token and the employer's session version when it signed in: a password reset or change raises the
version, and :func:`check_session`, run before every route, ends older sessions). Before signing
in, ``hwcollab_employer_csrf`` holds a signed CSRF token for the sign-up and sign-in forms. Both
cookies are HttpOnly, SameSite=Lax, and Secure when the public URL is https. Every form POST
carries ``csrf_token``, checked against the cookie's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData

from hwcollab_common.web import templates as shared_templates
from hwcollab_employer.context import Context, EmployerContext
from hwcollab_employer.domain import Employer
from hwcollab_employer.security import Session, csrf_matches
from hwcollab_schemas import taxonomy

SESSION_COOKIE = "hwcollab_employer_session"
CSRF_COOKIE = "hwcollab_employer_csrf"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PATH = "/assets/employer"


def _miles(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} mi"


def _pay(fields: Any) -> str:
    """The pay range as openings read everywhere, pages and email alike: "$38–$45 an hour"."""
    label = taxonomy.pay_label(
        pay_min=fields.pay_min, pay_max=fields.pay_max, period=fields.pay_period
    )
    return label or ""


RADIUS_CHOICES = (10, 25, 50, 100, 250)


def _radius_options(current: str | None) -> list[tuple[str, str]]:
    """The distances a search form offers, including one asked for by a link (e.g. 30)."""
    choices = set(RADIUS_CHOICES)
    if current and current.isdigit() and 1 <= int(current) <= max(RADIUS_CHOICES):
        choices.add(int(current))
    return [(str(miles), f"{miles} miles") for miles in sorted(choices)]


def _date(value: datetime | None) -> str:
    return value.strftime("%b %-d, %Y") if value else ""


templates = shared_templates(
    TEMPLATES_DIR,
    globals={
        "taxonomy": taxonomy,
        "role_title": lambda code: taxonomy.ROLES[code].title if code in taxonomy.ROLES else code,
        "setting_title": lambda code: (
            taxonomy.SETTINGS[code].title if code in taxonomy.SETTINGS else code
        ),
        "type_title": lambda code: (
            taxonomy.EMPLOYMENT_TYPES[code].title if code in taxonomy.EMPLOYMENT_TYPES else code
        ),
        "credential_title": lambda code: (
            taxonomy.CREDENTIALS[code].title if code in taxonomy.CREDENTIALS else code
        ),
        "miles": _miles,
        "pay": _pay,
        "date": _date,
        "radius_options": _radius_options,
        "employer_static": STATIC_PATH,
    },
)


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who is looking at a page: a signed-in employer (with a session) or anyone."""

    session: Session | None
    csrf_token: str
    new_csrf_cookie: str | None = None

    @property
    def employer_id(self) -> str | None:
        return self.session.employer_id if self.session else None


async def check_session(request: Request, context: Context) -> None:
    """Before every route: whether the request's session is of the employer's current session
    version (one read by id). :func:`visitor` counts no other session as signed in."""
    session = context.tokens.read_session(request.cookies.get(SESSION_COOKIE))
    if session is not None:
        current = await context.service.session_version(session.employer_id)
        request.state.current_session = current == session.session_version


def visitor(request: Request, context: EmployerContext) -> Visitor:
    session = context.tokens.read_session(request.cookies.get(SESSION_COOKIE))
    # Unchecked (no route matched) counts as ended too.
    if session is not None and getattr(request.state, "current_session", False):
        return Visitor(session, session.csrf_token)
    token = context.tokens.read_anonymous_csrf(request.cookies.get(CSRF_COOKIE))
    if token is not None:
        return Visitor(None, token)
    cookie, token = context.tokens.issue_anonymous_csrf()
    return Visitor(None, token, new_csrf_cookie=cookie)


class SignInRequiredError(Exception):
    """A page for signed-in employers was asked for without a session (→ the sign-in page)."""


def signed_in(request: Request, context: EmployerContext) -> tuple[Visitor, str]:
    who = visitor(request, context)
    if who.employer_id is None:
        raise SignInRequiredError
    return who, who.employer_id


def nav_links(visitor: Visitor) -> list[tuple[str, str]]:
    links = [("/", "Find a Local Employer"), ("/openings", "Job board")]
    if visitor.session:
        links += [("/dashboard", "Dashboard"), ("/logout", "Sign out")]
    else:
        links += [("/login", "Sign in"), ("/signup", "Create an account")]
    return links


def render(
    request: Request,
    context: EmployerContext,
    who: Visitor,
    template: str,
    values: Mapping[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        template,
        {
            "site_section": "Employers",
            "nav_links": nav_links(who),
            "current_path": request.url.path,
            "csrf_token": who.csrf_token,
            "signed_in": who.session is not None,
            "errors": {},
            **values,
        },
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    if who.new_csrf_cookie:
        set_cookie(response, context, CSRF_COOKIE, who.new_csrf_cookie, max_age=None)
    return response


def set_cookie(
    response: Response, context: EmployerContext, name: str, value: str, *, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=context.settings.secure_cookies,
        path="/",
    )


def sign_in(response: Response, context: EmployerContext, employer: Employer) -> None:
    cookie, _ = context.tokens.issue_session(
        employer.employer_id, session_version=employer.session_version
    )
    set_cookie(
        response,
        context,
        SESSION_COOKIE,
        cookie,
        max_age=int(context.tokens.session_ttl.total_seconds()),
    )
    response.delete_cookie(CSRF_COOKIE, path="/")


def sign_out(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


def check_csrf(who: Visitor, form: FormData) -> None:
    """403 unless the form carries the CSRF token of this browser's session."""
    given = form.get("csrf_token")
    if who.new_csrf_cookie or not csrf_matches(
        who.csrf_token, given if isinstance(given, str) else None
    ):
        raise HTTPException(403, "This form has expired. Please go back, reload and try again.")


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def optional(form: FormData, name: str) -> str | None:
    return text(form, name) or None


def checked(form: FormData, name: str) -> bool:
    return text(form, name) in {"true", "on", "1", "yes"}


def values(form: FormData, name: str) -> list[str]:
    return [v for v in form.getlist(name) if isinstance(v, str) and v]
