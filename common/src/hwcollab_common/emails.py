"""What counts as "the same address" in every service, and the form an address is stored in.

The subscriber, the employer and the notifier match addresses across services (suppression,
bounces, erasure, sign-in), so they use these two functions and no rule of their own:

- ``normalize_email`` is the address as it is stored and mailed to: trimmed, syntax checked by
  ``email-validator`` (no DNS lookup), Unicode NFC, the domain lower-cased and in its Unicode form
  (``xn--`` labels decoded); the local part keeps its case, as the person typed it.
- ``email_key`` says which spellings are one address: trimmed, NFC, the domain in its Unicode form,
  and the whole address lower-cased (``str.lower``, not ``casefold``: ``ß`` and ``ss`` are distinct
  mailboxes). It never raises, since it also keys addresses from reports and operators, and it
  is cheap (no syntax check): the notifier keys every address of a delivery batch. For an address
  ``normalize_email`` returned, the key is the address lower-cased; for an ASCII address, the key
  of its normalized form is its own key.
"""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email


class InvalidEmailError(ValueError):
    pass


def normalize_email(raw: str) -> str:
    """The address as we store and send to it (syntax checked, no DNS lookup)."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidEmailError(str(error)) from error
    return str(result.normalized)


def email_key(address: str) -> str:
    """The key under which two spellings of one address are equal (hashes, unique indexes)."""
    text = unicodedata.normalize("NFC", address.strip())
    local, at, domain = text.rpartition("@")
    if not at:
        return text.lower()
    return f"{local.lower()}@{_unicode_domain(domain.lower())}"


def _unicode_domain(domain: str) -> str:
    """``domain`` with its ``xn--`` (IDNA) labels decoded; a label that does not decode stays."""
    return ".".join(_unicode_label(label) for label in domain.split("."))


def _unicode_label(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    try:
        decoded = label[4:].encode("ascii").decode("punycode")
    except UnicodeError:
        return label
    return unicodedata.normalize("NFC", decoded).lower()
