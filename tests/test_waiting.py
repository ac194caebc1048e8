"""``hwcollab_testing.waiting``: the one sync and one async poll-with-deadline of the tests."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from hwcollab_testing.waiting import eventually, eventually_sync


def _counter(true_from: int) -> tuple[list[int], Callable[[], int | None]]:
    """A check that returns its call number from the ``true_from``-th call, ``None`` before."""
    calls: list[int] = []

    def check() -> int | None:
        calls.append(len(calls) + 1)
        return calls[-1] if calls[-1] >= true_from else None

    return calls, check


def test_sync_returns_the_first_truthy_result() -> None:
    calls, check = _counter(3)
    assert eventually_sync(check, timeout=5, interval=0.01, what="the third call") == 3
    assert calls == [1, 2, 3]


async def test_async_returns_the_first_truthy_result_of_a_plain_or_async_check() -> None:
    calls, check = _counter(3)
    assert await eventually(check, timeout=5, interval=0.01, what="the third call") == 3
    assert calls == [1, 2, 3]

    async def coroutine_check() -> int | None:
        return check()

    assert await eventually(coroutine_check, timeout=5, interval=0.01, what="the next call") == 4


def test_sync_fails_after_the_timeout_naming_what_and_the_last_result() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError) as raised:
        eventually_sync(list, timeout=0.3, interval=0.05, what="a message in the inbox")
    assert str(raised.value) == "a message in the inbox: not within 0.3 s (last result: [])"
    assert 0.3 <= time.monotonic() - started < 3


async def test_async_fails_after_the_timeout_naming_what_the_last_result_and_the_state() -> None:
    started = time.monotonic()

    async def explain() -> str:
        return "the ledger holds 2 rows"

    with pytest.raises(AssertionError) as raised:
        await eventually(
            lambda: 0, timeout=0.3, interval=0.05, what="every row sent", explain=explain
        )
    assert str(raised.value) == (
        "every row sent: not within 0.3 s (last result: 0)\nthe ledger holds 2 rows"
    )
    assert 0.3 <= time.monotonic() - started < 3


def test_sync_keeps_polling_through_ignored_errors_and_reports_the_last() -> None:
    attempts: list[int] = []

    def connect() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionRefusedError("not yet listening")
        return "connected"

    assert (
        eventually_sync(
            connect, timeout=5, interval=0.01, what="a connection", ignore=(ConnectionError,)
        )
        == "connected"
    )

    def refused() -> str:
        raise ConnectionRefusedError("still not listening")

    with pytest.raises(AssertionError, match=re.escape("(last error: ConnectionRefusedError(")):
        eventually_sync(
            refused, timeout=0.1, interval=0.02, what="a connection", ignore=(ConnectionError,)
        )


async def test_async_keeps_polling_through_ignored_errors_and_reports_the_last() -> None:
    async def refused() -> bool:
        raise ConnectionRefusedError("still not listening")

    with pytest.raises(
        AssertionError,
        match=re.escape("the broker: not within 0.1 s (last error: ConnectionRefusedError("),
    ):
        await eventually(
            refused, timeout=0.1, interval=0.02, what="the broker", ignore=(ConnectionError,)
        )


async def test_an_error_not_ignored_fails_the_wait_at_once() -> None:
    def broken() -> bool:
        raise KeyError("status")

    started = time.monotonic()
    with pytest.raises(KeyError):
        eventually_sync(broken, timeout=30, what="a status")
    with pytest.raises(KeyError):
        await eventually(broken, timeout=30, what="a status")
    assert time.monotonic() - started < 5
