"""SmtpSender against a real aiosmtpd server running in this process (its own thread and loop)."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from hwcollab_common.errors import is_transient
from hwcollab_notifier.mail.composer import OutgoingEmail
from hwcollab_notifier.mail.sender import SmtpSender, SmtpUnavailableError
from hwcollab_testing.smtp import SmtpSinkServer
from hwcollab_testing.waiting import eventually_sync

pytestmark = pytest.mark.integration


class RecordingHandler:
    """Keeps every accepted message; ``plan[rcpt]`` scripts the replies to DATA for a recipient
    ("451 …", "550 …", or "drop" to close the connection without replying)."""

    def __init__(self) -> None:
        self.accepted: list[Envelope] = []
        self.data_attempts: dict[str, int] = {}
        self.plan: dict[str, list[str]] = {}

    async def handle_DATA(  # noqa: N802 (the name aiosmtpd calls)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        rcpt = envelope.rcpt_tos[0]
        self.data_attempts[rcpt] = self.data_attempts.get(rcpt, 0) + 1
        script = self.plan.get(rcpt)
        if script:
            action = script.pop(0)
            if action == "drop":
                assert isinstance(server.transport, asyncio.Transport)
                server.transport.abort()
                return "421 gone"
            return action
        self.accepted.append(envelope)
        return "250 OK queued"


class CountingController(Controller):
    def __init__(self, handler: RecordingHandler, *, port: int) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=port)
        self.opened = 0
        self.live: set[SMTP] = set()

    def factory(self) -> SMTP:
        controller = self

        class CountingSMTP(SMTP):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                controller.opened += 1
                controller.live.add(self)
                super().connection_made(transport)

            def connection_lost(self, error: Exception | None) -> None:
                controller.live.discard(self)
                super().connection_lost(error)

        return CountingSMTP(self.handler, **self.SMTP_kwargs)

    def drop_all(self) -> None:
        """Close every open connection from the server side (an idle timeout, a restart)."""

        async def drop() -> None:
            for server in list(self.live):
                if isinstance(server.transport, asyncio.Transport):
                    server.transport.abort()

        asyncio.run_coroutine_threadsafe(drop(), self.loop).result(timeout=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[CountingController]:
    controller = CountingController(RecordingHandler(), port=free_port())
    controller.start()
    # start() proves the server is up by connecting once; count only the sender's connections.
    eventually_sync(
        lambda: not controller.live, timeout=5, interval=0.01, what="the probe connection closed"
    )
    controller.opened = 0
    try:
        yield controller
    finally:
        controller.stop()


def handler_of(server: CountingController) -> RecordingHandler:
    handler: RecordingHandler = server.handler
    return handler


def sender_for(server: CountingController, **options: Any) -> SmtpSender:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "mail_from_address": "opportunities@hwcollab.example",
        "pool_size": 2,
        "max_attempts": 4,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
        "timeout": 5.0,
    }
    settings.update(options)
    return SmtpSender(**settings)


def outgoing(n: int, to: str = "") -> OutgoingEmail:
    to = to or f"reader{n}@example.org"
    message_id = f"<immediate.{n}@hwcollab.example>"
    data = (
        f"From: opportunities@hwcollab.example\r\nTo: {to}\r\nSubject: Opening {n}\r\n"
        f"Message-ID: {message_id}\r\n\r\nBody {n}\r\n.starts with a dot\r\n"
    ).encode()
    return OutgoingEmail(
        message_id=message_id,
        to=to,
        subject=f"Opening {n}",
        kind="immediate",
        opening_ids=(f"op-{n}",),
        subscriber_id=f"sub-{n}",
        data=data,
    )


async def test_sends_and_the_server_receives_the_message(smtp_server: CountingController) -> None:
    sender = sender_for(smtp_server)
    outcome = await sender.send(outgoing(1))
    await sender.close()

    assert outcome.status == "sent"
    assert outcome.code == 250
    (envelope,) = handler_of(smtp_server).accepted
    assert envelope.mail_from == "opportunities@hwcollab.example"
    assert envelope.rcpt_tos == ["reader1@example.org"]
    assert isinstance(envelope.content, bytes)
    message = message_from_bytes(envelope.content, policy=default)
    assert message["Message-ID"] == "<immediate.1@hwcollab.example>"
    assert ".starts with a dot" in message.get_content()


async def test_pool_reuses_its_connections(smtp_server: CountingController) -> None:
    sender = sender_for(smtp_server, pool_size=3)
    outcomes = await asyncio.gather(*(sender.send(outgoing(n)) for n in range(24)))
    outcomes += [await sender.send(outgoing(n)) for n in range(24, 30)]

    assert {o.status for o in outcomes} == {"sent"}
    assert len(handler_of(smtp_server).accepted) == 30
    assert smtp_server.opened <= 3
    assert sender.connections_opened == smtp_server.opened
    await sender.close()
    eventually_sync(
        lambda: not smtp_server.live, timeout=5, interval=0.01, what="every connection closed"
    )


async def test_start_opens_the_whole_pool_and_close_quits_it(
    smtp_server: CountingController,
) -> None:
    sender = sender_for(smtp_server, pool_size=4)
    await sender.start()
    eventually_sync(
        lambda: len(smtp_server.live) == 4, timeout=5, interval=0.01, what="four open connections"
    )
    await sender.close()
    eventually_sync(
        lambda: not smtp_server.live, timeout=5, interval=0.01, what="every connection closed"
    )


async def test_retries_wait_the_growing_jittered_delays(smtp_server: CountingController) -> None:
    """Base 1 s, cap 3 s, up to 1 s of jitter, seeded: the waits are known before they happen
    (recorded, not taken)."""
    handler = handler_of(smtp_server)
    handler.plan["slow@example.org"] = ["451 4.3.0 try later"] * 5
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    sender = sender_for(
        smtp_server, backoff_base=1.0, backoff_max=3.0, rng=random.Random(5), sleep=record
    )
    outcome = await sender.send(outgoing(1, to="slow@example.org"))
    await sender.close()

    assert outcome.status == "transient_failure"
    assert handler.data_attempts["slow@example.org"] == 4
    jitter = random.Random(5)
    assert waits == [min(grown + jitter.uniform(0, 1.0), 3.0) for grown in (1.0, 2.0, 4.0)]


async def test_451_is_retried_until_it_succeeds(smtp_server: CountingController) -> None:
    handler = handler_of(smtp_server)
    handler.plan["busy@example.org"] = ["451 4.3.0 try later", "451 4.3.0 try later"]
    sender = sender_for(smtp_server)

    outcome = await sender.send(outgoing(1, to="busy@example.org"))
    await sender.close()

    assert outcome.status == "sent"
    assert handler.data_attempts["busy@example.org"] == 3
    assert [e.rcpt_tos for e in handler.accepted] == [["busy@example.org"]]


async def test_retries_run_out_as_a_transient_failure(smtp_server: CountingController) -> None:
    handler = handler_of(smtp_server)
    handler.plan["full@example.org"] = ["452 4.2.2 mailbox full"] * 10
    sender = sender_for(smtp_server, max_attempts=3)

    outcome = await sender.send(outgoing(1, to="full@example.org"))
    await sender.close()

    assert outcome.status == "transient_failure"
    assert outcome.code == 452
    assert "mailbox full" in outcome.detail
    assert handler.data_attempts["full@example.org"] == 3
    assert handler.accepted == []


async def test_550_is_a_permanent_failure_without_retry(smtp_server: CountingController) -> None:
    handler = handler_of(smtp_server)
    handler.plan["gone@example.org"] = ["550 5.1.1 no such user"]
    sender = sender_for(smtp_server)

    outcome = await sender.send(outgoing(1, to="gone@example.org"))
    after = await sender.send(outgoing(2))
    await sender.close()

    assert outcome.status == "permanent_failure"
    assert outcome.code == 550
    assert "no such user" in outcome.detail
    assert handler.data_attempts["gone@example.org"] == 1
    # The connection stays usable for the next message.
    assert after.status == "sent"
    assert smtp_server.opened == 1


async def test_connection_dropped_mid_message_reconnects(smtp_server: CountingController) -> None:
    handler = handler_of(smtp_server)
    handler.plan["flaky@example.org"] = ["drop"]
    sender = sender_for(smtp_server, pool_size=1)

    outcome = await sender.send(outgoing(1, to="flaky@example.org"))
    await sender.close()

    assert outcome.status == "sent"
    assert handler.data_attempts["flaky@example.org"] == 2
    assert smtp_server.opened == 2


async def test_connections_closed_by_the_server_while_idle_are_reopened(
    smtp_server: CountingController,
) -> None:
    sender = sender_for(smtp_server, pool_size=2, idle_check_after=0.0)
    first = await asyncio.gather(sender.send(outgoing(1)), sender.send(outgoing(2)))
    smtp_server.drop_all()
    eventually_sync(
        lambda: not smtp_server.live, timeout=5, interval=0.01, what="every connection closed"
    )

    again = await asyncio.gather(*(sender.send(outgoing(n)) for n in range(3, 7)))
    await sender.close()

    assert {o.status for o in (*first, *again)} == {"sent"}
    assert len(handler_of(smtp_server).accepted) == 6
    assert smtp_server.opened >= 3


async def test_an_unreachable_server_is_an_outage_not_an_outcome() -> None:
    sender = SmtpSender(
        host="127.0.0.1",
        port=free_port(),
        mail_from_address="opportunities@hwcollab.example",
        max_attempts=2,
        backoff_base=0.01,
        timeout=2.0,
    )
    with pytest.raises(SmtpUnavailableError) as raised:
        await sender.send(outgoing(1))
    await sender.close()

    assert "cannot connect" in raised.value.detail
    assert is_transient(raised.value)


async def test_421_greetings_and_421_replies_are_outages_and_sending_resumes_after() -> None:
    server = SmtpSinkServer(host="127.0.0.1", port=free_port())
    sink = server.start()
    sender = SmtpSender(
        host="127.0.0.1",
        port=sink.port,
        mail_from_address="opportunities@hwcollab.example",
        pool_size=1,
        max_attempts=2,
        backoff_base=0.01,
        timeout=2.0,
    )
    try:
        assert (await sender.send(outgoing(1))).status == "sent"
        server.greet_with_421()
        with pytest.raises(SmtpUnavailableError) as greeted:
            await sender.send(outgoing(2))
        server.start()
        sink.set_busy(True)
        with pytest.raises(SmtpUnavailableError) as busy:
            await sender.send(outgoing(3))
        sink.set_busy(False)
        assert (await sender.send(outgoing(4))).status == "sent"
    finally:
        await sender.close()
        server.stop()

    assert "421" in greeted.value.detail
    assert busy.value.code == 421
    assert [m.rcpt_tos for m in sink.snapshot()] == [
        ("reader1@example.org",),
        ("reader4@example.org",),
    ]


async def test_bare_line_feeds_and_leading_dots_arrive_intact(
    smtp_server: CountingController,
) -> None:
    sender = sender_for(smtp_server)
    email = outgoing(1)
    data = b"Subject: dots\nMessage-ID: <dots@x>\n\n.one\n..two\r\nthree\r.\nend"
    outcome = await sender.send(
        OutgoingEmail(
            message_id="<dots@x>",
            to=email.to,
            subject="dots",
            kind="bulletin",
            opening_ids=(),
            subscriber_id="sub-1",
            data=data,
        )
    )
    await sender.close()

    assert outcome.status == "sent"
    (envelope,) = handler_of(smtp_server).accepted
    assert envelope.original_content == (
        b"Subject: dots\r\nMessage-ID: <dots@x>\r\n\r\n.one\r\n..two\r\nthree\r\n.\r\nend\r\n"
    )


async def test_each_email_goes_out_with_its_own_envelope_sender(
    smtp_server: CountingController,
) -> None:
    sender = sender_for(smtp_server, pool_size=1)
    verp = "bounces+abc234@bounces.hwcollab.example"
    await sender.send(dataclasses.replace(outgoing(1), envelope_sender=verp))
    await sender.send(outgoing(2))
    await sender.close()

    first, second = handler_of(smtp_server).accepted
    assert first.mail_from == verp
    assert second.mail_from == "opportunities@hwcollab.example"
