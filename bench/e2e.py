"""End-to-end benchmark: from ``POST /api/openings`` returning to the first matching email
accepted by the SMTP sink, with the embedded stack (Kafka, MongoDB, employer and notifier
services as processes, a recording sink) and N subscribers in the notifier's index.

The subscribers are written into the notifier's read model with its own repository
(``NotifierRepository.save_subscriber``, as its consumer does) before it starts, and its match
index loads them at startup. Registering 10k of them through Kafka would take the notifier's
consumer about half an hour on this machine (one SecantusDB transaction and one welcome email per
registration, ~6/s); that path is what the ``ingest`` benchmark measures. The population is
``bench.match``'s (metros, roles, radii, pay), 2 % of it immediate and the rest on digests, plus
a cluster of immediate subscribers at each measured opening's ZIP so that every opening has
immediate matches.

Openings are posted one at a time, each after the previous one's immediate emails have all been
sent (the notifier's metrics say so): the latency of an opening on an otherwise idle stack.

**Baseline**, same run, same notifier: ``opening.posted`` events published straight to Kafka
(no HTTP request, no employer transaction, no outbox relay), timed from the broker's
acknowledgement to the first matching email: the notifier's own share of the path.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient
from rich.progress import Progress

from bench import match
from bench.harness import Figure, Output, benchmark, percentile_ms, write_result
from bench.stack import BenchStack, Service, embedded_stack, index_size, metric_sum, poll_until
from hwcollab_common.geo import lookup_zip
from hwcollab_notifier.repository import NotifierRepository
from hwcollab_schemas import Event
from hwcollab_schemas.events import (
    OpeningDetails,
    OpeningPosted,
    SubscriberProfile,
)

TARGET_P99_MS = 1000.0
CLUSTER = 3
IMMEDIATE_SHARE = 0.02
OPENING_ROLE = "care_manager"
SEED_CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class Place:
    zip: str
    lat: float
    lon: float
    timezone: str


@cache
def _zip_places() -> dict[tuple[float, float], Place]:
    import zipcodes

    timezone = "America/New_York"
    places: dict[tuple[float, float], Place] = {}
    for row in zipcodes.list_all():  # type: ignore[no-untyped-call]
        if row["lat"] and row["long"] and row["active"]:
            point = (float(row["lat"]), float(row["long"]))
            places.setdefault(point, Place(row["zip_code"], *point, row["timezone"] or timezone))
    return places


def place_at(lat: float, lon: float) -> Place:
    """The ZIP whose centroid ``bench.match`` drew this point from."""
    return _zip_places()[(lat, lon)]


def population(n: int, *, run: str, seed: int, now: datetime) -> list[SubscriberProfile]:
    """``bench.match``'s synthetic subscribers as full profiles; 2 % immediate."""
    rng = random.Random(seed)
    profiles = []
    for i, who in enumerate(match.subscribers(n, seed=seed)):
        where = place_at(who.lat, who.lon)
        profiles.append(
            SubscriberProfile(
                subscriber_id=f"s{i}-{run}",
                version=1,
                email=f"s{i}-{run}@example.org",
                first_name=("Pat", "Jordan", None, "María")[i % 4],
                roles=tuple(sorted(who.roles)),
                settings=tuple(sorted(who.settings)),
                credentials=tuple(sorted(who.credentials)),
                employment_types=tuple(sorted(who.employment_types)),
                zip=where.zip,
                lat=where.lat,
                lon=where.lon,
                timezone=where.timezone,
                radius_miles=who.radius_miles,
                remote_ok=who.remote_ok,
                min_pay_hourly=who.min_pay_hourly,
                frequency="immediate"
                if rng.random() < IMMEDIATE_SHARE
                else rng.choice(("daily", "weekly")),
                confirmed_at=now,
            )
        )
    return profiles


def opening_places(n: int, *, seed: int) -> list[Place]:
    """Where the measured openings are: drawn like the population (mostly metros), among the
    ZIPs the employer service accepts, at the coordinates it gives them."""
    points = match.draw_places(np.random.default_rng(seed + 1), 3 * n)
    chosen = []
    for lat, lon in points:
        known = lookup_zip(place_at(float(lat), float(lon)).zip)
        if known is not None:
            chosen.append(Place(known.zip, known.lat, known.lon, known.timezone))
    if len(chosen) < n:
        raise RuntimeError(f"only {len(chosen)} of {3 * n} drawn ZIPs are locatable")
    return chosen[:n]


