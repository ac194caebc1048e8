"""Every operation of every service's OpenAPI document, fuzzed with Schemathesis against the three
services running as processes on real Kafka, MongoDB and an SMTP sink.

Valid and invalid requests are generated from the published schemas; every answer must be a
documented status code with the documented content type, headers and body, never a 5xx, and a
request the schema calls invalid must be refused (4xx). The fuzzer signs in with the security
scheme each operation documents (an employer's bearer token, the operator token) and, for half of
the valid requests on resources that must exist, uses a real one (an opening, an API key, a
subscriber's links, a suppressed address), so that it reaches past 401 and 404 into the handlers.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from pymongo import MongoClient
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.pytest.lazy import get_all_tests
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hwcollab_common.tokens import LinkSigner, Purpose
from hwcollab_testing.kafka import fresh_notifier_groups
from hwcollab_testing.plugin import RunningService, ServiceStarter, SmtpSink
from hwcollab_testing.processes import free_port, wait_until_ready

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

SERVICES = ("subscriber", "employer", "notifier")
READY_TIMEOUT = 90.0
PASSWORD = "correct horse battery staple"
# Generated requests per operation (beyond the schema's examples and the coverage phase's
# boundary cases); raise it with HWCOLLAB_FUZZ_EXAMPLES for a deeper run.
MAX_EXAMPLES = int(os.environ.get("HWCOLLAB_FUZZ_EXAMPLES", "15"))
# Each valid request to these hashes a password with Argon2 (slow by design): fewer examples and
# no coverage phase (its boundary cases are mostly valid requests, a hash each).
SLOW_OPERATIONS = {
    "POST /api/employers": 8,
    "POST /api/admin/employers": 8,
    "POST /api/auth/token": 8,
    "POST /api/employers/me/password": 8,
    "POST /api/employers/me/email": 8,
}
# Unknown query parameters are ignored, as HTTP APIs do; credentials are always sent (the
# authorization matrix is tested on its own); 413 and 429 are refusals too.
CONFIG = """
[generation]
allow-extra-parameters = false
with-security-parameters = false

[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 409, 413, 422, 429]

[[operations]]
include-name = [
    "POST /api/employers",
    "POST /api/admin/employers",
    "POST /api/auth/token",
    "POST /api/employers/me/password",
    "POST /api/employers/me/email",
]
phases.coverage.enabled = false
"""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class Real:
    """A value of a resource that exists: ``location`` is ``path``, ``query`` or ``body``."""

    location: str
    name: str
    value: str


@dataclass(frozen=True)
class FuzzStack:
    urls: dict[str, str]
    admin_token: str
    reach_token: str
    employer_token: str
    webhook_token: str
    postmark: tuple[str, str]
    real: dict[str, Real]
    """By operation label: the parameter that names an existing resource, and its value."""


@dataclass(frozen=True)
class Employer:
    employer_id: str
    token: str
    opening_id: str
    key_id: str
    external_id: str


def _employer(url: str, *, run: str, admin_token: str) -> Employer:
    """An approved employer (created by an operator) with an opening and an API key."""
    contact = f"hr.fuzz.{run}@employer.example"
    with httpx.Client(base_url=url, timeout=20.0) as api:
        created = api.post(
            "/api/admin/employers",
            headers={"Authorization": f"Bearer {admin_token}"},
            json={
                "organization_name": "Fuzz Care Partners",
                "contact_email": contact,
                "password": PASSWORD,
                "address": {"city": "Worcester", "state": "MA", "zip": "01608"},
                "settings": ["medical"],
            },
        )
        assert created.status_code == 201, created.text
        employer_id = str(created.json()["employer_id"])
        signed_in = api.post("/api/auth/token", json={"email": contact, "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        token: str = signed_in.json()["access_token"]
        posted = api.post(
            "/api/openings",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "title": "RN Care Manager",
                "role": "health_home_care_manager",
                "setting": "medical",
                "employment_type": "full_time",
                "required_credentials": ["rn"],
                "zip": "01608",
                "description": "Coordinate care for adults enrolled in our health home.",
                "apply_url": "https://careers.example/apply",
                "external_id": f"REQ-{run}",
            },
        )
        assert posted.status_code == 201, posted.text
        key = api.post("/api/employers/me/api-keys", headers={"Authorization": f"Bearer {token}"})
        assert key.status_code == 201, key.text
        return Employer(
            employer_id=employer_id,
            token=token,
            opening_id=str(posted.json()["opening_id"]),
            key_id=str(key.json()["key_id"]),
            external_id=f"REQ-{run}",
        )


def _subscriber(
    url: str, *, mongo_url: str, database: str, signer: LinkSigner, address: str
) -> str:
    """A confirmed subscriber's id (read from the subscriber's database; the confirmation token
    signed with the services' key, as the emailed link is)."""
    with httpx.Client(base_url=url, timeout=20.0) as api:
        signed_up = api.post(
            "/api/subscribers",
            json={"email": address, "zip": "01608", "roles": ["care_coordination"]},
        )
        assert signed_up.status_code == 202, signed_up.text
        with MongoClient[dict[str, Any]](mongo_url) as mongo:
            document = mongo[database]["subscribers"].find_one({"email_key": address})
        assert document is not None, "the sign-up is stored"
        subscriber_id = str(document["_id"])
        confirmed = api.post(
            "/api/subscribers/confirm",
            json={"token": signer.sign(Purpose.CONFIRM, subscriber_id)},
        )
        assert confirmed.status_code == 200, confirmed.text
    return subscriber_id


