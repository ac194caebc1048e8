"""Request bodies over the limit get 413 on every service, for JSON and form bodies, whether the
size is declared (Content-Length) or not (Transfer-Encoding: chunked, counted as it streams),
in process and through a real uvicorn process; a body within the limit still works chunked."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from hwcollab_testing.plugin import ServiceStarter

from .support import ADMIN_TOKEN, Service, unique

pytestmark = pytest.mark.integration

OVER = 256 * 1024  # every route's limit is at most 64 KiB, a webhook's 256 KiB
CHUNK = 8 * 1024


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


def sync_chunks_of(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


def big_json() -> bytes:
    return json.dumps({"email": "big@security.example", "padding": "x" * OVER}).encode()


def big_form() -> bytes:
    return b"email=big%40security.example&padding=" + b"x" * OVER


JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def assert_refused(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> None:
    body = big_json() if headers is JSON else big_form()
    declared = await client.post(path, content=body, headers=headers)
    assert declared.status_code == 413, (path, "Content-Length", declared.status_code)
    chunked = await client.post(path, content=chunks_of(body), headers=headers)
    assert chunked.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in chunked.request.headers
    assert chunked.status_code == 413, (path, "chunked", chunked.status_code, chunked.text[:200])


async def test_subscriber(subscriber: Service) -> None:
    async with subscriber.client() as client:
        await assert_refused(client, "/api/subscribers", JSON)
        await assert_refused(client, "/api/preferences/link", JSON)
        await assert_refused(client, "/", FORM)
        await assert_refused(client, "/preferences/link", FORM)
        small = json.dumps(
            {
                "email": f"{unique('chunked')}@security.example",
                "roles": ["care_manager"],
                "zip": "01608",
            }
        ).encode()
        answer = await client.post("/api/subscribers", content=chunks_of(small), headers=JSON)
        assert answer.status_code == 202, answer.text


async def test_employer(employer: Service) -> None:
    async with employer.client() as client:
        await assert_refused(client, "/api/employers", JSON)
        await assert_refused(client, "/api/auth/token", JSON)
        await assert_refused(client, "/login", FORM)
        await assert_refused(client, "/signup", FORM)
        page = await client.post("/login", content=chunks_of(big_form()), headers=FORM)
        assert page.headers["content-type"].startswith("text/html")  # the pages' own error page


async def test_notifier(notifier: Service) -> None:
    async with notifier.client(Authorization=f"Bearer {ADMIN_TOKEN}") as client:
        await assert_refused(client, "/api/admin/bulletins", JSON)
        await assert_refused(client, "/api/admin/suppressions", JSON)
        # The webhooks take larger bodies (256 KiB, an SNS message's most), not larger still.
        await assert_refused(client, "/api/webhooks/bounces", JSON)
        await assert_refused(client, "/api/webhooks/ses", JSON)


@pytest.mark.slow
def test_through_uvicorn(
    service_process: ServiceStarter, security_kafka: str, mongo_url: str
) -> None:
    running = service_process(
        "subscriber",
        {
            "KAFKA_BOOTSTRAP_SERVERS": security_kafka,
            "MONGODB_URL": mongo_url,
            "MONGODB_DATABASE": f"security_body_{uuid.uuid4().hex[:8]}",
            "CONSUMER_GROUP_SUFFIX": f"-security-body-{uuid.uuid4().hex[:8]}",
        },
    )
    with httpx.Client(base_url=running.url, timeout=30.0) as client:
        for body, headers in ((big_json(), JSON), (big_form(), FORM)):
            path = "/api/subscribers" if headers is JSON else "/"
            chunked = client.post(path, content=sync_chunks_of(body), headers=headers)
            assert chunked.request.headers.get("transfer-encoding") == "chunked"
            assert chunked.status_code == 413, (path, chunked.status_code, chunked.text[:200])
        small = json.dumps(
            {
                "email": f"{unique('uvicorn')}@security.example",
                "roles": ["care_manager"],
                "zip": "01608",
            }
        ).encode()
        answer = client.post("/api/subscribers", content=sync_chunks_of(small), headers=JSON)
        assert answer.status_code == 202, answer.text
