"""The reach estimate: exact counts from the index equal the plain rule's, split by digest, with
each optional criterion relaxed; the internal endpoint wants its token."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from hwcollab_common.composition import apply_overrides
from hwcollab_common.mongo import Document
from hwcollab_notifier.dependencies import get_index, get_settings
from hwcollab_notifier.index_sync import IndexChange, ReplicaIndex
from hwcollab_notifier.matching import MatchIndex, OpeningCriteria, SubscriberCriteria
from hwcollab_notifier.matching.reference import match_all, matches
from hwcollab_notifier.reach import criteria_of_query, estimate, reach_router
from hwcollab_notifier.settings import Settings
from hwcollab_schemas.events import SubscriberProfile
from hwcollab_schemas.reach import ReachQuery
from hwcollab_schemas.taxonomy import EMPLOYMENT_TYPE_CODES, SETTING_CODES

from .test_matching_properties import openings, subscribers


def _query(opening: OpeningCriteria) -> ReachQuery:
    return ReachQuery(
        role=opening.role,
        setting=opening.setting,
        required_credentials=tuple(sorted(opening.required_credentials)),
        employment_type=opening.employment_type,
        remote=opening.remote,
        lat=opening.lat,
        lon=opening.lon,
        pay_max_hourly=opening.pay_max_hourly,
    )


def _reference_count(population: list[SubscriberCriteria], opening: OpeningCriteria) -> int:
    return len(match_all(population, opening))


def _any_of(population: list[SubscriberCriteria], openings_: list[OpeningCriteria]) -> int:
    return sum(1 for sub in population if any(matches(sub, o) for o in openings_))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    population=st.lists(st.tuples(subscribers(), st.booleans()), min_size=0, max_size=40),
    opening=openings(),
)
def test_estimate_equals_the_plain_rule(
    population: list[tuple[SubscriberCriteria, bool]], opening: OpeningCriteria
) -> None:
    subs = [
        replace(sub, subscriber_id=str(uuid.uuid4()), digest=digest) for sub, digest in population
    ]
    index = MatchIndex()
    index.build(subs[: len(subs) // 2])
    for sub in subs[len(subs) // 2 :]:
        index.upsert(sub)  # some in the delta, not yet merged
    query = _query(opening)
    counts = estimate(index, query)

    matched = [sub for sub in subs if matches(sub, opening)]
    assert counts.subscribers == len(matched)
    assert counts.digest == sum(1 for sub in matched if sub.digest)
    assert counts.immediate == counts.subscribers - counts.digest

    relaxed = {(r.criterion, r.code): r.subscribers for r in counts.relaxed}
    for credential in opening.required_credentials:
        wider = replace(opening, required_credentials=opening.required_credentials - {credential})
        assert relaxed["credential", credential] == _reference_count(subs, wider)
    every_setting = [replace(opening, setting=code) for code in SETTING_CODES]
    assert relaxed["setting", None] == _any_of(subs, every_setting)
    every_type = [replace(opening, employment_type=code) for code in EMPLOYMENT_TYPE_CODES]
    assert relaxed["employment_type", None] == _any_of(subs, every_type)
    if opening.pay_max_hourly is not None:
        assert relaxed["pay", None] == _reference_count(subs, replace(opening, pay_max_hourly=None))
    else:
        assert ("pay", None) not in relaxed
    if not opening.remote:
        assert relaxed["on_site", None] == _reference_count(subs, replace(opening, remote=True))
    else:
        assert ("on_site", None) not in relaxed
    assert criteria_of_query(query) == opening


def _person(*, digest: bool, credentials: frozenset[str] = frozenset()) -> SubscriberCriteria:
    return SubscriberCriteria(
        subscriber_id=str(uuid.uuid4()),
        roles=frozenset({"care_manager"}),
        settings=frozenset(),
        credentials=credentials,
        employment_types=frozenset(),
        lat=42.26,
        lon=-71.80,
        radius_miles=25,
        remote_ok=False,
        digest=digest,
    )


WORCESTER = {"role": "care_manager", "setting": "medical", "employment_type": "full_time"}


async def _post(app: FastAPI, body: Mapping[str, object], token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as client:
        return await client.post("/api/internal/reach", json=body, headers=headers)


async def test_endpoint_wants_the_token_and_a_loaded_index() -> None:
    replica = ReplicaIndex()
    notifier_settings = Settings(reach_token=SecretStr("t" * 40))
    app = FastAPI()
    app.include_router(reach_router)
    apply_overrides(app, {get_index: lambda: replica, get_settings: lambda: notifier_settings})
    body = WORCESTER | {"lat": 42.27, "lon": -71.80, "required_credentials": ["rn"]}

    assert (await _post(app, body, None)).status_code == 401
    assert (await _post(app, body, "wrong")).status_code == 401
    loading = await _post(app, body, "t" * 40)
    assert loading.status_code == 503
    assert loading.headers["Retry-After"]

    async def documents() -> AsyncIterator[Document]:
        empty: tuple[Document, ...] = ()
        for document in empty:
            yield document

    await replica.load(documents(), now=datetime.now(UTC))
    for _ in range(12):
        replica.index.upsert(_person(digest=False, credentials=frozenset({"rn"})))
    for _ in range(5):
        replica.index.upsert(_person(digest=True, credentials=frozenset({"rn"})))
    for _ in range(20):
        replica.index.upsert(_person(digest=True))
    answer = await _post(app, body, "t" * 40)
    assert answer.status_code == 200, answer.text
    counts = answer.json()
    assert (counts["subscribers"], counts["immediate"], counts["digest"]) == (17, 12, 5)
    assert {"criterion": "credential", "code": "rn", "subscribers": 37} in counts["relaxed"]
    invalid = await _post(app, WORCESTER | {"role": "astronaut"}, "t" * 40)
    assert invalid.status_code == 422


def _profile(subscriber_id: str, version: int, frequency: str) -> SubscriberProfile:
    return SubscriberProfile.model_validate(
        {
            "subscriber_id": subscriber_id,
            "version": version,
            "email": f"{subscriber_id}@example.org",
            "roles": ("care_management",),
            "frequency": frequency,
            "zip": "01608",
            "lat": 42.26,
            "lon": -71.80,
            "timezone": "America/New_York",
            "confirmed_at": datetime(2026, 3, 2, tzinfo=UTC),
        }
    )


async def test_the_estimate_splits_as_the_announcer_records() -> None:
    """Whoever takes a digest counts in the estimate's digest part, as their frequency changes
    (the announcer records their rows from the same flag of the index)."""
    replica = ReplicaIndex()

    async def nothing() -> AsyncIterator[Document]:
        empty: tuple[Document, ...] = ()
        for document in empty:
            yield document

    await replica.load(nothing(), now=datetime.now(UTC))
    query = ReachQuery(**WORCESTER, lat=42.26, lon=-71.80)
    for version, frequency in enumerate(("daily", "immediate", "weekly", "immediate"), start=1):
        replica.apply(IndexChange("s1", version, _profile("s1", version, frequency)))
        counts = estimate(replica.index, query)
        assert (counts.subscribers, counts.digest) == (1, int(frequency != "immediate"))
