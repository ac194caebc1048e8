"""The signed-in employer's pages: openings (post, edit, close, reach), profile and API keys."""

from __future__ import annotations

import contextlib
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from hwcollab_common.validation import field_errors
from hwcollab_employer import web
from hwcollab_employer.commands import OpeningFields, OpeningPatch, ProfilePatch
from hwcollab_employer.context import Context, EmployerContext
from hwcollab_employer.discovery import embed_snippet
from hwcollab_employer.domain import ConflictError, InvalidFieldsError, Opening
from hwcollab_employer.opening_form import (
    OPENING_TEXT_FIELDS,
    form_errors,
    opening_input,
    typed_of,
)
from hwcollab_employer.reach import Reach
from hwcollab_employer.reach_form import ReachView, reach_view
from hwcollab_schemas import taxonomy

router = APIRouter(prefix="/dashboard", include_in_schema=False)

OpeningPath = Annotated[str, Path(max_length=64)]


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request, context: Context) -> Response:
    who, employer_id = web.signed_in(request, context)
    employer = await context.service.employer(employer_id)
    values = {
        "page_title": "Dashboard",
        "employer": employer,
        "openings": await context.service.own_openings(employer_id),
        "api_keys": await context.service.api_keys(employer_id),
        "new_api_key": None,
        "embed_snippet": partial(embed_snippet, public_url=context.settings.employer_public_url),
    }
    return web.render(request, context, who, "employer/dashboard.html", values)


def _opening_form(
    request: Request,
    context: EmployerContext,
    who: web.Visitor,
    *,
    opening: Opening | None,
    typed: dict[str, str],
    credentials: list[str],
    remote: bool,
    errors: dict[str, str] | None = None,
    suggestion: str | None = None,
    estimate: ReachView | None = None,
    status_code: int = 200,
) -> Response:
    values = {
        "estimate": estimate,
        "page_title": "Edit opening" if opening else "Post an opening",
        "opening": opening,
        "form": typed,
        "selected_credentials": credentials,
        "remote": remote,
        "errors": errors or {},
        "suggestion": suggestion,
    }
    return web.render(
        request, context, who, "employer/opening_form.html", values, status_code=status_code
    )


@router.get("/openings/new", response_class=HTMLResponse)
async def new_opening_page(request: Request, context: Context) -> Response:
    who, _ = web.signed_in(request, context)
    typed = dict.fromkeys(OPENING_TEXT_FIELDS, "") | {"pay_period": "hour"}
    return _opening_form(
        request, context, who, opening=None, typed=typed, credentials=[], remote=False
    )


@router.post("/openings/new", response_class=HTMLResponse)
async def post_opening(request: Request, context: Context, source: Reach) -> Response:
    who, employer_id = web.signed_in(request, context)
    form = await request.form()
    web.check_csrf(who, form)
    data, typed, errors = opening_input(form)
    credentials, remote = data["required_credentials"], data["remote"]
    if web.text(form, "action") == "estimate":
        # Without script, "Check reach" re-renders the form with the estimate.
        estimate, errors = await reach_view(context, source, employer_id=employer_id, data=data)
        return _opening_form(
            request,
            context,
            who,
            opening=None,
            typed=typed,
            credentials=credentials,
            remote=remote,
            errors=errors,
            estimate=estimate,
            status_code=422 if errors else 200,
        )
    if web.text(form, "action") == "suggest":
        code = taxonomy.suggest_role(typed["title"])
        if code:
            typed["role"] = code
        note = (
            f"Suggested role: {taxonomy.ROLES[code].title}"
            if code
            else "No role matches this title; please choose one."
        )
        return _opening_form(
            request,
            context,
            who,
            opening=None,
            typed=typed,
            credentials=credentials,
            remote=remote,
            suggestion=note,
        )
    if not errors:
        try:
            fields = OpeningFields.model_validate(data)
            opening = await context.service.post_opening(employer_id, fields)
        except ValidationError as error:
            errors = field_errors(error)
        except InvalidFieldsError as error:
            errors = error.errors
        else:
            return web.redirect(f"/dashboard?posted={opening.opening_id}")
    return _opening_form(
        request,
        context,
        who,
        opening=None,
        typed=typed,
        credentials=credentials,
        remote=remote,
        errors=form_errors(errors),
        status_code=422,
    )


@router.get("/openings/{opening_id}/edit", response_class=HTMLResponse)
async def edit_opening_page(
    request: Request, context: Context, opening_id: OpeningPath
) -> Response:
    who, employer_id = web.signed_in(request, context)
    opening = await context.service.own_opening(employer_id, opening_id)
    return _opening_form(
        request,
        context,
        who,
        opening=opening,
        typed=typed_of(opening),
        credentials=list(opening.fields.required_credentials),
        remote=opening.fields.remote,
    )


