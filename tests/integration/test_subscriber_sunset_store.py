"""Engagement and sunsetting on real MongoDB with an injected clock: the store's queries find
exactly the silent and the unanswered, a click is one conditional write, the lease lets one
replica run, and the events go to the outbox with the change."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hwcollab_common.clock import FixedClock
from hwcollab_common.outbox import OUTBOX_COLLECTION
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_common.tokens import Purpose
from hwcollab_subscriber.domain import SignUp
from hwcollab_subscriber.handlers import Links, SubscriberService, SunsetPolicy
from hwcollab_subscriber.repository import MongoSubscriberStore
from hwcollab_subscriber.settings import Settings

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
DAY = timedelta(days=1)


class World:
    def __init__(self, runtime: ServiceRuntime, store: MongoSubscriberStore, clock: FixedClock):
        self.runtime = runtime
        self.store = store
        self.clock = clock
        self.links = Links(
            runtime.signer,
            public_url="http://subscriber.test",
            employer_public_url="http://employer.test",
        )
        self.service = SubscriberService(
            store=store, links=self.links, clock=clock, sunset=SunsetPolicy()
        )

    async def confirmed(self, name: str) -> str:
        body: dict[str, Any] = {
            "email": f"{name}@example.org",
            "roles": ["care_management"],
            "zip": "01608",
        }
        await self.service.sign_up(SignUp.model_validate(body))
        document = await self.runtime.db["subscribers"].find_one(
            {"email_key": f"{name}@example.org"}
        )
        assert document is not None
        await self.service.confirm(self.links.token(Purpose.CONFIRM, document["_id"]))
        return str(document["_id"])

    async def record(self, subscriber_id: str) -> dict[str, Any]:
        document = await self.runtime.db["subscribers"].find_one({"_id": subscriber_id})
        assert document is not None
        return document

    async def asked(self) -> list[str]:
        cursor = self.runtime.db[OUTBOX_COLLECTION].find(
            {"event_type": "subscriber.manage_link_requested"}
        )
        return [
            event["key"]
            async for event in cursor
            if json.loads(event["value"])["payload"]["reason"] == "still_interested"
        ]

    def click(self, subscriber_id: str) -> str:
        url = self.links.clicks.url(subscriber_id, "op-1", "details")
        return url.split("token=", 1)[1]


@pytest.fixture
async def world(mongo_url: str) -> AsyncIterator[World]:
    settings = Settings(
        mongodb_url=mongo_url, mongodb_database=f"test_sunset_{uuid.uuid4().hex[:12]}"
    )
    clock = FixedClock(START)
    runtime = ServiceRuntime(settings, name="subscriber", clock=clock)
    store = MongoSubscriberStore(runtime)
    await store.ensure_indexes()
    yield World(runtime, store, clock)
    await runtime.mongo.drop_database(settings.mongodb_database)
    await runtime.mongo.close()


async def test_sunsetting_pauses_only_the_silent(world: World) -> None:
    silent = await world.confirmed("silent")
    clicker = await world.confirmed("clicker")
    asked_then_clicked = await world.confirmed("answered")
    chose_pause = await world.confirmed("paused")
    await world.service.set_paused(world.links.token(Purpose.MANAGE, chose_pause), paused=True)

    world.clock.advance(100 * DAY)
    version = (await world.record(clicker))["version"]
    await world.service.click(world.click(clicker))
    record = await world.record(clicker)
    assert record["last_engaged_at"] == world.clock.now()
    assert record["version"] == version + 1
    world.clock.advance(timedelta(minutes=30))
    assert not await world.store.record_engagement(
        clicker, now=world.clock.now(), every=timedelta(hours=1)
    )

    world.clock.advance(81 * DAY)
    assert sorted(
        await world.store.silent_ids(cutoff=world.clock.now() - 180 * DAY, limit=10)
    ) == sorted([silent, asked_then_clicked])
    run = await world.service.run_sunset()
    assert (run.noticed, run.paused) == (2, 0)
    assert sorted(await world.asked()) == sorted([silent, asked_then_clicked])
    assert await world.store.silent_ids(cutoff=world.clock.now() - 180 * DAY, limit=10) == []

    world.clock.advance(2 * DAY)
    await world.service.click(world.click(asked_then_clicked))
    assert (await world.record(asked_then_clicked))["sunset_notice_at"] is None

    world.clock.advance(12 * DAY)
    assert await world.store.unanswered_ids(cutoff=world.clock.now() - 14 * DAY, limit=10) == [
        silent
    ]
    run = await world.service.run_sunset()
    assert (run.noticed, run.paused) == (0, 1)
    states = {
        who: ((await world.record(who))["status"], (await world.record(who))["paused_reason"])
        for who in (silent, clicker, asked_then_clicked, chose_pause)
    }
    assert states == {
        silent: ("paused", "inactive"),
        clicker: ("active", None),
        asked_then_clicked: ("active", None),
        chose_pause: ("paused", None),
    }
    assert len(await world.asked()) == 2  # one email each


async def test_one_replica_at_a_time_holds_the_lease(world: World) -> None:
    now, ttl = world.clock.now(), timedelta(minutes=3)
    assert await world.store.take_lease("sunset", owner="a", now=now, ttl=ttl)
    assert not await world.store.take_lease("sunset", owner="b", now=now, ttl=ttl)
    assert await world.store.take_lease("sunset", owner="a", now=now + DAY / 1440, ttl=ttl)
    assert await world.store.take_lease(
        "sunset", owner="b", now=now + timedelta(minutes=5), ttl=ttl
    )
    assert not await world.store.take_lease(
        "sunset", owner="a", now=now + timedelta(minutes=6), ttl=ttl
    )
