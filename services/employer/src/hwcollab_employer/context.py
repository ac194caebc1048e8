"""What the routers need, held on ``app.state`` and handed to them as a dependency
(:data:`Context`); its use cases come from :func:`get_service`, the dependency tests override."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import Depends, Request

from hwcollab_common.clock import Clock
from hwcollab_common.ratelimit import RateLimiter
from hwcollab_employer.handlers import EmployerService
from hwcollab_employer.security import TokenAuthority
from hwcollab_employer.settings import Settings


@dataclass(frozen=True, slots=True)
class EmployerContext:
    settings: Settings
    service: EmployerService
    tokens: TokenAuthority
    limiter: RateLimiter
    clock: Clock


def get_service(request: Request) -> EmployerService:
    """The use cases the routes call (those ``create_app`` built); a test swaps them by
    overriding this dependency."""
    context: EmployerContext = request.app.state.employer
    return context.service


def get_context(
    request: Request, service: Annotated[EmployerService, Depends(get_service)]
) -> EmployerContext:
    """What a route needs, with the use cases :func:`get_service` gives."""
    context: EmployerContext = request.app.state.employer
    return context if context.service is service else replace(context, service=service)


Context = Annotated[EmployerContext, Depends(get_context)]
