"""Sends composed emails over a pool of reused SMTP connections, with retries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hwcollab_notifier.mail.composer import OutgoingEmail

SendStatus = Literal["sent", "permanent_failure", "transient_failure"]


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """``permanent_failure``: a 5xx reply, the caller suppresses the address and publishes
    ``notification.failed`` (permanent=true). ``transient_failure``: retries ran out."""

    status: SendStatus
    detail: str
    code: int | None = None


class SmtpSender:
    """A pool of ``pool_size`` aiosmtplib connections, reused across messages and shared by
    concurrent ``send`` calls. Connections open lazily (or in :meth:`start`), are checked with
    NOOP after sitting idle, and reopen after any transport error."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        mail_from_address: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        pool_size: int = 8,
        max_attempts: int = 5,
        backoff_base: float = 0.2,
        backoff_max: float = 10.0,
        timeout: float = 30.0,
    ) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        """Open the pool's connections (fails fast when the server is unreachable)."""
        raise NotImplementedError

    async def close(self) -> None:
        """QUIT every open connection."""
        raise NotImplementedError

    async def send(self, email: OutgoingEmail) -> SendOutcome:
        """Send one email. Retries 4xx replies and transport errors with exponential backoff and
        jitter; a 5xx reply returns ``permanent_failure`` at once. Never raises for SMTP errors."""
        raise NotImplementedError
