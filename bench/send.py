"""Sending benchmark: personalized emails composed and sent over the pooled SMTP sender.

One process composes every email (HTML + text + headers through ``EmailComposer``, one distinct
recipient per email) and sends it with ``SmtpSender`` to an aiosmtpd sink running in another
process, whose handler only counts. Baselines in the same run, same sink, same number of
connections:

- **ceiling**: the messages composed beforehand and blasted by a minimal hand-written SMTP client
  (MAIL, RCPT, DATA, each awaiting its reply), so nothing but the sink and the wire limits it;
- **connect per message**: the same composing, but a new aiosmtplib connection for each email —
  what pooling alone buys (on loopback without STARTTLS a connection is cheap, and the sink's own
  ceiling caps the ratio: no sender can be 5× faster than a baseline running above ceiling / 5);
- **naive connect per message**: the straightforward sender the ≥ 5× target is measured against —
  the same rendering, the message built with the standard library's ``EmailMessage`` (default
  policy) and sent over a new connection per email with ``aiosmtplib.send``.

Both processes use uvloop. Rounds are interleaved and the median round is reported.
"""

from __future__ import annotations

import asyncio
import base64
import multiprocessing
import os
import re
import signal
import statistics
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import aiosmtplib
import psutil
import uvloop
from cryptography.hazmat.primitives import serialization

from bench.harness import Figure, Output, benchmark, write_result
from hwcollab_common.dkim_keys import SigningKey, generate_signing_key, public_key_record
from hwcollab_notifier.mail import (
    DkimSigner,
    EmailComposer,
    OpeningView,
    OutgoingEmail,
    Recipient,
    SmtpSender,
)
from hwcollab_schemas.events import OpeningDetails

CONNECTIONS = 8
MAIL_FROM = "opportunities@hwcollab.example"


# --- the sink (another process) ------------------------------------------------------------------


class _CountingHandler:
    def __init__(self, counter: Any) -> None:
        self.counter = counter

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.counter.value += 1
        return "250 OK"


