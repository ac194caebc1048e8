"""Gauges sampled on a timer in every service process: consumer lag and the outbox backlog."""

from __future__ import annotations

import asyncio

from prometheus_client import Counter

from hwcollab_common.kafka import ConsumerLag
from hwcollab_common.outbox import sample_backlog
from hwcollab_common.periodic import PeriodicTask
from hwcollab_common.runtime import ServiceRuntime

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
        self._runner = PeriodicTask("operational-gauges", self._sample_counted, interval=interval)

    async def sample(self) -> None:
        timeout = max(1.0, self._interval)
        await asyncio.wait_for(
            sample_backlog(self._runtime.db, clock=self._runtime.clock), timeout=timeout
        )
        await asyncio.wait_for(self._lag.sample(), timeout=timeout)

    def start(self) -> None:
        self._runner.start()

    async def stop(self) -> None:
        await self._runner.stop(finish_run=False)

    async def _sample_counted(self) -> None:
        try:
            await self.sample()
        except Exception:  # the runner logs it; this counter is the gauges' own
            SAMPLE_ERRORS.inc()
            raise
