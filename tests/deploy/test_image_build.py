"""The builder stage of deploy/Dockerfile, replayed without a container engine.

Its COPY, ENV, WORKDIR and RUN steps run in a scratch directory with the same uv commands, so
that a workspace change which would break `docker build` (a member the dependency layer does not
see, a source directory not copied, package data missing from the wheel) fails here first.
Two deliberate differences: the interpreter is this one (the same minor version as the image's
python:3.11-slim) and bytecode is not compiled, for speed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DOCKERFILE, REPO, SERVICE_PORTS
from .dockerfile import parse

pytestmark = pytest.mark.slow

IGNORED_DATA = {"__pycache__", ".pyc", ".pyo"}


def replay_builder(service: str, scratch: Path) -> Path:
    """Run the builder stage for ``service`` under ``scratch``; returns the venv it made."""
    _, stages = parse(DOCKERFILE)
    (builder,) = [stage for stage in stages if stage.name == "builder"]
    venv = scratch / "opt-venv"
    workdir = scratch
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("UV_") and key != "VIRTUAL_ENV"
    }
    env |= {"SERVICE": service, "PORT": str(SERVICE_PORTS[service])}

    def expand(text: str) -> str:
        text = re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), text)
        return text.replace("/opt/venv", str(venv))

    for instruction in builder.instructions:
        arguments = expand(instruction.arguments)
        if instruction.keyword == "ENV":
            env |= dict(re.findall(r"(\w+)=(\S+)", arguments))
        elif instruction.keyword == "WORKDIR":
            workdir = scratch / arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY" and not arguments.startswith("--from"):
            *sources, target = arguments.split()
            for source in sources:
                origin = REPO / source
                destination = workdir / target
                if origin.is_dir():
                    shutil.copytree(
                        origin,
                        destination,
                        dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "tests", "*.pyc"),
                    )
                elif target.endswith("/"):
                    destination.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, destination / origin.name)
                else:
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, destination)
        elif instruction.keyword == "RUN":
            command = re.sub(r"--mount=\S+\s*", "", arguments)
            run_env = env | {
                "UV_PROJECT_ENVIRONMENT": str(venv),
                "UV_PYTHON": sys.executable,
                "UV_COMPILE_BYTECODE": "0",
                "UV_LINK_MODE": "hardlink",
            }
            completed = subprocess.run(
                ["/bin/sh", "-c", command],
                cwd=workdir,
                env=run_env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert completed.returncode == 0, f"RUN {command}\n{completed.stderr[-3000:]}"
    return venv


def package_data(package_dir: Path) -> set[str]:
    """Non-Python files of a package (templates, static assets), relative to it."""
    return {
        str(path.relative_to(package_dir))
        for path in package_dir.rglob("*")
        if path.is_file()
        and path.suffix not in {".py", ".pyc", ".pyo"}
        and "__pycache__" not in path.parts
    }


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
def test_builder_stage_installs_the_service_with_its_package_data(
    service: str, tmp_path: Path
) -> None:
    if shutil.which("uv") is None:
        pytest.skip("uv is not on PATH")
    if not (REPO / "services" / service / "src" / f"hwcollab_{service}" / "app.py").exists():
        pytest.skip(f"hwcollab_{service}.app does not exist yet (the image build imports it)")
    venv = replay_builder(service, tmp_path)
    site_packages = next(venv.glob("lib/python3*/site-packages"))
    installed = {path.name for path in site_packages.iterdir()}

    # Only what the service needs: its package, the shared ones, no development tools.
    assert f"hwcollab_{service}" in installed
    assert {"hwcollab_common", "hwcollab_schemas", "uvicorn", "fastapi"} <= installed
    unwanted = {"hwcollab_cli", "hwcollab_testing", "pytest", "playwright", "mypy"}
    assert installed.isdisjoint(unwanted)
    others = {f"hwcollab_{other}" for other in SERVICE_PORTS if other != service}
    assert installed.isdisjoint(others)

    # Installed as wheels (the runtime image has no sources), templates and assets included.
    for package, source in (
        (f"hwcollab_{service}", REPO / "services" / service / "src"),
        ("hwcollab_common", REPO / "common" / "src"),
    ):
        assert not (site_packages / f"_{package}.pth").exists()
        expected = package_data(source / package) - {"py.typed"}
        assert expected <= package_data(site_packages / package)
