"""Daily and weekly digests: every digest pair recorded before the subscriber's latest scheduled
instant and still open goes out in one email (at most ``DIGEST_MAX_ITEMS`` listed, then "see all
N"); pairs whose opening closed meanwhile are dropped; an empty digest sends nothing.

A run pages through the subscribers with waiting digest rows ``DELIVERY_BATCH_SIZE`` at a time:
per page one query each for the subscribers, their rows, the openings and employers, and the
digests a crashed run claimed but never settled; then one batch for the postman."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hwcollab_common.clock import Clock
from hwcollab_common.mongo import Document
from hwcollab_notifier import metrics
from hwcollab_notifier.delivery import Deliveries, Snapshot, active_profile, chunks
from hwcollab_notifier.domain import DigestSchedule, see_all_url
from hwcollab_notifier.mail import EmailComposer, OpeningView
from hwcollab_notifier.ports import DeliveryPorts
from hwcollab_notifier.postman import Outgoing, Postman
from hwcollab_notifier.settings import Settings
from hwcollab_schemas.events import SubscriberProfile

log = logging.getLogger(__name__)


@dataclass
class DigestRun:
    as_of: datetime
    subscribers: int = 0
    sent: int = 0
    skipped: int = 0
    dropped_openings: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if outcome == "sent":
            self.sent += 1
        else:
            self.skipped += 1


@dataclass(frozen=True, slots=True)
class _Digest:
    profile: SubscriberProfile
    rows: list[Document]
    key: str
    period: str


class DigestRunner:
    def __init__(
        self,
        *,
        clock: Clock,
        store: DeliveryPorts,
        composer: EmailComposer,
        postman: Postman,
        deliveries: Deliveries,
        settings: Settings,
    ) -> None:
        self._clock = clock
        self._store = store
        self._composer = composer
        self._postman = postman
        self._deliveries = deliveries
        self._settings = settings

    async def run_due(self, as_of: datetime | None = None) -> DigestRun:
        """Send every digest due at ``as_of`` (now when not given)."""
        moment = (as_of or self._clock.now()).astimezone(UTC)
        run = DigestRun(as_of=moment)
        subscriber_ids = await self._store.subscribers_with_digest_rows()
        for page in chunks(subscriber_ids, self._settings.delivery_batch_size):
            await self._page(page, as_of=moment, run=run)
        if run.subscribers:
            log.info(
                "digest run at %s: %d subscribers, %d sent",
                moment.isoformat(),
                run.subscribers,
                run.sent,
            )
        return run

    async def _page(
        self, subscriber_ids: Sequence[str], *, as_of: datetime, run: DigestRun
    ) -> None:
        run.subscribers += len(subscriber_ids)
        readers = await self._store.subscribers_by_id(subscriber_ids)
        profiles = {s: p for s in subscriber_ids if (p := active_profile(readers.get(s)))}
        for subscriber_id in subscriber_ids:
            if subscriber_id not in profiles:
                # paused: rows wait; unsubscribed/deleted: rows were dropped
                run.count("not active")
        rows = await self._store.open_rows_of(profiles, channel="digest")
        rows_of: dict[str, list[Document]] = defaultdict(list)
        for row in rows:
            rows_of[str(row["subscriber_id"])].append(row)
        unsettled = {
            str(message["subscriber_id"]): message
            for message in await self._store.unsettled_digests(profiles)
        }
        digests: list[_Digest] = []
        for subscriber_id, profile in profiles.items():
            digest = self._due(
                profile, rows_of[subscriber_id], unsettled=unsettled.get(subscriber_id), as_of=as_of
            )
            if digest is None:
                run.count("not due")
            else:
                digests.append(digest)
        snapshot = await Snapshot.read(
            self._store, (str(r["opening_id"]) for d in digests for r in d.rows)
        )
        now = self._clock.now()
        closed: list[str] = []
        batch: list[tuple[Outgoing, int]] = []
        limit = self._settings.digest_max_items
        for digest in digests:
            profile = digest.profile
            views: list[OpeningView] = []
            keys: list[str] = []
            for row in digest.rows:
                details = snapshot.live(str(row["opening_id"]), now=now)
                if details is None:
                    closed.append(str(row["_id"]))
                    continue
                keys.append(str(row["_id"]))
                views.append(self._deliveries.view(profile, details))
            if not views:
                run.count("empty")
                continue
            email = self._composer.digest(
                self._deliveries.recipient(profile),
                views[:limit],
                total=len(views),
                see_all_url=see_all_url(self._settings.employer_public_url, profile),
                period="weekly" if digest.period == "weekly" else "daily",
                digest_key=digest.key,
            )
            batch.append(
                (Outgoing(email, pair_keys=tuple(keys), digest_key=digest.key), len(views))
            )
        if closed:
            await self._store.set_rows(closed, status="dropped", now=now, reason="opening closed")
            run.dropped_openings += len(closed)
        outcomes = await self._postman.send_batch([item for item, _ in batch])
        for (_, size), outcome in zip(batch, outcomes, strict=True):
            run.count(outcome)
            if outcome == "sent":
                metrics.DIGEST_SIZE.observe(size)

    @staticmethod
    def _due(
        profile: SubscriberProfile,
        rows: list[Document],
        *,
        unsettled: Document | None,
        as_of: datetime,
    ) -> _Digest | None:
        schedule = DigestSchedule.of(profile)
        if schedule is None:
            # switched to immediate after these were matched: send them now as one digest
            schedule = DigestSchedule(
                period="daily", timezone=profile.timezone, hour=profile.digest_hour
            )
            slot = as_of
        else:
            slot = schedule.last_due(as_of)
        # The rows of a digest that was claimed but did not finish go out again in that digest.
        if unsettled is not None:
            keys = set(unsettled.get("pair_keys") or ())
            again = [r for r in rows if r["_id"] in keys]
            if again:
                return _Digest(profile, again, str(unsettled["digest_key"]), schedule.period)
        due = [r for r in rows if r["matched_at"].astimezone(UTC) < slot]
        if not due:
            return None
        return _Digest(profile, due, schedule.key(slot), schedule.period)
