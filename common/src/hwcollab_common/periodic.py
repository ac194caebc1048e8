"""One way to run work on a timer in a service process: :class:`PeriodicTask`.

Every ``interval`` seconds (plus up to ``jitter`` at random, so replicas drift apart) the task
runs ``work`` until stopped. Where several replicas must not run it at once, ``lease`` is asked
first (e.g. a lock in MongoDB with a time to live) and a turn whose lease another replica holds
is skipped. A failed run is logged and counted (``hwcollab_periodic_task_failures_total``) and the
task runs again at its next turn; it never stops the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from prometheus_client import Counter

from hwcollab_common.errors import is_transient

log = logging.getLogger(__name__)

PERIODIC_FAILURES = Counter(
    "hwcollab_periodic_task_failures_total",
    "Failed runs of a periodic task (it runs again at its next turn)",
    ["task"],
)

Work = Callable[[], Awaitable[object]]
Lease = Callable[[], Awaitable[bool]]


class PeriodicTask:
    """Runs ``work`` every ``interval`` seconds from :meth:`start` until :meth:`stop`.

    ``delay_first``: wait one interval before the first run (otherwise it runs at once);
    ``first_after``: wait this many seconds instead before the first run.
    ``lease``: asked before each run; ``False`` skips the turn (another replica holds it).
    """

    def __init__(
        self,
        name: str,
        work: Work,
        *,
        interval: float,
        jitter: float = 0.0,
        delay_first: bool = False,
        first_after: float | None = None,
        lease: Lease | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if interval < 0 or jitter < 0:
            raise ValueError("interval and jitter must not be negative")
        self.name = name
        self._work = work
        self._interval = interval
        self._jitter = jitter
        self._delay_first = delay_first
        self._first_after = first_after
        self._lease = lease
        self._rng = rng or random.Random()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self, *, finish_run: bool = True) -> None:
        """Stop between runs; a run in flight finishes first, or with ``finish_run=False`` is
        cancelled."""
        self._stop.set()
        task, self._task = self._task, None
        if task is None:
            return
        if not finish_run:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def run_once(self) -> bool:
        """One turn: the lease, then the work. False when it failed or another replica held it."""
        try:
            if self._lease is not None and not await self._lease():
                return False
            await self._work()
        except Exception as error:  # counted and logged here; the next turn runs regardless
            PERIODIC_FAILURES.labels(self.name).inc()
            if is_transient(error):
                log.warning(
                    "periodic task %s failed (an outage), runs again in %.1f s: %r",
                    self.name,
                    self._interval,
                    error,
                )
            else:
                log.exception(
                    "periodic task %s failed, runs again in %.1f s", self.name, self._interval
                )
            return False
        return True

    def next_wait(self) -> float:
        """The pause before the next run: the interval plus its jitter."""
        return self._interval + (self._rng.uniform(0, self._jitter) if self._jitter else 0.0)

    async def _run(self) -> None:
        first = self._first_after
        if first is None:
            first = self.next_wait() if self._delay_first else 0.0
        if first > 0 and await self._stopped_within(first):
            return
        while not self._stop.is_set():
            await self.run_once()
            if await self._stopped_within(self.next_wait()):
                return

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        return self._stop.is_set()
