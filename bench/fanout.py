"""Fan-out benchmark: how fast one opening reaches every subscriber it matches, and a digest run
reaches every daily subscriber, next to how fast the pooled SMTP sender alone sends to the same
sink, in one run on the embedded stack (Kafka, MongoDB, recording SMTP sink in its own process).

N immediate subscribers at one ZIP and D daily subscribers at another are in the notifier's read
model (written with the notifier's own repository, as ``bench.e2e`` does). In order:

1. *sender*: ``bench.send.send_pooled`` to the stack's sink (this process, 8 pooled connections):
   the rate and CPU per email the delivery path is compared with (again at the end; the mean).
2. *immediate, 1 process*: an opening posted through ``POST /api/openings`` that matches the N:
   emails/s from the POST returning to the last email at the sink, times to the first and last.
3. *digests*: 5 openings matching the D are posted, then ``POST /api/admin/digests/run`` at an
   instant when every D is due: digests/s from the request to the last digest at the sink.
4. *immediate, 2 processes*: a second notifier process joins the group; once the delivery
   partitions are spread over both, a second opening matching the same N is posted.

Around each phase: MongoDB commands sent by the notifier processes (their
``hwcollab_mongodb_commands_total``), records appended to the delivery and notification topics
(end offsets), and the notifier processes' CPU time (user + system), each divided by the emails.
"after" is read once the notifiers' outbox has drained, so the events of the last email count.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import uvloop
from pymongo import MongoClient
from rich.progress import Progress

from bench.e2e import Place, cluster, employer_token, opening_fields, seed_read_model
from bench.harness import Figure, Output, benchmark, write_result
from bench.send import Workload, send_pooled
from bench.stack import PARTITIONS, BenchStack, Service, embedded_stack, metric_sum, poll_until
from hwcollab_common.outbox import OUTBOX_COLLECTION
from hwcollab_schemas.events import SubscriberProfile
from hwcollab_schemas.topics import DELIVERY_TOPIC, NOTIFICATION_TOPIC, OPENING_TOPIC
from hwcollab_testing.kafka import held_partitions, topic_ends

PLACE = Place(zip="55101", lat=44.9509, lon=-93.0925, timezone="America/Chicago")
DIGEST_PLACE = Place(zip="80202", lat=39.7525, lon=-104.9995, timezone="America/Denver")
DIGEST_OPENINGS = 5
NOTIFIER_APP = "hwcollab-notifier"


@dataclass(frozen=True, slots=True)
class Plan:
    immediate: int
    digest: int
    sender_emails: int
    timeout: float


FULL = Plan(immediate=10_000, digest=10_000, sender_emails=4_000, timeout=4 * 3600)
QUICK = Plan(immediate=20, digest=8, sender_emails=300, timeout=300)


# --- where the delivery partitions are --------------------------------------------------------


def shares(services: list[Service], topic: str) -> list[int] | None:
    """Partitions of ``topic`` per process once the group has settled (each partition held by
    exactly one process); None while it has not."""
    held = [held_partitions(s.process.log_path, topic) for s in services]
    every = [p for process in held for p in process]
    if sorted(every) != list(range(PARTITIONS)):
        return None
    return [len(process) for process in held]


def spread(services: list[Service]) -> bool:
    """The group has settled on the opening and delivery topics, every process holding
    partitions of both (a burst published meanwhile would wait for the rebalance)."""
    return all(all(shares(services, topic) or [0]) for topic in (OPENING_TOPIC, DELIVERY_TOPIC))


# --- what the notifier processes spent --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spent:
    commands: float
    records: int
    cpu_seconds: float
    sent: tuple[float, ...]
    database_cpu_seconds: float = 0.0
    """CPU of the MongoDB server process (SecantusDB), which every service shares."""

    def __sub__(self, before: Spent) -> Spent:
        return Spent(
            self.commands - before.commands,
            self.records - before.records,
            self.cpu_seconds - before.cpu_seconds,
            tuple(a - b for a, b in zip(self.sent, before.sent, strict=False)),
            self.database_cpu_seconds - before.database_cpu_seconds,
        )


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def spent(stack: BenchStack, notifiers: list[Service]) -> Spent:
    ends = asyncio.run(topic_ends(stack.kafka_bootstrap, (DELIVERY_TOPIC, NOTIFICATION_TOPIC)))
    cpu = sum(cpu_seconds(service.process.pid) for service in notifiers)
    [database] = [p for p in stack.processes if p.name == "mongo"]
    return Spent(
        commands=sum(
            metric_sum(s.url, "hwcollab_mongodb_commands_total", app=NOTIFIER_APP)
            for s in notifiers
        ),
        records=sum(ends.values()),
        cpu_seconds=cpu,
        sent=tuple(metric_sum(s.url, "hwcollab_notifier_emails_sent_total") for s in notifiers),
        database_cpu_seconds=cpu_seconds(database.pid),
    )


def matches(notifiers: list[Service], channel: str) -> float:
    """Matches the notifier processes have recorded on ``channel`` (ledger rows)."""
    return sum(
        metric_sum(s.url, "hwcollab_notifier_matches_total", channel=channel) for s in notifiers
    )


def outbox_drained(stack: BenchStack, database: str) -> Callable[[], bool]:
    def drained() -> bool:
        client: MongoClient[dict[str, Any]]
        with MongoClient(stack.mongodb_url) as client:
            return client[database][OUTBOX_COLLECTION].count_documents({"status": "pending"}) == 0

    return drained


# --- the phases -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sender:
    emails_per_s: float
    cpu_us_per_email: float


def pooled_sender(stack: BenchStack, count: int) -> Sender:
    """``bench.send``'s pooled sender against this stack's sink, in this process."""
    workload = Workload(count)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        cpu = time.process_time()
        rate = runner.run(send_pooled(workload, port=stack.smtp_port, count=count))
        cpu_us = (time.process_time() - cpu) / count * 1e6
    return Sender(rate, cpu_us)


@dataclass(frozen=True, slots=True)
class Burst:
    """What one phase delivered: arrival times at the sink since its start, and the cost."""

    started: float
    arrivals: list[float]
    cost: Spent
    matched_s: float | None = None
    """When the notifier had recorded every match (its ``matches_total``), since the start."""

    @property
    def emails(self) -> int:
        return len(self.arrivals)

    @property
    def rate(self) -> float:
        return self.emails / max(self.arrivals)

    def per_email(self, total: float) -> float:
        return total / self.emails


def await_emails(
    stack: BenchStack,
    wanted: Callable[[Any], bool],
    *,
    expected: int,
    started: float,
    label: str,
    timeout: float,
    matched: Callable[[], bool] | None = None,
) -> tuple[list[float], float | None]:
    """Arrival times (since ``started``) of the ``expected`` emails, and when ``matched`` first
    held (checked on every poll until then)."""
    arrived: list[float] = []
    matched_at: list[float] = []
    with Progress() as progress:
        task = progress.add_task(label, total=expected)

        def all_arrived() -> bool:
            if matched is not None and not matched_at and matched():
                matched_at.append(time.time() - started)
            arrived.extend(m.at - started for m in stack.sink.poll() if wanted(m))
            progress.update(task, completed=len(arrived))
            return len(arrived) >= expected

        poll_until(all_arrived, timeout=timeout, what=label, interval=0.1)
    return sorted(arrived), (matched_at[0] if matched_at else None)


def measured(
    stack: BenchStack,
    notifiers: list[Service],
    database: str,
    start: Callable[[], float],
    *,
    wanted: Callable[[Any], bool],
    expected: int,
    label: str,
    timeout: float,
    matched: Callable[[], bool] | None = None,
) -> Burst:
    """Run ``start`` (returns the instant the phase began), wait for ``expected`` emails and for
    the outbox to drain; the arrivals and what the notifiers spent meanwhile."""
    stack.sink.poll()  # forget what arrived before
    before = spent(stack, notifiers)
    started = start()
    arrivals, matched_s = await_emails(
        stack,
        wanted,
        expected=expected,
        started=started,
        label=label,
        timeout=timeout,
        matched=matched,
    )

    # The sink accepts an email before the notifier records it (and stages its event): wait for
    # the notifiers to count every email as sent, then for the relay to publish the events.
    def recorded() -> bool:
        sent = [metric_sum(s.url, "hwcollab_notifier_emails_sent_total") for s in notifiers]
        return sum(sent) - sum(before.sent) >= expected

    poll_until(recorded, timeout=120, what="emails recorded as sent", interval=0.2)
    poll_until(outbox_drained(stack, database), timeout=120, what="outbox drained", interval=0.2)
    return Burst(started, arrivals, spent(stack, notifiers) - before, matched_s)


def check_fanout(stack: BenchStack, notifier: Service, opening_id: str, *, expected: int) -> None:
    """Every match sent, once: the notifier's fan-out progress of the opening and the sink agree."""
    answer = httpx.get(
        f"{notifier.url}/api/admin/openings/{opening_id}/fanout",
        headers={"Authorization": f"Bearer {stack.admin_token}"},
        timeout=30.0,
    )
    answer.raise_for_status()
    progress = answer.json()
    if (progress["matches"], progress["sent"]) != (expected, expected):
        raise RuntimeError(f"fan-out of {opening_id}: {progress}, expected {expected} sent")
    recipients = [m.rcpt for m in stack.sink.messages if opening_id in m.opening_ids]
    if len(recipients) != len(set(recipients)):
        raise RuntimeError(f"{len(recipients) - len(set(recipients))} duplicate emails")


