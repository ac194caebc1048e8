"""How a service's app is put together: ``create_app(settings, *, clock=None, overrides=None)``
builds the ports, the unit of work and the use cases in one place; routes receive the use cases
through FastAPI ``Annotated`` dependencies; and ``overrides`` replaces any of those dependencies
(a test's fake store, a fixed clock) the way FastAPI's ``app.dependency_overrides`` does, so that
a test swaps a dependency without patching ``app.state``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fastapi import FastAPI, Request

T = TypeVar("T")

DependencyOverrides = Mapping[Callable[..., Any], Callable[..., Any]]
"""A dependency callable of the app → the callable that answers in its place."""


def apply_overrides(app: FastAPI, overrides: DependencyOverrides | None) -> FastAPI:
    """``app`` with ``overrides`` in place of their dependencies."""
    app.dependency_overrides.update(overrides or {})
    return app


def from_state(name: str, kind: type[T]) -> Callable[[Request], T]:
    """A dependency answering the ``name`` object ``create_app`` keeps on ``app.state`` (of type
    ``kind``); one per use case or port, each a key ``overrides`` can replace."""

    def dependency(request: Request) -> T:
        value: T = getattr(request.app.state, name)
        return value

    dependency.__name__ = dependency.__qualname__ = f"get_{name}"
    dependency.__doc__ = f"The app's {kind.__name__} (``app.state.{name}``)."
    return dependency
