"""Security headers on every response of every service (one middleware, installed by each app).

Pages are server-rendered forms with the shared stylesheets and at most one script file of the
service's own (the employer's opening form), so the policy allows only this origin and nothing
inline: an injected ``<script>`` or ``onclick`` would not run even if escaping ever failed.
FastAPI's API docs (Swagger UI, ReDoc) load their assets from a CDN and start with an inline
script; they get a policy of their own that allows just that.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "DOCS_CONTENT_SECURITY_POLICY", "SecurityHeaders"]

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
    ``strict-origin-when-cross-origin`` elsewhere. A header a route set itself is kept.
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
                for name, value in self._headers.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", policy)
            await send(message)

        await self._app(scope, receive, send_with_headers)
