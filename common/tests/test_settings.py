from __future__ import annotations

import pytest
from pydantic import ValidationError

from hwcollab_common.settings import ServiceSettings

STRONG = "k" * 40


def test_dev_defaults_work_in_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HWCOLLAB_ENV", raising=False)
    settings = ServiceSettings()
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert "directConnection=true" in settings.mongodb_url.get_secret_value()


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("SUBSCRIBER_PUBLIC_URL", "https://jobs.hwcollab.org/")
    monkeypatch.setenv("LINK_SIGNING_KEY_FALLBACKS", "old-one, older-one")
    settings = ServiceSettings()
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.subscriber_public_url == "https://jobs.hwcollab.org"
    assert settings.fallback_keys == ("old-one", "older-one")


def test_production_refuses_dev_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWCOLLAB_ENV", "prod")
    with pytest.raises(ValidationError) as caught:
        ServiceSettings()
    message = str(caught.value)
    assert "LINK_SIGNING_KEY" in message
    assert "ADMIN_TOKEN" in message


def test_production_refuses_short_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWCOLLAB_ENV", "prod")
    monkeypatch.setenv("LINK_SIGNING_KEY", "short")
    monkeypatch.setenv("ADMIN_TOKEN", STRONG)
    with pytest.raises(ValidationError, match="LINK_SIGNING_KEY"):
        ServiceSettings()


def test_production_starts_with_real_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWCOLLAB_ENV", "prod")
    monkeypatch.setenv("LINK_SIGNING_KEY", STRONG)
    monkeypatch.setenv("ADMIN_TOKEN", STRONG + "x")
    assert ServiceSettings().hwcollab_env == "prod"
