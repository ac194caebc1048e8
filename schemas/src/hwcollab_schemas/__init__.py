"""Shared event envelope, event payloads, topics and the domain taxonomy."""

from hwcollab_schemas.envelope import Event, Payload
from hwcollab_schemas.registry import EVENT_TYPES, EventParseError, parse_event

__all__ = ["EVENT_TYPES", "Event", "EventParseError", "Payload", "parse_event"]
