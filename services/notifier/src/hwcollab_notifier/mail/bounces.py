"""VERP return paths: the SMTP envelope sender of each email is a bounce address of its own,
``bounces+<token>@<BOUNCE_DOMAIN>``, whose signed token names the message and the subscriber, so
a bounce says whom it is about without guessing from its text.

Why not the shared ``LinkSigner`` (itsdangerous): its tokens contain "." and run past the 64
characters a local part may have, and they are case-sensitive, while mail systems on a bounce's
way may change the case of a local part. The token here is lowercase base32 (letters and digits
only) of a version byte, 8 bytes of SHA-256 of the Message-ID, the subscriber id (16 bytes when it
is a 32-digit hex id, as the subscriber service makes them, else its UTF-8) and an 8-byte
HMAC-SHA256 tag, keyed by LINK_SIGNING_KEY (or a fallback key) through a purpose of its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

LOCAL_PREFIX = "bounces+"
MAX_LOCAL_PART = 64
_HEX_ID = 0x01
_TEXT_ID = 0x02
_MESSAGE_HASH_BYTES = 8
_TAG_BYTES = 8
_PURPOSE = b"hwcollab bounce address v1"
_HEX_32 = re.compile(r"^[0-9a-f]{32}$")
_TOKEN = re.compile(r"^[a-z2-7]+$")


def message_hash(message_id: str) -> str:
    """The hex name of a Message-ID inside a bounce address (the first 8 bytes of its SHA-256)."""
    return hashlib.sha256(message_id.encode()).digest()[:_MESSAGE_HASH_BYTES].hex()


@dataclass(frozen=True, slots=True)
class BounceToken:
    """What a bounce address names: the message (by :func:`message_hash`) and its subscriber."""

    message_hash: str
    subscriber_id: str


def _key(secret: str) -> bytes:
    # A key of its own, so that no link token's MAC can serve as a bounce token's or back.
    return hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()


def _tag(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:_TAG_BYTES]


class BounceAddresses:
    """Makes and reads the per-message bounce addresses of one bounce domain."""

    def __init__(self, *, domain: str, key: str, fallback_keys: tuple[str, ...] = ()) -> None:
        if not key:
            raise ValueError("bounce addresses need a signing key")
        self.domain = domain.lower()
        self._key = _key(key)
        self._keys = (self._key, *(_key(k) for k in fallback_keys if k))

    def address_for(self, *, message_id: str, subscriber_id: str) -> str | None:
        """``bounces+<token>@<domain>``, or None when the subscriber id is too long to fit in
        a local part (the email then goes out with MAIL_FROM as its envelope sender)."""
        if _HEX_32.match(subscriber_id):
            subscriber = bytes([_HEX_ID]) + bytes.fromhex(subscriber_id)
        else:
            subscriber = bytes([_TEXT_ID]) + subscriber_id.encode()
        payload = bytes.fromhex(message_hash(message_id)) + subscriber
        raw = payload + _tag(self._key, payload)
        token = base64.b32encode(raw).decode().rstrip("=").lower()
        local = LOCAL_PREFIX + token
        if len(local) > MAX_LOCAL_PART:
            return None
        return f"{local}@{self.domain}"

    def parse(self, address: str) -> BounceToken | None:
        """The message and subscriber a bounce address names, or None for an address that is
        not one of ours, garbled, or signed with a key this process does not know."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at:
            local, domain = address.strip(), self.domain
        local, domain = local.lower(), domain.lower()
        if domain != self.domain or not local.startswith(LOCAL_PREFIX):
            return None
        token = local.removeprefix(LOCAL_PREFIX)
        if not _TOKEN.match(token) or len(token) > MAX_LOCAL_PART:
            return None
        try:
            raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8))
        except (binascii.Error, ValueError):
            return None
        # Only the one spelling this module writes: the last character's unused bits count too.
        if base64.b32encode(raw).decode().rstrip("=").lower() != token:
            return None
        if len(raw) < _MESSAGE_HASH_BYTES + 1 + _TAG_BYTES:
            return None
        payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
        if not any(hmac.compare_digest(_tag(key, payload), tag) for key in self._keys):
            return None
        hashed, kind, subscriber = (
            payload[:_MESSAGE_HASH_BYTES],
            payload[_MESSAGE_HASH_BYTES],
            payload[_MESSAGE_HASH_BYTES + 1 :],
        )
        if kind == _HEX_ID and len(subscriber) == 16:
            return BounceToken(hashed.hex(), subscriber.hex())
        if kind == _TEXT_ID and subscriber:
            try:
                return BounceToken(hashed.hex(), subscriber.decode())
            except UnicodeDecodeError:
                return None
        return None