@router.post("/openings/{opening_id}/edit", response_class=HTMLResponse)
async def edit_opening(
    request: Request, context: Context, source: Reach, opening_id: OpeningPath
) -> Response:
    who, employer_id = web.signed_in(request, context)
    form = await request.form()
    web.check_csrf(who, form)
    opening = await context.service.own_opening(employer_id, opening_id)
    data, typed, errors = opening_input(form)
    if web.text(form, "action") == "estimate":
        estimate, errors = await reach_view(context, source, employer_id=employer_id, data=data)
        return _opening_form(
            request,
            context,
            who,
            opening=opening,
            typed=typed,
            credentials=data["required_credentials"],
            remote=data["remote"],
            errors=errors,
            estimate=estimate,
            status_code=422 if errors else 200,
        )
    if not errors:
        if data["expires_at"] is None or data["expires_at"].date() == opening.expires_at.date():
            del data["expires_at"]  # unchanged: keep the exact instant it has
        try:
            patch = OpeningPatch.model_validate(data)
            await context.service.edit_opening(employer_id, opening_id, patch)
        except ValidationError as error:
            errors = field_errors(error)
        except InvalidFieldsError as error:
            errors = error.errors
        except ConflictError as error:
            errors = {"title": str(error)}
        else:
            return web.redirect(f"/dashboard?updated={opening_id}")
    return _opening_form(
        request,
        context,
        who,
        opening=opening,
        typed=typed,
        credentials=data["required_credentials"],
        remote=data["remote"],
        errors=form_errors(errors),
        status_code=422,
    )


@router.post("/openings/{opening_id}/close")
async def close_opening(request: Request, context: Context, opening_id: OpeningPath) -> Response:
    who, employer_id = web.signed_in(request, context)
    web.check_csrf(who, await request.form())
    with contextlib.suppress(ConflictError):  # already closed: the dashboard shows it so
        await context.service.close_opening(employer_id, opening_id)
    return web.redirect(f"/dashboard?closed={opening_id}")


@router.post("/api-keys", response_class=HTMLResponse)
async def create_api_key(request: Request, context: Context) -> Response:
    who, employer_id = web.signed_in(request, context)
    form = await request.form()
    web.check_csrf(who, form)
    name = web.text(form, "name")[:100] or "integration"
    key = await context.service.create_api_key(employer_id, name=name)
    values = {
        "page_title": "Dashboard",
        "employer": await context.service.employer(employer_id),
        "openings": await context.service.own_openings(employer_id),
        "api_keys": await context.service.api_keys(employer_id),
        "new_api_key": key.secret,
        "embed_snippet": partial(embed_snippet, public_url=context.settings.employer_public_url),
    }
    return web.render(request, context, who, "employer/dashboard.html", values, status_code=201)


@router.post("/api-keys/{key_id}/revoke")
async def revoke_api_key(request: Request, context: Context, key_id: OpeningPath) -> Response:
    who, employer_id = web.signed_in(request, context)
    web.check_csrf(who, await request.form())
    await context.service.revoke_api_key(employer_id, key_id)
    return web.redirect("/dashboard")


PROFILE_FIELDS = (
    "organization_name",
    "website",
    "phone",
    "description",
    "street",
    "city",
    "state",
    "zip",
)


@router.get("/profile", response_class=HTMLResponse)
async def profile_page(request: Request, context: Context) -> Response:
    who, employer_id = web.signed_in(request, context)
    employer = await context.service.employer(employer_id)
    place = employer.place
    typed = {
        "organization_name": employer.organization_name,
        "website": employer.website or "",
        "phone": employer.phone or "",
        "description": employer.description,
        "street": place.street or "",
        "city": place.city,
        "state": place.state,
        "zip": place.zip,
    }
    values = {"page_title": "Profile", "form": typed, "selected_settings": list(employer.settings)}
    return web.render(request, context, who, "employer/profile.html", values)


@router.post("/profile", response_class=HTMLResponse)
async def update_profile(request: Request, context: Context) -> Response:
    who, employer_id = web.signed_in(request, context)
    form = await request.form()
    web.check_csrf(who, form)
    typed = {name: web.text(form, name) for name in PROFILE_FIELDS}
    settings = web.values(form, "settings")
    try:
        patch = ProfilePatch.model_validate(
            {
                "organization_name": typed["organization_name"],
                "website": typed["website"],
                "phone": typed["phone"] or None,
                "description": web.text(form, "description"),
                "address": {
                    "street": typed["street"],
                    "city": typed["city"],
                    "state": typed["state"],
                    "zip": typed["zip"],
                },
                "settings": settings,
            }
        )
        await context.service.update_profile(employer_id, patch)
    except ValidationError as error:
        errors = field_errors(error)
    except InvalidFieldsError as error:
        errors = error.errors
    else:
        return web.redirect("/dashboard?profile=saved")
    values = {
        "page_title": "Profile",
        "form": typed,
        "selected_settings": settings,
        "errors": {k.removeprefix("address."): v for k, v in errors.items()},
    }
    return web.render(request, context, who, "employer/profile.html", values, status_code=422)
