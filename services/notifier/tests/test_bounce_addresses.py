"""VERP bounce addresses: each names its message and subscriber under a signature; a forged,
tampered or garbled one names nothing."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwcollab_common.clock import FixedClock
from hwcollab_notifier.mail.bounces import (
    MAX_LOCAL_PART,
    BounceAddresses,
    BounceToken,
    message_hash,
)
from hwcollab_notifier.mail.composer import EmailComposer
from hwcollab_notifier.mail.views import Recipient
from hwcollab_notifier.settings import Settings
from hwcollab_notifier.wiring import bounce_addresses_for

KEY = "k" * 40
DOMAIN = "bounces.hwcollab.example"
ADDRESSES = BounceAddresses(domain=DOMAIN, key=KEY)
LOCAL_PART = re.compile(r"^bounces\+[a-z0-9]+$")

subscriber_ids = st.one_of(
    st.uuids().map(lambda u: u.hex),
    st.text(
        st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=18
    ).filter(lambda s: len(s.encode()) <= 18),
)
message_ids = st.text(max_size=120).map(lambda s: f"<immediate.{s}@hwcollab.example>")


@settings(max_examples=300)
@given(message_id=message_ids, subscriber_id=subscriber_ids)
def test_an_address_names_its_message_and_subscriber(message_id: str, subscriber_id: str) -> None:
    address = ADDRESSES.address_for(message_id=message_id, subscriber_id=subscriber_id)
    assert address is not None
    local, _, domain = address.partition("@")
    assert domain == DOMAIN
    assert len(local) <= MAX_LOCAL_PART
    assert LOCAL_PART.match(local)
    expected = BounceToken(message_hash(message_id), subscriber_id)
    assert ADDRESSES.parse(address) == expected
    # Mail systems on the way may change the case of a local part, or add angle brackets.
    assert ADDRESSES.parse(f"<{address.upper()}>") == expected
    assert ADDRESSES.parse(local) == expected


@settings(max_examples=300)
@given(
    message_id=message_ids,
    subscriber_id=subscriber_ids,
    position=st.integers(min_value=0),
    replacement=st.sampled_from("abcdefghijklmnopqrstuvwxyz234567"),
)
def test_a_changed_character_is_refused(
    message_id: str, subscriber_id: str, position: int, replacement: str
) -> None:
    address = ADDRESSES.address_for(message_id=message_id, subscriber_id=subscriber_id)
    assert address is not None
    local, _, domain = address.partition("@")
    token = local.removeprefix("bounces+")
    index = position % len(token)
    if token[index] == replacement:
        return
    tampered = f"bounces+{token[:index]}{replacement}{token[index + 1 :]}@{domain}"
    assert ADDRESSES.parse(tampered) is None


@given(garbage=st.text(max_size=100))
def test_garbage_names_nothing(garbage: str) -> None:
    assert ADDRESSES.parse(garbage) is None
    assert ADDRESSES.parse(f"bounces+{garbage}@{DOMAIN}") is None


def test_other_keys_domains_and_truncations_are_refused() -> None:
    subscriber_id = uuid.uuid4().hex
    address = ADDRESSES.address_for(message_id="<m@x>", subscriber_id=subscriber_id)
    assert address is not None
    other_key = BounceAddresses(domain=DOMAIN, key="o" * 40)
    assert other_key.parse(address) is None
    assert ADDRESSES.parse(address.replace(DOMAIN, "hwcollab.example")) is None
    local = address.partition("@")[0]
    assert ADDRESSES.parse(local[:-8] + "@" + DOMAIN) is None
    assert ADDRESSES.parse("opportunities@" + DOMAIN) is None


def test_addresses_signed_with_a_retired_key_still_read() -> None:
    old = BounceAddresses(domain=DOMAIN, key="o" * 40)
    address = old.address_for(message_id="<m@x>", subscriber_id="sub-1")
    assert address is not None
    rotated = BounceAddresses(domain=DOMAIN, key=KEY, fallback_keys=("o" * 40,))
    assert rotated.parse(address) == BounceToken(message_hash("<m@x>"), "sub-1")


def test_an_id_too_long_for_a_local_part_gets_no_address() -> None:
    assert ADDRESSES.address_for(message_id="<m@x>", subscriber_id="s" * 19) is None


def test_the_composer_gives_each_email_its_own_bounce_address() -> None:
    composer = EmailComposer(
        mail_from="HWcollab Opportunities <opportunities@hwcollab.example>",
        postal_address="100 Main Street, Worcester, MA 01608",
        subscriber_public_url="http://subs.example:8001",
        employer_public_url="http://jobs.example:8002",
        clock=FixedClock(datetime(2026, 11, 24, tzinfo=UTC)),
        bounces=ADDRESSES,
    )
    subscriber_id = uuid.uuid4().hex
    sent = composer.confirmation(
        request_id="confirmation-request",
        subscriber_id=subscriber_id,
        email="pat@example.org",
        first_name=None,
        confirm_url="http://subs.example:8001/confirm?token=C",
    )
    bulletin = composer.bulletin(
        Recipient(
            subscriber_id=subscriber_id,
            email="pat@example.org",
            first_name=None,
            manage_url="http://m",
            unsubscribe_url="http://u",
            pause_url="http://p",
        ),
        bulletin_id="b-1",
        subject="News",
        body_markdown="Hi",
    )
    assert sent.envelope_sender != bulletin.envelope_sender
    assert ADDRESSES.parse(sent.envelope_sender) == BounceToken(
        message_hash(sent.message_id), subscriber_id
    )
    assert b"bounces+" not in sent.data


def test_bounce_domain_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOUNCE_DOMAIN", "")
    assert bounce_addresses_for(Settings()) is None
    monkeypatch.setenv("BOUNCE_DOMAIN", DOMAIN)
    addresses = bounce_addresses_for(Settings(link_signing_key=KEY))
    assert addresses is not None
    assert addresses.domain == DOMAIN
    monkeypatch.setenv("BOUNCE_DOMAIN", "not a domain")
    with pytest.raises(ValueError, match="bounce_domain"):
        Settings()
