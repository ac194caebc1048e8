"""Gauges sampled on a timer in every service process: consumer lag and the outbox backlog."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import Counter

from hwcollab_common.kafka import ConsumerLag
from hwcollab_common.outbox import sample_backlog
from hwcollab_common.runtime import ServiceRuntime

log = logging.getLogger(__name__)

SAMPLE_ERRORS = Counter(
    "hwcollab_gauge_sample_errors_total",
    "Failed samples of consumer lag and outbox backlog (those gauges are stale meanwhile)",
)


class OperationalGauges:
    """Refreshes ``hwcollab_consumer_lag`` and the outbox backlog gauges every ``interval``
    seconds until stopped; a failed sample (broker or database away) is logged and retried."""

    def __init__(self, runtime: ServiceRuntime, *, interval: float = 15.0) -> None:
        self._runtime = runtime
        self._lag = ConsumerLag(runtime.broker)
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def sample(self) -> None:
        timeout = max(1.0, self._interval)
        await asyncio.wait_for(
            sample_backlog(self._runtime.db, clock=self._runtime.clock), timeout=timeout
        )
        await asyncio.wait_for(self._lag.sample(), timeout=timeout)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="operational-gauges")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                SAMPLE_ERRORS.inc()
                log.warning("sampling consumer lag and outbox backlog failed: %r", error)
            await asyncio.sleep(self._interval)
