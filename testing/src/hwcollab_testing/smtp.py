"""An SMTP sink for tests: records every message and fails on purpose for chosen addresses, or
for everyone (an outage: connections refused, a 421 greeting, 421 to every MAIL FROM)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import socketserver
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
    busy: bool = False
    _hold: Callable[[ReceivedMessage], bool] | None = field(default=None, repr=False)
    _held: threading.Event = field(default_factory=threading.Event, repr=False)
    _release: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fail_permanently(self, address: str) -> None:
        """Answer 550 to every RCPT TO of ``address``."""
        with self._lock:
            self.permanent_failures.add(address.lower())

    def fail_transiently(self, address: str, times: int) -> None:
        """Answer 451 to the next ``times`` RCPT TO of ``address``, then accept it."""
        with self._lock:
            self.transient_failures[address.lower()] = times

    def set_busy(self, busy: bool) -> None:
        """While ``busy``, answer 421 to every MAIL FROM (the connection stays open)."""
        with self._lock:
            self.busy = busy

    def hold_reply(self, when: Callable[[ReceivedMessage], bool]) -> threading.Event:
        """Record the next message for which ``when(message)`` holds, then keep its 250 reply
        back until :meth:`release_reply`: the client's send is in flight although the message
        has arrived (kill the client now to open the at-least-once window). Returns an event set
        once such a message is held."""
        with self._lock:
            self._hold = when
            self._held.clear()
            self._release.clear()
        return self._held

    def release_reply(self) -> None:
        self._release.set()

    def _holds(self, message: ReceivedMessage) -> threading.Event | None:
        with self._lock:
            when = self._hold
        # Outside the lock: the condition may look at what the sink received.
        if when is None or not when(message):
            return None
        with self._lock:
            if self._hold is not when:
                return None
            self._hold = None
        self._held.set()
        return self._release

    def clear(self) -> None:
        """Forget received messages and programmed failures."""
        with self._lock:
            self.messages.clear()
            self.permanent_failures.clear()
            self.transient_failures.clear()
            self.busy = False
            self._hold = None
        self._release.set()

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

    def mail_reply(self) -> str | None:
        """The error reply to MAIL FROM, or None to accept it."""
        with self._lock:
            return "421 4.3.2 Service not available, try again later" if self.busy else None

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

    def record(self, *, mail_from: str, rcpt_tos: list[str], raw: bytes) -> ReceivedMessage:
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        received = ReceivedMessage(
            mail_from=mail_from, rcpt_tos=tuple(rcpt_tos), raw=raw, message=parsed
        )
        with self._lock:
            self.messages.append(received)
        return received


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        reply = self.sink.mail_reply()
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

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
        received = self.sink.record(
            mail_from=str(envelope.mail_from), rcpt_tos=list(envelope.rcpt_tos), raw=bytes(raw)
        )
        release = self.sink._holds(received)
        if release is not None:
            await asyncio.get_running_loop().run_in_executor(None, release.wait)
        return "250 Message accepted"


class _Greeting421(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(b"421 4.3.2 Service not available, closing transmission channel\r\n")
        self.request.shutdown(socket.SHUT_RDWR)


class _Refuser(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class SmtpSinkServer:
    """Runs the sink in aiosmtpd's own thread on ``host:port``.

    For outages: :meth:`stop` then :meth:`start` again on the same port (connections are refused
    in between, open ones are cut), :meth:`greet_with_421` (a server that answers every
    connection with 421 and closes it, as an overloaded MTA does) and ``sink.set_busy(True)``
    (the normal server answers 421 to every MAIL FROM). Received messages survive restarts.
    """

    def __init__(self, *, host: str, port: int) -> None:
        self.sink = SmtpSink(host=host, port=port)
        self._controller: Controller | None = None
        self._refuser: _Refuser | None = None
        self._refuser_thread: threading.Thread | None = None

    def start(self) -> SmtpSink:
        """Accept mail (again), after :meth:`stop` or :meth:`greet_with_421`."""
        self._stop_refuser()
        if self._controller is None:
            controller = Controller(
                _Handler(self.sink), hostname=self.sink.host, port=self.sink.port
            )
            controller.start()
            self._controller = controller
        return self.sink

    def greet_with_421(self) -> None:
        """Until :meth:`start` or :meth:`stop`: every connection gets a 421 greeting, then EOF."""
        self._stop_controller()
        if self._refuser is None:
            refuser = _Refuser((self.sink.host, self.sink.port), _Greeting421)
            thread = threading.Thread(target=refuser.serve_forever, daemon=True)
            thread.start()
            self._refuser, self._refuser_thread = refuser, thread

    def stop(self) -> None:
        """Close the port: connections are refused until :meth:`start`."""
        self._stop_controller()
        self._stop_refuser()

    def _stop_controller(self) -> None:
        self.sink.release_reply()  # a held reply must not outlive its server
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def _stop_refuser(self) -> None:
        if self._refuser is not None:
            self._refuser.shutdown()
            self._refuser.server_close()
            if self._refuser_thread is not None:
                self._refuser_thread.join()
            self._refuser = self._refuser_thread = None