def _suppressed(url: str, *, admin_token: str, address: str) -> str:
    answer = httpx.post(
        f"{url}/api/admin/suppressions",
        json={"email": address},
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=20.0,
    )
    assert answer.status_code == 201, answer.text
    return address


@pytest.fixture(scope="module")
def fuzz_stack(
    security_kafka: str,
    mongo_url: str,
    smtp_sink: SmtpSink,
    session_service_process: ServiceStarter,
) -> Iterator[FuzzStack]:
    run = uuid.uuid4().hex[:8]
    admin_token = secrets.token_urlsafe(24)
    reach_token = secrets.token_urlsafe(32)
    signing_key = secrets.token_urlsafe(32)
    webhook_token = secrets.token_urlsafe(32)
    postmark = ("postmark-fuzz", secrets.token_urlsafe(32))
    ports = {name: free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    unlimited = "100000/minute"
    env = {
        "HWCOLLAB_ENV": "test",
        "KAFKA_BOOTSTRAP_SERVERS": security_kafka,
        "MONGODB_URL": mongo_url,
        "SMTP_HOST": smtp_sink.host,
        "SMTP_PORT": str(smtp_sink.port),
        "SUBSCRIBER_PUBLIC_URL": urls["subscriber"],
        "EMPLOYER_PUBLIC_URL": urls["employer"],
        "LINK_SIGNING_KEY": signing_key,
        "ADMIN_TOKEN": admin_token,
        "REACH_TOKEN": reach_token,
        "NOTIFIER_URL": urls["notifier"],
        "EMPLOYER_APPROVAL": "auto",
        "HWCOLLAB_DEMO": "0",
        "LOG_LEVEL": "WARNING",
        # The fuzzer is one client sending hundreds of requests: the limits are tested elsewhere.
        "SIGNUP_RATE_LIMIT": unlimited,
        "SIGNUP_ADDRESS_RATE_LIMIT": unlimited,
        "LOGIN_RATE_LIMIT": unlimited,
        "WRITE_RATE_LIMIT": unlimited,
        "ESTIMATE_RATE_LIMIT": unlimited,
        "PASSWORD_RESET_RATE_LIMIT": unlimited,
        "LINK_RATE_LIMIT": unlimited,
        "LINK_ADDRESS_RATE_LIMIT": unlimited,
        "DIGEST_INTERVAL_SECONDS": "86400",
        # The provider webhooks answer (SNS messages the fuzzer makes are signed by nobody).
        "BOUNCE_WEBHOOKS": "ses,postmark,generic",
        "SES_SNS_TOPIC_ARNS": "arn:aws:sns:us-east-1:123456789012:hwcollab-ses",
        "BOUNCE_WEBHOOK_TOKEN": webhook_token,
        "POSTMARK_WEBHOOK_USER": postmark[0],
        "POSTMARK_WEBHOOK_PASSWORD": postmark[1],
        # The security tests' own broker (the fuzzer's sign-ups and dead-letter replays stay off
        # the shared one); the notifier starts at its end, so it emails nobody from other tests.
        "CONSUMER_GROUP_SUFFIX": asyncio.run(fresh_notifier_groups(security_kafka, label="fuzz")),
    }
    databases = {name: f"fuzz_{name}_{run}" for name in SERVICES}
    services: list[RunningService] = []
    try:
        for name in SERVICES:
            service_env = env | {"MONGODB_DATABASE": databases[name]}
            services.append(session_service_process(name, service_env, port=ports[name]))
        for name in SERVICES:
            wait_until_ready(urls[name], timeout=READY_TIMEOUT)
        employer = _employer(urls["employer"], run=run, admin_token=admin_token)
        signer = LinkSigner(signing_key)
        kept, erased = (
            _subscriber(
                urls["subscriber"],
                mongo_url=mongo_url,
                database=databases["subscriber"],
                signer=signer,
                address=f"fuzz.{who}.{run}@inbox.example",
            )
            for who in ("kept", "erased")
        )
        manage = Real("query", "token", signer.sign(Purpose.MANAGE, kept))
        opening = Real("path", "opening_id", employer.opening_id)
        employer_id = Real("path", "employer_id", employer.employer_id)
        external = Real("path", "external_id", employer.external_id)
        real = {
            "POST /api/subscribers/confirm": Real(
                "body", "token", signer.sign(Purpose.CONFIRM, kept)
            ),
            "DELETE /api/subscribers": Real("query", "token", signer.sign(Purpose.MANAGE, erased)),
            "GET /api/preferences": manage,
            "PUT /api/preferences": manage,
            "POST /unsubscribe": Real("query", "token", signer.sign(Purpose.UNSUBSCRIBE, kept)),
            "GET /r": Real(
                "query",
                "token",
                signer.sign_claims(Purpose.CLICK, (kept, employer.opening_id, "d", "")),
            ),
            "GET /api/employers/{employer_id}": employer_id,
            "POST /api/admin/employers/{employer_id}/approve": employer_id,
            "POST /api/admin/employers/{employer_id}/reject": employer_id,
            "POST /api/admin/employers/{employer_id}/suspend": employer_id,
            "POST /api/admin/employers/{employer_id}/reinstate": employer_id,
            "POST /api/admin/openings/{opening_id}/take-down": opening,
            "DELETE /api/employers/me/api-keys/{key_id}": Real("path", "key_id", employer.key_id),
            "GET /api/openings/{opening_id}": opening,
            "PATCH /api/openings/{opening_id}": opening,
            "POST /api/openings/{opening_id}/close": opening,
            "GET /api/openings/{opening_id}/stats": opening,
            "GET /api/openings/by-external-id/{external_id}": external,
            "PATCH /api/openings/by-external-id/{external_id}": external,
            "DELETE /api/admin/suppressions/{email}": Real(
                "path",
                "email",
                _suppressed(
                    urls["notifier"],
                    admin_token=admin_token,
                    address=f"fuzz.suppressed.{run}@inbox.example",
                ),
            ),
        }
        yield FuzzStack(
            urls=urls,
            admin_token=admin_token,
            reach_token=reach_token,
            employer_token=employer.token,
            webhook_token=webhook_token,
            postmark=postmark,
            real=real,
        )
    finally:
        for service in reversed(services):
            service.stop()


def _credentials(case: Case[Any], stack: FuzzStack) -> dict[str, str]:
    """The credentials of the security scheme the operation documents, if any."""
    tokens = {
        "EmployerToken": stack.employer_token,
        "OperatorToken": stack.admin_token,
        "ReachToken": stack.reach_token,
        "BounceWebhookToken": stack.webhook_token,
    }
    for requirement in case.operation.definition.raw.get("security", []):
        for scheme in requirement:
            if scheme == "PostmarkWebhook":
                basic = base64.b64encode(":".join(stack.postmark).encode()).decode()
                return {"Authorization": f"Basic {basic}"}
            return {"Authorization": f"Bearer {tokens[scheme]}"}
    return {}


def _use_real_resources(case: Case[Any], stack: FuzzStack) -> None:
    """Half of the valid requests name a resource that exists (the other half a missing one)."""
    if case.meta is None or case.meta.generation.mode is not GenerationMode.POSITIVE:
        return
    if zlib.crc32(f"{case.path_parameters}{case.query}".encode()) % 2:
        return
    real = stack.real.get(case.operation.label)
    if real is None:
        return
    if real.location == "path" and case.path_parameters is not None:
        case.path_parameters[real.name] = real.value
    elif real.location == "query" and case.query is not None:
        case.query[real.name] = real.value
    elif real.location == "body" and isinstance(case.body, dict):
        case.body[real.name] = real.value


FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


def _call_and_validate(case: Case[Any], stack: FuzzStack) -> None:
    _use_real_resources(case, stack)
    case.call_and_validate(headers=_credentials(case, stack), checks=CHECKS, timeout=30)


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_answers_as_documented(service: str, fuzz_stack: FuzzStack) -> None:
    """One Hypothesis test per operation (the pytest plugin's lazy loader predates pytest 9, so
    the operations are run here); every failure is reported, not only the first."""
    url = fuzz_stack.urls[service]
    config = schemathesis.Config.from_str(CONFIG)
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config).clone(
        test_function=_call_and_validate
    )
    tested: list[str] = []
    failures: dict[str, str] = {}
    for result in get_all_tests(
        schema=schema, test_func=_call_and_validate, settings=FUZZ_SETTINGS, given_kwargs=None
    ):
        if not isinstance(result, Ok):
            error = result.err()
            failures[f"{error.method} {error.path}"] = f"invalid schema: {error}"
            continue
        operation, test = result.ok()
        tested.append(operation.label)
        if operation.label in SLOW_OPERATIONS:
            test = settings(FUZZ_SETTINGS, max_examples=SLOW_OPERATIONS[operation.label])(test)
        try:
            test(stack=fuzz_stack)
        except (Exception, BaseExceptionGroup) as error:  # every operation's failures reported
            failures[operation.label] = str(error)
    assert tested, f"{service}: no operations in its OpenAPI document"
    report = "\n\n".join(f"=== {label}\n{text}" for label, text in failures.items())
    assert not failures, f"{service}: {len(failures)} of {len(tested)} operations fail\n{report}"