def post_opening(http: httpx.Client, employer: Service, token: str, place: Place) -> str:
    answer = http.post(
        f"{employer.url}/api/openings",
        json=opening_fields(place),
        headers={"Authorization": f"Bearer {token}"},
    )
    if answer.status_code != 201:
        raise RuntimeError(f"POST /api/openings: {answer.status_code} {answer.text}")
    opening_id: str = answer.json()["opening_id"]
    return opening_id


def digest_subscribers(place: Place, *, tag: str, size: int, now: datetime) -> list[Any]:
    return [
        SubscriberProfile.model_validate(
            profile.model_dump()
            | {"subscriber_id": f"d{n}-{tag}", "email": f"d{n}-{tag}@example.org"}
            | {"frequency": "daily"}
        )
        for n, profile in enumerate(cluster(place, tag=f"d-{tag}", size=size, now=now))
    ]


class DigestRequest:
    """``POST /api/admin/digests/run`` in a thread: it answers once the whole run is over."""

    def __init__(self, notifier: Service, admin_token: str, *, as_of: datetime, timeout: float):
        self._args = (notifier.url, admin_token, as_of, timeout)
        self._answer: dict[str, Any] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._call, name="digest-run", daemon=True)

    def _call(self) -> None:
        url, token, as_of, timeout = self._args
        try:
            answer = httpx.post(
                f"{url}/api/admin/digests/run",
                params={"as_of": as_of.isoformat()},
                headers={"Authorization": f"Bearer {token}"},
                timeout=timeout,
            )
            answer.raise_for_status()
            self._answer = answer.json()
        except Exception as error:  # raised again in the benchmark's thread by result()
            self._error = error

    def start(self) -> float:
        started = time.time()
        self._thread.start()
        return started

    def result(self) -> dict[str, Any]:
        self._thread.join(self._args[3])
        if self._error is not None:
            raise RuntimeError(f"the digest run failed: {self._error!r}") from self._error
        return self._answer


