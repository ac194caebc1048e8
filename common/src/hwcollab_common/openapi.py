"""The error answers every service documents in its OpenAPI document.

Routes declare the statuses they can answer with ``responses=error_responses(...)``, so that a
client author reads every outcome (and its body) in ``/docs`` and generated clients know them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

Responses = dict[int | str, dict[str, Any]]


class ErrorMessage(BaseModel):
    """The body of every error answer but 422: one readable sentence."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"detail": "Not found."}]},
    )

    detail: str


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}
_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": "The scheme to authenticate with (`Bearer`).",
        "schema": {"type": "string"},
    }
}

DEFAULT_DESCRIPTIONS: Mapping[int, str] = {
    400: "The request body could not be read (it is not UTF-8 encoded JSON).",
    401: "Not authenticated: a valid bearer token is required.",
    403: "Authenticated, but this belongs to someone else.",
    404: "Not found.",
    409: "That cannot be done in the current state.",
    413: "The request body is larger than the service accepts.",
    429: "Too many requests from this client; wait `Retry-After` seconds.",
    503: "The database cannot be reached; nothing was saved. Retry after `Retry-After` seconds.",
}
_HEADERS: Mapping[int, dict[str, Any]] = {
    401: _WWW_AUTHENTICATE,
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}


def error_responses(*statuses: int, **descriptions: str) -> Responses:
    """OpenAPI ``responses`` for error ``statuses``, each with the :class:`ErrorMessage` body.

    ``descriptions`` override the default text per status, keyed ``s<status>`` (``s404="…"``).
    Headers a status may carry (``Retry-After``, ``WWW-Authenticate``) are documented as optional.
    """
    answers: Responses = {}
    for status in statuses:
        answer: dict[str, Any] = {
            "model": ErrorMessage,
            "description": descriptions.get(f"s{status}", DEFAULT_DESCRIPTIONS[status]),
        }
        if status in _HEADERS:
            answer["headers"] = _HEADERS[status]
        answers[status] = answer
    return answers


def page_route_responses(*statuses: int, **descriptions: str) -> Responses:
    """:func:`error_responses` for a route that answers HTML: these errors still come as JSON
    (``application/json``, the :class:`ErrorMessage` body), a 503 as a page when asked for HTML.

    Use on a page route of an app whose API routes document :class:`ErrorMessage` already (the
    reference points at that component)."""
    reference = {"schema": {"$ref": "#/components/schemas/ErrorMessage"}}
    answers: Responses = {}
    for status, answer in error_responses(*statuses, **descriptions).items():
        content: dict[str, Any] = {"application/json": reference}
        if status == 503:
            content["text/html"] = {}
        answers[status] = {key: value for key, value in answer.items() if key != "model"} | {
            "content": content
        }
    return answers
