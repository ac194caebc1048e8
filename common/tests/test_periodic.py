"""PeriodicTask: runs on its interval until stopped, survives and counts failures, honours its
lease, and stops either after the run in flight or by cancelling it."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
from prometheus_client import REGISTRY

from hwcollab_common.periodic import PeriodicTask
from hwcollab_testing.waiting import eventually


def _failures(task: str) -> float:
    value = REGISTRY.get_sample_value("hwcollab_periodic_task_failures_total", {"task": task})
    return value or 0.0


async def test_it_runs_at_start_and_then_every_interval_until_stopped() -> None:
    runs: list[int] = []

    async def work() -> None:
        runs.append(len(runs))

    task = PeriodicTask("test-every", work, interval=0.01)
    task.start()
    await eventually(lambda: len(runs) >= 3, timeout=5, what="three runs")
    await task.stop()
    stopped_at = len(runs)
    await asyncio.sleep(0.05)  # long enough for five more turns, had it not stopped
    assert len(runs) == stopped_at


async def test_a_failed_run_is_logged_and_counted_and_the_next_one_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs = 0

    async def work() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("the first run breaks")

    before = _failures("test-failing")
    task = PeriodicTask("test-failing", work, interval=0.01)
    with caplog.at_level(logging.ERROR, logger="hwcollab_common.periodic"):
        task.start()
        await eventually(lambda: runs >= 2, timeout=5, what="a run after the failure")
        await task.stop()

    assert _failures("test-failing") == before + 1
    assert "periodic task test-failing failed" in caplog.text
    assert "the first run breaks" in caplog.text


async def test_a_turn_whose_lease_another_replica_holds_is_skipped() -> None:
    runs = 0
    held_elsewhere = [True, True, False]

    async def lease() -> bool:
        return not held_elsewhere.pop(0) if held_elsewhere else True

    async def work() -> None:
        nonlocal runs
        runs += 1

    task = PeriodicTask("test-leased", work, interval=0.01, lease=lease)
    assert await task.run_once() is False
    assert await task.run_once() is False
    assert runs == 0
    assert await task.run_once() is True
    assert runs == 1


async def test_with_delay_first_nothing_runs_before_the_first_interval() -> None:
    runs = 0

    async def work() -> None:
        nonlocal runs
        runs += 1

    task = PeriodicTask("test-delayed", work, interval=60.0, delay_first=True)
    task.start()
    await asyncio.sleep(0.05)
    await task.stop()
    assert runs == 0


async def test_first_after_sets_the_first_wait_alone() -> None:
    """A long interval with a short first wait (a job deploys must not starve): the first run
    comes after ``first_after``, the next one an interval later."""
    runs = 0
    ran = asyncio.Event()

    async def work() -> None:
        nonlocal runs
        runs += 1
        ran.set()

    task = PeriodicTask("test-first", work, interval=60.0, first_after=0.02)
    task.start()
    await asyncio.sleep(0.005)
    assert runs == 0
    await asyncio.wait_for(ran.wait(), timeout=5)
    await asyncio.sleep(0.05)
    await task.stop()
    assert runs == 1


async def test_stop_lets_the_run_in_flight_finish_unless_told_to_cancel_it() -> None:
    for finish_run in (True, False):
        started, finished = asyncio.Event(), asyncio.Event()

        async def work(
            started: asyncio.Event = started, finished: asyncio.Event = finished
        ) -> None:
            started.set()
            await asyncio.sleep(0.05)
            finished.set()

        task = PeriodicTask(f"test-stop-{finish_run}", work, interval=60.0)
        task.start()
        await asyncio.wait_for(started.wait(), timeout=5)
        await task.stop(finish_run=finish_run)
        assert finished.is_set() is finish_run


def test_jitter_spreads_the_pause_between_interval_and_interval_plus_jitter() -> None:
    task = PeriodicTask(
        "test-jitter", lambda: asyncio.sleep(0), interval=10.0, jitter=2.0, rng=random.Random(4)
    )
    waits = [task.next_wait() for _ in range(50)]
    expected = random.Random(4)
    assert waits == [10.0 + expected.uniform(0, 2.0) for _ in range(50)]
    assert len(set(waits)) > 1
    assert (
        PeriodicTask("test-no-jitter", lambda: asyncio.sleep(0), interval=10.0).next_wait() == 10.0
    )
