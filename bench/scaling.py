"""Scaling benchmark: notifier throughput with one process vs two in one consumer group, on a
burst of openings, with the embedded stack (Kafka, MongoDB, recording SMTP sink).

S immediate subscribers at one ZIP are in the notifier's read model (written with the notifier's
own repository, so no welcome emails are pending). For each configuration, 1 then 2 notifier
processes start in consumer groups of their own (fresh groups whose offsets start at the end of
every topic, so nothing earlier is replayed), and once the group has spread the opening and
delivery partitions over every process, N ``opening.posted`` events are published at once, each
matching all S subscribers. Throughput = N × S emails / (burst published → last of them accepted
by the sink). Figure: the ratio of the two; baseline 1.0 (no gain).
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.progress import Progress

from bench.e2e import Place, cluster, opening_details, publish, seed_read_model
from bench.harness import Figure, Output, benchmark, write_result
from bench.stack import PARTITIONS, BenchStack, Service, embedded_stack, metric_sum, poll_until
from hwcollab_schemas.events import OpeningPosted
from hwcollab_schemas.topics import (
    DELIVERY_TOPIC,
    OPENING_TOPIC,
)
from hwcollab_testing.kafka import fresh_notifier_groups

PLACE = Place(zip="55101", lat=44.9509, lon=-93.0925, timezone="America/Chicago")
# The message may be followed by structured fields (or colour codes) on the same line.
_ASSIGNED = re.compile(
    r"Consumer (\S+) assigned to partitions: \(((?:TopicPartition\([^)]*\)(?:, )?)*)\)"
)
_PARTITION = re.compile(r"TopicPartition\(topic='([^']+)', partition=(\d+)\)")


@dataclass(frozen=True, slots=True)
class Plan:
    subscribers: int
    openings: int
    timeout: float


FULL = Plan(subscribers=150, openings=8, timeout=900)
QUICK = Plan(subscribers=30, openings=3, timeout=180)


def holdings(service: Service, topic: str) -> list[set[int]]:
    """The partitions of ``topic`` each consumer of the process holds, as last logged by
    FastStream ("Consumer <member> assigned to partitions: (...)", empty when it holds none)."""
    text = service.process.log_path.read_text(errors="replace")
    members: dict[str, set[int]] = {}
    for member, listed in _ASSIGNED.findall(text):
        found = {int(p) for t, p in _PARTITION.findall(listed) if t == topic}
        if found or (not listed.strip() and member in members):
            members[member] = found
    return list(members.values())


def shares(services: list[Service], topic: str) -> list[int] | None:
    """Partitions of ``topic`` per process once the group has settled (each partition held by
    exactly one consumer); None while it has not."""
    held = [holdings(s, topic) for s in services]
    every = [p for process in held for member in process for p in member]
    if sorted(every) != list(range(PARTITIONS)):
        return None
    return [sum(len(member) for member in process) for process in held]


def spread(services: list[Service]) -> bool:
    """The group has settled on both topics, and every process reads some opening partitions."""
    openings = shares(services, OPENING_TOPIC)
    return openings is not None and all(openings) and shares(services, DELIVERY_TOPIC) is not None


def burst(
    stack: BenchStack, processes: int, plan: Plan, *, database: str
) -> tuple[float, list[int], list[int]]:
    """Emails per second with ``processes`` notifier processes in one group, how many delivery
    partitions each process held and how many emails each sent."""
    suffix = asyncio.run(fresh_notifier_groups(stack.kafka_bootstrap, label="bench"))
    public = {"subscriber": "http://127.0.0.1:8001", "employer": "http://127.0.0.1:8002"}
    env = stack.service_env("notifier", public_urls=public) | {
        "MONGODB_DATABASE": database,
        "CONSUMER_GROUP_SUFFIX": suffix,
    }
    services = [stack.start_service("notifier", env) for _ in range(processes)]
    try:
        stack.wait_ready(*services)
        poll_until(lambda: spread(services), timeout=120, what="partitions spread", interval=0.5)
        delivery = shares(services, DELIVERY_TOPIC) or []
        tag = f"{processes}p-{stack.run_id}"
        ids = {f"burst{i}-{tag}" for i in range(plan.openings)}
        now = datetime.now(UTC)
        events = [
            OpeningPosted.create(
                opening_details(PLACE, opening_id=opening_id, now=now),
                producer="bench",
                occurred_at=now,
            )
            for opening_id in sorted(ids)
        ]
        expected = plan.openings * plan.subscribers
        stack.sink.poll()
        arrived: list[float] = []
        start = time.time()
        asyncio.run(publish(stack.kafka_bootstrap, events))
        with Progress() as progress:
            task = progress.add_task(f"{processes} process(es): emails", total=expected)

            def all_sent() -> bool:
                arrived.extend(
                    m.at for m in stack.sink.poll() if m.opening_ids and m.opening_ids[0] in ids
                )
                progress.update(task, completed=len(arrived))
                return len(arrived) >= expected

            poll_until(all_sent, timeout=plan.timeout, what="burst emails", interval=0.1)
        sent = [
            int(metric_sum(s.url, "hwcollab_notifier_emails_sent_total", kind="immediate"))
            for s in services
        ]
        return expected / (max(arrived) - start), delivery, sent
    finally:
        for service in services:
            stack.stop_service(service)


def run_scaling(plan: Plan, workdir: Path) -> dict[str, Figure]:
    now = datetime.now(UTC)
    with embedded_stack(workdir) as stack:
        database = f"bench_notifier_{stack.run_id}"
        profiles = cluster(PLACE, tag=stack.run_id, size=plan.subscribers, now=now)
        asyncio.run(seed_read_model(stack.mongodb_url, database, profiles, now=now))
        one, _, _ = burst(stack, 1, plan, database=database)
        two, delivery, sent = burst(stack, 2, plan, database=database)
    note = (
        f"{plan.openings} openings × {plan.subscribers} immediate subscribers, published at once; "
        "emails accepted by the sink per second, burst published → last email"
    )
    return {
        "throughput_ratio_2_vs_1": Figure(
            two / one,
            "×",
            baseline=1.0,
            better="higher",
            note="2 notifier processes in one consumer group vs 1, on 2 shared cores; delivery "
            f"partitions per process with 2: {delivery} of {PARTITIONS}, emails sent per "
            f"process: {sent}",
        ),
        "emails_per_s_1_process": Figure(one, "emails/s", better="higher", note=note),
        "emails_per_s_2_processes": Figure(two, "emails/s", baseline=one, better="higher"),
    }


@benchmark("scaling")
def run(*, quick: bool, out: Output) -> None:
    plan = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as workdir:
        figures = run_scaling(plan, Path(workdir))
    write_result("scaling", figures, out=out)
    for key, figure in figures.items():
        print(f"scaling {key}: {figure.value:,.2f} {figure.unit}")
