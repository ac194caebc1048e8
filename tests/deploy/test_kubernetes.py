"""deploy/k8s: every kustomization renders, validates against the Kubernetes (and KEDA) schemas
and carries what operating the services needs: probes, limits, hardening, disruption budgets,
autoscaling, secrets by reference only."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
from kubernetes_validate import utils as kubernetes_schemas

from .conftest import (
    PUBLIC_SERVICES,
    SERVICE_PORTS,
    Rendered,
    deployments,
    service_container,
)

KEDA_SCHEMA = json.loads((Path(__file__).parent / "keda-scaledobject.schema.json").read_text())
# The oldest Kubernetes release the manifests target (native preStop sleep) and the newest
# whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.31.0", kubernetes_schemas.latest_version())


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_its_schema(rendered: Rendered, version: str) -> None:
    unchecked = []
    for obj in rendered.objects:
        name = f"{rendered.name}: {obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"] == "keda.sh/v1alpha1":
            jsonschema.Draft202012Validator(KEDA_SCHEMA).validate(obj)
            continue
        try:
            kubernetes_schemas.validate(obj, version, strict=True)
        except kubernetes_schemas.SchemaNotFoundError:
            unchecked.append(name)
        except kubernetes_schemas.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            pytest.fail(f"{name} against Kubernetes {version}: {path}: {error.message}")
    assert unchecked == []


def test_the_schema_check_rejects_a_misspelt_field() -> None:
    """Strict validation is not vacuous: an unknown field in a probe fails it."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {
                    "containers": [
                        {"name": "x", "image": "x", "readinessProbe": {"httpGett": {"port": 1}}}
                    ]
                },
            },
        },
    }
    with pytest.raises(kubernetes_schemas.ValidationError):
        kubernetes_schemas.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_keda_schema_rejects_a_misspelt_kafka_parameter(production: Rendered) -> None:
    scaled_object = json.loads(json.dumps(production.get("ScaledObject", "notifier")))
    scaled_object["spec"]["triggers"][0]["metadata"]["lagTreshold"] = "5"
    with pytest.raises(jsonschema.ValidationError, match="lagTreshold"):
        jsonschema.Draft202012Validator(KEDA_SCHEMA).validate(scaled_object)


def test_one_deployment_and_service_per_service(rendered: Rendered) -> None:
    assert set(deployments(rendered)) == set(SERVICE_PORTS)
    services = {obj["metadata"]["name"]: obj for obj in rendered.of_kind("Service")}
    assert set(services) == {*SERVICE_PORTS, "notifier-bounces"}
    for name, port in SERVICE_PORTS.items():
        (service_port,) = services[name]["spec"]["ports"]
        assert service_port["port"] == port
        assert services[name]["spec"]["selector"] == {"app.kubernetes.io/name": name}


