"""This replica's complete match index, kept current from two sources.

Every replica needs every active subscriber, while a consumer group gives each replica only some
partitions. So the index is fed (1) by a broadcast consumer of the subscriber topic in a group
of its own per process (fast path, started before the index loads) and (2) by folding in
read-model rows changed since a watermark every few seconds (catch-up path: covers what was
published before the broadcast consumer joined and anything it missed). Both go through a
per-subscriber version guard, so overlap and reordering are harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Gauge
from pydantic import ValidationError

from hwcollab_common.mongo import Document
from hwcollab_notifier.domain import criteria_of
from hwcollab_notifier.matching import MatchIndex, MatchResult, OpeningCriteria
from hwcollab_schemas.events import SubscriberProfile

log = logging.getLogger(__name__)

INDEX_SIZE = Gauge("hwcollab_notifier_index_subscribers", "Active subscribers in the match index")
INDEX_READY = Gauge("hwcollab_notifier_index_ready", "1 once the match index has loaded")
# Read-model rows are written by other replicas whose transactions may commit a little after the
# time they stamp; re-reading this much history on every refresh closes that gap.
REFRESH_OVERLAP = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class IndexChange:
    subscriber_id: str
    version: int
    profile: SubscriberProfile | None
    """The profile when the subscriber is active (to be matched); None otherwise."""


def change_from_document(doc: Document) -> IndexChange:
    version = int(doc.get("version", 0))
    if doc.get("status") != "active":
        return IndexChange(str(doc["_id"]), version, None)
    try:
        profile = SubscriberProfile.model_validate({k: v for k, v in doc.items() if k != "_id"})
    except ValidationError:
        log.warning("subscriber %s in the read model is not a valid profile", doc["_id"])
        return IndexChange(str(doc["_id"]), version, None)
    return IndexChange(profile.subscriber_id, version, profile)


class ReplicaIndex:
    def __init__(self) -> None:
        self.index = MatchIndex()
        self._versions: dict[str, int] = {}
        self._buffer: list[IndexChange] = []
        self.loaded = False
        self.watermark: datetime | None = None
        self._ready = asyncio.Event()

    async def wait_loaded(self) -> None:
        """Matching waits for the first load: an empty index would miss everyone."""
        await self._ready.wait()

    def apply(self, change: IndexChange) -> bool:
        """Fold one change in (buffered until loaded); False when it is not newer."""
        if not self.loaded:
            self._buffer.append(change)
            return True
        if not self.is_newer(change.subscriber_id, change.version):
            return False
        self._versions[change.subscriber_id] = change.version
        if change.profile is None:
            self.index.remove(change.subscriber_id)
        else:
            self.index.upsert(criteria_of(change.profile))
        INDEX_SIZE.set(len(self.index))
        return True

    async def load(self, documents: AsyncIterator[Document], *, now: datetime) -> None:
        """Bulk-build from the read model, then apply what arrived meanwhile."""
        started = time.perf_counter()
        active = []
        versions: dict[str, int] = {}
        async for doc in documents:
            change = change_from_document(doc)
            versions[change.subscriber_id] = change.version
            if change.profile is not None:
                active.append(criteria_of(change.profile))
        self.index.build(active)
        self._versions = versions
        self.watermark = now
        self.loaded = True
        buffered, self._buffer = self._buffer, []
        for change in buffered:
            self.apply(change)
        INDEX_SIZE.set(len(self.index))
        INDEX_READY.set(1)
        self._ready.set()
        log.info(
            "match index loaded: %d active subscribers in %.2f s",
            len(self.index),
            time.perf_counter() - started,
        )

    async def refresh(
        self,
        versions: AsyncIterator[Document],
        read: Callable[[list[str]], Awaitable[Iterable[Document]]],
        *,
        now: datetime,
    ) -> int:
        """Fold in read-model rows changed since the watermark; the number applied.

        ``versions`` gives each changed row's id and version only, and ``read`` the whole rows
        of the ids this index has an older version of: every refresh re-reads the last
        ``REFRESH_OVERLAP`` of changes, which after a wave of sign-ups is thousands of rows the
        index already holds, and those cost neither the database nor this process a document.
        """
        newer = [
            str(doc["_id"])
            async for doc in versions
            if self.is_newer(str(doc["_id"]), int(doc.get("version", 0)))
        ]
        applied = 0
        if newer:
            for doc in await read(newer):
                applied += self.apply(change_from_document(doc))
        self.watermark = now
        return applied

    def is_newer(self, subscriber_id: str, version: int) -> bool:
        """Whether ``version`` of the subscriber is newer than what the index holds."""
        return self._versions.get(subscriber_id, 0) < version

    def since(self) -> datetime:
        assert self.watermark is not None
        return self.watermark - REFRESH_OVERLAP

    def match(self, opening: OpeningCriteria) -> MatchResult:
        return self.index.match(opening)

    async def check_ready(self) -> None:
        """A readiness check: fails while the index is still loading."""
        if not self.loaded:
            raise RuntimeError("the match index is still loading")
