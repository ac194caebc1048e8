"""The operators' JSON API: approve, reject, suspend and reinstate employers, take down an
opening, and the lists an operator works from. Every route needs the ``ADMIN_TOKEN`` bearer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Body, Path, Query
from pydantic import BaseModel

from hwcollab_common.openapi import error_responses
from hwcollab_employer.api.accounts import SIGNUP_EXAMPLE
from hwcollab_employer.api.dependencies import OPERATORS, OpeningId, api_router
from hwcollab_employer.commands import EmployerSignup, ModerationReason, ReinstatementNote
from hwcollab_employer.context import Context
from hwcollab_employer.resources import EmployerMe, Moderated, OwnOpening, Registered

router = api_router(tags=["operators"], operators=True)


EmployerIdPath = Annotated[str, Path(max_length=64)]
NO_SUCH_EMPLOYER = error_responses(404, s404="No such employer.")
MODERATION_EXAMPLE = {"reason": "Openings for roles outside health and human services."}
ReasonBody = Annotated[
    ModerationReason, Body(openapi_examples={"reason": {"value": MODERATION_EXAMPLE}})
]


def _cannot_now(what: str) -> dict[int | str, dict[str, Any]]:
    return error_responses(409, s409=what)


@router.post(
    "/admin/employers",
    status_code=201,
    summary="Create an employer account (operators)",
    description="The sign-up body; the contact email counts as confirmed (the operator vouches "
    "for it), so the account can sign in at once. Approved at once or pending, as "
    "`EMPLOYER_APPROVAL` says; publishes `employer.registered` (and `employer.approved`). For "
    "onboarding by hand, demo data and tests; employers sign up themselves with `POST "
    "/api/employers`.",
    responses=OPERATORS
    | error_responses(400, 413, 409, s409="An account with this email already exists."),
)
async def create_employer(
    context: Context,
    signup: Annotated[EmployerSignup, Body(openapi_examples={"signup": {"value": SIGNUP_EXAMPLE}})],
) -> Registered:
    employer = await context.service.create_employer(signup)
    return Registered(employer_id=employer.employer_id, status=employer.status)


@router.post(
    "/admin/employers/{employer_id}/approve",
    summary="Approve an employer (operators)",
    responses=OPERATORS
    | error_responses(404, s404="No such employer.")
    | _cannot_now("The employer is suspended: reinstate it instead."),
)
async def approve_employer(
    context: Context, employer_id: Annotated[str, Path(max_length=64)]
) -> Registered:
    employer = await context.service.approve(employer_id)
    return Registered(employer_id=employer.employer_id, status=employer.status)


@router.post(
    "/admin/employers/{employer_id}/reject",
    summary="Reject a pending employer (operators)",
    description="The employer is never listed and sees the reason on its dashboard; publishes "
    "`employer.rejected`.",
    responses=OPERATORS
    | NO_SUCH_EMPLOYER
    | _cannot_now("The employer is not pending.")
    | error_responses(400, 413),
)
async def reject_employer(
    context: Context, employer_id: EmployerIdPath, body: ReasonBody
) -> Moderated:
    return Moderated.of(await context.service.reject(employer_id, reason=body.reason))


@router.post(
    "/admin/employers/{employer_id}/suspend",
    summary="Suspend an approved employer (operators)",
    description="Its organization and openings leave the directory, the job board, feeds and "
    "the sitemap at once, and the notifier drops emails of its openings still queued, digests "
    "included; the employer sees the reason on its dashboard. Publishes `employer.suspended` "
    "and `opening.updated` for each open opening.",
    responses=OPERATORS
    | NO_SUCH_EMPLOYER
    | _cannot_now("The employer is not approved.")
    | error_responses(400, 413),
)
async def suspend_employer(
    context: Context, employer_id: EmployerIdPath, body: ReasonBody
) -> Moderated:
    return Moderated.of(await context.service.suspend(employer_id, reason=body.reason))


@router.post(
    "/admin/employers/{employer_id}/reinstate",
    summary="Reinstate a suspended employer (operators)",
    description="Listed again with its open openings; nobody already told of an opening is "
    "emailed about it again. Publishes `employer.reinstated`.",
    responses=OPERATORS
    | NO_SUCH_EMPLOYER
    | _cannot_now("The employer is not suspended.")
    | error_responses(400, 413),
)
async def reinstate_employer(
    context: Context,
    employer_id: EmployerIdPath,
    body: Annotated[ReinstatementNote | None, Body()] = None,
) -> Moderated:
    reason = body.reason if body else None
    return Moderated.of(await context.service.reinstate(employer_id, reason=reason))


@router.post(
    "/admin/openings/{opening_id}/take-down",
    summary="Take down one opening (operators)",
    description="Closed for good and gone from every public page and feed; the notifier "
    "sends nothing more about it. Its employer sees the reason. Publishes `opening.taken_down`.",
    responses=OPERATORS
    | error_responses(404, s404="No such opening.")
    | _cannot_now("The opening is closed already.")
    | error_responses(400, 413),
)
async def take_down_opening(
    context: Context, opening_id: OpeningId, body: ReasonBody
) -> OwnOpening:
    opening = await context.service.take_down(opening_id, reason=body.reason)
    return OwnOpening.own(opening, base_url=context.settings.employer_public_url)


@router.get(
    "/admin/openings",
    summary="The newest openings of every employer, whatever their state (operators)",
    responses=OPERATORS,
)
async def recent_openings(
    context: Context, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[OwnOpening]:
    base = context.settings.employer_public_url
    found = await context.service.recent_openings(limit=limit)
    return [OwnOpening.own(opening, base_url=base) for opening in found]


class EmployerList(BaseModel):
    results: list[EmployerMe]


@router.get(
    "/admin/employers",
    summary="Employers by status, oldest first (operators)",
    responses=OPERATORS,
)
async def employers_by_status(
    context: Context,
    status: Annotated[Literal["pending", "approved", "suspended", "rejected"], Query()] = "pending",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> EmployerList:
    found = await context.service.employers_with_status(status, limit=limit)
    return EmployerList(results=[EmployerMe.of(employer) for employer in found])
