"""Facts that several files must agree on: ports, variable names and values, health paths,
image names, topics and consumer groups, and the secrets the operator guide tells to create."""

from __future__ import annotations

import asyncio
import importlib
import re
import secrets
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hwcollab_cli import components
from hwcollab_schemas import topics

from .conftest import (
    COMPOSE_FILE,
    DEPLOY,
    DOCKERFILE,
    KUSTOMIZATIONS,
    SERVICE_PORTS,
    Rendered,
    compose_environment,
    container_env_names,
    deployments,
    render,
    service_container,
    settings_class,
    settings_env_names,
)
from .dockerfile import parse

SERVICES = sorted(SERVICE_PORTS)
README = DEPLOY / "README.md"
EXPECTED_TOPICS = {*topics.ALL_TOPICS, *(topics.dlq_topic(t) for t in topics.ALL_TOPICS)}
# topic -> retention.ms, as hwcollab_schemas.topics has them (what the embedded stack applies)
EXPECTED_RETENTION = {name: str(topics.retention_ms(name)) for name in EXPECTED_TOPICS}
_ENTRY = re.compile(r"(hwcollab\.[a-z0-9.]+[a-z0-9]):(\d+)")


# Ports a service listens on besides HTTP: the notifier's bounce listener (BOUNCE_LISTEN_PORT).
SMTP_PORTS = {"notifier": ("2525",)}


def uvicorn_variable(name: str) -> bool:
    """UVICORN_* variables configure the server (click's auto_envvar_prefix), not the app."""
    return name.startswith("UVICORN_")


# --- ports -----------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_ports_agree_everywhere(service: str, compose: dict[str, Any], rendered: Rendered) -> None:
    port = SERVICE_PORTS[service]
    compose_service = compose["services"][service]
    assert compose_service["build"]["args"]["PORT"] == str(port)
    container_ports = {str(mapping).rsplit(":", 1)[-1] for mapping in compose_service["ports"]}
    assert container_ports == {str(port), *SMTP_PORTS.get(service, ())}

    deployment = deployments(rendered)[service]
    assert service_container(deployment)["ports"][0]["containerPort"] == port
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    assert rendered.get("Service", service)["spec"]["ports"][0]["port"] == port


# --- environment variables vs the services' Settings -----------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_compose_variables_are_settings_fields(service: str, compose: dict[str, Any]) -> None:
    known = settings_env_names(settings_class(service))
    used = set(compose_environment(compose["services"][service]))
    assert sorted(used - known) == []


@pytest.mark.parametrize("service", SERVICES)
def test_kubernetes_variables_are_settings_fields(service: str, rendered: Rendered) -> None:
    known = settings_env_names(settings_class(service))
    container = service_container(deployments(rendered)[service])
    used = {n for n in container_env_names(container, rendered) if not uvicorn_variable(n)}
    assert sorted(used - known) == []


@pytest.mark.parametrize("service", SERVICES)
def test_compose_values_are_accepted_in_dev(
    service: str, compose: dict[str, Any], clean_environ: pytest.MonkeyPatch
) -> None:
    settings = settings_class(service)
    for name, value in compose_environment(compose["services"][service]).items():
        clean_environ.setenv(name, value)
    loaded = settings()
    assert str(loaded.kafka_bootstrap_servers) == "kafka:9092"


def production_environment(service: str, rendered: Rendered) -> dict[str, str]:
    """What a production pod of ``service`` sees, with freshly generated secret values."""
    container = service_container(deployments(rendered)[service])
    env = {
        k: v
        for k, v in rendered.container_environment(container).items()
        if not uvicorn_variable(k)
    }
    generated = {
        "MONGODB_URL": f"mongodb://{service}:{secrets.token_urlsafe(16)}@mongodb-0.mongodb:27017/"
        f"?replicaSet=rs0&authSource=admin",
        "LINK_SIGNING_KEY": secrets.token_urlsafe(48),
        "LINK_SIGNING_KEY_FALLBACKS": secrets.token_urlsafe(48),
        "ADMIN_TOKEN": secrets.token_urlsafe(32),
        "EMPLOYER_SESSION_KEY": secrets.token_urlsafe(48),
        "REACH_TOKEN": secrets.token_urlsafe(32),
        "SMTP_USERNAME": "hwcollab",
        "SMTP_PASSWORD": secrets.token_urlsafe(24),
        "DKIM_PRIVATE_KEY": rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode(),
    }
    for item in container.get("env", []):
        if "valueFrom" in item:
            env[item["name"]] = generated[item["name"]]
    return env


