"""Which failures are worth waiting out.

A *transient* failure says nothing about the message or request being handled: the database, the
broker or the mail server is unreachable, slow or asks to come back later. Such a failure is
retried until the dependency returns (consumers) or answered with 503 (HTTP); it never sends an
event to a dead-letter topic. Anything else is a fault of the input or of the code and follows
the bounded-attempts path.
"""

from __future__ import annotations

import errno

import aiosmtplib
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
)
from pymongo.errors import ConnectionFailure, PyMongoError

__all__ = ["TransientError", "is_mongo_unavailable", "is_transient"]


class TransientError(Exception):
    """Raise (or subclass) this for a failure that will pass by itself: the work is retried until
    it succeeds and is never dead-lettered."""


# OSErrors that are about the local file system or permissions, not about a peer being away.
_LOCAL_OS_ERRORS: tuple[type[OSError], ...] = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)
_NETWORK_ERRNOS = frozenset(
    {
        errno.EAGAIN,
        errno.ECONNABORTED,
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.EHOSTDOWN,
        errno.EHOSTUNREACH,
        errno.ENETDOWN,
        errno.ENETRESET,
        errno.ENETUNREACH,
        errno.EPIPE,
        errno.ETIMEDOUT,
    }
)
_MONGO_TRANSIENT_LABELS = ("TransientTransactionError", "RetryableWriteError")


def is_mongo_unavailable(error: BaseException) -> bool:
    """MongoDB cannot be reached or did not answer in time (an outage, not a bad request)."""
    if isinstance(error, ConnectionFailure):
        return True
    if isinstance(error, PyMongoError):
        return error.timeout or any(error.has_error_label(x) for x in _MONGO_TRANSIENT_LABELS)
    return False


def _smtp_transient(error: aiosmtplib.SMTPException) -> bool:
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        refusals = error.recipients
        return bool(refusals) and all(400 <= r.code < 500 for r in refusals)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return 400 <= error.code < 500
    return isinstance(
        error,
        (
            aiosmtplib.SMTPConnectError,
            aiosmtplib.SMTPServerDisconnected,
            aiosmtplib.SMTPTimeoutError,
        ),
    )


def _os_transient(error: OSError) -> bool:
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    if isinstance(error, _LOCAL_OS_ERRORS):
        return False
    # asyncio reports "Multiple exceptions: [Errno 111] …" for several addresses without an errno.
    return error.errno is None or error.errno in _NETWORK_ERRNOS


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, TransientError):
        return True
    if isinstance(error, PyMongoError):
        return is_mongo_unavailable(error)
    if isinstance(error, (KafkaConnectionError, KafkaTimeoutError)):
        return True
    if isinstance(error, KafkaError):
        return bool(error.retriable)
    if isinstance(error, aiosmtplib.SMTPException):
        # Checked before OSError: a 5xx greeting is an SMTPConnectResponseError, also an OSError.
        return _smtp_transient(error)
    if isinstance(error, OSError):
        return _os_transient(error)
    if isinstance(error, BaseExceptionGroup):
        return all(is_transient(inner) for inner in error.exceptions)
    return False


def is_transient(error: BaseException) -> bool:
    """True when ``error`` (or an error it was explicitly raised ``from``) is an outage of a
    dependency rather than a problem with the work itself.

    Covers :class:`TransientError`; connection, timeout and network ``OSError``s; pymongo
    connection failures, timeouts and errors labelled ``TransientTransactionError``; aiokafka
    connection, timeout and retriable errors; aiosmtplib connection and timeout errors and 4xx
    replies.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if _is_transient(current):
            return True
        seen.add(id(current))
        current = current.__cause__
    return False