def _serve_sink(counter: Any, ready: Connection) -> None:
    """Child process: an aiosmtpd server on a free port that accepts and counts every message."""
    from aiosmtpd.smtp import SMTP

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        handler = _CountingHandler(counter)
        server = await loop.create_server(
            # A fixed hostname: aiosmtpd would otherwise resolve the FQDN for every connection.
            lambda: SMTP(handler, hostname="sink.local", ident="sink", enable_SMTPUTF8=True),
            host="127.0.0.1",
            port=0,
            backlog=1024,
        )
        ready.send(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    uvloop.run(serve())


class Sink:
    """Starts the sink process, knows its port and how many messages it has accepted."""

    def __init__(self) -> None:
        # fork, not spawn: a spawned child would re-import the caller's __main__ module.
        context = multiprocessing.get_context("fork")
        self._counter: Synchronized[int] = context.Value("q", 0, lock=False)  # type: ignore[assignment]
        receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_serve_sink, args=(self._counter, send), daemon=True)
        self._process.start()
        if not receive.poll(30):
            self.stop()
            raise RuntimeError("the SMTP sink did not start within 30 s")
        self.port: int = receive.recv()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the sink process has used so far."""
        times = psutil.Process(self._process.pid).cpu_times()
        return float(times.user + times.system)

    @property
    def accepted(self) -> int:
        return self._counter.value

    def stop(self) -> None:
        pid = self._process.pid
        if pid is not None and self._process.is_alive():
            os.kill(pid, signal.SIGTERM)
        self._process.join(10)


# --- what is sent --------------------------------------------------------------------------------

_TITLES = (
    "Nurse Care Manager",
    "Community Care Coordinator",
    "Direct Support Professional",
    "Behavioral Health Care Manager",
    "Patient Care Coordinator",
)
_ORGS = ("Worcester Community Health", "Blackstone Valley Supports", "Greater Boston Care Network")


def _openings(count: int) -> list[OpeningDetails]:
    posted = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    return [
        OpeningDetails(
            opening_id=f"op-{n:05d}",
            employer_id=f"emp-{n % 7}",
            version=1,
            organization_name=_ORGS[n % len(_ORGS)],
            employer_approved=True,
            title=_TITLES[n % len(_TITLES)],
            role=("care_manager", "community_care_coordinator", "direct_support_professional")[
                n % 3
            ],
            setting=("medical", "behavioral_health", "social_service")[n % 3],
            required_credentials=("rn",) if n % 4 == 0 else (),
            employment_type=("full_time", "part_time", "per_diem")[n % 3],
            zip="01608",
            city="Worcester",
            state="MA",
            lat=42.2626,
            lon=-71.8023,
            pay_min=22 + n % 10,
            pay_max=30 + n % 15,
            description=(
                "Join a team that helps adults with complex medical and social needs stay well at "
                "home. You will coordinate care across primary care, behavioral health and "
                "community agencies, visit members, and keep one shared plan. " * 3
            ),
            apply_url=f"https://careers.example.org/apply/{n}?source=hwcollab",
            posted_at=posted,
            expires_at=posted + timedelta(days=30),
        )
        for n in range(count)
    ]


def composer_for(signer: DkimSigner | None) -> EmailComposer:
    return EmailComposer(
        mail_from=f"HWcollab Opportunities <{MAIL_FROM}>",
        postal_address="100 Main Street, Worcester, MA 01608",
        subscriber_public_url="https://subscribe.hwcollab.example",
        employer_public_url="https://jobs.hwcollab.example",
        signer=signer,
    )


class Workload:
    """Distinct recipients and per-recipient opening views; composing happens in the timed part."""

    def __init__(self, count: int) -> None:
        self.composer = composer_for(None)
        details = _openings(50)
        self.items: list[tuple[Recipient, OpeningView]] = []
        for n in range(count):
            token = f"{n:08d}.{'x' * 40}"
            recipient = Recipient(
                subscriber_id=f"sub-{n:08d}",
                email=f"reader{n}@example.org",
                first_name=("Pat", "Jordan", None, "María")[n % 4],
                manage_url=f"https://subscribe.hwcollab.example/preferences?token={token}",
                unsubscribe_url=f"https://subscribe.hwcollab.example/unsubscribe?token={token}",
                pause_url=f"https://subscribe.hwcollab.example/pause?token={token}",
            )
            view = OpeningView.from_details(
                details[n % len(details)],
                distance_miles=1 + n % 40,
                employer_public_url="https://jobs.hwcollab.example",
                subscriber_zip="01609",
                subscriber_credentials=("rn",) if n % 2 else (),
            )
            self.items.append((recipient, view))

    def compose(self, index: int) -> OutgoingEmail:
        recipient, view = self.items[index]
        return self.composer.immediate(recipient, view)


# --- the three ways of sending -------------------------------------------------------------------


async def _workers(
    count: int, concurrency: int, work: Callable[[int], Coroutine[Any, Any, None]]
) -> None:
    indices = iter(range(count))

    async def worker() -> None:
        for index in indices:
            await work(index)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def send_pooled(workload: Workload, *, port: int, count: int) -> float:
    """Emails per second: compose + SmtpSender over CONNECTIONS pooled connections."""
    sender = SmtpSender(
        host="127.0.0.1", port=port, mail_from_address=MAIL_FROM, pool_size=CONNECTIONS
    )
    failures = 0

    async def work(index: int) -> None:
        nonlocal failures
        outcome = await sender.send(workload.compose(index))
        failures += outcome.status != "sent"

    start = time.perf_counter()
    # Twice as many workers as connections, so composing overlaps with waiting for replies.
    await _workers(count, 2 * CONNECTIONS, work)
    elapsed = time.perf_counter() - start
    await sender.close()
    if failures:
        raise RuntimeError(f"{failures} emails were not sent")
    return count / elapsed


async def send_connect_per_message(workload: Workload, *, port: int, count: int) -> float:
    """Emails per second: same composing, a new aiosmtplib connection for every email."""

    async def work(index: int) -> None:
        email = workload.compose(index)
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        async with smtp:
            await smtp.sendmail(MAIL_FROM, [email.to], email.data)

    start = time.perf_counter()
    await _workers(count, CONNECTIONS, work)
    return count / (time.perf_counter() - start)


class NaiveParts:
    """Per email, the headers and bodies a naive sender would hand to ``EmailMessage``: taken
    from the composed message once, outside the timed part."""

    def __init__(self, workload: Workload, count: int) -> None:
        from email import message_from_bytes
        from email.policy import default

        self.items: list[tuple[list[tuple[str, str]], str, str]] = []
        for index in range(count):
            parsed = message_from_bytes(workload.compose(index).data, policy=default)
            text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
            assert text is not None
            assert html is not None
            headers = [
                (k, str(v))
                for k, v in parsed.items()
                if not k.lower().startswith(("content", "mime"))
            ]
            self.items.append((headers, str(text.get_content()), str(html.get_content())))


async def send_naive_connect_per_message(
    workload: Workload, parts: NaiveParts, *, port: int, count: int
) -> float:
    """Emails per second: the same rendering, then ``EmailMessage`` and a connection per email.

    ``workload.compose`` renders the templates (the naive sender renders too); its own fast MIME
    bytes are thrown away, so this baseline also pays that (~10 % of composing) on top.
    """
    from email.message import EmailMessage

    async def work(index: int) -> None:
        workload.compose(index)
        headers, text, html = parts.items[index]
        message = EmailMessage()
        for key, value in headers:
            message[key] = value
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        await aiosmtplib.send(message, hostname="127.0.0.1", port=port, start_tls=False)

    start = time.perf_counter()
    await _workers(count, CONNECTIONS, work)
    return count / (time.perf_counter() - start)


_DOT = re.compile(rb"^\.", re.MULTILINE)


async def _reply(reader: asyncio.StreamReader) -> None:
    while True:
        line = await reader.readline()
        if not line or line[0] not in b"23":
            raise RuntimeError(f"sink replied {line!r}")
        if line[3:4] != b"-":
            return


async def blast(messages: list[bytes], *, port: int) -> float:
    """Messages per second the sink accepts from a minimal client over CONNECTIONS connections."""
    stuffed = [_DOT.sub(b"..", data) for data in messages]
    queue: Iterator[bytes] = iter(stuffed)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await _reply(reader)
        writer.write(b"EHLO bench.local\r\n")
        await _reply(reader)
        for data in queue:
            writer.write(b"MAIL FROM:<" + MAIL_FROM.encode() + b">\r\n")
            await _reply(reader)
            writer.write(b"RCPT TO:<reader@example.org>\r\n")
            await _reply(reader)
            writer.write(b"DATA\r\n")
            await _reply(reader)
            writer.writelines((data, b".\r\n"))
            await _reply(reader)
        writer.write(b"QUIT\r\n")
        await _reply(reader)
        writer.close()
        await writer.wait_closed()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    return len(stuffed) / (time.perf_counter() - start)


def compose_cost_us(workload: Workload, *, count: int) -> tuple[float, float]:
    """Microseconds per email: EmailComposer.immediate, and the stdlib EmailMessage (default
    policy) building the same headers and bodies (rendering excluded from the latter)."""
    from email.message import EmailMessage

    start = time.perf_counter()
    composed = [workload.compose(n % len(workload.items)) for n in range(count)]
    ours = (time.perf_counter() - start) / count * 1e6

    sample = composed[0]
    from email import message_from_bytes
    from email.policy import default

    parsed = message_from_bytes(sample.data, policy=default)
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None
    assert html is not None
    text_body, html_body = str(text.get_content()), str(html.get_content())
    headers = [
        (k, str(v)) for k, v in parsed.items() if not k.lower().startswith(("content", "mime"))
    ]
    start = time.perf_counter()
    for _ in range(count):
        message = EmailMessage()
        for key, value in headers:
            message[key] = value
        message.set_content(text_body)
        message.add_alternative(html_body, subtype="html")
        message.as_bytes()
    stdlib = (time.perf_counter() - start) / count * 1e6
    return ours, stdlib


def signing_cost_us(workload: Workload, *, count: int, rounds: int) -> dict[str, float]:
    """CPU microseconds per email (process time, median of interleaved rounds): composing
    unsigned, composing with a DKIM signature (RSA-2048 and Ed25519), and dkimpy signing the
    same message (the reference implementation, on a few emails: it is slow)."""
    import dkim

    keys: dict[str, SigningKey] = {
        "rsa": generate_signing_key("rsa"),
        "ed25519": generate_signing_key("ed25519"),
    }
    composers = {"unsigned": workload.composer} | {
        name: composer_for(DkimSigner(domain="hwcollab.example", selector="bench", key=key))
        for name, key in keys.items()
    }
    samples: dict[str, list[float]] = {name: [] for name in composers}
    for _ in range(rounds):
        for name, composer in composers.items():
            start = time.process_time()
            for n in range(count):
                recipient, view = workload.items[n % len(workload.items)]
                composer.immediate(recipient, view)
            samples[name].append((time.process_time() - start) / count * 1e6)
    costs = {name: statistics.median(values) for name, values in samples.items()}
    unsigned = workload.compose(0).data
    few = max(5, count // 20)
    for name, key in keys.items():
        signed = composers[name].immediate(*workload.items[0]).data
        record = public_key_record(key).encode()
        if not dkim.verify(signed, dnsfunc=lambda _name, timeout=5, r=record: r):
            raise RuntimeError(f"dkimpy does not verify the {name} signature")
        # dkimpy takes RSA keys as PEM and Ed25519 keys as the base64 of the raw 32 bytes.
        private = (
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            if name == "rsa"
            else base64.b64encode(
                key.private_bytes(
                    serialization.Encoding.Raw,
                    serialization.PrivateFormat.Raw,
                    serialization.NoEncryption(),
                )
            )
        )
        start = time.process_time()
        for _ in range(few):
            dkim.sign(
                unsigned,
                b"bench",
                b"hwcollab.example",
                private,
                signature_algorithm=(b"rsa-sha256" if name == "rsa" else b"ed25519-sha256"),
            )
        costs[f"dkimpy_{name}"] = (time.process_time() - start) / few * 1e6
    return costs


# --- the benchmark -------------------------------------------------------------------------------


@benchmark("send")
def run(*, quick: bool, out: Output) -> None:
    count = 300 if quick else 2500
    connect_count = 150 if quick else 600
    # Many short interleaved rounds, and ratios taken within a round: the machine's load drifts.
    rounds = 1 if quick else 9
    workload = Workload(count)
    prebuilt = [workload.compose(n).data for n in range(count)]
    compose_us, stdlib_us = compose_cost_us(workload, count=min(count, 1000))
    naive_parts = NaiveParts(workload, connect_count)
    signing = signing_cost_us(workload, count=min(count, 500), rounds=3 if quick else 7)

    sink = Sink()
    rates: dict[str, list[float]] = {"ceiling": [], "pooled": [], "per_message": [], "naive": []}
    client_cpu: dict[str, list[float]] = {key: [] for key in rates}
    sink_cpu: dict[str, list[float]] = {key: [] for key in rates}
    phases: dict[str, tuple[int, Callable[[], Coroutine[Any, Any, float]]]] = {
        "ceiling": (count, lambda: blast(prebuilt, port=sink.port)),
        "pooled": (count, lambda: send_pooled(workload, port=sink.port, count=count)),
        "per_message": (
            connect_count,
            lambda: send_connect_per_message(workload, port=sink.port, count=connect_count),
        ),
        "naive": (
            connect_count,
            lambda: send_naive_connect_per_message(
                workload, naive_parts, port=sink.port, count=connect_count
            ),
        ),
    }
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            expected = 0
            for _ in range(rounds):
                for key, (n, phase) in phases.items():
                    cpu, sink_before = time.process_time(), sink.cpu_seconds()
                    rates[key].append(runner.run(phase()))
                    client_cpu[key].append((time.process_time() - cpu) / n * 1e6)
                    sink_cpu[key].append((sink.cpu_seconds() - sink_before) / n * 1e6)
                    expected += n
            if sink.accepted != expected:
                raise RuntimeError(f"the sink accepted {sink.accepted} of {expected} messages")
    finally:
        sink.stop()
    pooled, ceiling, per_message = rates["pooled"], rates["ceiling"], rates["per_message"]
    ours_cpu = statistics.median(client_cpu["pooled"])
    lean_cpu = statistics.median(client_cpu["ceiling"])
    sink_us = statistics.median(sink_cpu["ceiling"])
    # With a core each for client and sink, the slower of the two sets the pace.
    projected = max(lean_cpu, sink_us) / max(ours_cpu, sink_us)
    rate = statistics.median(pooled)
    top = statistics.median(ceiling)
    slow = statistics.median(per_message)
    fraction = statistics.median(p / c for p, c in zip(pooled, ceiling, strict=True))
    speedup = statistics.median(p / m for p, m in zip(pooled, per_message, strict=True))
    naive = rates["naive"]
    naive_speedup = statistics.median(p / m for p, m in zip(pooled, naive, strict=True))
    per_message_cpu = statistics.median(client_cpu["per_message"])
    per_message_sink = statistics.median(sink_cpu["per_message"])
    projected_speedup = max(per_message_cpu, per_message_sink) / max(ours_cpu, sink_us)
    note = f"{CONNECTIONS} connections, {count} distinct recipients per round, median of {rounds}"
    figures = {
        "emails_per_s": Figure(rate, "emails/s", baseline=top, better="higher", note=note),
        "sink_ceiling_per_s": Figure(
            top, "emails/s", better="higher", note="pre-composed bytes, minimal client"
        ),
        "emails_per_s_connect_per_message": Figure(
            slow, "emails/s", better="higher", note=f"{connect_count} emails, 8 at a time"
        ),
        "fraction_of_ceiling": Figure(
            fraction, "×", target=0.7, better="higher", note="median of per-round ratios"
        ),
        "emails_per_s_naive_connect_per_message": Figure(
            statistics.median(naive),
            "emails/s",
            better="higher",
            note=f"{connect_count} emails, 8 at a time; stdlib EmailMessage + aiosmtplib.send",
        ),
        "speedup_vs_naive_connect_per_message": Figure(
            naive_speedup, "×", target=5.0, better="higher", note="median of per-round ratios"
        ),
        "speedup_vs_connect_per_message": Figure(
            speedup,
            "×",
            better="higher",
            note="same composer, connection per email: pooling alone; capped by the sink ceiling",
        ),
        "client_cpu_us_per_email": Figure(
            ours_cpu,
            "µs",
            baseline=per_message_cpu,
            better="lower",
            note="sender process CPU per email, composing included; baseline: connect per message",
        ),
        "ceiling_client_cpu_us_per_email": Figure(
            lean_cpu, "µs", better="lower", note="the minimal client of the ceiling run"
        ),
        "sink_cpu_us_per_email": Figure(
            sink_us,
            "µs",
            baseline=per_message_sink,
            better="lower",
            note="aiosmtpd sink, pooled connections; baseline: a connection per message",
        ),
        "projected_fraction_of_ceiling": Figure(
            projected,
            "×",
            target=0.7,
            better="higher",
            note="from CPU per email, as if client and sink each had a core to themselves",
        ),
        "projected_speedup_vs_connect_per_message": Figure(
            projected_speedup,
            "×",
            better="higher",
            note="from CPU per email, as if client and sink each had a core to themselves",
        ),
        "compose_immediate_us": Figure(
            compose_us,
            "µs",
            baseline=stdlib_us,
            better="lower",
            note="baseline: stdlib EmailMessage (default policy) with the same parts",
        ),
        "compose_unsigned_cpu_us": Figure(
            signing["unsigned"], "µs", better="lower", note="process CPU per immediate email"
        ),
        "compose_signed_rsa_cpu_us": Figure(
            signing["rsa"],
            "µs",
            baseline=signing["unsigned"],
            better="lower",
            note="DKIM RSA-2048 (cryptography/OpenSSL); baseline: the same email unsigned",
        ),
        "compose_signed_ed25519_cpu_us": Figure(
            signing["ed25519"],
            "µs",
            baseline=signing["unsigned"],
            better="lower",
            note="DKIM Ed25519-SHA256; baseline: the same email unsigned",
        ),
        "dkim_rsa_cpu_us_per_email": Figure(
            signing["rsa"] - signing["unsigned"],
            "µs",
            baseline=signing["dkimpy_rsa"],
            better="lower",
            note="signing alone; baseline: dkimpy signing the same email",
        ),
        "dkim_ed25519_cpu_us_per_email": Figure(
            signing["ed25519"] - signing["unsigned"],
            "µs",
            baseline=signing["dkimpy_ed25519"],
            better="lower",
            note="signing alone; baseline: dkimpy signing the same email",
        ),
    }
    write_result("send", figures, out=out)
    for key, figure in figures.items():
        print(f"send {key}: {figure.value:,.3f} {figure.unit}")