@dataclass(frozen=True, slots=True)
class Outcome:
    sender: list[Sender]
    one: Burst
    two: Burst
    digests: Burst
    delivery_shares: list[int]


def run_fanout(plan: Plan, workdir: Path) -> Outcome:
    now = datetime.now(UTC)
    begun = time.perf_counter()

    def say(what: str) -> None:
        print(f"fanout: {what} ({time.perf_counter() - begun:.1f} s)", flush=True)

    with embedded_stack(workdir) as stack:
        say("Kafka, MongoDB and the sink started")
        run = stack.run_id
        database = f"bench_notifier_{run}"
        profiles = cluster(PLACE, tag=run, size=plan.immediate, now=now)
        profiles += digest_subscribers(DIGEST_PLACE, tag=run, size=plan.digest, now=now)
        asyncio.run(seed_read_model(stack.mongodb_url, database, profiles, now=now))
        say(f"{len(profiles)} subscribers in the read model")
        senders = [pooled_sender(stack, plan.sender_emails)]
        say(f"pooled sender: {senders[0].emails_per_s:,.0f} emails/s")
        services = stack.start_services(("employer", "notifier"))
        say("employer and notifier ready")
        employer, first = services["employer"], services["notifier"]
        notifiers = [first]
        indexed = metric_sum(first.url, "hwcollab_notifier_index_subscribers")
        if indexed != len(profiles):
            raise RuntimeError(f"the notifier indexed {indexed:.0f} of {len(profiles)} subscribers")
        immediate = {p.email for p in profiles[: plan.immediate]}
        daily = {p.email for p in profiles[plan.immediate :]}
        with httpx.Client(timeout=60.0) as http:
            token = employer_token(http, employer.url, run=run, admin_token=stack.admin_token)

            def burst(label: str) -> Burst:
                opening: list[str] = []

                base = matches(notifiers, "immediate")

                def post() -> float:
                    opening.append(post_opening(http, employer, token, PLACE))
                    return time.time()

                delivered = measured(
                    stack,
                    notifiers,
                    database,
                    post,
                    wanted=lambda m: (
                        bool(opening) and opening[0] in m.opening_ids and m.rcpt in immediate
                    ),
                    expected=plan.immediate,
                    label=label,
                    timeout=plan.timeout,
                    matched=lambda: matches(notifiers, "immediate") >= base + plan.immediate,
                )
                check_fanout(stack, notifiers[0], opening[0], expected=plan.immediate)
                return delivered

            one = burst("1 process: emails")
            say(f"1 process: {one.emails} emails")
            matched = metric_sum(first.url, "hwcollab_notifier_matches_total", channel="digest")
            for _ in range(DIGEST_OPENINGS):
                post_opening(http, employer, token, DIGEST_PLACE)
            poll_until(
                lambda: (
                    metric_sum(first.url, "hwcollab_notifier_matches_total", channel="digest")
                    >= matched + DIGEST_OPENINGS * plan.digest
                ),
                timeout=plan.timeout,
                what="digest matches recorded",
                interval=0.5,
            )
            # Every daily subscriber's latest slot before this instant is after their matches.
            request = DigestRequest(
                first,
                stack.admin_token,
                as_of=datetime.now(UTC) + timedelta(hours=36),
                timeout=plan.timeout,
            )
            digests = measured(
                stack,
                notifiers,
                database,
                request.start,
                wanted=lambda m: m.kind == "digest" and m.rcpt in daily,
                expected=plan.digest,
                label="digests",
                timeout=plan.timeout,
            )
            answer = request.result()
            say(f"digest run: {digests.emails} digests")
            if answer.get("sent") != plan.digest or answer.get("dropped_openings"):
                raise RuntimeError(f"the digest run answered {answer}")

            second = stack.start_service("notifier", dict(first.process.env or {}))
            notifiers.append(second)
            stack.wait_ready(second)
            poll_until(
                lambda: spread(notifiers),
                timeout=180,
                what="opening and delivery partitions spread over both processes",
                interval=0.5,
            )
            say("a second notifier process holds opening and delivery partitions")
            delivery_shares = shares(notifiers, DELIVERY_TOPIC) or []
            two = burst("2 processes: emails")
        senders.append(pooled_sender(stack, plan.sender_emails))
        say("done")
    return Outcome(senders, one, two, digests, delivery_shares)


