"""Load benchmark: sign-ups, directory and job-board searches and openings posted at once, from
many simulated users, against the embedded stack with all three services as processes.

The stack is ``bench.stack``'s (Kafka, MongoDB, the recording SMTP sink, the subscriber, employer
and notifier services on free ports of 127.0.0.1), with ``EMPLOYER_APPROVAL=manual``. A dozen
employers in as many metros sign up through the API, are approved with the operators' API
(``POST /api/admin/employers/{id}/approve``), sign in for a bearer token and post two openings
each, so that searches find something. Then locust runs **headless in a process of its own**
(``bench/locustfile.py``; never imported here: it patches the standard library with gevent) for a
fixed time, against 127.0.0.1 only: subscribers signing up with new addresses, people searching
the directory and the job board by ZIP, radius and role, and signed-in employers posting openings
(the mix and its weights are in the locustfile). Every request is recorded by the locustfile and
summarized here per endpoint: requests, failures, requests per second over the run, p50/p95/p99.

A failure is any answer other than the one expected (202 for a sign-up, 201 for a post, 200 with
a JSON object or the page for searches; a 429 too), a timeout or a refused connection. The error
rate over every request is the figure with a target: 0.

**Rate limits**: every client here is 127.0.0.1, so the per-client limits (``SIGNUP_RATE_LIMIT``,
``SIGNUP_ADDRESS_RATE_LIMIT``, ``LINK_RATE_LIMIT``, ``LINK_ADDRESS_RATE_LIMIT``,
``LOGIN_RATE_LIMIT``, ``WRITE_RATE_LIMIT``) are raised to 1,000,000/minute for this stack only
(``BenchStack.service_env``); with the defaults most of this load would rightly be answered 429.

**Baseline**, same run, same load: one locust user per service asks it for ``/healthz`` once a
second. That is the latency of a request that does no work on a machine this busy: each
endpoint's percentile is compared with the same percentile of its service's ``/healthz``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.harness import (
    BENCH_DIR,
    REPO_DIR,
    Figure,
    Output,
    benchmark,
    percentile_ms,
    write_result,
)
from bench.stack import BenchStack, Service, embedded_stack

LOCUSTFILE = BENCH_DIR / "locustfile.py"
SERVICES = ("subscriber", "employer", "notifier")
PASSWORD = "a long load-test passphrase"

# (organization, street, city, state, ZIP, settings): one employer per metro.
EMPLOYERS: tuple[tuple[str, str, str, str, str, list[str]], ...] = (
    ("Central Mass Care Partners", "1 Main St", "Worcester", "MA", "01608", ["medical"]),
    ("Cambridge Community Health", "5 Inman St", "Cambridge", "MA", "02139", ["medical"]),
    ("Chelsea Home Care Network", "310 W 23rd St", "New York", "NY", "10001", ["social_service"]),
    ("Lincoln Park Care Management", "2 W Fullerton Ave", "Chicago", "IL", "60614", ["medical"]),
    ("Mission Behavioral Health", "900 Valencia St", "San Francisco", "CA", "94110", []),
    ("Peachtree Care Coordination", "100 Peachtree St", "Atlanta", "GA", "30303", ["medical"]),
    ("Prairie Direct Support", "200 N Walker Ave", "Oklahoma City", "OK", "73102", []),
    ("Puget Sound Care Partners", "1201 3rd Ave", "Seattle", "WA", "98101", ["medical"]),
    ("Capitol Health Home", "10 W 5th St", "Saint Paul", "MN", "55101", ["behavioral_health"]),
    ("Front Range Case Management", "1600 Broadway", "Denver", "CO", "80202", ["social_service"]),
    ("Bayou City Care", "800 Main St", "Houston", "TX", "77002", ["medical"]),
    ("University City Services", "3400 Market St", "Philadelphia", "PA", "19104", []),
)
# Where people live and search: the employers' ZIPs, neighbours of them, and one metro without any.
NEARBY = ("01605", "02118", "11215", "60640", "94612", "30309", "98103", "55407", "80218", "77030")
ZIPS = (*(e[4] for e in EMPLOYERS), *NEARBY, "19147", "85004")

# Names the locustfile gives its requests → the figure keys, and the service each is on.
ENDPOINTS = {
    "POST /api/subscribers": ("signup", "subscriber"),
    "GET /api/directory": ("directory", "employer"),
    "GET /api/openings": ("board", "employer"),
    "GET / (directory page)": ("directory_page", "employer"),
    "POST /api/openings": ("post_opening", "employer"),
}
HEALTH = "GET /healthz ({service})"


@dataclass(frozen=True, slots=True)
class Plan:
    employers: int
    users: int
    spawn_rate: int
    seconds: int


FULL = Plan(employers=len(EMPLOYERS), users=24, spawn_rate=8, seconds=60)
QUICK = Plan(employers=4, users=14, spawn_rate=14, seconds=8)


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    start: float
    """Seconds since the epoch (locust's ``start_time``)."""
    ms: float
    error: str | None


@dataclass(frozen=True, slots=True)
class Summary:
    name: str
    requests: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float

    @classmethod
    def of(cls, name: str, samples: list[Sample], *, seconds: float) -> Summary:
        """Percentiles over every request of the name, failed ones included (as locust does)."""
        times = [s.ms for s in samples]
        p50, p95, p99 = (percentile_ms((t / 1e3 for t in times), q) for q in (50, 95, 99))
        failures = sum(1 for s in samples if s.error is not None)
        return cls(name, len(samples), failures, len(samples) / seconds, p50, p95, p99)


@dataclass(frozen=True, slots=True)
class Outcome:
    summaries: dict[str, Summary]
    failed: list[Sample]
    load_average: tuple[float, float]
    """The 1-minute load average when locust started and when it ended."""

    def machine_note(self) -> str:
        before, after = self.load_average
        cores = os.cpu_count() or 1
        busy = (
            f"; the machine was busy (above its {cores} cores): read each latency against the "
            "/healthz baseline of the same run"
            if max(before, after) > cores
            else ""
        )
        return (
            f"1-minute load average {before:.1f} when the load began, {after:.1f} at its end{busy}"
        )


NO_REQUESTS = Summary("", 0, 0, 0.0, math.nan, math.nan, math.nan)


def seed_employers(stack: BenchStack, employer: Service, *, count: int) -> list[str]:
    """Create the employers and approve them as an operator, post two openings each; their
    bearer tokens."""
    admin = {"Authorization": f"Bearer {stack.admin_token}"}
    tokens = []
    with httpx.Client(base_url=employer.url, timeout=30.0) as http:
        for i, (name, street, city, state, zip_code, settings) in enumerate(EMPLOYERS[:count]):
            email = f"hr{i}-{stack.run_id}@employer{i}.example"
            answer = http.post(
                "/api/admin/employers",
                headers=admin,
                json={
                    "organization_name": name,
                    "contact_email": email,
                    "password": PASSWORD,
                    "description": f"Care coordination and case management in {city}.",
                    "address": {"street": street, "city": city, "state": state, "zip": zip_code},
                    "settings": settings,
                },
            )
            answer.raise_for_status()
            employer_id = answer.json()["employer_id"]
            approved = http.post(f"/api/admin/employers/{employer_id}/approve", headers=admin)
            approved.raise_for_status()
            if approved.json()["status"] != "approved":
                raise RuntimeError(f"employer {employer_id} not approved: {approved.text}")
            answer = http.post("/api/auth/token", json={"email": email, "password": PASSWORD})
            answer.raise_for_status()
            token: str = answer.json()["access_token"]
            for title, role in (
                ("Care Coordinator", "care_coordinator"),
                ("Case Manager", "case_manager"),
            ):
                posted = http.post(
                    "/api/openings",
                    headers={"Authorization": f"Bearer {token}"},
                    json={
                        "title": title,
                        "role": role,
                        "setting": settings[0] if settings else "social_service",
                        "employment_type": "full_time",
                        "zip": zip_code,
                        "pay_min": 20,
                        "pay_max": 26,
                        "pay_period": "hour",
                        "apply_url": f"https://employer{i}.example/jobs/{role}",
                    },
                )
                posted.raise_for_status()
            tokens.append(token)
    return tokens


def run_locust(plan: Plan, *, config: Path, workdir: Path) -> tuple[int, Path]:
    """Run locust headless for ``plan.seconds``; its exit code and log."""
    log = workdir / "locust.log"
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(plan.users),
        "--spawn-rate",
        str(plan.spawn_rate),
        "--run-time",
        f"{plan.seconds}s",
        # Requests under way when the time is up are finished and counted, not cut off.
        "--stop-timeout",
        "30",
        "--only-summary",
        "--csv",
        str(workdir / "locust"),
        "--loglevel",
        "WARNING",
    ]
    env = os.environ | {"HWCOLLAB_LOAD_CONFIG": str(config)}
    with log.open("w") as output:
        done = subprocess.run(
            argv,
            cwd=REPO_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=plan.seconds + 120,
            check=False,
        )
    return done.returncode, log


