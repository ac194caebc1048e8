"""The opening form's reach estimate: what the form shows (after "Check reach", or asked by its
script from ``POST /dashboard/openings/estimate``) of ``reach.estimate_reach``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from hwcollab_common.validation import field_errors
from hwcollab_employer import web
from hwcollab_employer.commands import OpeningFields
from hwcollab_employer.context import Context, EmployerContext
from hwcollab_employer.domain import InvalidFieldsError
from hwcollab_employer.opening_form import form_errors, opening_input
from hwcollab_employer.reach import (
    NOT_APPROVED_MESSAGE,
    UNAVAILABLE_MESSAGE,
    NotApprovedError,
    Reach,
    ReachSource,
    ReachUnavailableError,
    estimate_reach,
)

router = APIRouter(prefix="/dashboard", include_in_schema=False)

ReachView = dict[str, Any]
"""What the form shows of an estimate: ``text``, ``cuts`` (sentences) and ``available``."""
# While the opening is written, the fields that do not change who it reaches may still be empty
# or half-typed: the form's estimate stands in for them (posting checks them as ever).
NOT_REACH_FIELDS: dict[str, Any] = {
    "title": "Opening being written",
    "description": "",
    "apply_url": "https://draft.invalid/",
    "expires_at": None,
}


async def reach_view(
    context: EmployerContext,
    source: ReachSource,
    *,
    employer_id: str,
    data: dict[str, Any],
) -> tuple[ReachView | None, dict[str, str]]:
    """(the estimate to show, or None with the form's field errors)."""
    try:
        context.limiter.hit(context.settings.estimate_rate_limit, "estimate", employer_id)
        fields = OpeningFields.model_validate(data | NOT_REACH_FIELDS)
        estimate = await estimate_reach(
            context.service, source, employer_id=employer_id, fields=fields
        )
    except ValidationError as error:
        return None, form_errors(field_errors(error))
    except InvalidFieldsError as error:
        return None, form_errors(error.errors)
    except NotApprovedError:
        return {"text": NOT_APPROVED_MESSAGE, "cuts": [], "available": False}, {}
    except ReachUnavailableError:
        return {"text": UNAVAILABLE_MESSAGE, "cuts": [], "available": False}, {}
    except HTTPException as error:
        if error.status_code != 429:
            raise
        text = "Too many estimates in a short time; please wait a moment."
        return {"text": text, "cuts": [], "available": False}, {}
    cuts = [cut.text for cut in estimate.cuts]
    return {"text": estimate.text, "cuts": cuts, "available": True}, {}


@router.post("/openings/estimate")
async def estimate_opening(request: Request, context: Context, source: Reach) -> Response:
    """The form's script asks here as the employer writes: the estimate as JSON
    (``{text, cuts, available}``), or ``{errors}`` (422) while the form is not complete."""
    who, employer_id = web.signed_in(request, context)
    form = await request.form()
    web.check_csrf(who, form)
    data, _, _ = opening_input(form)  # the date "open until" does not change the reach
    estimate, errors = await reach_view(context, source, employer_id=employer_id, data=data)
    if estimate is None:
        return JSONResponse({"errors": errors}, status_code=422)
    return JSONResponse(estimate)
