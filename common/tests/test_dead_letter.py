"""The copy of a message that goes to a DLQ: why in headers, and always small enough to publish."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from hwcollab_common.consuming import (
    DLQ_MAX_KEY_BYTES,
    DLQ_MAX_VALUE_BYTES,
    dead_letter_record,
)

NOW = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)


def test_a_small_message_is_copied_whole_with_where_and_why() -> None:
    record = dead_letter_record(
        topic="hwcollab.opening.v1",
        key=b"o-1",
        value=b"not json",
        error="not JSON: Expecting value\r\nInjected: header",
        partition=2,
        offset=41,
        group_id="hwcollab-notifier",
        now=NOW,
    )
    assert record.key == b"o-1"
    assert record.value == b"not json"
    assert record.headers == {
        "error": "not JSON: Expecting value  Injected: header",
        "original_topic": "hwcollab.opening.v1",
        "failed_at": "2026-11-24T13:00:00+00:00",
        "original_partition": "2",
        "original_offset": "41",
        "consumer_group": "hwcollab-notifier",
    }


def test_an_oversized_message_is_truncated_with_its_size_and_digest() -> None:
    value = b"x" * (5 * 1024 * 1024)
    record = dead_letter_record(
        topic="hwcollab.opening.v1", key=b"k" * 5000, value=value, error="too large: 5242880 bytes"
    )
    assert len(record.value) == DLQ_MAX_VALUE_BYTES
    assert value.startswith(record.value)
    assert record.key == b"k" * DLQ_MAX_KEY_BYTES
    assert record.headers["truncated"] == "true"
    assert record.headers["original_size"] == str(len(value))
    assert record.headers["sha256"] == hashlib.sha256(value).hexdigest()
    assert record.headers["original_key_size"] == "5000"


def test_the_error_header_is_bounded() -> None:
    record = dead_letter_record(topic="t", key=None, value=b"", error="e" * 10_000)
    assert len(record.headers["error"]) == 1000
    assert "truncated" not in record.headers
    assert record.key is None
