"""The 7-day bounce and complaint rates against a real MongoDB, time on a FixedClock: sends are
tallied per process and hour, reports counted from ``bounces``, both only within the window;
the gauges on the registry follow."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from hwcollab_common.clock import FixedClock
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_notifier.delivery_rates import DeliveryRates, SendCounts
from hwcollab_notifier.settings import Settings

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 24, 15, 20, tzinfo=UTC)


@dataclass
class Postman:
    """What a process's postman has counted since it started (its counters)."""

    sent: float = 0
    refused: float = 0

    def counts(self) -> SendCounts:
        return SendCounts(self.sent, self.refused)


@dataclass
class Stack:
    clock: FixedClock
    runtime: ServiceRuntime

    def process(self, postman: Postman, name: str) -> DeliveryRates:
        return DeliveryRates(self.runtime.db, clock=self.clock, counts=postman.counts, process=name)

    async def reported(self, outcome: str, *, ago: timedelta = timedelta()) -> None:
        await self.runtime.db["bounces"].insert_one(
            {"_id": uuid.uuid4().hex, "outcome": outcome, "received_at": self.clock.now() - ago}
        )


@pytest.fixture
async def stack(mongo_url: str) -> AsyncIterator[Stack]:
    settings = Settings(
        mongodb_url=mongo_url, mongodb_database=f"test_rates_{uuid.uuid4().hex[:12]}"
    )
    clock = FixedClock(START)
    runtime = ServiceRuntime(settings, name="notifier", clock=clock)
    await DeliveryRates(runtime.db, clock=clock).ensure_indexes()
    try:
        yield Stack(clock, runtime)
    finally:
        await runtime.db.client.drop_database(runtime.db.name)


async def test_no_mail_means_rates_of_zero(stack: Stack) -> None:
    rates = await stack.process(Postman(), "a").refresh()
    assert (rates.sent, rates.bounce_rate, rates.complaint_rate) == (0, 0.0, 0.0)
    assert REGISTRY.get_sample_value("hwcollab_bounce_rate_7d") == 0.0


async def test_rates_over_every_process_and_only_the_last_seven_days(stack: Stack) -> None:
    first, second = Postman(), Postman()
    one, two = stack.process(first, "one"), stack.process(second, "two")
    first.sent, second.sent, second.refused = 600, 400, 10
    await one.tally()
    await two.tally()
    await one.tally()  # nothing new: nothing counted twice
    stack.clock.advance(timedelta(days=3))
    first.sent += 1000
    await one.tally()
    await stack.reported("hard", ago=timedelta(days=1))
    await stack.reported("hard")
    await stack.reported("complaint")
    await stack.reported("soft")
    await stack.reported("unknown_message")
    await stack.reported("complaint", ago=timedelta(days=8))  # out of the window

    rates = await one.refresh()
    assert (rates.sent, rates.refused, rates.hard_bounces, rates.complaints) == (2000, 10, 2, 1)
    assert rates.bounce_rate == pytest.approx(12 / 2010)
    assert rates.complaint_rate == pytest.approx(1 / 2000)
    assert REGISTRY.get_sample_value("hwcollab_complaint_rate_7d") == pytest.approx(0.0005)
    assert REGISTRY.get_sample_value("hwcollab_bounce_rate_7d") == pytest.approx(12 / 2010)
    assert REGISTRY.get_sample_value("hwcollab_emails_sent_7d") == 2000

    # Five days on, the first sends (8 days old) have left the window; the reports are 5 and 6
    # days old; three more days and they have left too.
    stack.clock.advance(timedelta(days=5))
    later = await two.refresh()
    assert (later.sent, later.refused, later.hard_bounces, later.complaints) == (1000, 0, 2, 1)
    stack.clock.advance(timedelta(days=3))
    assert (await two.refresh()).sent == 0
    assert (await two.rates()).hard_bounces == 0


async def test_a_tally_is_one_document_per_process_and_hour(stack: Stack) -> None:
    postman = Postman(sent=5)
    rates = stack.process(postman, "p")
    await rates.tally()
    postman.sent += 3
    await rates.tally()
    stack.clock.advance(timedelta(hours=1))
    postman.sent += 2
    await rates.tally()
    tallies = [doc async for doc in stack.runtime.db["send_tallies"].find().sort("hour", 1)]
    assert [(doc["hour"].hour, doc["sent"]) for doc in tallies] == [(15, 8), (16, 2)]
    assert all(doc["expires_at"] - doc["hour"] == timedelta(days=8) for doc in tallies)