def test_probes_check_readiness_and_liveness(rendered: Rendered) -> None:
    for name, deployment in deployments(rendered).items():
        container = service_container(deployment)
        port = container["ports"][0]  # the notifier also listens for bounces (below)
        assert port == {"name": "http", "containerPort": SERVICE_PORTS[name], "protocol": "TCP"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_containers_are_hardened_and_bounded(rendered: Rendered) -> None:
    pod_specs = [d["spec"]["template"]["spec"] for d in deployments(rendered).values()]
    pod_specs += [job["spec"]["template"]["spec"] for job in rendered.of_kind("Job")]
    for pod in pod_specs:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
            resources = container["resources"]
            assert set(resources["requests"]) == {"cpu", "memory"}
            assert set(resources["limits"]) == {"cpu", "memory"}


def test_shutdown_is_graceful(rendered: Rendered) -> None:
    """The pod's grace period covers preStop plus uvicorn's graceful shutdown (20 s, image)."""
    for deployment in deployments(rendered).values():
        pod = deployment["spec"]["template"]["spec"]
        pre_stop = service_container(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pod["terminationGracePeriodSeconds"] >= pre_stop + 20 + 5


def test_every_deployment_has_a_disruption_budget(rendered: Rendered) -> None:
    budgets = {
        obj["metadata"]["name"]: obj["spec"] for obj in rendered.of_kind("PodDisruptionBudget")
    }
    for name in SERVICE_PORTS:
        # maxUnavailable, not minAvailable: a one-replica notifier must not block node drains.
        assert budgets[name] == {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
        }


def test_public_services_scale_on_cpu(rendered: Rendered) -> None:
    autoscalers = {
        obj["metadata"]["name"]: obj["spec"] for obj in rendered.of_kind("HorizontalPodAutoscaler")
    }
    assert set(autoscalers) == set(PUBLIC_SERVICES)
    for name, spec in autoscalers.items():
        assert spec["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        (metric,) = spec["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert 2 <= spec["minReplicas"] < spec["maxReplicas"]


def test_notifier_scales_on_lag_up_to_the_partition_count(rendered: Rendered) -> None:
    scaled_object = rendered.get("ScaledObject", "notifier")
    spec = scaled_object["spec"]
    config = rendered.config()
    assert spec["scaleTargetRef"]["name"] == "notifier"
    assert spec["minReplicaCount"] == 1
    assert spec["maxReplicaCount"] == int(config["KAFKA_TOPIC_PARTITIONS"])
    assert spec["triggers"]
    for trigger in spec["triggers"]:
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["bootstrapServers"] == config["KAFKA_BOOTSTRAP_SERVERS"]
        assert int(trigger["metadata"]["lagThreshold"]) > 0
        assert trigger["metadata"]["allowIdleConsumers"] == "false"


def test_ingress_serves_the_two_public_sites_at_their_public_urls(rendered: Rendered) -> None:
    (ingress,) = rendered.of_kind("Ingress")
    config = rendered.config()
    expected = {
        config["SUBSCRIBER_PUBLIC_URL"].removeprefix("https://"): "subscriber",
        config["EMPLOYER_PUBLIC_URL"].removeprefix("https://"): "employer",
    }
    routed = {
        rule["host"]: path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert routed == expected
    (tls,) = ingress["spec"]["tls"]
    assert set(tls["hosts"]) == set(expected)


def test_secrets_are_referenced_never_rendered(rendered: Rendered) -> None:
    assert rendered.of_kind("Secret") == []
    config = rendered.config()
    for secret_like in (
        "LINK_SIGNING_KEY",
        "LINK_SIGNING_KEY_FALLBACKS",
        "ADMIN_TOKEN",
        "EMPLOYER_SESSION_KEY",
        "SMTP_PASSWORD",
        "MONGODB_URL",
        "DKIM_PRIVATE_KEY",
    ):
        assert secret_like not in config
    for deployment in deployments(rendered).values():
        for item in service_container(deployment).get("env", []):
            assert "value" not in item, f"{item['name']} is set inline, not from a Secret"


def test_topic_job_creates_partitions_from_the_config(rendered: Rendered) -> None:
    (job,) = rendered.of_kind("Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    config_name = next(
        obj["metadata"]["name"]
        for obj in rendered.of_kind("ConfigMap")
        if obj["metadata"]["name"].startswith("hwcollab-config-")
    )
    refs = {
        item["name"]: item["valueFrom"]["configMapKeyRef"]
        for item in container["env"]
        if "valueFrom" in item
    }
    assert refs["KAFKA_TOPIC_PARTITIONS"] == {"name": config_name, "key": "KAFKA_TOPIC_PARTITIONS"}
    assert refs["KAFKA_BOOTSTRAP_SERVERS"] == {
        "name": config_name,
        "key": "KAFKA_BOOTSTRAP_SERVERS",
    }
    script = container["command"][-1]
    assert '--partitions "$KAFKA_TOPIC_PARTITIONS"' in script
    assert "--if-not-exists" in script


def test_production_overlay(production: Rendered) -> None:
    config = production.config()
    assert config["HWCOLLAB_ENV"] == "prod"
    assert config["EMPLOYER_APPROVAL"] == "manual"
    for url in (config["SUBSCRIBER_PUBLIC_URL"], config["EMPLOYER_PUBLIC_URL"]):
        assert url.startswith("https://")
    namespaces = {obj["metadata"].get("namespace") for obj in production.objects}
    namespaces.discard(None)
    assert namespaces == {"hwcollab"}
    (namespace,) = production.of_kind("Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for name, deployment in deployments(production).items():
        image = service_container(deployment)["image"]
        repository, _, tag = image.rpartition(":")
        assert repository.endswith(f"/hwcollab-{name}")
        assert tag not in {"", "dev", "latest"}
    autoscalers = {
        obj["metadata"]["name"]: obj for obj in production.of_kind("HorizontalPodAutoscaler")
    }
    assert autoscalers["subscriber"]["spec"]["minReplicas"] >= 3
    assert autoscalers["employer"]["spec"]["minReplicas"] >= 2


def test_bounce_reports_reach_every_notifier_replica_s_listener(rendered: Rendered) -> None:
    """The bounce domain's mail goes to port 25 of the notifier-bounces Service, which sends it
    to the port every notifier pod listens on (BOUNCE_LISTEN_PORT), and the network policy lets
    any mail server reach that port and only that one beside the HTTP rules."""
    container = service_container(deployments(rendered)["notifier"])
    listen_port = rendered.container_environment(container)["BOUNCE_LISTEN_PORT"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": SERVICE_PORTS["notifier"], "smtp-bounces": int(listen_port)}
    service = rendered.get("Service", "notifier-bounces")
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "notifier"}
    (port,) = service["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (25, "smtp-bounces")
    policy = rendered.get("NetworkPolicy", "hwcollab-notifier")
    open_rules = [rule for rule in policy["spec"]["ingress"] if "from" not in rule]
    assert open_rules == [{"ports": [{"port": "smtp-bounces", "protocol": "TCP"}]}]


def test_production_publishes_the_bounce_listener(production: Rendered) -> None:
    service = production.get("Service", "notifier-bounces")
    assert service["spec"]["type"] == "LoadBalancer"
    assert production.get("Service", "notifier")["spec"]["type"] == "ClusterIP"


def test_autoscalers_own_the_replica_counts(rendered: Rendered) -> None:
    """`kubectl apply` must not reset what the HPAs and KEDA decided."""
    for name, deployment in deployments(rendered).items():
        assert "replicas" not in deployment["spec"], name


def test_topic_job_script_parses(rendered: Rendered) -> None:
    (job,) = rendered.of_kind("Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["/bin/sh", "-ec"]
    checked = subprocess.run(
        ["/bin/sh", "-n", "-c", container["command"][-1]], capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
