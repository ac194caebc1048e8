"""In-memory fakes of the notifier's delivery ports (:mod:`hwcollab_notifier.ports`), a mailer
that records what it sends, and builders of the documents the read model stores."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from hwcollab_common.emails import email_key
from hwcollab_common.mongo import Document
from hwcollab_notifier.domain import hash_id
from hwcollab_notifier.ledger import MAX_CLAIMS
from hwcollab_notifier.mail import OutgoingEmail, SendOutcome, SmtpUnavailableError
from hwcollab_notifier.ports import Channel, Claim, MessageStatus, RowStatus, SettleWork
from hwcollab_schemas import Event
from hwcollab_schemas.events import OpeningDetails, SubscriberProfile

OPEN = ("pending", "sending")
COLLECTIONS = (
    "subscribers",
    "open_digests",
    "openings",
    "employers",
    "suppressions",
    "bulletins",
    "link_requests",
    "ledger",
    "messages",
)


def subscriber_document(profile: SubscriberProfile, **fields: Any) -> Document:
    """A subscriber as the read model stores it."""
    return {
        **profile.model_dump(mode="python"),
        "_id": profile.subscriber_id,
        "email_hash": hash_id(email_key(profile.email)),
        **fields,
    }


def opening_document(details: OpeningDetails) -> Document:
    return {
        "_id": details.opening_id,
        "version": details.version,
        "employer_id": details.employer_id,
        "status": details.status,
        "details": details.model_dump(mode="json"),
    }


class FakeSettlement:
    def __init__(self, store: FakeDeliveryStore) -> None:
        self._store = store

    async def finish_messages(
        self, ids: Iterable[str], *, status: MessageStatus, now: datetime, detail: str = ""
    ) -> None:
        self._store.finish(ids, status=status, now=now, detail=detail)

    async def finish_rows(
        self, keys: Iterable[str], *, status: RowStatus, now: datetime, reason: str | None = None
    ) -> None:
        await self._store.set_rows(keys, status=status, now=now, reason=reason)

    async def finish_welcomes(self, subscriber_ids: Iterable[str], *, now: datetime) -> None:
        await self._store.finish_welcomes(subscriber_ids, now=now)

    async def finish_digests(self, subscriber_ids: Iterable[str]) -> None:
        for subscriber_id in subscriber_ids:
            self._store.collections["open_digests"].pop(subscriber_id, None)

    async def finish_link_requests(
        self, request_ids: Iterable[str], *, status: MessageStatus, now: datetime
    ) -> None:
        await self._store.finish_link_requests(request_ids, status=status, now=now)

    async def suppress(self, email: str, *, reason: str, now: datetime) -> None:
        address = email_key(email)
        self._store.collections["suppressions"].setdefault(
            hash_id(address), {"_id": hash_id(address), "email": address, "reason": reason}
        )


class FakeDeliveryStore:
    """Every delivery port in memory; ``settle`` rolls back on error; committed events collect
    in ``events``; ``calls`` counts the calls of each port method (one database command or
    transaction each in the MongoDB implementation)."""

    def __init__(self) -> None:
        self.collections: dict[str, dict[str, Document]] = {name: {} for name in COLLECTIONS}
        self.events: list[Event] = []
        self.calls: Counter[str] = Counter()
        self.fail_next_settle: BaseException | None = None

    def seed(self, collection: str, *docs: Document) -> None:
        for doc in docs:
            self.collections[collection][doc["_id"]] = copy.deepcopy(doc)

    def _by_id(self, collection: str, ids: Iterable[str]) -> dict[str, Document]:
        wanted = list(dict.fromkeys(ids))
        if wanted:  # as the MongoDB store, which asks nothing for nothing
            self.calls[collection] += 1
        found = self.collections[collection]
        return {i: copy.deepcopy(found[i]) for i in wanted if i in found}

    # --- read model -----------------------------------------------------------------------------

    async def subscribers_by_id(self, ids: Iterable[str]) -> dict[str, Document]:
        return self._by_id("subscribers", ids)

    async def openings_by_id(self, ids: Iterable[str]) -> dict[str, Document]:
        return self._by_id("openings", ids)

    async def employers_by_id(self, ids: Iterable[str]) -> dict[str, Document]:
        return self._by_id("employers", ids)

    async def bulletins_by_id(self, ids: Iterable[str]) -> dict[str, Document]:
        return self._by_id("bulletins", ids)

    async def link_requests_by_id(self, ids: Iterable[str]) -> dict[str, Document]:
        return self._by_id("link_requests", ids)

    async def suppressed_among(self, emails: Iterable[str]) -> set[str]:
        addresses = [email_key(e) for e in emails]
        if addresses:
            self.calls["suppressions"] += 1
        stored = self.collections["suppressions"]
        return {address for address in addresses if hash_id(address) in stored}

    async def live_openings(self) -> list[Document]:
        self.calls["openings"] += 1
        return [
            copy.deepcopy(doc)
            for doc in self.collections["openings"].values()
            if doc.get("status") == "open" and "details" in doc
        ]

    # --- ledger ---------------------------------------------------------------------------------

    async def add_pairs(self, rows: Sequence[Document]) -> list[str]:
        self.calls["ledger"] += 1
        ledger = self.collections["ledger"]
        inserted = []
        for row in rows:
            if row["_id"] not in ledger:
                ledger[row["_id"]] = copy.deepcopy(row)
                inserted.append(row["_id"])
        return inserted

    async def rows_by_key(self, keys: Iterable[str]) -> dict[str, Document]:
        return self._by_id("ledger", keys)

    async def subscribers_with_digest_rows(self) -> list[str]:
        self.calls["ledger"] += 1
        return sorted(
            {
                str(row["subscriber_id"])
                for row in self.collections["ledger"].values()
                if row["channel"] == "digest" and row["status"] in OPEN and row.get("subscriber_id")
            }
        )

    async def open_rows_of(
        self, subscriber_ids: Iterable[str], *, channel: Channel
    ) -> list[Document]:
        self.calls["ledger"] += 1
        wanted = set(subscriber_ids)
        rows = [
            copy.deepcopy(row)
            for row in self.collections["ledger"].values()
            if row.get("subscriber_id") in wanted
            and row["channel"] == channel
            and row["status"] in OPEN
        ]
        return sorted(rows, key=lambda row: (row["matched_at"], row["_id"]))

    async def set_rows(
        self,
        keys: Iterable[str],
        *,
        status: RowStatus,
        now: datetime,
        reason: str | None = None,
        count: bool = False,
    ) -> None:
        wanted = list(keys)
        if not wanted:
            return
        self.calls["ledger"] += 1
        for key in wanted:
            row = self.collections["ledger"].get(key)
            if row is None or row["status"] not in OPEN:
                continue
            row.update(status=status, updated_at=now)
            if reason is not None:
                row["reason"] = reason[:300]
            if count:
                row["attempts"] = int(row.get("attempts", 0)) + 1

    async def finish_welcomes(self, subscriber_ids: Iterable[str], *, now: datetime) -> None:
        wanted = list(subscriber_ids)
        if not wanted:
            return
        self.calls["subscribers"] += 1
        for subscriber_id in wanted:
            doc = self.collections["subscribers"].get(subscriber_id)
            if doc is not None:
                doc.update(welcome_pending=False, welcomed_at=now)

    async def finish_link_requests(
        self, request_ids: Iterable[str], *, status: MessageStatus, now: datetime
    ) -> None:
        wanted = list(request_ids)
        if not wanted:
            return
        self.calls["link_requests"] += 1
        for request_id in wanted:
            doc = self.collections["link_requests"].get(request_id)
            if doc is not None and doc["status"] == "pending":
                doc.update(status=status, finished_at=now)

    # --- messages -------------------------------------------------------------------------------

    async def messages_by_id(self, ids: Iterable[str]) -> dict[str, Document]:
        return self._by_id("messages", ids)

    async def claim_messages(
        self, claims: Sequence[Claim], *, owner: str, now: datetime, lease: timedelta
    ) -> dict[str, int]:
        if not claims:
            return {}
        self.calls["messages"] += 1
        messages = self.collections["messages"]
        claimed: dict[str, int] = {}
        for claim in claims:
            doc = messages.get(claim.message_id)
            if doc is None:
                doc = messages[claim.message_id] = {
                    "_id": claim.message_id,
                    "kind": claim.kind,
                    "subscriber_id": claim.subscriber_id,
                    "subscriber_hash": hash_id(claim.subscriber_id),
                    "opening_ids": list(claim.opening_ids),
                    "created_at": now,
                    "digest_key": claim.digest_key,
                    "attempts": 0,
                    "claims": [],
                }
            elif doc["status"] not in ("sending", "retry") or (
                doc["status"] == "sending" and "lease_until" in doc and doc["lease_until"] >= now
            ):
                continue
            doc.update(status="sending", owner=owner, lease_until=now + lease)
            doc["attempts"] = int(doc["attempts"]) + 1
            doc["claims"] = [*doc["claims"], {"owner": owner, "at": now}][-MAX_CLAIMS:]
            claimed[claim.message_id] = doc["attempts"]
            open_digest = self.collections["open_digests"].get(claim.subscriber_id)
            if (
                claim.kind == "digest"
                and claim.digest_key
                and (open_digest is None or open_digest["message_id"] != claim.message_id)
            ):
                self.collections["open_digests"][claim.subscriber_id] = {
                    "_id": claim.subscriber_id,
                    "message_id": claim.message_id,
                    "digest_key": claim.digest_key,
                    "pair_keys": list(claim.pair_keys),
                    "claimed_at": now,
                }
        return claimed

    async def unsettled_digests(self, subscriber_ids: Iterable[str]) -> list[Document]:
        self.calls["messages"] += 1
        found = self.collections["open_digests"]
        return [
            {"subscriber_id": s, **{k: v for k, v in copy.deepcopy(found[s]).items() if k != "_id"}}
            for s in dict.fromkeys(subscriber_ids)
            if s in found
        ]

    def finish(self, ids: Iterable[str], *, status: str, now: datetime, detail: str) -> None:
        for message_id in ids:
            doc = self.collections["messages"].get(message_id)
            if doc is not None:
                doc.update(status=status, finished_at=now, detail=detail[:300])
                doc.pop("lease_until", None)
                doc.pop("owner", None)

    async def renew_claims(
        self, ids: Iterable[str], *, owner: str, now: datetime, lease: timedelta
    ) -> None:
        for doc in self._own_sending(ids, owner=owner):
            doc["lease_until"] = now + lease

    async def release_messages(
        self, ids: Iterable[str], *, owner: str, now: datetime, detail: str
    ) -> None:
        for doc in self._own_sending(ids, owner=owner):
            self.finish([doc["_id"]], status="retry", now=now, detail=detail)
            doc["attempts"] = int(doc["attempts"]) - 1

    def _own_sending(self, ids: Iterable[str], *, owner: str) -> list[dict[str, Any]]:
        """The messages of ``ids`` that ``owner`` still holds in ``sending`` (one call)."""
        wanted = list(ids)
        if not wanted:
            return []
        self.calls["messages"] += 1
        docs = (self.collections["messages"].get(message_id) for message_id in wanted)
        return [
            doc
            for doc in docs
            if doc is not None and doc["status"] == "sending" and doc.get("owner") == owner
        ]

    async def retry_messages(self, ids: Iterable[str], *, now: datetime, detail: str) -> None:
        wanted = list(ids)
        if wanted:
            self.calls["messages"] += 1
            self.finish(wanted, status="retry", now=now, detail=detail)

    # --- unit of work ---------------------------------------------------------------------------

    async def settle(self, work: SettleWork) -> None:
        self.calls["settle"] += 1
        snapshot = copy.deepcopy(self.collections)
        try:
            events = await work(FakeSettlement(self))
            if self.fail_next_settle is not None:
                failure, self.fail_next_settle = self.fail_next_settle, None
                raise failure
        except BaseException:
            self.collections = snapshot
            raise
        self.events.extend(events)

    def events_of(self, event_type: str) -> list[Event]:
        return [e for e in self.events if e.event_type == event_type]


Reply = Callable[[OutgoingEmail], SendOutcome]


class FakeMailer:
    """Accepts every email unless ``replies`` says otherwise for its address; addresses in
    ``away`` find the server unreachable."""

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []
        self.replies: dict[str, Reply] = {}
        self.away: set[str] = set()

    async def send(self, email: OutgoingEmail) -> SendOutcome:
        if email.to in self.away:
            raise SmtpUnavailableError("cannot connect to 127.0.0.1:25: connection refused")
        reply = self.replies.get(email.to)
        outcome = reply(email) if reply else SendOutcome("sent", "250 OK", 250)
        if outcome.status == "sent":
            self.sent.append(email)
        return outcome

    def to(self, address: str) -> list[OutgoingEmail]:
        return [email for email in self.sent if email.to == address]