def read_samples(path: Path) -> list[Sample]:
    return [
        Sample(name, start, ms, error) for name, start, ms, error in json.loads(path.read_text())
    ]


def summarize(samples: list[Sample]) -> dict[str, Summary]:
    """Per request name; requests per second over the run (first request sent → last answer)."""
    span = max(s.start + s.ms / 1e3 for s in samples) - min(s.start for s in samples)
    grouped: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        grouped[sample.name].append(sample)
    return {
        name: Summary.of(name, group, seconds=max(span, 1e-9))
        for name, group in sorted(grouped.items())
    }


def figures_of(outcome: Outcome, plan: Plan) -> dict[str, Figure]:
    summaries = outcome.summaries
    total = sum(s.requests for s in summaries.values())
    failed = sum(s.failures for s in summaries.values())
    figures = {
        "error_rate": Figure(
            failed / total if total else math.nan,
            "",
            target=0.0,
            note=f"{failed} failed of {total} requests; {plan.users} users for {plan.seconds} s "
            "(sign-ups, directory and job-board searches, openings posted), every per-client "
            f"rate limit raised to 1,000,000/minute for this stack; {outcome.machine_note()}",
        )
    }
    for name, (key, service) in ENDPOINTS.items():
        found = summaries.get(name)
        if found is None:
            raise RuntimeError(f"no {name} request was made")
        health = summaries.get(HEALTH.format(service=service), NO_REQUESTS)
        figures |= {
            f"{key}_requests": Figure(found.requests, "requests", note=name),
            f"{key}_failures": Figure(found.failures, "requests", target=0.0),
            f"{key}_rps": Figure(found.rps, "req/s", better="higher"),
            f"{key}_p50_ms": Figure(found.p50, "ms", baseline=health.p50),
            f"{key}_p95_ms": Figure(found.p95, "ms", baseline=health.p95),
            f"{key}_p99_ms": Figure(
                found.p99,
                "ms",
                baseline=health.p99,
                note=f"baseline: GET /healthz of the {service} service under the same load",
            ),
        }
    for service in SERVICES:
        health = summaries.get(HEALTH.format(service=service), NO_REQUESTS)
        figures[f"healthz_{service}_p99_ms"] = Figure(
            health.p99, "ms", note=f"{health.requests} requests, {health.failures} failed"
        )
    return figures


