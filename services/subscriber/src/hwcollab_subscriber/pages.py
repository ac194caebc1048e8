"""HTML pages: sign-up, confirm, preferences, pause/resume, unsubscribe, erase.

Forms post back to the same path (form-encoded); invalid input re-renders the form with 422 and
messages tied to each field. Every link from an email opens a page whose only button POSTs, since
mail scanners follow GET links.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from hwcollab_common import web
from hwcollab_common.tokens import Purpose, TokenInvalidError
from hwcollab_schemas.taxonomy import WEEKDAYS, taxonomy_document
from hwcollab_subscriber.api import limit_link_request, limit_sign_up, service_of
from hwcollab_subscriber.domain import (
    InvalidEmailError,
    Preferences,
    PreferencesChange,
    SignUp,
    Subscriber,
    normalize_email,
)
from hwcollab_subscriber.handlers import Links

M = TypeVar("M", bound=BaseModel)
TEMPLATES_DIR = Path(__file__).parent / "templates"
MULTI_FIELDS = ("roles", "settings", "credentials", "employment_types")
BOOLEAN_FIELDS = ("remote_ok", "career_info", "paused")
PREFERENCE_FIELDS = tuple(Preferences.model_fields)
LABELS = {
    "email": "Email address",
    "first_name": "First name",
    "roles": "What do you do?",
    "settings": "Where do you want to work?",
    "credentials": "Credentials",
    "employment_types": "Employment types",
    "zip": "ZIP code",
    "radius_miles": "Distance",
    "min_pay_hourly": "Lowest pay",
    "frequency": "How often",
    "digest_hour": "Digest time",
    "digest_weekday": "Weekly digest day",
}
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _term_options(terms: Iterable[Mapping[str, str]]) -> list[tuple[str, str, str]]:
    return [(t["code"], t["title"], t.get("description", "")) for t in terms]


def create_templates() -> Jinja2Templates:
    return web.templates(
        TEMPLATES_DIR,
        globals={
            "site_section": "Job alerts",
            "term_options": _term_options,
            "hours": [(hour, f"{hour:02d}:00") for hour in range(24)],
            "weekdays": list(zip(WEEKDAYS, WEEKDAY_NAMES, strict=True)),
            "tax": taxonomy_document(),
            "labels": LABELS,
            "nav_links": [("/", "Sign up"), ("/preferences/link", "Manage my alerts")],
        },
    )


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    context = {"current_path": request.url.path, **context}
    response = _templates(request).TemplateResponse(
        request, name, context, status_code=status_code, headers=headers
    )
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Referrer-Policy", "no-referrer")  # tokens stay out of Referer
    return response


def render_message(
    request: Request,
    *,
    heading: str,
    paragraphs: Sequence[str],
    status_code: int = 200,
    links: Sequence[tuple[str, str]] = (),
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "message.html",
        {
            "page_title": heading,
            "heading": heading,
            "paragraphs": paragraphs,
            "links": links,
            "role": "alert" if status_code >= 400 else "",
        },
        status_code=status_code,
        headers=headers,
    )


def render_action(
    request: Request,
    *,
    heading: str,
    paragraphs: Sequence[str],
    action: str,
    button: str,
    secondary_link: tuple[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "action.html",
        {
            "page_title": heading,
            "heading": heading,
            "paragraphs": paragraphs,
            "action": action,
            "button": button,
            "hidden": {},
            "secondary_link": secondary_link,
        },
    )


def form_values(form: FormData, fields: Iterable[str]) -> dict[str, Any]:
    """Form fields → the JSON-like values the models validate (absent checkbox = false)."""
    values: dict[str, Any] = {}
    for name in fields:
        if name in MULTI_FIELDS:
            values[name] = [str(v) for v in form.getlist(name)]
        elif name in BOOLEAN_FIELDS:
            values[name] = name in form
        else:
            raw = form.get(name)
            values[name] = raw.strip() if isinstance(raw, str) and raw.strip() else None
    return values


def field_errors(error: ValidationError) -> dict[str, str]:
    """One readable message per field."""
    messages: dict[str, str] = {}
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "form"
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "This field is required."
        elif item["type"] == "too_short" and field == "roles":
            message = "Choose at least one role or family."
        messages.setdefault(field, message[:1].upper() + message[1:])
    return messages


def _validate(model: type[M], values: dict[str, Any]) -> M | dict[str, str]:
    try:
        return model.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as error:
        return field_errors(error)


def default_values() -> dict[str, Any]:
    defaults = {name: field.default for name, field in Preferences.model_fields.items()}
    return {**defaults, "roles": [], "email": None, "paused": False}


def subscriber_values(subscriber: Subscriber) -> dict[str, Any]:
    return {**subscriber.preferences.model_dump(), "paused": subscriber.status == "paused"}


def _token(request: Request) -> str:
    token = request.query_params.get("token", "").strip()
    if not token:
        raise TokenInvalidError
    return token


def _with_token(path: str, token: str) -> str:
    return f"{path}?token={quote(token, safe='')}"


def _links(request: Request) -> Links:
    links: Links = request.app.state.links
    return links


router = APIRouter()


# --- sign-up --------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def signup_page(request: Request) -> HTMLResponse:
    return render(
        request,
        "signup.html",
        {"page_title": "Sign up for job alerts", "values": default_values(), "errors": {}},
    )


@router.post("/", response_class=HTMLResponse, include_in_schema=False)
async def signup_submit(request: Request) -> HTMLResponse:
    form = await request.form()
    values = form_values(form, ("email", *PREFERENCE_FIELDS))
    result = _validate(SignUp, values)
    if isinstance(result, dict):
        return render(
            request,
            "signup.html",
            {"page_title": "Please check the form", "values": values, "errors": result},
            status_code=422,
        )
    limit_sign_up(request, result.email)
    await service_of(request).sign_up(result)
    return render_message(
        request,
        heading="Check your inbox",
        paragraphs=[
            "Thanks! If this address can receive job alerts, we have sent it an email. "
            "Open the link in it and press the button to confirm; until then we send nothing else.",
            "No email after a few minutes? Look in your spam folder, or sign up again.",
        ],
    )


@router.get("/confirm", response_class=HTMLResponse, include_in_schema=False)
async def confirm_page(request: Request) -> HTMLResponse:
    token = _token(request)
    _links(request).verify(Purpose.CONFIRM, token)
    return render_action(
        request,
        heading="Confirm your job alerts",
        paragraphs=["Press the button to confirm your address and start getting job alerts."],
        action=_with_token("/confirm", token),
        button="Yes, send me job alerts",
    )


@router.post("/confirm", response_class=HTMLResponse, include_in_schema=False)
async def confirm_submit(request: Request) -> HTMLResponse:
    subscriber = await service_of(request).confirm(_token(request))
    greeting = f"Thanks, {subscriber.first_name}!" if subscriber.first_name else "Thanks!"
    return render_message(
        request,
        heading="You are subscribed",
        paragraphs=[
            f"{greeting} Your address is confirmed. We will email you openings that match "
            "your preferences; openings that already match are on their way.",
        ],
        links=[(_links(request).manage(subscriber.subscriber_id), "Change your preferences")],
    )


# --- preferences ----------------------------------------------------------------------------------


def _preferences_page(
    request: Request,
    subscriber: Subscriber,
    *,
    token: str,
    values: dict[str, Any],
    errors: dict[str, str],
    saved: bool = False,
) -> HTMLResponse:
    return render(
        request,
        "preferences.html",
        {
            "page_title": "Your preferences",
            "subscriber": subscriber,
            "token": token,
            "unsubscribe_token": _links(request).token(
                Purpose.UNSUBSCRIBE, subscriber.subscriber_id
            ),
            "values": values,
            "errors": errors,
            "saved": saved,
        },
        status_code=422 if errors else 200,
    )


@router.get("/preferences", response_class=HTMLResponse, include_in_schema=False)
async def preferences_page(request: Request) -> HTMLResponse:
    token = _token(request)
    subscriber = await service_of(request).preferences(token)
    return _preferences_page(
        request, subscriber, token=token, values=subscriber_values(subscriber), errors={}
    )


@router.post("/preferences", response_class=HTMLResponse, include_in_schema=False)
async def preferences_submit(request: Request) -> HTMLResponse:
    token = _token(request)
    service = service_of(request)
    form = await request.form()
    values = form_values(form, (*PREFERENCE_FIELDS, "paused"))
    result = _validate(PreferencesChange, values)
    if isinstance(result, dict):
        subscriber = await service.preferences(token)
        return _preferences_page(request, subscriber, token=token, values=values, errors=result)
    subscriber = await service.change_preferences(token, result)
    return _preferences_page(
        request,
        subscriber,
        token=token,
        values=subscriber_values(subscriber),
        errors={},
        saved=True,
    )


@router.get("/preferences/link", response_class=HTMLResponse, include_in_schema=False)
async def link_page(request: Request) -> HTMLResponse:
    return render(
        request,
        "link_request.html",
        {"page_title": "Get a link to your preferences", "values": {"email": None}, "errors": {}},
    )


@router.post("/preferences/link", response_class=HTMLResponse, include_in_schema=False)
async def link_submit(request: Request) -> HTMLResponse:
    form = await request.form()
    values = form_values(form, ("email",))
    email = values["email"] or ""
    errors: dict[str, str] = {}
    try:
        normalize_email(email)
    except InvalidEmailError as error:
        errors["email"] = str(error) if email else "This field is required."
    if errors:
        return render(
            request,
            "link_request.html",
            {"page_title": "Please check the form", "values": values, "errors": errors},
            status_code=422,
        )
    limit_link_request(request, email)
    await service_of(request).request_manage_link(email)
    return render_message(
        request,
        heading="Check your inbox",
        paragraphs=[
            "If this address is subscribed, we have emailed it a link to your preferences."
        ],
    )


# --- pause and resume -----------------------------------------------------------------------------


@router.get("/pause", response_class=HTMLResponse, include_in_schema=False)
async def pause_page(request: Request) -> HTMLResponse:
    token = _token(request)
    subscriber = await service_of(request).preferences(token)
    return render_action(
        request,
        heading="Pause your job alerts?",
        paragraphs=[
            f"We keep your preferences for {subscriber.email} and send nothing until you resume."
        ],
        action=_with_token("/pause", token),
        button="Pause my alerts",
        secondary_link=(_with_token("/preferences", token), "Change my preferences instead"),
    )


@router.post("/pause", response_class=HTMLResponse, include_in_schema=False)
async def pause_submit(request: Request) -> HTMLResponse:
    token = _token(request)
    await service_of(request).set_paused(token, paused=True)
    return render_action(
        request,
        heading="Your alerts are paused",
        paragraphs=["We will not email you openings until you resume."],
        action=_with_token("/resume", token),
        button="Resume my alerts",
        secondary_link=(_with_token("/preferences", token), "Your preferences"),
    )


@router.get("/resume", response_class=HTMLResponse, include_in_schema=False)
async def resume_page(request: Request) -> HTMLResponse:
    token = _token(request)
    await service_of(request).preferences(token)
    return render_action(
        request,
        heading="Resume your job alerts?",
        paragraphs=["We will email you matching openings again, as you chose."],
        action=_with_token("/resume", token),
        button="Resume my alerts",
    )


@router.post("/resume", response_class=HTMLResponse, include_in_schema=False)
async def resume_submit(request: Request) -> HTMLResponse:
    token = _token(request)
    await service_of(request).set_paused(token, paused=False)
    return render_message(
        request,
        heading="Your alerts are back on",
        paragraphs=["We will email you matching openings again."],
        links=[(_with_token("/preferences", token), "Your preferences")],
    )


# --- unsubscribe and erasure ----------------------------------------------------------------------


@router.get("/unsubscribe", response_class=HTMLResponse, include_in_schema=False)
async def unsubscribe_page(request: Request) -> HTMLResponse:
    token = _token(request)
    subscriber = await service_of(request).lookup(Purpose.UNSUBSCRIBE, token)
    if subscriber is None or subscriber.status == "unsubscribed":
        return _unsubscribed(request)
    return render_action(
        request,
        heading="Unsubscribe from job alerts?",
        paragraphs=["We will stop sending you job alerts at once, including any not yet sent."],
        action=_with_token("/unsubscribe", token),
        button="Unsubscribe",
    )


@router.post(
    "/unsubscribe",
    response_class=HTMLResponse,
    tags=["subscribers"],
    summary="Unsubscribe (RFC 8058 one-click; publishes subscriber.unsubscribed)",
    description=(
        "The target of the `List-Unsubscribe` header: a form-encoded POST with body "
        "`List-Unsubscribe=One-Click` (the page's button posts without it). Idempotent; always "
        "200 with a confirmation page for a valid token. `GET /unsubscribe?token=` only shows "
        "the button."
    ),
    responses={400: {"description": "Token not valid."}},
    openapi_extra={
        "parameters": [
            {
                "name": "token",
                "in": "query",
                "required": True,
                "schema": {"type": "string"},
                "description": "The unsubscribe token from the email's link.",
            }
        ],
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {"List-Unsubscribe": {"type": "string"}},
                    },
                    "example": {"List-Unsubscribe": "One-Click"},
                }
            }
        },
    },
)
async def unsubscribe_submit(request: Request) -> HTMLResponse:
    """The page's button and RFC 8058 one-click (``List-Unsubscribe=One-Click``) alike."""
    token = _token(request)
    form = await request.form()
    one_click = form.get("List-Unsubscribe") == "One-Click"
    await service_of(request).unsubscribe(token, reason="one_click" if one_click else "page")
    return _unsubscribed(request)


def _unsubscribed(request: Request) -> HTMLResponse:
    return render_message(
        request,
        heading="You are unsubscribed",
        paragraphs=[
            "We will not send you any more job alerts. Changed your mind? You can sign up again "
            "at any time."
        ],
        links=[("/", "Sign up again")],
    )


@router.get("/erase", response_class=HTMLResponse, include_in_schema=False)
async def erase_page(request: Request) -> HTMLResponse:
    token = _token(request)
    _links(request).verify(Purpose.MANAGE, token)
    return render_action(
        request,
        heading="Delete your data?",
        paragraphs=[
            "We will delete your address, name and preferences and stop all mail. "
            "This cannot be undone."
        ],
        action=_with_token("/erase", token),
        button="Delete my data",
        secondary_link=(_with_token("/preferences", token), "Keep my subscription"),
    )


@router.post("/erase", response_class=HTMLResponse, include_in_schema=False)
async def erase_submit(request: Request) -> HTMLResponse:
    await service_of(request).erase(_token(request))
    return render_message(
        request,
        heading="Your data is deleted",
        paragraphs=["We have deleted your address, name and preferences."],
        links=[("/", "Sign up again")],
    )