def _missing_documentation(path: str, operation: dict[str, Any]) -> list[str]:
    """What a client author would miss in an operation's entry: its summary, or an error answer
    the service gives to such operations (bodies too large or unreadable, missing credentials,
    the database away)."""
    responses = operation.get("responses", {})
    expected: set[str] = set()
    if path.startswith("/api/"):
        expected.add("503")
    if "requestBody" in operation:
        expected.add("413")
    if operation.get("security"):
        expected.add("401")
    gaps = [f"no {status} answer" for status in sorted(expected - set(responses))]
    if not operation.get("summary"):
        gaps.append("no summary")
    return gaps


@pytest.mark.parametrize("service", SERVICES)
def test_the_documentation_loads_and_names_every_answer(
    service: str, fuzz_stack: FuzzStack
) -> None:
    url = fuzz_stack.urls[service]
    document = httpx.get(f"{url}/openapi.json", timeout=10.0)
    assert document.status_code == 200
    spec = document.json()
    assert spec["info"]["title"], "the API has a title"
    missing = {
        f"{method.upper()} {path}": _missing_documentation(path, operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }
    assert not {label: gaps for label, gaps in missing.items() if gaps}
    page = httpx.get(f"{url}/docs", timeout=10.0)
    assert page.status_code == 200
    assert "swagger-ui" in page.text.lower()
    assert "/openapi.json" in page.text
