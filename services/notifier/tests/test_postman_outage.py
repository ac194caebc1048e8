"""The postman against real MongoDB while the SMTP server is away: the claim goes back uncounted,
the pair waits, and it is sent once when the server returns, however long the outage lasted."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from hwcollab_common.clock import FixedClock
from hwcollab_common.errors import is_transient
from hwcollab_common.runtime import ServiceRuntime
from hwcollab_notifier.domain import ledger_row, pair_key
from hwcollab_notifier.mail import OutgoingEmail, SendOutcome, SmtpUnavailableError
from hwcollab_notifier.postman import Outgoing, Postman
from hwcollab_notifier.repository import NotifierRepository
from hwcollab_notifier.settings import Settings

pytestmark = pytest.mark.integration

MESSAGE_ID = "<immediate.outage@hwcollab.example>"


class AwayThenBack:
    """A mailer whose server is unreachable for the first ``away`` sends."""

    def __init__(self, away: int) -> None:
        self.away = away
        self.sent: list[OutgoingEmail] = []

    async def send(self, email: OutgoingEmail) -> SendOutcome:
        if self.away > 0:
            self.away -= 1
            raise SmtpUnavailableError("cannot connect to 127.0.0.1:25: connection refused")
        self.sent.append(email)
        return SendOutcome("sent", "250 OK", 250)


@pytest.fixture
async def runtime(mongo_url: str) -> AsyncIterator[ServiceRuntime]:
    settings = Settings(
        mongodb_url=mongo_url,
        mongodb_database=f"test_postman_outage_{uuid.uuid4().hex[:12]}",
        delivery_max_attempts=2,
    )
    runtime = ServiceRuntime(settings, name="notifier", clock=FixedClock(datetime.now(UTC)))
    try:
        yield runtime
    finally:
        await runtime.mongo.drop_database(settings.mongodb_database)
        await runtime.mongo.close()


async def test_an_outage_longer_than_every_budget_delays_the_email_but_never_fails_it(
    runtime: ServiceRuntime,
) -> None:
    repo = NotifierRepository(runtime.db)
    await repo.ensure_indexes()
    now = runtime.clock.now()
    await repo.add_pairs(
        [ledger_row(subscriber_id="s1", opening_id="o1", channel="immediate", now=now)]
    )
    key = pair_key("s1", "o1")
    mailer = AwayThenBack(away=5)  # more outages than DELIVERY_MAX_ATTEMPTS (2)
    postman = Postman(
        clock=runtime.clock,
        store=repo,
        mailer=mailer,
        lease=timedelta(seconds=300),
        max_attempts=2,
    )
    email = OutgoingEmail(
        message_id=MESSAGE_ID,
        to="s1@example.org",
        subject="Care Manager",
        kind="immediate",
        opening_ids=("o1",),
        subscriber_id="s1",
        data=b"Subject: Care Manager\r\n\r\nBody\r\n",
    )

    for _ in range(5):
        with pytest.raises(SmtpUnavailableError) as raised:
            await postman.send(Outgoing(email, pair_keys=(key,)))
        assert is_transient(raised.value)
        message = await repo.message(MESSAGE_ID)
        assert message is not None
        assert (message["status"], message["attempts"]) == ("retry", 0)
        assert (await repo.pair(key) or {}).get("status") == "pending"

    assert await postman.send(Outgoing(email, pair_keys=(key,))) == "sent"
    assert await postman.send(Outgoing(email, pair_keys=(key,))) == "skipped"
    assert [e.message_id for e in mailer.sent] == [MESSAGE_ID]
    assert (await repo.pair(key) or {}).get("status") == "sent"
    message = await repo.message(MESSAGE_ID)
    assert message is not None
    assert message["status"] == "sent"
    assert len(message["claims"]) == 6
