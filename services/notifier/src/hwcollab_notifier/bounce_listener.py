"""The inbound SMTP server of the bounce domain (aiosmtpd, on BOUNCE_LISTEN_PORT, in the
notifier's own event loop: the notifier owns the suppressions a bounce writes).

It takes mail for the bounce domain only (550 for any other recipient, and for a VERP address
whose token is not ours), at most BOUNCE_MAX_BYTES a message (552 beyond, before anything is
stored) and 10 recipients; each message goes to :class:`BounceIntake`. A report that cannot be
recorded now (MongoDB away) is answered 451, so the sending server tries again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from hwcollab_common.errors import is_transient
from hwcollab_notifier import metrics
from hwcollab_notifier.bounce_intake import BounceIntake

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 10


class _BounceHandler:
    def __init__(self, intake: BounceIntake) -> None:
        self._intake = intake

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            metrics.BOUNCES_REFUSED.labels("recipients").inc()
            return "452 4.5.3 Too many recipients"
        if not self._intake.accepts_recipient(address):
            metrics.BOUNCES_REFUSED.labels("recipient").inc()
            return "550 5.1.1 No such bounce address here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            result = await self._intake.receive(
                raw, mail_from=envelope.mail_from or "", recipients=list(envelope.rcpt_tos)
            )
        except Exception as error:
            # Never lost: the sender keeps the report and tries again.
            reason = "outage" if is_transient(error) else "error"
            metrics.BOUNCES_REFUSED.labels(reason).inc()
            log.exception("a bounce report could not be recorded (%s); answered 451", reason)
            return "451 4.3.0 Cannot record the report now, try again later"
        return f"250 2.0.0 Report {result.bounce_id} received"


class BounceListener:
    """Starts and stops the SMTP server of the bounce domain."""

    def __init__(
        self,
        *,
        intake: BounceIntake,
        host: str,
        port: int,
        max_bytes: int,
        hostname: str,
    ) -> None:
        self._handler = _BounceHandler(intake)
        self._host = host
        self._port = port
        self._max_bytes = max_bytes
        self._hostname = hostname
        self._server: asyncio.Server | None = None

    def _protocol(self) -> Any:
        return SMTP(
            self._handler,
            data_size_limit=self._max_bytes,
            hostname=self._hostname,
            ident="hwcollab bounces",
            decode_data=False,
            # A report about an email to an internationalized address may come that way.
            enable_SMTPUTF8=True,
            timeout=60,
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self._host, self._port)
        log.info("receiving bounce reports for %s on %s:%d", self._hostname, self._host, self.port)

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # An open client connection would hold wait_closed; shutting down does not wait.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2)
            self._server = None
