"""What the routers need, held on ``app.state`` and handed to them as a dependency."""

from __future__ import annotations

from dataclasses import dataclass
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


def _context(request: Request) -> EmployerContext:
    context: EmployerContext = request.app.state.employer
    return context


Context = Annotated[EmployerContext, Depends(_context)]
