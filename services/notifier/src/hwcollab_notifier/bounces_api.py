"""Bounce reports for operators (``/api/admin/bounces``, behind the admin token): list them, read
one with its raw report, forgive an address."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, EmailStr, Field

from hwcollab_common.emails import email_key
from hwcollab_common.mongo import Document
from hwcollab_common.openapi import error_responses
from hwcollab_notifier.bounce_intake import OUTCOMES
from hwcollab_notifier.bounce_records import forgive_address
from hwcollab_notifier.dependencies import AppClock, Records, Repository, require_admin

RAW_SHOWN = 256 * 1024


class BounceOut(BaseModel):
    bounce_id: str
    received_at: datetime
    source: str | None = Field(
        None, description="ses, postmark or generic for a webhook's event; null for an email."
    )
    outcome: str = Field(description=f"One of {', '.join(OUTCOMES)}.")
    detail: str
    kind: str | None = Field(None, description="hard, soft, complaint or delayed, as reported.")
    status: str | None = Field(None, description="The RFC 3463 status, e.g. 5.1.1.")
    email: str | None = Field(None, description="The subscriber's address (for our messages).")
    subscriber_id: str | None = None
    message_id: str | None = None
    mail_from: str
    recipients: list[str]
    size: int
    soft_count: int | None = None
    forgiven_at: datetime | None = None


class BounceDetailOut(BounceOut):
    diagnostic: str | None = None
    feedback_type: str | None = None
    reported_recipient: str | None = None
    raw: str = Field(
        description=f"The report as received (its first {RAW_SHOWN} bytes): the email, or the "
        "webhook's request body."
    )


class BouncesOut(BaseModel):
    total: int
    items: list[BounceOut]


class ForgiveIn(BaseModel):
    email: EmailStr


class ForgivenOut(BaseModel):
    email: str
    unsuppressed: bool = Field(description="The address was on the suppression list.")
    bounces_forgiven: int = Field(description="Its stored bounces that no longer count.")


def _fields(doc: Document) -> dict[str, object]:
    return {
        "bounce_id": doc["_id"],
        **{k: doc.get(k) for k in BounceOut.model_fields if k != "bounce_id"},
    }


bounces_router = APIRouter(
    prefix="/api/admin/bounces",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=error_responses(401, 503, s401="A valid admin token is required."),
)


@bounces_router.get("", summary="Bounce and complaint reports received, newest first")
async def list_bounces(
    records: Records,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    outcome: Annotated[str | None, Query(pattern="^(" + "|".join(OUTCOMES) + ")$")] = None,
) -> BouncesOut:
    total, docs = await records.list(limit=limit, offset=offset, outcome=outcome)
    return BouncesOut(total=total, items=[BounceOut.model_validate(_fields(d)) for d in docs])


@bounces_router.get(
    "/{bounce_id}",
    summary="One report, with the raw message as received",
    responses=error_responses(404, s404="No such report (or older than 30 days)."),
)
async def show_bounce(
    records: Records,
    bounce_id: Annotated[str, Path(pattern="^[0-9a-f]{32}$")],
) -> BounceDetailOut:
    doc = await records.get(bounce_id)
    if doc is None:
        raise HTTPException(404, "no such bounce report")
    raw = bytes(doc.get("raw") or b"")
    return BounceDetailOut.model_validate(
        _fields(doc)
        | {k: doc.get(k) for k in ("diagnostic", "feedback_type", "reported_recipient")}
        | {"raw": raw[:RAW_SHOWN].decode("utf-8", "replace")}
    )


@bounces_router.post(
    "/forgive",
    summary="Let an address be mailed again",
    description="Takes the address off the suppression list; its stored bounces no longer "
    "count towards the soft-bounce limit. A bounced or unsubscribed subscriber is mailed "
    "again once they sign up again.",
    responses=error_responses(400, 413),
)
async def forgive(
    repository: Repository, records: Records, clock: AppClock, body: ForgiveIn
) -> ForgivenOut:
    unsuppressed, forgiven = await forgive_address(
        str(body.email), repository=repository, records=records, now=clock.now()
    )
    return ForgivenOut(
        email=email_key(str(body.email)), unsuppressed=unsuppressed, bounces_forgiven=forgiven
    )
