from __future__ import annotations

import errno

import aiosmtplib
import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    TopicAuthorizationFailedError,
)
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteError,
)

from hwcollab_common.errors import TransientError, is_mongo_unavailable, is_transient


def labelled(label: str) -> OperationFailure:
    return OperationFailure("write conflict", 112, {"errorLabels": [label]})


class SmtpOutageError(TransientError):
    """What a mail sender raises when its retries against a 4xx server ran out."""


@pytest.mark.parametrize(
    "error",
    [
        TransientError("later"),
        SmtpOutageError("421 try again"),
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        ConnectionResetError("reset by peer"),
        TimeoutError(),
        OSError(errno.EHOSTUNREACH, "no route to host"),
        OSError("Multiple exceptions: [Errno 111] Connect call failed"),
        AutoReconnect("connection closed"),
        NetworkTimeout("timed out"),
        NotPrimaryError("not primary"),
        ServerSelectionTimeoutError("127.0.0.1:27017: [Errno 111] Connection refused"),
        labelled("TransientTransactionError"),
        KafkaConnectionError("no broker"),
        KafkaTimeoutError(),
        NodeNotReadyError(),
        aiosmtplib.SMTPConnectError("refused"),
        aiosmtplib.SMTPConnectTimeoutError("slow"),
        aiosmtplib.SMTPServerDisconnected("gone"),
        aiosmtplib.SMTPReadTimeoutError("slow"),
        aiosmtplib.SMTPResponseException(421, "closing, try later"),
        aiosmtplib.SMTPRecipientRefused(450, "mailbox busy", "a@example.org"),
        aiosmtplib.SMTPRecipientsRefused(
            [aiosmtplib.SMTPRecipientRefused(451, "later", "a@example.org")]
        ),
        ExceptionGroup("all away", [TimeoutError(), AutoReconnect("x")]),
    ],
    ids=lambda error: type(error).__name__,
)
def test_outages_are_transient(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad payload"),
        KeyError("missing"),
        RuntimeError("bug"),
        FileNotFoundError(errno.ENOENT, "no such file"),
        PermissionError(errno.EACCES, "denied"),
        OSError(errno.ENOSPC, "disk full"),
        DuplicateKeyError("E11000"),
        WriteError("document failed validation", 121),
        labelled("SomethingElse"),
        TopicAuthorizationFailedError(),
        aiosmtplib.SMTPResponseException(550, "no such user"),
        aiosmtplib.SMTPConnectResponseError(554, "go away"),
        aiosmtplib.SMTPRecipientsRefused(
            [
                aiosmtplib.SMTPRecipientRefused(451, "later", "a@example.org"),
                aiosmtplib.SMTPRecipientRefused(550, "unknown", "b@example.org"),
            ]
        ),
        aiosmtplib.SMTPNotSupported("no SMTPUTF8"),
        ExceptionGroup("mixed", [TimeoutError(), ValueError("bad")]),
    ],
    ids=lambda error: type(error).__name__,
)
def test_faults_of_the_work_are_not_transient(error: BaseException) -> None:
    assert not is_transient(error)


def test_an_error_raised_from_an_outage_is_transient() -> None:
    error = RuntimeError("could not store the match")
    error.__cause__ = AutoReconnect("primary stepped down")
    assert is_transient(error)


def test_an_error_merely_raised_during_an_outage_is_not() -> None:
    error = ValueError("bug in the error path")
    error.__context__ = AutoReconnect("primary stepped down")
    assert not is_transient(error)


def test_mongo_unavailable_is_only_about_the_database() -> None:
    assert is_mongo_unavailable(ServerSelectionTimeoutError("no servers"))
    assert is_mongo_unavailable(labelled("TransientTransactionError"))
    assert not is_mongo_unavailable(DuplicateKeyError("E11000"))
    assert not is_mongo_unavailable(ConnectionRefusedError("smtp"))
