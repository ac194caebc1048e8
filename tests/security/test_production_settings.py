"""``HWCOLLAB_ENV=prod`` refuses to start with development secrets: every service, run as
operators run it (uvicorn with the app factory), exits non-zero with a message that names each
setting to fix, and starts no server; each secret is named on its own."""

from __future__ import annotations

import os
import subprocess

import pytest
from pydantic import ValidationError

from hwcollab_cli import components
from hwcollab_common.dkim_keys import generate_signing_key, private_key_pem
from hwcollab_employer.settings import Settings as EmployerSettings
from hwcollab_notifier.settings import Settings as NotifierSettings
from hwcollab_subscriber.settings import Settings as SubscriberSettings
from hwcollab_testing.processes import free_port

SERVICES = ("subscriber", "employer", "notifier")
# Every secret a service needs in production, as its error names it.
SECRETS: dict[str, tuple[str, ...]] = {
    "subscriber": ("LINK_SIGNING_KEY", "ADMIN_TOKEN"),
    "employer": ("LINK_SIGNING_KEY", "ADMIN_TOKEN", "EMPLOYER_SESSION_KEY", "REACH_TOKEN"),
    "notifier": (
        "LINK_SIGNING_KEY",
        "ADMIN_TOKEN",
        "POSTAL_ADDRESS",
        "REACH_TOKEN",
        "DKIM_PRIVATE_KEY",
    ),
}
GOOD = {
    "LINK_SIGNING_KEY": "p" * 40,
    "ADMIN_TOKEN": "q" * 40,
    "EMPLOYER_SESSION_KEY": "r" * 40,
    "REACH_TOKEN": "s" * 40,
    "POSTAL_ADDRESS": "HWcollab, 1 Real Street, Worcester, MA 01608",
    "DKIM_PRIVATE_KEY": private_key_pem(generate_signing_key("ed25519")).decode(),
}
# Settings that are missing rather than weak when development runs without them.
ABSENT_IN_DEVELOPMENT = ("POSTAL_ADDRESS", "DKIM_PRIVATE_KEY")
TIMEOUT = 90


def environment(**settings: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k.upper() not in GOOD and k.upper() != "HWCOLLAB_ENV"
    }
    # Unreachable on purpose: a refusal must come before any connection is tried.
    env |= {
        "HWCOLLAB_ENV": "prod",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "MONGODB_URL": "mongodb://127.0.0.1:9/?directConnection=true&serverSelectionTimeoutMS=500",
    }
    return env | settings


@pytest.mark.slow
def test_every_service_process_refuses_development_secrets() -> None:
    """The three processes run side by side (each takes seconds to import on a busy machine)."""
    processes = {
        service: subprocess.Popen(
            components.service_argv(name=service, port=free_port()),
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for service in SERVICES
    }
    for service, process in processes.items():
        try:
            output, _ = process.communicate(timeout=TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode != 0, (service, output[-2000:])
        assert "refusing to start in production" in output, (service, output[-2000:])
        for setting in SECRETS[service]:
            assert setting in output, (service, setting, output[-2000:])
        assert "Uvicorn running" not in output, service


SETTINGS = {
    "subscriber": SubscriberSettings,
    "employer": EmployerSettings,
    "notifier": NotifierSettings,
}


@pytest.mark.parametrize("service", SERVICES)
def test_each_development_secret_is_named_on_its_own(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All secrets but one are real: the refusal names exactly the one left (a short secret
    counts as a development one too); with all of them real, the app is created."""
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    for setting in SECRETS[service]:
        for name, value in GOOD.items():
            monkeypatch.setenv(name, value)
        if setting in ABSENT_IN_DEVELOPMENT:
            monkeypatch.delenv(setting)
        else:
            monkeypatch.setenv(setting, "short")
        with pytest.raises(ValidationError) as refused:
            SETTINGS[service]()
        message = str(refused.value)
        assert f"{setting} must" in message, (service, setting, message)
        others = [s for s in SECRETS[service] if s != setting]
        assert not any(f"{other} must" in message for other in others), (service, setting)
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    assert SETTINGS[service]().hwcollab_env == "prod"


WEBHOOK_SECRETS = {
    "SES_SNS_TOPIC_ARNS": "arn:aws:sns:us-east-1:123456789012:hwcollab-ses",
    "POSTMARK_WEBHOOK_PASSWORD": "w" * 40,
    "BOUNCE_WEBHOOK_TOKEN": "v" * 40,
}


def test_an_enabled_webhook_wants_its_own_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the provider webhooks on, each of their secrets left out (or a development or short
    one) is named on its own; off (the default), none is needed."""
    for name, value in (environment() | GOOD).items():
        monkeypatch.setenv(name, value)
    for name in WEBHOOK_SECRETS:
        monkeypatch.delenv(name, raising=False)
    assert NotifierSettings().bounce_webhooks == frozenset()
    monkeypatch.setenv("BOUNCE_WEBHOOKS", "ses,postmark,generic")
    for setting in WEBHOOK_SECRETS:
        for name, value in WEBHOOK_SECRETS.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv(setting)
        with pytest.raises(ValidationError) as refused:
            NotifierSettings()
        message = str(refused.value)
        assert f"{setting} must" in message, (setting, message)
        assert not any(f"{other} must" in message for other in WEBHOOK_SECRETS if other != setting)
    for name, value in WEBHOOK_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BOUNCE_WEBHOOK_TOKEN", "short")
    with pytest.raises(ValidationError, match="BOUNCE_WEBHOOK_TOKEN must"):
        NotifierSettings()
    monkeypatch.setenv("BOUNCE_WEBHOOK_TOKEN", WEBHOOK_SECRETS["BOUNCE_WEBHOOK_TOKEN"])
    assert NotifierSettings().bounce_webhooks == {"ses", "postmark", "generic"}
