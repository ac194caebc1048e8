"""The reach estimate: how many active subscribers an opening being written would reach now, at
once or in a digest, and how many more each of its optional criteria would let in.

Answered from this replica's match index alone (no database round trip), over an internal
endpoint that only the employer service calls, with a token of its own (``REACH_TOKEN``). The
counts are exact; the employer service rounds them before anyone sees them
(:func:`hwcollab_schemas.reach.public_estimate`).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import Histogram

from hwcollab_common.bearer import require_bearer
from hwcollab_common.openapi import error_responses
from hwcollab_notifier.dependencies import AppSettings, Index
from hwcollab_notifier.matching import MatchIndex, OpeningCriteria
from hwcollab_schemas.reach import ReachCounts, ReachQuery, Relaxed

ESTIMATE_SECONDS = Histogram(
    "hwcollab_notifier_reach_estimate_seconds",
    "Time to estimate an opening's reach from the match index (all relaxations included)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)

reach_bearer = HTTPBearer(
    scheme_name="ReachToken",
    description="The `REACH_TOKEN` shared with the employer service.",
    auto_error=False,
)


def criteria_of_query(query: ReachQuery) -> OpeningCriteria:
    return OpeningCriteria(
        role=query.role,
        setting=query.setting,
        required_credentials=frozenset(query.required_credentials),
        employment_type=query.employment_type,
        remote=query.remote,
        lat=query.lat,
        lon=query.lon,
        pay_max_hourly=query.pay_max_hourly,
    )


def estimate(index: MatchIndex, query: ReachQuery) -> ReachCounts:
    """Who the opening reaches now, and, for each optional criterion it sets, how many it would
    reach with that criterion relaxed (one match of the index each)."""
    opening = criteria_of_query(query)
    result = index.match(opening)
    digest = result.digest_count()
    relaxed: list[Relaxed] = []
    for credential in sorted(opening.required_credentials):
        wider = replace(opening, required_credentials=opening.required_credentials - {credential})
        relaxed.append(
            Relaxed(criterion="credential", code=credential, subscribers=len(index.match(wider)))
        )
    relaxed.append(
        Relaxed(criterion="setting", subscribers=len(index.match(opening, any_setting=True)))
    )
    relaxed.append(
        Relaxed(
            criterion="employment_type",
            subscribers=len(index.match(opening, any_employment_type=True)),
        )
    )
    if opening.pay_max_hourly is not None:
        unpaid = replace(opening, pay_max_hourly=None)
        relaxed.append(Relaxed(criterion="pay", subscribers=len(index.match(unpaid))))
    if not opening.remote:
        anywhere = replace(opening, remote=True)
        relaxed.append(Relaxed(criterion="on_site", subscribers=len(index.match(anywhere))))
    return ReachCounts(
        subscribers=len(result),
        immediate=len(result) - digest,
        digest=digest,
        relaxed=tuple(relaxed),
    )


def require_reach_token(
    settings: AppSettings,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(reach_bearer)],
) -> None:
    require_bearer(credentials, settings.reach_token, what="reach token")


reach_router = APIRouter(prefix="/api/internal", tags=["internal"])


@reach_router.post(
    "/reach",
    summary="Exact reach of an opening now (the employer service's estimate)",
    description="Nothing is stored or sent. 503 while the match index is still loading.",
    dependencies=[Depends(require_reach_token)],
    responses=error_responses(
        400,
        401,
        413,
        503,
        s401="A valid reach token is required.",
        s503="The match index is loading.",
    ),
)
async def reach(index: Index, query: ReachQuery) -> ReachCounts:
    if not index.loaded:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the match index is still loading",
            headers={"Retry-After": "5"},
        )
    started = time.perf_counter()
    counts = estimate(index.index, query)
    ESTIMATE_SECONDS.observe(time.perf_counter() - started)
    return counts
