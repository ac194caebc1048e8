"""Waiting in tests: poll a condition with a deadline, never a sleep as synchronization.

:func:`eventually` (async) and :func:`eventually_sync` take the same arguments: ``check`` is called
every ``interval`` seconds until it returns something truthy, which is returned; after ``timeout``
seconds the test fails with an ``AssertionError`` that says what was awaited (``what``) and the
last thing ``check`` returned, or the last exception it raised among those it was told to
``ignore`` (any other exception fails the wait at once).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

__all__ = ["eventually", "eventually_sync"]

T = TypeVar("T")

_NOTHING_YET = "nothing yet"


@overload
async def eventually(
    check: Callable[[], Awaitable[T | None]],
    *,
    timeout: float,
    what: str,
    interval: float = ...,
    ignore: tuple[type[Exception], ...] = ...,
    explain: Callable[[], Awaitable[str]] | None = ...,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = ...,
    ignore: tuple[type[Exception], ...] = ...,
    explain: Callable[[], Awaitable[str]] | None = ...,
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
    ignore: tuple[type[Exception], ...] = (),
    explain: Callable[[], Awaitable[str]] | None = None,
) -> Any:
    """Poll ``check`` (plain or async) until it returns something truthy and return that; fail
    with ``what``, the last result seen and what ``explain`` says of the state it was left in
    after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = _NOTHING_YET
    while True:
        try:
            result: object = check()
            if inspect.isawaitable(result):
                result = await result
        except ignore as error:
            last = f"last error: {error!r}"
        else:
            if result:
                return result
            last = f"last result: {result!r}"
        if loop.time() > deadline:
            detail = f"\n{await explain()}" if explain is not None else ""
            raise AssertionError(_failure(what, timeout, last) + detail)
        await asyncio.sleep(interval)


def eventually_sync(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    ignore: tuple[type[Exception], ...] = (),
) -> T:
    """Poll ``check`` until it returns something truthy and return that; fail with ``what`` and
    the last result seen after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = _NOTHING_YET
    while True:
        try:
            result = check()
        except ignore as error:
            last = f"last error: {error!r}"
        else:
            if result:
                return result
            last = f"last result: {result!r}"
        if time.monotonic() > deadline:
            raise AssertionError(_failure(what, timeout, last))
        time.sleep(interval)


def _failure(what: str, timeout: float, last: str) -> str:
    return f"{what}: not within {timeout:g} s ({last})"
