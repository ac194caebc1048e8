"""The notifier's internal work item on ``DELIVERY_TOPIC``: "deliver this to that subscriber".

Not an event of SPEC section 5: only the notifier produces and consumes it, keyed by subscriber id
so that one subscriber's jobs stay ordered on one partition and spread over the delivery group.
The ledger in the notifier's database is the source of truth; a job only says where to look.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

DeliveryKind = Literal["immediate", "welcome", "bulletin", "link"]


class DeliveryJob(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: Literal[1] = 1
    """A job of a newer format is rejected (to the DLQ) rather than half-understood."""
    job_id: UUID = Field(default_factory=uuid4)
    kind: DeliveryKind
    subscriber_id: Annotated[str, Field(min_length=1, max_length=64)]
    """The recipient; for a job of many recipients the first of ``subscriber_ids`` (the key)."""
    subscriber_ids: Annotated[
        tuple[Annotated[str, Field(min_length=1, max_length=64)], ...], Field(max_length=1000)
    ] = ()
    """All recipients of an ``immediate`` or ``bulletin`` job for many people (one opening or
    bulletin, a chunk of a few hundred readers): one record instead of one per email."""
    opening_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    """The opening of an ``immediate`` job."""
    bulletin_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    """The bulletin of a ``bulletin`` job."""
    request_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    """The stored request of a ``link`` job: a confirmation or manage-link email that the
    subscriber service asked for."""
    created_at: AwareDatetime

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.subscriber_ids or (self.subscriber_id,)

    @property
    def key(self) -> bytes:
        return self.subscriber_id.encode()

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()
