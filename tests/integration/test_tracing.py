"""One trace from the HTTP request that posts an opening to the email it causes, across processes.

The employer and notifier run as processes exporting spans over OTLP/HTTP to a small collector in
this test (it decodes the protobuf requests with ``opentelemetry-proto``). The opening is posted
over HTTP; the test then finds, under the one trace id of that request's server span, the outbox
relay's publication, the notifier's consumption of ``opening.posted``, its handling of the
delivery job and the SMTP send.
The same request's log lines (JSON) carry its request id and that trace id.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from pymongo import AsyncMongoClient

from hwcollab_common.geo import ZipPlace, lookup_zip
from hwcollab_common.settings import DEV_ADMIN_TOKEN
from hwcollab_schemas.topics import DELIVERY_TOPIC, OPENING_TOPIC
from hwcollab_testing.events import event_publisher, registered
from hwcollab_testing.kafka import fresh_notifier_groups
from hwcollab_testing.plugin import ServiceStarter, SmtpSink
from hwcollab_testing.processes import wait_until_ready
from hwcollab_testing.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _place(zip_code: str) -> ZipPlace:
    place = lookup_zip(zip_code)
    assert place is not None
    return place


PLACE = _place("59801")  # Missoula: no other test works there
PASSWORD = "tracing passphrase"


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str


class Collector:
    """An OTLP/HTTP trace receiver on a free port of 127.0.0.1, keeping every span it gets."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                collector.receive(body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def receive(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        received: list[ReceivedSpan] = []
        for resource_spans in request.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope_spans in resource_spans.scope_spans:
                received.extend(
                    ReceivedSpan(
                        service=service,
                        name=span.name,
                        kind=span.kind,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                    )
                    for span in scope_spans.spans
                )
        with self._lock:
            self.spans.extend(received)

    def snapshot(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def __enter__(self) -> Collector:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as running:
        yield running


def json_lines(log: str) -> list[dict[str, Any]]:
    """Each line of a service's log, which must be one JSON object."""
    parsed = []
    for line in log.splitlines():
        value = json.loads(line)
        assert isinstance(value, dict), line
        assert {"timestamp", "level", "logger", "message", "service"} <= set(value), line
        parsed.append(value)
    return parsed


async def test_the_email_of_a_posted_opening_is_in_the_trace_of_the_post(
    kafka_bootstrap: str,
    mongo_url: str,
    smtp_sink: SmtpSink,
    service_process: ServiceStarter,
    collector: Collector,
) -> None:
    run = uuid.uuid4().hex[:8]
    tracing = {
        "TRACING_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "LOG_JSON": "true",
        "LOG_LEVEL": "INFO",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MONGODB_URL": mongo_url,
        "OUTBOX_POLL_SECONDS": "0.2",
        "METRICS_SAMPLE_SECONDS": "1",
    }
    notifier_db = f"test_tracing_notifier_{run}"
    notifier = service_process(
        "notifier",
        tracing
        | {
            "MONGODB_DATABASE": notifier_db,
            "SMTP_HOST": smtp_sink.host,
            "SMTP_PORT": str(smtp_sink.port),
            "INDEX_REFRESH_SECONDS": "1",
            "CONSUMER_GROUP_SUFFIX": await fresh_notifier_groups(kafka_bootstrap, label="trace"),
        },
    )
    employer = service_process(
        "employer",
        tracing
        | {
            "MONGODB_DATABASE": f"test_tracing_employer_{run}",
            "EMPLOYER_APPROVAL": "auto",
            "CONSUMER_GROUP_SUFFIX": f"-trace-{run}",
        },
    )
    email = f"tracing-{run}@example.org"
    # generous: password hashing on a machine shared with other test runs
    async with httpx.AsyncClient(timeout=60.0) as http:
        for service in (notifier, employer):
            await asyncio.to_thread(wait_until_ready, service.url, timeout=60)

        # A subscriber near the opening, straight onto the subscriber topic; the welcome email
        # shows the notifier knows them.
        async with event_publisher(kafka_bootstrap) as publish:
            await publish(registered(f"tracing-{run}", email, place=PLACE, now=datetime.now(UTC)))

        async def welcomed() -> bool:
            return bool(smtp_sink.messages_to(email))

        await eventually(welcomed, timeout=90, what="welcome email")

        created = await http.post(
            f"{employer.url}/api/admin/employers",  # as an operator: verified at once
            headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
            json={
                "organization_name": f"Big Sky Care {run}",
                "contact_email": f"employer-{run}@care.example",
                "password": PASSWORD,
                "description": "Care management in western Montana.",
                "address": {"city": PLACE.city, "state": PLACE.state, "zip": PLACE.zip},
                "settings": ["medical"],
            },
        )
        assert created.status_code == 201, created.text
        employer_id = created.json()["employer_id"]
        token = await http.post(
            f"{employer.url}/api/auth/token",
            json={"email": f"employer-{run}@care.example", "password": PASSWORD},
        )
        assert token.status_code == 200, token.text
        # The notifier re-checks the employer before sending: let it learn of them first.
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
        try:

            async def employer_known() -> bool:
                found = await mongo[notifier_db]["employers"].find_one({"_id": employer_id})
                return found is not None

            await eventually(employer_known, timeout=30, what="employer in the notifier")
        finally:
            await mongo.close()

        request_id = f"trace-test-{run}"
        posted = await http.post(
            f"{employer.url}/api/openings",
            headers={
                "Authorization": f"Bearer {token.json()['access_token']}",
                "X-Request-ID": request_id,
            },
            json={
                "title": "Care Manager",
                "role": "care_manager",
                "setting": "medical",
                "employment_type": "full_time",
                "zip": PLACE.zip,
                "pay_min": 30,
                "pay_max": 36,
                "description": "Coordinate care for adults in Missoula.",
                "apply_url": "https://bigsky.example/apply",
            },
        )
        assert posted.status_code == 201, posted.text
        assert posted.headers["X-Request-ID"] == request_id
        opening_id = posted.json()["opening_id"]

        def announced() -> list[Any]:
            return [
                m
                for m in smtp_sink.messages_to(email)
                if opening_id in str(m.message["X-HWcollab-Opening-Ids"] or "")
            ]

        async def emailed() -> bool:
            return bool(announced())

        await eventually(emailed, timeout=90, what="the opening's email")

        def post_spans() -> list[ReceivedSpan]:
            return [
                s
                for s in collector.snapshot()
                if s.service == "hwcollab-employer"
                and s.name == "POST /api/openings"
                and s.kind == ProtoSpan.SPAN_KIND_SERVER
            ]

        def in_trace(trace_id: str) -> list[ReceivedSpan]:
            return [s for s in collector.snapshot() if s.trace_id == trace_id]

        async def traced() -> bool:
            if not post_spans():
                return False
            names = {(s.service, s.name) for s in in_trace(post_spans()[0].trace_id)}
            return {
                ("hwcollab-employer", f"publish {OPENING_TOPIC}"),
                ("hwcollab-notifier", f"consume {OPENING_TOPIC}"),
                ("hwcollab-notifier", f"consume {DELIVERY_TOPIC}"),
                ("hwcollab-notifier", "smtp send"),
            } <= names

        await eventually(traced, timeout=60, what="the notifier's spans in the trace of the post")

        # Both processes sample consumer lag (per partition of their groups) and the outbox.
        async def gauges_sampled() -> bool:
            employer_metrics = (await http.get(f"{employer.url}/metrics")).text
            notifier_metrics = (await http.get(f"{notifier.url}/metrics")).text
            return (
                'hwcollab_consumer_lag{group="hwcollab-notifier-delivery' in notifier_metrics
                and "hwcollab_consumer_lag{group=" in employer_metrics
                and "\nhwcollab_outbox_pending 0.0" in employer_metrics
            )

        await eventually(gauges_sampled, timeout=30, what="lag and outbox gauges on /metrics")

    [post] = post_spans()
    spans = in_trace(post.trace_id)
    by_name = {(s.service, s.name): s for s in spans}
    published = by_name[("hwcollab-employer", f"publish {OPENING_TOPIC}")]
    consumed = by_name[("hwcollab-notifier", f"consume {OPENING_TOPIC}")]
    delivered = by_name[("hwcollab-notifier", f"consume {DELIVERY_TOPIC}")]
    sent = by_name[("hwcollab-notifier", "smtp send")]
    assert consumed.kind == delivered.kind == ProtoSpan.SPAN_KIND_CONSUMER
    assert sent.kind == ProtoSpan.SPAN_KIND_CLIENT
    assert published.kind == ProtoSpan.SPAN_KIND_PRODUCER
    # Parent links: the post → the outbox relay's publication → the opening's consumption →
    # (the matching that queues the job) → the job → the send.
    span_ids = {s.span_id for s in spans}
    assert published.parent_span_id == post.span_id
    assert consumed.parent_span_id == published.span_id
    assert delivered.parent_span_id in span_ids
    assert sent.parent_span_id == delivered.span_id
    assert len({s.trace_id for s in (post, published, consumed, delivered, sent)}) == 1

    # Every log line of both processes is one JSON object; the request's lines carry its ids, and
    # the notifier's lines about the opening carry the event's ids and the same trace id.
    employer_lines = json_lines(employer.log_path.read_text())
    notifier_lines = json_lines(notifier.log_path.read_text())
    access = [
        line
        for line in employer_lines
        if line.get("request_id") == request_id and line.get("logger") == "uvicorn.access"
    ]
    assert access, "no access log line for the request"
    assert access[0]["trace_id"] == post.trace_id
    assert access[0]["service"] == "employer"
    assert access[0]["message"] == "POST /api/openings 201"
    matched = [line for line in notifier_lines if opening_id in str(line.get("message"))]
    assert matched, "no notifier log line about the opening"
    assert matched[0]["trace_id"] == post.trace_id
    assert (matched[0]["event_type"], matched[0]["topic"]) == ("opening.posted", OPENING_TOPIC)
    assert uuid.UUID(str(matched[0]["event_id"]))
    assert matched[0]["service"] == "notifier"
    services = {s.service for s in spans}
    print(f"\ntrace {post.trace_id}: {len(spans)} spans over {len(services)} services")
