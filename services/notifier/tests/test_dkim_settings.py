"""DKIM settings: a usable key or a clear refusal at startup; production never sends unsigned."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TypedDict

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from pydantic import ValidationError

from hwcollab_common.clock import FixedClock
from hwcollab_common.dkim_keys import public_key_record
from hwcollab_notifier.settings import Settings
from hwcollab_notifier.wiring import composer_for, dkim_signer_for

SECRET = "x" * 40


class ProdSettings(TypedDict):
    """What production requires besides DKIM, as keyword arguments of ``Settings``."""

    hwcollab_env: str
    link_signing_key: str
    admin_token: str
    reach_token: str
    postal_address: str


PROD: ProdSettings = {
    "hwcollab_env": "prod",
    "link_signing_key": SECRET,
    "admin_token": SECRET,
    "reach_token": SECRET,
    "postal_address": "HWcollab, 1 Real Road, Albany, NY 12207",
}


def pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


ED25519_PEM = pem(ed25519.Ed25519PrivateKey.generate())


@pytest.fixture(autouse=True)
def no_dkim_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("DKIM_"):
            monkeypatch.delenv(name)


def test_signing_is_off_in_development_without_a_key() -> None:
    settings = Settings()
    assert settings.dkim_key() is None
    assert dkim_signer_for(settings, runtime=None) is None  # type: ignore[arg-type]


def test_a_key_from_the_environment_signs_for_the_sender_domain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DKIM_PRIVATE_KEY", ED25519_PEM)
    monkeypatch.setenv("DKIM_SELECTOR", "hw2026b")
    monkeypatch.setenv("MAIL_FROM", "Alerts <alerts@Mail.HWcollab.example>")
    settings = Settings()
    assert isinstance(settings.dkim_key(), ed25519.Ed25519PrivateKey)
    assert settings.dkim_signing_domain == "mail.hwcollab.example"

    runtime = SimpleNamespace(clock=FixedClock(datetime(2026, 11, 24, tzinfo=UTC)))
    signer = dkim_signer_for(settings, runtime)  # type: ignore[arg-type]
    assert signer is not None
    assert signer.dns_name == "hw2026b._domainkey.mail.hwcollab.example"


def test_a_key_in_one_line_with_escaped_line_breaks_is_accepted() -> None:
    one_line = ED25519_PEM.strip().replace("\n", "\\n")
    assert "\n" not in one_line
    settings = Settings(dkim_private_key=one_line)
    assert isinstance(settings.dkim_key(), ed25519.Ed25519PrivateKey)


def test_a_key_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "dkim.pem"
    path.write_text(ED25519_PEM)
    assert isinstance(Settings(dkim_private_key_file=path).dkim_key(), ed25519.Ed25519PrivateKey)
    with pytest.raises(ValidationError, match="cannot be read"):
        Settings(dkim_private_key_file=tmp_path / "missing.pem")
    with pytest.raises(ValidationError, match="not both"):
        Settings(dkim_private_key_file=path, dkim_private_key=ED25519_PEM)


def test_empty_variables_leave_signing_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DKIM_PRIVATE_KEY", "")
    monkeypatch.setenv("DKIM_PRIVATE_KEY_FILE", "")
    monkeypatch.setenv("DKIM_DOMAIN", "")
    settings = Settings()
    assert settings.dkim_key() is None
    assert settings.dkim_signing_domain == "hwcollab.example"


def test_weak_keys_stop_the_service_at_startup() -> None:
    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    weak = pem(weak_key)
    with pytest.raises(ValidationError, match="1024 bits"):
        Settings(dkim_private_key=weak)
    with pytest.raises(ValidationError, match="not an unencrypted PEM"):
        Settings(dkim_private_key="not a key")


def test_production_refuses_to_send_unsigned_mail() -> None:
    with pytest.raises(ValidationError, match="DKIM_PRIVATE_KEY"):
        Settings(**PROD)
    Settings(**PROD, dkim_private_key=ED25519_PEM)


def test_production_refuses_a_signing_domain_dmarc_would_not_align() -> None:
    with pytest.raises(ValidationError, match=r"DKIM_DOMAIN other\.example"):
        Settings(**PROD, dkim_private_key=ED25519_PEM, dkim_domain="other.example")
    parent = Settings(
        **PROD,
        dkim_private_key=ED25519_PEM,
        mail_from="Alerts <alerts@mail.hwcollab.example>",
        dkim_domain="hwcollab.example",
    )
    assert parent.dkim_signing_domain == "hwcollab.example"


def test_the_wired_composer_signs_with_the_configured_key(monkeypatch: pytest.MonkeyPatch) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    monkeypatch.setenv("DKIM_PRIVATE_KEY", pem(key))
    monkeypatch.setenv("DKIM_SELECTOR", "hw2026b")
    runtime = SimpleNamespace(clock=FixedClock(datetime.now(UTC)))
    composer = composer_for(Settings(), runtime)  # type: ignore[arg-type]
    sent = composer.confirmation(
        request_id="confirmation-request",
        subscriber_id="sub-1",
        email="pat@example.org",
        first_name=None,
        confirm_url="http://subs.example:8001/confirm?token=C",
    )
    record = public_key_record(key).encode()

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"hw2026b._domainkey.hwcollab.example."
        return record

    assert dkim.verify(sent.data, dnsfunc=dns)
