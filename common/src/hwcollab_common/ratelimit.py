"""Per-client rate limits for public write endpoints (429 with ``Retry-After``).

Moving-window limits from the ``limits`` library, kept in process memory: each replica limits on
its own, which bounds abuse per replica without a shared store.
"""

from __future__ import annotations

import math
import time

from fastapi import HTTPException, Request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class RateLimiter:
    def __init__(self) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, limit: str | RateLimitItem, *keys: str) -> None:
        """Count one hit on ``keys`` under ``limit`` (e.g. ``"5/minute"``); 429 when over it."""
        item = parse(limit) if isinstance(limit, str) else limit
        if not self._limiter.hit(item, *keys):
            reset_at, _remaining = self._limiter.get_window_stats(item, *keys)
            retry_after = max(1, math.ceil(reset_at - time.time()))
            raise HTTPException(
                status_code=429,
                detail="Too many requests. Please wait a moment and try again.",
                headers={"Retry-After": str(retry_after)},
            )

    def reset(self) -> None:
        self._limiter.storage.reset()


def client_ip(request: Request) -> str:
    """The caller's address as the server saw it (proxies must set it via uvicorn's
    ``--forwarded-allow-ips``, never from a header we trust blindly)."""
    return request.client.host if request.client else "unknown"
