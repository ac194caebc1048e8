"""The one event envelope every Kafka message uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Self
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator


class Payload(BaseModel):
    """Base of every event payload: immutable; unknown fields from newer producers are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Event(BaseModel):
    """Envelope: ``event_id``, ``event_type``, ``schema_version``, ``occurred_at``, ``producer``,
    ``payload``. Subclasses fix ``event_type`` and the payload model, and name their topic and the
    payload field that is the aggregate id (the Kafka key)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    TOPIC: ClassVar[str]
    KEY_FIELD: ClassVar[str]
    # The newest payload version this code understands; newer ones are rejected (to the DLQ) rather
    # than half-understood.
    SCHEMA_VERSION: ClassVar[int] = 1

    event_id: UUID = Field(default_factory=uuid4)
    event_type: str
    schema_version: int = Field(default=1, ge=1)
    occurred_at: AwareDatetime
    producer: str = Field(min_length=1, max_length=64)
    payload: Payload

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @classmethod
    def create(cls, payload: Any, *, producer: str, occurred_at: datetime) -> Self:
        """A new event with a fresh id, stamped with the given time."""
        return cls.model_validate(
            {
                "event_type": cls.model_fields["event_type"].default,
                "payload": payload,
                "producer": producer,
                "occurred_at": occurred_at,
                "schema_version": cls.SCHEMA_VERSION,
            }
        )

    @property
    def topic(self) -> str:
        return self.TOPIC

    @property
    def key(self) -> str:
        """The aggregate id: events of one aggregate share a key and so stay ordered."""
        return str(getattr(self.payload, self.KEY_FIELD))

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()
