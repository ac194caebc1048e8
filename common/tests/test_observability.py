"""Log lines, request ids and trace context: what an operator reads and follows."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from hwcollab_common.ops import configure_logging, install_http_basics
from hwcollab_common.outbox import outbox_document
from hwcollab_common.tracing import (
    configure_tracing,
    context_from,
    current_trace_id,
    shutdown_tracing,
    span,
    trace_headers,
)
from hwcollab_schemas.events import SubscriberDeleted, SubscriberDeletedPayload

log = logging.getLogger("hwcollab_test.observability")


@pytest.fixture
def json_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """Logging as in production, to the captured stdout (configured by each test: pytest's own
    log capture replaces the root handlers between a fixture's setup and the test)."""
    yield capsys
    logging.getLogger().handlers.clear()


def log_json() -> None:
    configure_logging(service="testing", level="INFO", json_logs=True)


def records(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    configure_tracing(service="testing", exporter="none", span_exporter=exporter)
    yield exporter
    shutdown_tracing()


def app_with_a_route() -> FastAPI:
    app = FastAPI()
    install_http_basics(app)

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        log.info("looked up %s", item_id)
        return {"item_id": item_id}

    return app


async def get(path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app_with_a_route())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers=headers)


def test_a_standard_library_log_line_is_one_json_object_with_its_context(
    json_lines: pytest.CaptureFixture[str],
) -> None:
    log_json()
    log.warning("disk %s is %d%% full", "data", 91)
    try:
        raise ValueError("no such thing")
    except ValueError:
        log.exception("lookup failed")

    warning, error = records(json_lines)
    assert warning["message"] == "disk data is 91% full"
    assert (warning["level"], warning["logger"], warning["service"]) == (
        "warning",
        "hwcollab_test.observability",
        "testing",
    )
    assert datetime.fromisoformat(str(warning["timestamp"])).tzinfo is not None
    assert error["level"] == "error"
    assert "ValueError: no such thing" in str(error["exception"])


def test_uvicorn_access_lines_become_fields_without_the_query_string(
    json_lines: pytest.CaptureFixture[str],
) -> None:
    log_json()
    access = logging.getLogger("uvicorn.access")
    access.info(
        '%s - "%s %s HTTP/%s" %d', "10.0.0.7:5100", "GET", "/pause?token=secret", "1.1", 200
    )

    [line] = records(json_lines)
    assert line["message"] == "GET /pause 200"
    assert (line["http_method"], line["path"], line["status"]) == ("GET", "/pause", 200)
    assert "secret" not in json.dumps(line)


async def test_a_well_formed_request_id_is_kept_echoed_and_logged(
    json_lines: pytest.CaptureFixture[str],
) -> None:
    log_json()
    response = await get("/items/7", headers={"X-Request-ID": "edge-4f2a9c01"})

    assert response.headers["X-Request-ID"] == "edge-4f2a9c01"
    [line] = [r for r in records(json_lines) if r["logger"] == log.name]
    assert line["request_id"] == "edge-4f2a9c01"
    assert line["message"] == "looked up 7"


@pytest.mark.parametrize(
    "incoming",
    [
        "short",
        "has spaces in it",
        "x" * 200,
        "<script>alert(1)</script>",
        "../../etc/passwd",
        "id;drop=1;12345",
    ],
)
async def test_a_malformed_request_id_is_replaced(incoming: str) -> None:
    response = await get("/items/7", headers={"X-Request-ID": incoming})

    replaced = response.headers["X-Request-ID"]
    assert replaced != incoming
    assert len(replaced) == 32
    assert int(replaced, 16) >= 0


async def test_without_a_request_id_each_request_gets_its_own() -> None:
    first, second = await get("/items/1"), await get("/items/2")

    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


async def test_a_request_span_is_named_by_its_route_and_logs_carry_its_trace_id(
    spans: InMemorySpanExporter, json_lines: pytest.CaptureFixture[str]
) -> None:
    log_json()
    response = await get("/items/42")

    assert response.status_code == 200
    [server] = spans.get_finished_spans()
    assert server.name == "GET /items/{item_id}"
    assert server.kind == SpanKind.SERVER
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 200
    [line] = [r for r in records(json_lines) if r["logger"] == log.name]
    assert line["trace_id"] == format(server.context.trace_id, "032x")


async def test_an_incoming_traceparent_is_continued(spans: InMemorySpanExporter) -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    await get("/items/1", headers={"traceparent": parent})

    [server] = spans.get_finished_spans()
    assert format(server.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == "b7ad6b7169203331"


def deleted() -> SubscriberDeleted:
    now = datetime.now(UTC)
    return SubscriberDeleted.create(
        SubscriberDeletedPayload(subscriber_id="s-1", version=2, deleted_at=now),
        producer="test",
        occurred_at=now,
    )


def test_an_outbox_entry_keeps_the_trace_of_the_change_and_a_consumer_continues_it(
    spans: InMemorySpanExporter,
) -> None:
    with span("POST /things", kind=SpanKind.SERVER) as request:
        assert request is not None
        document = outbox_document(deleted())
        request_trace = current_trace_id()

    assert document["trace"]["traceparent"].split("-")[1] == request_trace
    with span("consume", kind=SpanKind.CONSUMER, parent=context_from(document["trace"])):
        assert current_trace_id() == request_trace
        assert trace_headers()["traceparent"].split("-")[1] == request_trace
    producer, consumer = sorted(spans.get_finished_spans(), key=lambda s: s.kind.value)
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id


def test_while_tracing_is_off_nothing_is_traced() -> None:
    shutdown_tracing()
    with span("anything") as current:
        assert current is None
        assert trace_headers() == {}
        assert current_trace_id() is None
    assert outbox_document(deleted())["trace"] == {}
    assert (
        context_from({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
        is None
    )
