"""Pure rules of the notifier: announceable openings, pair keys, the replica index's version guard,
and the settings production refuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import ValidationError

from hwcollab_common.settings import DEV_POSTAL_ADDRESS
from hwcollab_notifier.domain import announceable, hash_id, pair_key, see_all_url
from hwcollab_notifier.index_sync import IndexChange, ReplicaIndex, change_from_document
from hwcollab_notifier.matching import OpeningCriteria
from hwcollab_notifier.settings import Settings
from hwcollab_schemas.events import OpeningDetails, SubscriberProfile

NOW = datetime(2026, 11, 24, 15, tzinfo=UTC)
SECRET = "x" * 40
DKIM_KEY = (
    Ed25519PrivateKey.generate()
    .private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    .decode()
)


def profile(subscriber_id: str, *, version: int = 1, **changes: Any) -> SubscriberProfile:
    fields: dict[str, Any] = {
        "subscriber_id": subscriber_id,
        "version": version,
        "email": f"{subscriber_id}@example.org",
        "roles": ("care_coordination",),
        "zip": "01608",
        "lat": 42.26,
        "lon": -71.80,
        "timezone": "America/New_York",
        "confirmed_at": NOW,
    }
    return SubscriberProfile(**(fields | changes))


def opening(**changes: Any) -> OpeningDetails:
    fields: dict[str, Any] = {
        "opening_id": "o1",
        "employer_id": "e1",
        "version": 1,
        "organization_name": "Acme Care",
        "employer_approved": True,
        "title": "Care Coordinator",
        "role": "care_coordinator",
        "setting": "medical",
        "employment_type": "full_time",
        "zip": "01609",
        "lat": 42.28,
        "lon": -71.82,
        "apply_url": "https://example.org/apply",
        "posted_at": NOW - timedelta(days=1),
        "expires_at": NOW + timedelta(days=29),
    }
    return OpeningDetails(**(fields | changes))


NEARBY = OpeningCriteria(
    role="care_coordinator",
    setting="medical",
    required_credentials=frozenset(),
    employment_type="full_time",
    remote=False,
    lat=42.28,
    lon=-71.82,
)


def test_only_open_unexpired_openings_of_approved_employers_are_announced() -> None:
    assert announceable(opening(), employer_status="approved", now=NOW)
    assert announceable(opening(), employer_status=None, now=NOW)
    assert not announceable(opening(status="closed"), employer_status="approved", now=NOW)
    assert not announceable(opening(employer_approved=False), employer_status=None, now=NOW)
    assert not announceable(opening(), employer_status="suspended", now=NOW)
    expired = opening(expires_at=NOW - timedelta(seconds=1))
    assert not announceable(expired, employer_status="approved", now=NOW)


def test_pair_keys_are_stable_distinct_and_hold_no_ids() -> None:
    key = pair_key("sub-1", "open-1")
    assert key == pair_key("sub-1", "open-1")
    assert key != pair_key("sub-1", "open-2") != pair_key("sub-2", "open-1")
    assert "sub-1" not in key
    assert "open-1" not in key
    assert hash_id("sub-1") != "sub-1"


def test_see_all_link_goes_to_the_job_board_around_the_subscriber() -> None:
    url = see_all_url("http://jobs.example/", profile("s1", radius_miles=40))
    assert url == "http://jobs.example/openings?zip=01608&radius_miles=40"


async def documents(*docs: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    for doc in docs:
        yield doc


async def test_index_ignores_versions_it_has_seen_and_older_ones() -> None:
    replica = ReplicaIndex()
    await replica.load(documents(), now=NOW)
    assert replica.apply(IndexChange("s1", 2, profile("s1", version=2)))
    assert replica.match(NEARBY).subscriber_ids() == ["s1"]
    # a late, older "updated" cannot put back someone who has since left
    assert replica.apply(IndexChange("s1", 3, None))
    assert not replica.apply(IndexChange("s1", 2, profile("s1", version=2)))
    assert replica.match(NEARBY).subscriber_ids() == []
    assert "s1" not in replica.index


async def test_a_refresh_reads_whole_rows_only_of_versions_the_index_lacks() -> None:
    replica = ReplicaIndex()
    held = {**profile("s1", version=2).model_dump(), "_id": "s1"}
    await replica.load(documents(held), now=NOW)
    rows = {
        "s1": held,  # re-read by the overlap: the index has this version
        "s2": {**profile("s2").model_dump(), "_id": "s2"},  # new
        "s3": {"_id": "s3", "version": 4, "status": "deleted"},  # left, never indexed
    }
    asked: list[list[str]] = []

    async def read(ids: list[str]) -> list[dict[str, Any]]:
        asked.append(ids)
        return [rows[i] for i in ids]

    versions = ({"_id": i, "version": row["version"]} for i, row in rows.items())
    applied = await replica.refresh(documents(*versions), read, now=NOW)
    assert asked == [["s2", "s3"]]
    assert applied == 2
    assert sorted(replica.match(NEARBY).subscriber_ids()) == ["s1", "s2"]
    # Nothing newer the next time: no whole row is read at all.
    versions = ({"_id": i, "version": row["version"]} for i, row in rows.items())
    assert await replica.refresh(documents(*versions), read, now=NOW) == 0
    assert asked == [["s2", "s3"]]


async def test_changes_that_arrive_while_loading_are_applied_after_the_load() -> None:
    replica = ReplicaIndex()
    with pytest.raises(RuntimeError):
        await replica.check_ready()
    replica.apply(IndexChange("s2", 1, profile("s2")))
    replica.apply(IndexChange("s1", 5, None))  # newer than the loaded row: s1 left
    loaded = {**profile("s1", version=4).model_dump(), "_id": "s1"}
    paused = {**profile("s3", status="paused").model_dump(), "_id": "s3"}
    tombstone = {"_id": "s4", "version": 3, "status": "deleted"}
    await replica.load(documents(loaded, paused, tombstone), now=NOW)
    await replica.check_ready()
    assert sorted(replica.match(NEARBY).subscriber_ids()) == ["s2"]
    assert len(replica.index) == 1


async def test_matches_say_who_takes_a_digest_as_frequencies_change() -> None:
    def digests() -> dict[str, bool]:
        found = replica.match(NEARBY)
        return dict(zip(found.subscriber_ids(), found.digest_flags(), strict=True))

    replica = ReplicaIndex()
    weekly = {**profile("s1", frequency="weekly").model_dump(), "_id": "s1"}
    await replica.load(documents(weekly), now=NOW)
    assert digests() == {"s1": True}
    replica.apply(IndexChange("s1", 2, profile("s1", version=2, frequency="immediate")))
    replica.apply(IndexChange("s2", 1, profile("s2", frequency="daily")))
    assert digests() == {"s1": False, "s2": True}
    replica.apply(IndexChange("s2", 2, None))  # gone
    assert digests() == {"s1": False}


def test_read_model_rows_become_index_changes() -> None:
    active = change_from_document({**profile("s1", version=7).model_dump(), "_id": "s1"})
    assert active.version == 7
    assert active.profile is not None
    gone = change_from_document({"_id": "s2", "version": 3, "status": "unsubscribed"})
    assert gone == IndexChange("s2", 3, None)


def test_production_refuses_the_example_postal_address() -> None:
    with pytest.raises(ValidationError, match="POSTAL_ADDRESS"):
        Settings(
            hwcollab_env="prod", link_signing_key=SECRET, admin_token=SECRET, reach_token=SECRET
        )
    with pytest.raises(ValidationError, match="REACH_TOKEN"):
        Settings(
            hwcollab_env="prod",
            link_signing_key=SECRET,
            admin_token=SECRET,
            postal_address="HWcollab, 1 Real Road, Albany, NY 12207",
        )
    ok = Settings(
        hwcollab_env="prod",
        link_signing_key=SECRET,
        admin_token=SECRET,
        reach_token=SECRET,
        postal_address="HWcollab, 1 Real Road, Albany, NY 12207",
        dkim_private_key=DKIM_KEY,
    )
    assert ok.postal_address != DEV_POSTAL_ADDRESS
    assert ok.mail_from_address == "opportunities@hwcollab.example"
    assert ok.mongodb_database == "hwcollab_notifier"
    assert ok.digest_max_items == 25
