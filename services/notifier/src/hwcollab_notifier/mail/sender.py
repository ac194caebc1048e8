"""Sends composed emails over a pool of reused SMTP connections, with retries."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from dataclasses import dataclass
from typing import Literal

import aiosmtplib
from prometheus_client import Counter

from hwcollab_common.errors import TransientError
from hwcollab_common.retrying import AddedJitterBackoff, Sleep, retry, retry_policy
from hwcollab_notifier.mail.composer import OutgoingEmail

log = logging.getLogger(__name__)

SendStatus = Literal["sent", "permanent_failure", "transient_failure"]

SMTP_SENDS = Counter(
    "hwcollab_smtp_sends_total", "Emails handed to SMTP, by final outcome", ["status"]
)
SMTP_RETRIES = Counter("hwcollab_smtp_retries_total", "SMTP attempts that will be retried")
SMTP_CONNECTIONS = Counter("hwcollab_smtp_connections_total", "SMTP connections opened")
_SENT = SMTP_SENDS.labels(status="sent")
_PERMANENT = SMTP_SENDS.labels(status="permanent_failure")
_TRANSIENT = SMTP_SENDS.labels(status="transient_failure")


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """``permanent_failure``: a 5xx reply, the caller suppresses the address and publishes
    ``notification.failed`` (permanent=true). ``transient_failure``: retries ran out on 4xx
    replies about this message or recipient (e.g. 452 mailbox full). A server that cannot be
    reached at all raises :class:`SmtpUnavailableError` instead."""

    status: SendStatus
    detail: str
    code: int | None = None


_LINE_ENDING = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


def _wire_format(data: bytes) -> bytes:
    """The DATA payload: CRLF line endings, leading dots doubled, the final "." line added."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
        data = _LINE_ENDING.sub(b"\r\n", data)
    if data.startswith(b".") or b"\n." in data:
        data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SmtpUnavailableError(TransientError):
    """The SMTP server could not be reached, dropped the connection or answered 421 (closing
    the channel) on every attempt: an outage of the server, not a fault of this email. It is a
    :class:`~hwcollab_common.errors.TransientError`: the work is retried until the server returns
    and never counts against the email's own attempts."""

    def __init__(self, detail: str, code: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


class _RetryableError(Exception):
    """A 4xx reply or a transport failure: worth another attempt, maybe on a new connection."""

    def __init__(self, detail: str, code: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code

    @property
    def server_unavailable(self) -> bool:
        """No reply at all, or 421: the server, not this message, is the problem."""
        return self.code is None or self.code == 421


@dataclass(slots=True)
class _Slot:
    """One place in the pool; holds an open connection or None (opened on next use)."""

    smtp: aiosmtplib.SMTP | None = None
    last_used: float = 0.0


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
        idle_check_after: float = 30.0,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if pool_size < 1 or max_attempts < 1:
            raise ValueError("pool_size and max_attempts must be at least 1")
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout
        self._idle_check_after = idle_check_after
        self._mail_from_bytes = mail_from_address.encode()
        self._max_attempts = max_attempts
        # Waits grow base, 2·base, 4·base … (capped), each plus up to one base of jitter.
        self._waits = AddedJitterBackoff(
            base=backoff_base, cap=backoff_max, jitter=backoff_base, rng=rng
        )
        self._sleep = sleep
        self._slots = [_Slot() for _ in range(pool_size)]
        # Last in, first out: a light load keeps reusing the warmest connections.
        self._idle: asyncio.LifoQueue[_Slot] = asyncio.LifoQueue()
        for slot in self._slots:
            self._idle.put_nowait(slot)
        self.connections_opened = 0

    async def start(self) -> None:
        """Open the pool's connections before the first send (fails fast when the server is
        unreachable); without it they open on first use."""
        await asyncio.gather(*(self._open(slot) for slot in self._slots if slot.smtp is None))

    async def close(self) -> None:
        """Wait for sends in flight, then QUIT every open connection."""
        held = [await self._idle.get() for _ in self._slots]
        try:
            for slot in held:
                if slot.smtp is not None and slot.smtp.is_connected:
                    try:
                        await slot.smtp.quit()
                    except (aiosmtplib.SMTPException, OSError) as exc:
                        log.info("SMTP QUIT failed, closing anyway: %s", exc)
                        slot.smtp.close()
                slot.smtp = None
        finally:
            for slot in held:
                self._idle.put_nowait(slot)

    async def send(self, email: OutgoingEmail) -> SendOutcome:
        """Send one email. Retries 4xx replies and transport errors with exponential backoff and
        jitter; a 5xx reply returns ``permanent_failure`` at once. Raises
        :class:`SmtpUnavailableError` when the last attempt found the server unreachable or
        closing (421); other SMTP errors are returned as outcomes."""
        try:
            # The first attempt runs without the retry machinery: it is the common case.
            outcome = await self._attempt(email)
        except _RetryableError as first:
            try:
                outcome = await self._retry(email, first)
            except SmtpUnavailableError:
                _TRANSIENT.inc()
                raise
        if outcome.status == "sent":
            _SENT.inc()
        elif outcome.status == "permanent_failure":
            _PERMANENT.inc()
        else:
            _TRANSIENT.inc()
        return outcome

    async def _retry(self, email: OutgoingEmail, first: _RetryableError) -> SendOutcome:
        if self._max_attempts == 1:
            return self._gave_up(email, first)
        log.info("SMTP send of %s will be retried: %s", email.message_id, first.detail)
        SMTP_RETRIES.inc()
        # The first attempt failed outside the policy: its wait is taken here, the later ones
        # by the policy.
        policy = retry_policy(
            attempts=self._max_attempts,
            on=_RetryableError,
            wait=self._waits,
            sleep=self._sleep,
            before_sleep=lambda _state: SMTP_RETRIES.inc(),
            failed_before=1,
        )
        try:
            await self._sleep(self._waits.delay(1))
            return await retry(policy, self._attempt, email)
        except _RetryableError as last:
            return self._gave_up(email, last)

    def _gave_up(self, email: OutgoingEmail, error: _RetryableError) -> SendOutcome:
        log.warning(
            "SMTP send of %s failed after %d attempts: %s",
            email.message_id,
            self._max_attempts,
            error.detail,
        )
        if error.server_unavailable:
            raise SmtpUnavailableError(error.detail, error.code) from error
        return SendOutcome("transient_failure", error.detail, error.code)

    async def _attempt(self, email: OutgoingEmail) -> SendOutcome:
        slot = await self._idle.get()
        try:
            smtp = await self._ready(slot)
            try:
                async with asyncio.timeout(self._timeout):
                    code, reply = await self._transaction(smtp, email)
            except aiosmtplib.SMTPResponseException as exc:
                code, reply = exc.code, exc.message
            except (aiosmtplib.SMTPException, OSError) as exc:  # TimeoutError is an OSError
                self._drop(slot)
                raise _RetryableError(f"connection lost: {exc!r}") from exc
            if code == 421:  # the server is closing this connection
                self._drop(slot)
            if code != 250:
                return self._reply_failure(email, code, reply)
            slot.last_used = asyncio.get_running_loop().time()
            return SendOutcome("sent", reply, code)
        finally:
            self._idle.put_nowait(slot)

    async def _transaction(self, smtp: aiosmtplib.SMTP, email: OutgoingEmail) -> tuple[int, str]:
        """MAIL, RCPT and DATA on an open connection; the first reply that is not a success.

        Why not ``SMTP.sendmail``: it parses both addresses with ``email.utils`` and normalizes
        the whole message once more to compute SIZE, about half of the client's CPU per email.
        ``SMTP.data`` runs two regular expressions over every line of the message again. The
        composer has already cleaned the address and its messages already use CRLF, so SIZE is
        their length and the body only needs dot-stuffing where a line starts with ".". One
        deadline covers the transaction instead of one timer per command.
        """
        sender = email.envelope_sender.encode() if email.envelope_sender else self._mail_from_bytes
        mail = [b"FROM:<" + sender + b">"]
        if smtp.supports_extension("size"):
            mail.append(b"SIZE=%d" % len(email.data))
        if not email.to.isascii():
            if not smtp.supports_extension("smtputf8"):
                return 553, "the server does not accept internationalized addresses"
            mail.append(b"SMTPUTF8")
        reply = await smtp.execute_command(b"MAIL", *mail, timeout=None)
        if reply.code == 250:
            reply = await smtp.execute_command(
                b"RCPT", b"TO:<" + email.to.encode() + b">", timeout=None
            )
            if reply.code in (250, 251):
                reply = await smtp.execute_command(b"DATA", timeout=None)
                if reply.code == 354:
                    protocol = smtp.protocol
                    if protocol is None:
                        raise aiosmtplib.SMTPServerDisconnected("connection lost before DATA")
                    protocol.write(_wire_format(email.data))
                    reply = await protocol.read_response(timeout=None)
                    return reply.code, reply.message
        if reply.code != 421:
            try:
                await smtp.rset(timeout=None)
            except (aiosmtplib.SMTPException, OSError) as exc:
                # The refusal is what counts; the connection is reopened on its next use.
                log.info("SMTP RSET failed, closing the connection: %r", exc)
                smtp.close()
        return reply.code, reply.message

    def _reply_failure(self, email: OutgoingEmail, code: int, message: str) -> SendOutcome:
        detail = f"{code} {message}"
        if 500 <= code < 600:
            log.warning("SMTP refused %s permanently: %s", email.message_id, detail)
            return SendOutcome("permanent_failure", detail, code)
        raise _RetryableError(detail, code)

    async def _ready(self, slot: _Slot) -> aiosmtplib.SMTP:
        """The slot's connection, opened or reopened as needed. Any failure here is the server's
        or the network's, never the recipient's, so it is always retryable."""
        smtp = slot.smtp
        if smtp is not None and not smtp.is_connected:
            self._drop(slot)
            smtp = None
        if smtp is not None:
            idle = asyncio.get_running_loop().time() - slot.last_used
            if idle < self._idle_check_after:
                return smtp
            try:
                await smtp.noop()
                return smtp
            except (aiosmtplib.SMTPException, OSError) as exc:
                log.info("idle SMTP connection is stale, reconnecting: %s", exc)
                self._drop(slot)
        try:
            return await self._open(slot)
        except (aiosmtplib.SMTPException, OSError) as exc:
            self._drop(slot)
            raise _RetryableError(f"cannot connect to {self._host}:{self._port}: {exc}") from exc

    async def _open(self, slot: _Slot) -> aiosmtplib.SMTP:
        smtp = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            start_tls=self._starttls,
            timeout=self._timeout,
        )
        await smtp.connect()
        if smtp.is_ehlo_or_helo_needed:
            await smtp.ehlo()
        self.connections_opened += 1
        SMTP_CONNECTIONS.inc()
        slot.smtp = smtp
        slot.last_used = asyncio.get_running_loop().time()
        return smtp

    @staticmethod
    def _drop(slot: _Slot) -> None:
        if slot.smtp is not None:
            slot.smtp.close()
            slot.smtp = None
