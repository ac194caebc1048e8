"""Use cases of the employer service: accounts, openings, approval, expiry and reach."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pydantic import ValidationError

from hwcollab_common.clock import Clock
from hwcollab_common.emails import email_key
from hwcollab_common.geo import ZipPlace, lookup_zip
from hwcollab_common.retrying import retry, retry_policy
from hwcollab_common.settings import DEV_LINK_SIGNING_KEY
from hwcollab_common.tokens import MAX_AGE, LinkSigner, Purpose, TokenError
from hwcollab_common.validation import field_errors
from hwcollab_employer import domain
from hwcollab_employer.commands import (
    EmployerSignup,
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
from hwcollab_employer.moderation import OperatorDecisions
from hwcollab_employer.ports import (
    ApiKeyRecord,
    DuplicateEmailError,
    DuplicateExternalIdError,
    EmployerRepository,
    IdempotencyKeyTakenError,
    PasswordResetRecord,
    Tx,
    UnitOfWork,
)
from hwcollab_employer.security import (
    NewApiKey,
    Passwords,
    api_key_hash,
    api_key_id,
    constant_time_equal,
    link_token_hash,
    new_api_key,
    new_link_token,
)
from hwcollab_schemas import Event
from hwcollab_schemas.events import (
    AccountEmailKind,
    AccountEmailRequestedPayload,
    EmployerAccountEmailRequested,
    EmployerApproved,
    EmployerRegistered,
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
RESET_LIFETIME = timedelta(minutes=30)
"""How long a "Forgot your password?" link works (once)."""
RESET_LINK_INVALID = (
    "This link has expired or was already used. Ask for a new one on the sign-in page."
)
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8002"
DECOY_EMPLOYER_ID = ""
VERIFY_LIFETIME = MAX_AGE[Purpose.EMPLOYER_VERIFY] or timedelta(hours=48)
"""How long a sign-up's confirmation link works."""
VERIFY_LINK_INVALID = (
    "This confirmation link has expired or is no longer valid. Sign up again with the same "
    "details to get a new one."
)
WRONG_CURRENT = "Incorrect password."
SAME_EMAIL = "This is already your contact email."
EMAIL_CHANGE_LIFETIME = MAX_AGE[Purpose.EMPLOYER_EMAIL_CHANGE] or timedelta(hours=24)
"""How long the link that confirms a new contact email works."""
EMAIL_LINK_INVALID = (
    "This link has expired or is no longer valid. Ask for a new one on your account page."
)
UNVERIFIED = (
    "Please confirm your email address first: open the link we emailed when you signed up. "
    "No email? Sign up again with the same details and we will send a new one."
)


class EmailTakenError(ValueError):
    """An operator created an account with an address that already has one."""


def _zip_place(zip_code: str | None) -> ZipPlace | None:
    return lookup_zip(zip_code) if zip_code else None


def _required_place(zip_code: str, *, field: str) -> ZipPlace:
    place = lookup_zip(zip_code)
    if place is None:  # the commands validated it; only a changed ZIP table gets here
        raise InvalidFieldsError({field: "is not a known US ZIP code"})
    return place


def _external_id_taken(external_id: str | None) -> str:
    return f"another of your openings has the external_id {external_id!r}"


@dataclass(frozen=True, slots=True)
class OpeningStats:
    opening_id: str
    notified: int


