"""Parse raw Kafka message bytes into the right typed event, or say clearly why not."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from hwcollab_schemas.envelope import Event
from hwcollab_schemas.events import EVENT_CLASSES

EVENT_TYPES: dict[str, type[Event]] = {
    cls.model_fields["event_type"].default: cls for cls in EVENT_CLASSES
}

# The largest event any producer writes is an opening with a 5,000-character description: a few
# tens of kilobytes. Anything far bigger is junk (unknown fields are ignored, so size is the only
# thing that would stop it) and is rejected before it is parsed.
MAX_EVENT_BYTES = 256 * 1024


class EventParseError(ValueError):
    """A message that is not a valid event of a known type and version; it belongs in the DLQ."""

    def __init__(self, reason: str, *, event_type: str | None = None) -> None:
        self.reason = reason
        self.event_type = event_type
        super().__init__(reason)


def parse_event(raw: bytes | str | dict[str, Any], *, topic: str | None = None) -> Event:
    """The typed event in ``raw``; raises :class:`EventParseError` for anything else.

    With ``topic`` given, an event type that does not belong on that topic is rejected too.
    """
    if isinstance(raw, dict):
        document: Any = raw
    else:
        size = len(raw.encode() if isinstance(raw, str) else raw)
        if size > MAX_EVENT_BYTES:
            raise EventParseError(
                f"too large: {size} bytes, more than the {MAX_EVENT_BYTES} an event may have"
            )
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise EventParseError(f"not JSON: {error}") from error
    if not isinstance(document, dict):
        raise EventParseError("the envelope must be a JSON object")
    event_type = document.get("event_type")
    if not isinstance(event_type, str):
        raise EventParseError("missing event_type")
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise EventParseError(f"unknown event_type {event_type!r}", event_type=event_type)
    if topic is not None and topic != cls.TOPIC:
        raise EventParseError(
            f"event_type {event_type!r} does not belong on topic {topic!r}", event_type=event_type
        )
    version = document.get("schema_version", 1)
    if isinstance(version, int) and not isinstance(version, bool) and version > cls.SCHEMA_VERSION:
        raise EventParseError(
            f"{event_type} schema_version {version} is newer than the supported "
            f"{cls.SCHEMA_VERSION}",
            event_type=event_type,
        )
    try:
        return cls.model_validate(document)
    except ValidationError as error:
        details = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise EventParseError(f"invalid {event_type}: {details}", event_type=event_type) from error
