"""Use cases of the employer service: accounts, openings, approval, expiry and reach."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from pydantic import ValidationError

from hwcollab_common.clock import Clock
from hwcollab_common.emails import email_key
from hwcollab_common.geo import ZipPlace, lookup_zip
from hwcollab_common.retrying import retry, retry_policy
from hwcollab_common.settings import DEV_LINK_SIGNING_KEY
from hwcollab_common.tokens import LinkSigner
from hwcollab_common.validation import field_errors
from hwcollab_employer import domain
from hwcollab_employer.accounts import DEFAULT_PUBLIC_URL, AccountUseCases, required_place
from hwcollab_employer.commands import (
    OpeningFields,
    OpeningPatch,
    ProfileFields,
    ProfilePatch,
    merge_opening,
)
from hwcollab_employer.domain import (
    ConflictError,
    Employer,
    ForbiddenError,
    InvalidFieldsError,
    NotFoundError,
    Opening,
)
from hwcollab_employer.idempotency import (
    IDEMPOTENCY_HEADER,
    KEY_IN_PROGRESS,
    KEY_REUSED,
    IdempotencyClaim,
    StoredAnswer,
    record_for,
)
from hwcollab_employer.listing import (
    BoardQuery,
    DirectoryQuery,
    EmployerListing,
    OpeningListing,
    Page,
)
from hwcollab_employer.ports import (
    ApiKeyRecord,
    DuplicateExternalIdError,
    EmployerRepository,
    EmployerTransaction,
    IdempotencyKeyTakenError,
    UnitOfWork,
)
from hwcollab_employer.security import (
    NewApiKey,
    Passwords,
    api_key_hash,
    api_key_id,
    constant_time_equal,
    new_api_key,
)
from hwcollab_schemas import Event
from hwcollab_schemas.events import (
    EmployerUpdated,
    NotificationBatchSent,
    NotificationSent,
    OpeningClosed,
    OpeningPosted,
    OpeningUpdated,
)

log = logging.getLogger(__name__)

# How often a post whose idempotency key another request took meanwhile is run again: the second
# run finds that request's answer (a transaction still running holds the key with a write
# conflict, which the unit of work waits out).
KEY_RACE_ATTEMPTS = 3


def _zip_place(zip_code: str | None) -> ZipPlace | None:
    return lookup_zip(zip_code) if zip_code else None


def _external_id_taken(external_id: str | None) -> str:
    return f"another of your openings has the external_id {external_id!r}"


@dataclass(frozen=True, slots=True)
class OpeningStats:
    opening_id: str
    notified: int


class EmployerService(AccountUseCases):
    """Every use case of the service; the API, pages and consumers are thin layers over it."""

    def __init__(
        self,
        *,
        repository: EmployerRepository,
        unit_of_work: UnitOfWork,
        clock: Clock,
        passwords: Passwords,
        auto_approve: bool,
        public_url: str = DEFAULT_PUBLIC_URL,
        signer: LinkSigner | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._repository = repository
        self._uow = unit_of_work
        self._clock = clock
        self._passwords = passwords
        self._auto_approve = auto_approve
        self._public_url = public_url.rstrip("/")
        self._signer = signer or LinkSigner(DEV_LINK_SIGNING_KEY, clock=clock)
        self._new_id = new_id

    # --- accounts ----------------------------------------------------------------------------

    async def authenticate(self, email: str, password: str) -> Employer | None:
        """The employer these credentials belong to; None for any failure."""
        employer = await self._repository.employer_by_email(email_key(email))
        stored = employer.password_hash if employer else None
        if not await asyncio.to_thread(self._passwords.verify, stored, password):
            return None
        return employer

    async def employer(self, employer_id: str) -> Employer:
        employer = await self._repository.get_employer(employer_id)
        if employer is None:
            raise NotFoundError(employer_id)
        return employer

    async def update_profile(self, employer_id: str, patch: ProfilePatch) -> Employer:
        async def work(tx: EmployerTransaction) -> tuple[Employer, Sequence[Event]]:
            current = await self._employer_in(employer_id, tx)
            changes = patch.model_dump(exclude_unset=True)
            if not changes:
                return current, []
            try:
                fields = ProfileFields.model_validate(current.fields().model_dump() | changes)
            except ValidationError as error:
                raise InvalidFieldsError(field_errors(error)) from error
            now = self._clock.now()
            updated = domain.update_profile(
                current,
                fields,
                zip_place=required_place(fields.address.zip, field="address.zip"),
                now=now,
            )
            await tx.save_employer(updated)
            events = [self._event(EmployerUpdated, updated.profile())]
            if updated.organization_name != current.organization_name:
                events += await self._republish_openings(updated, tx=tx)
            return updated, events

        return await self._uow.commit(work)

    # --- API keys ----------------------------------------------------------------------------

    async def create_api_key(self, employer_id: str, *, name: str) -> NewApiKey:
        key = new_api_key()
        record = ApiKeyRecord(
            key_id=key.key_id,
            employer_id=employer_id,
            name=name,
            prefix=key.display_prefix,
            secret_hash=key.secret_hash,
            created_at=self._clock.now(),
        )

        async def work(tx: EmployerTransaction) -> tuple[None, Sequence[Event]]:
            await tx.add_api_key(record)
            return None, []

        await self._uow.commit(work)
        return key

    async def api_keys(self, employer_id: str) -> list[ApiKeyRecord]:
        return await self._repository.api_keys_of(employer_id)

    async def revoke_api_key(self, employer_id: str, key_id: str) -> None:
        if not await self._repository.revoke_api_key(employer_id, key_id, now=self._clock.now()):
            raise NotFoundError(key_id)

    async def employer_of_api_key(self, secret: str) -> str | None:
        key_id = api_key_id(secret)
        if key_id is None:
            return None
        record = await self._repository.api_key(key_id)
        if record is None or record.revoked_at is not None:
            return None
        if not constant_time_equal(record.secret_hash, api_key_hash(secret)):
            return None
        return record.employer_id

    # --- openings ----------------------------------------------------------------------------

    async def post_opening(self, employer_id: str, fields: OpeningFields) -> Opening:
        opening_id = self._new_id()

        async def work(tx: EmployerTransaction) -> tuple[Opening, Sequence[Event]]:
            return await self._add_opening(employer_id, fields, opening_id=opening_id, tx=tx)

        return await self._uow.commit(work)

    async def draft_opening(self, employer_id: str, fields: OpeningFields) -> Opening:
        """The opening as :meth:`post_opening` would make it, with the same checks; nothing is
        stored or published (the reach estimate of a form being written)."""
        employer = await self.employer(employer_id)
        return domain.post_opening(
            fields,
            employer=employer,
            opening_id="draft",
            zip_place=_zip_place(fields.zip),
            now=self._clock.now(),
        )

    async def post_opening_once(
        self,
        employer_id: str,
        fields: OpeningFields,
        *,
        claim: IdempotencyClaim,
        answer: Callable[[Opening], StoredAnswer],
    ) -> StoredAnswer:
        """Post unless ``claim``'s key was used within 24 hours: then the first answer again
        (nothing created), or 422 when it came with another body. The opening, its event and
        the kept answer are one transaction, so two retries at once cannot both create."""
        opening_id = self._new_id()

        async def work(tx: EmployerTransaction) -> tuple[StoredAnswer, Sequence[Event]]:
            now = self._clock.now()
            kept = await tx.idempotency_record(claim.principal, claim.key)
            if kept is not None and kept.live(now=now):
                if kept.claim.fingerprint != claim.fingerprint:
                    raise InvalidFieldsError({IDEMPOTENCY_HEADER: KEY_REUSED}, location="header")
                return replace(kept.answer, replayed=True), []
            opening, events = await self._add_opening(
                employer_id, fields, opening_id=opening_id, tx=tx
            )
            first = answer(opening)
            await tx.keep_idempotency_record(record_for(claim, first, now=now), replaces=kept)
            return first, events

        policy = retry_policy(attempts=KEY_RACE_ATTEMPTS, on=IdempotencyKeyTakenError)
        try:
            return await retry(policy, self._uow.commit, work)
        except IdempotencyKeyTakenError as error:
            raise ConflictError(KEY_IN_PROGRESS) from error

    async def _add_opening(
        self, employer_id: str, fields: OpeningFields, *, opening_id: str, tx: EmployerTransaction
    ) -> tuple[Opening, Sequence[Event]]:
        employer = await self._employer_in(employer_id, tx)
        opening = domain.post_opening(
            fields,
            employer=employer,
            opening_id=opening_id,
            zip_place=_zip_place(fields.zip),
            now=self._clock.now(),
        )
        try:
            await tx.add_opening(opening)
        except DuplicateExternalIdError as error:
            raise ConflictError(_external_id_taken(fields.external_id)) from error
        await tx.refresh_listing(employer_id)
        return opening, [self._event(OpeningPosted, opening.details())]

    async def opening(self, opening_id: str) -> Opening:
        """A public opening: of an approved employer, and not taken down by an operator."""
        opening = await self._repository.get_opening(opening_id)
        if opening is None or not opening.employer_approved or opening.taken_down:
            raise NotFoundError(opening_id)
        return opening

    async def own_opening(
        self, employer_id: str, opening_id: str, *, tx: EmployerTransaction | None = None
    ) -> Opening:
        """The employer's opening (read within ``tx`` when given)."""
        source = tx if tx is not None else self._repository
        opening = await source.get_opening(opening_id)
        if opening is None:
            raise NotFoundError(opening_id)
        if opening.employer_id != employer_id:
            # Another employer learns no more than the job board shows: 403 for an opening
            # anyone may read, 404 for one nobody else may see (its employer is not approved,
            # or an operator took it down).
            if not opening.employer_approved or opening.taken_down:
                raise NotFoundError(opening_id)
            raise ForbiddenError(opening_id)
        return opening

    async def own_openings(self, employer_id: str) -> list[Opening]:
        return await self._repository.openings_of(employer_id)

    async def edit_opening(self, employer_id: str, opening_id: str, patch: OpeningPatch) -> Opening:
        async def work(tx: EmployerTransaction) -> tuple[Opening, Sequence[Event]]:
            current = await self.own_opening(employer_id, opening_id, tx=tx)
            if not patch.model_fields_set:
                return current, []
            try:
                fields = merge_opening(current.fields, patch)
            except ValidationError as error:
                raise InvalidFieldsError(field_errors(error)) from error
            edited = domain.edit_opening(
                current,
                fields,
                expires_changed="expires_at" in patch.model_fields_set,
                zip_place=_zip_place(fields.zip),
                now=self._clock.now(),
            )
            try:
                await tx.save_opening(edited, previous_version=current.version)
            except DuplicateExternalIdError as error:
                raise ConflictError(_external_id_taken(fields.external_id)) from error
            await tx.refresh_listing(employer_id)
            return edited, [self._event(OpeningUpdated, edited.details())]

        return await self._uow.commit(work)

    async def own_opening_by_external_id(self, employer_id: str, external_id: str) -> Opening:
        opening = await self._repository.opening_by_external_id(employer_id, external_id)
        if opening is None:
            raise NotFoundError(external_id)
        return opening

    async def edit_opening_by_external_id(
        self, employer_id: str, external_id: str, patch: OpeningPatch
    ) -> Opening:
        """Edit the employer's opening that carries its own ``external_id`` (as an ATS knows it)."""
        opening = await self.own_opening_by_external_id(employer_id, external_id)
        return await self.edit_opening(employer_id, opening.opening_id, patch)

    async def close_opening(self, employer_id: str, opening_id: str) -> Opening:
        async def work(tx: EmployerTransaction) -> tuple[Opening, Sequence[Event]]:
            current = await self.own_opening(employer_id, opening_id, tx=tx)
            return await self._close(current, reason="closed", tx=tx)

        return await self._uow.commit(work)

    async def _close(
        self, current: Opening, *, reason: domain.CloseReason, tx: EmployerTransaction
    ) -> tuple[Opening, Sequence[Event]]:
        closed = domain.close_opening(current, reason=reason, now=self._clock.now())
        await tx.save_opening(closed, previous_version=current.version)
        await tx.refresh_listing(current.employer_id)
        return closed, [self._event(OpeningClosed, closed.closed_payload())]

    async def expire_due(self, *, batch: int = 100) -> int:
        """Close every open opening past its ``expires_at``; returns how many were closed."""
        closed = 0
        while True:
            due = await self._repository.expired_openings(now=self._clock.now(), limit=batch)
            if not due:
                return closed
            for opening in due:
                try:
                    await self._expire(opening.opening_id)
                except ConflictError:
                    continue  # closed or edited meanwhile; the next round sees it again if due
                closed += 1
            if len(due) < batch:
                return closed

    async def _expire(self, opening_id: str) -> None:
        async def work(tx: EmployerTransaction) -> tuple[None, Sequence[Event]]:
            current = await tx.get_opening(opening_id)
            if current is None or not domain.is_expired(current, now=self._clock.now()):
                raise ConflictError(opening_id)
            _, events = await self._close(current, reason="expired", tx=tx)
            return None, events

        await self._uow.commit(work)

    # --- searches ----------------------------------------------------------------------------

    async def find_employers(self, query: DirectoryQuery) -> Page[EmployerListing]:
        return await self._repository.search_employers(query)

    async def find_openings(self, query: BoardQuery) -> Page[OpeningListing]:
        return await self._repository.search_openings(query, now=self._clock.now())

    async def open_openings_of(self, employer_id: str) -> list[Opening]:
        return await self._repository.openings_of(employer_id, open_only=True)

    async def any_opening(self, opening_id: str) -> Opening | None:
        """An opening whatever its state (pages decide what a visitor may see)."""
        return await self._repository.get_opening(opening_id)

    async def employers_with_status(self, status: str, *, limit: int) -> list[Employer]:
        return await self._repository.employers_with_status(status, limit=limit)

    # --- reach -------------------------------------------------------------------------------

    async def record_notification(self, event: NotificationSent | NotificationBatchSent) -> None:
        """Count each subscriber as reached for each opening in its email (once per pair, however
        often an email or a batch names it); a batch of emails is applied in one transaction."""
        sent = event.payload.sent if isinstance(event, NotificationBatchSent) else (event.payload,)
        pairs = {
            (opening_id, item.subscriber_id) for item in sent for opening_id in item.opening_ids
        }
        if not pairs:
            return
        counts = Counter(opening_id for opening_id, _ in pairs)

        async def work(tx: EmployerTransaction) -> None:
            await tx.count_reach(counts)

        await self._uow.apply_once(event, work)

    async def stats(self, employer_id: str, opening_id: str) -> OpeningStats:
        opening = await self.own_opening(employer_id, opening_id)
        return OpeningStats(opening.opening_id, opening.notified)
