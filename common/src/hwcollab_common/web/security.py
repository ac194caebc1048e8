"""Security headers on every response of every service (one middleware, installed by each app),
and the request body size limit.

Pages are server-rendered forms with the shared stylesheets and at most one script file of the
service's own (the employer's opening form), so the policy allows only this origin and nothing
inline: an injected ``<script>`` or ``onclick`` would not run even if escaping ever failed.
FastAPI's API docs (Swagger UI, ReDoc) load their assets from a CDN and start with an inline
script; they get a policy of their own that allows just that.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "DOCS_CONTENT_SECURITY_POLICY",
    "BodySizeLimit",
    "RequestBodyTooLargeError",
    "SecurityHeaders",
]

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
DOCS_CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
        "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com",
        "font-src 'self' https://fonts.gstatic.com",
        "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})


class SecurityHeaders:
    """Adds Content-Security-Policy (with ``frame-ancestors 'none'``), X-Frame-Options DENY (for
    browsers without CSP level 2), X-Content-Type-Options nosniff and a Referrer-Policy.

    ``referrer_policy``: ``no-referrer`` where URLs carry secrets (the subscriber's link tokens);
    ``strict-origin-when-cross-origin`` elsewhere. A header a route set itself is kept; a route
    whose own policy lets other sites frame it (an embeddable listing) gets no X-Frame-Options.
    """

    def __init__(self, app: ASGIApp, *, referrer_policy: str = "no-referrer") -> None:
        self._app = app
        self._headers: Mapping[str, str] = {
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": referrer_policy,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        policy = (
            DOCS_CONTENT_SECURITY_POLICY if scope["path"] in DOCS_PATHS else CONTENT_SECURITY_POLICY
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                own = headers.setdefault("Content-Security-Policy", policy)
                for name, value in self._headers.items():
                    if name == "X-Frame-Options" and "frame-ancestors 'none'" not in own:
                        continue
                    headers.setdefault(name, value)
            await send(message)

        await self._app(scope, receive, send_with_headers)


class RequestBodyTooLargeError(HTTPException):
    """The body grew past the limit while it was read (a chunked body declares no length)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body larger than {max_bytes} bytes")


class BodySizeLimit:
    """Answers 413 to a request body over ``max_bytes``: at once when ``Content-Length`` says so,
    otherwise as soon as the streamed body (e.g. ``Transfer-Encoding: chunked``) passes the limit,
    so that no route ever buffers more than that.

    The overflow is raised from ``receive`` as an HTTP 413 error, which the app's own error
    handlers answer (a page or JSON); if it gets out of the app unanswered, this answers it.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self._max_bytes):
            await self._refuse(scope, receive, send)
            return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_bytes:
                    raise RequestBodyTooLargeError(self._max_bytes)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, counting_receive, watching_send)
        except RequestBodyTooLargeError:
            if response_started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = JSONResponse(
            {"detail": f"request body larger than {self._max_bytes} bytes"},
            status_code=413,
            headers={"Connection": "close"},
        )
        await answer(scope, receive, send)
