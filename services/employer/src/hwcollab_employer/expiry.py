"""The background task that closes openings once their ``expires_at`` has passed."""

from __future__ import annotations

import logging

from prometheus_client import Counter

from hwcollab_common.periodic import PeriodicTask
from hwcollab_employer.handlers import EmployerService

log = logging.getLogger(__name__)

EXPIRED = Counter("hwcollab_openings_expired_total", "Openings closed because they expired")


class ExpiryTask:
    """Closes expired openings at start and then every ``interval_seconds``; a stop lets the
    round in flight finish."""

    def __init__(self, service: EmployerService, *, interval_seconds: float) -> None:
        self._service = service
        self._runner = PeriodicTask("opening-expiry", self.close_expired, interval=interval_seconds)

    def start(self) -> None:
        self._runner.start()

    async def stop(self) -> None:
        await self._runner.stop()

    async def close_expired(self) -> int:
        closed = await self._service.expire_due()
        if closed:
            EXPIRED.inc(closed)
            log.info("closed %d expired openings", closed)
        return closed
