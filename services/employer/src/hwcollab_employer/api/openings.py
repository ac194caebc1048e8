"""Openings over the JSON API: post (idempotently), estimate reach, edit, close, the job
board and one opening's reach."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Depends, Query
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse

from hwcollab_common.openapi import error_responses
from hwcollab_employer.api.dependencies import (
    OWN_OPENING,
    OWN_OPENING_ACTION,
    OWN_OPENING_WRITE,
    SIGNED_IN,
    EmployerId,
    ExternalIdPath,
    IdempotencyKey,
    LimitedWrite,
    OpeningId,
    PageQuery,
    PageSizeQuery,
    Principal,
    RadiusQuery,
    RoleQuery,
    SettingQuery,
    ZipQuery,
    api_router,
)
from hwcollab_employer.commands import OpeningFields, OpeningPatch
from hwcollab_employer.context import Context
from hwcollab_employer.domain import Opening
from hwcollab_employer.idempotency import POST_OPENING, IdempotencyClaim, StoredAnswer, fingerprint
from hwcollab_employer.listing import SearchParameters, board_query
from hwcollab_employer.reach import (
    UNAVAILABLE_MESSAGE,
    Reach,
    ReachUnavailableError,
    estimate_reach,
)
from hwcollab_employer.resources import OpeningOut, OpeningsPage, OpeningStatsOut, OwnOpening
from hwcollab_schemas.reach import ReachEstimate

router = api_router()


REPLAYED_HEADER = "Idempotent-Replayed"
POSTED_OPENING: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "The opening (the first one again for a repeated `Idempotency-Key`)",
        "headers": {
            REPLAYED_HEADER: {
                "description": "`true` when this is the answer to an earlier request with the "
                "same `Idempotency-Key`",
                "schema": {"type": "string", "enum": ["true"]},
            }
        },
    }
}


@router.get(
    "/employers/me/openings",
    tags=["openings"],
    summary="All your openings, newest first",
    responses=SIGNED_IN,
)
async def my_openings(context: Context, employer_id: EmployerId) -> list[OwnOpening]:
    base = context.settings.employer_public_url
    return [
        OwnOpening.own(opening, base_url=base)
        for opening in await context.service.own_openings(employer_id)
    ]


OPENING_EXAMPLE = {
    "title": "RN Care Manager - Health Home",
    "role": "health_home_care_manager",
    "setting": "medical",
    "required_credentials": ["rn"],
    "employment_type": "full_time",
    "zip": "01608",
    "pay_min": 38,
    "pay_max": 46,
    "pay_period": "hour",
    "description": "Coordinate care for adults enrolled in our health home.",
    "apply_url": "https://cmcp.example/jobs/42",
}


@router.post(
    "/openings",
    status_code=201,
    response_model=OwnOpening,
    tags=["openings"],
    summary="Post an opening",
    description="Matching subscribers are emailed within seconds (or in their next digest). "
    "Send an `Idempotency-Key` header to retry safely: the same key and body within 24 hours "
    "answer the first opening again (with `Idempotent-Replayed: true`) and email nobody twice. "
    "Two requests with one key at the same moment create one opening: the second waits for "
    "the first and answers as it did.",
    responses=POSTED_OPENING
    | error_responses(
        400,
        401,
        404,
        409,
        413,
        429,
        s404="Your account no longer exists.",
        s409="Another of your openings has this `external_id`, or a request with this "
        "`Idempotency-Key` is still being processed.",
    ),
)
async def post_opening(
    context: Context,
    employer_id: EmployerId,
    principal: Principal,
    fields: Annotated[OpeningFields, Body(openapi_examples={"rn": {"value": OPENING_EXAMPLE}})],
    idempotency_key: IdempotencyKey = None,
    _: None = LimitedWrite,
) -> Any:
    base_url = context.settings.employer_public_url
    if idempotency_key is None:
        opening = await context.service.post_opening(employer_id, fields)
        return OwnOpening.own(opening, base_url=base_url)

    def answer(opening: Opening) -> StoredAnswer:
        body = OwnOpening.own(opening, base_url=base_url).model_dump(mode="json")
        return StoredAnswer(status=201, body=body)

    claim = IdempotencyClaim(
        principal=principal,
        key=idempotency_key,
        fingerprint=fingerprint(POST_OPENING, fields.model_dump(mode="json")),
    )
    stored = await context.service.post_opening_once(
        employer_id, fields, claim=claim, answer=answer
    )
    headers = {REPLAYED_HEADER: "true"} if stored.replayed else {}
    return JSONResponse(stored.body, status_code=stored.status, headers=headers)


def _limit_estimates(context: Context, employer_id: EmployerId) -> None:
    context.limiter.hit(context.settings.estimate_rate_limit, "estimate", employer_id)


@router.post(
    "/openings/estimate",
    tags=["openings"],
    summary="Estimated reach of an opening before posting it",
    description="The same body as `POST /api/openings`, validated the same way; nothing is "
    "stored or sent. Answers how many active subscribers the opening would reach now (at once "
    "or in their digest) from the notifier's match index, rounded: fewer than 10 is `null`, "
    "larger counts have two significant figures; and the one or two criteria that leave out "
    "most people, each based on at least 10 people. For approved employers only, limited per "
    "employer. 503 when the notifier cannot answer within a moment: posting still works.",
    responses=error_responses(
        400,
        401,
        403,
        413,
        429,
        503,
        s403="Reach estimates are for approved employers only.",
        s429="Too many estimates from this employer; wait `Retry-After` seconds.",
        s503="The estimate is unavailable right now (the notifier is away or busy, or the "
        "database cannot be reached); the opening can still be posted.",
    ),
)
async def estimate_opening(
    context: Context,
    employer_id: EmployerId,
    source: Reach,
    fields: Annotated[OpeningFields, Body(openapi_examples={"rn": {"value": OPENING_EXAMPLE}})],
    _: None = Depends(_limit_estimates),
) -> ReachEstimate:
    try:
        return await estimate_reach(context.service, source, employer_id=employer_id, fields=fields)
    except ReachUnavailableError:
        raise HTTPException(503, UNAVAILABLE_MESSAGE, {"Retry-After": "5"}) from None


@router.get("/openings", tags=["openings"], summary="The job board: open openings, nearest first")
async def list_openings(
    context: Context,
    zip: ZipQuery = None,
    radius_miles: RadiusQuery = None,
    role: RoleQuery = None,
    setting: SettingQuery = None,
    remote: Annotated[bool | None, Query(description="include remote openings (default)")] = None,
    q: Annotated[str | None, Query(max_length=200, description="words in title or text")] = None,
    page: PageQuery = None,
    page_size: PageSizeQuery = None,
) -> OpeningsPage:
    query = board_query(
        SearchParameters(
            zip=zip,
            radius_miles=radius_miles,
            role=role,
            setting=setting,
            text=q,
            remote=remote,
            page=page,
            page_size=page_size,
        )
    )
    found = await context.service.find_openings(query)
    return OpeningsPage.of(found, base_url=context.settings.employer_public_url)


@router.get(
    "/openings/{opening_id}",
    tags=["openings"],
    summary="One opening",
    responses=error_responses(404, s404="No such opening, or its employer is not approved."),
)
async def get_opening(context: Context, opening_id: OpeningId) -> OpeningOut:
    opening = await context.service.opening(opening_id)
    return OpeningOut.of(opening, base_url=context.settings.employer_public_url)


@router.patch(
    "/openings/{opening_id}",
    tags=["openings"],
    summary="Edit your opening",
    description="Only the fields sent change. A closed opening cannot be edited (409).",
    responses=OWN_OPENING_WRITE,
)
async def patch_opening(
    context: Context,
    employer_id: EmployerId,
    opening_id: OpeningId,
    patch: OpeningPatch,
    _: None = LimitedWrite,
) -> OwnOpening:
    opening = await context.service.edit_opening(employer_id, opening_id, patch)
    return OwnOpening.own(opening, base_url=context.settings.employer_public_url)


@router.get(
    "/openings/by-external-id/{external_id}",
    tags=["openings"],
    summary="Your opening by your own external_id",
    responses=error_responses(401, 404, s404="None of your openings has this external_id."),
)
async def get_opening_by_external_id(
    context: Context, employer_id: EmployerId, external_id: ExternalIdPath
) -> OwnOpening:
    opening = await context.service.own_opening_by_external_id(employer_id, external_id)
    return OwnOpening.own(opening, base_url=context.settings.employer_public_url)


@router.patch(
    "/openings/by-external-id/{external_id}",
    tags=["openings"],
    summary="Edit your opening by your own external_id",
    description="As `PATCH /api/openings/{opening_id}`, for the opening you gave this "
    "`external_id` (an ATS updates by its own requisition id).",
    responses=error_responses(
        400, 401, 404, 409, 413, 429, s404="None of your openings has this external_id."
    ),
)
async def patch_opening_by_external_id(
    context: Context,
    employer_id: EmployerId,
    external_id: ExternalIdPath,
    patch: OpeningPatch,
    _: None = LimitedWrite,
) -> OwnOpening:
    opening = await context.service.edit_opening_by_external_id(employer_id, external_id, patch)
    return OwnOpening.own(opening, base_url=context.settings.employer_public_url)


@router.post(
    "/openings/{opening_id}/close",
    tags=["openings"],
    summary="Close your opening",
    responses=OWN_OPENING_ACTION,
)
async def close_opening(
    context: Context, employer_id: EmployerId, opening_id: OpeningId, _: None = LimitedWrite
) -> OwnOpening:
    opening = await context.service.close_opening(employer_id, opening_id)
    return OwnOpening.own(opening, base_url=context.settings.employer_public_url)


@router.get(
    "/openings/{opening_id}/stats",
    tags=["openings"],
    summary="Reach of your opening",
    responses=OWN_OPENING,
)
async def opening_stats(
    context: Context, employer_id: EmployerId, opening_id: OpeningId
) -> OpeningStatsOut:
    stats = await context.service.stats(employer_id, opening_id)
    return OpeningStatsOut(opening_id=stats.opening_id, notified=stats.notified)
