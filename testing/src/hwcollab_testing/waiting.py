"""Waiting in async tests: poll a condition with a deadline, never a sleep as synchronization."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["eventually"]


async def eventually(
    check: Callable[[], bool | Awaitable[bool]],
    *,
    timeout: float,
    what: str,
    explain: Callable[[], Awaitable[str]] | None = None,
) -> None:
    """Poll ``check`` (plain or async) until it holds; fail with ``what`` after ``timeout``
    seconds, and with what ``explain`` says of the state it was left in."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await _holds(check):
        if loop.time() > deadline:
            detail = f"\n{await explain()}" if explain is not None else ""
            raise AssertionError(f"{what}: not within {timeout:.0f} s{detail}")
        await asyncio.sleep(0.2)


async def _holds(check: Callable[[], bool | Awaitable[bool]]) -> bool:
    result = check()
    return result if isinstance(result, bool) else await result
