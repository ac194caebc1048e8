"""Employer accounts: verified sign-up, operators' accounts, password resets, and changing the
password and the contact email. Every email is an ``employer.account_email_requested`` event that
the notifier sends; the links are either random tokens stored hashed (password resets) or signed
with the shared link signer (sign-up and contact email confirmations)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from hwcollab_common.emails import email_key
from hwcollab_common.geo import ZipPlace, lookup_zip
from hwcollab_common.tokens import MAX_AGE, LinkSigner, Purpose, TokenError
from hwcollab_employer import domain
from hwcollab_employer.commands import EmployerSignup
from hwcollab_employer.domain import Employer, InvalidFieldsError, NotFoundError
from hwcollab_employer.moderation import OperatorDecisions
from hwcollab_employer.ports import (
    DuplicateEmailError,
    EmployerTransaction,
    PasswordResetRecord,
)
from hwcollab_employer.security import Passwords, link_token_hash, new_link_token
from hwcollab_schemas import Event
from hwcollab_schemas.events import (
    AccountEmailKind,
    AccountEmailRequestedPayload,
    EmployerAccountEmailRequested,
    EmployerApproved,
    EmployerRegistered,
)

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


def required_place(zip_code: str, *, field: str) -> ZipPlace:
    place = lookup_zip(zip_code)
    if place is None:  # the commands validated it; only a changed ZIP table gets here
        raise InvalidFieldsError({field: "is not a known US ZIP code"})
    return place


class AccountUseCases(OperatorDecisions):
    """The account use cases of :class:`~hwcollab_employer.handlers.EmployerService`."""

    _passwords: Passwords
    _auto_approve: bool
    _public_url: str
    _signer: LinkSigner
    _new_id: Callable[[], str]

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
        zip_place = required_place(signup.address.zip, field="address.zip")
        new = domain.register_employer(
            signup,
            employer_id=self._new_id(),
            password_hash=password_hash,
            zip_place=zip_place,
            auto_approve=self._auto_approve,
            now=now,
            verified=False,
        )

        async def work(tx: EmployerTransaction) -> tuple[None, Sequence[Event]]:
            existing = await tx.employer_by_email(new.contact_email)
            if existing is None:
                await tx.add_employer(new)
                return None, [self._verification_email(new)]
            if not existing.verified:
                again = domain.signed_up_again(
                    existing, signup, password_hash=password_hash, zip_place=zip_place, now=now
                )
                await tx.save_employer(again)
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
            zip_place=required_place(signup.address.zip, field="address.zip"),
            auto_approve=self._auto_approve,
            now=now,
        )

        async def work(tx: EmployerTransaction) -> tuple[Employer, Sequence[Event]]:
            try:
                await tx.add_employer(employer)
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

        async def work(tx: EmployerTransaction) -> tuple[tuple[Employer, bool], Sequence[Event]]:
            current = await tx.get_employer(employer_id)
            if current is None:
                raise InvalidFieldsError({"token": VERIFY_LINK_INVALID})
            if current.verified:
                return (current, False), []
            if current.session_version != version:
                raise InvalidFieldsError({"token": VERIFY_LINK_INVALID})
            verified = domain.verify(
                current, auto_approve=self._auto_approve, now=self._clock.now()
            )
            await tx.save_employer(verified)
            return (verified, True), self._registration_events(verified)

        return await self._uow.commit(work)

    async def _account(self, employer_id: str) -> Employer:
        employer = await self._repository.get_employer(employer_id)
        if employer is None:
            raise NotFoundError(employer_id)
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

        async def work(tx: EmployerTransaction) -> tuple[None, Sequence[Event]]:
            # An unknown address stores a decoy nobody holds the token of (its employer id is
            # empty, and the TTL index removes it with the others).
            owner = employer.employer_id if employer else DECOY_EMPLOYER_ID
            record = PasswordResetRecord(token_hash, owner, now, expires_at)
            await tx.add_password_reset(record)
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

        async def work(tx: EmployerTransaction) -> tuple[Employer, Sequence[Event]]:
            now = self._clock.now()
            record = await tx.take_password_reset(link_token_hash(token), now=now)
            if record is None:  # used by a request at the same moment
                raise InvalidFieldsError({"token": RESET_LINK_INVALID})
            if record.employer_id == DECOY_EMPLOYER_ID:  # cannot happen: nobody has its token
                raise InvalidFieldsError({"token": RESET_LINK_INVALID})
            current = await self._employer_in(record.employer_id, tx)
            updated = domain.with_password(current, password_hash=password_hash, now=now)
            events: list[Event] = []
            if not updated.verified:  # the link went to the address: that confirms it too
                updated = domain.verify(updated, auto_approve=self._auto_approve, now=now)
                events = self._registration_events(updated)
            await tx.save_employer(updated)
            await tx.drop_password_resets(current.employer_id)
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
            await self._account(employer_id), current, field="current_password"
        )
        password_hash = await asyncio.to_thread(self._passwords.hash, new)

        async def work(tx: EmployerTransaction) -> tuple[Employer, Sequence[Event]]:
            current_employer = await self._employer_in(employer_id, tx)
            updated = domain.with_password(
                current_employer, password_hash=password_hash, now=self._clock.now()
            )
            await tx.save_employer(updated)
            await tx.drop_password_resets(employer_id)
            return updated, []

        return await self._uow.commit(work)

    async def request_email_change(
        self, employer_id: str, *, new_email: str, password: str
    ) -> None:
        """Ask to make ``new_email`` the contact email (the password required, 422 on
        ``password``): a link that confirms it goes to the new address and a notice to the old
        one; nothing changes until the link is used. A new address that another account has
        gets the "already registered" email instead, and the answer is the same."""
        employer = await self._account(employer_id)
        await self._check_password(employer, password, field="password")
        new = email_key(new_email)
        if new == employer.contact_email:
            raise InvalidFieldsError({"new_email": SAME_EMAIL})

        async def work(tx: EmployerTransaction) -> tuple[None, Sequence[Event]]:
            owner = await tx.employer_by_email(new)
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

        async def work(tx: EmployerTransaction) -> tuple[tuple[Employer, bool], Sequence[Event]]:
            current = await tx.get_employer(employer_id)
            if current is None:
                raise InvalidFieldsError({"token": EMAIL_LINK_INVALID})
            if current.contact_email == new:
                return (current, False), []
            if current.contact_email != old:
                raise InvalidFieldsError({"token": EMAIL_LINK_INVALID})
            changed = domain.with_contact_email(current, new, now=self._clock.now())
            try:
                await tx.save_employer(changed)
            except DuplicateEmailError as error:
                raise InvalidFieldsError({"token": EMAIL_LINK_INVALID}) from error
            return (changed, True), []

        return await self._uow.commit(work)
