"""The opening form's fields: what was typed, the values for ``OpeningFields``, and errors named
after the form's fields (the new-opening and edit pages and the form's reach estimate share it)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from starlette.datastructures import FormData

from hwcollab_employer import web
from hwcollab_employer.domain import Opening

OPENING_TEXT_FIELDS = (
    "title",
    "role",
    "setting",
    "employment_type",
    "zip",
    "pay_min",
    "pay_max",
    "pay_period",
    "description",
    "apply_url",
    "expires_on",
)


def expires_at_of(value: str) -> datetime | None:
    """A date from the form means the end of that day (UTC)."""
    if not value:
        return None
    return datetime.combine(datetime.fromisoformat(value).date(), time(23, 59), tzinfo=UTC)


def opening_input(form: FormData) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """(values for OpeningFields, what was typed, errors of the form itself)."""
    typed = {name: web.text(form, name) for name in OPENING_TEXT_FIELDS}
    errors: dict[str, str] = {}
    data: dict[str, Any] = {
        "title": typed["title"],
        "role": typed["role"],
        "setting": typed["setting"],
        "required_credentials": web.values(form, "required_credentials"),
        "employment_type": typed["employment_type"],
        "remote": web.checked(form, "remote"),
        "zip": typed["zip"] or None,
        "pay_min": typed["pay_min"] or None,
        "pay_max": typed["pay_max"] or None,
        "pay_period": typed["pay_period"] or "hour",
        "description": web.text(form, "description"),
        "apply_url": typed["apply_url"],
    }
    try:
        data["expires_at"] = expires_at_of(typed["expires_on"])
    except ValueError:
        errors["expires_on"] = "must be a date (YYYY-MM-DD)"
    return data, typed, errors


def typed_of(opening: Opening) -> dict[str, str]:
    f = opening.fields
    return {
        "title": f.title,
        "role": f.role,
        "setting": f.setting,
        "employment_type": f.employment_type,
        "zip": f.zip or "",
        "pay_min": "" if f.pay_min is None else f"{f.pay_min:g}",
        "pay_max": "" if f.pay_max is None else f"{f.pay_max:g}",
        "pay_period": f.pay_period,
        "description": f.description,
        "apply_url": f.apply_url,
        "expires_on": opening.expires_at.date().isoformat(),
    }


def form_errors(errors: dict[str, str]) -> dict[str, str]:
    return {("expires_on" if k == "expires_at" else k): v for k, v in errors.items()}