class EmployerService(OperatorDecisions):
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

    async def sign_up(self, signup: EmployerSignup) -> None:
        """A public sign-up; the same answer, and the same work, whatever the address: the
        password is hashed, the address looked up and one transaction writes one email request.

        - a new address: an ``unverified`` account and the ``verify_signup`` email (its link);
        - an account not verified yet: its details replaced by these, a new ``verify_signup``
          email (the links sent before stop working);
        - a verified account: nothing changes; the ``already_registered`` email goes to it.
        """
        now = self._clock.now()
        # Argon2 takes tens of milliseconds of CPU on purpose: off the event loop.
        password_hash = await asyncio.to_thread(self._passwords.hash, signup.password)
        zip_place = _required_place(signup.address.zip, field="address.zip")
        new = domain.register_employer(
            signup,
            employer_id=self._new_id(),
            password_hash=password_hash,
            zip_place=zip_place,
            auto_approve=self._auto_approve,
            now=now,
            verified=False,
        )

        async def work(session: Tx) -> tuple[None, Sequence[Event]]:
            existing = await self._repository.employer_by_email(new.contact_email, session=session)
            if existing is None:
                await self._repository.add_employer(new, session=session)
                return None, [self._verification_email(new)]
            if not existing.verified:
                again = domain.signed_up_again(
                    existing, signup, password_hash=password_hash, zip_place=zip_place, now=now
                )
                await self._repository.save_employer(again, session=session)
                return None, [self._verification_email(again)]
            return None, [self._account_email(existing, "already_registered")]

        for _ in range(2):
            try:
                await self._uow.commit(work)
            except DuplicateEmailError:
                continue  # signed up at the same moment: the next run finds that account
            return

    async def create_employer(self, signup: EmployerSignup) -> Employer:
        """An account an operator creates: its address counts as verified (the operator vouches
        for it), and it is approved at once or waits as configured."""
        now = self._clock.now()
        password_hash = await asyncio.to_thread(self._passwords.hash, signup.password)
        employer = domain.register_employer(
            signup,
            employer_id=self._new_id(),
            password_hash=password_hash,
            zip_place=_required_place(signup.address.zip, field="address.zip"),
            auto_approve=self._auto_approve,
            now=now,
        )

        async def work(session: Tx) -> tuple[Employer, Sequence[Event]]:
            try:
                await self._repository.add_employer(employer, session=session)
            except DuplicateEmailError as error:
                raise EmailTakenError(employer.contact_email) from error
            return employer, self._registration_events(employer)

        return await self._uow.commit(work)

    def _registration_events(self, employer: Employer) -> list[Event]:
        """What the rest of the product hears of a new (verified) account."""
        events = [self._event(EmployerRegistered, employer.profile())]
        if employer.approved:
            events.append(self._event(EmployerApproved, employer.profile()))
        return events

    def _verification_email(self, employer: Employer) -> Event:
        subject = f"{employer.employer_id}:{employer.session_version}"
        token = self._signer.sign(Purpose.EMPLOYER_VERIFY, subject)
        return self._account_email(
            employer,
            "verify_signup",
            url=f"{self._public_url}/verify-email?token={token}",
            expires_at=self._clock.now() + VERIFY_LIFETIME,
        )

    def _verification_subject(self, token: str) -> tuple[str, int]:
        try:
            subject = self._signer.verify(Purpose.EMPLOYER_VERIFY, token)
        except TokenError as error:
            raise InvalidFieldsError({"token": VERIFY_LINK_INVALID}) from error
        employer_id, _, version = subject.rpartition(":")
        if not employer_id or not version.isdigit():
            raise InvalidFieldsError({"token": VERIFY_LINK_INVALID})
        return employer_id, int(version)

    async def verification_usable(self, token: str) -> bool:
        """Whether a verification link is genuine and unexpired (reading it changes nothing)."""
        try:
            self._verification_subject(token)
        except InvalidFieldsError:
            return False
        return True

    async def verify_email(self, token: str) -> tuple[Employer, bool]:
        """Confirm the contact email of the sign-up the link was sent for; the account and
        whether this confirmed it (False: it was confirmed before, and nothing changes). A link
        of an earlier sign-up with the same address, or a forged or expired one, is a 422 on
        ``token``."""
        employer_id, version = self._verification_subject(token)

        async def work(session: Tx) -> tuple[tuple[Employer, bool], Sequence[Event]]:
            current = await self._repository.get_employer(employer_id, session=session)
            if current is None:
                raise InvalidFieldsError({"token": VERIFY_LINK_INVALID})
            if current.verified:
                return (current, False), []
            if current.session_version != version:
                raise InvalidFieldsError({"token": VERIFY_LINK_INVALID})
            verified = domain.verify(
                current, auto_approve=self._auto_approve, now=self._clock.now()
            )
            await self._repository.save_employer(verified, session=session)
            return (verified, True), self._registration_events(verified)

        return await self._uow.commit(work)

    async def authenticate(self, email: str, password: str) -> Employer | None:
        """The employer these credentials belong to; None for any failure."""
        employer = await self._repository.employer_by_email(email_key(email))
        stored = employer.password_hash if employer else None
        if not await asyncio.to_thread(self._passwords.verify, stored, password):
            return None
        return employer

    async def session_version(self, employer_id: str) -> int | None:
        """The employer's current session version (None when there is no such employer): a
        session or access token of another one was ended by a password reset or change."""
        employer = await self._repository.get_employer(employer_id)
        return employer.session_version if employer else None

    # --- account emails and password resets ---------------------------------------------------

    def _account_email(
        self,
        employer: Employer,
        kind: AccountEmailKind,
        *,
        to: str | None = None,
        url: str | None = None,
        expires_at: datetime | None = None,
    ) -> Event:
        """The event that has the notifier send an account email (this service sends none)."""
        payload = AccountEmailRequestedPayload(
            employer_id=employer.employer_id,
            email=to or employer.contact_email,
            organization_name=employer.organization_name,
            kind=kind,
            url=url,
            expires_at=expires_at,
        )
        return self._event(EmployerAccountEmailRequested, payload)

    async def request_password_reset(self, email: str) -> None:
        """Email a single-use link valid for RESET_LIFETIME to the account of ``email``; nothing
        (and nothing different to see) for an address without one. The callers answer before
        this runs, so its time tells nothing either; the work is still the same up to the
        write: the lookup, a token and its hash, one transaction."""
        now = self._clock.now()
        token, token_hash = new_link_token()
        employer = await self._repository.employer_by_email(email_key(email))
        expires_at = now + RESET_LIFETIME

        async def work(session: Tx) -> tuple[None, Sequence[Event]]:
            # An unknown address stores a decoy nobody holds the token of (its employer id is
            # empty, and the TTL index removes it with the others).
            owner = employer.employer_id if employer else DECOY_EMPLOYER_ID
            record = PasswordResetRecord(token_hash, owner, now, expires_at)
            await self._repository.add_password_reset(record, session=session)
            if employer is None:
                return None, []
            url = f"{self._public_url}/reset-password?token={token}"
            event = self._account_email(employer, "password_reset", url=url, expires_at=expires_at)
            return None, [event]

        await self._uow.commit(work)

    async def password_reset_usable(self, token: str) -> bool:
        """Whether a reset link still works; reading it uses nothing up."""
        found = await self._repository.password_reset(link_token_hash(token), now=self._clock.now())
        return found is not None

    async def reset_password(self, token: str, password: str) -> Employer:
        """Set the password of the reset link's employer and use the link up; every other reset
        link of the employer stops working and every session ends (API keys keep working).
        An expired, used or unknown link is a 422 on ``token``."""
        if not await self.password_reset_usable(token):
            raise InvalidFieldsError({"token": RESET_LINK_INVALID})
        password_hash = await asyncio.to_thread(self._passwords.hash, password)

        async def work(session: Tx) -> tuple[Employer, Sequence[Event]]:
            now = self._clock.now()
            record = await self._repository.take_password_reset(
                link_token_hash(token), now=now, session=session
            )
            if record is None:  # used by a request at the same moment
                raise InvalidFieldsError({"token": RESET_LINK_INVALID})
            if record.employer_id == DECOY_EMPLOYER_ID:  # cannot happen: nobody has its token
                raise InvalidFieldsError({"token": RESET_LINK_INVALID})
            current = await self._employer_in(record.employer_id, session)
            updated = domain.with_password(current, password_hash=password_hash, now=now)
            events: list[Event] = []
            if not updated.verified:  # the link went to the address: that confirms it too
                updated = domain.verify(updated, auto_approve=self._auto_approve, now=now)
                events = self._registration_events(updated)
            await self._repository.save_employer(updated, session=session)
            await self._repository.drop_password_resets(current.employer_id, session=session)
            return updated, events

        return await self._uow.commit(work)

    # --- changing the password and the contact email -----------------------------------------

    async def _check_password(self, employer: Employer, password: str, *, field: str) -> None:
        if not await asyncio.to_thread(self._passwords.verify, employer.password_hash, password):
            raise InvalidFieldsError({field: WRONG_CURRENT})

    async def change_password(self, employer_id: str, *, current: str, new: str) -> Employer:
        """A signed-in employer's new password (the current one required, 422 on
        ``current_password`` otherwise): every session and access token ends but the one the
        caller is given anew; reset links stop working; API keys keep working."""
        await self._check_password(
            await self.employer(employer_id), current, field="current_password"
        )
        password_hash = await asyncio.to_thread(self._passwords.hash, new)

        async def work(session: Tx) -> tuple[Employer, Sequence[Event]]:
            current_employer = await self._employer_in(employer_id, session)
            updated = domain.with_password(
                current_employer, password_hash=password_hash, now=self._clock.now()
            )
            await self._repository.save_employer(updated, session=session)
            await self._repository.drop_password_resets(employer_id, session=session)
            return updated, []

        return await self._uow.commit(work)

    async def request_email_change(
        self, employer_id: str, *, new_email: str, password: str
    ) -> None:
        """Ask to make ``new_email`` the contact email (the password required, 422 on
        ``password``): a link that confirms it goes to the new address and a notice to the old
        one; nothing changes until the link is used. A new address that another account has
        gets the "already registered" email instead, and the answer is the same."""
        employer = await self.employer(employer_id)
        await self._check_password(employer, password, field="password")
        new = email_key(new_email)
        if new == employer.contact_email:
            raise InvalidFieldsError({"new_email": SAME_EMAIL})

        async def work(session: Tx) -> tuple[None, Sequence[Event]]:
            owner = await self._repository.employer_by_email(new, session=session)
            notice = self._account_email(employer, "email_change_notice")
            if owner is not None:
                return None, [notice, self._account_email(owner, "already_registered")]
            subject = "\n".join((employer.employer_id, employer.contact_email, new))
            token = self._signer.sign(Purpose.EMPLOYER_EMAIL_CHANGE, subject)
            confirm = self._account_email(
                employer,
                "email_change_confirm",
                to=new,
                url=f"{self._public_url}/confirm-email?token={token}",
                expires_at=self._clock.now() + EMAIL_CHANGE_LIFETIME,
            )
            return None, [confirm, notice]

        await self._uow.commit(work)

    def _email_change_subject(self, token: str) -> tuple[str, str, str]:
        try:
            subject = self._signer.verify(Purpose.EMPLOYER_EMAIL_CHANGE, token)
        except TokenError as error:
            raise InvalidFieldsError({"token": EMAIL_LINK_INVALID}) from error
        parts = subject.split("\n")
        if len(parts) != 3 or not all(parts):
            raise InvalidFieldsError({"token": EMAIL_LINK_INVALID})
        return parts[0], parts[1], parts[2]

    async def email_change_usable(self, token: str) -> bool:
        """Whether the link is genuine and unexpired (reading it changes nothing)."""
        try:
            self._email_change_subject(token)
        except InvalidFieldsError:
            return False
        return True

    async def confirm_email_change(self, token: str) -> tuple[Employer, bool]:
        """Make the link's new address the contact email; the account and whether this changed
        it (False: it was changed before). A link from before another change of the address, an
        address another account took meanwhile, a forged or expired link: 422 on ``token``."""
        employer_id, old, new = self._email_change_subject(token)

        async def work(session: Tx) -> tuple[tuple[Employer, bool], Sequence[Event]]:
            current = await self._repository.get_employer(employer_id, session=session)
            if current is None:
                raise InvalidFieldsError({"token": EMAIL_LINK_INVALID})
            if current.contact_email == new:
                return (current, False), []
            if current.contact_email != old:
                raise InvalidFieldsError({"token": EMAIL_LINK_INVALID})
            changed = domain.with_contact_email(current, new, now=self._clock.now())
            try:
                await self._repository.save_employer(changed, session=session)
            except DuplicateEmailError as error:
                raise InvalidFieldsError({"token": EMAIL_LINK_INVALID}) from error
            return (changed, True), []

        return await self._uow.commit(work)

    async def employer(self, employer_id: str) -> Employer:
        employer = await self._repository.get_employer(employer_id)
        if employer is None:
            raise NotFoundError(employer_id)
        return employer

    async def update_profile(self, employer_id: str, patch: ProfilePatch) -> Employer:
        async def work(session: Tx) -> tuple[Employer, Sequence[Event]]:
            current = await self._employer_in(employer_id, session)
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
                zip_place=_required_place(fields.address.zip, field="address.zip"),
                now=now,
            )
            await self._repository.save_employer(updated, session=session)
            events = [self._event(EmployerUpdated, updated.profile())]
            if updated.organization_name != current.organization_name:
                events += await self._republish_openings(updated, session=session)
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

        async def work(session: Tx) -> tuple[None, Sequence[Event]]:
            await self._repository.add_api_key(record, session=session)
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

        async def work(session: Tx) -> tuple[Opening, Sequence[Event]]:
            return await self._add_opening(
                employer_id, fields, opening_id=opening_id, session=session
            )

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

        async def work(session: Tx) -> tuple[StoredAnswer, Sequence[Event]]:
            now = self._clock.now()
            kept = await self._repository.idempotency_record(
                claim.principal, claim.key, session=session
            )
            if kept is not None and kept.live(now=now):
                if kept.claim.fingerprint != claim.fingerprint:
                    raise InvalidFieldsError({IDEMPOTENCY_HEADER: KEY_REUSED}, location="header")
                return replace(kept.answer, replayed=True), []
            opening, events = await self._add_opening(
                employer_id, fields, opening_id=opening_id, session=session
            )
            first = answer(opening)
            await self._repository.keep_idempotency_record(
                record_for(claim, first, now=now), replaces=kept, session=session
            )
            return first, events

        policy = retry_policy(attempts=KEY_RACE_ATTEMPTS, on=IdempotencyKeyTakenError)
        try:
            return await retry(policy, self._uow.commit, work)
        except IdempotencyKeyTakenError as error:
            raise ConflictError(KEY_IN_PROGRESS) from error

    async def _add_opening(
        self, employer_id: str, fields: OpeningFields, *, opening_id: str, session: Tx
    ) -> tuple[Opening, Sequence[Event]]:
        employer = await self._employer_in(employer_id, session)
        opening = domain.post_opening(
            fields,
            employer=employer,
            opening_id=opening_id,
            zip_place=_zip_place(fields.zip),
            now=self._clock.now(),
        )
        try:
            await self._repository.add_opening(opening, session=session)
        except DuplicateExternalIdError as error:
            raise ConflictError(_external_id_taken(fields.external_id)) from error
        await self._repository.refresh_listing(employer_id, session=session)
        return opening, [self._event(OpeningPosted, opening.details())]

    async def opening(self, opening_id: str) -> Opening:
        """A public opening: of an approved employer, and not taken down by an operator."""
        opening = await self._repository.get_opening(opening_id)
        if opening is None or not opening.employer_approved or opening.taken_down:
            raise NotFoundError(opening_id)
        return opening

    async def own_opening(
        self, employer_id: str, opening_id: str, *, session: Tx = None
    ) -> Opening:
        opening = await self._repository.get_opening(opening_id, session=session)
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
        async def work(session: Tx) -> tuple[Opening, Sequence[Event]]:
            current = await self.own_opening(employer_id, opening_id, session=session)
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
                await self._repository.save_opening(
                    edited, previous_version=current.version, session=session
                )
            except DuplicateExternalIdError as error:
                raise ConflictError(_external_id_taken(fields.external_id)) from error
            await self._repository.refresh_listing(employer_id, session=session)
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
        async def work(session: Tx) -> tuple[Opening, Sequence[Event]]:
            current = await self.own_opening(employer_id, opening_id, session=session)
            return await self._close(current, reason="closed", session=session)

        return await self._uow.commit(work)

    async def _close(
        self, current: Opening, *, reason: domain.CloseReason, session: Tx
    ) -> tuple[Opening, Sequence[Event]]:
        closed = domain.close_opening(current, reason=reason, now=self._clock.now())
        await self._repository.save_opening(
            closed, previous_version=current.version, session=session
        )
        await self._repository.refresh_listing(current.employer_id, session=session)
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
        async def work(session: Tx) -> tuple[None, Sequence[Event]]:
            current = await self._repository.get_opening(opening_id, session=session)
            if current is None or not domain.is_expired(current, now=self._clock.now()):
                raise ConflictError(opening_id)
            _, events = await self._close(current, reason="expired", session=session)
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

        async def work(session: Tx) -> None:
            await self._repository.count_reach(counts, session=session)

        await self._uow.apply_once(event, work)

    async def stats(self, employer_id: str, opening_id: str) -> OpeningStats:
        opening = await self.own_opening(employer_id, opening_id)
        return OpeningStats(opening.opening_id, opening.notified)