def table(outcome: Outcome, plan: Plan) -> str:
    """``results/load.md``: one row per endpoint."""
    lines = [
        "# Load test",
        "",
        f"{plan.users} locust users for {plan.seconds} s against the three services on "
        f"127.0.0.1 (`python -m bench --only load`); {outcome.machine_note()}. Per-client rate "
        "limits raised to 1,000,000/minute for this stack. Baseline rows: `/healthz` of each "
        "service under the same load. Percentiles include failed requests (there were "
        f"{len(outcome.failed)}).",
        "",
        "| endpoint | requests | failures | req/s | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in outcome.summaries.values():
        lines.append(
            f"| `{s.name}` | {s.requests} | {s.failures} | {s.rps:.1f} | {s.p50:.0f} | "
            f"{s.p95:.0f} | {s.p99:.0f} |"
        )
    return "\n".join(lines) + "\n"


def run_load(plan: Plan, workdir: Path) -> Outcome:
    started = time.perf_counter()
    with embedded_stack(workdir) as stack:
        services = stack.start_services(SERVICES, extra={"EMPLOYER_APPROVAL": "manual"})
        print(f"load: stack ready in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        tokens = seed_employers(stack, services["employer"], count=plan.employers)
        print(f"load: {len(tokens)} employers seeded in {time.perf_counter() - started:.1f} s")
        samples_path = workdir / "samples.json"
        config = workdir / "load.json"
        config.write_text(
            json.dumps(
                {
                    "subscriber_url": services["subscriber"].url,
                    "employer_url": services["employer"].url,
                    "notifier_url": services["notifier"].url,
                    "employer_tokens": tokens,
                    "zips": list(ZIPS),
                    "run_id": stack.run_id,
                    "samples_path": str(samples_path),
                }
            )
        )
        started, before = time.perf_counter(), os.getloadavg()[0]
        code, log = run_locust(plan, config=config, workdir=workdir)
        after = os.getloadavg()[0]
        print(f"load: locust ran {time.perf_counter() - started:.1f} s, exit code {code}")
        if not samples_path.exists():
            raise RuntimeError(f"locust wrote no samples (exit {code}):\n{log.read_text()[-4000:]}")
        samples = read_samples(samples_path)
        summaries = summarize(samples)
        failed = [s for s in samples if s.error is not None]
        if code != 0 and not failed:
            raise RuntimeError(f"locust failed (exit {code}):\n{log.read_text()[-4000:]}")
        # Still ready after the load: Kafka and MongoDB reachable, consumers running.
        stack.wait_ready(*services.values())
    return Outcome(summaries, failed, (before, after))


@benchmark("load")
def run(*, quick: bool, out: Output) -> None:
    plan = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="bench-load-") as workdir:
        outcome = run_load(plan, Path(workdir))
    write_result("load", figures_of(outcome, plan), out=out)
    (out.results / "load.md").write_text(table(outcome, plan))
    for s in outcome.summaries.values():
        print(
            f"load {s.name}: {s.requests} requests, {s.failures} failed, {s.rps:.1f}/s, "
            f"p50 {s.p50:.0f} ms, p95 {s.p95:.0f} ms, p99 {s.p99:.0f} ms"
        )
    for sample in outcome.failed[:10]:
        print(f"load failure: {sample.name}: {sample.error}")
    if quick and outcome.failed:
        raise RuntimeError(f"{len(outcome.failed)} requests failed under load")
