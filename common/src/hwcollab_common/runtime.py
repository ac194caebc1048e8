"""What every service process holds: MongoDB client, Kafka broker, outbox relay, link signer,
clock — created together, started and stopped together from the app's lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from hwcollab_common.clock import Clock, SystemClock
from hwcollab_common.consuming import ProcessedEvents
from hwcollab_common.kafka import KafkaEventPublisher, create_broker
from hwcollab_common.mongo import Document, create_client, in_transaction, ping
from hwcollab_common.ops import ReadinessCheck
from hwcollab_common.outbox import OutboxRelay, ensure_outbox_indexes, stage_events
from hwcollab_common.settings import ServiceSettings
from hwcollab_common.tokens import LinkSigner
from hwcollab_schemas import Event

log = logging.getLogger(__name__)
T = TypeVar("T")

BROKER_STOP_SECONDS = 20.0
"""Longer than the broker's graceful timeout for handlers in flight (15 s)."""


class ServiceRuntime:
    def __init__(self, settings: ServiceSettings, *, name: str, clock: Clock | None = None) -> None:
        self.settings = settings
        self.name = name
        self.clock: Clock = clock or SystemClock()
        self.mongo: AsyncMongoClient[Document] = create_client(
            settings.mongodb_url.get_secret_value(), app_name=f"hwcollab-{name}"
        )
        self.db: AsyncDatabase[Document] = self.mongo[settings.mongodb_database]
        self.broker: KafkaBroker = create_broker(
            settings.kafka_bootstrap_servers, client_id=f"hwcollab-{name}"
        )
        self.relay = OutboxRelay(
            self.db,
            KafkaEventPublisher(self.broker),
            clock=self.clock,
            poll_seconds=settings.outbox_poll_seconds,
        )
        self.processed = ProcessedEvents(self.db, consumer=name)
        self.signer = LinkSigner(
            settings.link_signing_key.get_secret_value(),
            fallback_keys=settings.fallback_keys,
            clock=self.clock,
        )

    async def start(self) -> None:
        """Indexes, broker (and the consumers registered on it), then the outbox relay."""
        await ensure_outbox_indexes(self.db)
        await self.broker.start()
        self.relay.start()
        log.info("%s started", self.name)

    async def stop(self) -> None:
        """Relay finishes its batch, consumers commit and leave their groups, then MongoDB.

        While Kafka is unreachable the broker's own stop never ends (it keeps trying to commit and
        flush); after :data:`BROKER_STOP_SECONDS` the process leaves without it: unpublished events
        stay in the outbox and uncommitted messages are delivered again, and deduplicated.
        """
        await self.relay.stop()
        try:
            await asyncio.wait_for(self.broker.stop(), timeout=BROKER_STOP_SECONDS)
        except TimeoutError:
            log.warning("Kafka did not answer within %.0f s of stopping", BROKER_STOP_SECONDS)
        await self.mongo.close()
        log.info("%s stopped", self.name)

    async def commit(
        self, work: Callable[[AsyncClientSession], Awaitable[tuple[T, Sequence[Event]]]]
    ) -> T:
        """Run ``work`` in a transaction and stage the events it returns in the same transaction."""

        async def transaction(session: AsyncClientSession) -> T:
            result, events = await work(session)
            await stage_events(self.db, events, session=session)
            return result

        result = await in_transaction(self.mongo, transaction)
        self.relay.wake()
        return result

    async def check_mongodb(self) -> None:
        await ping(self.db)

    async def check_kafka(self) -> None:
        if not await self.broker.ping(timeout=2.0):
            raise ConnectionError("Kafka is not reachable")

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        return {"mongodb": self.check_mongodb, "kafka": self.check_kafka}
