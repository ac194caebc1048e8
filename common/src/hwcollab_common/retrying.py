"""Retrying an operation: one policy on ``tenacity``, with its randomness and its sleep injected.

``retry_policy`` builds the ``AsyncRetrying`` every hand-made retry loop used to be; ``retry``
runs a call under it. The waits are ``tenacity`` strategies whose random source is a
``random.Random`` the caller may seed, so a test can name every delay; ``sleep`` is the clock a
test replaces to retry without waiting. ``delay(n)`` is the wait after the n-th failed attempt,
for loops that are not retries of one call (a relay's rounds, a consumer's redeliveries).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_none,
)
from tenacity.wait import wait_base

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Failure = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
"""What is retried: errors of these types, or those for which this predicate is true."""
# 2**64 times any base is past any cap; the exponent stops there instead of overflowing.
_MAX_EXPONENT = 64


class Backoff(wait_base):
    """A wait strategy with its own random source; ``delay(n)``: the wait after failure ``n``."""

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()

    def delay(self, failures: int) -> float:
        raise NotImplementedError

    def __call__(self, retry_state: RetryCallState) -> float:
        return self.delay(retry_state.attempt_number)


class FixedBackoff(Backoff):
    """The same wait after every failure."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def delay(self, failures: int) -> float:
        return self.seconds


class HalvedJitterBackoff(Backoff):
    """``base`` · 2ⁿ⁻¹ capped at ``cap``, then a random wait between half and all of it (so
    replicas do not retry in step)."""

    def __init__(self, *, base: float, cap: float, rng: random.Random | None = None) -> None:
        super().__init__(rng=rng)
        self.base, self.cap = base, cap

    def delay(self, failures: int) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** min(failures - 1, _MAX_EXPONENT))
        return self.rng.uniform(ceiling / 2, ceiling)


class AddedJitterBackoff(Backoff):
    """``base`` · 2ⁿ⁻¹ plus up to ``jitter`` at random, capped at ``cap``."""

    def __init__(
        self, *, base: float, cap: float, jitter: float, rng: random.Random | None = None
    ) -> None:
        super().__init__(rng=rng)
        self.base, self.cap, self.jitter = base, cap, jitter

    def delay(self, failures: int) -> float:
        grown = self.base * 2.0 ** min(failures - 1, _MAX_EXPONENT)
        return min(grown + self.rng.uniform(0, self.jitter), self.cap)


class LinearJitterBackoff(Backoff):
    """A random wait up to ``step`` · n: brief, spread pauses between contenders for one record."""

    def __init__(self, *, step: float, rng: random.Random | None = None) -> None:
        super().__init__(rng=rng)
        self.step = step

    def delay(self, failures: int) -> float:
        return self.rng.uniform(0, self.step * failures)


class _AfterFailures(wait_base):
    def __init__(self, backoff: Backoff, failures: int) -> None:
        self._backoff, self._failures = backoff, failures

    def __call__(self, retry_state: RetryCallState) -> float:
        return self._backoff.delay(retry_state.attempt_number + self._failures)


def retry_policy(
    *,
    attempts: int | None,
    on: Failure,
    wait: Backoff | None = None,
    sleep: Sleep = asyncio.sleep,
    before_sleep: Callable[[RetryCallState], None] | None = None,
    failed_before: int = 0,
) -> AsyncRetrying:
    """Try up to ``attempts`` times in all (``None``: until it passes) while the call raises one
    of ``on`` (or an error the predicate ``on`` accepts); then the last error is raised as it
    was. ``failed_before``: attempts that already failed outside this policy (the caller tried
    once without it), which count towards ``attempts`` and the backoff."""
    if attempts is not None and attempts - failed_before < 1:
        raise ValueError("a retry policy needs at least one attempt left")
    waiting: wait_base = wait_none()
    if wait is not None:
        waiting = _AfterFailures(wait, failed_before) if failed_before else wait
    return AsyncRetrying(
        stop=stop_never if attempts is None else stop_after_attempt(attempts - failed_before),
        wait=waiting,
        retry=_retried(on),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )


def _retried(on: Failure) -> retry_if_exception:
    if isinstance(on, tuple | type):
        return retry_if_exception_type(on)
    return retry_if_exception(on)


async def retry(
    policy: AsyncRetrying, call: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
) -> T:
    """``await call(*args, **kwargs)`` under ``policy``."""
    result: T = await policy(call, *args, **kwargs)
    return result
