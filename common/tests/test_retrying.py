"""The one retry policy: attempt counts, the waits between them (seeded, so every delay is known)
and the error that comes out when it gives up."""

from __future__ import annotations

import random

import pytest

from hwcollab_common.retrying import (
    AddedJitterBackoff,
    HalvedJitterBackoff,
    LinearJitterBackoff,
    retry,
    retry_policy,
)


class Recorder:
    """An injected sleep: records the waits instead of taking them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class Flaky:
    """Fails with ``error`` the first ``failures`` calls, then answers ``"done"``."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"failure {self.calls}")
        return "done"


async def test_a_call_that_passes_in_time_returns_its_answer_after_the_seeded_waits() -> None:
    sleep, call = Recorder(), Flaky(failures=3)
    wait = HalvedJitterBackoff(base=0.2, cap=30.0, rng=random.Random(7))
    policy = retry_policy(attempts=5, on=ConnectionError, wait=wait, sleep=sleep)

    assert await retry(policy, call) == "done"

    assert call.calls == 4
    expected = random.Random(7)
    assert sleep.waits == [expected.uniform(c / 2, c) for c in (0.2, 0.4, 0.8)]


async def test_giving_up_raises_the_last_error_itself() -> None:
    sleep, call = Recorder(), Flaky(failures=10)
    policy = retry_policy(attempts=3, on=ConnectionError, sleep=sleep)

    with pytest.raises(ConnectionError, match="failure 3"):
        await retry(policy, call)

    assert call.calls == 3
    assert sleep.waits == [0, 0]


async def test_other_errors_are_not_retried() -> None:
    call = Flaky(failures=1, error=ValueError)
    policy = retry_policy(attempts=5, on=ConnectionError, sleep=Recorder())

    with pytest.raises(ValueError, match="failure 1"):
        await retry(policy, call)
    assert call.calls == 1


async def test_attempts_that_failed_before_count_towards_the_total_and_the_backoff() -> None:
    sleep, call = Recorder(), Flaky(failures=10)
    wait = AddedJitterBackoff(base=1.0, cap=100.0, jitter=0.0)
    policy = retry_policy(attempts=4, on=ConnectionError, wait=wait, sleep=sleep, failed_before=1)

    with pytest.raises(ConnectionError):
        await retry(policy, call)

    assert call.calls == 3  # the fourth attempt in all
    assert sleep.waits == [2.0, 4.0]


async def test_without_a_limit_it_goes_on_until_the_call_passes() -> None:
    sleep, call = Recorder(), Flaky(failures=50)
    policy = retry_policy(attempts=None, on=ConnectionError, sleep=sleep)

    assert await retry(policy, call) == "done"
    assert call.calls == 51


def test_a_policy_needs_an_attempt_left() -> None:
    with pytest.raises(ValueError, match="at least one attempt"):
        retry_policy(attempts=1, on=ConnectionError, failed_before=1)


@pytest.mark.parametrize("failures", [1, 2, 5, 10, 80, 10_000])
def test_halved_jitter_stays_between_half_and_all_of_the_capped_ceiling(failures: int) -> None:
    wait = HalvedJitterBackoff(base=0.5, cap=5.0, rng=random.Random(failures))
    ceiling = min(5.0, 0.5 * 2 ** min(failures - 1, 64))
    assert ceiling / 2 <= wait.delay(failures) <= ceiling


def test_added_jitter_grows_from_base_and_stops_at_the_cap() -> None:
    wait = AddedJitterBackoff(base=0.2, cap=10.0, jitter=0.2, rng=random.Random(3))
    delays = [wait.delay(n) for n in range(1, 10)]
    for n, delay in enumerate(delays, start=1):
        grown = 0.2 * 2 ** (n - 1)
        assert min(grown, 10.0) <= delay <= min(grown + 0.2, 10.0)
    assert delays[-1] == 10.0


def test_linear_jitter_is_at_most_one_step_per_failure() -> None:
    wait = LinearJitterBackoff(step=0.005, rng=random.Random(1))
    for n in range(1, 13):
        assert 0 <= wait.delay(n) <= 0.005 * n


async def test_a_predicate_chooses_which_errors_are_retried() -> None:
    """``on`` may be a predicate (such as ``is_transient``): the errors it accepts are retried,
    any other comes out at once."""
    sleep = Recorder()
    retried = Flaky(failures=2, error=TimeoutError)
    policy = retry_policy(attempts=None, on=lambda e: isinstance(e, TimeoutError), sleep=sleep)
    assert await retry(policy, retried) == "done"
    assert retried.calls == 3

    refused = Flaky(failures=2, error=ValueError)
    policy = retry_policy(attempts=None, on=lambda e: isinstance(e, TimeoutError), sleep=sleep)
    with pytest.raises(ValueError, match="failure 1"):
        await retry(policy, refused)
    assert refused.calls == 1
