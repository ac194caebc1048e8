from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from hwcollab_schemas.delivery import DeliveryJob

NOW = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)


def test_jobs_round_trip_with_their_format_version() -> None:
    job = DeliveryJob(kind="immediate", subscriber_id="s-1", opening_id="o-1", created_at=NOW)
    assert DeliveryJob.model_validate_json(job.to_bytes()) == job
    assert job.model_dump()["schema_version"] == 1


def test_a_job_without_a_version_is_of_the_first_format() -> None:
    raw = b'{"kind": "welcome", "subscriber_id": "s-1", "created_at": "2026-11-24T13:00:00Z"}'
    assert DeliveryJob.model_validate_json(raw).schema_version == 1


def test_a_job_of_a_newer_format_is_rejected() -> None:
    raw = (
        b'{"schema_version": 2, "kind": "welcome", "subscriber_id": "s-1",'
        b' "created_at": "2026-11-24T13:00:00Z"}'
    )
    with pytest.raises(ValidationError, match="schema_version"):
        DeliveryJob.model_validate_json(raw)
