"""Credentials of employers: Argon2id password hashes, expiring bearer tokens, page sessions with
their CSRF token, and API keys for integrations."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadData, URLSafeSerializer

from hwcollab_common.clock import Clock
from hwcollab_common.tokens import ExpiringSigner

API_KEY_PREFIX = "hwk_"


class Passwords:
    """Argon2id hashing (argon2-cffi's defaults: RFC 9106 low-memory profile)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()

    @cached_property
    def _decoy(self) -> str:
        """Verified against when the email is unknown, so that both failures take as long; made
        by :meth:`prepare` when the app starts (an app built and never started, as in unit tests,
        does no Argon2 work)."""
        return self._hasher.hash(secrets.token_urlsafe(16))

    def prepare(self) -> None:
        """Make the decoy hash now, so that no sign-in pays for it."""
        _ = self._decoy

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._decoy, password) and (
                password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


@dataclass(frozen=True, slots=True)
class _Claims:
    subject: str
    expires_at: datetime
    csrf: str | None
    session_version: int


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in employer on the pages, with the CSRF token its forms must carry."""

    employer_id: str
    csrf_token: str
    expires_at: datetime
    session_version: int = 1
    """The employer's ``session_version`` when it signed in: a password reset or change raises
    it, which ends every session (and access token) of an older one."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    employer_id: str
    session_version: int


class TokenAuthority:
    """Signs and checks bearer tokens (API) and session cookies (pages).

    The expiry is inside the signed payload and checked against the injected clock; a distinct
    salt per kind keeps a session cookie from being accepted as a bearer token and vice versa.
    """

    def __init__(
        self,
        key: str,
        *,
        clock: Clock,
        access_ttl: timedelta,
        session_ttl: timedelta,
    ) -> None:
        self._access = ExpiringSigner(key, salt="hwcollab.employer.access", clock=clock)
        self._session = ExpiringSigner(key, salt="hwcollab.employer.session", clock=clock)
        self._anonymous = URLSafeSerializer(key, salt="hwcollab.employer.csrf")
        self._operator = ExpiringSigner(key, salt="hwcollab.employer.operator", clock=clock)
        self.access_ttl = access_ttl
        self.session_ttl = session_ttl

    def issue_access_token(self, employer_id: str, *, session_version: int = 1) -> str:
        token, _ = self._access.sign(
            {"sub": employer_id, "sv": session_version}, ttl=self.access_ttl
        )
        return token

    def access_token_subject(self, token: str) -> str | None:
        """The employer id of a valid, unexpired access token; None otherwise."""
        claims = self.read_access_token(token)
        return claims.employer_id if claims else None

    def read_access_token(self, token: str) -> AccessClaims | None:
        """Whose a valid, unexpired access token is, and of which session version."""
        claims = self._load(self._access, token)
        return AccessClaims(claims.subject, claims.session_version) if claims else None

    def issue_session(self, employer_id: str, *, session_version: int = 1) -> tuple[str, Session]:
        csrf = secrets.token_urlsafe(24)
        cookie, expires = self._session.sign(
            {"sub": employer_id, "csrf": csrf, "sv": session_version}, ttl=self.session_ttl
        )
        return cookie, Session(employer_id, csrf, expires, session_version)

    def read_session(self, cookie: str | None) -> Session | None:
        claims = self._load(self._session, cookie)
        if claims is None or not claims.csrf:
            return None
        return Session(claims.subject, claims.csrf, claims.expires_at, claims.session_version)

    def issue_operator_session(self) -> tuple[str, str]:
        """(cookie value, CSRF token) of an operator signed in on the operator page with the
        ``ADMIN_TOKEN``; it expires like an employer's session."""
        csrf = secrets.token_urlsafe(24)
        cookie, _ = self._operator.sign({"sub": "operator", "csrf": csrf}, ttl=self.session_ttl)
        return cookie, csrf

    def read_operator_session(self, cookie: str | None) -> str | None:
        """The CSRF token of a valid, unexpired operator session; None otherwise."""
        claims = self._load(self._operator, cookie)
        if claims is None or claims.subject != "operator":
            return None
        return claims.csrf

    def issue_anonymous_csrf(self) -> tuple[str, str]:
        """(cookie value, CSRF token) for forms shown before signing in."""
        token = secrets.token_urlsafe(24)
        return str(self._anonymous.dumps({"csrf": token})), token

    def read_anonymous_csrf(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            data = self._anonymous.loads(cookie)
        except BadData:
            return None
        token = data.get("csrf") if isinstance(data, dict) else None
        return token if isinstance(token, str) else None

    def _load(self, signer: ExpiringSigner, token: str | None) -> _Claims | None:
        verified = signer.verify(token)
        if verified is None:
            return None
        data, expires_at = verified
        subject, csrf = data.get("sub"), data.get("csrf")
        if not isinstance(subject, str) or not subject:
            return None
        # Sessions and tokens issued before session versions existed are of version 1.
        version = data.get("sv", 1)
        if not isinstance(version, int) or isinstance(version, bool):
            return None
        return _Claims(subject, expires_at, csrf if isinstance(csrf, str) else None, version)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key_id: str
    secret: str  # the whole key, shown to the employer once
    secret_hash: str

    @property
    def display_prefix(self) -> str:
        return self.secret[: len(API_KEY_PREFIX) + 12]


def new_api_key() -> NewApiKey:
    key_id = secrets.token_hex(6)
    secret = f"{API_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return NewApiKey(key_id, secret, api_key_hash(secret))


def api_key_hash(secret: str) -> str:
    # A fast hash is right here (unlike passwords): the key is 256 random bits, so nothing can be
    # guessed, and every API request verifies one.
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_id(secret: str) -> str | None:
    """The key id inside an API key, or None when ``secret`` is not shaped like one."""
    if not secret.startswith(API_KEY_PREFIX):
        return None
    key_id, sep, rest = secret[len(API_KEY_PREFIX) :].partition("_")
    if not sep or not rest or len(key_id) != 12:
        return None
    return key_id


def new_link_token() -> tuple[str, str]:
    """(token for the link, its SHA-256 hex digest to store): 256 random bits, so a fast hash
    is right, as for API keys; the database never holds a usable token."""
    token = secrets.token_urlsafe(32)
    return token, link_token_hash(token)


def link_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
