"""Shared fixtures for the deployment checks: the repository's compose file, the rendered
Kustomize overlays and the services' settings, all read from disk (no container engine)."""

from __future__ import annotations

import functools
import importlib
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
KUSTOMIZATIONS = {
    "base": DEPLOY / "k8s" / "base",
    "production": DEPLOY / "k8s" / "overlays" / "production",
}
SERVICE_PORTS = {"subscriber": 8001, "employer": 8002, "notifier": 8003}
PUBLIC_SERVICES = ("subscriber", "employer")
MAIL_SERVICES = ("notifier",)

_INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def interpolate(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Compose's variable interpolation for the forms this repository uses:
    ``${NAME}``, ``${NAME:-default}`` and ``$$`` (a literal dollar)."""
    environ = environ or {}

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name")
        default = match.group("default") or ""
        return environ.get(name) or default

    return _INTERPOLATION.sub(substitute, value)


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def compose_environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A compose service's environment with defaults interpolated (no .env file)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: interpolate(str(value)) for name, value in env.items()}


@dataclass(frozen=True)
class Rendered:
    """The objects one kustomization renders to."""

    name: str
    objects: tuple[dict[str, Any], ...]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        for obj in self.of_kind(kind):
            if obj["metadata"]["name"] == name:
                return obj
        raise LookupError(f"{self.name}: no {kind} named {name}")

    def config(self) -> dict[str, str]:
        """The data of every generated hwcollab-* ConfigMap (their names carry a hash)."""
        data: dict[str, str] = {}
        for config_map in self.of_kind("ConfigMap"):
            if GENERATED_CONFIG.fullmatch(config_map["metadata"]["name"]):
                overlap = set(data) & set(config_map["data"])
                assert not overlap, f"keys in two ConfigMaps: {overlap}"
                data |= config_map["data"]
        return data

    def container_environment(self, container: Mapping[str, Any]) -> dict[str, str]:
        """Values of a container's ``envFrom`` ConfigMaps and literal ``env`` items."""
        values: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                values |= self.get("ConfigMap", source["configMapRef"]["name"])["data"]
        for item in container.get("env", []):
            if "value" in item:
                values[item["name"]] = item["value"]
        return values


GENERATED_CONFIG = re.compile(r"hwcollab-[a-z]+-[a-z0-9]{10}")


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl (with its built-in kustomize) is not on PATH")
    return path


@functools.cache
def render(name: str) -> Rendered:
    completed = subprocess.run(
        [kubectl(), "kustomize", str(KUSTOMIZATIONS[name])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, f"kubectl kustomize {name} failed:\n{completed.stderr}"
    objects = tuple(doc for doc in yaml.safe_load_all(completed.stdout) if doc)
    return Rendered(name=name, objects=objects)


@pytest.fixture(scope="session", params=sorted(KUSTOMIZATIONS))
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return render(str(request.param))


@pytest.fixture(scope="session")
def production() -> Rendered:
    return render("production")


def deployments(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in rendered.of_kind("Deployment")}


def service_container(deployment: Mapping[str, Any]) -> dict[str, Any]:
    name = deployment["metadata"]["name"]
    containers = deployment["spec"]["template"]["spec"]["containers"]
    (container,) = [c for c in containers if c["name"] == name]
    return dict(container)


def container_env_names(container: Mapping[str, Any], rendered: Rendered) -> set[str]:
    """Names of the variables a container sees: ``env`` plus every key of ``envFrom`` ConfigMaps."""
    names = {item["name"] for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config_map = rendered.get("ConfigMap", source["configMapRef"]["name"])
            names |= set(config_map["data"])
    return names


# --- the services' settings -----------------------------------------------------------------


def settings_class(service: str) -> type[Any]:
    """``hwcollab_<service>.settings.Settings``, or a skip while that module is not written yet."""
    module_name = f"hwcollab_{service}.settings"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and module_name.startswith(error.name):
            pytest.skip(f"{module_name} does not exist yet")
        raise
    settings: type[Any] = module.Settings
    return settings


def settings_env_names(settings: type[Any]) -> set[str]:
    """The environment variable names pydantic-settings reads for ``settings`` (upper case)."""
    config = settings.model_config
    prefix = str(config.get("env_prefix", ""))
    names: set[str] = set()
    for field_name, field in settings.model_fields.items():
        aliases: list[str] = []
        alias = field.validation_alias
        if isinstance(alias, str):
            aliases.append(alias)
        elif alias is not None and hasattr(alias, "choices"):
            aliases.extend(choice for choice in alias.choices if isinstance(choice, str))
        if field.alias and not aliases:
            aliases.append(field.alias)
        if not aliases:
            aliases.append(prefix + field_name)
        names |= {a.upper() for a in aliases}
    return names


_HOST_PREFIXES = ("HWCOLLAB_", "KAFKA_", "MONGODB_", "SMTP_", "LINK_", "ADMIN_")
_HOST_NAMES = {
    "MAIL_FROM",
    "POSTAL_ADDRESS",
    "SUBSCRIBER_PUBLIC_URL",
    "EMPLOYER_PUBLIC_URL",
    "EMPLOYER_APPROVAL",
}


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A monkeypatch that starts without any HWcollab-related variable from the host."""
    for name in list(os.environ):
        if name.startswith(_HOST_PREFIXES) or name in _HOST_NAMES:
            monkeypatch.delenv(name)
    return monkeypatch
