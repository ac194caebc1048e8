"""DKIM signatures, verified by dkimpy (the reference implementation) against the public key."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from dkim.canonicalization import Relaxed
from hypothesis import given, settings
from hypothesis import strategies as st

from hwcollab_common.clock import FixedClock
from hwcollab_common.dkim_keys import (
    DkimKeyError,
    SigningKey,
    load_signing_key,
    public_key_record,
)
from hwcollab_notifier.mail.composer import EmailComposer, OutgoingEmail
from hwcollab_notifier.mail.sender import _wire_format
from hwcollab_notifier.mail.signing import DkimSigner, canonical_body, canonical_header

from .mail_examples import opening, recipient

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
# dkimpy refuses a t= more than 10 hours ahead of the real clock: sign at the real time.
SIGNED_AT = datetime.now(UTC).replace(microsecond=0)
DOMAIN = "hwcollab.example"
SELECTOR = "hw2026a"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="module", params=["rsa", "ed25519"])
def key(
    request: pytest.FixtureRequest,
    rsa_key: rsa.RSAPrivateKey,
    ed25519_key: ed25519.Ed25519PrivateKey,
) -> SigningKey:
    return rsa_key if request.param == "rsa" else ed25519_key


def composer_with(key: SigningKey) -> EmailComposer:
    return EmailComposer(
        mail_from="HWcollab Opportunities <opportunities@hwcollab.example>",
        postal_address="100 Main Street, Worcester, MA 01608",
        subscriber_public_url="http://subs.example:8001",
        employer_public_url="http://jobs.example:8002",
        clock=FixedClock(NOW),
        signer=DkimSigner(domain=DOMAIN, selector=SELECTOR, key=key, clock=FixedClock(SIGNED_AT)),
    )


def verifies(message: bytes, key: SigningKey) -> bool:
    """dkimpy's verdict, with DNS answered from the key's own TXT record."""
    record = public_key_record(key).encode()

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode()
        return record

    return bool(dkim.verify(message, dnsfunc=dns))


def signature_tags(message: bytes) -> dict[str, str]:
    head = re.sub(r"\r\n[ \t]", " ", message.partition(b"\r\n\r\n")[0].decode())
    (field,) = re.findall(r"^DKIM-Signature:(.*)$", head, re.MULTILINE)
    tags = (part.split("=", 1) for part in field.split(";"))
    return {name.strip(): re.sub(r"\s+", "", value) for name, value in tags}


def every_kind(composer: EmailComposer) -> dict[str, OutgoingEmail]:
    openings = [opening(n) for n in range(1, 31)]
    return {
        "immediate": composer.immediate(recipient(), opening()),
        "digest": composer.digest(
            recipient(),
            openings,
            total=40,
            see_all_url="http://subs.example:8001/openings?token=T",
            period="weekly",
            digest_key="2026-W48",
        ),
        "welcome": composer.welcome(
            recipient(), openings[:3], total=3, see_all_url="http://subs.example:8001/openings"
        ),
        "bulletin": composer.bulletin(
            recipient(), bulletin_id="b-1", subject="Career news", body_markdown="# News\n\nHi."
        ),
        "confirmation": composer.confirmation(
            request_id="confirmation-request",
            subscriber_id="sub-1",
            email="pat@example.org",
            first_name="Pat",
            confirm_url="http://subs.example:8001/confirm?token=C",
        ),
        "manage_link": composer.manage_link(
            request_id="manage_link-request",
            subscriber_id="sub-1",
            email="pat@example.org",
            first_name="Pat",
            manage_url="http://subs.example:8001/preferences?token=M",
            already_subscribed=True,
        ),
        "employer_password_reset": composer.employer_account(
            request_id="r-1",
            employer_id="e-1",
            email="hr@cmcp.example",
            organization_name="Central Mass Care Partners",
            kind="password_reset",
            url="http://jobs.example:8002/reset-password?token=R",
        ),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "immediate",
        "digest",
        "welcome",
        "bulletin",
        "confirmation",
        "manage_link",
        "employer_password_reset",
    ],
)
def test_every_kind_of_email_is_signed_and_verifies(kind: str, key: SigningKey) -> None:
    sent = every_kind(composer_with(key))[kind]
    assert sent.data.startswith(b"DKIM-Signature: v=1; ")
    assert verifies(sent.data, key)
    tags = signature_tags(sent.data)
    expected_algorithm = "rsa-sha256" if isinstance(key, rsa.RSAPrivateKey) else "ed25519-sha256"
    assert (tags["a"], tags["c"], tags["d"], tags["s"]) == (
        expected_algorithm,
        "relaxed/relaxed",
        DOMAIN,
        SELECTOR,
    )
    assert tags["t"] == str(int(SIGNED_AT.timestamp()))
    listed = tags["h"].split(":")
    assert listed[:7] == ["from", "from", "to", "to", "subject", "subject", "date"]
    assert {"message-id", "mime-version", "content-type"} <= set(listed)
    bulk = {"list-id", "list-unsubscribe", "list-unsubscribe-post"}
    if kind in {"confirmation", "manage_link", "employer_password_reset"}:
        assert not bulk & set(listed)
    else:
        assert bulk <= set(listed)


def test_non_ascii_and_long_folded_headers_verify(key: SigningKey) -> None:
    composer = composer_with(key)
    long_title = "Coordinatrice de soins — équipe mobile de santé communautaire " * 4
    sent = composer.immediate(
        recipient(first_name="Zoë", email="zoë@exämple.org"),
        opening(title=long_title, organization_name="Clínica Señora Muñoz 医療センター"),
    )
    head = sent.data.partition(b"\r\n\r\n")[0]
    assert b"=?utf-8?b?" in head
    assert head.count(b"\r\nSubject:") == 1
    assert len(re.findall(rb"\r\n ", head.split(b"\r\nSubject:")[1].split(b"\r\nDate:")[0])) >= 3
    assert verifies(sent.data, key)


def test_signature_survives_the_smtp_wire_format(key: SigningKey) -> None:
    """What an SMTP server stores after DATA: the wire bytes with dot-stuffing undone."""
    sent = composer_with(key).bulletin(
        recipient(), bulletin_id="b-2", subject="Dots", body_markdown=".leading dot\n\n..two\n"
    )
    wire = _wire_format(sent.data)
    assert b"\r\n.." in wire
    received = re.sub(rb"(?m)^\.\.", b".", wire.removesuffix(b".\r\n"))
    assert verifies(received, key)


def test_changes_on_the_way_break_the_signature(key: SigningKey) -> None:
    sent = composer_with(key).immediate(recipient(), opening())
    data = sent.data
    assert verifies(data, key)
    changes: dict[str, Callable[[bytes], bytes]] = {
        "subject": lambda d: d.replace(b"New opening:", b"New 0pening:", 1),
        "body": lambda d: d.replace(b"Nurse Care Manager", b"Nurse Care Managers", 1),
        "added From": lambda d: d.replace(b"\r\nTo:", b"\r\nFrom: evil@example.org\r\nTo:", 1),
        "added Subject": lambda d: d.replace(b"\r\nDate:", b"\r\nSubject: Pay now\r\nDate:", 1),
        "unsubscribe link": lambda d: d.replace(b"token=UNSUB", b"token=OTHER", 1),
    }
    for what, change in changes.items():
        changed = change(data)
        assert changed != data, what
        assert not verifies(changed, key), what


def test_whitespace_a_relay_may_rewrite_keeps_the_signature(key: SigningKey) -> None:
    """Relaxed canonicalization: refolding a header and trailing spaces do not matter."""
    data = composer_with(key).immediate(recipient(), opening()).data
    refolded = data.replace(b"\r\nTo: ", b"\r\nTo:\r\n\t  ", 1)
    padded = data.removesuffix(b"\r\n") + b"  \r\n\r\n\r\n"
    assert verifies(refolded, key)
    assert verifies(padded, key)


_HYPOTHESIS_KEY = ed25519.Ed25519PrivateKey.generate()


@settings(max_examples=60, deadline=None)
@given(
    subject=st.text(max_size=200),
    first_name=st.text(max_size=60),
    body=st.text(max_size=400),
)
def test_any_bulletin_verifies(subject: str, first_name: str, body: str) -> None:
    key = _HYPOTHESIS_KEY
    sent = composer_with(key).bulletin(
        recipient(first_name=first_name), bulletin_id="b", subject=subject, body_markdown=body
    )
    assert verifies(sent.data, key)


@settings(max_examples=500)
@given(st.lists(st.sampled_from([b"a", b"=", b".", b" ", b"\t", b"\r\n", b"\r\n "])).map(b"".join))
def test_body_canonicalization_equals_dkimpys(body: bytes) -> None:
    assert canonical_body(body) == Relaxed.canonicalize_body(body)


@settings(max_examples=500)
@given(
    name=st.sampled_from([b"Subject", b"TO", b"list-ID", b"X-Kind"]),
    before_colon=st.sampled_from([b"", b" ", b"\t "]),
    value=st.lists(
        st.sampled_from([b"a", b"=?utf-8?b?w5w=?=", b" ", b"\t", b"\r\n ", b"\r\n\t", b";"])
    ).map(b"".join),
)
def test_header_canonicalization_equals_dkimpys(
    name: bytes, before_colon: bytes, value: bytes
) -> None:
    ((expected_name, expected_value),) = Relaxed.canonicalize_headers(
        [(name + before_colon, value)]
    )
    assert canonical_header(name + before_colon + b":" + value) == (
        expected_name + b":" + expected_value
    )


def test_canonical_body_follows_rfc_6376() -> None:
    # The example of RFC 6376 section 3.4.6.
    assert canonical_body(b" C \r\nD \t E\r\n\r\n\r\n") == b" C\r\nD E\r\n"
    assert canonical_body(b"\r\n\r\n") == b""
    assert canonical_body(b"") == b""
    assert canonical_body(b"a") == b"a\r\n"


def test_the_dns_record_names_the_algorithm_and_public_key(
    rsa_key: rsa.RSAPrivateKey, ed25519_key: ed25519.Ed25519PrivateKey
) -> None:
    assert re.fullmatch(r"v=DKIM1; k=rsa; p=MIIBIjAN[A-Za-z0-9+/]+=*", public_key_record(rsa_key))
    assert re.fullmatch(r"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=", public_key_record(ed25519_key))


def pem(key: object) -> bytes:
    assert isinstance(
        key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    )
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_keys_load_from_pem(
    rsa_key: rsa.RSAPrivateKey, ed25519_key: ed25519.Ed25519PrivateKey
) -> None:
    assert isinstance(load_signing_key(pem(rsa_key)), rsa.RSAPrivateKey)
    assert isinstance(load_signing_key(pem(ed25519_key)), ed25519.Ed25519PrivateKey)
    traditional = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert isinstance(load_signing_key(traditional), rsa.RSAPrivateKey)


def test_weak_or_unsuitable_keys_are_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key refused
    with pytest.raises(DkimKeyError, match="1024 bits"):
        load_signing_key(pem(weak))
    with pytest.raises(DkimKeyError, match=r"RSA \(2048\+ bits\) or Ed25519"):
        load_signing_key(pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(DkimKeyError, match="not an unencrypted PEM"):
        load_signing_key(b"-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n")
    encrypted = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(DkimKeyError, match="not an unencrypted PEM"):
        load_signing_key(encrypted)


def test_signer_refuses_bad_names(ed25519_key: ed25519.Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="selector"):
        DkimSigner(domain=DOMAIN, selector="bad selector", key=ed25519_key)
    with pytest.raises(ValueError, match="domain"):
        DkimSigner(domain="localhost", selector=SELECTOR, key=ed25519_key)
