"""A signed email as a real SMTP server received it: composed and DKIM-signed by the notifier,
sent by its SMTP sender to an aiosmtpd server in another process, verified there by dkimpy
against the published public key; its envelope sender is its own bounce address (VERP)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest

from hwcollab_common.clock import FixedClock
from hwcollab_common.dkim_keys import SigningKey, generate_signing_key, public_key_record
from hwcollab_notifier.mail import (
    BounceAddresses,
    BounceToken,
    DkimSigner,
    EmailComposer,
    SmtpSender,
)
from hwcollab_notifier.mail.bounces import message_hash
from hwcollab_notifier.mail.views import OpeningView, Recipient
from hwcollab_testing.processes import free_port, port_accepts
from hwcollab_testing.waiting import eventually, eventually_sync

pytestmark = pytest.mark.integration

# The sink process: stores each message's bytes exactly as received (after the server has
# undone dot-stuffing), one file per message.
SINK = """
import asyncio, pathlib, sys
from aiosmtpd.smtp import SMTP

class Store:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        raw = bytes(envelope.original_content or envelope.content)
        (self.directory / f"{self.count:04d}.from").write_text(envelope.mail_from)
        (self.directory / f"{self.count:04d}.eml.part").write_bytes(raw)
        (self.directory / f"{self.count:04d}.eml.part").rename(
            self.directory / f"{self.count:04d}.eml"
        )
        return "250 OK"

async def main():
    handler = Store(pathlib.Path(sys.argv[2]))
    loop = asyncio.get_running_loop()
    await loop.create_server(
        lambda: SMTP(handler, hostname="sink.local", enable_SMTPUTF8=True),
        host="127.0.0.1",
        port=int(sys.argv[1]),
    )
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    directory = tmp_path_factory.mktemp("dkim-sink")
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SINK, str(port), str(directory)])
    try:

        def listening() -> bool:
            assert process.poll() is None, "the SMTP sink exited"
            return port_accepts(port)

        eventually_sync(listening, timeout=30, what="the SMTP sink listening")
        yield port, directory
    finally:
        process.terminate()
        process.wait(timeout=10)


def verifies(message: bytes, key: SigningKey) -> bool:
    record = public_key_record(key).encode()

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"hw2026a._domainkey.hwcollab.example."
        return record

    return bool(dkim.verify(message, dnsfunc=dns))


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
async def test_the_received_email_carries_a_signature_that_verifies(
    sink: tuple[int, Path], algorithm: str
) -> None:
    port, directory = sink
    for old in [*directory.glob("*.eml"), *directory.glob("*.from")]:
        old.unlink()
    key = generate_signing_key("rsa" if algorithm == "rsa" else "ed25519")
    # The real time: dkimpy refuses a t= more than 10 hours ahead of the clock.
    clock = FixedClock(datetime.now(UTC))
    bounces = BounceAddresses(domain="bounces.hwcollab.example", key="k" * 40)
    composer = EmailComposer(
        mail_from="HWcollab Opportunities <opportunities@hwcollab.example>",
        postal_address="100 Main Street, Worcester, MA 01608",
        subscriber_public_url="http://subs.example:8001",
        employer_public_url="http://jobs.example:8002",
        clock=clock,
        signer=DkimSigner(domain="hwcollab.example", selector="hw2026a", key=key, clock=clock),
        bounces=bounces,
    )
    reader = Recipient(
        subscriber_id="sub-1",
        email="zoë@example.org",
        first_name="Zoë",
        manage_url="http://subs.example:8001/preferences?token=M",
        unsubscribe_url="http://subs.example:8001/unsubscribe?token=U",
        pause_url="http://subs.example:8001/pause?token=M",
    )
    opening = OpeningView(
        opening_id="op-1",
        title="Coordinatrice de soins — équipe mobile de santé communautaire " * 3,
        organization_name="Clínica Señora Muñoz",
        place="Worcester, MA",
        distance_miles=12.0,
        pay="$38–$45 an hour",
        employment_type="Full time",
        setting="Medical",
        summary=".A summary that starts with a dot\n.and another line",
        apply_url="https://jobs.example.org/apply/1",
        details_url="http://jobs.example:8002/openings/op-1",
        why="Care Manager · 12 miles from 01608",
    )
    sent = [
        composer.immediate(reader, opening),
        composer.bulletin(
            reader, bulletin_id="b-1", subject="Career news", body_markdown=".dot\n\n..two"
        ),
        composer.confirmation(
            request_id="confirmation-request",
            subscriber_id="sub-1",
            email="pat@example.org",
            first_name=None,
            confirm_url="http://subs.example:8001/confirm?token=C",
        ),
    ]
    sender = SmtpSender(
        host="127.0.0.1",
        port=port,
        mail_from_address="opportunities@hwcollab.example",
        pool_size=1,
        max_attempts=2,
        backoff_base=0.05,
        timeout=10.0,
    )
    try:
        for email in sent:
            assert (await sender.send(email)).status == "sent"
    finally:
        await sender.close()

    await eventually(
        lambda: len(list(directory.glob("*.eml"))) == len(sent),
        timeout=15,
        what="the sink stores every email",
    )
    received = [path.read_bytes() for path in sorted(directory.glob("*.eml"))]
    for email, raw in zip(sent, received, strict=True):
        assert raw.startswith(b"DKIM-Signature: "), raw[:80]
        assert email.message_id.encode() in raw
        assert verifies(raw, key), email.kind
    senders = [path.read_text() for path in sorted(directory.glob("*.from"))]
    assert [bounces.parse(address) for address in senders] == [
        BounceToken(message_hash(email.message_id), "sub-1") for email in sent
    ]
