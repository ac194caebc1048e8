"""Idempotent posting: a client's ``Idempotency-Key`` and the first answer kept for it. No I/O.

An applicant-tracking system that retries ``POST /api/openings`` after a timeout sends the same
key again; the service answers with what it answered the first time and creates nothing. Keys
are kept 24 hours per principal (the API key the request came with, or the employer signed in
with an access token), as payment and email APIs keep theirs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_TTL = timedelta(hours=24)
KEY_MAX_LENGTH = 255
KEY_PATTERN = r"^[ -~]+$"
"""Printable ASCII (what an HTTP header carries safely)."""
KEY_REUSED = "was already used with a different request body; send a new key for a new opening"
KEY_IN_PROGRESS = (
    "A request with this Idempotency-Key is still being processed; retry in a few seconds."
)
POST_OPENING = "POST /api/openings"


def fingerprint(operation: str, body: Mapping[str, Any]) -> str:
    """A hash of the request as validated (key order, spacing and number spelling do not count)."""
    canonical = json.dumps(
        {"operation": operation, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def principal_of(*, employer_id: str, api_key_id: str | None) -> str:
    """Whose keys these are: an API key's own when the request came with one."""
    return f"api-key:{api_key_id}" if api_key_id else f"employer:{employer_id}"


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """One request's key: whose it is, the key, and the fingerprint of what was asked."""

    principal: str
    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """An answer as the client received it; ``replayed`` when it is the first one again."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    claim: IdempotencyClaim
    answer: StoredAnswer
    created_at: datetime
    expires_at: datetime

    def live(self, *, now: datetime) -> bool:
        """Still binding (the TTL index removes expired records only every minute or so)."""
        return self.expires_at > now


def record_for(
    claim: IdempotencyClaim, answer: StoredAnswer, *, now: datetime
) -> IdempotencyRecord:
    return IdempotencyRecord(
        claim=claim, answer=answer, created_at=now, expires_at=now + IDEMPOTENCY_TTL
    )
