"""Delivery jobs (immediate, welcome, bulletin, link) turned into emails, a batch at a time.

A batch reads what it needs in one query per kind of document (ledger rows, subscribers,
openings, employers, suppressions), re-checks every email on that snapshot just before sending
(the reader still active, the opening still open and approved, still a match), and hands the
emails to the :class:`.Postman` as one batch.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hwcollab_common.clock import Clock
from hwcollab_common.mongo import Document
from hwcollab_common.tokens import LinkSigner, Purpose
from hwcollab_notifier import metrics
from hwcollab_notifier.domain import (
    announceable,
    criteria_of,
    distance_between,
    ledger_row,
    opening_criteria,
    pair_key,
    recorded,
    see_all_url,
)
from hwcollab_notifier.mail import EmailComposer, OpeningView, OutgoingEmail, Recipient
from hwcollab_notifier.matching.reference import matches
from hwcollab_notifier.ports import OPEN_LEDGER, DeliveryPorts
from hwcollab_notifier.postman import Mailer, Outgoing, Postman
from hwcollab_notifier.settings import Settings
from hwcollab_schemas.delivery import DeliveryJob
from hwcollab_schemas.events import (
    AccountEmailRequestedPayload,
    ConfirmationRequestedPayload,
    ManageLinkRequestedPayload,
    OpeningDetails,
    SubscriberProfile,
)

__all__ = ["Deliveries", "Mailer", "Postman", "Snapshot"]

log = logging.getLogger(__name__)

WelcomeMatches = Callable[[Sequence[SubscriberProfile]], Awaitable[None]]


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def once_each(keys: Sequence[str], outcome: Callable[[str], str]) -> list[str]:
    """One outcome per key; a key repeated in a batch (a job delivered twice) is "done"."""
    seen: set[str] = set()
    outcomes = []
    for key in keys:
        outcomes.append("done" if key in seen else outcome(key))
        seen.add(key)
    return outcomes


def active_profile(doc: Document | None) -> SubscriberProfile | None:
    """The reader of a stored subscriber, when they may be written to (status ``active``)."""
    if doc is None or doc.get("status") != "active" or "email" not in doc:
        return None
    return SubscriberProfile.model_validate({k: v for k, v in doc.items() if k != "_id"})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The openings and their employers as read once for a batch."""

    openings: Mapping[str, Document]
    employers: Mapping[str, Document]

    @classmethod
    async def read(cls, store: DeliveryPorts, opening_ids: Iterable[str]) -> Snapshot:
        openings = await store.openings_by_id(opening_ids)
        employer_ids = {
            str(doc["details"]["employer_id"]) for doc in openings.values() if "details" in doc
        }
        return cls(openings, await store.employers_by_id(employer_ids))

    def live(self, opening_id: str, *, now: datetime) -> OpeningDetails | None:
        """The opening if it may still be announced (open, unexpired, employer approved)."""
        doc = self.openings.get(opening_id)
        if doc is None or "details" not in doc or doc.get("status") != "open":
            return None
        details = OpeningDetails.model_validate(doc["details"])
        employer = self.employers.get(details.employer_id)
        status = employer.get("status") if employer else None
        if not announceable(details, employer_status=status, now=now):
            return None
        return details


