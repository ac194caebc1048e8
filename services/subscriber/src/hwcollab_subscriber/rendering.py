"""Rendering the subscriber pages: templates, messages, one-button pages, and turning forms into
values the models validate (and their errors into one message per field)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from hwcollab_common import validation, web
from hwcollab_common.tokens import TokenInvalidError
from hwcollab_schemas.taxonomy import WEEKDAYS, taxonomy_document
from hwcollab_subscriber.domain import (
    Preferences,
    Subscriber,
)

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


def long_date(moment: datetime) -> str:
    """ "March 2, 2026" (UTC)."""
    return f"{moment:%B} {moment.day}, {moment.year}"


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
            "long_date": long_date,
            "nav_links": [("/", "Sign up"), ("/preferences/link", "Manage my alerts")],
        },
    )


def templates_of(request: Request) -> Jinja2Templates:
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
    response = templates_of(request).TemplateResponse(
        request, name, context, status_code=status_code, headers=headers
    )
    response.headers.setdefault("Cache-Control", "no-store")
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


ROLES_REQUIRED = {("roles", "too_short"): "Choose at least one role or family."}


def field_errors(error: ValidationError) -> dict[str, str]:
    """One readable message per field."""
    return validation.field_errors(error, root="form", overrides=ROLES_REQUIRED)


def validate_form(model: type[M], values: dict[str, Any]) -> M | dict[str, str]:
    try:
        return model.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as error:
        return field_errors(error)


def default_values() -> dict[str, Any]:
    defaults = {
        name: None if field.is_required() else field.get_default(call_default_factory=True)
        for name, field in Preferences.model_fields.items()
    }
    return {**defaults, "roles": [], "email": None, "paused": False}


def subscriber_values(subscriber: Subscriber) -> dict[str, Any]:
    return {**subscriber.preferences.model_dump(), "paused": subscriber.status == "paused"}


def link_token(request: Request) -> str:
    token = request.query_params.get("token", "").strip()
    if not token:
        raise TokenInvalidError
    return token


def with_token(path: str, token: str) -> str:
    return f"{path}?token={quote(token, safe='')}"
