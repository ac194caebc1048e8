"""Matching benchmark: MatchIndex vs the brute-force reference vs MongoDB ``$geoNear`` + filter.

Synthetic population (seeded, so every run sees the same data):

- **Where.** 85% of subscribers live in one of the ~100 largest US metropolitan areas, picked with
  probability proportional to the metro's rough 2020 Census population (hard-coded below; the
  ``zipcodes`` package has no population figures); within the metro, a ZIP is drawn uniformly among
  the ZIPs whose centroid is within 30 miles of the principal city's centroid. The other 15% get a
  uniformly drawn US ZIP (rural and small-town demand). Openings are placed the same way, since
  employers are where the people are. Coordinates are ZIP centroids from ``zipcodes``.
- **What.** Roles: 40% pick one family (coordination/management/direct support 40/40/20), 15% two
  families, 45% one to three roles, common titles weighted up. Settings empty (any) for half,
  employment types empty for 45%; credentials: none for about half, RN, social worker, CHW, LPN, CCM
  in decreasing shares. Radius 10–250 miles (25 most common), ``remote_ok`` 70%, a minimum hourly
  pay for 40% (16–40 $/h).
- **Frequency.** 40% take their matches in a daily or weekly digest (the reach estimate's split).
- **Openings.** 8% remote (half of those with a place), 60% require no credential, 70% state pay
  (hourly 18–45 or yearly 40–95 k$).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import math
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import zipcodes
from pymongo import AsyncMongoClient
from rich.console import Console
from rich.progress import Progress

from bench.harness import Figure, Output, benchmark, percentile_ms, write_result
from hwcollab_common.geo import EARTH_RADIUS_MILES
from hwcollab_notifier.matching import MatchIndex, OpeningCriteria, SubscriberCriteria, hourly_pay
from hwcollab_notifier.matching.reference import match_all
from hwcollab_notifier.reach import estimate
from hwcollab_schemas.reach import ReachQuery
from hwcollab_schemas.taxonomy import FAMILIES, expand_roles

# (principal city, state, metro population in millions, roughly the 2020 Census MSA counts)
METROS: tuple[tuple[str, str, float], ...] = (
    ("New York", "NY", 20.1), ("Los Angeles", "CA", 13.2), ("Chicago", "IL", 9.6),
    ("Dallas", "TX", 7.6), ("Houston", "TX", 7.1), ("Washington", "DC", 6.4),
    ("Philadelphia", "PA", 6.2), ("Miami", "FL", 6.1), ("Atlanta", "GA", 6.1),
    ("Boston", "MA", 4.9), ("Phoenix", "AZ", 4.8), ("San Francisco", "CA", 4.7),
    ("Riverside", "CA", 4.6), ("Detroit", "MI", 4.4), ("Seattle", "WA", 4.0),
    ("Minneapolis", "MN", 3.7), ("San Diego", "CA", 3.3), ("Tampa", "FL", 3.2),
    ("Denver", "CO", 3.0), ("Baltimore", "MD", 2.8), ("Saint Louis", "MO", 2.8),
    ("Orlando", "FL", 2.7), ("Charlotte", "NC", 2.7), ("San Antonio", "TX", 2.6),
    ("Portland", "OR", 2.5), ("Sacramento", "CA", 2.4), ("Pittsburgh", "PA", 2.4),
    ("Austin", "TX", 2.3), ("Las Vegas", "NV", 2.3), ("Cincinnati", "OH", 2.3),
    ("Kansas City", "MO", 2.2), ("Columbus", "OH", 2.1), ("Indianapolis", "IN", 2.1),
    ("Cleveland", "OH", 2.1), ("San Jose", "CA", 2.0), ("Nashville", "TN", 2.0),
    ("Virginia Beach", "VA", 1.8), ("Providence", "RI", 1.7), ("Jacksonville", "FL", 1.6),
    ("Milwaukee", "WI", 1.6), ("Oklahoma City", "OK", 1.4), ("Raleigh", "NC", 1.4),
    ("Memphis", "TN", 1.3), ("Richmond", "VA", 1.3), ("Louisville", "KY", 1.3),
    ("New Orleans", "LA", 1.3), ("Salt Lake City", "UT", 1.3), ("Hartford", "CT", 1.2),
    ("Buffalo", "NY", 1.2), ("Birmingham", "AL", 1.1), ("Rochester", "NY", 1.1),
    ("Grand Rapids", "MI", 1.1), ("Tucson", "AZ", 1.0), ("Honolulu", "HI", 1.0),
    ("Tulsa", "OK", 1.0), ("Fresno", "CA", 1.0), ("Worcester", "MA", 1.0),
    ("Omaha", "NE", 1.0), ("Bridgeport", "CT", 1.0), ("Greenville", "SC", 0.9),
    ("Albuquerque", "NM", 0.9), ("Bakersfield", "CA", 0.9), ("Albany", "NY", 0.9),
    ("Knoxville", "TN", 0.9), ("El Paso", "TX", 0.9), ("Baton Rouge", "LA", 0.9),
    ("McAllen", "TX", 0.9), ("New Haven", "CT", 0.9), ("Allentown", "PA", 0.9),
    ("Oxnard", "CA", 0.8), ("Columbia", "SC", 0.8), ("Sarasota", "FL", 0.8),
    ("Dayton", "OH", 0.8), ("Charleston", "SC", 0.8), ("Greensboro", "NC", 0.8),
    ("Stockton", "CA", 0.8), ("Cape Coral", "FL", 0.8), ("Boise", "ID", 0.8),
    ("Colorado Springs", "CO", 0.8), ("Little Rock", "AR", 0.7), ("Lakeland", "FL", 0.7),
    ("Akron", "OH", 0.7), ("Des Moines", "IA", 0.7), ("Springfield", "MA", 0.7),
    ("Ogden", "UT", 0.7), ("Madison", "WI", 0.7), ("Winston Salem", "NC", 0.7),
    ("Deltona", "FL", 0.7), ("Syracuse", "NY", 0.7), ("Provo", "UT", 0.7),
    ("Toledo", "OH", 0.6), ("Wichita", "KS", 0.6), ("Durham", "NC", 0.6),
    ("Augusta", "GA", 0.6), ("Palm Bay", "FL", 0.6), ("Jackson", "MS", 0.6),
    ("Harrisburg", "PA", 0.6), ("Spokane", "WA", 0.6), ("Scranton", "PA", 0.6),
    ("Chattanooga", "TN", 0.6), ("Lancaster", "PA", 0.6), ("Modesto", "CA", 0.6),
    ("Portland", "ME", 0.6), ("Fayetteville", "AR", 0.6), ("Lexington", "KY", 0.5),
    ("Anchorage", "AK", 0.4),
)  # fmt: skip
METRO_SHARE = 0.85
METRO_REACH_MILES = 30.0

ROLE_WEIGHTS = {
    "care_coordinator": 14, "community_care_coordinator": 5, "patient_care_coordinator": 5,
    "clinical_care_coordinator": 4, "care_manager": 12, "nurse_care_manager": 6,
    "complex_care_manager": 3, "health_home_care_manager": 4, "case_manager": 14,
    "rn_case_manager": 7, "direct_support_professional": 26,
}  # fmt: skip
CREDENTIAL_SHARES = {"rn": 0.18, "social_worker": 0.15, "chw": 0.08, "lpn": 0.06, "ccm": 0.05}
RADII = (10, 15, 25, 50, 75, 100, 150, 250)
RADIUS_WEIGHTS = (10, 8, 35, 22, 8, 9, 3, 5)
EMPLOYMENT_WEIGHTS = {"full_time": 60, "part_time": 20, "per_diem": 10, "contract": 10}
SETTINGS = ("medical", "behavioral_health", "social_service")


@dataclass(frozen=True, slots=True)
class Places:
    """Candidate ZIP centroids: per metro, and all of them."""

    metro_points: tuple[np.ndarray, ...]
    metro_weights: np.ndarray
    all_points: np.ndarray


@cache
def places() -> Places:
    rows = [z for z in zipcodes.list_all() if z["lat"] and z["long"] and z["active"]]
    everywhere = np.array([(float(z["lat"]), float(z["long"])) for z in rows])
    by_city: dict[tuple[str, str], list[int]] = {}
    for i, z in enumerate(rows):
        by_city.setdefault((z["city"].lower(), z["state"]), []).append(i)
    metro_points = []
    weights = []
    for city, state, millions in METROS:
        members = by_city.get((city.lower(), state))
        if not members:
            raise LookupError(f"no ZIP for metro {city}, {state}")
        lat0, lon0 = everywhere[members].mean(axis=0)
        near = miles_between(everywhere[:, 0], everywhere[:, 1], lat0, lon0) <= METRO_REACH_MILES
        metro_points.append(everywhere[near])
        weights.append(millions)
    total = np.array(weights) / sum(weights)
    return Places(tuple(metro_points), total, everywhere)


def miles_between(lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float) -> np.ndarray:
    phi1, phi2 = np.radians(lat), math.radians(lat0)
    h = (
        np.sin((phi2 - phi1) / 2) ** 2
        + np.cos(phi1) * math.cos(phi2) * np.sin(np.radians(lon0 - lon) / 2) ** 2
    )
    result: np.ndarray = 2 * EARTH_RADIUS_MILES * np.arcsin(np.sqrt(np.minimum(1.0, h)))
    return result


def draw_places(rng: np.random.Generator, n: int) -> np.ndarray:
    where = places()
    points = where.all_points[rng.integers(0, len(where.all_points), n)]
    in_metro = rng.random(n) < METRO_SHARE
    metro = rng.choice(len(where.metro_points), size=n, p=where.metro_weights)
    for m in np.unique(metro[in_metro]):
        chosen = np.flatnonzero(in_metro & (metro == m))
        candidates = where.metro_points[m]
        points[chosen] = candidates[rng.integers(0, len(candidates), len(chosen))]
    return points


def _pick_some(rng: random.Random, shares: dict[str, float]) -> frozenset[str]:
    return frozenset(code for code, share in shares.items() if rng.random() < share)


def _roles(rng: random.Random) -> frozenset[str]:
    families = list(FAMILIES)
    draw = rng.random()
    if draw < 0.40:
        return expand_roles(rng.choices(families, weights=(40, 40, 20)))
    if draw < 0.55:
        return expand_roles(rng.sample(families, 2))
    codes = list(ROLE_WEIGHTS)
    return frozenset(rng.choices(codes, weights=list(ROLE_WEIGHTS.values()), k=rng.randint(1, 3)))


DIGEST_SHARE = 0.4


def subscribers(n: int, *, seed: int) -> list[SubscriberCriteria]:
    """The synthetic population (see the module docstring)."""
    rng = random.Random(seed)
    # A stream of its own, so that adding it left every other draw (and figure) as it was.
    digest = np.random.default_rng(seed + 1).random(n) < DIGEST_SHARE
    points = draw_places(np.random.default_rng(seed), n)
    interned: dict[frozenset[str], frozenset[str]] = {}

    def intern(codes: frozenset[str]) -> frozenset[str]:
        return interned.setdefault(codes, codes)

    people = []
    for i in range(n):
        settings = (
            frozenset()
            if rng.random() < 0.5
            else frozenset(rng.sample(SETTINGS, rng.randint(1, 2)))
        )
        types = (
            frozenset()
            if rng.random() < 0.45
            else frozenset(
                rng.choices(
                    list(EMPLOYMENT_WEIGHTS),
                    weights=list(EMPLOYMENT_WEIGHTS.values()),
                    k=rng.randint(1, 2),
                )
            )
        )
        people.append(
            SubscriberCriteria(
                subscriber_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                roles=intern(_roles(rng)),
                settings=intern(settings),
                credentials=intern(_pick_some(rng, CREDENTIAL_SHARES)),
                employment_types=intern(types),
                lat=float(points[i, 0]),
                lon=float(points[i, 1]),
                radius_miles=rng.choices(RADII, weights=RADIUS_WEIGHTS)[0],
                remote_ok=rng.random() < 0.7,
                min_pay_hourly=None if rng.random() < 0.6 else rng.randint(32, 80) / 2,
                digest=bool(digest[i]),
            )
        )
    return people


def openings(n: int, *, seed: int) -> list[OpeningCriteria]:
    rng = random.Random(seed)
    points = draw_places(np.random.default_rng(seed), n)
    result = []
    for i in range(n):
        remote = rng.random() < 0.08
        placed = not remote or rng.random() < 0.5
        credentials: frozenset[str] = frozenset()
        if rng.random() >= 0.6:
            credentials = frozenset(
                rng.choices(
                    list(CREDENTIAL_SHARES), weights=(5, 4, 2, 2, 1), k=rng.choice((1, 1, 1, 2))
                )
            )
        pay = None
        if rng.random() < 0.7:
            pay = (
                hourly_pay(pay_min=None, pay_max=rng.randint(18, 45), pay_period="hour")
                if rng.random() < 0.6
                else hourly_pay(pay_min=rng.randint(40, 95) * 1000, pay_max=None, pay_period="year")
            )
        result.append(
            OpeningCriteria(
                role=rng.choices(list(ROLE_WEIGHTS), weights=list(ROLE_WEIGHTS.values()))[0],
                setting=rng.choice(SETTINGS),
                required_credentials=credentials,
                employment_type=rng.choices(
                    list(EMPLOYMENT_WEIGHTS), weights=list(EMPLOYMENT_WEIGHTS.values())
                )[0],
                remote=remote,
                lat=float(points[i, 0]) if placed else None,
                lon=float(points[i, 1]) if placed else None,
                pay_max_hourly=pay,
            )
        )
    return result


# -- measurement --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    sizes: tuple[int, ...]
    openings: int
    bruteforce_samples: dict[int, int]
    mongo_samples: dict[int, int]
    update_seconds: float


FULL = Plan(
    sizes=(10_000, 100_000, 1_000_000),
    openings=3000,
    bruteforce_samples={10_000: 100, 100_000: 20, 1_000_000: 7},
    # SecantusDB (the MongoDB server available here) builds a 2dsphere index at a few hundred
    # documents/s and answers $geoNear in seconds at 10k: 100k would take ~10 minutes and 1M hours,
    # so MongoDB is measured at 10k and extrapolated linearly, and the figure says so.
    mongo_samples={10_000: 5},
    update_seconds=20.0,
)
QUICK = Plan(
    sizes=(1_000, 5_000),
    openings=200,
    bruteforce_samples={1_000: 20, 5_000: 10},
    mongo_samples={1_000: 2},
    update_seconds=1.0,
)


def label(n: int) -> str:
    return f"{n // 1_000_000}m" if n >= 1_000_000 else f"{n // 1000}k"


def rss() -> int:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap pages back, so RSS means live
    return int(psutil.Process().memory_info().rss)


@dataclass(slots=True)
class SizeResult:
    n: int
    build_seconds: float = math.nan
    rss_bytes_per_subscriber: float = math.nan
    nbytes_per_subscriber: float = math.nan
    python_bytes_per_subscriber: float = math.nan
    index_seconds: list[float] = field(default_factory=list)
    index_cpu_seconds: list[float] = field(default_factory=list)
    index_with_ids_seconds: list[float] = field(default_factory=list)
    sample_index_seconds: list[float] = field(default_factory=list)
    sample_index_cpu_seconds: list[float] = field(default_factory=list)
    bruteforce_seconds: list[float] = field(default_factory=list)
    bruteforce_cpu_seconds: list[float] = field(default_factory=list)
    bruteforce_disagreements: int = 0
    mongo_seconds: list[float] = field(default_factory=list)
    mongo_index_build_seconds: float = math.nan
    mongo_disagreements: int = 0
    result_sizes: list[int] = field(default_factory=list)
    estimate_seconds: list[float] = field(default_factory=list)
    estimate_cpu_seconds: list[float] = field(default_factory=list)


def measure_index(
    result: SizeResult,
    subs: list[SubscriberCriteria],
    queries: list[OpeningCriteria],
    progress: Progress,
) -> MatchIndex:
    before = rss()
    start = time.perf_counter()
    index = MatchIndex()
    index.build(subs)
    result.build_seconds = time.perf_counter() - start
    result.rss_bytes_per_subscriber = (rss() - before) / result.n
    result.nbytes_per_subscriber = index.nbytes / result.n
    for opening in queries:  # warm the per-query lookup tables
        index.match(opening)
    task = progress.add_task(f"index, N={label(result.n)}", total=len(queries))
    for opening in queries:
        cpu = time.thread_time()
        start = time.perf_counter()
        matched = index.match(opening)
        middle = time.perf_counter()
        result.index_cpu_seconds.append(time.thread_time() - cpu)
        matched.subscriber_ids()
        end = time.perf_counter()
        result.index_seconds.append(middle - start)
        result.index_with_ids_seconds.append(end - start)
        result.result_sizes.append(len(matched))
        progress.advance(task)
    measure_estimates(result, index, queries, progress)
    return index


def reach_query(opening: OpeningCriteria) -> ReachQuery:
    return ReachQuery(
        role=opening.role,
        setting=opening.setting,
        required_credentials=tuple(sorted(opening.required_credentials)),
        employment_type=opening.employment_type,
        remote=opening.remote,
        lat=opening.lat,
        lon=opening.lon,
        pay_max_hourly=opening.pay_max_hourly,
    )


def measure_estimates(
    result: SizeResult, index: MatchIndex, queries: list[OpeningCriteria], progress: Progress
) -> None:
    """The reach estimate of the same openings on the same index, in the same run: the match
    plus one more match per optional criterion relaxed (what the notifier's endpoint does)."""
    asked = [reach_query(opening) for opening in queries]
    task = progress.add_task(f"estimate, N={label(result.n)}", total=len(asked))
    for query in asked:
        cpu = time.thread_time()
        start = time.perf_counter()
        estimate(index, query)
        result.estimate_seconds.append(time.perf_counter() - start)
        result.estimate_cpu_seconds.append(time.thread_time() - cpu)
        progress.advance(task)


def measure_bruteforce(
    result: SizeResult,
    subs: list[SubscriberCriteria],
    index: MatchIndex,
    queries: list[OpeningCriteria],
    progress: Progress,
) -> None:
    """Brute force on a sample, then the index (with id strings) on the same openings, hot: each
    opening 5 times, its median kept, as the brute force's one long run averages out noise."""
    task = progress.add_task(f"brute force, N={label(result.n)}", total=len(queries))
    answers = []
    for opening in queries:
        cpu = time.thread_time()
        start = time.perf_counter()
        answers.append(match_all(subs, opening))
        result.bruteforce_seconds.append(time.perf_counter() - start)
        result.bruteforce_cpu_seconds.append(time.thread_time() - cpu)
        progress.advance(task)
    for opening in queries:
        index.match(opening).subscriber_ids()
    for opening, expected in zip(queries, answers, strict=True):
        wall: list[float] = []
        cpu_times: list[float] = []
        for _ in range(5):
            cpu = time.thread_time()
            start = time.perf_counter()
            got = index.match(opening).subscriber_ids()
            wall.append(time.perf_counter() - start)
            cpu_times.append(time.thread_time() - cpu)
        result.sample_index_seconds.append(statistics.median(wall))
        result.sample_index_cpu_seconds.append(statistics.median(cpu_times))
        result.bruteforce_disagreements += sorted(expected) != sorted(got)


Updates = tuple[list[float], list[float], list[float], list[float], int]


def measure_updates(
    index: MatchIndex,
    subs: list[SubscriberCriteria],
    queries: list[OpeningCriteria],
    seconds: float,
    progress: Progress,
) -> Updates:
    """Match openings back to back while applying 1,000 updates/s (upsert 80%, remove 20%)."""
    rng = random.Random(7)
    fresh = iter(subscribers(int(seconds * 1000) + 1000, seed=99))
    update_times: list[float] = []
    update_cpu_times: list[float] = []
    match_times: list[float] = []
    match_cpu_times: list[float] = []
    rate = 1000.0
    task = progress.add_task("matching under 1,000 updates/s", total=seconds)
    begin = time.perf_counter()
    done = 0
    i = 0
    while (now := time.perf_counter()) - begin < seconds:
        due = int((now - begin) * rate)
        while done < due:
            victim = subs[rng.randrange(len(subs))]
            kind = rng.random()
            cpu = time.thread_time()
            start = time.perf_counter()
            if kind < 0.2:
                index.remove(victim.subscriber_id)
            else:
                newcomer = next(fresh)
                if kind < 0.6:
                    newcomer = replace(newcomer, subscriber_id=victim.subscriber_id)
                index.upsert(newcomer)
            update_times.append(time.perf_counter() - start)
            update_cpu_times.append(time.thread_time() - cpu)
            done += 1
        opening = queries[i % len(queries)]
        i += 1
        cpu = time.thread_time()
        start = time.perf_counter()
        index.match(opening)
        match_times.append(time.perf_counter() - start)
        match_cpu_times.append(time.thread_time() - cpu)
        progress.update(task, completed=min(seconds, time.perf_counter() - begin))
    return update_times, update_cpu_times, match_times, match_cpu_times, done


# -- MongoDB (SecantusDB) -----------------------------------------------------------------------


METERS_PER_MILE = 1609.344


def _document(sub: SubscriberCriteria) -> dict[str, object]:
    return {
        "_id": sub.subscriber_id,
        "roles": sorted(sub.roles),
        "settings": sorted(sub.settings),
        "credentials": sorted(sub.credentials),
        "employment_types": sorted(sub.employment_types),
        "loc": {"type": "Point", "coordinates": [sub.lon, sub.lat]},
        "radius_m": sub.radius_miles * METERS_PER_MILE,
        "remote_ok": sub.remote_ok,
        "min_pay_hourly": sub.min_pay_hourly,
    }


def _filter(opening: OpeningCriteria) -> dict[str, object]:
    clauses: list[dict[str, object]] = [
        {"$or": [{"settings": {"$size": 0}}, {"settings": opening.setting}]},
        {
            "$or": [
                {"employment_types": {"$size": 0}},
                {"employment_types": opening.employment_type},
            ]
        },
    ]
    if opening.pay_max_hourly is not None:
        clauses.append(
            {
                "$or": [
                    {"min_pay_hourly": None},
                    {"min_pay_hourly": {"$lte": opening.pay_max_hourly}},
                ]
            }
        )
    query: dict[str, object] = {"roles": opening.role, "$and": clauses}
    if opening.required_credentials:
        query["credentials"] = {"$all": sorted(opening.required_credentials)}
    return query


async def _mongo_match(collection: Any, opening: OpeningCriteria) -> set[str]:
    found: set[str] = set()
    if opening.lat is not None and opening.lon is not None:
        query = _filter(opening)
        if opening.remote:
            query["remote_ok"] = False
        pipeline = [
            {
                "$geoNear": {
                    "near": {"type": "Point", "coordinates": [opening.lon, opening.lat]},
                    "distanceField": "distance_m",
                    "maxDistance": 250 * METERS_PER_MILE,
                    "query": query,
                    "spherical": True,
                    "key": "loc",
                }
            },
            {"$match": {"$expr": {"$lte": ["$distance_m", "$radius_m"]}}},
            {"$project": {"_id": 1, "distance_m": 1}},
        ]
        cursor = await collection.aggregate(pipeline)
        found.update([doc["_id"] async for doc in cursor])
    if opening.remote:
        cursor = collection.find({**_filter(opening), "remote_ok": True}, {"_id": 1})
        found.update([doc["_id"] async for doc in cursor])
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def secantus() -> Iterator[str]:
    """A SecantusDB server on a free port with its data in a temporary directory."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-mongo-") as data:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "secantusd-py"), "--host", "127.0.0.1",
             "--port", str(port), "--storage-path", data, "--log-level", "WARNING"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            yield f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


async def _measure_mongo(
    url: str,
    result: SizeResult,
    subs: list[SubscriberCriteria],
    queries: list[OpeningCriteria],
    index: MatchIndex,
    progress: Progress,
) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        url, serverSelectionTimeoutMS=30_000
    )
    try:
        collection = client.bench[f"subscribers_{result.n}"]
        task = progress.add_task(f"MongoDB load, N={label(result.n)}", total=len(subs))
        for start in range(0, len(subs), 5000):
            batch = subs[start : start + 5000]
            await collection.insert_many([_document(s) for s in batch], ordered=False)
            progress.advance(task, len(batch))
        begin = time.perf_counter()
        await collection.create_index([("loc", "2dsphere")])
        result.mongo_index_build_seconds = time.perf_counter() - begin
        task = progress.add_task(f"MongoDB $geoNear, N={label(result.n)}", total=len(queries))
        for opening in queries:
            begin = time.perf_counter()
            found = await _mongo_match(collection, opening)
            result.mongo_seconds.append(time.perf_counter() - begin)
            result.mongo_disagreements += found != set(index.match(opening).subscriber_ids())
            progress.advance(task)
        await collection.drop()
    finally:
        await client.close()


def measure_mongo(url: str, *args: Any) -> None:
    asyncio.run(_measure_mongo(url, *args))


# -- the run ------------------------------------------------------------------------------------


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def _extrapolated_mongo(results: list[SizeResult], n: int) -> tuple[float, float, str]:
    """Mongo p50/mean at ``n``: measured if it was, else scaled linearly from the largest N measured
    ($geoNear with a 250-mile reach examines a number of documents proportional to N)."""
    measured = [r for r in results if r.mongo_seconds]
    if not measured:
        return math.nan, math.nan, "not measured"
    at = next((r for r in measured if r.n == n), None)
    if at is not None:
        return (
            percentile_ms(at.mongo_seconds, 50),
            _mean(at.mongo_seconds) * 1e3,
            f"measured at N={label(n)}",
        )
    largest = max(measured, key=lambda r: r.n)
    scale = n / largest.n
    return (
        percentile_ms(largest.mongo_seconds, 50) * scale,
        _mean(largest.mongo_seconds) * 1e3 * scale,
        f"extrapolated ×{scale:g} from {len(largest.mongo_seconds)} openings measured at "
        f"N={label(largest.n)}",
    )


def plot(results: list[SizeResult], out: Output) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    sizes = [r.n for r in results]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(
        sizes, [percentile_ms(r.index_seconds, 50) for r in results], "o-", label="MatchIndex p50"
    )
    ax.plot(
        sizes, [percentile_ms(r.index_seconds, 99) for r in results], "o--", label="MatchIndex p99"
    )
    ax.plot(
        sizes,
        [percentile_ms(r.index_cpu_seconds, 99) for r in results],
        "o-.",
        label="MatchIndex p99, thread CPU time",
    )
    ax.plot(
        sizes,
        [percentile_ms(r.index_with_ids_seconds, 50) for r in results],
        "s:",
        label="MatchIndex + id strings p50",
    )
    ax.plot(
        sizes,
        [percentile_ms(r.bruteforce_seconds, 50) for r in results],
        "^-",
        label="brute force (Python) p50",
    )
    mongo = [(r.n, percentile_ms(r.mongo_seconds, 50)) for r in results if r.mongo_seconds]
    if mongo:
        ax.plot(*zip(*mongo, strict=True), "D-", label="SecantusDB $geoNear p50 (measured)")
        p50, _, _ = _extrapolated_mongo(results, sizes[-1])
        if sizes[-1] not in dict(mongo):
            ax.plot(
                [mongo[-1][0], sizes[-1]],
                [mongo[-1][1], p50],
                "D:",
                mfc="none",
                label="SecantusDB (extrapolated)",
            )
    ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax.axhline(3.0, color="grey", lw=0.8, ls="--")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="subscribers (N)",
        ylabel="ms per opening",
        title="Matching latency per opening",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out.results / "match_latency.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(
        sizes, [r.rss_bytes_per_subscriber for r in results], "o-", label="MatchIndex (RSS growth)"
    )
    ax.plot(
        sizes,
        [r.nbytes_per_subscriber for r in results],
        "s--",
        label="MatchIndex (own array accounting)",
    )
    ax.plot(
        sizes,
        [r.python_bytes_per_subscriber for r in results],
        "^-",
        label="Python criteria objects + id dict",
    )
    ax.axhline(200, color="grey", lw=0.8, ls="--", label="target 200 B")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="subscribers (N)",
        ylabel="bytes per subscriber",
        title="Memory per subscriber",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out.results / "match_memory.png", dpi=120)
    plt.close(fig)


@benchmark("match")
def run(*, quick: bool, out: Output) -> None:
    plan = QUICK if quick else FULL
    console = Console()
    places()  # the ZIP table, loaded once
    queries = openings(plan.openings, seed=2)
    results: list[SizeResult] = []
    index: MatchIndex | None = None
    subs: list[SubscriberCriteria] = []
    updates: Updates = ([], [], [], [], 0)
    with Progress(console=console, transient=False) as progress:
        for n in plan.sizes:
            index = None
            subs = []
            result = SizeResult(n)
            before = rss()
            subs = subscribers(n, seed=1)
            by_id = {s.subscriber_id: s for s in subs}
            result.python_bytes_per_subscriber = (rss() - before) / n
            del by_id
            index = measure_index(result, subs, queries, progress)
            sample = queries[: plan.bruteforce_samples.get(n, 0)]
            measure_bruteforce(result, subs, index, sample, progress)
            if n in plan.mongo_samples:
                with secantus() as url:
                    measure_mongo(
                        url, result, subs, queries[: plan.mongo_samples[n]], index, progress
                    )
            results.append(result)
            console.log(
                f"N={label(n)}: index p50 {percentile_ms(result.index_seconds, 50):.3f} ms, "
                f"p99 {percentile_ms(result.index_seconds, 99):.3f} ms; estimate p99 "
                f"{percentile_ms(result.estimate_seconds, 99):.2f} ms; brute force p50 "
                f"{percentile_ms(result.bruteforce_seconds, 50):.1f} ms; "
                f"{result.rss_bytes_per_subscriber:.0f} B/subscriber (RSS)"
            )
        assert index is not None
        updates = measure_updates(index, subs, queries, plan.update_seconds, progress)
    write_figures(results, updates, out=out)
    plot(results, out)


def write_figures(results: list[SizeResult], updates: Updates, *, out: Output) -> None:
    top = results[-1]
    at = label(top.n)
    update_times, update_cpu_times, busy_match_times, busy_match_cpu_times, applied = updates
    bruteforce_p50 = percentile_ms(top.bruteforce_seconds, 50)
    bruteforce_p99 = percentile_ms(top.bruteforce_seconds, 99)
    mongo_p50, mongo_mean, mongo_note = _extrapolated_mongo(results, top.n)
    index_mean = _mean(top.index_with_ids_seconds) * 1e3
    sampled = f"{len(top.bruteforce_seconds)} openings"
    figures = {
        f"match_p50_ms_{at}": Figure(
            percentile_ms(top.index_seconds, 50),
            "ms",
            bruteforce_p50,
            1.0,
            note=f"{len(top.index_seconds)} openings; baseline: brute-force p50 on {sampled}",
        ),
        f"match_p99_ms_{at}": Figure(
            percentile_ms(top.index_seconds, 99),
            "ms",
            bruteforce_p99,
            3.0,
            note="MatchIndex.match() returning matched rows and distances; baseline: brute force",
        ),
        f"match_with_ids_p50_ms_{at}": Figure(
            percentile_ms(top.index_with_ids_seconds, 50),
            "ms",
            bruteforce_p50,
            None,
            note="match() plus materializing every matched id as a str",
        ),
        f"match_with_ids_p99_ms_{at}": Figure(
            percentile_ms(top.index_with_ids_seconds, 99), "ms", bruteforce_p99, None
        ),
        f"match_speedup_vs_bruteforce_{at}": Figure(
            statistics.median(top.bruteforce_seconds) / statistics.median(top.sample_index_seconds),
            "x",
            1.0,
            300.0,
            "higher",
            note=f"median wall time per opening over the same {sampled}, index including id "
            f"strings; results differed on {top.bruteforce_disagreements}",
        ),
        f"match_speedup_vs_bruteforce_cpu_{at}": Figure(
            statistics.median(top.bruteforce_cpu_seconds)
            / statistics.median(top.sample_index_cpu_seconds),
            "x",
            1.0,
            300.0,
            "higher",
            note="the same, in thread CPU time (work done, without time lost to other processes)",
        ),
        f"match_p99_cpu_ms_{at}": Figure(
            percentile_ms(top.index_cpu_seconds, 99),
            "ms",
            None,
            3.0,
            note="thread CPU time of match(): the same calls without time lost to other processes "
            "on this shared 2-core machine",
        ),
        f"match_speedup_vs_mongodb_{at}": Figure(
            mongo_mean / index_mean,
            "x",
            1.0,
            None,
            "higher",
            note=f"SecantusDB $geoNear + filter, mean per opening, {mongo_note}; index with ids",
        ),
        f"mongodb_p50_ms_{at}": Figure(mongo_p50, "ms", None, None, note=mongo_note),
        f"index_bytes_per_subscriber_{at}": Figure(
            top.rss_bytes_per_subscriber,
            "B",
            top.python_bytes_per_subscriber,
            200.0,
            note="RSS growth of building the index (after gc + malloc_trim); baseline: RSS of the "
            "SubscriberCriteria objects plus an id→object dict",
        ),
        f"index_nbytes_per_subscriber_{at}": Figure(
            top.nbytes_per_subscriber,
            "B",
            None,
            200.0,
            note="the index's own accounting of its arrays and dicts",
        ),
        "index_update_p99_ms": Figure(
            percentile_ms(update_times, 99),
            "ms",
            None,
            1.0,
            note=f"{applied} upserts/removals at 1,000/s while matching, N={at}, merges included",
        ),
        "index_update_p99_cpu_ms": Figure(
            percentile_ms(update_cpu_times, 99),
            "ms",
            None,
            1.0,
            note="thread CPU time of the same updates",
        ),
        f"match_p99_ms_{at}_under_updates": Figure(
            percentile_ms(busy_match_times, 99),
            "ms",
            None,
            3.0,
            note=f"{len(busy_match_times)} matches while 1,000 updates/s apply",
        ),
        f"match_p99_cpu_ms_{at}_under_updates": Figure(
            percentile_ms(busy_match_cpu_times, 99),
            "ms",
            None,
            3.0,
            note="thread CPU time of the same matches",
        ),
        f"estimate_p50_ms_{at}": Figure(
            percentile_ms(top.estimate_seconds, 50),
            "ms",
            percentile_ms(top.index_seconds, 50),
            None,
            note="reach estimate (match, digest split, one match per relaxed criterion) of the "
            "same openings; baseline: match() alone in the same run",
        ),
        f"estimate_p99_ms_{at}": Figure(
            percentile_ms(top.estimate_seconds, 99),
            "ms",
            percentile_ms(top.index_seconds, 99),
            50.0,
            note="the same at p99; baseline: match() p99 in the same run",
        ),
        f"estimate_p99_cpu_ms_{at}": Figure(
            percentile_ms(top.estimate_cpu_seconds, 99),
            "ms",
            percentile_ms(top.index_cpu_seconds, 99),
            50.0,
            note="thread CPU time of the estimates (without time lost to other processes)",
        ),
        f"index_build_s_{at}": Figure(
            top.build_seconds, "s", None, None, note="bulk build from criteria"
        ),
    }
    for r in results[:-1]:
        figures[f"match_p99_ms_{label(r.n)}"] = Figure(
            percentile_ms(r.index_seconds, 99), "ms", percentile_ms(r.bruteforce_seconds, 99), 3.0
        )
        figures[f"estimate_p99_ms_{label(r.n)}"] = Figure(
            percentile_ms(r.estimate_seconds, 99), "ms", percentile_ms(r.index_seconds, 99), 50.0
        )
        if r.mongo_seconds:
            figures[f"mongodb_p50_ms_{label(r.n)}"] = Figure(
                percentile_ms(r.mongo_seconds, 50),
                "ms",
                None,
                None,
                note=f"{len(r.mongo_seconds)} openings; 2dsphere index built in "
                f"{r.mongo_index_build_seconds:.0f} s; "
                f"answers differed from the index on {r.mongo_disagreements}",
            )
    write_result("match", figures, out=out)
