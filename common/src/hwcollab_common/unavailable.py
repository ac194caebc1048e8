"""503 instead of 500 while MongoDB (or another dependency raising ``TransientError``, such as
the mail server) is away.

A request that needs the database during an outage fails within a few seconds (the client's
server-selection timeout, see :func:`hwcollab_common.mongo.create_client`) with a pymongo
connection error. :func:`install_unavailable_handler` turns that into ``503 Service Unavailable``
with ``Retry-After``: ``{"detail": …}`` for API and operations routes and for clients that do not
ask for HTML, a readable page for browsers. The client reconnects by itself when the database
returns, so the same process serves again without a restart. A transaction is all or nothing, so
a write refused with 503 left nothing half-written.
"""

from __future__ import annotations

import logging
from functools import cache

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Template
from prometheus_client import Counter
from pymongo.errors import PyMongoError

from hwcollab_common.errors import TransientError, is_mongo_unavailable
from hwcollab_common.web import SHARED_TEMPLATES_DIR, templates

__all__ = ["RETRY_AFTER_SECONDS", "UNAVAILABLE_DETAIL", "install_unavailable_handler"]

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
UNAVAILABLE_DETAIL = (
    "The service is temporarily unavailable: its database cannot be reached. "
    "Please try again in a few seconds."
)
DEPENDENCY_DETAIL = (
    "The service is temporarily unavailable: a service it relies on (such as the mail server) "
    "cannot be reached. Please try again in a few seconds."
)
UNAVAILABLE_ANSWERS = Counter(
    "hwcollab_http_unavailable_total",
    "Requests answered 503 because a dependency was unreachable",
    ["dependency"],
)

_PAGE = """{% extends "hwcollab/base.html" %}
{% block content %}
<article role="alert">
  <h1>{{ page_title }}</h1>
  <p>{{ reason }}</p>
  <p>This usually passes within a minute. Please go back and try again shortly.</p>
</article>
{% endblock %}
"""


@cache
def _page() -> Template:
    return templates(SHARED_TEMPLATES_DIR).env.from_string(_PAGE)


def _wants_json(request: Request) -> bool:
    path = request.url.path
    if path.startswith("/api") or path in {"/healthz", "/readyz", "/metrics"}:
        return True
    return "text/html" not in request.headers.get("accept", "")


def unavailable_response(request: Request, *, detail: str = UNAVAILABLE_DETAIL) -> Response:
    """The 503 answer for ``request``: JSON or a page, always with ``Retry-After``."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"}
    if _wants_json(request):
        return JSONResponse({"detail": detail}, status_code=503, headers=headers)
    reason = (
        "We cannot reach our database right now, so this page could not be shown and "
        "nothing you sent was saved."
        if detail == UNAVAILABLE_DETAIL
        else "A service this page relies on cannot be reached right now."
    )
    html = _page().render(page_title="Temporarily unavailable", reason=reason)
    return HTMLResponse(html, status_code=503, headers=headers)


def install_unavailable_handler(app: FastAPI) -> None:
    """Answer 503 for every request that failed because MongoDB is unreachable or timed out;
    other database errors stay errors (500)."""

    async def on_database_error(request: Request, error: Exception) -> Response:
        if not is_mongo_unavailable(error):
            raise error
        UNAVAILABLE_ANSWERS.labels("mongodb").inc()
        log.warning(
            "%s %s answered 503, MongoDB unavailable: %s: %s",
            request.method,
            request.url.path,
            type(error).__name__,
            str(error)[:200],
        )
        return unavailable_response(request)

    async def on_transient_error(request: Request, error: Exception) -> Response:
        UNAVAILABLE_ANSWERS.labels(type(error).__name__).inc()
        log.warning(
            "%s %s answered 503, a dependency is unavailable: %s: %s",
            request.method,
            request.url.path,
            type(error).__name__,
            str(error)[:200],
        )
        return unavailable_response(request, detail=DEPENDENCY_DETAIL)

    app.add_exception_handler(PyMongoError, on_database_error)
    app.add_exception_handler(TransientError, on_transient_error)
