"""The background task that closes openings once their ``expires_at`` has passed."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import Counter

from hwcollab_employer.handlers import EmployerService

log = logging.getLogger(__name__)

EXPIRED = Counter("hwcollab_openings_expired_total", "Openings closed because they expired")


class ExpiryTask:
    def __init__(self, service: EmployerService, *, interval_seconds: float) -> None:
        self._service = service
        self._interval = interval_seconds
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="opening-expiry")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                closed = await self._service.expire_due()
            except Exception:
                log.exception("closing expired openings failed; trying again next round")
            else:
                if closed:
                    EXPIRED.inc(closed)
                    log.info("closed %d expired openings", closed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self._interval)