@pytest.mark.parametrize("service", SERVICES)
def test_production_values_are_accepted_in_prod(
    service: str, production: Rendered, clean_environ: pytest.MonkeyPatch
) -> None:
    settings = settings_class(service)
    env = production_environment(service, production)
    assert env["HWCOLLAB_ENV"] == "prod"
    for name, value in env.items():
        clean_environ.setenv(name, value)
    settings()


# --- health paths vs the apps' routes --------------------------------------------------------


def probe_paths(rendered: Rendered, service: str) -> set[str]:
    container = service_container(deployments(rendered)[service])
    return {
        container[probe]["httpGet"]["path"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }


@pytest.mark.parametrize("service", SERVICES)
def test_probed_paths_are_served_by_the_app(
    service: str, compose: dict[str, Any], clean_environ: pytest.MonkeyPatch
) -> None:
    """Every path the image, the probes and the scrape annotation use is a route of the app.
    Asked over ASGI without starting the lifespan: /healthz answers 200, /readyz answers
    (503 here, with nothing to connect to), /metrics answers 200; none is a 404."""
    settings_class(service)
    module_name = f"hwcollab_{service}.app"
    try:
        app_module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and module_name.startswith(error.name):
            pytest.skip(f"{module_name} does not exist yet")
        raise
    for name, value in compose_environment(compose["services"][service]).items():
        clean_environ.setenv(name, value)
    app = app_module.create_app()

    (healthcheck,) = parse(DOCKERFILE)[1][-1].all("HEALTHCHECK")
    image_paths = set(re.findall(r"'(/[a-z]+)'", healthcheck))
    k8s_paths: set[str] = set()
    for kustomization in KUSTOMIZATIONS:
        k8s_paths |= probe_paths(render(kustomization), service)
    annotation = deployments(render("base"))[service]["spec"]["template"]["metadata"]["annotations"]
    assert image_paths == {"/healthz"}
    assert k8s_paths == {"/healthz", "/readyz"}

    async def statuses() -> dict[str, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            paths = {*image_paths, *k8s_paths, annotation["prometheus.io/path"]}
            return {path: (await client.get(path)).status_code for path in sorted(paths)}

    answered = asyncio.run(statuses())
    assert answered["/healthz"] == 200
    assert answered["/metrics"] == 200
    assert answered["/readyz"] in {200, 503}


# --- image names -----------------------------------------------------------------------------


def test_image_names_agree(compose: dict[str, Any]) -> None:
    (label,) = parse(DOCKERFILE)[1][-1].all("LABEL")
    assert 'org.opencontainers.image.title="hwcollab-${SERVICE}"' in label
    base, production = render("base"), render("production")
    for service in SERVICES:
        name = f"hwcollab-{service}"
        assert compose["services"][service]["image"] == f"{name}:dev"
        assert service_container(deployments(base)[service])["image"] == f"{name}:dev"
        image = service_container(deployments(production)[service])["image"]
        assert image.rpartition(":")[0].rpartition("/")[2] == name


# --- topics and consumer groups --------------------------------------------------------------


def test_keda_triggers_watch_the_notifier_groups_and_topics(rendered: Rendered) -> None:
    triggers = rendered.get("ScaledObject", "notifier")["spec"]["triggers"]
    watched = {(t["metadata"]["consumerGroup"], t["metadata"]["topic"]) for t in triggers}
    assert (topics.NOTIFIER_DELIVERY_GROUP, topics.DELIVERY_TOPIC) in watched
    assert watched <= {
        (topics.NOTIFIER_DELIVERY_GROUP, topics.DELIVERY_TOPIC),
        (topics.NOTIFIER_GROUP, topics.OPENING_TOPIC),
    }


def test_topic_job_creates_the_topics_of_the_schemas_with_their_settings(
    rendered: Rendered,
) -> None:
    (job,) = rendered.of_kind("Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert dict(_ENTRY.findall(env["TOPICS"])) == EXPECTED_RETENTION
    assert len(env["TOPICS"].split()) == len(EXPECTED_TOPICS)
    assert (env["TOPIC_REPLICATION_FACTOR"], env["TOPIC_MIN_INSYNC_REPLICAS"]) == ("3", "2")
    script = container["command"][-1]
    assert "unclean.leader.election.enable=false" in script
    assert "min.insync.replicas=$TOPIC_MIN_INSYNC_REPLICAS" in script


def test_compose_creates_the_topics_of_the_schemas_with_their_settings(
    compose: dict[str, Any],
) -> None:
    script = compose["services"]["kafka-topics"]["entrypoint"][-1]
    assert dict(_ENTRY.findall(script.split("; do")[0])) == EXPECTED_RETENTION
    assert "min.insync.replicas=1,unclean.leader.election.enable=false" in script


def test_compose_and_the_embedded_stack_run_the_same_kafka() -> None:
    """The Kafka image of docker compose and the topic Job is the version `make install` fetches."""
    version = components.kafka_version()
    for path in (COMPOSE_FILE, DEPLOY / "k8s" / "base" / "topics-job.yaml"):
        images = set(re.findall(r"image: (apache/kafka:\S+)", path.read_text()))
        assert images == {f"apache/kafka:{version}"}, path


# --- the operator guide ----------------------------------------------------------------------


def test_operator_guide_creates_every_referenced_secret(production: Rendered) -> None:
    guide = README.read_text()
    required: set[tuple[str, str]] = set()
    optional: set[tuple[str, str]] = set()
    for deployment in deployments(production).values():
        for item in service_container(deployment).get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                (optional if ref.get("optional") else required).add((ref["name"], ref["key"]))
    assert required
    for name in sorted({name for name, _ in required | optional}):
        assert f"kubectl -n hwcollab create secret generic {name}" in guide, name
    for _, key in sorted(required):
        assert f"--from-literal={key}=" in guide, key
    for _, key in sorted(optional):
        assert key in guide, key
    (ingress,) = production.of_kind("Ingress")
    for tls in ingress["spec"]["tls"]:
        assert tls["secretName"] in guide


def test_operator_guide_names_the_real_files_and_commands() -> None:
    guide = README.read_text()
    for needle in (
        "docker compose up",
        "kubectl kustomize deploy/k8s/overlays/production",
        "kafka-consumer-groups.sh",
        topics.NOTIFIER_DELIVERY_GROUP,
        "hwcollab dlq list",
        "hwcollab dlq replay",
        "GET /api/admin/dlq",
        "POST /api/admin/dlq/replay",
        "LINK_SIGNING_KEY_FALLBACKS",
        "--build-arg SERVICE=",
    ):
        assert needle in guide, needle
    for path in re.findall(r"`((?:deploy|tests)/[\w./-]+)`", guide):
        assert (COMPOSE_FILE.parent / path).exists(), path


def test_metrics_named_in_the_operator_guide_exist() -> None:
    named = set(re.findall(r"`(hwcollab_[a-z_]+)[`{]", README.read_text()))
    assert named
    sources = "\n".join(
        path.read_text()
        for root in ("common/src", "services")
        for path in (COMPOSE_FILE.parent / root).rglob("*.py")
        if "tests" not in path.parts
    )
    defined = set(re.findall(r"\"(hwcollab_[a-z_]+)\"", sources))
    assert sorted(named - defined) == []
