"""Waiting in async tests: poll a condition with a deadline, never a sleep as synchronization."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["eventually"]


async def eventually(
    check: Callable[[], Awaitable[bool]],
    *,
    timeout: float,
    what: str,
    explain: Callable[[], Awaitable[str]] | None = None,
) -> None:
    """Poll ``check`` until it holds; fail with ``what`` after ``timeout`` seconds, and with what
    ``explain`` says of the state it was left in."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            detail = f"\n{await explain()}" if explain is not None else ""
            raise AssertionError(f"{what}: not within {timeout:.0f} s{detail}")
        await asyncio.sleep(0.2)