def cluster(place: Place, *, tag: str, size: int, now: datetime) -> list[SubscriberProfile]:
    """``size`` immediate subscribers at ``place`` who match any care-manager opening there."""
    return [
        SubscriberProfile(
            subscriber_id=f"c{k}-{tag}",
            version=1,
            email=f"c{k}-{tag}@example.org",
            roles=("care_management",),
            zip=place.zip,
            lat=place.lat,
            lon=place.lon,
            timezone=place.timezone,
            radius_miles=25,
            frequency="immediate",
            confirmed_at=now,
        )
        for k in range(size)
    ]


async def publish(bootstrap: str, events: Iterable[Event]) -> None:
    """Publish events (keyed like the services do) and wait for every acknowledgement."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        pending = [
            await producer.send(event.topic, event.to_bytes(), key=event.key.encode())
            for event in events
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def started_producer(bootstrap: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    return producer


def opening_details(place: Place, *, opening_id: str, now: datetime) -> OpeningDetails:
    return OpeningDetails(
        opening_id=opening_id,
        employer_id="bench-employer",
        version=1,
        organization_name="Benchmark Care Partners",
        employer_approved=True,
        title="Care Manager",
        role=OPENING_ROLE,
        setting="medical",
        employment_type="full_time",
        zip=place.zip,
        lat=place.lat,
        lon=place.lon,
        pay_min=28,
        pay_max=34,
        apply_url="https://bench.example/apply",
        posted_at=now,
        expires_at=now + timedelta(days=30),
    )


def opening_fields(place: Place) -> dict[str, object]:
    return {
        "title": "Care Manager",
        "role": OPENING_ROLE,
        "setting": "medical",
        "employment_type": "full_time",
        "zip": place.zip,
        "pay_min": 28,
        "pay_max": 34,
        "pay_period": "hour",
        "description": "Coordinate care for adults with complex needs.",
        "apply_url": "https://bench.example/apply",
    }


def employer_token(http: httpx.Client, employer_url: str, *, run: str, admin_token: str) -> str:
    """A new (auto-approved) employer account, created by an operator, and a bearer token."""
    email, password = f"hr-{run}@bench.example", "a long benchmark passphrase"
    answer = http.post(
        f"{employer_url}/api/admin/employers",
        headers={"Authorization": f"Bearer {admin_token}"},
        json={
            "organization_name": "Benchmark Care Partners",
            "contact_email": email,
            "password": password,
            "description": "Care coordination benchmark.",
            "address": {"street": "1 Main St", "city": "Worcester", "state": "MA", "zip": "01608"},
            "settings": ["medical"],
        },
    )
    answer.raise_for_status()
    answer = http.post(
        f"{employer_url}/api/auth/token", json={"email": email, "password": password}
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def immediate_settled(notifier_url: str) -> bool:
    """Every immediate (subscriber, opening) pair matched so far has been sent (or skipped)."""
    name = "hwcollab_notifier_"
    matched = metric_sum(notifier_url, f"{name}matches_total", channel="immediate")
    done = (
        metric_sum(notifier_url, f"{name}emails_sent_total", kind="immediate")
        + metric_sum(notifier_url, f"{name}emails_skipped_total", kind="immediate")
        + metric_sum(notifier_url, f"{name}emails_failed_total", kind="immediate")
    )
    return done >= matched


async def seed_read_model(
    mongodb_url: str, database: str, profiles: list[SubscriberProfile], *, now: datetime
) -> None:
    """Write the profiles into the notifier's read model with its own repository, as its
    consumer would (without the welcome email: these subscribers were welcomed long ago)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        repository = NotifierRepository(client[database])
        await repository.ensure_indexes()
        pending = iter(profiles)

        async def writer() -> None:
            for profile in pending:
                await repository.save_subscriber(
                    profile, now=now, welcome_pending=None, session=None
                )

        await asyncio.gather(*(writer() for _ in range(SEED_CONCURRENCY)))
    finally:
        await client.close()


def first_arrival(stack: BenchStack, opening_id: str, *, timeout: float = 60.0) -> float:
    """The sink's arrival time of the first email announcing ``opening_id``."""
    found: list[float] = []

    def arrived() -> bool:
        found.extend(m.at for m in stack.sink.poll() if opening_id in m.opening_ids)
        return bool(found)

    poll_until(arrived, timeout=timeout, what=f"first email for {opening_id}", interval=0.01)
    return min(found)


def measure(
    stack: BenchStack,
    notifier: Service,
    places: list[Place],
    *,
    label: str,
    post: Callable[[int, Place], str],
) -> list[float]:
    """Seconds from each opening's ``post`` returning to its first email, one at a time."""
    latencies = []
    with Progress() as progress:
        task = progress.add_task(label, total=len(places))
        for i, place in enumerate(places):
            poll_until(
                lambda: immediate_settled(notifier.url),
                timeout=120,
                what="previous opening's emails",
            )
            opening_id = post(i, place)
            posted = time.time()
            latencies.append(first_arrival(stack, opening_id) - posted)
            progress.advance(task)
    return latencies


