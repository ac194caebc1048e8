"""docker-compose.yml: valid against the Compose specification, complete for `compose up`."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
from check_jsonschema.cli.main_command import main as check_jsonschema_main
from click.testing import CliRunner

from hwcollab_schemas import topics

from .conftest import (
    COMPOSE_FILE,
    MAIL_SERVICES,
    SERVICE_PORTS,
    compose_environment,
    interpolate,
    settings_class,
)


def test_compose_file_validates_against_the_compose_specification() -> None:
    result = CliRunner().invoke(
        check_jsonschema_main,
        ["--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
    )
    assert result.exit_code == 0, result.output


def test_an_invalid_compose_file_is_rejected(tmp_path: Any) -> None:
    """The schema check above is not vacuous: a misspelt key fails it."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  web:\n    image: x\n    depends_onn: [db]\n")
    result = CliRunner().invoke(
        check_jsonschema_main, ["--builtin-schema", "vendor.compose-spec", str(broken)]
    )
    assert result.exit_code == 1
    assert "depends_onn" in result.output


def test_kafka_runs_in_kraft_mode_with_a_healthcheck(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_mongodb_is_a_replica_set_initiated_before_the_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mongodb = services["mongodb"]
    assert mongodb["image"].startswith("mongo:")
    assert mongodb["command"][:2] == ["--replSet", "rs0"]
    assert "healthcheck" in mongodb
    init = services["mongodb-init"]
    assert init["depends_on"]["mongodb"]["condition"] == "service_healthy"
    script = init["command"][-1]
    assert "rs.initiate" in script
    assert "isWritablePrimary" in script
    for name in SERVICE_PORTS:
        env = compose_environment(services[name])
        assert "replicaSet=rs0" in env["MONGODB_URL"]


def test_mailpit_is_the_smtp_sink_with_its_inbox_on_8025(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mailpit = services["mailpit"]
    assert mailpit["image"].startswith("axllent/mailpit")
    assert any(str(port).endswith("8025:8025") for port in mailpit["ports"])
    for name in MAIL_SERVICES:
        env = compose_environment(services[name])
        assert (env["SMTP_HOST"], env["SMTP_PORT"]) == ("mailpit", "1025")


def test_topic_creation_creates_every_topic_and_dead_letter_topic(compose: dict[str, Any]) -> None:
    step = compose["services"]["kafka-topics"]
    assert step["depends_on"]["kafka"]["condition"] == "service_healthy"
    script = interpolate(step["entrypoint"][-1])
    assert "kafka-topics.sh" in script
    assert "--if-not-exists" in script
    assert '--partitions "${KAFKA_TOPIC_PARTITIONS}"' in script
    assert interpolate(step["environment"]["KAFKA_TOPIC_PARTITIONS"]) == "6"
    listed = set(re.findall(r"hwcollab\.[a-z.0-9]+[a-z0-9]", script.split("; do")[0]))
    expected = {*topics.ALL_TOPICS, *(topics.dlq_topic(t) for t in topics.ALL_TOPICS)}
    assert listed == expected


def test_services_wait_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    for name in SERVICE_PORTS:
        depends_on = compose["services"][name]["depends_on"]
        assert depends_on["kafka"]["condition"] == "service_healthy"
        assert depends_on["kafka-topics"]["condition"] == "service_completed_successfully"
        assert depends_on["mongodb-init"]["condition"] == "service_completed_successfully"
        assert depends_on["mailpit"]["condition"] == "service_healthy"


def test_services_are_built_from_the_one_dockerfile(compose: dict[str, Any]) -> None:
    for name, port in SERVICE_PORTS.items():
        service = compose["services"][name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["build"]["args"] == {"SERVICE": name, "PORT": str(port)}
        assert service["read_only"] is True
        # Longer than uvicorn's graceful shutdown in the image (20 s).
        assert int(service["stop_grace_period"].rstrip("s")) > 20


def test_notifier_runs_two_replicas_without_a_fixed_host_port(compose: dict[str, Any]) -> None:
    notifier = compose["services"]["notifier"]
    assert notifier["deploy"]["replicas"] == 2
    partitions = interpolate(
        compose["services"]["kafka-topics"]["environment"]["KAFKA_TOPIC_PARTITIONS"]
    )
    assert notifier["deploy"]["replicas"] <= int(partitions), "replicas beyond partitions sit idle"
    assert "container_name" not in notifier
    for port in notifier["ports"]:
        host_part = str(port).rsplit(":", 1)[0]
        first, _, last = host_part.rsplit(":", 1)[-1].partition("-")
        replicas = notifier["deploy"]["replicas"]
        assert last, f"{port}: a single host port cannot serve {replicas} replicas"
        assert int(last) - int(first) + 1 >= notifier["deploy"]["replicas"]


def test_compose_runs_with_dev_settings_only(compose: dict[str, Any]) -> None:
    """The secrets in the compose file are the services' own public dev defaults, which the
    services refuse with HWCOLLAB_ENV=prod: copying this file to production cannot work."""
    from hwcollab_common import settings as common

    employer_settings = settings_class("employer")
    dev_values = {
        "LINK_SIGNING_KEY": common.DEV_LINK_SIGNING_KEY,
        "ADMIN_TOKEN": common.DEV_ADMIN_TOKEN,
        "EMPLOYER_SESSION_KEY": (
            employer_settings.model_fields["employer_session_key"].default.get_secret_value()
        ),
    }
    for name in SERVICE_PORTS:
        env = compose_environment(compose["services"][name])
        assert env["HWCOLLAB_ENV"] == "dev"
        for variable, dev_value in dev_values.items():
            if variable in env:
                assert env[variable] == dev_value, variable
    assert compose_environment(compose["services"]["employer"])["EMPLOYER_APPROVAL"] == "auto"


def test_compose_sends_unsigned_unless_given_a_key(compose: dict[str, Any]) -> None:
    """No DKIM key is committed: the notifier signs only with one passed from the shell or .env."""
    notifier = compose_environment(compose["services"]["notifier"])
    assert notifier["DKIM_PRIVATE_KEY"] == ""
    assert "${DKIM_PRIVATE_KEY:-}" in COMPOSE_FILE.read_text()


def test_embedded_scripts_parse(compose: dict[str, Any], tmp_path: Any) -> None:
    """The topic-creation shell script and the replica-set JavaScript are at least well formed."""
    script = interpolate(compose["services"]["kafka-topics"]["entrypoint"][-1])
    checked = subprocess.run(["/bin/sh", "-n", "-c", script], capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the mongosh script was not syntax-checked")
    init_js = tmp_path / "init.js"
    init_js.write_text(compose["services"]["mongodb-init"]["command"][-1])
    checked = subprocess.run([node, "--check", str(init_js)], capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr
