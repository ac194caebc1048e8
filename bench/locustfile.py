"""Users of the load benchmark (``bench/load.py``), run by locust in a process of its own.

Never imported by the benchmark or by pytest: locust patches the standard library with gevent.
``bench/load.py`` starts the stack, seeds approved employers and writes a JSON configuration whose
path is in ``HWCOLLAB_LOAD_CONFIG``: the three services' URLs, bearer tokens of the seeded
employers, the ZIPs people live and search at, and where to write the samples.

Users of three kinds, each against its own service (``host`` per class, no ``--host``):

- ``Subscriber``: signs up on the subscriber service with a new address each time, a ZIP, roles,
  radius and frequency drawn like real sign-ups (the confirmation step is not taken).
- ``Seeker``: searches the employer service's directory and job board (API and the directory
  page) by ZIP, radius and now and then a role or setting.
- ``Employer``: a signed-in employer posting openings with its bearer token.

Plus one probe per service asking it for ``/healthz`` once a second: the baseline, measured under
the same load in the same run. Every request is recorded (name, start, milliseconds, error) and
written as JSON when the test stops.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import uuid
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, constant, events, task

CONFIG: dict[str, Any] = json.loads(Path(os.environ["HWCOLLAB_LOAD_CONFIG"]).read_text())
ZIPS: list[str] = CONFIG["zips"]
RUN: str = CONFIG["run_id"]

SIGN_UP = "POST /api/subscribers"
DIRECTORY = "GET /api/directory"
BOARD = "GET /api/openings"
DIRECTORY_PAGE = "GET / (directory page)"
POST_OPENING = "POST /api/openings"
HEALTH = "GET /healthz ({service})"

FIRST_NAMES = ("Pat", "Jordan", "María", "Sam", "Aisha", "Wei", "Dana", "José", None)
ROLE_CHOICES = (
    ["care_coordination"],
    ["care_management"],
    ["direct_support"],
    ["care_coordination", "care_management"],
    ["case_manager", "rn_case_manager"],
    ["community_care_coordinator"],
    ["health_home_care_manager", "complex_care_manager"],
)
SETTINGS = ("medical", "behavioral_health", "social_service")
OPENINGS = (
    ("Care Coordinator", "care_coordinator", "social_service", (18, 24)),
    ("Community Care Coordinator", "community_care_coordinator", "social_service", (19, 25)),
    ("RN Care Manager", "nurse_care_manager", "medical", (38, 46)),
    ("Complex Care Manager", "complex_care_manager", "medical", (34, 42)),
    ("Case Manager", "case_manager", "behavioral_health", (22, 28)),
    ("Direct Support Professional", "direct_support_professional", "social_service", (16, 20)),
)
SEARCH_WORDS = (None, None, None, "care", "coordinator", "nurse")

_samples: list[tuple[str, float, float, str | None]] = []
_addresses = itertools.count()
_tokens = itertools.cycle(CONFIG["employer_tokens"])


def _record(
    name: str, response_time: float, exception: BaseException | None = None, **kwargs: Any
) -> None:
    start = kwargs.get("start_time") or 0.0
    error = None if exception is None else f"{type(exception).__name__}: {exception}"[:300]
    _samples.append((name, float(start), float(response_time), error))


def _save(**_: Any) -> None:
    Path(CONFIG["samples_path"]).write_text(json.dumps(_samples))


events.request.add_listener(_record)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_save)  # type: ignore[no-untyped-call]


def _search(rng: random.Random, *, roles: bool = True) -> dict[str, str]:
    query = {"zip": rng.choice(ZIPS), "radius_miles": str(rng.choice((10, 25, 25, 50, 100)))}
    if roles and rng.random() < 0.4:
        query["role"] = rng.choice(("care_coordination", "care_management", "case_manager"))
    if rng.random() < 0.2:
        query["setting"] = rng.choice(SETTINGS)
    word = rng.choice(SEARCH_WORDS)
    if word:
        query["q"] = word
    return query


class _User(FastHttpUser):
    abstract = True
    network_timeout = 30.0
    connection_timeout = 30.0
    service = ""

    def on_start(self) -> None:
        self.rng = random.Random()

    def _json(self, method: str, path: str, *, name: str, expect: int, **options: Any) -> None:
        """One request that must answer ``expect`` with a JSON object, else a failure."""
        with self.client.request(method, path, name=name, catch_response=True, **options) as r:
            if r.status_code != expect:
                r.failure(f"status {r.status_code}: {(r.text or '')[:200]}")
            elif not isinstance(r.json(), dict):
                r.failure("not a JSON object")


class Subscriber(_User):
    host = CONFIG["subscriber_url"]
    weight = 3
    wait_time = between(0.5, 1.5)

    @task
    def sign_up(self) -> None:
        rng = self.rng
        body: dict[str, object] = {
            "email": f"cc{next(_addresses)}.{uuid.uuid4().hex[:8]}.{RUN}@example.org",
            "first_name": rng.choice(FIRST_NAMES),
            "roles": rng.choice(ROLE_CHOICES),
            "zip": rng.choice(ZIPS),
            "radius_miles": rng.choice((10, 25, 25, 50, 100)),
            "frequency": rng.choice(("immediate", "daily", "daily", "weekly")),
        }
        if rng.random() < 0.3:
            body["settings"] = rng.sample(SETTINGS, rng.randint(1, 2))
        self._json("POST", "/api/subscribers", name=SIGN_UP, expect=202, json=body)


class Seeker(_User):
    host = CONFIG["employer_url"]
    weight = 6
    wait_time = between(0.5, 1.5)

    @task(3)
    def directory(self) -> None:
        query = _search(self.rng)
        self._json("GET", "/api/directory", name=DIRECTORY, expect=200, params=query)

    @task(3)
    def board(self) -> None:
        query = _search(self.rng)
        self._json("GET", "/api/openings", name=BOARD, expect=200, params=query)

    @task(2)
    def directory_page(self) -> None:
        query = _search(self.rng, roles=False)
        with self.client.get("/", params=query, name=DIRECTORY_PAGE, catch_response=True) as r:
            if r.status_code != 200 or "Find a Local Employer" not in (r.text or ""):
                r.failure(f"status {r.status_code}")


class Employer(_User):
    host = CONFIG["employer_url"]
    weight = 2
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        super().on_start()
        self.headers = {"Authorization": f"Bearer {next(_tokens)}"}

    @task
    def post_opening(self) -> None:
        rng = self.rng
        title, role, setting, (low, high) = rng.choice(OPENINGS)
        body: dict[str, object] = {
            "title": title,
            "role": role,
            "setting": setting,
            "employment_type": rng.choice(("full_time", "full_time", "part_time")),
            "zip": rng.choice(ZIPS),
            "pay_min": low,
            "pay_max": high,
            "pay_period": "hour",
            "description": "Coordinate care and services for adults with complex needs.",
            "apply_url": f"https://jobs.example/{RUN}/{uuid.uuid4().hex[:10]}",
        }
        if role == "nurse_care_manager":
            body["required_credentials"] = ["rn"]
        self._json(
            "POST", "/api/openings", name=POST_OPENING, expect=201, json=body, headers=self.headers
        )


class _Probe(_User):
    abstract = True
    fixed_count = 1
    wait_time = constant(1.0)

    @task
    def health(self) -> None:
        self._json("GET", "/healthz", name=HEALTH.format(service=self.service), expect=200)


class SubscriberProbe(_Probe):
    host = CONFIG["subscriber_url"]
    service = "subscriber"


class EmployerProbe(_Probe):
    host = CONFIG["employer_url"]
    service = "employer"


class NotifierProbe(_Probe):
    host = CONFIG["notifier_url"]
    service = "notifier"
