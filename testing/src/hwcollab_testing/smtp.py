"""An SMTP sink for tests: records every message and fails on purpose for chosen addresses."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage


@dataclass
class SmtpSink:
    """What the sink received and how it should fail; thread-safe."""

    host: str
    port: int
    messages: list[ReceivedMessage] = field(default_factory=list)
    permanent_failures: set[str] = field(default_factory=set)
    transient_failures: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fail_permanently(self, address: str) -> None:
        """Answer 550 to every RCPT TO of ``address``."""
        with self._lock:
            self.permanent_failures.add(address.lower())

    def fail_transiently(self, address: str, times: int) -> None:
        """Answer 451 to the next ``times`` RCPT TO of ``address``, then accept it."""
        with self._lock:
            self.transient_failures[address.lower()] = times

    def clear(self) -> None:
        """Forget received messages and programmed failures."""
        with self._lock:
            self.messages.clear()
            self.permanent_failures.clear()
            self.transient_failures.clear()

    def snapshot(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self.messages)

    def messages_to(self, address: str) -> list[ReceivedMessage]:
        wanted = address.lower()
        return [m for m in self.snapshot() if wanted in (r.lower() for r in m.rcpt_tos)]

    def wait_for(
        self,
        predicate: Callable[[list[ReceivedMessage]], bool],
        timeout: float = 10.0,
    ) -> list[ReceivedMessage]:
        """Poll until ``predicate(messages)`` holds; raise ``TimeoutError`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            messages = self.snapshot()
            if predicate(messages):
                return messages
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"SMTP sink: condition not met within {timeout} s ({len(messages)} messages)"
                )
            time.sleep(0.05)

    def rcpt_reply(self, address: str) -> str | None:
        """The error reply for ``address``, or None to accept it."""
        key = address.lower()
        with self._lock:
            if key in self.permanent_failures:
                return "550 5.1.1 Mailbox unavailable"
            left = self.transient_failures.get(key, 0)
            if left > 0:
                self.transient_failures[key] = left - 1
                return "451 4.3.0 Try again later"
        return None

    def record(self, *, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.messages.append(
                ReceivedMessage(
                    mail_from=mail_from, rcpt_tos=tuple(rcpt_tos), raw=raw, message=parsed
                )
            )


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.sink.rcpt_reply(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        self.sink.record(
            mail_from=str(envelope.mail_from), rcpt_tos=list(envelope.rcpt_tos), raw=bytes(raw)
        )
        return "250 Message accepted"


class SmtpSinkServer:
    """Runs the sink in aiosmtpd's own thread on ``host:port``."""

    def __init__(self, *, host: str, port: int) -> None:
        self.sink = SmtpSink(host=host, port=port)
        self._controller = Controller(_Handler(self.sink), hostname=host, port=port)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self.sink

    def stop(self) -> None:
        self._controller.stop()