@dataclass(frozen=True, slots=True)
class Plan:
    subscribers: int
    openings: int
    baseline_openings: int


FULL = Plan(subscribers=10_000, openings=200, baseline_openings=100)
QUICK = Plan(subscribers=200, openings=10, baseline_openings=10)


def run_e2e(plan: Plan, workdir: Path) -> dict[str, Figure]:
    now = datetime.now(UTC)
    with embedded_stack(workdir) as stack:
        run = stack.run_id
        places = opening_places(plan.openings, seed=11)
        measured, direct = places, places[: plan.baseline_openings]
        profiles = population(plan.subscribers - CLUSTER * len(places), run=run, seed=7, now=now)
        for i, place in enumerate(places):
            profiles += cluster(place, tag=f"{i}-{run}", size=CLUSTER, now=now)
        started = time.perf_counter()
        asyncio.run(seed_read_model(stack.mongodb_url, f"bench_notifier_{run}", profiles, now=now))
        services = stack.start_services(("employer", "notifier"))
        employer, notifier = services["employer"], services["notifier"]
        indexed = index_size(notifier.url)
        if indexed != len(profiles):
            raise RuntimeError(f"the notifier indexed {indexed} of {len(profiles)} subscribers")
        load_seconds = time.perf_counter() - started
        print(f"e2e: {indexed} subscribers in the read model and the index in {load_seconds:.1f} s")

        with httpx.Client(timeout=30.0) as http:
            token = employer_token(http, employer.url, run=run, admin_token=stack.admin_token)
            headers = {"Authorization": f"Bearer {token}"}

            def post_via_api(i: int, place: Place) -> str:
                answer = http.post(
                    f"{employer.url}/api/openings", json=opening_fields(place), headers=headers
                )
                if answer.status_code != 201:
                    raise RuntimeError(f"POST /api/openings: {answer.status_code} {answer.text}")
                opening_id: str = answer.json()["opening_id"]
                return opening_id

            # One opening first, not timed: the first request warms every code path.
            warm_up = post_via_api(0, measured[0])
            first_arrival(stack, warm_up)
            api = measure(stack, notifier, measured, label="POST /api/openings", post=post_via_api)

        with asyncio.Runner() as runner:
            producer = runner.run(started_producer(stack.kafka_bootstrap))

            def post_to_kafka(i: int, place: Place) -> str:
                opening_id = f"direct{i}-{run}"
                now = datetime.now(UTC)
                event = OpeningPosted.create(
                    opening_details(place, opening_id=opening_id, now=now),
                    producer="bench",
                    occurred_at=now,
                )
                runner.run(
                    producer.send_and_wait(event.topic, event.to_bytes(), key=event.key.encode())
                )
                return opening_id

            try:
                direct_latencies = measure(
                    stack, notifier, direct, label="opening.posted to Kafka", post=post_to_kafka
                )
            finally:
                runner.run(producer.stop())

    base_p50, base_p99 = percentile_ms(direct_latencies, 50), percentile_ms(direct_latencies, 99)
    setup = (
        f"{len(profiles)} subscribers ({CLUSTER} immediate at each opening's ZIP), "
        f"{len(api)} openings posted one at a time on an idle stack"
    )
    return {
        "e2e_p50_ms": Figure(
            percentile_ms(api, 50),
            "ms",
            baseline=base_p50,
            better="lower",
            note=f"{setup}; baseline: opening.posted published straight to Kafka "
            f"({len(direct_latencies)} openings), the notifier's share of the path",
        ),
        "e2e_p99_ms": Figure(
            percentile_ms(api, 99),
            "ms",
            baseline=base_p99,
            target=TARGET_P99_MS,
            better="lower",
            note="POST /api/openings returned → first matching email accepted by the sink",
        ),
        "e2e_max_ms": Figure(max(api) * 1e3, "ms", baseline=max(direct_latencies) * 1e3),
        "subscriber_load_s": Figure(
            load_seconds,
            "s",
            note="read model written with the notifier's repository, services started, "
            "index loaded",
        ),
    }


@benchmark("e2e")
def run(*, quick: bool, out: Output) -> None:
    plan = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as workdir:
        figures = run_e2e(plan, Path(workdir))
    write_result("e2e", figures, out=out)
    for key, figure in figures.items():
        print(f"e2e {key}: {figure.value:,.1f} {figure.unit} (baseline {figure.baseline})")