# --- figures ----------------------------------------------------------------------------------


def figures_of(outcome: Outcome, plan: Plan) -> dict[str, Figure]:
    sender = sum(s.emails_per_s for s in outcome.sender) / len(outcome.sender)
    sender_cpu = sum(s.cpu_us_per_email for s in outcome.sender) / len(outcome.sender)
    one, two, digests = outcome.one, outcome.two, outcome.digests
    rates = ", ".join(f"{s.emails_per_s:,.0f}" for s in outcome.sender)
    n = f"N={plan.immediate:,} immediate subscribers"
    shares = [round(x) for x in two.cost.sent]
    return {
        "emails_per_s": Figure(
            one.rate,
            "emails/s",
            baseline=sender,
            better="higher",
            note=f"{n}, one opening through POST /api/openings, 1 notifier process: emails "
            f"accepted by the sink per second, POST answered → last email; baseline: the pooled "
            f"sender (bench.send.send_pooled, 8 connections) to the same sink in the same run "
            f"(emails/s before and after the phases: {rates})",
        ),
        "fraction_of_sender": Figure(
            one.rate / sender, "×", target=0.5, better="higher", note="emails_per_s / sender"
        ),
        "first_email_s": Figure(
            one.arrivals[0], "s", better="lower", note="POST answered → first email at the sink"
        ),
        "matched_s": Figure(
            one.matched_s if one.matched_s is not None else float("nan"),
            "s",
            better="lower",
            note="POST answered → the notifier has recorded all N matches (its matches_total, "
            "read from /metrics on every poll of the sink): the announcing part of first_email_s",
        ),
        "matched_s_2_processes": Figure(
            two.matched_s if two.matched_s is not None else float("nan"),
            "s",
            better="lower",
            note="the same for the 2-process burst",
        ),
        "first_email_s_2_processes": Figure(
            two.arrivals[0], "s", better="lower", note="POST answered → first email, 2 processes"
        ),
        "last_email_s": Figure(
            one.arrivals[-1], "s", better="lower", note="POST answered → last email at the sink"
        ),
        "digests_per_s": Figure(
            digests.rate,
            "digests/s",
            baseline=sender,
            better="higher",
            note=f"{plan.digest:,} daily subscribers with {DIGEST_OPENINGS} waiting openings "
            "each, POST /api/admin/digests/run → last digest at the sink, 1 process",
        ),
        "digest_fraction_of_sender": Figure(
            digests.rate / sender, "×", target=0.5, better="higher", note="digests_per_s / sender"
        ),
        "mongodb_commands_per_email": Figure(
            one.per_email(one.cost.commands),
            "commands",
            target=0.1,
            better="lower",
            note="hwcollab_mongodb_commands_total of the notifier (a CommandListener on its "
            "client) over the 1-process burst, until its outbox drained, per email",
        ),
        "mongodb_commands_per_digest": Figure(
            digests.per_email(digests.cost.commands),
            "commands",
            target=0.1,
            better="lower",
            note="the same over the digest run, per digest",
        ),
        "kafka_records_per_email": Figure(
            one.per_email(one.cost.records),
            "records",
            target=0.05,
            better="lower",
            note=f"records appended to {DELIVERY_TOPIC} and {NOTIFICATION_TOPIC} (end offsets) "
            "over the 1-process burst, per email",
        ),
        "kafka_records_per_digest": Figure(
            digests.per_email(digests.cost.records),
            "records",
            target=0.05,
            better="lower",
            note="the same over the digest run, per digest",
        ),
        "throughput_ratio_2_vs_1": Figure(
            two.rate / one.rate,
            "×",
            baseline=1.0,
            target=1.0,
            better="higher",
            note=f"a second opening matching the same {n}, 2 notifier processes in one group "
            f"vs 1, on 2 shared cores; delivery partitions per process: "
            f"{outcome.delivery_shares} of {PARTITIONS}; emails sent per process: {shares}",
        ),
        "emails_per_s_2_processes": Figure(
            two.rate, "emails/s", baseline=one.rate, better="higher", note="POST → last email"
        ),
        "notifier_cpu_us_per_email": Figure(
            one.per_email(one.cost.cpu_seconds) * 1e6,
            "µs",
            baseline=sender_cpu,
            better="lower",
            note="user + system CPU of the notifier process over the 1-process burst, per "
            "email (consuming, matching, MongoDB client, composing, SMTP); baseline: the pooled "
            "sender's own process CPU per email, composing included",
        ),
        "mongodb_cpu_us_per_email": Figure(
            one.per_email(one.cost.database_cpu_seconds) * 1e6,
            "µs",
            better="lower",
            note="user + system CPU of the MongoDB server (SecantusDB, shared by the services) "
            "over the 1-process burst, per email; SecantusDB runs its commands on one core at a "
            "time, so 1e6 / this is the most emails/s it can carry",
        ),
        "mongodb_busy_fraction": Figure(
            one.cost.database_cpu_seconds / max(one.arrivals),
            "cores",
            better="lower",
            note="the MongoDB server's CPU over the 1-process burst / its duration (POST → last "
            "email): near 1, the database is what the burst waits for",
        ),
        "mongodb_cpu_us_per_digest": Figure(
            digests.per_email(digests.cost.database_cpu_seconds) * 1e6,
            "µs",
            better="lower",
            note="the same over the digest run, per digest",
        ),
        "notifier_cpu_us_per_digest": Figure(
            digests.per_email(digests.cost.cpu_seconds) * 1e6,
            "µs",
            baseline=sender_cpu,
            better="lower",
            note="the same over the digest run, per digest",
        ),
        "notifier_cpu_us_per_email_2_processes": Figure(
            two.per_email(two.cost.cpu_seconds) * 1e6,
            "µs",
            baseline=sender_cpu,
            better="lower",
            note="both notifier processes together over the 2-process burst, per email",
        ),
    }


def plot(outcome: Outcome, out: Output) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for burst, label in (
        (outcome.one, "1 notifier process"),
        (outcome.two, "2 notifier processes"),
    ):
        ax.step(burst.arrivals, range(1, burst.emails + 1), where="post", label=label)
    ax.set(
        xlabel="seconds since the opening was posted",
        ylabel="emails accepted by the sink",
        title=f"One opening matching {outcome.one.emails:,} immediate subscribers",
    )
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out.results / "fanout_emails.png", dpi=120)
    plt.close(fig)


@benchmark("fanout")
def run(*, quick: bool, out: Output) -> None:
    plan = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as workdir:
        outcome = run_fanout(plan, Path(workdir))
    figures = figures_of(outcome, plan)
    write_result("fanout", figures, out=out)
    plot(outcome, out)
    for key, figure in figures.items():
        print(f"fanout {key}: {figure.value:,.3f} {figure.unit}")
