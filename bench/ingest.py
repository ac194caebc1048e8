"""Ingest benchmark: confirmed sign-ups per second through the subscriber API until they are in
the notifier's match index, with the embedded stack and all three services as processes.

Each sign-up takes the real path: ``POST /api/subscribers`` (202) → ``subscriber.confirmation_
requested`` through the outbox → the notifier emails the confirmation link → the benchmark reads
the token from that email at the SMTP sink and ``POST /api/subscribers/confirm``s it →
``subscriber.registered`` → the notifier's read model and match index (and a welcome email).
The clock runs from the first sign-up request to the index holding every one of them
(``hwcollab_notifier_index_subscribers`` on the notifier's ``/metrics``).

**Baseline**, same run, same services: the rate of ``POST /api/subscribers`` alone (the same
number of new addresses, the same concurrency, timed to the last 202): what the front door takes
before any confirmation, relay or notifier work.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.progress import Progress

from bench.harness import Figure, Output, benchmark, write_result
from bench.stack import BenchStack, embedded_stack, index_size

CONCURRENCY = 8
ZIPS = ("01608", "02139", "10001", "60614", "94110", "30303", "73102", "98101", "55101", "80202")
ROLE_CHOICES = (
    ["care_coordination"],
    ["care_management"],
    ["direct_support"],
    ["case_manager", "rn_case_manager"],
)


@dataclass(frozen=True, slots=True)
class Plan:
    signups: int
    baseline_signups: int
    timeout: float


FULL = Plan(signups=300, baseline_signups=300, timeout=900)
QUICK = Plan(signups=20, baseline_signups=20, timeout=180)


def sign_up_body(email: str, rng: random.Random) -> dict[str, object]:
    return {
        "email": email,
        "first_name": rng.choice(("Pat", "Jordan", "María", "Sam")),
        "roles": rng.choice(ROLE_CHOICES),
        "zip": rng.choice(ZIPS),
        "radius_miles": rng.choice((10, 25, 50)),
        "frequency": rng.choice(("immediate", "daily", "weekly")),
    }


async def _in_parallel(count: int, work: Callable[[int], Awaitable[None]]) -> None:
    indices = iter(range(count))

    async def worker() -> None:
        for index in indices:
            await work(index)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def sign_ups_only(http: httpx.AsyncClient, url: str, emails: list[str]) -> float:
    """Sign-ups per second of ``POST /api/subscribers`` alone."""
    rng = random.Random(3)

    async def one(index: int) -> None:
        answer = await http.post(f"{url}/api/subscribers", json=sign_up_body(emails[index], rng))
        answer.raise_for_status()

    start = time.perf_counter()
    await _in_parallel(len(emails), one)
    return len(emails) / (time.perf_counter() - start)


async def confirmed_into_index(
    stack: BenchStack,
    http: httpx.AsyncClient,
    urls: dict[str, str],
    emails: list[str],
    *,
    timeout: float,
) -> float:
    """Sign-ups per second from the first request until the notifier's index holds them all."""
    rng = random.Random(2)
    wanted = set(emails)
    before = await asyncio.to_thread(index_size, urls["notifier"])
    stack.sink.poll()  # what arrived before is not ours
    confirmations: list[asyncio.Task[None]] = []
    seen: set[str] = set()

    async def one(index: int) -> None:
        answer = await http.post(
            f"{urls['subscriber']}/api/subscribers", json=sign_up_body(emails[index], rng)
        )
        answer.raise_for_status()

    async def confirm(token: str) -> None:
        answer = await http.post(
            f"{urls['subscriber']}/api/subscribers/confirm", json={"token": token}
        )
        answer.raise_for_status()

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    start = time.perf_counter()
    signing_up = asyncio.create_task(_in_parallel(len(emails), one))
    with Progress() as progress:
        confirmed_bar = progress.add_task("confirmation emails answered", total=len(emails))
        indexed_bar = progress.add_task("in the notifier's index", total=len(emails))
        indexed = 0
        while indexed < len(emails):
            for message in stack.sink.poll():
                ours = message.kind == "confirmation" and message.rcpt in wanted
                if ours and message.rcpt not in seen and message.token:
                    seen.add(message.rcpt)
                    confirmations.append(asyncio.create_task(confirm(message.token)))
            progress.update(confirmed_bar, completed=len(seen))
            indexed = await asyncio.to_thread(index_size, urls["notifier"]) - before
            progress.update(indexed_bar, completed=indexed)
            if loop.time() > deadline:
                raise TimeoutError(
                    f"{len(seen)} confirmed and {indexed} indexed of {len(emails)} sign-ups "
                    f"after {timeout:.0f} s"
                )
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - start
    await signing_up
    await asyncio.gather(*confirmations)
    return len(emails) / elapsed


def run_ingest(plan: Plan, workdir: Path) -> dict[str, Figure]:
    with embedded_stack(workdir) as stack:
        services = stack.start_services(("subscriber", "notifier"))
        urls = {name: service.url for name, service in services.items()}
        run = stack.run_id
        measured = [f"in{i}-{run}@example.org" for i in range(plan.signups)]
        alone = [f"front{i}-{run}@example.org" for i in range(plan.baseline_signups)]

        async def both() -> tuple[float, float]:
            async with httpx.AsyncClient(timeout=30.0) as http:
                rate = await confirmed_into_index(stack, http, urls, measured, timeout=plan.timeout)
                front = await sign_ups_only(http, urls["subscriber"], alone)
            return rate, front

        rate, front = asyncio.run(both())
    note = (
        f"{plan.signups} sign-ups, {CONCURRENCY} at a time, each confirmed with the token from "
        "its confirmation email as soon as it reached the sink; first request → all in the "
        "notifier's index"
    )
    return {
        "signups_per_s": Figure(
            rate,
            "sign-ups/s",
            baseline=front,
            better="higher",
            note=f"{note}; baseline: POST /api/subscribers alone ({plan.baseline_signups})",
        ),
        "signup_requests_per_s": Figure(
            front, "requests/s", better="higher", note="POST /api/subscribers answered 202"
        ),
    }


@benchmark("ingest")
def run(*, quick: bool, out: Output) -> None:
    plan = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as workdir:
        figures = run_ingest(plan, Path(workdir))
    write_result("ingest", figures, out=out)
    for key, figure in figures.items():
        print(f"ingest {key}: {figure.value:,.2f} {figure.unit} (baseline {figure.baseline})")