class Deliveries:
    """Turns delivery jobs into emails: re-checks readers and openings just before sending."""

    def __init__(
        self,
        *,
        clock: Clock,
        signer: LinkSigner,
        store: DeliveryPorts,
        composer: EmailComposer,
        postman: Postman,
        settings: Settings,
        welcome_matches: WelcomeMatches,
    ) -> None:
        self._clock = clock
        self._signer = signer
        self._store = store
        self._composer = composer
        self._postman = postman
        self._settings = settings
        self._welcome_matches = welcome_matches
        self.batch_size = settings.delivery_batch_size

    async def handle(self, job: DeliveryJob) -> str:
        """One job; the outcome of its (first) email."""
        outcomes = await self.handle_batch([job])
        return outcomes[0] if outcomes else "ignored"

    async def handle_batch(self, jobs: Sequence[DeliveryJob]) -> list[str]:
        """Every email the jobs ask for, in batches of at most ``DELIVERY_BATCH_SIZE``; one
        outcome per email, in job order."""
        pairs: list[tuple[str, str]] = []
        welcomes: list[str] = []
        bulletins: list[tuple[str, str]] = []
        links: list[str] = []
        for job in jobs:
            if job.kind == "immediate" and job.opening_id is not None:
                pairs.extend((s, job.opening_id) for s in job.recipients)
            elif job.kind == "welcome":
                welcomes.append(job.subscriber_id)
            elif job.kind == "bulletin" and job.bulletin_id is not None:
                bulletins.extend((s, job.bulletin_id) for s in job.recipients)
            elif job.kind == "link" and job.request_id is not None:
                links.append(job.request_id)
            else:
                log.warning("ignoring an incomplete %s delivery job", job.kind)
        outcomes: list[str] = []
        for chunk in chunks(pairs, self.batch_size):
            outcomes += await self.immediate(chunk)
        for chunk in chunks(welcomes, self.batch_size):
            outcomes += await self.welcome(chunk)
        for chunk in chunks(bulletins, self.batch_size):
            outcomes += await self.bulletin(chunk)
        for chunk in chunks(links, self.batch_size):
            outcomes += await self.link(chunk)
        return outcomes

    def recipient(self, profile: SubscriberProfile) -> Recipient:
        base = self._settings.subscriber_public_url
        manage = self._signer.sign(Purpose.MANAGE, profile.subscriber_id)
        unsubscribe = self._signer.sign(Purpose.UNSUBSCRIBE, profile.subscriber_id)
        return Recipient(
            subscriber_id=profile.subscriber_id,
            email=profile.email,
            first_name=profile.first_name,
            manage_url=f"{base}/preferences?token={manage}",
            unsubscribe_url=f"{base}/unsubscribe?token={unsubscribe}",
            pause_url=f"{base}/pause?token={manage}",
        )

    def view(self, profile: SubscriberProfile, details: OpeningDetails) -> OpeningView:
        return OpeningView.from_details(
            details,
            distance_miles=distance_between(profile, details),
            employer_public_url=self._settings.employer_public_url,
            subscriber_zip=profile.zip,
            subscriber_credentials=profile.credentials,
        )

    async def drop(
        self,
        dropped: Mapping[str, list[str]],
        *,
        kind: str,
        new: Mapping[str, Document] | None = None,
    ) -> None:
        """Settle rows that will never be sent (reason → keys), one write per reason; the keys
        of ``new`` have no row yet and get theirs, ``dropped``, in one insert."""
        now = self._clock.now()
        new = new or {}
        first: list[Document] = []
        for reason, keys in dropped.items():
            await self._store.set_rows(
                [key for key in keys if key not in new], status="dropped", now=now, reason=reason
            )
            first += [
                recorded(new[key], status="dropped", now=now, reason=reason)
                for key in keys
                if key in new
            ]
            metrics.EMAILS_SKIPPED.labels(kind, reason).inc(len(keys))
        if first:
            await self._store.add_pairs(first)

    async def immediate(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        """Immediate emails for (subscriber, opening) pairs, one batch. A pair with no ledger row
        is new (the announcer records none for it) and gets its row with its outcome; a pair with
        a settled row, or a row on another channel, is not sent again."""
        keys = [pair_key(s, o) for s, o in pairs]
        rows = await self._store.rows_by_key(keys)
        now = self._clock.now()
        new: dict[str, Document] = {}
        open_pairs: list[tuple[str, str, str]] = []
        for key, (subscriber_id, opening_id) in zip(keys, pairs, strict=True):
            row = rows.get(key)
            if row is None:
                new[key] = ledger_row(
                    subscriber_id=subscriber_id, opening_id=opening_id, channel="immediate", now=now
                )
            elif row.get("status") not in OPEN_LEDGER or row.get("channel") != "immediate":
                continue
            open_pairs.append((key, subscriber_id, opening_id))
        readers = await self._store.subscribers_by_id(s for _, s, _ in open_pairs)
        snapshot = await Snapshot.read(self._store, (o for _, _, o in open_pairs))
        outcome: dict[str, str] = {}
        dropped: dict[str, list[str]] = defaultdict(list)
        batch: list[Outgoing] = []
        for key, subscriber_id, opening_id in open_pairs:
            if key in outcome:
                continue  # the same pair twice in one batch (a repeated job)
            doc = readers.get(subscriber_id)
            profile = active_profile(doc)
            details = snapshot.live(opening_id, now=now)
            if profile is None:
                paused = doc is not None and doc.get("status") == "paused"
                reason = "paused" if paused else "not active"
                if key in new and (doc is None or doc.get("status") == "deleted"):
                    # Erased: the row it gets is the one erasure leaves, with no subscriber id.
                    new[key] = {k: v for k, v in new[key].items() if k != "subscriber_id"}
            elif details is None:
                reason = "opening closed"
            elif not matches(criteria_of(profile), opening_criteria(details)):
                reason = "no longer matches"
            else:
                email = self._composer.immediate(
                    self.recipient(profile), self.view(profile, details)
                )
                batch.append(
                    Outgoing(email, new_rows=(new[key],))
                    if key in new
                    else Outgoing(email, pair_keys=(key,))
                )
                outcome[key] = ""
                continue
            dropped[reason].append(key)
            outcome[key] = reason
        await self.drop(dropped, kind="immediate", new=new)
        for item, result in zip(batch, await self._postman.send_batch(batch), strict=True):
            outcome[item.row_keys[0]] = result
        return once_each(
            keys,
            lambda key: (
                outcome.get(key)
                or (
                    "not immediate"
                    if key in rows and rows[key].get("channel") != "immediate"
                    else "done"
                )
            ),
        )

    async def welcome(self, subscriber_ids: Sequence[str]) -> list[str]:
        """Welcome emails, one batch: each lists the open openings that match the reader."""
        docs = await self._store.subscribers_by_id(subscriber_ids)
        outcome: dict[str, str] = {}
        profiles: dict[str, SubscriberProfile] = {}
        inactive: list[str] = []
        for subscriber_id in subscriber_ids:
            doc = docs.get(subscriber_id)
            if doc is None or not doc.get("welcome_pending"):
                outcome[subscriber_id] = "done"
                continue
            profile = active_profile(doc)
            if profile is None:
                inactive.append(subscriber_id)
                outcome[subscriber_id] = "not active"
            else:
                profiles[subscriber_id] = profile
        now = self._clock.now()
        await self._store.finish_welcomes(inactive, now=now)
        if profiles:
            await self._welcome_matches(list(profiles.values()))
        rows = await self._store.open_rows_of(profiles, channel="welcome")
        snapshot = await Snapshot.read(self._store, (str(r["opening_id"]) for r in rows))
        rows_of: dict[str, list[Document]] = defaultdict(list)
        for row in rows:
            rows_of[str(row["subscriber_id"])].append(row)
        dropped: dict[str, list[str]] = defaultdict(list)
        batch: list[Outgoing] = []
        limit = self._settings.digest_max_items
        for subscriber_id, profile in profiles.items():
            views: list[OpeningView] = []
            keys: list[str] = []
            for row in rows_of[subscriber_id]:
                details = snapshot.live(str(row["opening_id"]), now=now)
                if details is None:
                    dropped["opening closed"].append(str(row["_id"]))
                    continue
                keys.append(str(row["_id"]))
                views.append(self.view(profile, details))
            email = self._composer.welcome(
                self.recipient(profile),
                views[:limit],
                total=len(views),
                see_all_url=see_all_url(self._settings.employer_public_url, profile),
            )
            batch.append(Outgoing(email, pair_keys=tuple(keys), welcome_of=subscriber_id))
        await self.drop(dropped, kind="welcome")
        for item, result in zip(batch, await self._postman.send_batch(batch), strict=True):
            outcome[str(item.welcome_of)] = result
        return once_each(subscriber_ids, outcome.__getitem__)

    async def bulletin(self, recipients: Sequence[tuple[str, str]]) -> list[str]:
        """Bulletin emails for (subscriber, bulletin) pairs, one batch; opted-in readers only."""
        readers = await self._store.subscribers_by_id(s for s, _ in recipients)
        bulletins = await self._store.bulletins_by_id(b for _, b in recipients)
        outcomes: list[str] = []
        batch: list[tuple[int, Outgoing]] = []
        for subscriber_id, bulletin_id in recipients:
            profile = active_profile(readers.get(subscriber_id))
            bulletin = bulletins.get(bulletin_id)
            if profile is None or not profile.career_info or bulletin is None:
                metrics.EMAILS_SKIPPED.labels("bulletin", "not eligible").inc()
                outcomes.append("not eligible")
                continue
            email = self._composer.bulletin(
                self.recipient(profile),
                bulletin_id=bulletin_id,
                subject=bulletin["subject"],
                body_markdown=bulletin["body_markdown"],
            )
            batch.append((len(outcomes), Outgoing(email)))
            outcomes.append("")
        results = await self._postman.send_batch([item for _, item in batch])
        for (position, _), result in zip(batch, results, strict=True):
            outcomes[position] = result
        return outcomes

    async def link(self, request_ids: Sequence[str]) -> list[str]:
        """Confirmation and manage-link emails the subscriber service asked for, and account
        emails the employer service asked for (stored by the read model): sent once each,
        whatever the reader's status — these are the links that change it."""
        requests = await self._store.link_requests_by_id(request_ids)
        now = self._clock.now()
        outcome: dict[str, str] = {}
        expired: list[str] = []
        batch: list[Outgoing] = []
        for request_id in dict.fromkeys(request_ids):
            request = requests.get(request_id)
            if request is None or request.get("status") != "pending":
                outcome[request_id] = "done"
            elif request["expires_at"] <= now:
                expired.append(request_id)
                metrics.EMAILS_SKIPPED.labels(request["kind"], "expired").inc()
                outcome[request_id] = "expired"
            else:
                batch.append(Outgoing(self._link_email(request), link_request=request_id))
        await self._store.finish_link_requests(expired, status="dropped", now=now)
        for item, result in zip(batch, await self._postman.send_batch(batch), strict=True):
            outcome[str(item.link_request)] = result
        return once_each(request_ids, outcome.__getitem__)

    def _link_email(self, request: Document) -> OutgoingEmail:
        if "employer_id" in request:
            account = AccountEmailRequestedPayload.model_validate(request["payload"])
            return self._composer.employer_account(
                request_id=str(request["_id"]),
                employer_id=account.employer_id,
                email=account.email,
                organization_name=account.organization_name,
                kind=account.kind,
                url=account.url,
                expires_at=account.expires_at,
            )
        if request["kind"] == "confirmation":
            confirm = ConfirmationRequestedPayload.model_validate(request["payload"])
            return self._composer.confirmation(
                request_id=str(request["_id"]),
                subscriber_id=confirm.subscriber_id,
                email=confirm.email,
                first_name=confirm.first_name,
                confirm_url=confirm.confirm_url,
            )
        manage = ManageLinkRequestedPayload.model_validate(request["payload"])
        if manage.reason == "still_interested" and manage.keep_url:
            return self._composer.still_interested(
                request_id=str(request["_id"]),
                subscriber_id=manage.subscriber_id,
                email=manage.email,
                first_name=manage.first_name,
                manage_url=manage.manage_url,
                keep_url=manage.keep_url,
                pause_after=manage.pause_after,
            )
        return self._composer.manage_link(
            request_id=str(request["_id"]),
            subscriber_id=manage.subscriber_id,
            email=manage.email,
            first_name=manage.first_name,
            manage_url=manage.manage_url,
            already_subscribed=manage.reason == "already_subscribed",
        )
