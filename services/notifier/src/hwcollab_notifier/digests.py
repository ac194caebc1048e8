"""Daily and weekly digests: every digest pair recorded before the subscriber's latest scheduled
instant and still open goes out in one email (at most ``DIGEST_MAX_ITEMS`` listed, then "see all
N"); pairs whose opening closed meanwhile are dropped; an empty digest sends nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hwcollab_common.runtime import ServiceRuntime
from hwcollab_notifier import metrics
from hwcollab_notifier.delivery import Deliveries, Postman
from hwcollab_notifier.domain import DigestSchedule, see_all_url
from hwcollab_notifier.mail import EmailComposer, OpeningView
from hwcollab_notifier.repository import NotifierRepository
from hwcollab_notifier.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class DigestRun:
    as_of: datetime
    subscribers: int = 0
    sent: int = 0
    skipped: int = 0
    dropped_openings: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


class DigestRunner:
    def __init__(
        self,
        *,
        runtime: ServiceRuntime,
        repository: NotifierRepository,
        composer: EmailComposer,
        postman: Postman,
        deliveries: Deliveries,
        settings: Settings,
    ) -> None:
        self._runtime = runtime
        self._repo = repository
        self._composer = composer
        self._postman = postman
        self._deliveries = deliveries
        self._settings = settings

    async def run_due(self, as_of: datetime | None = None) -> DigestRun:
        """Send every digest due at ``as_of`` (now when not given)."""
        moment = (as_of or self._runtime.clock.now()).astimezone(UTC)
        run = DigestRun(as_of=moment)
        for subscriber_id in await self._repo.subscribers_with_digest_rows():
            run.subscribers += 1
            outcome = await self._one(subscriber_id, as_of=moment, run=run)
            run.outcomes[outcome] = run.outcomes.get(outcome, 0) + 1
            if outcome == "sent":
                run.sent += 1
            else:
                run.skipped += 1
        if run.subscribers:
            log.info(
                "digest run at %s: %d subscribers, %d sent",
                moment.isoformat(),
                run.subscribers,
                run.sent,
            )
        return run

    async def _one(self, subscriber_id: str, *, as_of: datetime, run: DigestRun) -> str:
        profile = await self._deliveries.reader(subscriber_id)
        if profile is None:
            return "not active"  # paused: rows wait; unsubscribed/deleted: rows were dropped
        schedule = DigestSchedule.of(profile)
        if schedule is None:
            # switched to immediate after these were matched: send them now as one digest
            schedule = DigestSchedule(
                period="daily", timezone=profile.timezone, hour=profile.digest_hour
            )
            slot = as_of
        else:
            slot = schedule.last_due(as_of)
        rows = await self._repo.rows_of(subscriber_id, channel="digest")
        # Rows already claimed by a digest that did not finish go out again in that same digest.
        sending = [r for r in rows if r["status"] == "sending" and r.get("message_id")]
        if sending:
            message = await self._repo.message(sending[0]["message_id"])
            if message is not None and message.get("digest_key"):
                key = str(message["digest_key"])
                rows = [r for r in sending if r.get("message_id") == message["_id"]]
                return await self._send(
                    profile_id=subscriber_id, rows=rows, key=key, period=schedule.period, run=run
                )
        due = [r for r in rows if r["matched_at"].astimezone(UTC) < slot]
        if not due:
            return "not due"
        return await self._send(
            profile_id=subscriber_id,
            rows=due,
            key=schedule.key(slot),
            period=schedule.period,
            run=run,
        )

    async def _send(
        self,
        *,
        profile_id: str,
        rows: list[dict[str, object]],
        key: str,
        period: str,
        run: DigestRun,
    ) -> str:
        profile = await self._deliveries.reader(profile_id)
        if profile is None:
            return "not active"
        views: list[OpeningView] = []
        keys: list[str] = []
        for row in rows:
            details = await self._deliveries.live_opening(str(row["opening_id"]))
            if details is None:
                await self._repo.mark_rows(
                    [str(row["_id"])],
                    status="dropped",
                    reason="opening closed",
                    now=self._runtime.clock.now(),
                )
                run.dropped_openings += 1
                continue
            keys.append(str(row["_id"]))
            views.append(self._deliveries.view(profile, details))
        if not views:
            return "empty"
        limit = self._settings.digest_max_items
        email = self._composer.digest(
            self._deliveries.recipient(profile),
            views[:limit],
            total=len(views),
            see_all_url=see_all_url(self._settings.employer_public_url, profile),
            period="weekly" if period == "weekly" else "daily",
            digest_key=key,
        )
        outcome = await self._postman.send(email, pair_keys=keys, digest_key=key)
        if outcome == "sent":
            metrics.DIGEST_SIZE.observe(len(views))
        return outcome
