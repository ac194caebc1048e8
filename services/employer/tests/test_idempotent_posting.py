"""Retried posts and an employer's own opening ids, over the JSON API on in-memory fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from hwcollab_employer.commands import OpeningFields
from hwcollab_employer.idempotency import (
    POST_OPENING,
    IdempotencyClaim,
    StoredAnswer,
    fingerprint,
    record_for,
)
from hwcollab_employer.ports import IdempotencyKeyTakenError
from hwcollab_schemas.events import OpeningUpdated

from .conftest import ADMIN_HEADERS, BodyFactory, Harness

PASSWORD = "a very long passphrase"


async def _bearer(client: Any, signup: Any, email: str) -> dict[str, str]:
    assert (
        await client.post("/api/admin/employers", headers=ADMIN_HEADERS, json=signup(email))
    ).status_code == 201
    answer = await client.post("/api/auth/token", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def _api_key(client: Any, bearer: dict[str, str]) -> dict[str, str]:
    answer = await client.post("/api/employers/me/api-keys", headers=bearer, json={"name": "ats"})
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['api_key']}"}


@pytest.fixture
async def api(harness: Harness, signup: BodyFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with harness.client() as client:
        client.headers.update(await _bearer(client, signup, "hr@one.example"))
        yield client


def _posted(harness: Harness) -> int:
    return len(harness.uow.of_type("opening.posted"))


async def test_a_retry_with_the_same_key_answers_the_first_opening_and_creates_nothing(
    harness: Harness, api: httpx.AsyncClient, opening_json: BodyFactory
) -> None:
    key = {"Idempotency-Key": "req-42-attempt"}
    first = await api.post("/api/openings", json=opening_json(), headers=key)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers

    # The same body with its keys in another order and a number spelled as text.
    reordered = dict(reversed(list(opening_json(pay_min="38").items())))
    again = await api.post("/api/openings", json=reordered, headers=key)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert _posted(harness) == 1
    assert len((await api.get("/api/employers/me/openings")).json()) == 1


async def test_the_same_key_with_another_body_is_refused_and_creates_nothing(
    harness: Harness, api: httpx.AsyncClient, opening_json: BodyFactory
) -> None:
    key = {"Idempotency-Key": "req-43"}
    assert (await api.post("/api/openings", json=opening_json(), headers=key)).status_code == 201
    other = await api.post("/api/openings", json=opening_json(title="Another job"), headers=key)
    assert other.status_code == 422, other.text
    [error] = other.json()["detail"]
    assert error["loc"] == ["header", "Idempotency-Key"]
    assert "different request body" in error["msg"]
    assert _posted(harness) == 1


async def test_without_a_key_every_post_creates_an_opening(
    harness: Harness, api: httpx.AsyncClient, opening_json: BodyFactory
) -> None:
    for _ in range(2):
        assert (await api.post("/api/openings", json=opening_json())).status_code == 201
    assert _posted(harness) == 2


async def test_a_key_is_kept_24_hours(
    harness: Harness, api: httpx.AsyncClient, opening_json: BodyFactory
) -> None:
    api.headers.update(await _api_key(api, dict(api.headers)))  # outlives an access token
    key = {"Idempotency-Key": "daily-sync"}
    first = await api.post("/api/openings", json=opening_json(), headers=key)
    harness.clock.advance(timedelta(hours=23, minutes=59))
    assert (await api.post("/api/openings", json=opening_json(), headers=key)).json()[
        "opening_id"
    ] == first.json()["opening_id"]
    harness.clock.advance(timedelta(minutes=2))
    later = await api.post("/api/openings", json=opening_json(), headers=key)
    assert later.status_code == 201
    assert "idempotent-replayed" not in later.headers
    assert later.json()["opening_id"] != first.json()["opening_id"]
    assert _posted(harness) == 2


async def test_keys_belong_to_their_api_key_or_employer(
    harness: Harness, api: httpx.AsyncClient, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    key = {"Idempotency-Key": "shared-key"}
    ids = set()
    first_key = await _api_key(api, dict(api.headers))
    second_key = await _api_key(api, dict(api.headers))
    other_employer = await _bearer(api, signup, "hr@two.example")
    for credentials in ({}, first_key, second_key, other_employer):
        answer = await api.post("/api/openings", json=opening_json(), headers=key | credentials)
        assert answer.status_code == 201, answer.text
        assert "idempotent-replayed" not in answer.headers
        ids.add(answer.json()["opening_id"])
    replay = await api.post("/api/openings", json=opening_json(), headers=key | first_key)
    assert replay.headers["idempotent-replayed"] == "true"
    assert len(ids) == 4


async def test_a_refused_post_keeps_no_answer(
    harness: Harness, api: httpx.AsyncClient, opening_json: BodyFactory
) -> None:
    key = {"Idempotency-Key": "fix-and-retry"}
    past = (harness.clock.now() - timedelta(days=1)).isoformat()
    refused = await api.post("/api/openings", json=opening_json(expires_at=past), headers=key)
    assert refused.status_code == 422
    fixed = await api.post("/api/openings", json=opening_json(), headers=key)
    assert fixed.status_code == 201
    assert "idempotent-replayed" not in fixed.headers


@pytest.mark.parametrize("value", [b"", b"k" * 256, "caf\u00e9".encode(), b"tab\tbed"])
async def test_a_malformed_key_is_refused(
    harness: Harness, api: httpx.AsyncClient, opening_json: BodyFactory, value: bytes
) -> None:
    answer = await api.post(
        "/api/openings", json=opening_json(), headers={b"Idempotency-Key": value}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert _posted(harness) == 0


async def test_the_longest_key_is_accepted(
    harness: Harness, api: httpx.AsyncClient, opening_json: BodyFactory
) -> None:
    key = {"Idempotency-Key": "k" * 255}
    assert (await api.post("/api/openings", json=opening_json(), headers=key)).status_code == 201


async def test_a_request_that_loses_the_race_for_its_key_answers_as_the_winner(
    harness: Harness, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    """Two retries at once: the one whose key was taken while it ran creates nothing (its
    transaction is undone) and answers the first opening."""
    async with harness.client() as client:
        await _bearer(client, signup, "hr@race.example")
    employer_id = next(iter(harness.repository.employers))
    fields = OpeningFields.model_validate(opening_json())
    claim = IdempotencyClaim(
        principal=f"employer:{employer_id}",
        key="raced",
        fingerprint=fingerprint(POST_OPENING, fields.model_dump(mode="json")),
    )
    winner = StoredAnswer(status=201, body={"opening_id": "the-winner"})
    repository = harness.repository
    # The winner kept its answer after this request looked and found none.
    repository.idempotency[(claim.principal, claim.key)] = record_for(
        claim, winner, now=harness.clock.now()
    )
    read = repository.idempotency_record
    looks = []

    async def read_before_the_winner_commits(principal: str, key: str) -> Any:
        looks.append(key)
        return None if len(looks) == 1 else await read(principal, key)

    repository.idempotency_record = read_before_the_winner_commits  # type: ignore[method-assign]
    answer = await harness.service.post_opening_once(
        employer_id, fields, claim=claim, answer=lambda _: StoredAnswer(201, {"mine": True})
    )
    assert answer.body == {"opening_id": "the-winner"}
    assert answer.replayed
    assert len(looks) == 2
    assert repository.openings == {}
    assert _posted(harness) == 0


# --- external ids --------------------------------------------------------------------------


async def test_an_external_id_is_unique_per_employer(
    harness: Harness, api: httpx.AsyncClient, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    posted = await api.post("/api/openings", json=opening_json(external_id="REQ-7"))
    assert posted.status_code == 201, posted.text
    assert posted.json()["external_id"] == "REQ-7"
    again = await api.post("/api/openings", json=opening_json(external_id="REQ-7"))
    assert again.status_code == 409
    assert "REQ-7" in again.json()["detail"]
    other = await _bearer(api, signup, "hr@two.example")
    theirs = await api.post("/api/openings", json=opening_json(external_id="REQ-7"), headers=other)
    assert theirs.status_code == 201
    public = await api.get(f"/api/openings/{posted.json()['opening_id']}")
    assert "external_id" not in public.json()
    assert _posted(harness) == 2


@pytest.mark.parametrize("value", ["a/b", "has space", "x" * 201, "..", "\u00e9t\u00e9"])
async def test_a_malformed_external_id_is_refused(
    api: httpx.AsyncClient, opening_json: BodyFactory, value: str
) -> None:
    answer = await api.post("/api/openings", json=opening_json(external_id=value))
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"][-1] == "external_id"


async def test_an_ats_reads_and_edits_an_opening_by_its_external_id(
    harness: Harness, api: httpx.AsyncClient, signup: BodyFactory, opening_json: BodyFactory
) -> None:
    posted = (await api.post("/api/openings", json=opening_json(external_id="REQ-9"))).json()
    await api.post("/api/openings", json=opening_json(external_id="REQ-10"))
    found = await api.get("/api/openings/by-external-id/REQ-9")
    assert found.status_code == 200
    assert found.json()["opening_id"] == posted["opening_id"]

    edited = await api.patch("/api/openings/by-external-id/REQ-9", json={"title": "Lead RN"})
    assert edited.status_code == 200, edited.text
    assert (edited.json()["title"], edited.json()["version"]) == ("Lead RN", 2)
    [update] = harness.uow.of_class(OpeningUpdated)
    assert update.payload.opening_id == posted["opening_id"]

    clash = await api.patch("/api/openings/by-external-id/REQ-9", json={"external_id": "REQ-10"})
    assert clash.status_code == 409
    renamed = await api.patch("/api/openings/by-external-id/REQ-9", json={"external_id": "R-11"})
    assert renamed.json()["external_id"] == "R-11"
    assert (await api.get("/api/openings/by-external-id/REQ-9")).status_code == 404

    other = await _bearer(api, signup, "hr@two.example")
    for method in ("GET", "PATCH"):
        theirs = await api.request(
            method, "/api/openings/by-external-id/R-11", headers=other, json={"title": "Mine"}
        )
        assert theirs.status_code == 404, method
    assert (await api.get("/api/openings/by-external-id/R-11")).json()["title"] == "Lead RN"


async def test_editing_on_the_dashboard_keeps_the_external_id(
    harness: Harness, api: httpx.AsyncClient, opening_json: BodyFactory
) -> None:
    posted = (await api.post("/api/openings", json=opening_json(external_id="REQ-1"))).json()
    edited = await api.patch(f"/api/openings/{posted['opening_id']}", json={"title": "Changed"})
    assert edited.json()["external_id"] == "REQ-1"


async def test_a_key_still_held_by_another_request_is_a_409(
    harness: Harness, api: httpx.AsyncClient, opening_json: BodyFactory
) -> None:
    """When the key stays taken but its answer never shows (the other request is still
    running after every attempt), the client is told to retry; nothing is created."""
    repository = harness.repository

    async def always_taken(record: Any, *, replaces: Any) -> None:
        raise IdempotencyKeyTakenError(record.claim.key)

    repository.keep_idempotency_record = always_taken  # type: ignore[method-assign]
    answer = await api.post(
        "/api/openings", json=opening_json(), headers={"Idempotency-Key": "held"}
    )
    assert answer.status_code == 409
    assert "still being processed" in answer.json()["detail"]
    assert repository.openings == {}
    assert _posted(harness) == 0
