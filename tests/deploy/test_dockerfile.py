"""deploy/Dockerfile: a multi-stage build from uv.lock into a slim, non-root runtime image."""

from __future__ import annotations

import re

import pytest

from .conftest import DOCKERFILE, REPO, SERVICE_PORTS
from .dockerfile import Stage, parse, workspace_dependencies, workspace_members

GLOBAL_ARGS, STAGES = parse(DOCKERFILE)
RUNTIME: Stage = STAGES[-1]
BUILDER: Stage = next(stage for stage in STAGES if stage.name == "builder")


def test_builds_with_uv_and_runs_on_python_slim() -> None:
    assert GLOBAL_ARGS["UV_IMAGE"].startswith("ghcr.io/astral-sh/uv:")
    assert RUNTIME.base == "python:3.11-slim"
    assert BUILDER.base == RUNTIME.base, "the venv's interpreter path must exist at runtime"
    syncs = [run for run in BUILDER.all("RUN") if "uv sync" in run]
    assert syncs
    for run in syncs:
        assert "--frozen" in run
        assert "--no-dev" in run
        assert '--package "hwcollab-${SERVICE}"' in run


def test_runtime_image_has_no_build_tooling() -> None:
    copies = RUNTIME.all("COPY")
    assert copies == ["--from=builder /opt/venv /opt/venv"]
    for run in RUNTIME.all("RUN"):
        assert not re.search(r"\b(apt-get|apk|pip|uv|gcc|make)\b", run), run


def test_runs_as_an_unprivileged_user() -> None:
    (user,) = RUNTIME.all("USER")
    uid, _, gid = user.partition(":")
    assert int(uid) >= 1000
    assert int(gid) >= 1000


def test_healthcheck_polls_healthz_without_curl() -> None:
    (healthcheck,) = RUNTIME.all("HEALTHCHECK")
    assert '"python", "-c"' in healthcheck
    assert "/healthz" in healthcheck
    assert "curl" not in healthcheck
    assert "UVICORN_PORT" in healthcheck


def test_uvicorn_serves_the_app_factory_and_stops_gracefully() -> None:
    assert RUNTIME.all("STOPSIGNAL") == ["SIGTERM"]
    (command,) = RUNTIME.all("CMD")
    # exec: uvicorn is PID 1 and receives SIGTERM itself.
    assert "exec uvicorn --factory" in command
    assert "hwcollab_${HWCOLLAB_SERVICE}.app:create_app" in command
    env = RUNTIME.env()
    assert env["HWCOLLAB_SERVICE"] == "${SERVICE}"
    assert env["UVICORN_PORT"] == "${PORT}"
    assert env["UVICORN_HOST"] == "0.0.0.0"
    assert int(env["UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN"]) == 20


def test_dependency_layer_sees_every_workspace_manifest() -> None:
    """uv resolves the workspace from all members' pyproject.toml, even for one package."""
    copied = {
        copy.split()[-1]
        for copy in BUILDER.all("COPY")
        if copy.endswith("pyproject.toml") and not copy.startswith("--from")
    }
    expected = {f"{member.relative_to(REPO)}/pyproject.toml" for member in workspace_members(REPO)}
    assert expected <= copied


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
def test_sources_of_every_needed_workspace_package_are_copied(service: str) -> None:
    copied = {
        copy.split()[0].rstrip("/").replace("${SERVICE}", service)
        for copy in BUILDER.all("COPY")
        if not copy.startswith("--from") and not copy.endswith((".toml", "./"))
    }
    assert workspace_dependencies(REPO, f"hwcollab-{service}") <= copied


def test_build_context_leaves_out_local_state() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    for entry in ("**/.git", "**/.venv", "var/", ".env", "**/tests"):
        assert entry in ignored
