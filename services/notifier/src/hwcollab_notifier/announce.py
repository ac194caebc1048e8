"""Announcing an opening: match it against the index, queue delivery jobs for the immediate
readers who have no ledger row for it yet (their row is written once, with the email's outcome),
record a row for each digest reader (it waits for the digest run); and a new subscriber's
welcome pairs."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence, Set
from datetime import datetime, timedelta
from itertools import groupby

from hwcollab_common.mongo import Document
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_notifier import metrics
from hwcollab_notifier.delivery import Snapshot, chunks
from hwcollab_notifier.domain import (
    criteria_of,
    ledger_row,
    opening_criteria,
    pair_key,
)
from hwcollab_notifier.index_sync import ReplicaIndex, change_from_document
from hwcollab_notifier.jobs import JobQueue
from hwcollab_notifier.matching.reference import matches
from hwcollab_notifier.ports import DeliveryPorts
from hwcollab_notifier.repository import NotifierRepository
from hwcollab_schemas.delivery import DeliveryJob
from hwcollab_schemas.events import (
    OpeningDetails,
    SubscriberProfile,
)

log = logging.getLogger(__name__)


async def live_opening(
    repository: NotifierRepository, opening_id: str, *, now: datetime
) -> tuple[OpeningDetails, Document] | None:
    """The opening, and its stored document, if it may still be announced (open, unexpired,
    employer approved)."""
    snapshot = await Snapshot.read(repository, [opening_id])
    details = snapshot.live(opening_id, now=now)
    return None if details is None else (details, dict(snapshot.openings[opening_id]))


class Announcer:
    """Matches an announceable opening and queues or records each new pair."""

    def __init__(
        self,
        *,
        runtime: ServiceRuntime,
        repository: NotifierRepository,
        index: ReplicaIndex,
        jobs: JobQueue,
        batch_size: int = 500,
        catch_up: timedelta = timedelta(minutes=1),
    ) -> None:
        self._runtime = runtime
        self._repo = repository
        self._index = index
        self._jobs = jobs
        self._batch_size = batch_size
        self._catch_up = catch_up

    async def announce(self, opening_id: str) -> int:
        """Queue or record every new match of the opening; the number of new pairs.

        Runs again on each newer version (an edit may reach new people); pairs with a row are
        skipped, and a pair queued twice (an edit while the first jobs are still on their way)
        is one Message-ID, claimed once, so nobody hears of an opening twice.
        """
        found = await live_opening(self._repo, opening_id, now=self._runtime.clock.now())
        if found is None:
            return 0
        details, doc = found
        if int(doc.get("announced_version") or 0) >= details.version:
            return 0
        await self._index.wait_loaded()
        await self._fold_in_new_subscribers()
        started = time.perf_counter()
        result = self._index.match(opening_criteria(details))
        metrics.MATCH_SECONDS.observe(time.perf_counter() - started)
        readers = list(zip(result.subscriber_ids(), result.digest_flags(), strict=True))
        now = self._runtime.clock.now()
        # Read after matching: a reader the match found has been registered, so their welcome
        # is either still to go (and named here) or has recorded its rows already.
        welcoming = await self._repo.welcome_pending()
        new = 0
        # A batch of readers at a time, recorded and queued before the next is read: the first
        # emails leave while the rest of a large audience is still being recorded.
        for chunk in chunks(readers, self._batch_size):
            new += await self._record(opening_id, chunk, welcoming=welcoming, now=now)
        await self._repo.mark_announced(
            opening_id, version=details.version, matches=len(readers), now=now
        )
        log.info("opening %s matched %d subscribers, %d new pairs", opening_id, len(readers), new)
        return new

    async def _record(
        self,
        opening_id: str,
        readers: Sequence[tuple[str, bool]],
        *,
        welcoming: Set[str],
        now: datetime,
    ) -> int:
        """Jobs for the immediate ``readers`` (subscriber id, whether they take a digest: the
        index knows) who have no row for the opening, and rows for the digest ones; the number
        of new pairs. One read (the rows there are) and one insert: the index holds active
        subscribers only, and each email checks its reader again.

        An immediate pair gets its row when its email has an outcome, in the write that settles
        it, which halves what a pair costs the database. The exception is a reader whose welcome
        email is still to go (``welcoming``): the welcome lists the open openings that match
        them and records its own rows for them, so the pair is recorded here and now, and
        whichever of the two emails records it first is the one that carries the opening.
        """
        keys = {subscriber_id: pair_key(subscriber_id, opening_id) for subscriber_id, _ in readers}
        recorded = await self._repo.rows_by_key(keys.values())
        new = [(s, digest) for s, digest in readers if keys[s] not in recorded]
        rows = [
            ledger_row(
                subscriber_id=subscriber_id,
                opening_id=opening_id,
                channel="digest" if digest else "immediate",
                now=now,
            )
            for subscriber_id, digest in new
            if digest or subscriber_id in welcoming
        ]
        inserted = set(await self._repo.add_pairs(rows))
        immediate = [
            subscriber_id
            for subscriber_id, digest in new
            if not digest and (subscriber_id not in welcoming or keys[subscriber_id] in inserted)
        ]
        digests = sum(1 for row in rows if row["channel"] == "digest" and row["_id"] in inserted)
        await self._jobs.put(
            immediate_jobs(
                [(subscriber_id, opening_id) for subscriber_id in immediate],
                now=now,
                size=self._batch_size,
            )
        )
        metrics.MATCHES.labels("immediate").inc(len(immediate))
        metrics.MATCHES.labels("digest").inc(digests)
        return len(immediate) + digests

    async def _fold_in_new_subscribers(self) -> None:
        """Bring the index up to date with people who signed up in the last minute.

        Another replica may have applied a registration that this replica's index has not seen
        yet (its feed or refresh lags by up to a refresh interval). Such a person's welcome email
        may already have gone out without this opening, so matching without them would lose the
        pair. Registrations are few, and the index's version guard ignores what it already has.
        """
        since = self._runtime.clock.now() - self._catch_up
        async for doc in self._repo.registered_since(since):
            self._index.apply(change_from_document(doc))

    async def welcome_matches(self, profiles: Sequence[SubscriberProfile]) -> None:
        await welcome_matches(self._repo, profiles, now=self._runtime.clock.now())


async def welcome_matches(
    store: DeliveryPorts, profiles: Sequence[SubscriberProfile], *, now: datetime
) -> list[str]:
    """Record the open openings that already match new subscribers as their welcome pairs (one
    scan of the open openings and one insert for the whole batch); the pairs recorded."""
    openings = await store.live_openings()
    snapshot = await Snapshot.read(store, (str(doc["_id"]) for doc in openings))
    live = [d for doc in openings if (d := snapshot.live(str(doc["_id"]), now=now)) is not None]
    rows = [
        ledger_row(
            subscriber_id=profile.subscriber_id,
            opening_id=details.opening_id,
            channel="welcome",
            now=now,
        )
        for profile in profiles
        for criteria in [criteria_of(profile)]
        for details in live
        if matches(criteria, opening_criteria(details))
    ]
    return await store.add_pairs(rows)


def immediate_jobs(
    pairs: Sequence[tuple[str, str]], *, now: datetime, size: int
) -> list[DeliveryJob]:
    """Jobs for (subscriber, opening) pairs: one per opening and chunk of ``size`` readers."""
    jobs: list[DeliveryJob] = []
    ordered = sorted(pairs, key=lambda pair: pair[1])
    for opening_id, group in groupby(ordered, key=lambda pair: pair[1]):
        readers = [subscriber_id for subscriber_id, _ in group]
        for chunk in chunks(readers, size):
            jobs.append(
                DeliveryJob(
                    kind="immediate",
                    subscriber_id=chunk[0],
                    subscriber_ids=tuple(chunk) if len(chunk) > 1 else (),
                    opening_id=opening_id,
                    created_at=now,
                )
            )
    return jobs
