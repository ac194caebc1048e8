"""Admin API behind ``Authorization: Bearer <ADMIN_TOKEN>``: digests, DLQ, suppressions,
bulletins. Thin: parse, call the use case, shape the answer."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, EmailStr, Field

from hwcollab_common.emails import email_key
from hwcollab_common.openapi import error_responses
from hwcollab_notifier.dependencies import (
    AdminOperations,
    AppClock,
    AppSettings,
    Broker,
    Digests,
    Repository,
    require_admin,
)
from hwcollab_notifier.operations import read_dead_letters, replay_dead_letters
from hwcollab_schemas.topics import ALL_TOPICS, OPENING_TOPIC


def _known_topic(topic: str) -> str:
    if topic not in ALL_TOPICS:
        raise ValueError(f"unknown topic; one of {', '.join(ALL_TOPICS)}")
    return topic


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_instant(value: object) -> object:
    """Only ISO-8601 text: a bare number would otherwise be read as a Unix timestamp."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("must be an ISO-8601 instant with an offset, e.g. 2026-11-24T13:00:00Z")
    return value


TOPIC_SCHEMA = {"enum": list(ALL_TOPICS)}
Topic = Annotated[
    str,
    AfterValidator(_known_topic),
    Field(examples=[OPENING_TOPIC], json_schema_extra=TOPIC_SCHEMA),
]


class DigestRunOut(BaseModel):
    as_of: datetime
    subscribers: int
    sent: int
    skipped: int
    dropped_openings: int


VALUE_SHOWN = 64 * 1024


class DeadLetterOut(BaseModel):
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    headers: dict[str, str]
    value: str = Field(description=f"The message as text; its first {VALUE_SHOWN} bytes at most.")
    value_size: int = Field(description="Bytes in the dead-lettered message.")
    value_cut: bool = Field(description="The value is longer than what is shown here.")


class DeadLettersOut(BaseModel):
    topic: str
    dlq_topic: str
    messages: list[DeadLetterOut]


class Position(BaseModel):
    partition: int = Field(ge=0, strict=True)
    offset: int = Field(ge=0, strict=True)


class ReplayIn(BaseModel):
    topic: Topic
    messages: list[Position] | None = Field(
        default=None, description="Which dead letters to replay; all of them when omitted."
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {"topic": "hwcollab.opening.v1", "messages": [{"partition": 0, "offset": 3}]}
            ]
        }
    }


class ReplayOut(BaseModel):
    replayed: int


class SuppressionIn(BaseModel):
    email: EmailStr
    reason: str = Field(default="added by an operator", max_length=300)


class SuppressionOut(BaseModel):
    email: str | None
    reason: str
    created_at: datetime


class SuppressionsOut(BaseModel):
    total: int
    items: list[SuppressionOut]


class SuppressionAdded(BaseModel):
    email: str
    added: bool


class BulletinIn(BaseModel):
    subject: str = Field(min_length=1, max_length=200, examples=["Free CCM exam prep webinar"])
    body_markdown: str = Field(min_length=1, max_length=50_000, examples=["Join us on **May 3** …"])


class BulletinOut(BaseModel):
    bulletin_id: str
    recipients: int


admin_router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=error_responses(401, 503, s401="A valid admin token is required."),
)


@admin_router.post("/digests/run", summary="Send the digests due at as_of (default now)")
async def run_digests(
    digests: Digests,
    as_of: Annotated[
        AwareDatetime | None,
        BeforeValidator(_iso_instant),
        Query(description="ISO-8601 instant with offset", examples=["2026-11-24T13:00:00Z"]),
    ] = None,
) -> DigestRunOut:
    run = await digests.run_due(as_of)
    return DigestRunOut(
        as_of=run.as_of,
        subscribers=run.subscribers,
        sent=run.sent,
        skipped=run.skipped,
        dropped_openings=run.dropped_openings,
    )


@admin_router.get("/dlq", summary="List dead letters of a topic")
async def list_dlq(
    settings: AppSettings,
    topic: Annotated[
        str,
        AfterValidator(_known_topic),
        Query(examples=[OPENING_TOPIC], json_schema_extra=TOPIC_SCHEMA),
    ],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeadLettersOut:
    letters = await read_dead_letters(settings.kafka_bootstrap_servers, topic, limit=limit)
    return DeadLettersOut(
        topic=topic,
        dlq_topic=f"{topic}.dlq",
        messages=[
            DeadLetterOut(
                partition=d.partition,
                offset=d.offset,
                timestamp_ms=d.timestamp_ms,
                key=d.key,
                headers=d.headers,
                value=d.value[:VALUE_SHOWN].decode(errors="replace"),
                value_size=len(d.value),
                value_cut=len(d.value) > VALUE_SHOWN,
            )
            for d in letters
        ],
    )


@admin_router.post(
    "/dlq/replay",
    summary="Publish dead letters back to their topic",
    responses=error_responses(400, 413),
)
async def replay_dlq(settings: AppSettings, broker: Broker, body: ReplayIn) -> ReplayOut:
    topic = body.topic
    letters = await read_dead_letters(settings.kafka_bootstrap_servers, topic, limit=10_000)
    if body.messages is not None:
        wanted = {(m.partition, m.offset) for m in body.messages}
        letters = [d for d in letters if (d.partition, d.offset) in wanted]
    return ReplayOut(replayed=await replay_dead_letters(broker, letters, topic=topic))


@admin_router.get("/suppressions", summary="List suppressed addresses")
async def list_suppressions(
    repository: Repository,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip")] = 0,
) -> SuppressionsOut:
    total, docs = await repository.list_suppressions(limit=limit, offset=offset)
    return SuppressionsOut(
        total=total,
        items=[
            SuppressionOut(email=d.get("email"), reason=d["reason"], created_at=d["created_at"])
            for d in docs
        ],
    )


@admin_router.post(
    "/suppressions",
    status_code=201,
    summary="Suppress an address",
    responses=error_responses(400, 413),
)
async def add_suppression(
    repository: Repository, clock: AppClock, body: SuppressionIn
) -> SuppressionAdded:
    now = clock.now()
    added = await repository.suppress(str(body.email), reason=body.reason, now=now)
    return SuppressionAdded(email=email_key(str(body.email)), added=added)


@admin_router.delete(
    "/suppressions/{email}",
    status_code=204,
    summary="Stop suppressing an address",
    responses=error_responses(404, s404="That address is not suppressed."),
)
async def remove_suppression(repository: Repository, email: str) -> Response:
    if not await repository.unsuppress(email):
        raise HTTPException(404, "that address is not suppressed")
    return Response(status_code=204)


@admin_router.post(
    "/bulletins",
    status_code=202,
    summary="Send a career-information bulletin",
    description="Emailed to every active subscriber who asked for career information.",
    responses=error_responses(400, 413),
)
async def send_bulletin(operations: AdminOperations, body: BulletinIn) -> BulletinOut:
    bulletin_id, recipients = await operations.start_bulletin(
        subject=body.subject, body_markdown=body.body_markdown
    )
    return BulletinOut(bulletin_id=bulletin_id, recipients=recipients)
