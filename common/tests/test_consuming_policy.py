from __future__ import annotations

import random

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from hwcollab_common.consuming import MAX_POLL_INTERVAL_MS, FailurePolicy, TransientError


def policy(**overrides: float) -> FailurePolicy:
    options: dict[str, float] = {"base_seconds": 0.2, "cap_seconds": 30.0, **overrides}
    return FailurePolicy(
        max_attempts=5,
        base_seconds=options["base_seconds"],
        cap_seconds=options["cap_seconds"],
        rng=random.Random(7),
    )


def test_a_transient_failure_is_retried_forever_and_never_dead_lettered() -> None:
    p = policy()
    outage = ServerSelectionTimeoutError("127.0.0.1:27017: connection refused")
    decisions = [p.failed("0:42:event", outage) for _ in range(200)]
    assert {d.action for d in decisions} == {"retry"}
    assert all(d.transient for d in decisions)
    assert [d.attempt for d in decisions] == list(range(1, 201))


def test_transient_backoff_doubles_from_the_base_up_to_the_cap_with_jitter() -> None:
    p = policy()
    delays = [p.failed("tag", TransientError("smtp 421")).delay for _ in range(20)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(30.0, 0.2 * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 30.0
    assert delays[-1] >= 15.0  # capped, not grown past the cap or shrunk to nothing
    assert len({round(d, 6) for d in delays[-8:]}) > 1  # jittered, not in lock step


def test_a_huge_attempt_number_stays_at_the_cap() -> None:
    assert 15.0 <= policy().backoff(10_000) <= 30.0


def test_other_errors_are_dead_lettered_after_max_attempts() -> None:
    p = policy()
    decisions = [p.failed("tag", ValueError("schema mismatch")) for _ in range(5)]
    assert [d.action for d in decisions] == ["retry"] * 4 + ["dead_letter"]
    assert not any(d.transient for d in decisions)
    assert [d.attempt for d in decisions] == [1, 2, 3, 4, 5]
    # the count starts over for a later delivery of the same message
    assert p.failed("tag", ValueError("again")).attempt == 1


def test_outages_do_not_use_up_the_attempts_of_a_failing_message() -> None:
    p = policy()
    for _ in range(4):
        p.failed("tag", ValueError("bad"))
    for _ in range(50):
        assert p.failed("tag", ConnectionResetError()).action == "retry"
    assert p.failed("tag", ValueError("bad")).action == "dead_letter"


def test_success_clears_the_counts() -> None:
    p = policy()
    for _ in range(4):
        p.failed("tag", ValueError("bad"))
        p.failed("tag", TimeoutError())
    p.succeeded("tag")
    assert p.failed("tag", ValueError("bad")).attempt == 1
    assert p.failed("tag", TimeoutError()).attempt == 1


def test_counts_are_per_message() -> None:
    p = policy()
    for _ in range(4):
        p.failed("a", ValueError("bad"))
    assert p.failed("b", ValueError("bad")).attempt == 1
    assert p.failed("a", ValueError("bad")).action == "dead_letter"


def test_the_longest_wait_keeps_the_consumer_in_its_group() -> None:
    # Heartbeats run in the background; polls must come within max.poll.interval.ms, and one
    # delivery sleeps at most the cap before the handler returns.
    assert policy().cap_seconds * 1000 * 4 <= MAX_POLL_INTERVAL_MS


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        FailurePolicy(max_attempts=0)
    with pytest.raises(ValueError, match="cap_seconds"):
        FailurePolicy(base_seconds=5.0, cap_seconds=1.0)
