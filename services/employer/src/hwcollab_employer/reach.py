"""Estimated reach of an opening while it is written: the port to the notifier's match index, its
HTTP implementation, and the use case (validate as a post would, ask, round).

The notifier owns the match index; this service never imports it. It asks the notifier's internal
endpoint (``POST {NOTIFIER_URL}/api/internal/reach``, bearer ``REACH_TOKEN``) with a short
timeout, and an answer that does not come in time, or at all, is "estimate unavailable": posting
never depends on it.
"""

from __future__ import annotations

import logging
from typing import Annotated, Protocol

import httpx
from fastapi import Depends, Request
from prometheus_client import Counter
from pydantic import ValidationError

from hwcollab_employer.commands import OpeningFields
from hwcollab_employer.domain import ForbiddenError
from hwcollab_employer.handlers import EmployerService
from hwcollab_schemas.reach import ReachCounts, ReachEstimate, ReachQuery, public_estimate

log = logging.getLogger(__name__)

UNAVAILABLE = Counter(
    "hwcollab_employer_reach_unavailable_total",
    "Reach estimates that could not be had from the notifier, by reason",
    ["reason"],
)
UNAVAILABLE_MESSAGE = (
    "The reach estimate is unavailable right now; the opening can still be posted."
)
NOT_APPROVED_MESSAGE = "Reach estimates are for approved employers only."


class ReachUnavailableError(RuntimeError):
    """The notifier did not answer the estimate (away, slow, or still loading its index)."""


class NotApprovedError(ForbiddenError):
    """Only an approved employer may see estimates."""


class ReachSource(Protocol):
    async def counts(self, query: ReachQuery) -> ReachCounts:
        """Exact counts for ``query``; raises :class:`ReachUnavailableError`."""
        ...


class NotifierReach:
    """The notifier's internal reach endpoint over HTTP, one pooled client."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        timeout_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout_seconds,
            headers={"Authorization": f"Bearer {token}"},
            transport=transport,
        )

    async def counts(self, query: ReachQuery) -> ReachCounts:
        try:
            answer = await self._client.post("/api/internal/reach", json=query.model_dump())
        except httpx.TimeoutException as error:
            UNAVAILABLE.labels("timeout").inc()
            log.warning("reach estimate: the notifier did not answer in time")
            raise ReachUnavailableError("timeout") from error
        except httpx.HTTPError as error:
            UNAVAILABLE.labels("unreachable").inc()
            log.warning("reach estimate: the notifier cannot be reached: %s", error)
            raise ReachUnavailableError("unreachable") from error
        if answer.status_code != 200:
            UNAVAILABLE.labels(f"status_{answer.status_code}").inc()
            log.warning("reach estimate: the notifier answered %d", answer.status_code)
            raise ReachUnavailableError(f"status {answer.status_code}")
        try:
            return ReachCounts.model_validate_json(answer.content)
        except ValidationError as error:
            UNAVAILABLE.labels("bad_answer").inc()
            log.warning("reach estimate: the notifier's answer is not counts: %s", error)
            raise ReachUnavailableError("bad answer") from error

    async def aclose(self) -> None:
        await self._client.aclose()


class NoReach:
    """No notifier configured (an app built for tests): every estimate is unavailable."""

    async def counts(self, query: ReachQuery) -> ReachCounts:
        UNAVAILABLE.labels("not_configured").inc()
        log.warning("reach estimate: no notifier is configured")
        raise ReachUnavailableError("not configured")


def reach_source(request: Request) -> ReachSource:
    """The dependency routes take (tests override it to point at a notifier of their own)."""
    source: ReachSource = getattr(request.app.state, "reach", None) or NoReach()
    return source


Reach = Annotated[ReachSource, Depends(reach_source)]


async def estimate_reach(
    service: EmployerService, source: ReachSource, *, employer_id: str, fields: OpeningFields
) -> ReachEstimate:
    """The rounded estimate of ``fields`` as ``employer_id`` would post them; nothing is stored
    or sent. The opening is built exactly as a post would build it (same checks, same place)."""
    draft = await service.draft_opening(employer_id, fields)
    if not draft.employer_approved:
        raise NotApprovedError(employer_id)
    return public_estimate(await source.counts(ReachQuery.of(draft.details())))
